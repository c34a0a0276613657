//! Driver runtime benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p drydock-host --bench runtime` (options after `--`:
//! `--iterations N`, `--in-flight N` (0 skips it), `--no-strace`,
//! `--no-pool-variants`).
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
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(
        RuntimeConfig::default(),
        Some(CompileCache::open_path(cache_dir.path()).expect("cache dir")),
    )
    .expect("runtime");
    let t = Instant::now();
    let (component, _, cached) = runtime.compile("sim", sim).await.expect("compile");
    let compile = t.elapsed();
    assert!(!cached);
    let driver = runtime.load("sim", sim).await.expect("load sim");
    let bare = bare::BareSim::new(runtime.engine(), &component);
    let calls = Calls::new();

    if let Some(phase) = &args.phase {
        // A child run under strace: only the loop, no output.
        for _ in 0..args.iterations {
            match phase.as_str() {
                "bare" => {
                    let _ = bare.call().await;
                }
                _ => calls.call(&runtime, &driver, Action::AvailableImages).await,
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
    let (bare_t, bare_u) = measure(n, || async {
        let _ = bare.call().await;
    })
    .await;
    let (rt_t, rt_u) = measure(n, || calls.call(&runtime, &driver, Action::AvailableImages)).await;
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
    let (g_t, _) = measure(n, || {
        granted.call(&runtime, &driver, Action::AvailableImages)
    })
    .await;
    let (r2_t, _) = measure(n, || calls.call(&runtime, &driver, Action::AvailableImages)).await;
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
    // The production path, last but for the calls in flight: its subscriber
    // stays installed.
    production(&runtime, &driver, &calls, n).await;
    drop(runtime);

    if args.in_flight > 0 {
        inflight::run(args.in_flight).await;
    }
}

/// The same calls with the subscriber `serve` installs (fmt, `info`
/// filter, here writing to a file) as the global default, as `serve` does:
/// a span per call, an INFO line per power action. Runs the calls without a
/// subscriber first: once installed it stays for the rest of the process.
async fn production(runtime: &Runtime, driver: &Driver, calls: &Calls, n: usize) {
    let actions = [Action::AvailableImages, Action::PowerOnNode];
    let mut quiet = Vec::new();
    for action in actions {
        quiet.push(measure(n, || calls.call(runtime, driver, action)).await.0);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = std::fs::File::create(dir.path().join("log")).expect("log file");
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::sync::Mutex::new(file))
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    for (action, quiet) in actions.into_iter().zip(quiet) {
        let (logged, u) = measure(n, || calls.call(runtime, driver, action)).await;
        let (q, l) = (median(&quiet), median(&logged));
        println!(
            "{:<16} no subscriber {}; serve's tracing {}: +{:.1}% (aim ≤ 10%)",
            action.name(),
            us(q),
            summary(&logged),
            (l.as_secs_f64() / q.as_secs_f64() - 1.0) * 100.0
        );
        println!("                 with tracing: {u}");
    }
    let lines = std::fs::read_to_string(dir.path().join("log"))
        .map(|s| s.lines().count())
        .unwrap_or(0);
    println!("                 ({lines} log lines written)");
}
