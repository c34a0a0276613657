//! Issue 20, fleet truth, end to end on the sim driver and both backends:
//! the power and health sync and drift; a BMC that stops answering puts its
//! node in maintenance, tasks skip it, and it leaves maintenance by itself
//! when the BMC answers again; uncertain outcomes are read back; operator
//! maintenance and the node timeline through the API.
//!
//! The sim's BMCs are its key-value state: `power/<node>` is what the BMC
//! reports, `bmc_down/<node>` makes it stop answering, and the setting
//! `lose_reply` makes an action act and then lose its reply.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use drydock::api::{ApiToken, AppState, Auth, Role, router};
use drydock::drivers::{DriverConfig, DriverSet, Runtime};
use drydock::fleet::SyncConfig;
use drydock::store::{NodeEventRecord, NodeSyncRecord, ResultStatus, Store};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const OPERATOR: &str = "operator-token";

async fn engine_with(store: Store, settings: &[(&str, &str)]) -> Engine {
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut set = DriverSet::new();
    let settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    set.add(
        sim,
        Arc::new(DriverConfig {
            settings,
            ..DriverConfig::default()
        }),
    )
    .unwrap();
    let cfg = EngineConfig {
        retry_backoff: Duration::from_millis(10),
        poll_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    Engine::start(store, rt, Arc::new(set), cfg).await.unwrap()
}

/// A sync that runs its rounds every 200 ms.
fn fast_sync() -> SyncConfig {
    SyncConfig {
        interval_s: 0.2,
        timeout_s: 5.0,
        failures_to_maintenance: 2,
        max_backoff_s: 0.4,
        ..SyncConfig::default()
    }
}

async fn register(store: &Store, names: &[&str]) {
    for name in names {
        store
            .upsert_node(name, &json!({"name": name, "oob": {"type": "sim"}}), None)
            .await
            .unwrap();
    }
}

async fn sync_row(store: &Store, node: &str) -> NodeSyncRecord {
    store.node_sync(node).await.unwrap().expect("a sync row")
}

async fn timeline(engine: &Engine, node: &str) -> Vec<NodeEventRecord> {
    engine.timeline().flush().await;
    engine.store().node_events(node, None, 500).await.unwrap()
}

fn has(events: &[NodeEventRecord], kind: &str, outcome: &str) -> bool {
    events
        .iter()
        .any(|e| e.kind == kind && e.outcome.as_deref() == Some(outcome))
}

async fn run_task(engine: &Engine, action: &str) -> drydock::store::TaskRecord {
    let t = engine
        .submit(TaskRequest {
            action: action.into(),
            created_by: Some("test".into()),
            ..TaskRequest::default()
        })
        .await
        .unwrap();
    let t = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(t.status.is_terminal(), "{t:?}");
    t
}

async fn messages(store: &Store, task: &drydock::store::TaskRecord) -> Vec<String> {
    let mut ids = store.subtask_ids(task.id).await.unwrap();
    ids.push(task.id);
    let mut out = Vec::new();
    for id in ids {
        out.extend(
            store
                .messages(id)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.message),
        );
    }
    out
}

