//! Driver lifecycle figures (issue 7): upload → active time with a cold
//! compile and with a compile-cache hit, for the sim driver and a 1 MB
//! component (the sim padded with a custom section); then an upgrade and a
//! rollback under a continuous load of sim calls, counting calls failed
//! during the swaps (must be 0).
//!
//! `cargo bench -p drydock-tests --bench lifecycle`

use drydock::drivers::{DriverServices, DriverSet, MemoryServices, Runtime, RuntimeConfig};
use drydock::lifecycle::{Lifecycle, LifecycleConfig};
use drydock_tests::packages::{key, sim_package};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (secret, trusted) = key();
    let dir = std::env::temp_dir().join(drydock_tests::db::unique("lifecycle_bench_cache"));
    let runtime = Arc::new(
        Runtime::new(
            RuntimeConfig::default(),
            Some(drydock::drivers::CompileCache::open_path(&dir).unwrap()),
        )
        .unwrap(),
    );
    let drivers = Arc::new(DriverSet::new());
    let lifecycle = Lifecycle::new(
        drydock_tests::db::sqlite().await,
        runtime.clone(),
        drivers.clone(),
        LifecycleConfig {
            trusted_keys: vec![trusted],
            watch_calls: 0,
            ..LifecycleConfig::default()
        },
    );

    // Upload -> active, cold and cached.
    let one_mb = (1usize << 20).saturating_sub(drydock::bundled::SIM.len() + 1024);
    for (label, version, padding) in [("sim", "1.0.0", 0usize), ("1 MB", "1.5.0", one_mb)] {
        let bytes = sim_package(version, Some(&secret), padding);
        let t0 = Instant::now();
        let cold = lifecycle.install(&bytes, None).await.unwrap();
        lifecycle.activate("sim", version, None).await.unwrap();
        let cold_time = t0.elapsed();
        let t1 = Instant::now();
        let warm = lifecycle.install(&bytes, None).await.unwrap();
        let warm_time = t1.elapsed();
        println!(
            "{label:>5} ({:>7} bytes): upload->active cold {:6.1} ms (compile+load {:6.1} ms) | \
             reinstall, cache hit {:5.1} ms (load {:5.1} ms, hit {})",
            bytes.len(),
            ms(cold_time),
            cold.load_ms,
            ms(warm_time),
            warm.load_ms,
            warm.cache_hit
        );
    }

    // Upgrade and rollback under load.
    lifecycle.activate("sim", "1.0.0", None).await.unwrap();
    let v2 = sim_package("2.0.0", Some(&secret), 0);
    lifecycle.install(&v2, None).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (drivers, runtime, stop, failed, done) = (
            drivers.clone(),
            runtime.clone(),
            stop.clone(),
            failed.clone(),
            done.clone(),
        );
        workers.push(tokio::spawn(async move {
            let node = drydock_tests::node(&format!("n{w}"), "sim");
            let services: Arc<dyn DriverServices> = Arc::new(MemoryServices::new());
            while !stop.load(Ordering::Relaxed) {
                let (r, _) =
                    drydock_tests::power_on_current(&runtime, &drivers, &node, services.clone())
                        .await;
                if r.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    lifecycle.activate("sim", "2.0.0", None).await.unwrap();
    let upgrade = t.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    lifecycle.rollback("sim", None).await.unwrap();
    let rollback = t.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    println!(
        "under load: {} calls in ~3 s; activate v2 {:.1} ms, rollback {:.1} ms; calls failed during the swaps: {}",
        done.load(Ordering::Relaxed),
        ms(upgrade),
        ms(rollback),
        failed.load(Ordering::Relaxed)
    );
    let _ = std::fs::remove_dir_all(dir);
}
