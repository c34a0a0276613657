//! The task engine end to end on both backends: fan-out, result roll-up,
//! injected failures, retries, cancel, timeouts, and restart recovery.

use drydock::store::{ResultStatus, Store, TaskStatus};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use serde_json::json;
use std::time::Duration;

async fn engine_with(store: Store, settings: &[(&str, &str)], cfg: EngineConfig) -> Engine {
    drydock_tests::sim_engine_set(store, settings, cfg).await
}

fn fast() -> EngineConfig {
    EngineConfig {
        retry_backoff: Duration::from_millis(10),
        poll_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    }
}

async fn register(store: &Store, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("node-{i:03}");
        store
            .upsert_node(&name, &json!({"name": name, "oob": {"type": "sim"}}), None)
            .await
            .unwrap();
        names.push(name);
    }
    names
}

fn task(action: &str) -> TaskRequest {
    TaskRequest {
        action: action.into(),
        created_by: Some("test".into()),
        ..TaskRequest::default()
    }
}

async fn two_hundred_nodes_with_failures(store: Store) {
    let names = register(&store, 200).await;
    let failing = ["node-007", "node-050", "node-133", "node-199"];
    let engine = engine_with(store.clone(), &[("fail_nodes", &failing.join(","))], fast()).await;
    let t = engine.submit(task("power_cycle_node")).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    assert_eq!(done.result_status, ResultStatus::PartialSuccess);
    if done.failures != failing {
        // Say why an unexpected node failed before failing the test.
        let subs = store.subtasks(t.id).await.unwrap();
        for s in subs.iter().filter(|s| {
            s.node_name
                .as_deref()
                .is_some_and(|n| done.failures.iter().any(|f| f == n) && !failing.contains(&n))
        }) {
            eprintln!("unexpected failure {s:?}: {:?}", store.messages(s.id).await);
        }
    }
    assert_eq!(done.failures, failing.to_vec());
    assert_eq!(done.successes.len(), 196);
    assert!(done.successes.iter().all(|s| names.contains(s)));
    assert_eq!(done.error_count, 4);
    let subs = store.subtasks(t.id).await.unwrap();
    assert_eq!(subs.len(), 200);
    // Each failed node says why, in the task's messages.
    let msgs = store
        .messages_for_tasks(&store.subtask_ids(t.id).await.unwrap())
        .await
        .unwrap();
    for f in failing {
        assert!(
            msgs.iter()
                .any(|m| m.error && m.context == f && m.message.contains("simulated failure")),
            "no failure message for {f}"
        );
    }
    // Node power state recorded for the successes.
    let n = store.get_node("node-001").await.unwrap().unwrap();
    assert_eq!(n.power_state.as_deref(), Some("on"));
    engine.shutdown();
}

async fn retryable_failures_are_retried(store: Store) {
    register(&store, 3).await;
    let engine = engine_with(
        store.clone(),
        &[("fail_nodes", "node-001"), ("fail_kind", "retryable")],
        fast(),
    )
    .await;
    let t = engine.submit(task("power_on_node")).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::PartialSuccess);
    assert_eq!(done.failures, vec!["node-001"]);
    let sub = store
        .subtasks(t.id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.node_name.as_deref() == Some("node-001"))
        .unwrap();
    let msgs = store.messages(sub.id).await.unwrap();
    let retries = msgs
        .iter()
        .filter(|m| m.message.contains("retrying"))
        .count();
    assert_eq!(retries, 2, "{msgs:?}");
    engine.shutdown();
}

async fn cancel_mid_task(store: Store) {
    register(&store, 30).await;
    let engine = engine_with(
        store.clone(),
        &[("delay_ms", "60000")],
        EngineConfig {
            max_concurrency: 8,
            ..fast()
        },
    )
    .await;
    let t = engine.submit(task("power_on_node")).await.unwrap();
    // Wait until calls are in flight.
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while engine.inflight() == 0 {
        assert!(tokio::time::Instant::now() < until, "nothing started");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    engine.cancel(t.id, "tester").await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "cancel took {:?}",
        started.elapsed()
    );
    assert_eq!(done.status, TaskStatus::Terminated, "{done:?}");
    assert_eq!(done.terminated_by.as_deref(), Some("tester"));
    assert_eq!(done.result_status, ResultStatus::Failure);
    let subs = store.subtasks(t.id).await.unwrap();
    assert!(
        subs.iter().all(|s| s.status == TaskStatus::Terminated),
        "{subs:?}"
    );
    assert_eq!(engine.inflight(), 0);
    engine.shutdown();
}