async fn sync_records_power_beside_what_drydock_set(store: Store) {
    let engine = engine_with(store.clone(), &[]).await;
    register(&store, &["n-drift", "n-same", "n-new"]).await;
    // What Drydock set, and what the BMCs report.
    store
        .set_node_state("n-drift", Some("on"), None)
        .await
        .unwrap();
    store
        .set_node_state("n-same", Some("on"), None)
        .await
        .unwrap();
    store.kv_set("sim", "power/n-drift", "off").await.unwrap();
    store.kv_set("sim", "power/n-same", "on").await.unwrap();
    tokio::spawn(drydock::fleet::sync::run(engine.clone(), fast_sync()));

    for n in ["n-drift", "n-same", "n-new"] {
        drydock_tests::until("every node synced", || async {
            store
                .node_sync(n)
                .await
                .unwrap()
                .is_some_and(|s| s.observed_at.is_some())
        })
        .await;
    }
    let drift = sync_row(&store, "n-drift").await;
    assert_eq!(
        (drift.observed_power.as_deref(), drift.drift),
        (Some("off"), true)
    );
    assert_eq!(drift.observed_health.as_deref(), Some("ok"));
    assert!(!sync_row(&store, "n-same").await.drift);
    let new = sync_row(&store, "n-new").await;
    assert_eq!(
        (new.observed_power.as_deref(), new.drift),
        (Some("off"), false)
    );
    assert_eq!(store.fleet_counts().await.unwrap(), (3, 1, 0));
    let events = timeline(&engine, "n-drift").await;
    assert!(has(&events, "drift", "detected"), "{events:#?}");
    assert!(drydock::fleet::FleetStats::get(&engine.fleet_stats().drift_detected) >= 1);

    // Drydock powers it on: the drift resolves at the next sync.
    let t = run_task(&engine, "power_on_node").await;
    assert_eq!(t.result_status, ResultStatus::Success);
    drydock_tests::until("the drift resolved", || async {
        !sync_row(&store, "n-drift").await.drift
    })
    .await;
    let events = timeline(&engine, "n-drift").await;
    assert!(has(&events, "drift", "resolved"), "{events:#?}");
    assert!(has(&events, "state_change", "success"), "{events:#?}");
    assert!(
        events.iter().any(|e| e.kind == "driver_call"
            && e.action.as_deref() == Some("power_on_node")
            && e.outcome.as_deref() == Some("success")
            && e.duration_ms.is_some()
            && e.task_id.is_some()),
        "{events:#?}"
    );
    engine.shutdown();
}

async fn a_silent_bmc_puts_its_node_in_maintenance_until_it_answers(store: Store) {
    let engine = engine_with(store.clone(), &[]).await;
    register(&store, &["n-down", "n-up"]).await;
    store.kv_set("sim", "bmc_down/n-down", "1").await.unwrap();
    tokio::spawn(drydock::fleet::sync::run(engine.clone(), fast_sync()));

    drydock_tests::until("maintenance", || async {
        store
            .node_sync("n-down")
            .await
            .unwrap()
            .is_some_and(|s| s.maintenance.is_some())
    })
    .await;
    let row = sync_row(&store, "n-down").await;
    assert_eq!(row.maintenance.as_deref(), Some("sync"));
    let reason = row.maintenance_reason.unwrap();
    assert!(
        reason.contains("2 syncs in a row") && reason.contains("does not answer"),
        "{reason}"
    );
    assert_eq!(row.observed_health.as_deref(), Some("unreachable"));
    assert!(row.due.is_some(), "retried with backoff");

    // Tasks skip it, saying why.
    let t = run_task(&engine, "power_on_node").await;
    assert_eq!(t.result_status, ResultStatus::Success, "{t:?}");
    assert_eq!(t.successes, vec!["n-up".to_string()]);
    let text = messages(&store, &t).await;
    assert!(
        text.iter()
            .any(|m| m.contains("node n-down skipped: it is in maintenance")
                && m.contains("2 syncs in a row")),
        "{text:#?}"
    );

    // Its BMC answers again: it leaves maintenance by itself.
    store.kv_delete("sim", "bmc_down/n-down").await.unwrap();
    drydock_tests::until("maintenance left", || async {
        sync_row(&store, "n-down").await.maintenance.is_none()
    })
    .await;
    let row = sync_row(&store, "n-down").await;
    assert_eq!(
        (row.failures, row.observed_health.as_deref()),
        (0, Some("ok"))
    );
    let events = timeline(&engine, "n-down").await;
    assert!(has(&events, "sync", "failure"), "{events:#?}");
    assert!(has(&events, "maintenance", "entered"), "{events:#?}");
    assert!(has(&events, "maintenance", "left"), "{events:#?}");
    let t = run_task(&engine, "power_on_node").await;
    assert_eq!(t.successes.len(), 2, "{t:?}");
    engine.shutdown();
}

