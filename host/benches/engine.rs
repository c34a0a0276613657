//! Task engine benchmark on Postgres: prints figures, asserts nothing.
//!
//! `cargo bench -p drydock-host --bench engine [-- --nodes 1000,10000]`
//!
//! For each N: registers N sim nodes in a fresh database, power-cycles all of
//! them in one task (zero delay) through the whole engine (claim, sandboxed
//! driver call with store-backed key-value, batched outcome writes, roll-up)
//! and prints node-actions per second. Beside it, in the same run and on the
//! same server: pgbench's single-row INSERT transactions per second.
//! `DRYDOCK_BENCH_TOP=N` prints the N statements with the most total time
//! (default 8). Postgres admin URL: `DRYDOCK_BENCH_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

use drydock::drivers::{DriverConfig, DriverSet, Runtime, RuntimeConfig};
use drydock::store::{Store, testing};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn admin_url() -> String {
    std::env::var("DRYDOCK_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The allocator the `drydock` binary uses (`host/src/main.rs`), so the
/// engine is measured as it ships.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip_while(|a| a != "--nodes")
        .nth(1)
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 10000]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        println!(
            "drydock engine benchmark (Postgres {})",
            drydock::store::redact_url(&admin_url())
        );
        for n in sizes {
            power_cycle(n).await;
        }
        pgbench().await;
        api_latency(256, Duration::from_secs(5)).await;
    });
}

/// GET /tasks/{id} latency percentiles under `clients` concurrent clients,
/// against a real `drydock serve` (in-process) on Postgres.
async fn api_latency(clients: usize, run_for: Duration) {
    let (store, db) = fresh_db().await;
    store.close().await;
    let data = tempfile::tempdir().expect("tempdir");
    let token = "bench-token-0123456789abcdef".to_string();
    let mut cfg = drydock::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        database_url: Some(testing::database_url(&admin_url(), &db)),
        ..Default::default()
    };
    cfg.apply_env(|k| (k == "DRYDOCK_TOKENS").then(|| format!("bench:admin:{token}")))
        .unwrap();
    // Room for the open-loop runs' 1,000 connections beside the
    // closed-loop client's (the default is 1,024 in all).
    cfg.http.max_connections = 2048;
    // interrogate_oob waits (the running task the open-loop run reads).
    cfg.drivers.insert(
        "sim".into(),
        drydock::config::DriverSettings {
            settings: [("delay_ms.interrogate_oob".to_string(), "300000".to_string())].into(),
            ..Default::default()
        },
    );
    let server = drydock::server::start(cfg).await.expect("server");
    let base = format!("http://{}/api/v1.0", server.addr);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    // A finished task with 100 subtasks to read.
    for i in 0..100 {
        let name = format!("node-{i:03}");
        server
            .engine
            .store()
            .upsert_node(
                &name,
                &serde_json::json!({"name": name, "oob": {"type": "sim"}}),
                None,
            )
            .await
            .unwrap();
    }
    let task = server
        .engine
        .submit(TaskRequest {
            action: "power_cycle_node".into(),
            ..TaskRequest::default()
        })
        .await
        .unwrap();
    server
        .engine
        .wait_finished(task.id, Duration::from_secs(60))
        .await
        .unwrap();
    let url = format!("{base}/tasks/{}", task.id);
    let until = Instant::now() + run_for;
    let mut handles = Vec::new();
    for _ in 0..clients {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let r = http.get(&url).bearer_auth(&token).send().await;
                if let Ok(r) = r
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    lat.push(t.elapsed());
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort();
    let p = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize];
    println!(
        "GET /tasks/{{id}} with {clients} concurrent clients for {:?}: {} requests, {:.0} req/s, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        run_for,
        all.len(),
        all.len() as f64 / run_for.as_secs_f64(),
        p(0.5).as_secs_f64() * 1e3,
        p(0.9).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3
    );
    drop(http);
    // Open loop: offered rates over 1,000 connections, the generator
    // (`oha`) its own process; a finished task and a running one.
    let running = server
        .engine
        .submit(TaskRequest {
            action: "interrogate_oob".into(),
            ..TaskRequest::default()
        })
        .await
        .unwrap();
    match oha() {
        Some(oha) => {
            for (what, id) in [("finished", task.id), ("running", running.id)] {
                let url = format!("{base}/tasks/{id}");
                for rate in [1000, 2000, 5000] {
                    open_loop(&oha, &url, &token, what, rate).await;
                }
            }
        }
        None => println!(
            "open-loop GET /tasks/{{id}}: oha is not installed (cargo install oha --locked)"
        ),
    }
    server.shutdown().await.unwrap();
    let _ = testing::drop_pg_database(&admin_url(), &db).await;
}

