//! Driver runtime benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p drydock-host --bench runtime` (options after `--`:
//! `--iterations N`, `--in-flight N` (0 skips it), `--no-strace`,
//! `--no-pool-variants`, `--sim PATH`: another build of the sim, e.g. with
//! another stack size, measured beside the bundled one).
//!
//! - the baseline: the sim driver on bare wasmtime (same engine, stub host
//!   imports linked once, an empty store), `available-images` called through
//!   its typed export ([`bare`]); beside it the same call through the whole
//!   runtime (new store, instantiate, call, drop), their ratio, and per call
//!   minor page faults, context switches and memory system calls ([`usage`]);
//! - the production path: the same calls, and a power action, with tracing
//!   set up as `serve` sets it up (fmt + `info` filter, written to a file);
//! - many calls in flight: the sim with an 8 s delay, N calls at once, peak
//!   calls in flight and resident memory during and after ([`inflight`]);
//! - pool settings compared on the bare sim ([`pool`]);
//! - compile time versus compile-cache hit time, and an empty component as
//!   the floor of what an instantiate + call can cost.

mod bare;
mod inflight;
mod pool;
mod usage;

use drydock::drivers::{
    Action, CallRequest, CompileCache, Driver, DriverConfig, MemoryServices, Runtime, RuntimeConfig,
};
use drydock::model::{ActionParams, Node};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use usage::Usage;
use wasmtime::component::{Component, Linker};

const EMPTY_COMPONENT: &str = r#"
(component
  (core module $m (func (export "run")))
  (core instance $i (instantiate $m))
  (func (export "run") (canon lift (core func $i "run"))))
"#;

/// Calls made before measuring (pool slots warm, caches filled).
const WARMUP: usize = 300;

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Median and tail of a run.
pub(crate) fn summary(v: &[Duration]) -> String {
    format!(
        "median {} (p90 {}, p99 {})",
        us(median(v)),
        us(pct(v, 0.9)),
        us(pct(v, 0.99))
    )
}

/// Command-line options.
struct Args {
    iterations: usize,
    in_flight: usize,
    strace: bool,
    pool_variants: bool,
    /// Run only this loop (`bare` or `runtime`), for the strace child.
    phase: Option<String>,
    /// Another sim component to compare with the bundled one.
    sim: Option<std::path::PathBuf>,
    /// The child run times its loop and prints the median.
    timed: bool,
    /// The compile cache directory to use (children use their parent's).
    cache: Option<std::path::PathBuf>,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .skip_while(|a| *a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let args = Args {
        iterations: arg(&args, "--iterations").unwrap_or(5000),
        in_flight: arg(&args, "--in-flight").unwrap_or(1000),
        strace: !args.iter().any(|a| a == "--no-strace"),
        pool_variants: !args.iter().any(|a| a == "--no-pool-variants"),
        phase: arg(&args, "--phase"),
        sim: arg(&args, "--sim"),
        timed: args.iter().any(|a| a == "--timed"),
        cache: arg(&args, "--cache"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(run(args));
}

/// Runs `f` `WARMUP` times, then `n` times timed; the timings and the
/// process counters per call.
pub(crate) async fn measure<F, Fut>(n: usize, mut f: F) -> (Vec<Duration>, String)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..WARMUP {
        f().await;
    }
    let start = Usage::now();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    (times, Usage::per_call(start, n))
}

/// Calls per batch when two loops are measured in turns.
const BATCH: usize = 100;

/// Runs `f` and `g` `WARMUP` times each, then `n` times each, timed, in
/// turns of [`BATCH`] calls (so both see the same machine: the box is
/// shared); the timings and the process counters per call of each.
pub(crate) async fn measure_pair<F, Fut, G, Gut>(
    n: usize,
    mut f: F,
    mut g: G,
) -> ((Vec<Duration>, String), (Vec<Duration>, String))
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
    G: FnMut() -> Gut,
    Gut: Future<Output = ()>,
{
    for _ in 0..WARMUP {
        f().await;
        g().await;
    }
    let (mut tf, mut tg) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut uf, mut ug) = (Usage::default(), Usage::default());
    while tf.len() < n {
        let start = Usage::now();
        for _ in 0..BATCH.min(n - tf.len()) {
            let t = Instant::now();
            f().await;
            tf.push(t.elapsed());
        }
        let mid = Usage::now();
        for _ in 0..BATCH.min(n - tg.len()) {
            let t = Instant::now();
            g().await;
            tg.push(t.elapsed());
        }
        let end = Usage::now();
        uf.add(start, mid);
        ug.add(mid, end);
    }
    ((tf, uf.per_call_of(n)), (tg, ug.per_call_of(n)))
}

/// What a runtime call needs besides the driver.
struct Calls {
    services: Arc<MemoryServices>,
    config: Arc<DriverConfig>,
    params: ActionParams,
    node: Node,
}

/// Egress grants of a driver that talks to BMCs and a management API.
const GRANTS: [&str; 4] = [
    "bmc.example.com:443",
    "*.mgmt.example.com",
    "10.0.0.0/8",
    "192.168.0.0/16:623",
];

impl Calls {
    fn new() -> Self {
        Self::granted(&[])
    }

