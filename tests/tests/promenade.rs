//! The Promenade driver (`drivers/promenade`, WIT 0.2.0 `provisioner`)
//! against a fake of Promenade's node-labels API (`drydock_tests::
//! fake_promenade`, a fake written from Promenade's source), directly and
//! through Drydock's `relabel_nodes` orchestrator action.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drydock::drivers::{
    Action, CallError, Driver, DriverConfig, DriverErrorKind, DriverSet, EgressGrant,
    GrantedSecrets, Interface, Runtime,
};
use drydock::store::{ResultStatus, TaskStatus};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use drydock_tests::fake_promenade::{FakePromenade, TOKEN};
use drydock_tests::{Call, node, runtime};
use serde_json::json;

async fn promenade(rt: &Runtime) -> Driver {
    rt.load("promenade", drydock::bundled::PROMENADE)
        .await
        .expect("promenade")
}

/// The driver's grant: the fake's URL and host, and the token secret.
fn grant(fake: &FakePromenade, token: Option<&str>) -> Arc<DriverConfig> {
    let host = fake
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let mut secrets = GrantedSecrets::default();
    if let Some(t) = token {
        secrets.insert("promenade-token", t);
    }
    Arc::new(DriverConfig {
        settings: [("url".to_string(), fake.url.clone())].into(),
        egress: vec![host.parse::<EgressGrant>().unwrap()].into(),
        secrets,
        ..DriverConfig::default()
    })
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> drydock::model::Node {
    let mut n = node(name, "sim");
    n.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    n
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn relabel_node_sets_exactly_the_design_labels() {
    let fake = FakePromenade::start(&[(
        "cmp01",
        &[
            ("kubernetes.io/hostname", "cmp01"),
            ("stale", "yes"),
            ("role", "old"),
        ],
    )])
    .await;
    let rt = runtime();
    let d = promenade(&rt).await;
    assert_eq!(d.info().interfaces, vec![Interface::Provisioner]);
    // The SDK builds the full-driver world; only provisioner is claimed.
    assert!(d.worlds().contains(&"provisioner-driver"));
    let call = Call {
        config: grant(&fake, Some(TOKEN)),
        ..Call::default()
    };
    let n = labelled("cmp01", &[("role", "compute"), ("rack", "r1")]);
    call.run(&rt, &d, Action::RelabelNode, Some(&n))
        .await
        .unwrap();
    // Promenade keeps kubernetes.io labels, drops the others not listed.
    assert_eq!(
        fake.labels("cmp01").unwrap(),
        map(&[
            ("kubernetes.io/hostname", "cmp01"),
            ("rack", "r1"),
            ("role", "compute")
        ])
    );
    assert!(
        call.statuses()
            .iter()
            .any(|m| m.contains("cmp01: Kubernetes labels set through Promenade"))
    );
    // Again: nothing to change, no patch.
    call.run(&rt, &d, Action::RelabelNode, Some(&n))
        .await
        .unwrap();
    assert_eq!(fake.cluster.lock().unwrap().patches.len(), 1);
}

#[tokio::test]
async fn promenade_errors_map_to_driver_error_kinds() {
    let fake = FakePromenade::start(&[("cmp01", &[])]).await;
    let rt = runtime();
    let d = promenade(&rt).await;
    let kind = |r: Result<serde_json::Value, CallError>| match r {
        Err(CallError::Driver { error, .. }) => (error.kind, error.message),
        other => panic!("{other:?}"),
    };
    let n = labelled("cmp01", &[("role", "compute")]);

    // No token granted: Promenade answers 401.
    let call = Call {
        config: grant(&fake, None),
        ..Call::default()
    };
    let (k, _) = kind(call.run(&rt, &d, Action::RelabelNode, Some(&n)).await);
    assert_eq!(k, DriverErrorKind::Auth);

    let call = Call {
        config: grant(&fake, Some(TOKEN)),
        ..Call::default()
    };
    // A node Kubernetes does not have: 404, permanent.
    let (k, m) = kind(
        call.run(&rt, &d, Action::RelabelNode, Some(&labelled("cmp99", &[])))
            .await,
    );
    assert_eq!(k, DriverErrorKind::Failed);
    assert!(m.contains("not a Kubernetes node"), "{m}");
    // Kubernetes API errors (503) are retryable.
    fake.cluster.lock().unwrap().fail_next = 1;
    let (k, _) = kind(call.run(&rt, &d, Action::RelabelNode, Some(&n)).await);
    assert_eq!(k, DriverErrorKind::Busy);
    // Without a grant for Promenade's host the request is denied.
    let call = Call {
        config: Arc::new(DriverConfig {
            egress: Default::default(),
            ..(*grant(&fake, Some(TOKEN))).clone()
        }),
        ..Call::default()
    };
    assert!(
        call.run(&rt, &d, Action::RelabelNode, Some(&n))
            .await
            .is_err()
    );
    assert!(
        call.statuses()
            .iter()
            .any(|m| m.starts_with("egress denied: driver promenade"))
    );
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("examples")
}

/// `relabel_nodes` over a node filter: the provisioner driver sets each
/// selected node's labels from the design (its `owner_data`), and only
/// those nodes'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabel_nodes_runs_the_provisioner_over_the_filtered_nodes() {
    let fake = FakePromenade::start(&[
        ("cmp01", &[("kubernetes.io/hostname", "cmp01")]),
        ("cmp02", &[]),
        ("ctl01", &[("role", "untouched")]),
    ])
    .await;
    let rt: Arc<Runtime> = Arc::new(runtime());
    let mut set = DriverSet::new();
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    set.add(sim, Arc::new(DriverConfig::default())).unwrap();
    set.add(promenade(&rt).await, grant(&fake, Some(TOKEN)))
        .unwrap();
    set.set_provisioner_driver(Some("promenade".into()));
    // The design's BMC and switch credentials (resolved for every node call).
    let mut secrets = GrantedSecrets::default();
    secrets.insert("bmc-password", "calvin");
    secrets.insert("switch-password", "arista");
    let engine = Engine::start(
        drydock_tests::db::sqlite().await,
        rt,
        Arc::new(set),
        EngineConfig {
            retry_backoff: Duration::from_millis(5),
            poll_interval: Duration::from_millis(50),
            design_dir: Some(examples()),
            secrets,
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    let req = TaskRequest {
        action: "relabel_nodes".into(),
        design_ref: Some("file:site.yaml".into()),
        node_filter: Some(json!({"filter_set": [{"node_names": ["cmp01", "cmp02"]}]})),
        created_by: Some("test".into()),
        ..TaskRequest::default()
    };
    let done = drydock_tests::run_to_end(&engine, req, Duration::from_secs(60)).await;
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    assert_eq!(done.result_status, ResultStatus::Success, "{done:?}");
    let mut successes = done.successes.clone();
    successes.sort();
    assert_eq!(successes, vec!["cmp01", "cmp02"]);
    // site.yaml's compute profile: owner_data role: compute.
    for n in ["cmp01", "cmp02"] {
        let labels = fake.labels(n).unwrap();
        assert_eq!(
            labels.get("role").map(String::as_str),
            Some("compute"),
            "{n}: {labels:?}"
        );
    }
    assert_eq!(
        fake.labels("cmp01").unwrap().get("kubernetes.io/hostname"),
        Some(&"cmp01".to_string())
    );
    assert_eq!(fake.labels("ctl01").unwrap(), map(&[("role", "untouched")]));
}
