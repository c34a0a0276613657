//! Hostile drivers (issue 13, item 4): the `hostile` guest floods every host
//! service it can reach; each quota holds, the guest gets an error it can
//! handle (the call still succeeds and says how far it got), and the task
//! gets exactly one message per quota hit.

use drydock::drivers::{
    Action, CallError, Driver, DriverConfig, DriverLimits, DriverSet, EgressGrant, Runtime,
    RuntimeConfig,
};
use drydock::store::{Store, TaskStatus};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use drydock_tests::{Call, node};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn runtime(limits: DriverLimits) -> Runtime {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-compile-cache");
    let cache = drydock::drivers::CompileCache::open_path(&dir).expect("compile cache dir");
    Runtime::new(
        RuntimeConfig {
            max_concurrent_calls: 8,
            limits,
            ..RuntimeConfig::default()
        },
        Some(cache),
    )
    .expect("driver runtime")
}

fn settings(s: &[(&str, &str)], egress: &[&str]) -> Arc<DriverConfig> {
    Arc::new(DriverConfig {
        settings: s
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        egress: egress
            .iter()
            .map(|g| g.parse::<EgressGrant>().unwrap())
            .collect(),
        ..DriverConfig::default()
    })
}

/// Runs one attack; returns the guest's answer and the call (its services).
async fn attack(rt: &Runtime, d: &Driver, call: &Call) -> Result<Value, CallError> {
    let v = call
        .run(rt, d, Action::InterrogateOob, Some(&node("n1", "hostile")))
        .await?;
    Ok(v["raw"].clone())
}

async fn hostile(rt: &Runtime) -> Driver {
    drydock_tests::load(rt, drydock_tests::guests::HOSTILE).await
}

/// The messages naming a limit.
fn notices(call: &Call, limit: &str) -> Vec<String> {
    call.statuses()
        .into_iter()
        .filter(|m| m.contains("reached its limit") && m.contains(limit))
        .collect()
}

#[tokio::test]
async fn key_value_keys_and_bytes_per_driver_hold() {
    let rt = runtime(DriverLimits {
        kv_keys: 50,
        kv_bytes: 20_000,
        ..DriverLimits::default()
    });
    let d = hostile(&rt).await;
    let call = Call {
        config: settings(&[("attack", "kv"), ("count", "1000")], &[]),
        ..Call::default()
    };
    let answer = attack(&rt, &d, &call)
        .await
        .expect("the guest handles refusals");
    assert_eq!(answer["done"], 50, "{answer}");
    assert_eq!(answer["limit"], "kv_keys");
    assert_eq!(answer["max"], 50);
    assert_eq!(call.services.kv_pairs("hostile").len(), 50);
    assert_eq!(
        notices(&call, "kv_keys = 50").len(),
        1,
        "{:?}",
        call.statuses()
    );

    // The next call may rewrite its 50 keys, not add one (and is told
    // again).
    let answer = attack(&rt, &d, &call).await.unwrap();
    assert_eq!(answer["done"], 50, "{answer}");
    assert_eq!(answer["limit"], "kv_keys");
    assert_eq!(call.services.kv_pairs("hostile").len(), 50);
    assert_eq!(notices(&call, "kv_keys = 50").len(), 2);

    // Bytes: 1,000-byte values, 20,000 bytes for the driver.
    let call = Call {
        config: settings(
            &[("attack", "kv"), ("count", "1000"), ("size", "1000")],
            &[],
        ),
        ..Call::default()
    };
    let answer = attack(&rt, &d, &call).await.unwrap();
    // Each key holds 12 + 1,000 bytes.
    assert_eq!(answer["done"], 19, "{answer}");
    assert_eq!(answer["limit"], "kv_bytes");
    let held: usize = call
        .services
        .kv_pairs("hostile")
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    assert!(held <= 20_000, "{held}");
    assert_eq!(notices(&call, "kv_bytes").len(), 1);
}

#[tokio::test]
async fn key_value_writes_per_call_hold() {
    let rt = runtime(DriverLimits {
        kv_writes_per_call: 100,
        ..DriverLimits::default()
    });
    let d = hostile(&rt).await;
    let call = Call {
        config: settings(&[("attack", "kv-rewrite"), ("count", "5000")], &[]),
        ..Call::default()
    };
    let answer = attack(&rt, &d, &call).await.unwrap();
    assert_eq!(answer["done"], 100, "{answer}");
    assert_eq!(answer["refused"], 4900);
    assert_eq!(answer["limit"], "kv_writes_per_call");
    assert_eq!(call.statuses().len(), 1, "{:?}", call.statuses());
}

