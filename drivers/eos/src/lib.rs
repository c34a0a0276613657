//! `eos`: Arista EOS switches over eAPI, Drydock's network driver.
//!
//! Moves a node's switch port into the provisioning VLAN before PXE boot and
//! into its production VLANs after deploy, through eAPI's JSON-RPC `runCmds`
//! (`POST /command-api`). It reads with `show` commands and changes the
//! configuration with one `runCmds` batch per action (`enable`, `configure
//! terminal`, `vlan N` for missing VLANs, `interface X`, `switchport ...`,
//! `end`), sending only the lines that differ from what the switch reports:
//! a port already in the target state gets no configuration commands.
//!
//! # Layout
//!
//! - [`eapi`]: the JSON-RPC client and its error mapping (unreachable, auth,
//!   the failing command with the switch's message).
//! - [`port`]: pure rules: VLAN lists, the switchport state, the plan of
//!   configuration lines.
//! - this file: the four `network` actions.
//!
//! # Settings (all optional)
//!
//! | key | meaning |
//! | --- | --- |
//! | `scheme` | `https` (default) or `http` |
//! | `request_timeout_s` | bound on each eAPI request, seconds (default 30) |
//!
//! The switch's address, port and credentials (HTTP basic auth) come with
//! each call; the operator grants the driver egress to the switches'
//! management addresses (e.g. `10.0.0.0/24:443`). With `https`, the host does
//! TLS: switches with self-signed certificates need their CA in the host's
//! TLS settings.
//!
//! # Key-value store
//!
//! `port/<switch>/<port>/previous`: the port's configuration before its first
//! `config_port_provisioning` (JSON `port-vlans`), kept across retries and
//! dropped by `config_port_production`. A production target of mode `other`
//! means "no production VLANs in the design": the driver restores that
//! remembered configuration.

pub mod eapi;
pub mod port;

use std::collections::BTreeSet;

use drydock_sdk::prelude::*;
use serde_json::{Value, json};

use eapi::Eapi;
use port::Switchport;

/// The Arista EOS eAPI driver.
pub struct Eos;

impl Driver for Eos {
    const NAME: &'static str = "eos";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const VENDOR: &'static str = "Drydock";
    const DESCRIPTION: &'static str = "Arista EOS switch ports over eAPI (JSON-RPC runCmds)";
}

drydock_sdk::export_driver!(Eos: network);

/// Key of the remembered pre-provisioning configuration of `port`.
fn previous_key(port: &SwitchPort) -> String {
    format!("port/{}/{}/previous", port.switch.name, port.port)
}

/// The port name, if it is one EOS could know (`Ethernet1/1`,
/// `Port-Channel10`): it goes into CLI lines, so nothing else is accepted.
fn port_name(port: &SwitchPort) -> Result<&str> {
    let name = port.port.as_str();
    let ok = |c: char| c.is_ascii_alphanumeric() || "/.:-_".contains(c);
    if name.is_empty() || !name.chars().all(ok) {
        return Err(DriverError::InvalidInput(format!(
            "`{name}` is not a port name switch {} can have",
            port.switch.name
        )));
    }
    Ok(name)
}

/// Reads the port's switchport state with `cmds[0]` = `show interfaces <port>
/// switchport` and the rest of `cmds`, whose answers come back too.
fn read(eapi: &Eapi, name: &str, more: &[&str]) -> Result<(Switchport, Value, Vec<Value>)> {
    let mut cmds = vec![format!("show interfaces {name} switchport")];
    cmds.extend(more.iter().map(|c| c.to_string()));
    let mut answers = eapi.run(&cmds)?;
    let (state, info) = Switchport::from_json(name, &answers[0]).map_err(|why| {
        DriverError::Failed(format!(
            "{} answered `{}` unreadably: {why}",
            eapi.who(),
            cmds[0]
        ))
    })?;
    answers.remove(0);
    Ok((state, info, answers))
}

/// Reads what a configuration change needs: the port's switchport state and
/// the VLANs the switch has (`show vlan`).
fn read_for_config(eapi: &Eapi, name: &str) -> Result<(Switchport, BTreeSet<u16>)> {
    let (current, _, answers) = read(eapi, name, &["show vlan"])?;
    Ok((current, port::existing_vlans(&answers[0])))
}

/// Takes port `name`, read as `current` on a switch with the VLANs
/// `existing`, to `target` in one configuration batch, then reads it back.
/// Sends nothing when the port is already there. `why` names the purpose in
/// status messages.
fn apply(
    ctx: &Ctx,
    eapi: &Eapi,
    name: &str,
    (current, existing): (Switchport, BTreeSet<u16>),
    target: &PortVlans,
    why: &str,
) -> Result<()> {
    let lines = port::plan(&current, target);
    let missing = port::missing_vlans(target, &existing);
    let wanted = port::describe(target);
    if lines.is_empty() && missing.is_empty() {
        ctx.status(
            format!("{} {name} already in {wanted} ({why})", eapi.who()),
            false,
        );
        return Ok(());
    }
    let mut batch = vec!["enable".to_string(), "configure terminal".to_string()];
    batch.extend(missing.iter().map(|v| format!("vlan {v}")));
    if !lines.is_empty() {
        batch.push(format!("interface {name}"));
        batch.extend(lines);
    }
    batch.push("end".into());
    ctx.debug(format!("{}: runCmds {batch:?}", eapi.who()));
    eapi.run(&batch)?;

    // A switch may accept a line and not act on it: check what it reports.
    let (after, _, _) = read(eapi, name, &[])?;
    if !port::plan(&after, target).is_empty() {
        return Err(DriverError::Failed(format!(
            "{} accepted the configuration of {name} but reports {}, not {wanted}",
            eapi.who(),
            port::describe(&after.vlans())
        )));
    }
    ctx.status(
        format!(
            "{} {name} set to {wanted} ({why}; {} commands)",
            eapi.who(),
            batch.len()
        ),
        false,
    );
    Ok(())
}

