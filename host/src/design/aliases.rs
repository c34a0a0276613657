//! Device aliases resolved to a node's own device names, as Drydock does
//! (`BaremetalNode.apply_logicalnames` / `get_logicalname`): each alias of
//! the node's hardware profile names a device by bus address (`pci`
//! `0000:00:03.0`, `scsi` `2:0.0.0`, or for network devices
//! `regexp:<pattern>` over PCI addresses); the node's latest `lshw` build
//! data says which device sits at that address and its logical name
//! (`enp0s3`, `/dev/sda` → `sda`). Interface slaves and physical devices
//! named by an alias get that name; without `lshw` data, or when no device
//! matches, the alias stays as written (Drydock's fallback).

use crate::model;
use std::collections::BTreeMap;

/// The largest `lshw` document read (a real one is well under 1 MiB).
pub const MAX_LSHW_BYTES: usize = 16 << 20;

/// Why `lshw` data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LshwError {
    /// Larger than [`MAX_LSHW_BYTES`].
    #[error("lshw data of {0} bytes is larger than {MAX_LSHW_BYTES}")]
    TooLarge(usize),
    /// Not XML.
    #[error("lshw data is not XML: {0}")]
    Xml(String),
}

/// Alias → logical name for each alias a device of `lshw` matches.
pub fn logical_names(
    lshw: &str,
    aliases: &[model::DeviceAlias],
) -> Result<BTreeMap<String, String>, LshwError> {
    if lshw.len() > MAX_LSHW_BYTES {
        return Err(LshwError::TooLarge(lshw.len()));
    }
    let doc = roxmltree::Document::parse(lshw).map_err(|e| LshwError::Xml(e.to_string()))?;
    let child_text = |n: roxmltree::Node<'_, '_>, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(str::trim)
            .map(str::to_owned)
    };
    let devices: Vec<(Option<String>, String, Option<String>)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("node"))
        .filter_map(|n| {
            let businfo = child_text(n, "businfo")?;
            Some((
                n.attribute("class").map(str::to_owned),
                businfo,
                child_text(n, "logicalname"),
            ))
        })
        .collect();
    let last_part = |name: &str| name.rsplit('/').next().unwrap_or(name).to_owned();
    let mut out = BTreeMap::new();
    for a in aliases {
        let found = match a.address.strip_prefix("regexp:") {
            Some(pattern) => {
                let Ok(re) = regex::Regex::new(&format!("^(?:{pattern})")) else {
                    continue;
                };
                devices
                    .iter()
                    .filter(|(class, _, _)| class.as_deref() == Some("network"))
                    .find(|(_, businfo, _)| re.is_match(businfo.trim_start_matches("pci@")))
                    .and_then(|(_, _, name)| name.clone())
            }
            None => {
                let businfo = format!("{}@{}", a.bus_type, a.address);
                devices
                    .iter()
                    .find(|(_, b, _)| *b == businfo)
                    .and_then(|(_, _, name)| name.clone())
            }
        };
        if let Some(name) = found.filter(|n| !n.is_empty()) {
            out.insert(a.alias.clone(), last_part(&name));
        }
    }
    Ok(out)
}

/// Renames interface slaves and physical devices of `node` named by an
/// alias in `names`.
pub fn apply(node: &mut model::Node, names: &BTreeMap<String, String>) {
    let rename = |s: &mut String| {
        if let Some(n) = names.get(s.as_str()) {
            *s = n.clone();
        }
    };
    for i in &mut node.interfaces {
        i.slaves.iter_mut().for_each(rename);
    }
    for d in &mut node.storage.physical_devices {
        rename(&mut d.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LSHW: &str = r#"<?xml version="1.0" standalone="yes" ?>
<list><node id="vm" class="system">
  <node id="pci" class="bridge"><businfo>pci@0000:00:00.0</businfo>
    <node id="network:0" class="network"><businfo>pci@0000:00:03.0</businfo><logicalname>enp0s3</logicalname></node>
    <node id="network:1" class="network"><businfo>pci@0000:00:04.0</businfo><logicalname>enp0s4</logicalname></node>
    <node id="scsi" class="storage"><node id="disk" class="disk"><businfo>scsi@2:0.0.0</businfo><logicalname>/dev/sda</logicalname></node></node>
  </node></node></list>"#;

    fn alias(alias: &str, bus: &str, address: &str) -> model::DeviceAlias {
        model::DeviceAlias {
            alias: alias.into(),
            bus_type: bus.into(),
            address: address.into(),
            dev_type: None,
        }
    }

    #[test]
    fn aliases_resolve_by_bus_address_and_regexp() {
        let names = logical_names(
            LSHW,
            &[
                alias("prim_nic01", "pci", "0000:00:03.0"),
                alias("prim_nic02", "pci", "regexp:0000:00:0[4-9]"),
                alias("primary_boot", "scsi", "2:0.0.0"),
                alias("absent", "pci", "0000:99:00.0"),
            ],
        )
        .unwrap();
        assert_eq!(names["prim_nic01"], "enp0s3");
        assert_eq!(names["prim_nic02"], "enp0s4");
        assert_eq!(names["primary_boot"], "sda");
        assert!(!names.contains_key("absent"));
    }

    #[test]
    fn bad_lshw_is_an_error_not_a_panic() {
        assert!(matches!(
            logical_names("<list><node>", &[]),
            Err(LshwError::Xml(_))
        ));
        let big = "x".repeat(MAX_LSHW_BYTES + 1);
        assert!(matches!(
            logical_names(&big, &[]),
            Err(LshwError::TooLarge(_))
        ));
    }
}