/// `kv-compare-and-swap`: a swap that lands counts as a write (and is
/// refused past `kv_writes_per_call`, writing nothing); a comparison that
/// fails writes nothing and costs no write.
#[tokio::test]
async fn key_value_swaps_count_as_writes_only_when_they_land() {
    let rt = runtime(DriverLimits {
        kv_writes_per_call: 100,
        ..DriverLimits::default()
    });
    let d = hostile(&rt).await;
    let call = Call {
        config: settings(&[("attack", "kv-swap"), ("count", "500")], &[]),
        ..Call::default()
    };
    let answer = attack(&rt, &d, &call).await.unwrap();
    assert_eq!(answer["done"], 100, "{answer}");
    assert_eq!(answer["refused"], 400, "{answer}");
    assert_eq!(answer["mismatched"], 500, "{answer}");
    assert_eq!(answer["limit"], "kv_writes_per_call");
    assert_eq!(answer["value"], "v99");
    assert_eq!(call.services.kv_pairs("hostile")["the-key"], "v99");
}

#[tokio::test]
async fn messages_per_call_hold_and_are_cut() {
    let rt = runtime(DriverLimits::default());
    let d = hostile(&rt).await;
    let call = Call {
        config: settings(
            &[("attack", "messages"), ("count", "5000"), ("size", "20000")],
            &[],
        ),
        ..Call::default()
    };
    let answer = attack(&rt, &d, &call).await.unwrap();
    assert_eq!(answer["done"], 1000, "{answer}");
    assert_eq!(answer["limit"], "messages_per_call");
    let statuses = call.statuses();
    // 1,000 messages and one notice.
    assert_eq!(statuses.len(), 1001);
    assert_eq!(notices(&call, "messages_per_call = 1000").len(), 1);
    assert!(statuses.iter().all(|m| m.len() <= (8 << 10) + 3));
}

#[tokio::test]
async fn egress_denials_count_as_messages() {
    let rt = runtime(DriverLimits {
        messages_per_call: 50,
        ..DriverLimits::default()
    });
    let d = hostile(&rt).await;
    let call = Call {
        // Nothing granted: every request is denied before any connection.
        config: settings(
            &[
                ("attack", "egress"),
                ("count", "1100"),
                ("url", "http://10.255.255.1:9/"),
            ],
            &[],
        ),
        ..Call::default()
    };
    let answer = attack(&rt, &d, &call).await.unwrap();
    assert_eq!(answer["refused"], 1100, "{answer}");
    let statuses = call.statuses();
    assert_eq!(statuses.len(), 51, "{statuses:?}");
    assert_eq!(
        statuses
            .iter()
            .filter(|m| m.contains("egress denied"))
            .count(),
        50
    );
    assert_eq!(notices(&call, "messages_per_call = 50").len(), 1);
}

#[tokio::test]
async fn log_lines_per_call_hold() {
    let rt = runtime(DriverLimits {
        log_lines_per_call: 100,
        ..DriverLimits::default()
    });
    let d = hostile(&rt).await;
    let call = Call {
        config: settings(&[("attack", "logs"), ("count", "5000")], &[]),
        ..Call::default()
    };
    let answer = attack(&rt, &d, &call).await.unwrap();
    assert_eq!(answer["done"], 100, "{answer}");
    assert_eq!(answer["limit"], "log_lines_per_call");
    assert_eq!(notices(&call, "log_lines_per_call = 100").len(), 1);
    assert_eq!(call.statuses().len(), 1);
}

/// The SDK asks which log levels the host records (WIT 0.2.0
/// `log-threshold`) and sends no line below: with no line allowed per call,
/// the sim's one debug line of `available_images` is not even sent while
/// nothing records it (no limit notice), and is sent (and refused, with a
/// notice) once `driver::sim=debug` is recorded.
#[tokio::test]
async fn the_sdk_sends_no_log_line_below_the_recorded_level() {
    let rt = runtime(DriverLimits {
        log_lines_per_call: 0,
        ..DriverLimits::default()
    });
    let d = rt
        .load("sim", drydock::bundled::SIM)
        .await
        .expect("load sim");
    let quiet = Call::default();
    quiet
        .run(&rt, &d, Action::AvailableImages, None)
        .await
        .unwrap();
    assert_eq!(quiet.statuses(), Vec::<String>::new());

    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("driver::sim=debug"))
        .with_writer(std::io::sink)
        .finish();
    let _recording = tracing::subscriber::set_default(subscriber);
    let heard = Call::default();
    heard
        .run(&rt, &d, Action::AvailableImages, None)
        .await
        .unwrap();
    assert_eq!(notices(&heard, "log_lines_per_call = 0").len(), 1);
}