async fn per_action_timeout(store: Store) {
    register(&store, 2).await;
    let mut cfg = fast();
    cfg.timeouts
        .insert("power_on_node".into(), Duration::from_millis(400));
    let engine = engine_with(store.clone(), &[("delay_ms", "10000")], cfg).await;
    let t = engine.submit(task("power_on_node")).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Failure);
    assert_eq!(done.failures.len(), 2);
    for s in store.subtasks(t.id).await.unwrap() {
        assert_eq!(s.result_reason.as_deref(), Some("timeout"), "{s:?}");
    }
    engine.shutdown();
}

async fn restart_resumes_unfinished_work(store: Store) {
    register(&store, 10).await;
    let cfg = EngineConfig {
        instance_id: "restart-me".into(),
        ..fast()
    };
    // First run: every call hangs; stop it mid-task.
    let first = engine_with(store.clone(), &[("delay_ms", "60000")], cfg.clone()).await;
    let t = first.submit(task("power_on_node")).await.unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while first.inflight() < 10 {
        assert!(tokio::time::Instant::now() < until, "work did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.shutdown();
    let stuck = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(stuck.status, TaskStatus::Running);
    // Second run of the same instance, now with fast drivers: it resumes.
    let second = engine_with(store.clone(), &[], cfg).await;
    let done = second
        .wait_finished(t.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    assert_eq!(done.result_status, ResultStatus::Success);
    assert_eq!(done.successes.len(), 10);
    let subs = store.subtasks(t.id).await.unwrap();
    assert_eq!(subs.len(), 10, "subtasks were duplicated");
    assert!(subs.iter().all(|s| s.attempt == 2), "{subs:?}");
    second.shutdown();
}

async fn bad_requests_and_empty_filters(store: Store) {
    register(&store, 2).await;
    let engine = engine_with(store.clone(), &[], fast()).await;
    assert!(engine.submit(task("power_on")).await.is_err());
    let err = engine.submit(task("deploy_nodes")).await.unwrap_err();
    assert!(err.to_string().contains("design_ref"), "{err}");
    let mut bad = task("power_on_node");
    bad.node_filter = Some(json!({"filter_set_type": "xor"}));
    assert!(engine.submit(bad).await.is_err());
    let mut bad = task("set_node_boot");
    bad.params = Some(json!({"boot": {"device": "floppy"}}));
    assert!(engine.submit(bad).await.is_err());
    // A filter that matches nothing: success with nothing to do (Drydock).
    let mut none = task("power_on_node");
    none.node_filter = Some(json!({"filter_set": [{"node_names": ["ghost"]}]}));
    let t = engine.submit(none).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Success);
    assert_eq!(
        done.result_message.as_deref(),
        Some("No nodes in scope, no work to do.")
    );
    assert!(store.subtasks(done.id).await.unwrap().is_empty());
    // A node filter picks exactly its nodes; a site-wide action runs once.
    let mut one = task("interrogate_oob");
    one.node_filter = Some(json!({"filter_set": [{"node_names": ["node-001"]}]}));
    let t = engine.submit(one).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.successes, vec!["node-001"]);
    assert!(
        !store
            .build_data_for_node("node-001", true)
            .await
            .unwrap()
            .is_empty()
    );
    let t = engine.submit(task("validate_node_services")).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Success, "{done:?}");
    assert_eq!(store.subtasks(t.id).await.unwrap().len(), 1);
    engine.shutdown();
}

async fn driver_state_is_stored_and_read_back(store: Store) {
    register(&store, 2).await;
    let engine = engine_with(store.clone(), &[], fast()).await;
    let t = engine.submit(task("power_off_node")).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Success);
    // The driver's key-value writes reached the store with the outcome.
    assert_eq!(
        store
            .kv_get("sim", "power/node-001")
            .await
            .unwrap()
            .as_deref(),
        Some("off")
    );
    let t = engine.submit(task("interrogate_oob")).await.unwrap();
    engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    let data = store.build_data_for_node("node-001", true).await.unwrap();
    assert!(
        data.iter()
            .any(|d| d.content.contains("\"power_state\":\"off\"")),
        "{data:?}"
    );
    engine.shutdown();
}

