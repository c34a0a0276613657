//! Leaving cleanly (`Engine::drain`, what `drydock serve` does on SIGTERM)
//! on both backends: the calls in flight finish and their results are
//! stored, the subtasks taken but not started go straight back to the
//! queue, calls still running at the end of the grace are cut and
//! requeued, and the next engine finishes the task with every node called
//! once (twice only for a cut call).
//!
//! The sim driver holds every `power_on_node` call until the key-value key
//! `go` exists, so the test decides when calls end (no timing).

use drydock::store::{ResultStatus, Store, TaskStatus, Uuid};
use drydock::tasks::{Drained, Engine, EngineConfig, TaskRequest};
use serde_json::json;
use std::time::Duration;

const NODES: usize = 40;
/// Calls in flight at once (the rest wait in the engine's backlog).
const SLOTS: usize = 4;
/// The same instance before and after (on SQLite there is only one).
const INSTANCE: &str = "drain-me";

fn cfg() -> EngineConfig {
    EngineConfig {
        instance_id: INSTANCE.into(),
        max_concurrency: SLOTS,
        retry_backoff: Duration::from_millis(10),
        poll_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    }
}

fn node(i: usize) -> String {
    format!("node-{i:03}")
}

/// Registers the nodes, starts an engine whose calls are held until `go`,
/// submits `power_on_node` over every node and waits until `SLOTS` calls
/// are in flight.
async fn held_task(store: &Store) -> (Engine, Uuid) {
    register(store, NODES).await;
    let all: Vec<String> = (0..NODES).map(node).collect();
    let all = all.join(",");
    let settings = [
        ("count_calls", "true"),
        ("hold_action", "power_on_node"),
        ("hold_nodes", all.as_str()),
        ("hold_until", "go"),
    ];
    let engine = drydock_tests::sim_engine_set(store.clone(), &settings, cfg()).await;
    let t = power_on_all(&engine).await;
    // In flight, and begun: each call counted itself (the counter is
    // written before the hold).
    drydock_tests::until("calls in flight", || async {
        let mut begun = 0;
        for i in 0..NODES {
            begun += calls(store, &node(i)).await;
        }
        engine.inflight() == SLOTS && begun == SLOTS as u64
    })
    .await;
    (engine, t.id)
}

/// Registers the sim nodes `node(0)` to `node(n - 1)`.
async fn register(store: &Store, n: usize) {
    for i in 0..n {
        let name = node(i);
        store
            .upsert_node(&name, &json!({"name": name, "oob": {"type": "sim"}}), None)
            .await
            .unwrap();
    }
}

/// Submits `power_on_node` over every registered node.
async fn power_on_all(engine: &Engine) -> drydock::store::TaskRecord {
    engine
        .submit(TaskRequest {
            action: "power_on_node".into(),
            created_by: Some("test".into()),
            ..TaskRequest::default()
        })
        .await
        .unwrap()
}

/// How many of `task`'s subtasks are in `status`.
async fn count(store: &Store, task: Uuid, status: TaskStatus) -> usize {
    let subs = store.subtasks(task).await.unwrap();
    subs.iter().filter(|s| s.status == status).count()
}