#[tokio::test]
async fn build_data_per_call_holds() {
    let rt = runtime(DriverLimits {
        build_data_per_call: 64,
        build_data_bytes_per_call: 4 << 20,
        ..DriverLimits::default()
    });
    let d = hostile(&rt).await;
    let call = Call {
        config: settings(&[("attack", "build-data"), ("count", "1000")], &[]),
        ..Call::default()
    };
    let answer = attack(&rt, &d, &call).await.unwrap();
    assert_eq!(answer["done"], 64, "{answer}");
    assert_eq!(answer["limit"], "build_data_per_call");
    assert_eq!(call.services.build_data().len(), 64);
    assert_eq!(notices(&call, "build_data_per_call = 64").len(), 1);

    let size = (1 << 20).to_string();
    let call = Call {
        config: settings(
            &[("attack", "build-data"), ("count", "10"), ("size", &size)],
            &[],
        ),
        ..Call::default()
    };
    let answer = attack(&rt, &d, &call).await.unwrap();
    assert_eq!(answer["done"], 4, "{answer}");
    assert_eq!(answer["limit"], "build_data_bytes_per_call");
    assert_eq!(call.services.build_data().len(), 4);
    assert_eq!(call.statuses().len(), 1);
}

#[tokio::test]
async fn driver_error_text_is_cut() {
    let rt = runtime(DriverLimits::default());
    let d = hostile(&rt).await;
    let size = (8 << 20).to_string();
    let call = Call {
        config: settings(&[("attack", "error"), ("size", &size)], &[]),
        ..Call::default()
    };
    let err = attack(&rt, &d, &call).await.unwrap_err();
    let CallError::Driver { error, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(error.message.len(), (8 << 10) + "…".len());
    assert!(err.to_string().len() < 9 << 10);
}

/// A peer that answers every request with headers and a body it never
/// finishes, so each connection stays open until the client drops it.
async fn holding_peer() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
                    )
                    .await;
                // Hold the connection until the client goes.
                let _ = s.read(&mut buf).await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_requests_per_call_and_per_driver_hold() {
    let (port, peer) = holding_peer().await;
    let url = format!("http://127.0.0.1:{port}/");
    let grant = format!("127.0.0.1:{port}");
    for (limits, limit, max) in [
        (
            DriverLimits {
                requests_per_call: 4,
                ..DriverLimits::default()
            },
            "requests_per_call",
            4,
        ),
        (
            DriverLimits {
                requests_per_call: 100,
                requests_per_driver: 6,
                ..DriverLimits::default()
            },
            "requests_per_driver",
            6,
        ),
    ] {
        let rt = runtime(limits);
        let d = hostile(&rt).await;
        let call = Call {
            config: settings(
                &[("attack", "connections"), ("count", "200"), ("url", &url)],
                &[&grant],
            ),
            ..Call::default()
        };
        let answer = attack(&rt, &d, &call).await.expect("refusals are handled");
        assert_eq!(answer["done"], max, "{answer}");
        assert_eq!(answer["refused"], 200 - max);
        assert_eq!(
            notices(&call, &format!("{limit} = {max}")).len(),
            1,
            "{:?}",
            call.statuses()
        );
        // Once the call is over its connections are gone: another call gets
        // as many again.
        let answer = attack(&rt, &d, &call).await.unwrap();
        assert_eq!(answer["done"], max, "{answer}");
    }
    peer.abort();
}

// ------------------------------------------------------------------ engine

async fn engine(store: Store, rt: Runtime, s: &[(&str, &str)], cfg: EngineConfig) -> Engine {
    let rt = Arc::new(rt);
    let d = hostile(&rt).await;
    let mut set = DriverSet::new();
    set.add(d, settings(s, &[])).unwrap();
    store
        .upsert_node(
            "n1",
            &json!({"name": "n1", "oob": {"type": "hostile"}}),
            None,
        )
        .await
        .unwrap();
    Engine::start(store, rt, Arc::new(set), cfg).await.unwrap()
}

