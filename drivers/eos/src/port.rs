//! A port's switchport state and the configuration lines that move it to a
//! target. Pure: no I/O, so every rule here is visible in one place.
//!
//! EOS vocabulary kept as data: VLAN lists read `ALL`, `NONE`, `1-4094` or
//! `10,20-22`; a port that is not a switchport (routed) reports
//! `enabled: false`; modes other than `access` and `trunk` (`dot1qTunnel`,
//! `tap`, `tool`) read as [`PortMode::Other`].

use std::collections::BTreeSet;

use drydock_sdk::prelude::*;
use serde_json::Value;

/// The highest VLAN id.
pub const MAX_VLAN: u16 = 4094;

/// Parses an EOS VLAN list: `ALL`, `NONE`, `1-4094`, `10,20-22`. `None` if
/// the text is not a VLAN list.
pub fn parse_vlans(text: &str) -> Option<Vec<u16>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return Some((1..=MAX_VLAN).collect());
    }
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Some(Vec::new());
    }
    let mut vlans = BTreeSet::new();
    for part in text.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let first: u16 = first.trim().parse().ok()?;
        let last: u16 = last.trim().parse().ok()?;
        if first == 0 || last > MAX_VLAN || first > last {
            return None;
        }
        vlans.extend(first..=last);
    }
    Some(vlans.into_iter().collect())
}

/// Formats VLANs as EOS reads them (`10,20-22`), `none` if there are none.
pub fn format_vlans(vlans: &[u16]) -> String {
    let sorted: BTreeSet<u16> = vlans.iter().copied().collect();
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for vlan in sorted {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == vlan => *last = vlan,
            _ => ranges.push((vlan, vlan)),
        }
    }
    if ranges.is_empty() {
        return "none".into();
    }
    ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A port's state as `show interfaces <port> switchport` reports it: every
/// field, whatever the mode, so that plans change only what differs.
#[derive(Clone, Debug, PartialEq)]
pub struct Switchport {
    /// False for a routed port (`no switchport`).
    pub enabled: bool,
    /// Mode; `Other` for a routed port.
    pub mode: PortMode,
    /// Access VLAN (kept by EOS in any mode).
    pub access_vlan: u16,
    /// Native VLAN of the trunk (kept by EOS in any mode).
    pub native_vlan: u16,
    /// VLANs the trunk allows, sorted.
    pub allowed_vlans: Vec<u16>,
}

impl Switchport {
    /// Reads port `port` from the JSON answer of `show interfaces <port>
    /// switchport`; the error says what is missing or unreadable.
    pub fn from_json(port: &str, answer: &Value) -> Result<(Self, Value), String> {
        let ports = answer
            .get("switchports")
            .and_then(Value::as_object)
            .ok_or("the answer has no `switchports`")?;
        // EOS keys the answer by the full name (`Et1` answers `Ethernet1`).
        let entry = ports
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(port))
            .or_else(|| (ports.len() == 1).then(|| ports.iter().next()).flatten())
            .map(|(_, entry)| entry)
            .ok_or_else(|| format!("the answer does not list port {port}"))?;
        let info = entry.get("switchportInfo").cloned().unwrap_or(Value::Null);
        let enabled = entry
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let vlan = |key: &str| -> Result<u16, String> {
            info.get(key)
                .and_then(Value::as_u64)
                .and_then(|v| u16::try_from(v).ok())
                .ok_or_else(|| format!("`{key}` is missing or not a VLAN id"))
        };
        let mode = match info.get("mode").and_then(Value::as_str) {
            _ if !enabled => PortMode::Other,
            Some("access") => PortMode::Access,
            Some("trunk") => PortMode::Trunk,
            _ => PortMode::Other,
        };
        let allowed_text = info
            .get("trunkAllowedVlans")
            .and_then(Value::as_str)
            .ok_or("`trunkAllowedVlans` is missing")?;
        let allowed_vlans = parse_vlans(allowed_text)
            .ok_or_else(|| format!("`trunkAllowedVlans` = `{allowed_text}` is not a VLAN list"))?;
        let state = Switchport {
            enabled,
            mode,
            access_vlan: vlan("accessVlanId")?,
            native_vlan: vlan("trunkingNativeVlanId")?,
            allowed_vlans,
        };
        Ok((state, info))
    }

    /// The VLAN configuration that matters in the current mode.
    pub fn vlans(&self) -> PortVlans {
        let (access_vlan, native_vlan, allowed_vlans) = match self.mode {
            PortMode::Access => (Some(self.access_vlan), None, Vec::new()),
            PortMode::Trunk => (None, Some(self.native_vlan), self.allowed_vlans.clone()),
            PortMode::Other => (None, None, Vec::new()),
        };
        PortVlans {
            mode: self.mode,
            access_vlan,
            native_vlan,
            allowed_vlans,
        }
    }
}

