//! Many calls at once: a runtime sized for `n` concurrent calls runs `n`
//! sim calls that each sleep 8 s (the sim's `delay_ms` setting, slept by the
//! host), and reports the peak of calls in flight and resident memory
//! before, at the peak and after.

use crate::usage::{self, pss_mib, residency, rss_mib};
use drydock::drivers::{Action, CallRequest, DriverConfig, MemoryServices, Runtime, RuntimeConfig};
use drydock::model::{ActionParams, Node};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// wasmtime's fiber stack size (its default `async_stack_size`), to tell
/// the stacks' mappings apart.
const STACK_BYTES: u64 = 2 << 20;

/// The delay each call sleeps, ms.
const DELAY_MS: &str = "8000";

pub async fn run(n: usize) {
    let before = rss_mib();
    let before_pss = pss_mib();
    let runtime = Arc::new(
        Runtime::new(
            RuntimeConfig {
                max_concurrent_calls: u32::try_from(n).expect("n fits u32"),
                ..RuntimeConfig::default()
            },
            None,
        )
        .expect("runtime"),
    );
    let driver = runtime
        .load("sim", drydock::bundled::SIM)
        .await
        .expect("load");
    let mut config = DriverConfig::default();
    config.settings.insert("delay_ms".into(), DELAY_MS.into());
    let config = Arc::new(config);
    let services = Arc::new(MemoryServices::new());
    let loaded = rss_mib();
    let loaded_pss = pss_mib();
    let loaded_by = residency(STACK_BYTES);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (runtime, driver, config, services) = (
            runtime.clone(),
            driver.clone(),
            config.clone(),
            services.clone(),
        );
        tasks.spawn(async move {
            let node = Node {
                name: format!("node-{i}"),
                ..Node::default()
            };
            let params = ActionParams::default();
            runtime
                .call(
                    &driver,
                    CallRequest {
                        action: Action::AvailableImages,
                        node: Some(&node),
                        params: &params,
                        config,
                        services,
                        timeout: Some(Duration::from_secs(60)),
                        task: None,
                    },
                )
                .await
        });
    }
    let (mut peak, mut peak_rss) = (0, loaded);
    let mut at_peak = String::new();
    let mut peak_pss = loaded_pss;
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    let mut failed = 0;
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(Ok(Ok(_))) => {}
                Some(_) => failed += 1,
                None => break,
            },
            _ = ticker.tick() => {
                peak = peak.max(runtime.calls_in_flight());
                let rss = rss_mib();
                if rss > peak_rss {
                    peak_rss = rss;
                    peak_pss = pss_mib();
                    at_peak = residency(STACK_BYTES);
                }
            }
        }
    }
    let elapsed = start.elapsed();
    // "After" is a second after the last call ended: what an idle server
    // holds (the runtime gives memory back on a blocking thread).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_mib();
    let after_by = residency(STACK_BYTES);
    let after_pss = pss_mib();
    let trimmed = usage::trimmed_rss_mib();
    let pool = runtime.engine().pooling_allocator_metrics().map(|m| {
        format!(
            "pool keeps resident {:.0} MiB of unused memories, {:.0} MiB of unused stacks",
            m.unused_memory_bytes_resident() as f64 / (1 << 20) as f64,
            m.unused_stack_bytes_resident().unwrap_or(0) as f64 / (1 << 20) as f64
        )
    });
    drop(driver);
    drop(runtime);
    let dropped = rss_mib();
    let dropped_pss = pss_mib();
    println!(
        "{n} sim calls sleeping {DELAY_MS} ms each: peak {peak} in flight, {failed} failed, all done in {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  resident memory: {before:.0} MiB before, {loaded:.0} MiB with the sim loaded, \
         {peak_rss:.0} MiB at most during (aim ≤ 256 MiB), {after:.0} MiB 1 s after, \
         {dropped:.0} MiB with the runtime dropped"
    );
    println!(
        "  PSS (shared pages counted once): {before_pss:.0} MiB before, {loaded_pss:.0} loaded, \
         {peak_pss:.0} at the RSS peak, {after_pss:.0} after, {dropped_pss:.0} with the runtime dropped"
    );
    println!("  loaded, MiB RSS (PSS) by mapping: {loaded_by}");
    println!("  at the peak, MiB RSS (PSS) by mapping: {at_peak}");
    println!("  after, MiB RSS (PSS) by mapping: {after_by}");
    println!(
        "  after, then malloc_trim(0) by the bench (what the allocator still held): {trimmed:.0} MiB"
    );
    if let Some(pool) = pool {
        println!("  after: {pool}");
    }
}
