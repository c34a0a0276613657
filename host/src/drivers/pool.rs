//! The sandbox pool: the wasmtime engine's configuration, with the pooling
//! allocator sized so that `max_concurrent_calls` calls of any component the
//! runtime accepts fit at once, and set up so that a reused slot does not
//! fault its pages in again.
//!
//! Every call gets one slot: [`CORE_INSTANCES_PER_CALL`] core instances,
//! [`MEMORIES_PER_CALL`] linear memories and [`TABLES_PER_CALL`] tables. The
//! pool's totals are those times `max_concurrent_calls`, so the limit on
//! calls is the only limit; a component needing more than one slot is
//! refused when it loads ([`too_big`]), never at full concurrency.

use super::config::RuntimeConfig;
use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Core module instances one call may create (a Rust driver has 3 to 5:
/// its code, and wit-component's shims).
pub const CORE_INSTANCES_PER_CALL: u32 = 16;
/// Linear memories one call may have.
pub const MEMORIES_PER_CALL: u32 = 2;
/// Tables one call may have.
pub const TABLES_PER_CALL: u32 = 4;

/// Bytes of dirtied pages of each linear memory reset by copy (and so kept
/// resident) between calls when the kernel reports which pages a call
/// dirtied (`PAGEMAP_SCAN`, Linux 6.7+), wherever they are: Rust drivers put
/// their stack (1 MiB by default) below their data and heap, and the sim
/// dirties 4 pages a call. Dirtied pages past this are returned to the
/// kernel.
const KEEP_RESIDENT_SCANNED: usize = 1 << 20;
/// Without `PAGEMAP_SCAN` the whole kept region is reset by copy on every
/// call: kept small. Drydock's drivers link a 64 KiB stack
/// (`drivers/.cargo/config.toml`), so the pages a call touches (the stack's
/// top, the data, the heap's start) lie within it.
const KEEP_RESIDENT_UNSCANNED: usize = 128 << 10;

/// The engine configuration: component model, epoch interruption, no
/// component-model async (it makes every call ~4x dearer), and the pooling
/// allocator when `pooling`; `pagemap` says whether to rely on the kernel's
/// `PAGEMAP_SCAN`.
pub(crate) fn engine_config(rc: &RuntimeConfig, pooling: bool, pagemap: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.concurrency_support(false);
    if pooling {
        let n = rc.max_concurrent_calls.max(1);
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(n)
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_CALL))
            .total_memories(n.saturating_mul(MEMORIES_PER_CALL))
            .total_tables(n.saturating_mul(TABLES_PER_CALL))
            .total_stacks(n)
            .max_core_instances_per_component(CORE_INSTANCES_PER_CALL)
            .max_memories_per_component(MEMORIES_PER_CALL)
            .max_tables_per_component(TABLES_PER_CALL)
            .max_memory_size(rc.max_memory_bytes)
            .table_keep_resident(64 << 10);
        if pagemap {
            p.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT_SCANNED);
        } else {
            p.pagemap_scan(Enabled::No)
                .linear_memory_keep_resident(KEEP_RESIDENT_UNSCANNED);
        }
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    c
}

/// Whether the kernel offers `PAGEMAP_SCAN`.
pub(crate) fn pagemap_available() -> bool {
    PoolingAllocationConfig::is_pagemap_scan_available()
}

/// The explanation, if compiling a component failed because it needs more
/// than one call's slot of the pool.
pub(crate) fn too_big(e: &wasmtime::Error) -> Option<String> {
    let text = format!("{e:#}");
    text.contains("in the pooling allocator").then(|| {
        format!(
            "{text} (one call's sandbox holds {CORE_INSTANCES_PER_CALL} core instances, \
             {MEMORIES_PER_CALL} memories and {TABLES_PER_CALL} tables)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::{LoadError, Runtime};

    /// A component instantiating an empty core module `n` times.
    fn instances(n: u32) -> Vec<u8> {
        let mut wat = String::from("(component (core module $m)");
        for _ in 0..n {
            wat.push_str(" (core instance (instantiate $m))");
        }
        wat.push(')');
        wat::parse_str(&wat).expect("wat")
    }

    #[tokio::test]
    async fn a_component_needing_more_than_a_slot_is_refused_at_load() {
        let config = RuntimeConfig {
            max_concurrent_calls: 4,
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::new(config, None).expect("runtime");
        assert!(runtime.is_pooling());
        let err = runtime
            .load("big.wasm", &instances(CORE_INSTANCES_PER_CALL + 1))
            .await
            .expect_err("too many core instances");
        assert!(matches!(err, LoadError::TooBig { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("big.wasm"), "{text}");
        assert!(text.contains("17 core module instances"), "{text}");
        assert!(text.contains("holds 16 core instances"), "{text}");
        // One slot's worth is not refused for its size (it is no driver).
        let err = runtime
            .load("fits.wasm", &instances(CORE_INSTANCES_PER_CALL))
            .await
            .expect_err("not a driver");
        assert!(matches!(err, LoadError::NotADriver { .. }), "{err}");
    }

    #[test]
    fn the_pool_holds_a_slot_per_call() {
        let config = RuntimeConfig {
            max_concurrent_calls: 1000,
            ..RuntimeConfig::default()
        };
        // Sized for 1,000 calls of the largest component a slot takes: the
        // engine starts (the address space is reserved lazily).
        let engine = wasmtime::Engine::new(&engine_config(&config, true, pagemap_available()));
        assert!(engine.is_ok(), "{:?}", engine.err());
    }
}