/// A target the host passed, checked.
fn checked(port: &SwitchPort, target: &PortVlans) -> Result<PortVlans> {
    port::check_target(target).map_err(|why| {
        DriverError::InvalidInput(format!(
            "cannot apply that configuration to {} {}: {why}",
            port.switch.name, port.port
        ))
    })?;
    Ok(port::with_native_allowed(target))
}

impl NetworkDriver for Eos {
    fn validate_network_services(ctx: &Ctx, switch: &SwitchInfo) -> Result<()> {
        let eapi = Eapi::new(ctx, switch)?;
        match eapi.run(&["show version".to_string()]) {
            Ok(answers) => {
                let field = |key: &str| answers[0].get(key).and_then(Value::as_str);
                ctx.status(
                    format!(
                        "{} answers eAPI: {} EOS {}",
                        eapi.who(),
                        field("modelName").unwrap_or("unknown model"),
                        field("version").unwrap_or("(version not reported)")
                    ),
                    false,
                );
                Ok(())
            }
            // Not reached, refused or busy: nothing more to learn.
            Err(e) if !matches!(e, DriverError::Failed(_)) => Err(e),
            // eAPI answered but not to `show version`: check it runs a show
            // command at all before calling the switch usable.
            Err(e) => {
                eapi.run(&["show vlan 1".to_string()])
                    .map_err(|_| e.clone())?;
                ctx.warn(format!("version unknown: {}", e.message()));
                ctx.status(
                    format!(
                        "{} answers eAPI but not `show version`; EOS version unknown",
                        eapi.who()
                    ),
                    false,
                );
                Ok(())
            }
        }
    }

    fn interrogate_port(ctx: &Ctx, node: &Node, port: &SwitchPort) -> Result<PortInterrogation> {
        let eapi = Eapi::new(ctx, &port.switch)?;
        let name = port_name(port)?;
        let status_cmd = format!("show interfaces {name}");
        let (state, info, answers) = read(&eapi, name, &[&status_cmd])?;
        let status = answers[0]
            .get("interfaces")
            .and_then(Value::as_object)
            .and_then(|all| {
                all.iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .or_else(|| all.iter().next())
            })
            .map(|(_, s)| s.clone())
            .unwrap_or(Value::Null);
        let text = |key: &str| status.get(key).and_then(Value::as_str);
        let link_up = match (text("lineProtocolStatus"), text("interfaceStatus")) {
            (Some(protocol), _) => Some(protocol == "up"),
            (None, Some(status)) => Some(status == "connected"),
            (None, None) => None,
        };
        let description = text("description")
            .filter(|d| !d.is_empty())
            .map(str::to_string);
        let previous: Option<PortVlans> = ctx.kv_get_json(&previous_key(port))?;
        ctx.debug(format!(
            "{} {name} of node {}: {}",
            eapi.who(),
            node.name,
            port::describe(&state.vlans())
        ));
        let raw = json!({
            "switch": port.switch.name,
            "port": name,
            "switchport": info,
            "enabled": state.enabled,
            "interfaceStatus": text("interfaceStatus"),
            "lineProtocolStatus": text("lineProtocolStatus"),
            "description": text("description"),
            "previous": previous,
        });
        Ok(PortInterrogation {
            vlans: state.vlans(),
            link_up,
            description,
            raw_json: raw.to_string(),
        })
    }

    fn config_port_provisioning(
        ctx: &Ctx,
        node: &Node,
        port: &SwitchPort,
        target: &PortVlans,
    ) -> Result<()> {
        let target = checked(port, target)?;
        let eapi = Eapi::new(ctx, &port.switch)?;
        let name = port_name(port)?;
        let state = read_for_config(&eapi, name)?;
        // Remember the configuration before the first change only: a retry
        // must not overwrite it with the provisioning configuration.
        let key = previous_key(port);
        if ctx.kv_get(&key).is_none() {
            ctx.kv_set_json(&key, &state.0.vlans())?;
        }
        let why = format!("provisioning node {}", node.name);
        apply(ctx, &eapi, name, state, &target, &why)
    }

    fn config_port_production(
        ctx: &Ctx,
        node: &Node,
        port: &SwitchPort,
        target: &PortVlans,
    ) -> Result<()> {
        let eapi = Eapi::new(ctx, &port.switch)?;
        let key = previous_key(port);
        if target.mode == PortMode::Other {
            let previous: PortVlans = ctx.kv_get_json(&key)?.ok_or_else(|| {
                DriverError::InvalidInput(format!(
                    "no production VLANs given for {} {} and no configuration from before \
                     provisioning is remembered to restore",
                    port.switch.name, port.port
                ))
            })?;
            port::check_target(&previous).map_err(|why| {
                DriverError::Unsupported(format!(
                    "cannot restore {} {} to its configuration before provisioning ({}): {why}",
                    port.switch.name,
                    port.port,
                    port::describe(&previous)
                ))
            })?;
            let why = format!("restoring node {}'s port as before provisioning", node.name);
            let name = port_name(port)?;
            apply(
                ctx,
                &eapi,
                name,
                read_for_config(&eapi, name)?,
                &previous,
                &why,
            )?;
        } else {
            let target = checked(port, target)?;
            let why = format!("production for node {}", node.name);
            let name = port_name(port)?;
            apply(
                ctx,
                &eapi,
                name,
                read_for_config(&eapi, name)?,
                &target,
                &why,
            )?;
        }
        ctx.kv_delete(&key)
    }
}