/// The `oha` load generator: on the PATH, else installed from crates.io
/// (`cargo install oha --locked`) unless `DRYDOCK_BENCH_NO_INSTALL` is set.
fn oha() -> Option<std::path::PathBuf> {
    let works = |p: &std::path::Path| {
        std::process::Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))?;
    let installed = home.join("bin/oha");
    for p in [std::path::PathBuf::from("oha"), installed.clone()] {
        if works(&p) {
            return Some(p);
        }
    }
    if std::env::var_os("DRYDOCK_BENCH_NO_INSTALL").is_some() {
        return None;
    }
    println!("installing oha (cargo install oha --locked)...");
    let ok = std::process::Command::new("cargo")
        .args(["install", "oha", "--locked"])
        .status()
        .is_ok_and(|s| s.success());
    (ok && works(&installed)).then_some(installed)
}

/// One open-loop run: `rate` requests per second offered for 5 s over
/// 1,000 connections; prints what was served and its latency.
async fn open_loop(oha: &std::path::Path, url: &str, token: &str, what: &str, rate: u32) {
    let out = tokio::process::Command::new(oha)
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "-z",
            "5s",
            "-c",
            "1000",
            "-q",
        ])
        .arg(rate.to_string())
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .await;
    let report = out
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok());
    let Some(r) = report else {
        println!("open-loop GET /tasks/{{id}} ({what}, {rate}/s): oha gave no report");
        return;
    };
    let ms = |k: &str| r["latencyPercentiles"][k].as_f64().unwrap_or(f64::NAN) * 1e3;
    let codes = r["statusCodeDistribution"].to_string();
    println!(
        "open-loop GET /tasks/{{id}} ({what}) offered {rate}/s over 1000 connections for 5 s: \
         {:.0} req/s served, p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms (status codes {codes}) (aim: p99 <= 5 ms at 5000/s)",
        r["summary"]["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
        ms("p50"),
        ms("p99"),
        ms("p99.9"),
    );
}

async fn fresh_db() -> (Store, String) {
    let name = format!("drydock_bench_{}", uuid::Uuid::new_v4().simple());
    let url = testing::create_pg_database(&admin_url(), &name)
        .await
        .expect("create database");
    (Store::connect(&url).await.expect("connect"), name)
}

