//! Test guest: an oob driver whose `power_on_node` panics, which traps the
//! instance. The host must report it as a trap, not a driver error.

use drydock_sdk::prelude::*;

/// The panicking driver.
struct Trap;

impl Driver for Trap {
    const NAME: &'static str = "guest-trap";
    const VERSION: &'static str = "0.1.0";
    const VENDOR: &'static str = "Drydock tests";
    const DESCRIPTION: &'static str = "power_on_node panics";
    const OOB_TYPES: &'static [&'static str] = &["guest-trap"];
}

impl OobDriver for Trap {
    fn power_on_node(_ctx: &Ctx, _node: &Node) -> Result<()> {
        panic!("guest-trap deliberate panic");
    }
}

drydock_sdk::export_driver!(Trap: oob);