/// Checks that `target` can be applied: access mode with an access VLAN, or
/// trunk mode; every VLAN id in 1..=4094.
pub fn check_target(target: &PortVlans) -> Result<(), String> {
    match target.mode {
        PortMode::Other => return Err("only access and trunk modes can be applied".into()),
        PortMode::Access if target.access_vlan.is_none() => {
            return Err("access mode needs an access VLAN".into());
        }
        _ => {}
    }
    let ids = target.access_vlan.iter().chain(&target.native_vlan);
    match ids
        .chain(&target.allowed_vlans)
        .find(|v| !(1..=MAX_VLAN).contains(*v))
    {
        Some(bad) => Err(format!("VLAN {bad} is outside 1-{MAX_VLAN}")),
        None => Ok(()),
    }
}

/// A trunk target as applied: its native VLAN is added to the allowed list
/// (EOS drops untagged frames of a native VLAN the trunk does not allow).
pub fn with_native_allowed(target: &PortVlans) -> PortVlans {
    let mut target = target.clone();
    if let (PortMode::Trunk, Some(native)) = (target.mode, target.native_vlan)
        && !target.allowed_vlans.contains(&native)
    {
        target.allowed_vlans.push(native);
    }
    target.allowed_vlans.sort_unstable();
    target.allowed_vlans.dedup();
    target
}

/// The interface-mode lines that take `current` to `target` (a checked
/// target), changing only what differs; empty when the port is there. A
/// trunk target without a native VLAN leaves the native VLAN as it is.
pub fn plan(current: &Switchport, target: &PortVlans) -> Vec<String> {
    let mut lines = Vec::new();
    if !current.enabled {
        lines.push("switchport".to_string());
    }
    match target.mode {
        PortMode::Access => {
            if current.mode != PortMode::Access {
                lines.push("switchport mode access".into());
            }
            if let Some(vlan) = target.access_vlan
                && vlan != current.access_vlan
            {
                lines.push(format!("switchport access vlan {vlan}"));
            }
        }
        PortMode::Trunk => {
            if current.mode != PortMode::Trunk {
                lines.push("switchport mode trunk".into());
            }
            if let Some(vlan) = target.native_vlan
                && vlan != current.native_vlan
            {
                lines.push(format!("switchport trunk native vlan {vlan}"));
            }
            let mut allowed = target.allowed_vlans.clone();
            allowed.sort_unstable();
            allowed.dedup();
            if allowed != current.allowed_vlans {
                lines.push(format!(
                    "switchport trunk allowed vlan {}",
                    format_vlans(&allowed)
                ));
            }
        }
        PortMode::Other => {}
    }
    lines
}

/// The VLANs `target` uses that the switch lacks (`existing`, from `show
/// vlan`). An allowed list of every VLAN (1-4094) means "allow all", not
/// "create all": only the access or native VLAN counts then.
pub fn missing_vlans(target: &PortVlans, existing: &BTreeSet<u16>) -> Vec<u16> {
    let all = target.allowed_vlans.len() >= usize::from(MAX_VLAN);
    let allowed = if all {
        &[][..]
    } else {
        &target.allowed_vlans[..]
    };
    let wanted: BTreeSet<u16> = target
        .access_vlan
        .iter()
        .chain(&target.native_vlan)
        .chain(allowed)
        .copied()
        .collect();
    wanted.difference(existing).copied().collect()
}

/// The VLAN ids in the JSON answer of `show vlan`.
pub fn existing_vlans(answer: &Value) -> BTreeSet<u16> {
    answer
        .get("vlans")
        .and_then(Value::as_object)
        .map(|vlans| vlans.keys().filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default()
}

/// A short description of `vlans` for status messages, e.g. `trunk native
/// 100 allowed 100,200`.
pub fn describe(vlans: &PortVlans) -> String {
    match vlans.mode {
        PortMode::Access => format!("access VLAN {}", or_unset(vlans.access_vlan)),
        PortMode::Trunk => format!(
            "trunk native VLAN {} allowing {}",
            or_unset(vlans.native_vlan),
            format_vlans(&vlans.allowed_vlans)
        ),
        PortMode::Other => "another mode (not access or trunk)".into(),
    }
}

fn or_unset(vlan: Option<u16>) -> String {
    vlan.map_or_else(|| "unchanged".into(), |v| v.to_string())
}
