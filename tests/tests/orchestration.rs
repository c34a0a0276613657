//! Orchestration timing: each node moves through prepare_nodes and
//! deploy_nodes on its own, so one slow node does not hold the others; the
//! wait for a node to enlist after its PXE boot is bounded by
//! `enlist_timeout`, not a count of attempts.
//!
//! The sim's `hold_*` settings order calls across nodes without timing: a
//! call on a held node waits until another node's call happened.

use drydock::drivers::{DriverConfig, DriverSet, Runtime};
use drydock::store::{ResultStatus, Store, TaskRecord, TaskStatus};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("examples")
}

async fn engine(store: Store, settings: &[(&str, &str)], enlist_timeout: Duration) -> Engine {
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut set = DriverSet::new();
    set.add(
        sim,
        Arc::new(DriverConfig {
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..DriverConfig::default()
        }),
    )
    .unwrap();
    let mut secrets = drydock::drivers::GrantedSecrets::default();
    secrets.insert("bmc-password", "calvin");
    secrets.insert("switch-password", "arista");
    Engine::start(
        store,
        rt,
        Arc::new(set),
        EngineConfig {
            retry_backoff: Duration::from_millis(5),
            poll_interval: Duration::from_millis(50),
            design_dir: Some(examples()),
            secrets,
            enlist_timeout,
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap()
}

async fn run(engine: &Engine, action: &str, nodes: &[&str]) -> TaskRecord {
    let req = TaskRequest {
        action: action.into(),
        design_ref: Some("file:site.yaml".into()),
        node_filter: Some(json!({"filter_set": [{"node_names": nodes}]})),
        created_by: Some("test".into()),
        ..TaskRequest::default()
    };
    let done = drydock_tests::run_to_end(engine, req, Duration::from_secs(120)).await;
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    done
}

/// The per-node subtask of `task`'s step `action` for `node`.
async fn call(store: &Store, task: &TaskRecord, action: &str, node: &str) -> TaskRecord {
    for step in store.subtasks(task.id).await.unwrap() {
        if step.action != action {
            continue;
        }
        if let Some(t) = store
            .subtasks(step.id)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.node_name.as_deref() == Some(node))
        {
            return t;
        }
    }
    panic!("no {action} call for {node} in task {}", task.id)
}

/// cmp01's first deploy_nodes call (apply_node_networking) is held until
/// cmp02's deploy_node call has started: with steps moving all nodes
/// together cmp02 could never get there first, and cmp01 would time out.
/// Each node moving on its own, both deploy.
#[tokio::test]
async fn a_slow_node_does_not_hold_the_others() {
    let store = drydock_tests::db::sqlite().await;
    let e = engine(
        store.clone(),
        &[
            ("count_calls", "true"),
            ("hold_action", "apply_node_networking"),
            ("hold_nodes", "cmp01"),
            ("hold_until", "calls/deploy_node/cmp02"),
        ],
        Duration::from_secs(600),
    )
    .await;
    let nodes = ["cmp01", "cmp02"];
    let prep = run(&e, "prepare_nodes", &nodes).await;
    assert_eq!(prep.result_status, ResultStatus::Success, "{prep:?}");
    let deploy = run(&e, "deploy_nodes", &nodes).await;
    assert_eq!(deploy.result_status, ResultStatus::Success, "{deploy:?}");
    assert_eq!(deploy.successes, nodes);
    // cmp02 deployed while cmp01 was still applying its networking.
    let held = call(&store, &deploy, "apply_node_networking", "cmp01").await;
    let other = call(&store, &deploy, "deploy_node", "cmp02").await;
    assert_eq!(held.result_status, ResultStatus::Success, "{held:?}");
    assert!(
        other.created < held.updated,
        "cmp02's deploy_node ({:?}) should start before cmp01's first step ended ({:?})",
        other.created,
        held.updated
    );
    // The steps are listed in plan order.
    let steps: Vec<String> = store
        .subtasks(deploy.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.action)
        .collect();
    assert_eq!(
        steps[..4],
        [
            "apply_node_networking",
            "apply_node_storage",
            "apply_node_platform",
            "deploy_node"
        ]
    );
}

/// A node that never enlists after its PXE boot is retried until
/// `enlist_timeout` (not a count of attempts), then fails at the
/// enlistment wait; the other node goes on.
#[tokio::test]
async fn the_enlistment_wait_is_bounded_by_its_timeout() {
    let store = drydock_tests::db::sqlite().await;
    // The bootstrapper never finds cmp01.
    let e = engine(
        store.clone(),
        &[("fail_nodes", "cmp01"), ("fail_actions", "identify_node")],
        Duration::from_secs(3),
    )
    .await;
    let prep = run(&e, "prepare_nodes", &["cmp01", "cmp02"]).await;
    assert_eq!(prep.result_status, ResultStatus::PartialSuccess, "{prep:?}");
    assert_eq!(prep.successes, ["cmp02"]);
    assert_eq!(prep.failures, ["cmp01"]);
    assert!(
        prep.result_message
            .as_deref()
            .unwrap_or_default()
            .contains("cmp01 (identify_node)"),
        "{prep:?}"
    );
    // The wait's deadline is the enlistment timeout from its start.
    let steps = store.subtasks(prep.id).await.unwrap();
    let wait = steps
        .iter()
        .filter(|s| s.action == "identify_node")
        .nth(1)
        .expect("the enlistment wait step");
    let call = store
        .subtasks(wait.id)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.node_name.as_deref() == Some("cmp01"))
        .unwrap();
    let span = call.deadline.unwrap() - call.created;
    assert!(
        (2900..=3100).contains(&span.num_milliseconds()),
        "enlistment wait deadline {span:?} after its start"
    );
}
