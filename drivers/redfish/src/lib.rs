//! `redfish`: out-of-band management of nodes through Redfish BMCs (DMTF
//! Redfish; Dell iDRAC, HPE iLO and Supermicro quirks included).
//!
//! Every action opens one conversation with the node's BMC (service root,
//! then a Redfish session or basic auth), finds the node's
//! `ComputerSystem` and acts. The one thing it keeps between calls is the
//! BMC's session (in its key-value store, reused until it expires; see
//! `bmc`).
//!
//! # Layout
//!
//! - `settings`: the operator's driver settings and the node's oob
//!   parameters, read once per call.
//! - `quirks`: what differs between vendors, as a table of data.
//! - `bmc`: HTTP to the BMC: address, sessions or basic auth, redirects,
//!   bounded retries on busy answers, error mapping. Never logs secrets.
//! - `system`: the Redfish model: finding the system, power, boot override,
//!   facts.
//!
//! # Settings (all optional)
//!
//! | key | meaning |
//! | --- | --- |
//! | `scheme` | `https` (default) or `http`; a node's oob param `scheme` wins |
//! | `system_id` | the `ComputerSystem` to manage when a BMC has several; a node's oob param `system_id` wins |
//! | `auth` | `auto` (default: a session where the BMC offers them, else basic), `session` or `basic` |
//! | `cycle` | `restart` (default: `ForceRestart` or `PowerCycle` where allowed, else off then on) or `off-on` |
//! | `graceful` | `true` (default): power off with `GracefulShutdown` first, then `ForceOff` |
//! | `graceful_timeout_s` | how long to wait for a graceful shutdown (default 60) |
//! | `poll_interval_ms` | how often to read `PowerState` while waiting (default 2000) |
//! | `request_timeout_s` | bound on one HTTP request (default 30; the call's deadline also bounds it) |
//! | `busy_retries` | retries of a request answered 409/429/503, with 1, 2, 4... s backoff (default 3) |
//! | `vendor` | force the quirks: `generic`, `idrac`, `ilo` or `supermicro` (default: detected) |
//! | `session_reuse` | `true` (default): keep one session per BMC in the key-value store and reuse it across calls (see `bmc`); `false`: one session per call, always deleted |
//! | `session_ttl_s` | how long a kept session is reused after its last use (default 300) |

mod bmc;
mod quirks;
mod settings;
mod system;

use drydock_sdk::prelude::*;

use crate::bmc::with_bmc;

/// The Redfish driver.
pub struct Redfish;

impl Driver for Redfish {
    const NAME: &'static str = "redfish";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const VENDOR: &'static str = "Drydock";
    const DESCRIPTION: &'static str =
        "Redfish BMCs (generic DMTF Redfish, Dell iDRAC, HPE iLO, Supermicro)";
    const OOB_TYPES: &'static [&'static str] = &["redfish", "idrac", "ilo"];
    const NODE_BMC: bool = true;
}

impl OobDriver for Redfish {
    fn validate_oob_services(ctx: &Ctx, node: &Node) -> Result<()> {
        with_bmc(ctx, node, |bmc| {
            let sys = system::find(bmc)?;
            ctx.status(
                format!(
                    "BMC {} of {} answers and accepts the credentials; managing system {}",
                    bmc.addr, node.name, sys.path
                ),
                false,
            );
            Ok(())
        })
    }

    fn config_node_pxe(ctx: &Ctx, node: &Node) -> Result<()> {
        let target = BootTarget {
            device: BootDevice::Pxe,
            persistent: false,
        };
        Self::set_node_boot(ctx, node, target)
    }

    fn set_node_boot(ctx: &Ctx, node: &Node, target: BootTarget) -> Result<()> {
        with_bmc(ctx, node, |bmc| {
            let sys = system::find(bmc)?;
            system::set_boot(bmc, &sys, target)
        })
    }

    fn power_off_node(ctx: &Ctx, node: &Node) -> Result<()> {
        with_bmc(ctx, node, |bmc| {
            let sys = system::find(bmc)?;
            system::power_off(bmc, &sys)
        })
    }

    fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
        with_bmc(ctx, node, |bmc| {
            let sys = system::find(bmc)?;
            system::power_on(bmc, &sys)
        })
    }

    fn power_cycle_node(ctx: &Ctx, node: &Node) -> Result<()> {
        with_bmc(ctx, node, |bmc| {
            let sys = system::find(bmc)?;
            system::power_cycle(bmc, &sys)
        })
    }

    fn interrogate_oob(ctx: &Ctx, node: &Node) -> Result<OobInterrogation> {
        with_bmc(ctx, node, |bmc| {
            let sys = system::find(bmc)?;
            let (facts, raw) = system::facts(bmc, &sys)?;
            let raw = raw.to_string();
            if let Err(e) = ctx.build_data("redfish", "application/json", &raw) {
                ctx.warn(format!("interrogation not stored as build data: {e}"));
            }
            Ok(OobInterrogation {
                facts,
                raw_json: raw,
            })
        })
    }
}

drydock_sdk::export_driver!(Redfish: oob);
