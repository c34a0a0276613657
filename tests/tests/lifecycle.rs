//! Driver lifecycle (issue 7): signed packages, install through the API,
//! activation and rollback under a continuous load of sim driver calls with
//! zero failed calls, refusals of unsigned, tampered and wrong-key uploads,
//! and two instances on one Postgres.
//!
//! Each test prints its figures (`cargo test ... -- --nocapture`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use drydock::api::{ApiToken, AppState, Auth, Role, router};
use drydock::drivers::package::{self, TrustedKey};
use drydock::drivers::{DriverConfig, DriverServices, DriverSet, MemoryServices, Runtime};
use drydock::lifecycle::{Lifecycle, LifecycleConfig};
use drydock::store::Store;
use drydock::tasks::{Engine, EngineConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN: &str = "admin-lifecycle-token";
const VIEWER: &str = "viewer-lifecycle-token";

use drydock_tests::packages::{key, sim_package};

struct Host {
    router: Router,
    runtime: Arc<Runtime>,
    drivers: Arc<DriverSet>,
    lifecycle: Arc<Lifecycle>,
    engine: Engine,
}

async fn host(store: Store, trusted: Vec<TrustedKey>, poll: Duration) -> Host {
    host_with(store, trusted, poll, &[]).await
}

/// A runtime and a driver set holding the bundled sim with these settings.
async fn bundled_sim(settings: &[(&str, &str)]) -> (Arc<Runtime>, Arc<DriverSet>) {
    let runtime = Arc::new(drydock_tests::runtime());
    let sim = runtime
        .load("bundled:sim", drydock::bundled::SIM)
        .await
        .expect("sim");
    let mut set = DriverSet::new();
    let config = DriverConfig {
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..DriverConfig::default()
    };
    set.add(sim, Arc::new(config)).unwrap();
    (runtime, Arc::new(set))
}

/// A host whose sim grant has these settings.
async fn host_with(
    store: Store,
    trusted: Vec<TrustedKey>,
    poll: Duration,
    settings: &[(&str, &str)],
) -> Host {
    let (runtime, drivers) = bundled_sim(settings).await;
    let lifecycle = Lifecycle::new(
        store.clone(),
        runtime.clone(),
        drivers.clone(),
        LifecycleConfig {
            trusted_keys: trusted,
            allow_unsigned: false,
            poll,
            ..LifecycleConfig::default()
        },
    );
    let engine = Engine::start(
        store,
        runtime.clone(),
        drivers.clone(),
        EngineConfig::default(),
    )
    .await
    .expect("engine");
    let token = |name: &str, token: &str, role| ApiToken {
        name: name.into(),
        token: token.into(),
        role,
    };
    let state = AppState::new(
        engine.clone(),
        Arc::new(Auth::new(vec![
            token("admin", ADMIN, Role::Admin),
            token("viewer", VIEWER, Role::Viewer),
        ])),
    )
    .with_lifecycle(lifecycle.clone());
    let router = router(state);
    Host {
        router,
        runtime,
        drivers,
        lifecycle,
        engine,
    }
}

impl Host {
    async fn send(&self, method: &str, path: &str, token: &str, body: Body) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("/api/v1.0{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v)
    }

    async fn upload(&self, bytes: Vec<u8>) -> (StatusCode, Value) {
        self.send("POST", "/drivers", ADMIN, Body::from(bytes))
            .await
    }

    async fn activate(&self, version: &str) -> (StatusCode, Value) {
        self.send(
            "POST",
            "/drivers/sim/activate",
            ADMIN,
            Body::from(json!({ "version": version }).to_string()),
        )
        .await
    }
}

/// One call record: when it started, which component served it.
type Record = (Instant, String);

/// Drives sim `power_on_node` calls from `workers` tasks until `stop`,
/// looking the driver up per call as the engine does.
fn load(
    h: &Host,
    workers: usize,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Vec<Record>>> {
    (0..workers)
        .map(|w| {
            let (drivers, runtime, stop, failed) = (
                h.drivers.clone(),
                h.runtime.clone(),
                stop.clone(),
                failed.clone(),
            );
            tokio::spawn(async move {
                let node = drydock_tests::node(&format!("n{w}"), "sim");
                let services: Arc<dyn DriverServices> = Arc::new(MemoryServices::new());
                let mut out = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let (r, sha) = drydock_tests::power_on_current(
                        &runtime,
                        &drivers,
                        &node,
                        services.clone(),
                    )
                    .await;
                    if let Err(e) = r {
                        eprintln!("call failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    out.push((started, sha));
                }
                out
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_and_rollback_under_load_fail_no_call() {
    let (secret, trusted) = key();
    let h = host(
        drydock_tests::db::sqlite().await,
        vec![trusted],
        Duration::from_secs(1),
    )
    .await;
    let v1 = sim_package("1.0.0", Some(&secret), 0);
    let v2 = sim_package("2.0.0", Some(&secret), 0);
    let sha = |b: &[u8]| sha256_hex(b);
    let (sha1, sha2) = (sha(&v1), sha(&v2));

    let (s, body) = h.upload(v1.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["signer"], "drydock-tests");
    assert_eq!(h.activate("1.0.0").await.0, StatusCode::OK);
    assert_eq!(h.drivers.get("sim").unwrap().driver.sha256(), sha1);

    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let load_started = Instant::now();
    let workers = load(&h, 8, stop.clone(), failed.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Upgrade: upload and activate v2 while calls run.
    let t0 = Instant::now();
    let (s, body) = h.upload(v2.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = h.activate("2.0.0").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let upgraded = Instant::now();
    let upload_to_active = upgraded - t0;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Rollback: back to v1, warm.
    let t1 = Instant::now();
    let (s, body) = h
        .send("POST", "/drivers/sim/rollback", ADMIN, Body::empty())
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["version"], "1.0.0");
    let rolled_back = Instant::now();
    let rollback_time = rolled_back - t1;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);

    let mut records = Vec::new();
    for w in workers {
        records.extend(w.await.unwrap());
    }
    let elapsed = load_started.elapsed();
    let mut per_sha: HashMap<&str, usize> = HashMap::new();
    for (_, s) in &records {
        *per_sha.entry(s.as_str()).or_default() += 1;
    }
    // The switch is visible: calls started after the activation answered
    // run v2 until the rollback began, and v1 after it answered.
    let wrong_after_upgrade = records
        .iter()
        .filter(|(t, s)| *t > upgraded && *t < t1 && *s != sha2)
        .count();
    let wrong_after_rollback = records
        .iter()
        .filter(|(t, s)| *t > rolled_back && *s != sha1)
        .count();
    let rate = records.len() as f64 / elapsed.as_secs_f64();
    println!(
        "lifecycle under load: {} calls in {:.1} s ({rate:.0}/s), failed {}, v1 {} calls, v2 {} calls; \
         upload+activate {:.1} ms, rollback {:.1} ms",
        records.len(),
        elapsed.as_secs_f64(),
        failed.load(Ordering::Relaxed),
        per_sha.get(sha1.as_str()).unwrap_or(&0),
        per_sha.get(sha2.as_str()).unwrap_or(&0),
        upload_to_active.as_secs_f64() * 1e3,
        rollback_time.as_secs_f64() * 1e3,
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "calls failed during the swaps"
    );
    assert!(per_sha.get(sha1.as_str()).copied().unwrap_or(0) > 0);
    assert!(per_sha.get(sha2.as_str()).copied().unwrap_or(0) > 0);
    assert_eq!(
        wrong_after_upgrade, 0,
        "calls on the old version after activation"
    );
    assert_eq!(wrong_after_rollback, 0, "calls on v2 after rollback");

    // What GET /drivers/sim shows.
    let (s, d) = h.send("GET", "/drivers/sim", VIEWER, Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["active"]["version"], "1.0.0");
    assert_eq!(d["active"]["previous"], "2.0.0");
    assert!(
        d["active"]["message"]
            .as_str()
            .unwrap()
            .contains("rolled back from 2.0.0 to 1.0.0")
    );
    assert_eq!(d["versions"].as_array().unwrap().len(), 2);
    assert!(d["loaded"]["calls"].as_u64().unwrap() > 0);
    assert_eq!(d["loaded"]["errors"], 0);
    // Asked for 10.0.0.0/8:443 and 128 MiB; granted nothing and 64 MiB.
    assert_eq!(d["not_granted"]["outbound"], json!(["10.0.0.0/8:443"]));
    assert_eq!(d["not_granted"]["memory_mib"], 128);
    assert_eq!(d["granted"]["memory_mib"], 64);

    // Deleting: the active version is refused, the inactive one goes.
    let (s, _) = h
        .send(
            "DELETE",
            "/drivers/sim/versions/1.0.0",
            ADMIN,
            Body::empty(),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = h
        .send(
            "DELETE",
            "/drivers/sim/versions/2.0.0",
            ADMIN,
            Body::empty(),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    h.engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_tampered_and_wrong_key_uploads_are_refused() {
    let (secret, trusted) = key();
    let h = host(
        drydock_tests::db::sqlite().await,
        vec![trusted],
        Duration::from_secs(1),
    )
    .await;
    let (s, body) = h.upload(sim_package("1.0.0", None, 0)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("unsigned"),
        "{body}"
    );

    let mut tampered = sim_package("1.0.0", Some(&secret), 0);
    // Flip a byte inside the component's code (well before the sections
    // appended at the end).
    let at = tampered.len() / 3;
    tampered[at] ^= 0x01;
    let (s, body) = h.upload(tampered).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let m = body["message"].as_str().unwrap();
    assert!(
        m.contains("tampered") && m.contains("drydock-tests"),
        "{body}"
    );

    let (other, _) = key();
    let (s, body) = h.upload(sim_package("1.0.0", Some(&other), 0)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("wrong key"),
        "{body}"
    );

    // A changed manifest is tampering too (the manifest is signed).
    let signed = sim_package("1.0.0", Some(&secret), 0);
    let relabelled = package::with_section(
        &signed,
        package::MANIFEST_SECTION,
        br#"{"name":"sim","version":"9.9.9"}"#,
    )
    .unwrap();
    let (s, body) = h.upload(relabelled).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("tampered"),
        "{body}"
    );

    // Only admins install.
    let (s, _) = h
        .send(
            "POST",
            "/drivers",
            VIEWER,
            Body::from(sim_package("1.0.0", Some(&secret), 0)),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Nothing was stored; the bundled sim still serves.
    let (s, d) = h.send("GET", "/drivers/sim", VIEWER, Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["versions"], json!([]));
    assert_eq!(d["active"], Value::Null);
    // Nothing to roll back to.
    let (s, _) = h
        .send("POST", "/drivers/sim/rollback", ADMIN, Body::empty())
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    h.engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_install_on_one_active_on_both() {
    let (secret, trusted) = key();
    let (store_a, db) = drydock_tests::db::postgres().await;
    let url = drydock::store::testing::database_url(&drydock_tests::db::pg_admin_url(), &db);
    let store_b = Store::connect(&url).await.unwrap();
    let a = host(store_a, vec![trusted.clone()], Duration::from_millis(200)).await;
    let b = host(store_b, vec![trusted], Duration::from_millis(200)).await;
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(b.lifecycle.clone().run(stop.clone()));

    let v2 = sim_package("2.0.0", Some(&secret), 0);
    let sha2 = sha256_hex(&v2);
    let t0 = Instant::now();
    assert_eq!(a.upload(v2).await.0, StatusCode::CREATED);
    assert_eq!(a.activate("2.0.0").await.0, StatusCode::OK);
    let on_a = t0.elapsed();
    assert_eq!(a.drivers.get("sim").unwrap().driver.sha256(), sha2);
    while b.drivers.get("sim").unwrap().driver.sha256() != sha2 {
        assert!(t0.elapsed() < Duration::from_secs(10), "b never activated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let on_b = t0.elapsed();
    println!(
        "two instances on Postgres: active on a {:.1} ms, on b {:.1} ms after upload began",
        on_a.as_secs_f64() * 1e3,
        on_b.as_secs_f64() * 1e3
    );
    stop.cancel();
    a.engine.shutdown();
    b.engine.shutdown();
    drydock_tests::db::drop_postgres(&db).await;
}

#[tokio::test]
async fn only_active_and_previous_versions_stay_loaded() {
    let (secret, trusted) = key();
    let (runtime, drivers) = bundled_sim(&[]).await;
    let lifecycle = Lifecycle::new(
        drydock_tests::db::sqlite().await,
        runtime,
        drivers,
        LifecycleConfig {
            trusted_keys: vec![trusted],
            warm_grace: Duration::ZERO,
            ..LifecycleConfig::default()
        },
    );
    let warm = |described: &Value| -> Vec<String> {
        described["versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["warm"] == true)
            .map(|v| v["version"].as_str().unwrap().to_owned())
            .collect()
    };
    for v in ["1.0.0", "2.0.0", "3.0.0"] {
        lifecycle
            .install(&sim_package(v, Some(&secret), 0), None)
            .await
            .unwrap();
    }
    // Nothing active yet: the next sync unloads the installed versions.
    lifecycle.sync().await.unwrap();
    assert!(warm(&json_of(lifecycle.describe("sim").await.unwrap())).is_empty());

    for v in ["1.0.0", "2.0.0", "3.0.0"] {
        lifecycle.activate("sim", v, None).await.unwrap();
    }
    let described = json_of(lifecycle.describe("sim").await.unwrap());
    let mut loaded = warm(&described);
    loaded.sort();
    assert_eq!(loaded, ["2.0.0", "3.0.0"], "{described:#}");

    // Rollback swaps to the warm previous version; both stay loaded.
    let back = lifecycle.rollback("sim", None).await.unwrap();
    assert_eq!(back.version, "2.0.0");
    let mut loaded = warm(&json_of(lifecycle.describe("sim").await.unwrap()));
    loaded.sort();
    assert_eq!(loaded, ["2.0.0", "3.0.0"]);

    // An unloaded version loads again from the store when activated.
    lifecycle.activate("sim", "1.0.0", None).await.unwrap();
    let mut loaded = warm(&json_of(lifecycle.describe("sim").await.unwrap()));
    loaded.sort();
    assert_eq!(loaded, ["1.0.0", "2.0.0"]);
}

/// The instance that takes an activation need not run the calls: the one
/// that does watches them and rolls back for the whole cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_running_the_failing_calls_rolls_back_for_the_cluster() {
    let (secret, trusted) = key();
    let (store_a, db) = drydock_tests::db::postgres().await;
    let url = drydock::store::testing::database_url(&drydock_tests::db::pg_admin_url(), &db);
    let store_b = Store::connect(&url).await.unwrap();
    let poll = Duration::from_millis(100);
    let bad = [("fail_nodes", "bad")];
    let a = host_with(store_a.clone(), vec![trusted.clone()], poll, &bad).await;
    let b = host_with(store_b, vec![trusted], poll, &bad).await;
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(a.lifecycle.clone().run(stop.clone()));
    tokio::spawn(b.lifecycle.clone().run(stop.clone()));

    let v1 = sim_package("1.0.0", Some(&secret), 0);
    let v2 = sim_package("2.0.0", Some(&secret), 0);
    let (sha1, sha2) = (sha256_hex(&v1), sha256_hex(&v2));
    assert_eq!(a.upload(v1).await.0, StatusCode::CREATED);
    assert_eq!(a.upload(v2).await.0, StatusCode::CREATED);
    assert_eq!(a.activate("1.0.0").await.0, StatusCode::OK);
    assert_eq!(a.activate("2.0.0").await.0, StatusCode::OK);
    let on = |h: &Host| h.drivers.get("sim").unwrap().driver.sha256().to_owned();
    let t0 = Instant::now();
    while on(&b) != sha2 {
        assert!(t0.elapsed() < Duration::from_secs(10), "b never took v2");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Only b runs calls, and they fail: b rolls back, a follows.
    assert_eq!(calls(&b, "bad", 20).await, 20);
    let t0 = Instant::now();
    while on(&a) != sha1 || on(&b) != sha1 {
        if t0.elapsed() > Duration::from_secs(10) {
            let active = store_a.active_drivers().await.unwrap();
            panic!(
                "no cluster-wide rollback: a on {}, b on {}, v1 {sha1}, v2 {sha2}, store {active:?}",
                on(&a),
                on(&b)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let active = store_a
        .active_drivers()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.name == "sim")
        .unwrap();
    assert_eq!(active.version, "1.0.0");
    assert_eq!(active.previous.as_deref(), Some("2.0.0"));
    assert!(!active.watched);
    let message = active.message.unwrap();
    assert!(
        message.contains("automatic rollback: 20 of the first 20 calls of sim 2.0.0 failed"),
        "{message}"
    );
    // One rollback, not one per instance: the generation moved once.
    let generation = active.generation;
    assert_eq!(calls(&a, "good", 3).await, 0);
    // Both instances apply what is active (as their loops do) without
    // rolling back again.
    a.lifecycle.sync().await.unwrap();
    b.lifecycle.sync().await.unwrap();
    let after = store_a.active_drivers().await.unwrap();
    assert_eq!(after[0].generation, generation);

    // A rollback of a generation that is gone changes nothing.
    assert!(
        store_a
            .driver_rollback_if("sim", generation - 1, "late")
            .await
            .unwrap()
            .is_none()
    );
    stop.cancel();
    a.engine.shutdown();
    b.engine.shutdown();
    drydock_tests::db::drop_postgres(&db).await;
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_upload_to_active_cold_and_cached() {
    let (secret, trusted) = key();
    // A compile cache of its own, so the first load compiles.
    let dir = std::env::temp_dir().join(drydock_tests::db::unique("lifecycle_cache"));
    let runtime = Arc::new(
        Runtime::new(
            Default::default(),
            Some(drydock::drivers::CompileCache::open_path(&dir).unwrap()),
        )
        .unwrap(),
    );
    let drivers = Arc::new(DriverSet::new());
    let lifecycle = Lifecycle::new(
        drydock_tests::db::sqlite().await,
        runtime,
        drivers.clone(),
        LifecycleConfig {
            trusted_keys: vec![trusted],
            ..LifecycleConfig::default()
        },
    );
    let one_mb = (1usize << 20).saturating_sub(drydock::bundled::SIM.len() + 1024);
    for (label, version, padding) in [("sim", "3.0.0", 0usize), ("1 MB", "4.0.0", one_mb)] {
        let bytes = sim_package(version, Some(&secret), padding);
        let t0 = Instant::now();
        let cold = lifecycle.install(&bytes, None).await.unwrap();
        lifecycle.activate("sim", version, None).await.unwrap();
        let upload_to_active = t0.elapsed();
        assert_eq!(drivers.get("sim").unwrap().driver.sha256(), cold.sha256);
        // The same file again: the compile cache answers.
        let t1 = Instant::now();
        let warm = lifecycle.install(&bytes, None).await.unwrap();
        let again = t1.elapsed();
        println!(
            "benchmark {label} ({} bytes): upload->active {:.1} ms (load {:.1} ms, cache hit {}); \
             reinstall {:.1} ms (load {:.1} ms, cache hit {})",
            bytes.len(),
            upload_to_active.as_secs_f64() * 1e3,
            cold.load_ms,
            cold.cache_hit,
            again.as_secs_f64() * 1e3,
            warm.load_ms,
            warm.cache_hit
        );
        assert!(warm.cache_hit);
        assert!(!warm.stored);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Calls `power_on_node` on `node` `n` times through the current version.
async fn calls(h: &Host, node: &str, n: usize) -> usize {
    let node = drydock_tests::node(node, "sim");
    let services: Arc<dyn DriverServices> = Arc::new(MemoryServices::new());
    let mut failed = 0;
    for _ in 0..n {
        let (r, _) =
            drydock_tests::power_on_current(&h.runtime, &h.drivers, &node, services.clone()).await;
        failed += usize::from(r.is_err());
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_first_calls_roll_back_by_themselves_and_tasks_are_told() {
    let (secret, trusted) = key();
    let store = drydock_tests::db::sqlite().await;
    // The sim grant fails every call on node `bad`.
    let h = host_with(
        store.clone(),
        vec![trusted],
        Duration::from_secs(1),
        &[("fail_nodes", "bad")],
    )
    .await;
    let v1 = sim_package("1.0.0", Some(&secret), 0);
    let v2 = sim_package("2.0.0", Some(&secret), 0);
    let sha1 = sha256_hex(&v1);
    assert_eq!(h.upload(v1).await.0, StatusCode::CREATED);
    assert_eq!(h.upload(v2).await.0, StatusCode::CREATED);
    assert_eq!(h.activate("1.0.0").await.0, StatusCode::OK);
    assert_eq!(h.activate("2.0.0").await.0, StatusCode::OK);
    // The operator's activation is watched: its rollback is armed.
    let (_, d) = h.send("GET", "/drivers/sim", VIEWER, Body::empty()).await;
    let armed = &d["active"]["auto_rollback"];
    assert_eq!(armed["state"], "armed", "{d}");
    assert_eq!(armed["watch_calls"], 20, "{d}");
    assert!(armed["watch_until"].is_string(), "{d}");
    // A task running meanwhile (owned elsewhere) hears about the rollback.
    let mut t = drydock::store::NewTask::new("prepare_nodes");
    t.status = drydock::store::TaskStatus::Running;
    t.owner = Some("elsewhere".into());
    let task = store.insert_task(&t).await.unwrap();

    // Healthy calls, then failing ones: past 20 calls more than half failed.
    assert_eq!(calls(&h, "good", 5).await, 0);
    assert_eq!(calls(&h, "bad", 20).await, 20);
    let t0 = Instant::now();
    while h.drivers.get("sim").unwrap().driver.sha256() != sha1 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no automatic rollback"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, d) = h.send("GET", "/drivers/sim", VIEWER, Body::empty()).await;
    assert_eq!(d["active"]["version"], "1.0.0");
    let m = d["active"]["message"].as_str().unwrap();
    assert!(
        m.contains("automatic rollback: 20 of the first 25 calls"),
        "{m}"
    );
    assert_eq!(d["active"]["auto_rollback"]["state"], "rolled_back", "{d}");
    assert!(d["active"]["auto_rollback"]["watch_until"].is_null(), "{d}");
    let msgs = store.messages(task.id).await.unwrap();
    assert!(
        msgs.iter()
            .any(|m| m.message.contains("automatic rollback") && m.message.contains("now on 1.0.0")),
        "{msgs:?}"
    );
    h.engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_its_validate_action_is_not_activated() {
    let (secret, trusted) = key();
    let h = host_with(
        drydock_tests::db::sqlite().await,
        vec![trusted],
        Duration::from_secs(1),
        &[
            ("fail_actions", "validate_node_services"),
            ("fail_rate", "1.0"),
        ],
    )
    .await;
    let bundled = h.drivers.get("sim").unwrap().driver.sha256().to_owned();
    assert_eq!(
        h.upload(sim_package("1.0.0", Some(&secret), 0)).await.0,
        StatusCode::CREATED
    );
    let (s, body) = h.activate("1.0.0").await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let m = body["message"].as_str().unwrap();
    assert!(
        m.contains("activation refused") && m.contains("validate_node_services"),
        "{m}"
    );
    assert_eq!(h.drivers.get("sim").unwrap().driver.sha256(), bundled);
    h.engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_directory_installs_unsigned_rebuilds() {
    let runtime = Arc::new(drydock_tests::runtime());
    let mut set = DriverSet::new();
    set.add(
        runtime
            .load("bundled:sim", drydock::bundled::SIM)
            .await
            .unwrap(),
        Arc::new(DriverConfig::default()),
    )
    .unwrap();
    let drivers = Arc::new(set);
    let lifecycle = Lifecycle::new(
        drydock_tests::db::sqlite().await,
        runtime,
        drivers.clone(),
        LifecycleConfig {
            allow_unsigned: true,
            poll: Duration::from_millis(100),
            ..LifecycleConfig::default()
        },
    );
    let path = std::env::temp_dir().join(drydock_tests::db::unique("lifecycle_dev"));
    std::fs::create_dir_all(&path).unwrap();
    let dir = cap_std::fs::Dir::open_ambient_dir(&path, cap_std::ambient_authority()).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(lifecycle.clone().watch_dir(dir, stop.clone()));

    // Two "rebuilds" of the sim driver (unsigned, no manifest).
    for build in 1..=2u8 {
        let bytes = package::with_section(drydock::bundled::SIM, "build", &[build; 16]).unwrap();
        let sha = sha256_hex(&bytes);
        std::fs::write(path.join("sim.wasm"), &bytes).unwrap();
        let t0 = Instant::now();
        while drivers.get("sim").unwrap().driver.sha256() != sha {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "build {build} not active"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let d = json_of(lifecycle.describe("sim").await.unwrap());
        let v = d["active"]["version"].as_str().unwrap().to_owned();
        assert!(v.ends_with(&format!("+dev.{}", &sha[..12])), "{v}");
        assert_eq!(d["versions"][usize::from(build) - 1]["signer"], Value::Null);
    }
    stop.cancel();
    let _ = std::fs::remove_dir_all(&path);
}

/// A wire value as JSON, for assertions by path.
fn json_of<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("serializes")
}