async fn power_cycle(n: usize) {
    let (store, db) = fresh_db().await;
    let runtime = Arc::new(
        Runtime::new(
            RuntimeConfig {
                max_concurrent_calls: 256,
                // The sim keeps one power key per node: room for all of them.
                limits: drydock::drivers::DriverLimits {
                    kv_keys: (n as u64).max(10_000),
                    ..Default::default()
                },
                ..RuntimeConfig::default()
            },
            None,
        )
        .expect("runtime"),
    );
    let sim = runtime
        .load("sim", drydock::bundled::SIM)
        .await
        .expect("sim");
    let mut set = DriverSet::new();
    set.add(sim, Arc::new(DriverConfig::default())).unwrap();
    let t = Instant::now();
    // Registered 16 at a time (100,000 one by one would take minutes).
    let mut registering = tokio::task::JoinSet::new();
    for lane in 0..16 {
        let store = store.clone();
        registering.spawn(async move {
            for i in (lane..n).step_by(16) {
                let name = format!("node-{i:06}");
                store
                    .upsert_node(
                        &name,
                        &serde_json::json!({"name": name, "oob": {"type": "sim"}}),
                        None,
                    )
                    .await
                    .expect("register");
            }
        });
    }
    while let Some(r) = registering.join_next().await {
        r.expect("registering");
    }
    let register = t.elapsed();
    let engine = Engine::start(
        store.clone(),
        runtime,
        Arc::new(set),
        EngineConfig {
            max_concurrency: 256,
            per_bmc: 4,
            claim_batch: 512,
            ..EngineConfig::default()
        },
    )
    .await
    .expect("engine");
    let url = testing::database_url(&admin_url(), &db);
    let statements = Statements::reset(&url).await;
    let profile = Profile::start(n);
    let cpu_before = Cpu::now();
    let t = Instant::now();
    let task = engine
        .submit(TaskRequest {
            action: "power_cycle_node".into(),
            ..TaskRequest::default()
        })
        .await
        .expect("submit");
    let done = engine
        .wait_finished(task.id, Duration::from_secs(600))
        .await
        .expect("wait");
    let took = t.elapsed();
    let cpu = Cpu::now().since(&cpu_before);
    drop(profile);
    println!(
        "power_cycle_node x {n}: {:?} in {:.2} s -> {:.0} node-actions/s ({} ok, {} failed; registering took {:.2} s)",
        done.result_status,
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        done.successes.len(),
        done.failures.len(),
        register.as_secs_f64()
    );
    if !done.failures.is_empty() {
        // Say why (a benchmark of a broken engine measures nothing).
        let subs = store.subtasks(task.id).await.unwrap_or_default();
        for s in subs
            .iter()
            .filter(|s| s.result_status != drydock::store::ResultStatus::Success)
            .take(3)
        {
            let messages = store.messages(s.id).await.unwrap_or_default();
            println!(
                "  failed: {} {:?} {:?} attempt {} messages {:?}",
                s.node_name.as_deref().unwrap_or("-"),
                s.status,
                s.result_message,
                s.attempt,
                messages.iter().map(|m| &m.message).collect::<Vec<_>>()
            );
        }
    }
    println!(
        "  cpu over the run: this process {:.0} ms, postgres {:.0} ms (wall {:.0} ms, 2 cores = {:.0} ms)",
        cpu.host_ms,
        cpu.postgres_ms,
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 2e3
    );
    println!(
        "  process peak RSS so far {:.0} MiB (VmHWM; runs go smallest first), now {:.0} MiB",
        status_mib("VmHWM:"),
        status_mib("VmRSS:")
    );
    if let Some(statements) = statements {
        // `DRYDOCK_BENCH_TOP` statements (8 unless set).
        let top = std::env::var("DRYDOCK_BENCH_TOP")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(8);
        statements.print(top).await;
    }
    // Where the time went, from the rows' own times (host clock, stored
    // with each write): the fan-out until the first outcome was stored, the
    // outcomes, and the roll-up after the last one. Read after the top
    // statements are printed, so this read is not among them.
    if let Ok(subs) = store.subtasks(task.id).await
        && let (Some(first), Some(last)) = (
            subs.iter().map(|s| s.updated).min(),
            subs.iter().map(|s| s.updated).max(),
        )
    {
        let ms = |a: drydock::store::DateTime<drydock::store::Utc>,
                  b: drydock::store::DateTime<drydock::store::Utc>| {
            (b - a).num_microseconds().unwrap_or(0) as f64 / 1000.0
        };
        println!(
            "  phases: first outcome stored {:.0} ms after the task was created, the last \
             {:.0} ms after that, the task finished {:.0} ms after the last",
            ms(done.created, first),
            ms(first, last),
            ms(last, done.updated)
        );
    }
    engine.shutdown();
    store.close().await;
    let _ = testing::drop_pg_database(&admin_url(), &db).await;
}

/// `perf record` of this process over one run's timed part, when
/// `DRYDOCK_BENCH_PERF` names a file prefix (`PREFIX.N` for N nodes): the
/// host's own profile, without driver compilation or node registration.
struct Profile(Option<std::process::Child>);

