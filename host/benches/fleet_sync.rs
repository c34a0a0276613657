//! Fleet sync benchmark (issue 20): prints figures, asserts nothing.
//!
//! `cargo bench -p drydock-host --bench fleet_sync [-- --nodes 5000 --interval 60 --delay-ms 50 --postgres]`
//!
//! One instance on a SQLite store (the default `serve` setup; `--postgres`:
//! a fresh database on `DRYDOCK_BENCH_PG`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) with N sim nodes whose BMC
//! reads take `--delay-ms`; the sync runs one round of `--interval` seconds.
//! Printed: whether the round kept up (every node read within the interval,
//! and the longest wait past a node's due time), BMC requests per second
//! against the ideal N / interval, the most reads in flight, the sync's own
//! statements (claims, outcome writes) per synced node and their time, and
//! this process's CPU share (user + system time over wall time, from
//! /proc/self/stat) beside the same instance idle for the same engine,
//! measured first in the same run. On Postgres with `pg_stat_statements`
//! loaded, every statement the round ran, per synced node.

use drydock::drivers::{DriverConfig, DriverSet, Runtime, RuntimeConfig};
use drydock::fleet::{FleetStats, SyncConfig};
use drydock::store::{Store, testing};
use drydock::tasks::{Engine, EngineConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: f64) -> f64 {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's CPU time so far (user + system), from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 here.
    Duration::from_millis((ticks(11) + ticks(12)) * 10) // CLK_TCK = 100
}

/// CPU share of one core over `wall`, from CPU time `cpu`.
fn share(cpu: Duration, wall: Duration) -> f64 {
    100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)
}

fn admin_url() -> String {
    std::env::var("DRYDOCK_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Statement counts and time so far in database `url`, per statement (from
/// `pg_stat_statements`, made available in it first); `None` when the
/// server does not load it.
async fn pg_statements(url: &str) -> Option<BTreeMap<i64, (i64, f64, String)>> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&mut conn)
        .await
        .ok()?;
    let rows: Vec<(i64, i64, f64, String)> = sqlx::query_as(
        "SELECT s.queryid, s.calls, s.total_exec_time, s.query FROM pg_stat_statements s \
         JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()",
    )
    .fetch_all(&mut conn)
    .await
    .ok()?;
    let _ = conn.close().await;
    Some(
        rows.into_iter()
            .map(|(id, n, t, q)| (id, (n, t, q)))
            .collect(),
    )
}

