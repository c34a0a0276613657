//! Test guest: an oob driver whose `power_on_node` spins forever. The host
//! must interrupt it (epoch deadline) without harm to other calls.

use drydock_sdk::prelude::*;

/// The spinning driver.
struct Loop;

impl Driver for Loop {
    const NAME: &'static str = "guest-loop";
    const VERSION: &'static str = "0.1.0";
    const VENDOR: &'static str = "Drydock tests";
    const DESCRIPTION: &'static str = "power_on_node never returns";
    const OOB_TYPES: &'static [&'static str] = &["guest-loop"];
}

impl OobDriver for Loop {
    fn power_on_node(_ctx: &Ctx, _node: &Node) -> Result<()> {
        let mut spins = 0u64;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

drydock_sdk::export_driver!(Loop: oob);