/// Subtasks that fit in the executor's free slots are created already
/// running here and start without a claim; the rest are claimed from the
/// queue. Either way each node's call runs once, as attempt 1.
async fn subtasks_that_fit_start_without_a_claim(store: Store) {
    register(&store, 12).await;
    let engine = engine_with(
        store.clone(),
        &[],
        EngineConfig {
            max_concurrency: 64,
            ..fast()
        },
    )
    .await;
    let t = engine.submit(task("power_on_node")).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Success, "{done:?}");
    assert_eq!(engine.subtasks_started(), (12, 0));
    engine.shutdown();
    engine.stopped().await;

    // Four slots, no backlog, and a call that takes a while: four start as
    // they are created, the other eight are claimed as slots free up.
    let engine = engine_with(
        store.clone(),
        &[("delay_ms", "50")],
        EngineConfig {
            max_concurrency: 4,
            backlog: 0,
            ..fast()
        },
    )
    .await;
    let t = engine.submit(task("power_off_node")).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Success, "{done:?}");
    assert_eq!(engine.subtasks_started(), (4, 8));
    let subs = store.subtasks(t.id).await.unwrap();
    assert_eq!(subs.len(), 12);
    for s in &subs {
        assert_eq!(s.status, TaskStatus::Complete, "{s:?}");
        assert_eq!(s.attempt, 1, "{s:?}");
        assert_eq!(s.retry, 0, "{s:?}");
    }
    engine.shutdown();
}

/// Runs `action` on every node through `engine`; it must succeed.
async fn succeeds(
    engine: &Engine,
    action: &str,
) -> (drydock::store::TaskRecord, drydock::store::TaskRecord) {
    let t = engine.submit(task(action)).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Success, "{done:?}");
    (t, done)
}

/// One instance id for every engine of a test: an engine just stopped
/// still counts as live (its heartbeat is fresh) and would take a share of
/// the next engine's work.
fn here() -> EngineConfig {
    EngineConfig {
        instance_id: "backlog-here".into(),
        ..fast()
    }
}

