//! `ipmi`: out-of-band management of nodes through IPMI 2.0 BMCs over
//! RMCP+ ("lanplus"), Drydock's default out-of-band protocol.
//!
//! Every action opens one RMCP+ session with the node's BMC (RAKP with
//! HMAC-SHA256 or HMAC-SHA1, integrity and AES-CBC-128 confidentiality on
//! every packet), acts, and always closes the session. It keeps nothing
//! between calls. The protocol itself is the `drydock-ipmi` library
//! (`protocol/`), tested natively against real BMC simulators; this crate
//! gives it the host's `datagram` capability (UDP to the call's node BMC
//! only) and Drydock's actions.
//!
//! # Layout
//!
//! - `settings`: the operator's driver settings and the node's oob
//!   parameters, read once per call.
//! - `transport`: the protocol's `Transport` over the host's datagrams.
//! - `bmc`: one call's session, error mapping, closing.
//! - `chassis`: power with waits, boot override, facts.
//!
//! # Settings (all optional; a node's oob param of the same name wins for
//! `cipher_suite` and `privilege`)
//!
//! | key | meaning |
//! | --- | --- |
//! | `cipher_suite` | `auto` (default: 17, then 3 if the BMC refuses it), `17` or `3` |
//! | `privilege` | `administrator` (default), `operator` or `user` |
//! | `timeout_ms` | wait for each answer (default 1000) |
//! | `attempts` | sends of a request before the BMC counts as unreachable (default 3, at most 10) |
//! | `busy_retries` | retries of a busy completion code, 0.5, 1, 2... s apart (default 3) |
//! | `poll_interval_ms` | how often to read the power state while waiting (default 1000) |
//! | `graceful` | `false` (default): power off at once; `true`: soft shutdown first |
//! | `graceful_timeout_s` | how long to wait for a soft shutdown (default 60) |
//! | `cycle` | `cycle` (default: Chassis Control power cycle) or `off-on` |

mod bmc;
mod chassis;
mod settings;
mod transport;

use drydock_sdk::prelude::*;

use crate::bmc::with_bmc;

/// The IPMI driver.
pub struct Ipmi;

impl Driver for Ipmi {
    const NAME: &'static str = "ipmi";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const VENDOR: &'static str = "Drydock";
    const DESCRIPTION: &'static str = "IPMI 2.0 BMCs over RMCP+ (lanplus)";
    const OOB_TYPES: &'static [&'static str] = &["ipmi"];
    const NODE_BMC: bool = true;
}

impl OobDriver for Ipmi {
    fn validate_oob_services(ctx: &Ctx, node: &Node) -> Result<()> {
        with_bmc(ctx, node, |bmc| {
            ctx.status(
                format!(
                    "BMC {} of {} answers IPMI 2.0 and accepts the credentials (cipher suite {})",
                    bmc.addr,
                    node.name,
                    bmc.session.suite().id()
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
        with_bmc(ctx, node, |bmc| chassis::set_boot(bmc, target))
    }

    fn power_off_node(ctx: &Ctx, node: &Node) -> Result<()> {
        with_bmc(ctx, node, chassis::power_off)
    }

    fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
        with_bmc(ctx, node, chassis::power_on)
    }

    fn power_cycle_node(ctx: &Ctx, node: &Node) -> Result<()> {
        with_bmc(ctx, node, chassis::power_cycle)
    }

    fn interrogate_oob(ctx: &Ctx, node: &Node) -> Result<OobInterrogation> {
        with_bmc(ctx, node, |bmc| {
            let (facts, raw) = chassis::facts(bmc)?;
            let raw = raw.to_string();
            if let Err(e) = ctx.build_data("ipmi", "application/json", &raw) {
                ctx.warn(format!("interrogation not stored as build data: {e}"));
            }
            Ok(OobInterrogation {
                facts,
                raw_json: raw,
            })
        })
    }
}

drydock_sdk::export_driver!(Ipmi: oob);