    /// Calls by a driver granted `grants`.
    fn granted(grants: &[&str]) -> Self {
        let config = DriverConfig {
            egress: grants.iter().map(|g| g.parse().expect("grant")).collect(),
            ..DriverConfig::default()
        };
        Self {
            services: Arc::new(MemoryServices::new()),
            config: Arc::new(config),
            params: ActionParams::default(),
            node: Node {
                name: "bench-0".into(),
                ..Node::default()
            },
        }
    }

    async fn call(&self, runtime: &Runtime, driver: &Driver, action: Action) {
        runtime
            .call(
                driver,
                CallRequest {
                    action,
                    node: Some(&self.node),
                    params: &self.params,
                    config: self.config.clone(),
                    services: self.services.clone(),
                    timeout: None,
                    task: None,
                },
            )
            .await
            .expect("sim call");
    }
}

async fn run(args: Args) {
    let sim = drydock::bundled::SIM;
    let log_dir = tempfile::tempdir().expect("tempdir");
    let mut log_guard = None;
    match args.phase.as_deref() {
        Some(p) if p.starts_with("traced-") => log_guard = Some(serve_tracing(log_dir.path())),
        Some(p) if p.starts_with("sync-") => sync_tracing(log_dir.path()),
        _ => {}
    }
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache_path = args.cache.clone().unwrap_or(cache_dir.path().to_owned());
    let runtime = Runtime::new(
        RuntimeConfig::default(),
        Some(CompileCache::open_path(&cache_path).expect("cache dir")),
    )
    .expect("runtime");
    let t = Instant::now();
    let (component, _, cached) = runtime.compile("sim", sim).await.expect("compile");
    let compile = t.elapsed();
    assert!(!cached || args.cache.is_some());
    let driver = runtime.load("sim", sim).await.expect("load sim");
    let bare = bare::BareSim::new(runtime.engine(), &component);
    let calls = Calls::new();

    if let Some(phase) = &args.phase {
        // A child run: only the loop (under strace, or timed).
        let action = match phase
            .trim_start_matches("traced-")
            .trim_start_matches("sync-")
        {
            "power" => Action::PowerOnNode,
            _ => Action::AvailableImages,
        };
        let one = || async {
            match phase.as_str() {
                "bare" => {
                    let _ = bare.call().await;
                }
                _ => calls.call(&runtime, &driver, action).await,
            }
        };
        if args.timed {
            let (t, _) = measure(args.iterations, one).await;
            println!("median_ns {}", median(&t).as_nanos());
            // The queued lines written out.
            drop(log_guard);
            let lines = std::fs::read_to_string(log_dir.path().join("log"))
                .map(|s| s.lines().count())
                .unwrap_or(0);
            println!("lines {lines}");
        } else {
            for _ in 0..args.iterations {
                one().await;
            }
        }
        return;
    }

    println!(
        "drydock driver runtime benchmark ({} iterations after {WARMUP} warm-up, pooling allocator: {})",
        args.iterations,
        runtime.is_pooling()
    );
    println!("sim driver size: {} bytes", sim.len());

    // The baseline and the runtime, same engine, same run.
    let n = args.iterations;
    let ((bare_t, bare_u), (rt_t, rt_u)) = measure_pair(
        n,
        || async {
            let _ = bare.call().await;
        },
        || calls.call(&runtime, &driver, Action::AvailableImages),
    )
    .await;
    let (b, r) = (median(&bare_t), median(&rt_t));
    println!(
        "bare-sim  available-images (bare wasmtime, typed export): {}",
        summary(&bare_t)
    );
    println!("          {bare_u}");
    println!(
        "runtime   available_images (store, limits, WASI, host): {}",
        summary(&rt_t)
    );
    println!("          {rt_u}");
    println!(
        "ratio runtime/bare-sim: {:.2}x (aim ≤ 1.5x; runtime aim ≤ 15 µs)",
        r.as_secs_f64() / b.as_secs_f64()
    );
    // The same call by a driver with egress grants: what building the
    // call's egress policy costs.
    let granted = Calls::granted(&GRANTS);
    let ((g_t, _), (r2_t, _)) = measure_pair(
        n,
        || granted.call(&runtime, &driver, Action::AvailableImages),
        || calls.call(&runtime, &driver, Action::AvailableImages),
    )
    .await;
    let (g, r2) = (median(&g_t), median(&r2_t));
    println!(
        "runtime   with {} egress grants: {}; {:+.2} µs over none ({})",
        GRANTS.len(),
        summary(&g_t),
        (g.as_secs_f64() - r2.as_secs_f64()) * 1e6,
        us(r2)
    );
    if args.strace {
        for phase in ["bare", "runtime"] {
            match usage::syscalls_per_call(phase, 1000) {
                Some(c) => println!(
                    "{phase:8}  per call (strace -f -c, 2000 minus 1000 calls): {}",
                    c.iter()
                        .map(|(k, v)| format!("{k} {v:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => println!("{phase:8}  strace unavailable: no system call counts"),
            }
        }
    }

    if let Some((core, memories, tables)) = bare.slot_use().await {
        println!("sim per call: {core} core instances, {memories} memories, {tables} tables");
    }

    // Floor: an empty component on the same engine.
    let engine = runtime.engine();
    let bytes = wat::parse_str(EMPTY_COMPONENT).expect("wat");
    let empty = Component::new(engine, &bytes).expect("empty component");
    let pre = Linker::<()>::new(engine)
        .instantiate_pre(&empty)
        .expect("pre");
    let (empty_t, _) = measure(n, || async {
        let mut store = wasmtime::Store::new(engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiate");
        let f = instance
            .get_typed_func::<(), ()>(&mut store, "run")
            .expect("run");
        f.call_async(&mut store, ()).await.expect("call");
    })
    .await;
    println!(
        "empty component instantiate+call (floor): {}",
        summary(&empty_t)
    );

    let mut hits = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let (_, _, cached) = runtime.compile("sim", sim).await.expect("cache hit");
        hits.push(t.elapsed());
        assert!(cached);
    }
    println!(
        "sim compile: {:.1} ms; compile-cache hit: {} (median of 20)",
        compile.as_secs_f64() * 1e3,
        us(median(&hits))
    );
    if args.pool_variants {
        pool::compare(sim, n).await;
    }
    if let Some(path) = &args.sim {
        let other = std::fs::read(path).expect("--sim file");
        let d = runtime.load("other sim", &other).await.expect("load --sim");
        let (t, u) = measure(n, || calls.call(&runtime, &d, Action::AvailableImages)).await;
        let (t0, u0) = measure(n, || calls.call(&runtime, &driver, Action::AvailableImages)).await;
        println!("--sim {} ({} bytes):", path.display(), other.len());
        println!("  runtime available_images: {}; {u}", summary(&t));
        println!("  bundled sim, same run:    {}; {u0}", summary(&t0));
        if args.pool_variants {
            pool::compare(&other, n).await;
        }
    }
    // The production path: serve's tracing against none, in child runs.
    production(n, &cache_path);
    drop(runtime);

    if args.in_flight > 0 {
        inflight::run(args.in_flight).await;
    }
}

/// Rounds of child runs (quiet, then traced) per action.
const ROUNDS: usize = 5;

/// Installs `serve`'s subscriber ([`drydock::telemetry::subscriber`]: fmt,
/// `info`, lines written by a thread of their own) writing to `dir/log`, as
/// the global default, as `serve` does; the guard of the writer thread.
fn serve_tracing(dir: &std::path::Path) -> drydock::telemetry::LogGuard {
    let file = std::fs::File::create(dir.join("log")).expect("log file");
    let (writer, guard) = drydock::telemetry::non_blocking(file);
    let subscriber = drydock::telemetry::subscriber(
        false,
        false,
        tracing_subscriber::EnvFilter::new("info"),
        None,
        writer,
    );
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    guard
}

/// [`serve_tracing`] as it was, each line written by the thread that logs
/// it (a write system call on the call's path).
fn sync_tracing(dir: &std::path::Path) {
    let file = std::fs::File::create(dir.join("log")).expect("log file");
    let subscriber = drydock::telemetry::subscriber(
        false,
        false,
        tracing_subscriber::EnvFilter::new("info"),
        None,
        std::sync::Mutex::new(file),
    );
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
}

/// One timed child run of `phase`: its median and the log lines it wrote.
fn child(phase: &str, n: usize, cache: &std::path::Path) -> Option<(Duration, usize)> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args(["--phase", phase, "--timed", "--iterations", &n.to_string()])
        .arg("--cache")
        .arg(cache)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((
        Duration::from_nanos(value("median_ns")?),
        usize::try_from(value("lines")?).ok()?,
    ))
}

/// The same calls with the subscriber `serve` installs (no OTLP exporter,
/// so no per-call span is made; an INFO line per power action) against none: child processes, one loop
/// each, quiet, traced and traced writing synchronously in turns,
/// [`ROUNDS`] times; the median of their medians.
fn production(n: usize, cache: &std::path::Path) {
    for (phase, name) in [("images", "available_images"), ("power", "power_on_node")] {
        let (mut quiet, mut traced, mut sync, mut lines) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for _ in 0..ROUNDS {
            let (Some(q), Some(t), Some(s)) = (
                child(phase, n, cache),
                child(&format!("traced-{phase}"), n, cache),
                child(&format!("sync-{phase}"), n, cache),
            ) else {
                println!("{name:<16} child runs failed: no tracing figures");
                return;
            };
            quiet.push(q.0);
            traced.push(t.0);
            sync.push(s.0);
            lines = t.1;
        }
        let (q, t, s) = (median(&quiet), median(&traced), median(&sync));
        let over = |x: Duration| (x.as_secs_f64() / q.as_secs_f64() - 1.0) * 100.0;
        println!(
            "{name:<16} no subscriber {}; serve's tracing {}: {:+.1}% (aim ≤ 10%); \
             each line written by the thread logging it (before) {}: {:+.1}% ({lines} log lines a traced run; medians of {ROUNDS} child runs each, in turns)",
            us(q),
            us(t),
            over(t),
            us(s),
            over(s),
        );
    }
}