async fn an_action_that_took_effect_is_a_success(store: Store) {
    // power_on and power_off lose their reply after acting; power_cycle
    // too, but a read cannot tell that a cycle happened.
    let lose = ("lose_reply", "power_on_node,power_cycle_node");
    let engine = engine_with(store.clone(), &[lose]).await;
    register(&store, &["n1"]).await;

    let t = run_task(&engine, "power_on_node").await;
    assert_eq!(t.result_status, ResultStatus::Success, "{t:?}");
    let sub = &engine.store().subtask_ids(t.id).await.unwrap()[0];
    let sub = engine.store().get_task(*sub).await.unwrap().unwrap();
    assert_eq!(sub.retry, 0, "decided by the read-back, not a retry");
    let text = sub.result_message.clone().unwrap_or_default();
    assert!(
        text.contains("dropped after power_on_node was sent")
            && text.contains("the BMC reports power_state on: it took effect"),
        "{sub:?}"
    );
    assert_eq!(
        store
            .get_node("n1")
            .await
            .unwrap()
            .unwrap()
            .power_state
            .as_deref(),
        Some("on")
    );
    let events = timeline(&engine, "n1").await;
    assert!(has(&events, "driver_call", "failure"), "{events:#?}");
    assert!(has(&events, "readback", "success"), "{events:#?}");

    // Not readable: retried, then reported failed.
    let t = run_task(&engine, "power_cycle_node").await;
    assert_eq!(t.result_status, ResultStatus::Failure, "{t:?}");
    engine.shutdown();
}

/// The store's side of the sync: due nodes are claimed in one statement
/// with what Drydock last set, and a batch of outcomes is written in one
/// go, fenced row by row: a node another instance claimed, or an operator
/// put in maintenance meanwhile, is left alone and reported unwritten.
async fn outcomes_are_written_in_batches_fenced_by_claim_and_maintenance(store: Store) {
    register(&store, &["b-1", "b-2", "b-3", "b-4"]).await;
    store.set_node_state("b-1", Some("on"), None).await.unwrap();
    let start = chrono::Utc::now() - chrono::Duration::seconds(10);
    let scheduled = store
        .schedule_sync_round(start, Duration::from_secs(4))
        .await
        .unwrap();
    assert_eq!(scheduled, 4);
    let lease = Duration::from_secs(60);
    let mine = store.claim_syncs("me", 3, lease).await.unwrap();
    let names: Vec<&str> = mine.iter().map(|c| c.sync.node_name.as_str()).collect();
    assert_eq!(names, ["b-1", "b-2", "b-3"], "earliest due first");
    assert_eq!(mine[0].expected_power.as_deref(), Some("on"));
    assert_eq!(mine[1].expected_power, None);
    let theirs = store.claim_syncs("other", 10, lease).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].sync.node_name, "b-4");
    assert!(store.claim_syncs("me", 10, lease).await.unwrap().is_empty());
    assert!(store.set_maintenance("b-2", "repair").await.unwrap());

    let now = chrono::Utc::now();
    let update = |node: &str, power: &str| drydock::store::SyncUpdate {
        node_name: node.into(),
        observed_power: Some(power.into()),
        observed_health: Some("ok".into()),
        observed_at: Some(now),
        last_error: None,
        failures: 0,
        drift: power == "off",
        maintenance: None,
        maintenance_reason: None,
        maintenance_since: None,
        due: None,
    };
    let updates: Vec<_> = ["b-1", "b-2", "b-3", "b-4"]
        .iter()
        .map(|n| update(n, "off"))
        .collect();
    let mut written = store.finish_syncs_written("me", &updates).await.unwrap();
    written.sort();
    assert_eq!(written, ["b-1", "b-3"]);
    let b1 = sync_row(&store, "b-1").await;
    assert_eq!(
        (b1.observed_power.as_deref(), b1.drift, b1.due),
        (Some("off"), true, None)
    );
    let b2 = sync_row(&store, "b-2").await;
    assert_eq!(
        (b2.observed_power, b2.maintenance.as_deref()),
        (None, Some("operator"))
    );
    assert_eq!(sync_row(&store, "b-4").await.observed_power, None);
    // Written rows are released; the other instance's claim still holds.
    assert_eq!(store.finish_syncs("me", &updates).await.unwrap(), 0);
    assert_eq!(
        store
            .finish_syncs("other", &[update("b-4", "on")])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        sync_row(&store, "b-4").await.observed_power.as_deref(),
        Some("on")
    );
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(drydock_tests::db::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, name) = drydock_tests::db::postgres().await;
                    super::$case(store.clone()).await;
                    store.close().await;
                    drydock_tests::db::drop_postgres(&name).await;
                }
            )*
        }
    };
}

