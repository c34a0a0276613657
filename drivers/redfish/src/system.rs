//! The Redfish model of a node: its `ComputerSystem`, power through
//! `ComputerSystem.Reset`, the boot override, and the facts
//! `interrogate_oob` reports.

use drydock_sdk::prelude::*;
use serde_json::{Value, json};

use crate::bmc::Bmc;

/// Where the systems are when the service root does not say.
const SYSTEMS: &str = "/redfish/v1/Systems";

/// The `ComputerSystem` a call acts on, as read at the start of the call.
pub struct System {
    /// Its URI (after redirects).
    pub path: String,
    /// Its JSON.
    pub json: Value,
}

/// Finds the node's system: the configured id, else the only member, else
/// the vendor's usual id; an `invalid-input` error listing the members
/// otherwise.
pub fn find(bmc: &Bmc) -> Result<System> {
    let collection = bmc.root["Systems"]["@odata.id"]
        .as_str()
        .unwrap_or(SYSTEMS)
        .trim_end_matches('/')
        .to_string();
    let (_, systems) = bmc.get(&collection)?;
    let members: Vec<&str> = systems["Members"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["@odata.id"].as_str()).collect())
        .unwrap_or_default();
    let id_of = |path: &str| {
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(path)
            .to_string()
    };
    let listing = || {
        members
            .iter()
            .map(|m| id_of(m))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let by_id = |id: &str| {
        members
            .iter()
            .find(|m| id_of(m) == id || **m == id)
            .copied()
    };

    let path = match &bmc.settings.system_id {
        Some(id) => match by_id(id) {
            Some(path) => path.to_string(),
            // Not listed by id: a name the BMC redirects (sushy-tools), or
            // nothing.
            None => match bmc.get_if_exists(&format!("{collection}/{id}"))? {
                Some((path, json)) => return Ok(System { path, json }),
                None => {
                    return Err(DriverError::InvalidInput(format!(
                        "BMC {} has no system `{id}` (node {}); its systems are: {}",
                        bmc.addr,
                        bmc.node,
                        listing()
                    )));
                }
            },
        },
        None => match (members.as_slice(), bmc.quirks.system_id.and_then(by_id)) {
            ([only], _) => only.to_string(),
            (_, Some(usual)) => usual.to_string(),
            ([], None) => {
                return Err(DriverError::Failed(format!(
                    "BMC {} lists no systems in {collection}",
                    bmc.addr
                )));
            }
            (_, None) => {
                return Err(DriverError::InvalidInput(format!(
                    "BMC {} manages {} systems ({}): set the node's oob param `system_id` \
                     or the driver setting `system_id` to the one of node {}",
                    bmc.addr,
                    members.len(),
                    listing(),
                    bmc.node
                )));
            }
        },
    };
    let (path, json) = bmc.get(&path)?;
    Ok(System { path, json })
}

/// `PowerState` as the WIT enum (`PoweringOn`, `Paused`... are unknown).
fn power_state(json: &Value) -> PowerState {
    match json["PowerState"].as_str() {
        Some("On") => PowerState::On,
        Some("Off") => PowerState::Off,
        _ => PowerState::Unknown,
    }
}

fn power_name(state: PowerState) -> &'static str {
    match state {
        PowerState::On => "on",
        PowerState::Off => "off",
        PowerState::Unknown => "unknown",
    }
}

/// The reset action's target and its allowed reset types (`None`: the BMC
/// does not say, so the standard ones are assumed).
struct ResetAction {
    target: String,
    allowed: Option<Vec<String>>,
}

