//! A driver's key-value quota in the engine at its exact limit, on both
//! backends: every key the limit allows is given, however the engine's
//! re-reads of the driver's usage fall between its writes.
//!
//! The engine counts a driver's usage once per driver (the ledger) and
//! reads it again from the writer (stored plus pending) every
//! `kv_usage_refresh`; here every write re-reads, so each write meets a
//! read. Two ways of counting a write twice were found in that read: a
//! write the writer already held whose call had not yet settled its
//! reservation (counted pending and reserved), and a pending rewrite of a
//! stored key (counted as a new key). Either refused the last new keys.

use drydock::drivers::DriverLimits;
use drydock::store::{ResultStatus, Store};
use drydock::tasks::{EngineConfig, TaskRequest};
use serde_json::json;
use std::time::Duration;

/// Nodes in the task; also the driver's `kv_keys`.
const NODES: usize = 400;

/// Half the nodes' power keys are stored before the task, so its writes
/// are rewrites and new keys interleaved, and the new keys bring the driver
/// to exactly its limit.
async fn new_keys_beside_rewrites_reach_the_exact_limit(store: Store) {
    for i in 0..NODES {
        let name = format!("node-{i:03}");
        store
            .upsert_node(&name, &json!({"name": name, "oob": {"type": "sim"}}), None)
            .await
            .unwrap();
        if i % 2 == 0 {
            store
                .kv_set("sim", &format!("power/{name}"), "off")
                .await
                .unwrap();
        }
    }
    let limits = DriverLimits {
        kv_keys: NODES as u64,
        ..Default::default()
    };
    let engine = drydock_tests::sim_engine(
        store.clone(),
        limits,
        32,
        EngineConfig {
            max_concurrency: 32,
            write_batch: 8,
            write_queue: 2,
            kv_usage_refresh: Duration::ZERO,
            retry_backoff: Duration::from_millis(10),
            poll_interval: Duration::from_millis(50),
            ..EngineConfig::default()
        },
    )
    .await;
    let t = engine
        .submit(TaskRequest {
            action: "power_on_node".into(),
            created_by: Some("test".into()),
            ..TaskRequest::default()
        })
        .await
        .unwrap();
    let done = engine
        .wait_finished(t.id, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(
        done.result_status,
        ResultStatus::Success,
        "{} failed, e.g. {:?}",
        done.failures.len(),
        done.result_message
    );
    assert_eq!(store.kv_usage("sim").await.unwrap().0, NODES as u64);
    engine.shutdown();
    engine.stopped().await;
}

drydock_tests::cases! {
    new_keys_beside_rewrites_reach_the_exact_limit => new_keys_beside_rewrites_reach_the_exact_limit,
}