/// A lone instance creates every subtask running under itself: those past
/// its free slots wait in its backlog (never more than the slots run at
/// once), and a cancel reaches them there: they end terminated without
/// reaching the driver.
async fn the_backlog_runs_everything_here_and_cancels(store: Store) {
    register(&store, 12).await;
    let engine = engine_with(
        store.clone(),
        &[("delay_ms", "100"), ("count_calls", "true")],
        EngineConfig {
            max_concurrency: 3,
            ..here()
        },
    )
    .await;
    let (t, done) = succeeds(&engine, "power_on_node").await;
    assert_eq!(done.successes.len(), 12);
    assert_eq!(engine.subtasks_started(), (12, 0), "nothing claimed");
    for s in store.subtasks(t.id).await.unwrap() {
        assert_eq!(s.status, TaskStatus::Complete, "{s:?}");
        assert_eq!(s.attempt, 1, "{s:?}");
    }
    engine.shutdown();
    engine.stopped().await;

    // Calls that hang: three run, nine wait; cancel the task.
    let engine = engine_with(
        store.clone(),
        &[("delay_ms", "60000"), ("count_calls", "true")],
        EngineConfig {
            max_concurrency: 3,
            ..here()
        },
    )
    .await;
    let t = engine.submit(task("power_off_node")).await.unwrap();
    let reached = async || {
        let mut n = 0;
        for i in 0..12 {
            let key = format!("calls/power_off_node/node-{i:03}");
            if store.kv_get("sim", &key).await.unwrap().is_some() {
                n += 1;
            }
        }
        n
    };
    // Until three calls have reached the driver (and counted themselves).
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while engine.inflight() < 3 || engine.backlog() < 9 || reached().await < 3 {
        assert!(tokio::time::Instant::now() < until, "work did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(engine.inflight(), 3, "never more calls than slots");
    let waiting: Vec<_> = store
        .subtasks(t.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.status == TaskStatus::Running)
        .collect();
    assert_eq!(waiting.len(), 12, "all created running here: {waiting:?}");
    engine.cancel(t.id, "tester").await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Terminated, "{done:?}");
    let subs = store.subtasks(t.id).await.unwrap();
    assert!(
        subs.iter().all(|s| s.status == TaskStatus::Terminated),
        "{subs:?}"
    );
    assert_eq!(engine.backlog(), 0);
    assert_eq!(engine.inflight(), 0);
    // Only the three calls that were running reached the driver.
    assert_eq!(reached().await, 3, "waiting subtasks reached the driver");
    engine.shutdown();
    engine.stopped().await;

    // Four slots and room for five to wait: nine are created running here
    // (four start, five wait in the backlog), three are claimed.
    let engine = engine_with(
        store.clone(),
        &[("delay_ms", "50")],
        EngineConfig {
            max_concurrency: 4,
            backlog: 5,
            ..here()
        },
    )
    .await;
    let (t, _) = succeeds(&engine, "power_on_node").await;
    assert_eq!(engine.subtasks_started(), (9, 3));
    assert_eq!(engine.backlog(), 0);
    for s in store.subtasks(t.id).await.unwrap() {
        assert_eq!(s.status, TaskStatus::Complete, "{s:?}");
        assert_eq!(s.attempt, 1, "{s:?}");
    }
    engine.shutdown();
}

/// A driver gets every key its `kv_keys` limit allows, however the engine's
/// re-reads of its usage (every second) fall between the writer's batches:
/// a task that writes exactly `kv_keys` new keys (one power state per node)
/// succeeds on every node. Counting a batch both as pending and as stored
/// refused the last few hundred keys of a 10,000-node task.
async fn a_driver_gets_every_key_its_limit_allows(store: Store) {
    const NODES: usize = 1500;
    register(&store, NODES).await;
    let limits = drydock::drivers::DriverLimits {
        kv_keys: NODES as u64,
        ..Default::default()
    };
    let engine = drydock_tests::sim_engine(
        store.clone(),
        limits,
        64,
        EngineConfig {
            max_concurrency: 64,
            // Small batches: many of them move while usage is re-read.
            write_batch: 16,
            ..fast()
        },
    )
    .await;
    // Two rounds, so the run spans several re-reads even on a fast machine.
    for action in ["power_off_node", "power_on_node"] {
        let t = engine.submit(task(action)).await.unwrap();
        let done = engine
            .wait_finished(t.id, Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(
            done.result_status,
            ResultStatus::Success,
            "{action}: {} failed, e.g. {:?}",
            done.failures.len(),
            done.result_message
        );
    }
    engine.shutdown();
}

/// Early start on both backends (every fan-out counts as large here): the
/// calls start before the insert commits, their outcomes land once it has,
/// and each node runs exactly once.
async fn an_early_start_runs_each_node_once(store: Store) {
    let nodes = register(&store, 200).await;
    let engine = engine_with(
        store.clone(),
        &[("count_calls", "true")],
        EngineConfig {
            early_start_from: 1,
            ..fast()
        },
    )
    .await;
    let t = engine.submit(task("power_on_node")).await.unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Success, "{done:?}");
    assert_eq!(done.successes.len(), 200);
    let subs = store.subtasks(t.id).await.unwrap();
    assert_eq!(subs.len(), 200);
    for s in &subs {
        assert_eq!((s.status, s.attempt), (TaskStatus::Complete, 1), "{s:?}");
    }
    assert_eq!(counted(&store, "power_on_node", &nodes).await, vec![1; 200]);
    engine.shutdown();
    engine.stopped().await;
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
    two_hundred_nodes_with_failures,
    a_driver_gets_every_key_its_limit_allows,
    subtasks_that_fit_start_without_a_claim,
    the_backlog_runs_everything_here_and_cancels,
    retryable_failures_are_retried,
    cancel_mid_task,
    per_action_timeout,
    restart_resumes_unfinished_work,
    bad_requests_and_empty_filters,
    driver_state_is_stored_and_read_back,
    an_early_start_runs_each_node_once,
);

/// SQL for the tests below: a trigger that, on each subtask row inserted,
/// waits for the shared side of advisory lock 4242 (which the test holds
/// exclusively while it looks), then — on the first row ever, if `fail` —
/// fails the insert with a serialization failure (SQLSTATE 40001, a
/// passing error: the scheduler resumes the task later).
fn hold_fan_out(fail: bool) -> String {
    format!(
        "CREATE SEQUENCE fan_out_rows; \
         CREATE FUNCTION hold_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF nextval('fan_out_rows') = 1 THEN \
             PERFORM pg_advisory_xact_lock_shared(4242); \
             IF {fail} THEN RAISE EXCEPTION 'injected' USING ERRCODE = '40001'; END IF; \
           END IF; \
           RETURN NULL; \
         END $$; \
         CREATE TRIGGER hold_fan_out AFTER INSERT ON tasks FOR EACH ROW \
           WHEN (NEW.parent_id IS NOT NULL) EXECUTE FUNCTION hold_fan_out();"
    )
}

/// How many times the sim counted `action` on each of `nodes` (0 where
/// not at all).
async fn counted(store: &Store, action: &str, nodes: &[String]) -> Vec<u64> {
    let mut out = Vec::new();
    for n in nodes {
        let v = store
            .kv_get("sim", &format!("calls/{action}/{n}"))
            .await
            .unwrap();
        out.push(v.and_then(|v| v.parse().ok()).unwrap_or(0));
    }
    out
}

/// A Postgres store with 20 sim nodes whose next fan-out insert will be
/// held open: a trigger ([`hold_fan_out`]) waits on advisory lock 4242,
/// which `holder` holds, and an engine counting its calls.
struct HeldFanOut {
    store: Store,
    name: String,
    nodes: Vec<String>,
    url: String,
    admin: sqlx::PgPool,
    holder: sqlx::PgConnection,
    engine: Engine,
}

async fn held_fan_out(fail: bool, early_start_from: usize) -> HeldFanOut {
    let (store, name) = drydock_tests::db::postgres().await;
    let nodes = register(&store, 20).await;
    let url = drydock::store::testing::database_url(&drydock_tests::stores::pg_admin_url(), &name);
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(hold_fan_out(fail)))
        .execute(&admin)
        .await
        .unwrap();
    let mut holder = admin.acquire().await.unwrap().detach();
    sqlx::query("SELECT pg_advisory_lock(4242)")
        .execute(&mut holder)
        .await
        .unwrap();
    let engine = engine_with(
        store.clone(),
        &[("count_calls", "true")],
        EngineConfig {
            early_start_from,
            ..fast()
        },
    )
    .await;
    HeldFanOut {
        store,
        name,
        nodes,
        url,
        admin,
        holder,
        engine,
    }
}