impl ResetAction {
    fn read(bmc: &Bmc, sys: &System) -> Result<Self> {
        let action = &sys.json["Actions"]["#ComputerSystem.Reset"];
        let target = action["target"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/Actions/ComputerSystem.Reset", sys.path));
        let strings = |v: &Value| -> Option<Vec<String>> {
            let list = v.as_array()?;
            Some(
                list.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
            )
        };
        let mut allowed = strings(&action["ResetType@Redfish.AllowableValues"]);
        if allowed.is_none()
            && let Some(info) = action["@Redfish.ActionInfo"].as_str()
        {
            let (_, info) = bmc.get(info)?;
            allowed = info["Parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["Name"] == "ResetType"))
                .and_then(|p| strings(&p["AllowableValues"]));
        }
        Ok(ResetAction { target, allowed })
    }

    /// The first of `preferred` the BMC allows.
    fn pick(&self, preferred: &[&'static str]) -> Option<&'static str> {
        preferred.iter().copied().find(|kind| {
            self.allowed
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|a| a == kind))
        })
    }

    /// The `unsupported` error for an operation none of whose reset types
    /// the BMC allows.
    fn unsupported(&self, bmc: &Bmc, what: &str, wanted: &[&str]) -> DriverError {
        DriverError::Unsupported(format!(
            "BMC {} cannot {what} node {}: it allows the reset types [{}], none of {}",
            bmc.addr,
            bmc.node,
            self.allowed.as_deref().unwrap_or_default().join(", "),
            wanted.join(", ")
        ))
    }

    fn reset(&self, bmc: &Bmc, kind: &str) -> Result<()> {
        bmc.post(&self.target, &json!({ "ResetType": kind }))?;
        bmc.ctx.status(
            format!("{}: {kind} requested from BMC {}", bmc.node, bmc.addr),
            false,
        );
        Ok(())
    }
}

/// Reads the system's power state, treating a retryable failure (a BMC
/// briefly unresponsive during a reset) as not known yet.
fn read_power(bmc: &Bmc, sys: &System) -> Result<Option<PowerState>> {
    match bmc.get(&sys.path) {
        Ok((_, json)) => Ok(Some(power_state(&json))),
        Err(e) if e.is_retryable() => {
            bmc.ctx
                .warn(format!("reading power state: {}", e.message()));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Polls until the system reports `want`, within the call's deadline.
fn wait_power(bmc: &Bmc, sys: &System, want: PowerState) -> Result<()> {
    let what = format!(
        "node {} to report power {} (BMC {})",
        bmc.node,
        power_name(want),
        bmc.addr
    );
    bmc.ctx.poll_until(bmc.settings.poll_interval, &what, || {
        Ok((read_power(bmc, sys)? == Some(want)).then_some(()))
    })?;
    bmc.ctx.status(
        format!("{} is powered {}", bmc.node, power_name(want)),
        false,
    );
    Ok(())
}

/// Polls until the system reports `want` or `window` has passed (or the
/// deadline is near); true if it got there.
fn wait_power_within(bmc: &Bmc, sys: &System, want: PowerState, window: Duration) -> Result<bool> {
    let start = bmc.ctx.deadline_remaining();
    loop {
        if read_power(bmc, sys)? == Some(want) {
            return Ok(true);
        }
        let elapsed = start.saturating_sub(bmc.ctx.deadline_remaining());
        if elapsed >= window {
            return Ok(false);
        }
        let nap = bmc.settings.poll_interval.min(window - elapsed);
        if bmc.ctx.sleep(nap).is_err() {
            return Ok(false);
        }
    }
}

/// Powers off: `GracefulShutdown` first when allowed and enabled, then
/// `ForceOff` if the node is still on after `graceful_timeout_s`.
pub fn power_off(bmc: &Bmc, sys: &System) -> Result<()> {
    if power_state(&sys.json) == PowerState::Off {
        bmc.ctx
            .status(format!("{} is already off", bmc.node), false);
        return Ok(());
    }
    turn_off(bmc, sys, &ResetAction::read(bmc, sys)?)
}

fn turn_off(bmc: &Bmc, sys: &System, reset: &ResetAction) -> Result<()> {
    if bmc.settings.graceful && reset.pick(&["GracefulShutdown"]).is_some() {
        reset.reset(bmc, "GracefulShutdown")?;
        let window = bmc.settings.graceful_timeout;
        if wait_power_within(bmc, sys, PowerState::Off, window)? {
            bmc.ctx
                .status(format!("{} is powered off", bmc.node), false);
            return Ok(());
        }
        bmc.ctx.status(
            format!(
                "{} did not shut down within {} s; forcing it off",
                bmc.node,
                window.as_secs()
            ),
            false,
        );
    }
    let kind = reset
        .pick(&["ForceOff"])
        .ok_or_else(|| reset.unsupported(bmc, "power off", &["ForceOff"]))?;
    reset.reset(bmc, kind)?;
    wait_power(bmc, sys, PowerState::Off)
}

/// Powers on with `On` (or `ForceOn`).
pub fn power_on(bmc: &Bmc, sys: &System) -> Result<()> {
    if power_state(&sys.json) == PowerState::On {
        bmc.ctx.status(format!("{} is already on", bmc.node), false);
        return Ok(());
    }
    turn_on(bmc, sys, &ResetAction::read(bmc, sys)?)
}

fn turn_on(bmc: &Bmc, sys: &System, reset: &ResetAction) -> Result<()> {
    let wanted = ["On", "ForceOn"];
    let kind = reset
        .pick(&wanted)
        .ok_or_else(|| reset.unsupported(bmc, "power on", &wanted))?;
    reset.reset(bmc, kind)?;
    wait_power(bmc, sys, PowerState::On)
}

/// Power-cycles with `ForceRestart` (or `PowerCycle`) where allowed and
/// the `cycle` setting does not say `off-on`, else off then on; a node that is off is powered on. Waits until it reports
/// on (a BMC that never reports off during a restart is done at once).
pub fn power_cycle(bmc: &Bmc, sys: &System) -> Result<()> {
    let reset = ResetAction::read(bmc, sys)?;
    if power_state(&sys.json) != PowerState::On {
        bmc.ctx
            .status(format!("{} is not on; powering it on", bmc.node), false);
        return turn_on(bmc, sys, &reset);
    }
    let restart = reset
        .pick(&["ForceRestart", "PowerCycle"])
        .filter(|_| bmc.settings.cycle_with_reset);
    match restart {
        Some(kind) => {
            reset.reset(bmc, kind)?;
            wait_power(bmc, sys, PowerState::On)
        }
        None => {
            turn_off(bmc, sys, &reset)?;
            turn_on(bmc, sys, &reset)
        }
    }
}

/// Redfish's name for a boot device.
fn redfish_target(device: BootDevice) -> &'static str {
    match device {
        BootDevice::Pxe => "Pxe",
        BootDevice::Disk => "Hdd",
        BootDevice::Cdrom => "Cd",
        BootDevice::BiosSetup => "BiosSetup",
    }
}

/// Checks `value` against the BMC's `<field>@Redfish.AllowableValues`.
fn allowed(bmc: &Bmc, boot: &Value, field: &str, value: &str) -> Result<()> {
    let Some(list) = boot[format!("{field}@Redfish.AllowableValues")].as_array() else {
        return Ok(());
    };
    if list.iter().any(|v| v == value) {
        return Ok(());
    }
    let offered: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    Err(DriverError::Unsupported(format!(
        "BMC {} does not offer {field} `{value}` for node {} (it offers: {})",
        bmc.addr,
        bmc.node,
        offered.join(", ")
    )))
}

/// Sets the boot override (target, once or continuous), re-sending the
/// boot mode where the vendor's quirks say so.
pub fn set_boot(bmc: &Bmc, sys: &System, target: BootTarget) -> Result<()> {
    let boot = &sys.json["Boot"];
    let device = redfish_target(target.device);
    let enabled = if target.persistent {
        "Continuous"
    } else {
        "Once"
    };
    allowed(bmc, boot, "BootSourceOverrideTarget", device)?;
    allowed(bmc, boot, "BootSourceOverrideEnabled", enabled)?;
    let mut patch = json!({ "Boot": {
        "BootSourceOverrideTarget": device,
        "BootSourceOverrideEnabled": enabled,
    }});
    if bmc.quirks.resend_boot_mode
        && let Some(mode) = boot["BootSourceOverrideMode"].as_str()
    {
        patch["Boot"]["BootSourceOverrideMode"] = json!(mode);
    }
    bmc.patch(&sys.path, &patch)?;
    bmc.ctx.status(
        format!("{}: boot override set to {device} ({enabled})", bmc.node),
        false,
    );
    Ok(())
}

/// The boot override the system reports, if any.
fn boot_override(boot: &Value) -> Option<BootTarget> {
    let persistent = match boot["BootSourceOverrideEnabled"].as_str()? {
        "Once" => false,
        "Continuous" => true,
        _ => return None,
    };
    let device = match boot["BootSourceOverrideTarget"].as_str()? {
        "Pxe" => BootDevice::Pxe,
        "Hdd" => BootDevice::Disk,
        "Cd" => BootDevice::Cdrom,
        "BiosSetup" => BootDevice::BiosSetup,
        _ => return None,
    };
    Some(BootTarget { device, persistent })
}

/// The system's facts and the raw JSON read: `{"system": ..., "ethernet_interfaces": [...]}`.
pub fn facts(bmc: &Bmc, sys: &System) -> Result<(OobFacts, Value)> {
    let json = &sys.json;
    let text = |key: &str| {
        json[key]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let nics = match json["EthernetInterfaces"]["@odata.id"].as_str() {
        Some(path) => ethernet_interfaces(bmc, path)?,
        None => Vec::new(),
    };
    let mut macs: Vec<String> = nics
        .iter()
        .filter_map(|n| {
            n["MACAddress"]
                .as_str()
                .or(n["PermanentMACAddress"].as_str())
        })
        .map(str::to_ascii_lowercase)
        .collect();
    // A NIC may be listed twice (DMTF's rack-server recording lists one MAC
    // under two interfaces): each MAC once, in order.
    let mut seen = std::collections::HashSet::new();
    macs.retain(|m| seen.insert(m.clone()));
    let facts = OobFacts {
        power: power_state(json),
        boot_override: boot_override(&json["Boot"]),
        manufacturer: text("Manufacturer"),
        model: text("Model"),
        serial: text("SerialNumber"),
        bios_version: text("BiosVersion"),
        macs,
    };
    Ok((
        facts,
        json!({ "system": json, "ethernet_interfaces": nics }),
    ))
}

/// The system's network interfaces. A BMC that fails to list them (some
/// answer 500) gives none, with a warning; credentials refused still fail.
fn ethernet_interfaces(bmc: &Bmc, path: &str) -> Result<Vec<Value>> {
    let skip = |e: DriverError| -> Result<Vec<Value>> {
        if matches!(e, DriverError::Auth(_)) {
            return Err(e);
        }
        bmc.ctx.warn(format!(
            "no MAC addresses for {}: {}",
            bmc.node,
            e.message()
        ));
        Ok(Vec::new())
    };
    let collection = match bmc.get(path) {
        Ok((_, c)) => c,
        Err(e) => return skip(e),
    };
    let mut nics = Vec::new();
    for member in collection["Members"].as_array().into_iter().flatten() {
        let Some(member) = member["@odata.id"].as_str() else {
            continue;
        };
        match bmc.get(member) {
            Ok((_, nic)) => nics.push(nic),
            Err(e) => return skip(e),
        }
    }
    Ok(nics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_overrides_read_back() {
        let read = |enabled: &str, target: &str| {
            boot_override(&json!({
                "BootSourceOverrideEnabled": enabled,
                "BootSourceOverrideTarget": target,
            }))
        };
        assert_eq!(read("Disabled", "Pxe"), None);
        assert_eq!(read("Once", "UefiHttp"), None);
        for device in [
            BootDevice::Pxe,
            BootDevice::Disk,
            BootDevice::Cdrom,
            BootDevice::BiosSetup,
        ] {
            let want = BootTarget {
                device,
                persistent: true,
            };
            assert_eq!(read("Continuous", redfish_target(device)), Some(want));
        }
        assert_eq!(
            read("Once", "Hdd"),
            Some(BootTarget {
                device: BootDevice::Disk,
                persistent: false
            })
        );
    }

    #[test]
    fn power_states() {
        assert_eq!(power_state(&json!({"PowerState": "On"})), PowerState::On);
        assert_eq!(power_state(&json!({"PowerState": "Off"})), PowerState::Off);
        assert_eq!(
            power_state(&json!({"PowerState": "PoweringOn"})),
            PowerState::Unknown
        );
        assert_eq!(power_state(&json!({})), PowerState::Unknown);
    }
}
