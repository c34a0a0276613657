//! Driver runtime benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p drydock-host --bench runtime` (add `-- --iterations N`).
//!
//! - per-call cost through the whole runtime (new store, instantiate, call,
//!   drop) of a no-I/O sim action, beside a bare wasmtime instantiate and
//!   call of an empty component on the same engine, and their ratio;
//! - compile time versus compile-cache hit time of the sim driver;
//! - the sim driver's size.

use drydock::drivers::{
    Action, CallRequest, CompileCache, DriverConfig, MemoryServices, Runtime, RuntimeConfig,
};
use drydock::model::{ActionParams, Node};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};

const EMPTY_COMPONENT: &str = r#"
(component
  (core module $m (func (export "run")))
  (core instance $i (instantiate $m))
  (func (export "run") (canon lift (core func $i "run"))))
"#;

fn median(mut v: Vec<Duration>) -> Duration {
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

fn main() {
    let iterations: usize = std::env::args()
        .skip_while(|a| a != "--iterations")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(run(iterations));
}

async fn run(iterations: usize) {
    let sim = drydock::bundled::SIM;
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(
        RuntimeConfig::default(),
        Some(CompileCache::open_path(cache_dir.path()).expect("cache dir")),
    )
    .expect("runtime");
    println!(
        "drydock driver runtime benchmark ({iterations} iterations, pooling allocator: {})",
        runtime.is_pooling()
    );
    println!("sim driver size: {} bytes", sim.len());

    // Compile versus cache hit.
    let t = Instant::now();
    let (_, _, cached) = runtime.compile("sim", sim).await.expect("compile");
    let compile = t.elapsed();
    assert!(!cached);
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
        us(median(hits))
    );
    let t = Instant::now();
    let driver = runtime.load("sim", sim).await.expect("load sim");
    println!(
        "sim full load from cache (check + instantiate + info): {}",
        us(t.elapsed())
    );

    // Whole-runtime call of a no-I/O action.
    let services = Arc::new(MemoryServices::new());
    let config = Arc::new(DriverConfig::default());
    let params = ActionParams::default();
    let node = Node {
        name: "bench-0".into(),
        ..Node::default()
    };
    let mut calls = Vec::with_capacity(iterations);
    for i in 0..iterations + 200 {
        let t = Instant::now();
        runtime
            .call(
                &driver,
                CallRequest {
                    action: Action::AvailableImages,
                    node: Some(&node),
                    params: &params,
                    config: config.clone(),
                    services: services.clone(),
                    timeout: None,
                    task: None,
                },
            )
            .await
            .expect("sim call");
        if i >= 200 {
            calls.push(t.elapsed());
        }
    }

    // Bare wasmtime on the same engine: new store + instantiate + call + drop.
    let engine = runtime.engine();
    let bytes = wat::parse_str(EMPTY_COMPONENT).expect("wat");
    let component = Component::new(engine, &bytes).expect("empty component");
    let linker = Linker::<()>::new(engine);
    let pre = linker.instantiate_pre(&component).expect("pre");
    let mut bare = Vec::with_capacity(iterations);
    for i in 0..iterations + 200 {
        let t = Instant::now();
        let mut store = wasmtime::Store::new(engine, ());
        store.set_epoch_deadline(1 << 40);
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiate");
        let f = instance
            .get_typed_func::<(), ()>(&mut store, "run")
            .expect("run");
        f.call_async(&mut store, ()).await.expect("call");
        drop(store);
        if i >= 200 {
            bare.push(t.elapsed());
        }
    }
    let (c, b) = (median(calls.clone()), median(bare.clone()));
    println!(
        "sim available_images through the runtime: median {} (p90 {}, p99 {})",
        us(c),
        us(pct(&calls, 0.9)),
        us(pct(&calls, 0.99))
    );
    println!(
        "bare wasmtime instantiate+call of an empty component: median {} (p90 {}, p99 {})",
        us(b),
        us(pct(&bare, 0.9)),
        us(pct(&bare, 0.99))
    );
    println!(
        "ratio runtime/bare: {:.2}x",
        c.as_secs_f64() / b.as_secs_f64()
    );
}