fn interrogate() -> TaskRequest {
    TaskRequest {
        action: "interrogate_oob".into(),
        created_by: Some("test".into()),
        ..TaskRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_gets_one_message_per_quota_and_a_node_keeps_its_newest_build_data() {
    let store = drydock_tests::db::sqlite().await;
    let rt = runtime(DriverLimits {
        messages_per_call: 20,
        build_data_per_node: 5,
        ..DriverLimits::default()
    });
    let e = engine(
        store.clone(),
        rt,
        &[("attack", "build-data"), ("count", "100")],
        EngineConfig::default(),
    )
    .await;
    let t = e.submit(interrogate()).await.unwrap();
    let done = e
        .wait_finished(t.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    let ids = store.subtask_ids(t.id).await.unwrap();
    let msgs = store.messages_for_tasks(&ids).await.unwrap();
    let notices: Vec<_> = msgs
        .iter()
        .filter(|m| m.message.contains("reached its limit"))
        .collect();
    assert_eq!(notices.len(), 1, "{msgs:?}");
    assert!(notices[0].message.contains("build_data_per_call = 64"));
    // 64 items and the interrogation result were stored; 5 are kept, the
    // interrogation result (the newest) among them.
    let kept = store.build_data_for_node("n1", false).await.unwrap();
    assert_eq!(kept.len(), 5);
    assert_eq!(kept[0].generator, "interrogate_oob");
    e.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_writing_faster_than_the_database_drains_waits() {
    use sqlx::Connection;
    let name = drydock_tests::db::unique("drydock_test");
    let url =
        drydock::store::testing::create_pg_database(&drydock_tests::db::pg_admin_url(), &name)
            .await
            .expect("Postgres is needed for this test");
    let store = Store::connect(&url).await.unwrap();
    let queue = 8;
    let rt = runtime(DriverLimits {
        kv_writes_per_call: 100_000,
        ..DriverLimits::default()
    });
    let e = engine(
        store.clone(),
        rt,
        &[("attack", "kv"), ("count", "2000")],
        EngineConfig {
            write_queue: queue,
            write_batch: queue,
            ..EngineConfig::default()
        },
    )
    .await;
    // The database stops taking key-value writes (reads still work).
    let mut blocker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE driver_kv IN EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();

    let t = e.submit(interrogate()).await.unwrap();
    // The writer's queue fills up...
    let mut waited = Duration::ZERO;
    loop {
        let (queued, _) = e.writes_waiting();
        if queued == queue {
            break;
        }
        assert!(waited < Duration::from_secs(60), "the queue never filled");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    // ...and the driver waits: what is held in memory stays bounded by the
    // queue (plus the batch the writer is stuck on and the one write
    // waiting to queue), far below the 2,000 writes it wants to make.
    let bound = 2 * queue + 1;
    for _ in 0..20 {
        let (queued, pending) = e.writes_waiting();
        assert!(
            queued <= queue && pending <= bound,
            "{queued} queued, {pending} pending"
        );
        tokio::task::yield_now().await;
    }
    let running = store.get_task(t.id).await.unwrap().unwrap();
    assert_ne!(running.status, TaskStatus::Complete);

    // The database drains again: every write lands, the task completes.
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    let done = e
        .wait_finished(t.id, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    assert_eq!(store.kv_usage("hostile").await.unwrap().0, 2000);
    e.shutdown();
    drop(blocker);
    drydock_tests::db::drop_postgres(&name).await;
}

/// Two calls of one driver at once, each allowed 100,000 writes, through
/// the engine on Postgres (as the hostile bench runs it, where the fleet
/// sync's interrogation ran beside the task's): together they never hold
/// more than `kv_keys`. Each call used to count from the usage it read
/// first, so each took `kv_keys` keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_of_one_driver_share_its_kv_keys() {
    let (store, name) = drydock_tests::db::postgres().await;
    let rt = runtime(DriverLimits {
        kv_keys: 3_000,
        kv_writes_per_call: 100_000,
        ..DriverLimits::default()
    });
    store
        .upsert_node(
            "n2",
            &json!({"name": "n2", "oob": {"type": "hostile"}}),
            None,
        )
        .await
        .unwrap();
    let e = engine(
        store.clone(),
        rt,
        &[("attack", "kv"), ("count", "10000"), ("size", "100")],
        EngineConfig::default(),
    )
    .await;
    let t = e.submit(interrogate()).await.unwrap();
    let done = e
        .wait_finished(t.id, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    // Each node's call writes its own keys (`n1-key-…`, `n2-key-…`).
    let mut total = 0;
    for node in ["n1", "n2"] {
        let kept = store.build_data_for_node(node, false).await.unwrap();
        let result = kept
            .iter()
            .find(|b| b.generator == "interrogate_oob")
            .expect("the interrogation result");
        let raw: Value = serde_json::from_str(&result.content).unwrap();
        let answer = &raw["raw"];
        assert_eq!(answer["limit"], "kv_keys", "{answer}");
        total += answer["done"].as_u64().unwrap();
    }
    // Every accepted write landed, and together they stayed within the
    // limit. A count read from the store again (every second) may be high,
    // never low: a pending rewrite counts as a new key, and on a slow
    // database a writer batch (at most `write_batch`, 1,000) may be counted
    // twice, so the calls may be refused up to that much early.
    assert!((2_000..=3_000).contains(&total), "{total} keys accepted");
    assert_eq!(store.kv_usage("hostile").await.unwrap().0, total);
    let ids = store.subtask_ids(t.id).await.unwrap();
    let msgs = store.messages_for_tasks(&ids).await.unwrap();
    let notices = msgs
        .iter()
        .filter(|m| m.message.contains("kv_keys = 3000"))
        .count();
    assert_eq!(notices, 2, "one per call: {msgs:?}");
    e.shutdown();
    drydock_tests::db::drop_postgres(&name).await;
}
