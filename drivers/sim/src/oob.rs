//! Simulated BMCs: power state in `power/<node>` (`on`/`off`, default off),
//! boot override in `boot/<node>` (JSON).

use drydock_sdk::prelude::*;
use serde_json::json;

use crate::chaos;
use crate::{Sim, fnv1a};

fn power_key(node: &Node) -> String {
    format!("power/{}", node.name)
}

fn boot_key(node: &Node) -> String {
    format!("boot/{}", node.name)
}

fn power(ctx: &Ctx, node: &Node) -> PowerState {
    match ctx.kv_get(&power_key(node)).as_deref() {
        Some("on") => PowerState::On,
        _ => PowerState::Off,
    }
}

/// Starts an oob action: the operator's delays and failures, then the
/// simulated BMC must be up (`bmc_down/<node>` unset).
fn begin(ctx: &Ctx, action: &str, node: &str) -> Result<()> {
    chaos::begin(ctx, action, node)?;
    if ctx.kv_get(&format!("bmc_down/{node}")).is_some() {
        return Err(DriverError::Unreachable(format!(
            "simulated BMC of {node} does not answer"
        )));
    }
    Ok(())
}

/// Ends an oob action that acted: with `lose_reply` naming it, the reply
/// is lost (a `timeout` although the action took effect).
fn reply(ctx: &Ctx, action: &str, node: &Node) -> Result<()> {
    let lost = ctx
        .config("lose_reply")
        .is_some_and(|v| v.split(',').any(|a| a.trim() == action));
    if lost {
        return Err(DriverError::Timeout(format!(
            "simulated: the connection to {}'s BMC dropped after {action} was sent",
            node.name
        )));
    }
    Ok(())
}

fn set_power(ctx: &Ctx, node: &Node, on: bool) -> Result<()> {
    ctx.kv_set(&power_key(node), if on { "on" } else { "off" })?;
    drydock_sdk::info!(
        ctx,
        "{} is powered {}",
        node.name,
        if on { "on" } else { "off" }
    );
    Ok(())
}

fn set_boot(ctx: &Ctx, node: &Node, target: BootTarget) -> Result<()> {
    ctx.kv_set_json(&boot_key(node), &target)
}

impl OobDriver for Sim {
    fn validate_oob_services(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "validate_oob_services", &node.name)
    }

    fn config_node_pxe(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "config_node_pxe", &node.name)?;
        let target = BootTarget {
            device: BootDevice::Pxe,
            persistent: false,
        };
        set_boot(ctx, node, target)?;
        reply(ctx, "config_node_pxe", node)
    }

    fn set_node_boot(ctx: &Ctx, node: &Node, target: BootTarget) -> Result<()> {
        begin(ctx, "set_node_boot", &node.name)?;
        set_boot(ctx, node, target)?;
        reply(ctx, "set_node_boot", node)
    }

    fn power_off_node(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "power_off_node", &node.name)?;
        set_power(ctx, node, false)?;
        reply(ctx, "power_off_node", node)
    }

    fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "power_on_node", &node.name)?;
        set_power(ctx, node, true)?;
        reply(ctx, "power_on_node", node)
    }

    fn power_cycle_node(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "power_cycle_node", &node.name)?;
        set_power(ctx, node, true)?;
        reply(ctx, "power_cycle_node", node)
    }

    fn interrogate_oob(ctx: &Ctx, node: &Node) -> Result<OobInterrogation> {
        begin(ctx, "interrogate_oob", &node.name)?;
        let hash = fnv1a(&[node.name.as_bytes()]);
        let facts = OobFacts {
            power: power(ctx, node),
            boot_override: ctx.kv_get_json(&boot_key(node))?,
            manufacturer: Some("Drydock Simulated Systems".to_string()),
            model: Some(format!("SIM-{}", 100 + hash % 900)),
            serial: Some(format!("SIM{:012X}", hash & 0xffff_ffff_ffff)),
            bios_version: Some("sim-1.0".to_string()),
            macs: node.boot_mac.iter().cloned().collect(),
        };
        let raw = json!({
            "node": node.name,
            "power": facts.power,
            "boot_override": facts.boot_override,
            "manufacturer": facts.manufacturer,
            "model": facts.model,
            "serial": facts.serial,
            "bios_version": facts.bios_version,
            "macs": facts.macs,
        })
        .to_string();
        if let Err(e) = ctx.build_data("sim", "application/json", &raw) {
            ctx.warn(format!("interrogation not stored as build data: {e}"));
        }
        Ok(OobInterrogation {
            facts,
            raw_json: raw,
        })
    }
}