/// The fan-out's insert held open (a trigger waits on a lock this test
/// holds) with this instance's share already handed to the executor: what
/// the calls write waits for the insert, then lands.
async fn early_calls(
    fail: bool,
) -> (
    Store,
    String,
    Vec<String>,
    Engine,
    drydock::store::TaskRecord,
) {
    // 20 subtasks are a large fan-out here.
    let HeldFanOut {
        store,
        name,
        nodes,
        mut holder,
        engine,
        ..
    } = held_fan_out(fail, 1).await;
    let t = engine.submit(task("power_on_node")).await.unwrap();
    // Every call reaches the driver while the insert waits.
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while counted(&store, "power_on_node", &nodes).await != vec![1; 20] {
        assert!(
            tokio::time::Instant::now() < until,
            "the calls did not start before the insert committed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Nothing that names a subtask is stored yet.
    assert!(!store.has_subtasks(t.id).await.unwrap());
    let task = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Running, "{task:?}");
    sqlx::query("SELECT pg_advisory_unlock(4242)")
        .execute(&mut holder)
        .await
        .unwrap();
    (store, name, nodes, engine, t)
}

/// A fan-out's calls start before its insert commits; their outcomes land
/// once it has: every node ran once, every subtask at its first attempt.
async fn calls_start_before_the_fan_out_commits() {
    let (store, name, nodes, engine, t) = early_calls(false).await;
    let id = t.id;
    let done = engine
        .wait_finished(id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Success, "{done:?}");
    assert_eq!(done.successes.len(), 20);
    let subs = store.subtasks(id).await.unwrap();
    assert_eq!(subs.len(), 20);
    for s in &subs {
        assert_eq!(s.status, TaskStatus::Complete, "{s:?}");
        assert_eq!(s.attempt, 1, "{s:?}");
    }
    assert_eq!(counted(&store, "power_on_node", &nodes).await, vec![1; 20]);
    assert_eq!(engine.subtasks_started(), (20, 0));
    engine.shutdown();
    engine.stopped().await;
    store.close().await;
    drydock_tests::db::drop_postgres(&name).await;
}

/// The fan-out's insert fails after its calls ran: their outcomes and
/// messages are dropped (there is no row to write them to), the task is
/// fanned out again and each node runs a second time — the price of an
/// early start, which is why only actions safe to repeat get one.
async fn a_failed_fan_out_drops_its_early_results_and_runs_again() {
    let (store, name, nodes, engine, t) = early_calls(true).await;
    let id = t.id;
    let done = engine
        .wait_finished(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.result_status, ResultStatus::Success, "{done:?}");
    let subs = store.subtasks(id).await.unwrap();
    assert_eq!(subs.len(), 20, "one subtask per node: {subs:?}");
    for s in &subs {
        assert_eq!(s.status, TaskStatus::Complete, "{s:?}");
        assert_eq!(s.attempt, 1, "{s:?}");
        assert!(store.messages(s.id).await.unwrap().is_empty(), "{s:?}");
    }
    assert_eq!(counted(&store, "power_on_node", &nodes).await, vec![2; 20]);
    engine.shutdown();
    engine.stopped().await;
    store.close().await;
    drydock_tests::db::drop_postgres(&name).await;
}

/// A leader deposed while its fan-out's insert runs inserts nothing: the
/// insert is fenced on the lease when it commits, so the task is fanned out
/// once, by the leader that took it over, and the deposed one neither
/// fails it nor (with an early start) keeps its calls' results.
async fn a_deposed_leaders_fan_out_inserts_nothing(early: bool) {
    let early_start_from = if early {
        1
    } else {
        EngineConfig::default().early_start_from
    };
    let HeldFanOut {
        store,
        name,
        nodes,
        url,
        admin,
        mut holder,
        engine,
    } = held_fan_out(false, early_start_from).await;
    let t = engine.submit(task("power_on_node")).await.unwrap();
    // The insert has sent its first row and waits for the lock.
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    let waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted";
    while sqlx::query_scalar::<_, i64>(waiting)
        .fetch_one(&admin)
        .await
        .unwrap()
        == 0
    {
        assert!(
            tokio::time::Instant::now() < until,
            "the insert never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Another instance takes the lease over meanwhile. Its leader-lock
    // session is open, so the deposed one cannot take the lease back.
    let usurper_opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let _usurper =
        sqlx::ConnectOptions::connect(&usurper_opts.application_name("drydock-leader:usurper"))
            .await
            .unwrap();
    sqlx::query(
        "UPDATE leader_lease SET holder = 'usurper', epoch = epoch + 1, \
         expires = clock_timestamp() + interval '1 hour' WHERE id = 1",
    )
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_advisory_unlock(4242)")
        .execute(&mut holder)
        .await
        .unwrap();
    // The insert's transaction ends (no session holds a transaction id),
    // and the deposed instance notices it no longer leads.
    let open = "SELECT count(*) FROM pg_stat_activity \
                WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()";
    while sqlx::query_scalar::<_, i64>(open)
        .fetch_one(&admin)
        .await
        .unwrap()
        > 0
    {
        assert!(
            tokio::time::Instant::now() < until,
            "the insert never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while engine.leadership().is_leader() {
        tokio::time::timeout_at(until, engine.leadership().changed())
            .await
            .expect("the deposed instance still says it leads");
    }
    assert!(
        !store.has_subtasks(t.id).await.unwrap(),
        "a deposed leader's fan-out was stored"
    );
    let task = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(
        task.status,
        TaskStatus::Running,
        "left to the new leader: {task:?}"
    );
    assert!(store.messages(t.id).await.unwrap().is_empty(), "{task:?}");
    let lease = store.current_lease().await.unwrap().unwrap();
    assert_eq!(lease.holder, "usurper");
    // Calls started early ran; the others never started.
    let calls = if early { 1 } else { 0 };
    assert_eq!(
        counted(&store, "power_on_node", &nodes).await,
        vec![calls; 20]
    );
    engine.shutdown();
    engine.stopped().await;
    store.close().await;
    admin.close().await;
    drydock_tests::db::drop_postgres(&name).await;
}

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_start_before_the_fan_out_commits() {
        super::calls_start_before_the_fan_out_commits().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fan_out_drops_its_early_results_and_runs_again() {
        super::a_failed_fan_out_drops_its_early_results_and_runs_again().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deposed_leaders_fan_out_inserts_nothing() {
        super::a_deposed_leaders_fan_out_inserts_nothing(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deposed_leaders_early_fan_out_inserts_nothing() {
        super::a_deposed_leaders_fan_out_inserts_nothing(true).await;
    }
}
