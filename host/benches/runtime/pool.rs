//! Pool settings compared on the bare sim (so only the allocator differs):
//! how much of each linear memory stays resident between calls, and whether
//! the kernel's `PAGEMAP_SCAN` tells wasmtime which pages a call dirtied,
//! and whether fiber stacks are zeroed (and partly given back) after use.
//! Each variant is its own engine with the runtime's other settings.

use crate::bare::BareSim;
use crate::{measure, summary};
use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

struct Variant {
    keep_resident: usize,
    pagemap: bool,
    /// Fiber stacks zeroed after each call, this much by `memset` (the
    /// rest given back to the kernel); `None`: left as they are (wasmtime's
    /// default, the runtime's).
    stack_keep: Option<usize>,
}

fn engine(v: &Variant) -> Option<Engine> {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.concurrency_support(false);
    let n = 100;
    let mut p = PoolingAllocationConfig::default();
    p.total_component_instances(n)
        .total_core_instances(n * 16)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_memories_per_component(2)
        .max_core_instances_per_component(16)
        .max_tables_per_component(4)
        .max_memory_size(256 << 20)
        .linear_memory_keep_resident(v.keep_resident)
        .table_keep_resident(64 << 10)
        .pagemap_scan(if v.pagemap { Enabled::Yes } else { Enabled::No });
    if let Some(keep) = v.stack_keep {
        c.async_stack_zeroing(true);
        p.async_stack_keep_resident(keep);
    }
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    Engine::new(&c).ok()
}

/// Prints the bare sim's figures under each variant.
pub async fn compare(sim: &[u8], n: usize) {
    println!(
        "pool variants (bare sim; PAGEMAP_SCAN available: {}):",
        PoolingAllocationConfig::is_pagemap_scan_available()
    );
    let variants = [
        Variant {
            keep_resident: 0,
            pagemap: false,
            stack_keep: None,
        },
        Variant {
            keep_resident: 128 << 10,
            pagemap: false,
            stack_keep: None,
        },
        Variant {
            keep_resident: 2 << 20,
            pagemap: false,
            stack_keep: None,
        },
        Variant {
            keep_resident: 128 << 10,
            pagemap: true,
            stack_keep: None,
        },
        Variant {
            keep_resident: 2 << 20,
            pagemap: true,
            stack_keep: None,
        },
        Variant {
            keep_resident: 1 << 20,
            pagemap: true,
            stack_keep: Some(0),
        },
        Variant {
            keep_resident: 1 << 20,
            pagemap: true,
            stack_keep: Some(64 << 10),
        },
    ];
    for v in &variants {
        let stacks = match v.stack_keep {
            None => "stacks kept".to_owned(),
            Some(k) => format!("stacks zeroed, {} KiB kept", k >> 10),
        };
        let label = format!(
            "  keep_resident {:>4} KiB, pagemap {:<5}, {stacks}",
            v.keep_resident >> 10,
            v.pagemap
        );
        let Some(engine) = engine(v) else {
            println!("{label}: engine refused (not supported here)");
            continue;
        };
        let component = Component::new(&engine, sim).expect("compile sim");
        let bare = BareSim::new(&engine, &component);
        let (t, u) = measure(n, || async {
            let _ = bare.call().await;
        })
        .await;
        println!("{label}: {}; {u}", summary(&t));
    }
}