/// How often `power_on_node` ran on `node`.
async fn calls(store: &Store, node: &str) -> u64 {
    store
        .kv_get("sim", &format!("calls/power_on_node/{node}"))
        .await
        .unwrap()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A fresh engine of the same instance, with calls no longer held,
/// finishes the task: every node succeeded once.
async fn finish_elsewhere(store: &Store, task: Uuid) {
    let next =
        drydock_tests::sim_engine_set(store.clone(), &[("count_calls", "true")], cfg()).await;
    let done = next
        .wait_finished(task, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    assert_eq!(done.result_status, ResultStatus::Success, "{done:?}");
    assert_eq!(done.successes.len(), NODES);
    assert_eq!(store.subtasks(task).await.unwrap().len(), NODES);
    next.shutdown();
    next.stopped().await;
}

async fn calls_in_flight_finish_and_the_rest_go_back(store: Store) {
    let (engine, task) = held_task(&store).await;
    let draining = tokio::spawn({
        let engine = engine.clone();
        async move { engine.drain(Duration::from_secs(60)).await }
    });
    // What was taken but not started is back in the queue while the calls
    // in flight still run.
    let waiting = NODES - SLOTS;
    drydock_tests::until("the backlog handed back", || async {
        count(&store, task, TaskStatus::Queued).await == waiting
    })
    .await;
    assert_eq!(count(&store, task, TaskStatus::Running).await, SLOTS);
    assert!(!draining.is_finished());
    // The calls end; their results are stored before the drain returns.
    store.kv_set("sim", "go", "1").await.unwrap();
    let drained = draining.await.unwrap();
    assert_eq!(
        drained,
        Drained {
            in_flight: SLOTS,
            cut: 0,
            flushed: true,
            requeued: 0,
            departed: true,
        }
    );
    let subs = store.subtasks(task).await.unwrap();
    let done: Vec<_> = subs
        .iter()
        .filter(|s| s.status == TaskStatus::Complete)
        .collect();
    assert_eq!(done.len(), SLOTS, "{subs:?}");
    assert!(
        done.iter()
            .all(|s| s.result_status == ResultStatus::Success)
    );
    assert_eq!(count(&store, task, TaskStatus::Queued).await, waiting);
    assert!(subs.iter().all(|s| s.status != TaskStatus::Running));
    // The engine stopped; not even the heartbeat is left.
    engine.stopped().await;
    assert!(
        store
            .live_instances(Duration::from_secs(3600))
            .await
            .unwrap()
            .iter()
            .all(|(id, _)| id != INSTANCE)
    );
    // Nothing ran twice.
    finish_elsewhere(&store, task).await;
    for i in 0..NODES {
        assert_eq!(calls(&store, &node(i)).await, 1, "{}", node(i));
    }
}

async fn calls_past_the_grace_are_cut_and_requeued(store: Store) {
    let (engine, task) = held_task(&store).await;
    let drained = engine.drain(Duration::from_millis(200)).await;
    assert_eq!(
        drained,
        Drained {
            in_flight: SLOTS,
            cut: SLOTS,
            flushed: true,
            requeued: SLOTS as u64,
            departed: true,
        }
    );
    assert_eq!(count(&store, task, TaskStatus::Queued).await, NODES);
    // Only the cut calls run again.
    finish_elsewhere(&store, task).await;
    let mut twice = 0;
    for i in 0..NODES {
        match calls(&store, &node(i)).await {
            1 => {}
            2 => twice += 1,
            n => panic!("{} ran {n} times", node(i)),
        }
    }
    assert_eq!(twice, SLOTS);
}

drydock_tests::cases! {
    calls_in_flight_finish_and_the_rest_go_back => calls_in_flight_finish_and_the_rest_go_back,
    calls_past_the_grace_are_cut_and_requeued => calls_past_the_grace_are_cut_and_requeued,
}

/// A `drydock serve` on SQLite whose sim driver holds `power_on_node` on
/// `nodes` until the key `go` exists (and counts its calls), with the API
/// token `TOKEN` and `[http] linger_ms = linger_ms`.
async fn server(dir: &std::path::Path, linger_ms: u64) -> drydock::server::Server {
    use drydock::config::{Config, DriverSettings, TokenConfig};
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        tokens: vec![TokenConfig::inline("operator", "operator", TOKEN)],
        ..Config::default()
    };
    cfg.http.linger_ms = linger_ms;
    let nodes: Vec<String> = (0..SLOTS).map(node).collect();
    cfg.drivers.insert(
        "sim".into(),
        DriverSettings {
            settings: [
                ("count_calls", "true".to_string()),
                ("hold_action", "power_on_node".to_string()),
                ("hold_nodes", nodes.join(",")),
                ("hold_until", "go".to_string()),
            ]
            .map(|(k, v)| (k.to_string(), v))
            .into(),
            ..DriverSettings::default()
        },
    );
    drydock::server::start(cfg).await.expect("drydock starts")
}

const TOKEN: &str = "drain-test-token-0123456789";

/// `GET /api/v1.0/health`'s status and `Retry-After`, or None once the
/// server no longer accepts connections.
async fn health(http: &reqwest::Client, base: &str) -> Option<(u16, Option<String>)> {
    let r = http.get(format!("{base}/health")).send().await.ok()?;
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    Some((r.status().as_u16(), retry))
}

/// SIGTERM's drain through `drydock serve`: while calls in flight finish,
/// the API still serves (a poller reads its task, a client submits one)
/// and `/health` answers 503 so a load balancer sends requests elsewhere;
/// the listener closes only once the drain has ended.
#[tokio::test]
async fn the_api_serves_while_the_instance_drains() {
    let dir = drydock_tests::temp_dir("drydock-drain-api");
    let server = server(&dir, 0).await;
    let (engine, store) = (server.engine.clone(), server.engine.store().clone());
    register(&store, SLOTS).await;
    let base = format!("http://{}/api/v1.0", server.addr);
    let http = reqwest::Client::new();
    assert_eq!(health(&http, &base).await, Some((204, None)));
    let task = power_on_all(&engine).await;
    drydock_tests::until("calls in flight", || async { engine.inflight() == SLOTS }).await;
    let stopping = tokio::spawn(server.shutdown());
    drydock_tests::until("/health saying the instance drains", || async {
        health(&http, &base).await.map(|(s, _)| s) == Some(503)
    })
    .await;
    assert_eq!(
        health(&http, &base).await,
        Some((503, Some("1".into()))),
        "503 with Retry-After while draining"
    );
    // Reads are served: the task is still running.
    let r = http
        .get(format!("{base}/tasks/{}", task.id))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "running", "{body}");
    // A task submitted now is stored, queued for the next leader (this
    // instance schedules nothing more).
    let r = http
        .post(format!("{base}/tasks"))
        .bearer_auth(TOKEN)
        .json(&json!({"action": "power_off_node"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let submitted: serde_json::Value = r.json().await.unwrap();
    let late: Uuid = submitted["task_id"].as_str().unwrap().parse().unwrap();
    assert!(!stopping.is_finished());
    // The held calls end; the drain ends; then the listener closes.
    store.kv_set("sim", "go", "1").await.unwrap();
    stopping.await.unwrap().unwrap();
    assert_eq!(health(&http, &base).await, None, "no longer listening");
    let done = store.get_task(task.id).await.unwrap().unwrap();
    let subs = store.subtasks(task.id).await.unwrap();
    assert!(
        subs.iter().all(|s| s.status == TaskStatus::Complete),
        "{done:?} {subs:?}"
    );
    let late = store.get_task(late).await.unwrap().unwrap();
    assert_eq!(late.status, TaskStatus::Queued, "{late:?}");
}

/// `[http] linger_ms`: with nothing to drain, the API still serves for the
/// linger, `/health` answering 503, before the listener closes.
#[tokio::test]
async fn the_api_lingers_after_a_stop_for_the_load_balancer() {
    let dir = drydock_tests::temp_dir("drydock-drain-linger");
    let linger = Duration::from_millis(1500);
    let server = server(&dir, linger.as_millis() as u64).await;
    let base = format!("http://{}/api/v1.0", server.addr);
    let http = reqwest::Client::new();
    assert_eq!(health(&http, &base).await, Some((204, None)));
    let began = std::time::Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    drydock_tests::until("/health saying the instance drains", || async {
        health(&http, &base).await.map(|(s, _)| s) == Some(503)
    })
    .await;
    let r = http.get(format!("{base}/versions")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    stopping.await.unwrap().unwrap();
    assert!(began.elapsed() >= linger, "{:?}", began.elapsed());
    assert_eq!(health(&http, &base).await, None, "no longer listening");
}