/// The allocator the `drydock` binary uses (`host/src/main.rs`), so the
/// engine is measured as it ships.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let nodes = arg("--nodes", 5000.0) as usize;
    let postgres = std::env::args().any(|a| a == "--postgres");
    let interval = arg("--interval", 60.0);
    let delay_ms = arg("--delay-ms", 50.0) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async move {
        let path = std::env::temp_dir().join(format!("drydock-fleet-bench-{}.db", std::process::id()));
        let db = format!("drydock_fleet_bench_{}", std::process::id());
        let url = if postgres {
            testing::create_pg_database(&admin_url(), &db)
                .await
                .expect("create database")
        } else {
            format!("sqlite:{}", path.display())
        };
        let store = Store::connect(&url).await.expect("store");
        let runtime = Arc::new(
            Runtime::new(
                RuntimeConfig {
                    max_concurrent_calls: 256,
                    ..RuntimeConfig::default()
                },
                None,
            )
            .expect("runtime"),
        );
        let sim = runtime.load("sim", drydock::bundled::SIM).await.expect("sim");
        let mut drivers = DriverSet::new();
        let settings = [(
            "delay_ms.interrogate_oob".to_string(),
            delay_ms.to_string(),
        )]
        .into();
        drivers
            .add(
                sim,
                Arc::new(DriverConfig {
                    settings,
                    ..DriverConfig::default()
                }),
            )
            .expect("add sim");
        let engine = Engine::start(
            store.clone(),
            runtime,
            Arc::new(drivers),
            EngineConfig::default(),
        )
        .await
        .expect("engine");
        for i in 0..nodes {
            let name = format!("node-{i:05}");
            let spec = serde_json::json!({"name": name, "oob": {"type": "sim"}});
            store.upsert_node(&name, &spec, None).await.expect("node");
        }
        println!(
            "drydock fleet sync benchmark: {nodes} sim nodes, {delay_ms} ms per BMC read, \
             interval {interval} s, one instance, {}",
            store.backend()
        );

        // Baseline: the same instance, idle, for 5 s.
        let (c0, t0) = (cpu_time(), Instant::now());
        tokio::time::sleep(Duration::from_secs(5)).await;
        let idle = share(cpu_time() - c0, t0.elapsed());
        println!("  baseline (engine idle, no sync):  CPU {idle:5.1}% of one core");

        let cfg = SyncConfig {
            interval_s: interval,
            ..SyncConfig::default()
        };
        let stats = engine.fleet_stats().clone();
        let before = if postgres { pg_statements(&url).await } else { None };
        let (c0, t0) = (cpu_time(), Instant::now());
        tokio::spawn(drydock::fleet::sync::run(engine.clone(), cfg));
        let limit = Duration::from_secs_f64(interval * 3.0);
        while FleetStats::get(&stats.syncs) < nodes as u64 && t0.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let wall = t0.elapsed();
        let cpu = cpu_time() - c0;
        let done = FleetStats::get(&stats.syncs);
        let failed = FleetStats::get(&stats.failures);
        let lag = FleetStats::get(&stats.max_lag_ms);
        let kept_up = done >= nodes as u64 && wall.as_secs_f64() <= interval * 1.05;
        println!(
            "  one round: {done}/{nodes} nodes read ({failed} failed) in {:.1} s; \
             longest wait past a due time {lag} ms; keeps up: {}",
            wall.as_secs_f64(),
            if kept_up { "yes" } else { "NO" }
        );
        println!(
            "  BMC requests: {:.1}/s (ideal {:.1}/s = nodes / interval); \
             mean read {:.1} ms",
            done as f64 / wall.as_secs_f64(),
            nodes as f64 / interval,
            FleetStats::get(&stats.busy_ms) as f64 / done.max(1) as f64
        );
        println!(
            "  CPU while syncing: {:5.1}% of one core ({:.1}% of the host's {} cores); idle baseline {idle:.1}%",
            share(cpu, wall),
            share(cpu, wall) / std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let per = |n: u64| n as f64 / done.max(1) as f64;
        println!(
            "  most reads in flight {} (concurrency {}); per synced node: {:.3} claim statements \
             ({} in {} ms), {:.3} outcome writes ({} in {} ms)",
            FleetStats::get(&stats.max_in_flight),
            SyncConfig::default().concurrency,
            per(FleetStats::get(&stats.claim_batches)),
            FleetStats::get(&stats.claim_batches),
            FleetStats::get(&stats.claim_ms),
            per(FleetStats::get(&stats.write_batches)),
            FleetStats::get(&stats.write_batches),
            FleetStats::get(&stats.write_ms),
        );
        engine.timeline().flush().await;
        if let (Some(before), Some(after)) = (before, pg_statements(&url).await) {
            let mut ran: Vec<(i64, f64, String)> = after
                .into_iter()
                .map(|(id, (n, t, q))| {
                    let (n0, t0) = before.get(&id).map_or((0, 0.0), |(n, t, _)| (*n, *t));
                    (n - n0, t - t0, q)
                })
                .filter(|(n, _, _)| *n > 0)
                .collect();
            ran.sort_by_key(|r| std::cmp::Reverse(r.0));
            let total: i64 = ran.iter().map(|r| r.0).sum();
            println!(
                "  statements in the round (pg_stat_statements): {total}, {:.2} per synced node",
                per(u64::try_from(total).unwrap_or(0))
            );
            for (n, t, q) in ran.iter().take(8) {
                let q: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
                println!(
                    "    {n:>7} calls {:>7.3} per node {t:>9.1} ms  {}",
                    per(u64::try_from(*n).unwrap_or(0)),
                    q.chars().take(90).collect::<String>()
                );
            }
        }
        engine.shutdown();
        store.close().await;
        if postgres {
            let _ = testing::drop_pg_database(&admin_url(), &db).await;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    });
}