impl Profile {
    fn start(n: usize) -> Profile {
        let Some(prefix) = std::env::var_os("DRYDOCK_BENCH_PERF") else {
            return Profile(None);
        };
        let mut out = prefix;
        out.push(format!(".{n}"));
        let child = std::process::Command::new("perf")
            .args(["record", "-F", "999", "--call-graph", "dwarf,16384", "-p"])
            .arg(std::process::id().to_string())
            .arg("-o")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(c) => {
                // perf needs a moment to attach before the run starts.
                std::thread::sleep(Duration::from_millis(500));
                Profile(Some(c))
            }
            Err(e) => {
                println!("  perf not runnable: {e}");
                Profile(None)
            }
        }
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

/// CPU time used so far by this process and by the server's processes
/// (every process named `postgres`), in ms: where a run's time goes on a
/// box both share.
struct Cpu {
    host_ms: f64,
    postgres_ms: f64,
}

impl Cpu {
    fn now() -> Cpu {
        // utime + stime, fields 14 and 15 of /proc/PID/stat, in USER_HZ
        // (100 per second on Linux).
        let ticks = |stat: &str| -> f64 {
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let f: Vec<&str> = after.split_whitespace().collect();
            let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // Fields counted from 3 (state) after the command name.
            (get(11) + get(12)) * 10.0
        };
        let host_ms = std::fs::read_to_string("/proc/self/stat")
            .map(|s| ticks(&s))
            .unwrap_or(0.0);
        let mut postgres_ms = 0.0;
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let p = e.path();
                if std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "postgres") {
                    postgres_ms += std::fs::read_to_string(p.join("stat"))
                        .map(|s| ticks(&s))
                        .unwrap_or(0.0);
                }
            }
        }
        Cpu {
            host_ms,
            postgres_ms,
        }
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            host_ms: self.host_ms - before.host_ms,
            postgres_ms: self.postgres_ms - before.postgres_ms,
        }
    }
}

/// A `/proc/self/status` figure in MiB (0 where unreadable).
fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// pgbench single-row INSERT transactions per second on a fresh database of
/// the same server (16 clients, 5 s).
async fn pgbench() {
    let (store, db) = fresh_db().await;
    store.close().await;
    let url = testing::database_url(&admin_url(), &db);
    let script = std::env::temp_dir().join(format!("{db}.sql"));
    std::fs::write(&script, "INSERT INTO bench_rows (v) VALUES (1);\n").unwrap();
    let psql = std::process::Command::new("psql")
        .args([
            &url,
            "-qc",
            "CREATE TABLE bench_rows (id BIGSERIAL PRIMARY KEY, v INT)",
        ])
        .status();
    if !matches!(psql, Ok(s) if s.success()) {
        println!("pgbench: could not create the table with psql; skipped");
        return;
    }
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-c", "16", "-j", "2", "-T", "5", "-f"])
        .arg(&script)
        .arg(&url)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let tps = text
                .lines()
                .find(|l| l.starts_with("tps"))
                .unwrap_or("tps = ?");
            println!("pgbench single-row INSERT (16 clients, 5 s): {tps}");
        }
        Ok(o) => println!("pgbench failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => println!("pgbench not runnable: {e}"),
    }
    let _ = std::fs::remove_file(&script);
    let _ = testing::drop_pg_database(&admin_url(), &db).await;
}

/// pg_stat_statements for one database, when the server loads it
/// (`shared_preload_libraries = 'pg_stat_statements'`).
struct Statements {
    pool: sqlx::PgPool,
}

impl Statements {
    /// Creates the extension in the bench database and clears its counters;
    /// `None` (with a line saying how to enable it) when the server does not
    /// load the module.
    async fn reset(url: &str) -> Option<Statements> {
        let pool = sqlx::PgPool::connect(url).await.ok()?;
        let made = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&pool)
            .await;
        let reset = sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(&pool)
            .await;
        if made.is_err() || reset.is_err() {
            println!(
                "  (top statements not shown: the server does not load pg_stat_statements; \
                 ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements' and restart)"
            );
            return None;
        }
        Some(Statements { pool })
    }

    /// Prints the `n` statements of this database with the most total time.
    async fn print(&self, n: i64) {
        let rows: Result<Vec<(String, i64, f64, i64)>, _> = sqlx::query_as(
            "SELECT s.query, s.calls, s.total_exec_time, s.rows \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname = current_database() ORDER BY s.total_exec_time DESC LIMIT $1",
        )
        .bind(n)
        .fetch_all(&self.pool)
        .await;
        match rows {
            Ok(rows) => {
                println!("  top statements by total time (pg_stat_statements):");
                for (query, calls, total_ms, rows) in rows {
                    let query: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
                    let query: String = query.chars().take(110).collect();
                    println!("  {total_ms:>9.0} ms {calls:>7} calls {rows:>8} rows  {query}");
                }
            }
            Err(e) => println!("  pg_stat_statements not readable: {e}"),
        }
        self.pool.close().await;
    }
}
