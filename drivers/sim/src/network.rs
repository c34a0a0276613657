//! Simulated switches: each port's VLAN configuration in
//! `port/<switch>/<port>` (JSON, default access VLAN 1). The first
//! `config_port_provisioning` keeps the configuration the port had in
//! `port-previous/<switch>/<port>`; `config_port_production` drops it.

use drydock_sdk::prelude::*;
use serde_json::json;

use crate::Sim;
use crate::chaos::begin;

fn key(prefix: &str, port: &SwitchPort) -> String {
    format!("{prefix}/{}/{}", port.switch.name, port.port)
}

fn vlans(ctx: &Ctx, port: &SwitchPort) -> Result<PortVlans> {
    Ok(ctx.kv_get_json(&key("port", port))?.unwrap_or(PortVlans {
        mode: PortMode::Access,
        access_vlan: Some(1),
        native_vlan: None,
        allowed_vlans: Vec::new(),
    }))
}

impl NetworkDriver for Sim {
    fn validate_network_services(ctx: &Ctx, switch: &SwitchInfo) -> Result<()> {
        begin(ctx, "validate_network_services", &switch.name)
    }

    fn interrogate_port(ctx: &Ctx, node: &Node, port: &SwitchPort) -> Result<PortInterrogation> {
        begin(ctx, "interrogate_port", &node.name)?;
        let vlans = vlans(ctx, port)?;
        let previous: Option<PortVlans> = ctx.kv_get_json(&key("port-previous", port))?;
        let description = format!("{} (simulated)", node.name);
        let raw = json!({
            "switch": port.switch.name,
            "port": port.port,
            "vlans": vlans,
            "previous": previous,
            "link_up": true,
            "description": description,
        });
        Ok(PortInterrogation {
            vlans,
            link_up: Some(true),
            description: Some(description),
            raw_json: raw.to_string(),
        })
    }

    fn config_port_provisioning(
        ctx: &Ctx,
        node: &Node,
        port: &SwitchPort,
        target: &PortVlans,
    ) -> Result<()> {
        begin(ctx, "config_port_provisioning", &node.name)?;
        let previous = key("port-previous", port);
        if ctx.kv_get(&previous).is_none() {
            ctx.kv_set_json(&previous, &vlans(ctx, port)?)?;
        }
        ctx.kv_set_json(&key("port", port), target)?;
        drydock_sdk::info!(
            ctx,
            "{} {} set for provisioning",
            port.switch.name,
            port.port
        );
        Ok(())
    }

    fn config_port_production(
        ctx: &Ctx,
        node: &Node,
        port: &SwitchPort,
        target: &PortVlans,
    ) -> Result<()> {
        begin(ctx, "config_port_production", &node.name)?;
        ctx.kv_set_json(&key("port", port), target)?;
        ctx.kv_delete(&key("port-previous", port))
    }
}
