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
    for i in 0..NODES {
        let name = node(i);
        store
            .upsert_node(&name, &json!({"name": name, "oob": {"type": "sim"}}), None)
            .await
            .unwrap();
    }
    let all: Vec<String> = (0..NODES).map(node).collect();
    let all = all.join(",");
    let settings = [
        ("count_calls", "true"),
        ("hold_action", "power_on_node"),
        ("hold_nodes", all.as_str()),
        ("hold_until", "go"),
    ];
    let engine = drydock_tests::sim_engine_set(store.clone(), &settings, cfg()).await;
    let t = engine
        .submit(TaskRequest {
            action: "power_on_node".into(),
            created_by: Some("test".into()),
            ..TaskRequest::default()
        })
        .await
        .unwrap();
    // In flight, and begun: each call counted itself (the counter is
    // written before the hold).
    wait_for("calls in flight", || async {
        let mut begun = 0;
        for i in 0..NODES {
            begun += calls(store, &node(i)).await;
        }
        engine.inflight() == SLOTS && begun == SLOTS as u64
    })
    .await;
    (engine, t.id)
}

/// Polls `pred` until it holds (at most 30 s).
async fn wait_for<F, Fut>(what: &str, pred: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while !pred().await {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    wait_for("the backlog handed back", || async {
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
