//! Simulated BMCs: power state in `power/<node>` (`on`/`off`, default off),
//! boot override in `boot/<node>` (JSON).

use drydock_sdk::prelude::*;
use serde_json::json;

use crate::chaos::begin;
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

fn set_power(ctx: &Ctx, node: &Node, on: bool) -> Result<()> {
    ctx.kv_set(&power_key(node), if on { "on" } else { "off" })?;
    ctx.info(format!(
        "{} is powered {}",
        node.name,
        if on { "on" } else { "off" }
    ));
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
        set_boot(ctx, node, target)
    }

    fn set_node_boot(ctx: &Ctx, node: &Node, target: BootTarget) -> Result<()> {
        begin(ctx, "set_node_boot", &node.name)?;
        set_boot(ctx, node, target)
    }

    fn power_off_node(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "power_off_node", &node.name)?;
        set_power(ctx, node, false)
    }

    fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "power_on_node", &node.name)?;
        set_power(ctx, node, true)
    }

    fn power_cycle_node(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "power_cycle_node", &node.name)?;
        set_power(ctx, node, true)
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
