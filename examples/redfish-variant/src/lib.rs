//! `contoso-bmc`: an example Redfish-variant driver on the SDK's
//! [`redfish`] helper. Contoso BMCs speak DMTF Redfish, name their system
//! by the node's `system_id` param when they manage several, and reject
//! `ForceRestart` (power cycles are off, then on).
//!
//! Settings: `scheme` (`https` default, or `http`), `auth` (`basic` turns
//! Redfish sessions off), `poll_interval_ms` (default 1000).

use drydock_sdk::prelude::*;
use drydock_sdk::redfish::{self, Options, Redfish, ResetType, System};
use serde_json::json;

/// The driver.
pub struct Contoso;

impl Driver for Contoso {
    const NAME: &'static str = "contoso-bmc";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const VENDOR: &'static str = "Contoso";
    const DESCRIPTION: &'static str = "Contoso BMCs (a Redfish variant)";
    const OOB_TYPES: &'static [&'static str] = &["contoso"];
    const NODE_BMC: bool = true;
}

/// Runs `f` on the node's system, the BMC session closed afterwards.
fn on_system<T>(
    ctx: &Ctx,
    node: &Node,
    f: impl FnOnce(&Redfish, &System) -> Result<T>,
) -> Result<T> {
    let options = Options::from_settings(ctx, node)?;
    redfish::with_redfish(ctx, node, &options, |bmc| {
        let system = bmc.system(redfish::param(node, "system_id").as_deref())?;
        f(bmc, &system)
    })
}

/// How often to read the power state while waiting.
fn interval(ctx: &Ctx) -> Result<Duration> {
    Ok(Duration::from_millis(
        ctx.config_or("poll_interval_ms", 1000)?,
    ))
}

/// Resets the system unless it is already in `want`, then waits for `want`.
fn power(ctx: &Ctx, node: &Node, want: PowerState, reset: ResetType) -> Result<()> {
    on_system(ctx, node, |bmc, system| {
        if redfish::power_state(&system.json) != want {
            bmc.reset(system, reset)?;
        }
        bmc.wait_power(system, want, interval(ctx)?)
    })
}

impl OobDriver for Contoso {
    fn validate_oob_services(ctx: &Ctx, node: &Node) -> Result<()> {
        on_system(ctx, node, |bmc, system| {
            ctx.status(
                format!(
                    "BMC {} manages {} for {}",
                    bmc.addr(),
                    system.path,
                    node.name
                ),
                false,
            );
            Ok(())
        })
    }

    fn config_node_pxe(ctx: &Ctx, node: &Node) -> Result<()> {
        let pxe = BootTarget {
            device: BootDevice::Pxe,
            persistent: false,
        };
        Self::set_node_boot(ctx, node, pxe)
    }

    fn set_node_boot(ctx: &Ctx, node: &Node, target: BootTarget) -> Result<()> {
        on_system(ctx, node, |bmc, system| {
            if redfish::boot_override(&system.json) == Some(target) {
                return Ok(());
            }
            bmc.set_boot(system, target)
        })
    }

    fn power_off_node(ctx: &Ctx, node: &Node) -> Result<()> {
        power(ctx, node, PowerState::Off, ResetType::ForceOff)
    }

    fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
        power(ctx, node, PowerState::On, ResetType::On)
    }

    fn power_cycle_node(ctx: &Ctx, node: &Node) -> Result<()> {
        // Contoso refuses ForceRestart: off, then on.
        Self::power_off_node(ctx, node)?;
        Self::power_on_node(ctx, node)
    }

    fn interrogate_oob(ctx: &Ctx, node: &Node) -> Result<OobInterrogation> {
        on_system(ctx, node, |bmc, system| {
            let mut facts = redfish::facts(&system.json);
            let mut nics = Vec::new();
            if let Some(path) = system.json["EthernetInterfaces"]["@odata.id"].as_str() {
                for member in redfish::members(&bmc.get(path)?) {
                    let nic = bmc.get(&member)?;
                    if let Some(mac) = nic["MACAddress"].as_str() {
                        facts.macs.push(mac.to_ascii_lowercase());
                    }
                    nics.push(nic);
                }
            }
            let raw = json!({ "system": system.json, "ethernet_interfaces": nics });
            Ok(OobInterrogation {
                facts,
                raw_json: raw.to_string(),
            })
        })
    }
}

drydock_sdk::export_driver!(Contoso: oob);