both_backends!(
    sync_records_power_beside_what_drydock_set,
    a_silent_bmc_puts_its_node_in_maintenance_until_it_answers,
    an_action_that_took_effect_is_a_success,
    outcomes_are_written_in_batches_fenced_by_claim_and_maintenance,
);

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {OPERATOR}"));
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_set_and_clear_maintenance_and_read_the_timeline() {
    let store = drydock_tests::db::sqlite().await;
    let engine = engine_with(store.clone(), &[]).await;
    register(&store, &["n1", "n2"]).await;
    let app = router(AppState::new(
        engine.clone(),
        Arc::new(Auth::new(vec![ApiToken {
            name: "op".into(),
            token: OPERATOR.into(),
            role: Role::Operator,
        }])),
    ));
    let m = "/api/v1.0/nodes/n1/maintenance";
    let (s, v) = call(&app, "POST", m, Some(json!({"reason": "replacing a DIMM"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = call(&app, "POST", m, Some(json!({"reason": ""}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(
        &app,
        "POST",
        "/api/v1.0/nodes/nope/maintenance",
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(&app, "GET", "/api/v1.0/nodes/n1/sync", None).await;
    assert_eq!(
        (s, &v["sync"]["maintenance"]),
        (StatusCode::OK, &json!("operator")),
        "{v}"
    );

    let t = run_task(&engine, "power_off_node").await;
    assert_eq!(t.successes, vec!["n2".to_string()]);
    let text = messages(&store, &t).await;
    assert!(
        text.iter()
            .any(|m| m.contains("replacing a DIMM (set by operator)")),
        "{text:#?}"
    );

    let (s, _) = call(&app, "DELETE", m, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, "DELETE", m, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no longer in maintenance");

    // The timeline, newest first, in bounded pages.
    let t = run_task(&engine, "power_on_node").await;
    assert_eq!(t.successes.len(), 2);
    engine.timeline().flush().await;
    let (s, page) = call(&app, "GET", "/api/v1.0/nodes/n1/events?limit=2", None).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["kind"], "state_change");
    assert_eq!(events[1]["kind"], "driver_call");
    assert_eq!(events[1]["action"], "power_on_node");
    let next = page["next_before"].as_i64().expect("a next page");
    let (_, older) = call(
        &app,
        "GET",
        &format!("/api/v1.0/nodes/n1/events?before={next}"),
        None,
    )
    .await;
    let kinds: Vec<(&str, &str)> = older["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![("maintenance", "left"), ("maintenance", "entered")]
    );
    assert!(older.get("next_before").is_none());
    for bad in ["limit=0", "limit=501", "limit=x", "before=y"] {
        let (s, _) = call(
            &app,
            "GET",
            &format!("/api/v1.0/nodes/n1/events?{bad}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (s, _) = call(&app, "GET", "/api/v1.0/nodes/nope/events", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(&app, "GET", "/api/v1.0/fleet", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Without a token: 401.
    let resp = app
        .clone()
        .oneshot(
            Request::get("/api/v1.0/nodes/n1/events")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    engine.shutdown();
}

/// Orchestrations skip nodes in maintenance too (here `verify_nodes` on two
/// nodes of the sample site, one of them in maintenance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrations_skip_nodes_in_maintenance() {
    let store = drydock_tests::db::sqlite().await;
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut set = DriverSet::new();
    set.add(sim, Arc::new(DriverConfig::default())).unwrap();
    let mut secrets = drydock::drivers::GrantedSecrets::default();
    secrets.insert("bmc-password", "calvin");
    secrets.insert("switch-password", "arista");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let engine = Engine::start(
        store.clone(),
        rt,
        Arc::new(set),
        EngineConfig {
            retry_backoff: Duration::from_millis(5),
            poll_interval: Duration::from_millis(50),
            design_dir: Some(examples),
            secrets,
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    register(&store, &["ctl02"]).await;
    assert!(store.set_maintenance("ctl02", "fan failure").await.unwrap());
    let req = TaskRequest {
        action: "verify_nodes".into(),
        design_ref: Some("file:site.yaml".into()),
        node_filter: Some(json!({"filter_set": [{"node_names": ["ctl01", "ctl02"]}]})),
        created_by: Some("test".into()),
        ..TaskRequest::default()
    };
    let t = drydock_tests::run_to_end(&engine, req, Duration::from_secs(60)).await;
    assert_eq!(t.result_status, ResultStatus::Success, "{t:?}");
    assert_eq!(t.successes, vec!["ctl01".to_string()], "{t:?}");
    let text = messages(&store, &t).await;
    assert!(
        text.iter()
            .any(|m| m.contains("node ctl02 skipped: it is in maintenance: fan failure")),
        "{text:#?}"
    );
    engine.shutdown();
}
