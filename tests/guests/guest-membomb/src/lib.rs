//! Test guest: an oob driver whose `power_on_node` allocates and touches
//! 1 GiB. The host's memory limit must stop it.

use drydock_sdk::prelude::*;

/// The memory-hungry driver.
struct MemBomb;

impl Driver for MemBomb {
    const NAME: &'static str = "guest-membomb";
    const VERSION: &'static str = "0.1.0";
    const VENDOR: &'static str = "Drydock tests";
    const DESCRIPTION: &'static str = "power_on_node allocates 1 GiB";
    const OOB_TYPES: &'static [&'static str] = &["guest-membomb"];
}

impl OobDriver for MemBomb {
    fn power_on_node(_ctx: &Ctx, _node: &Node) -> Result<()> {
        let bomb = vec![1u8; 1 << 30];
        std::hint::black_box(bomb[std::hint::black_box(1 << 29)]);
        Ok(())
    }
}

drydock_sdk::export_driver!(MemBomb: oob);
