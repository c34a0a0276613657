//! apply_node_storage: a machine's layout, partitions, volume groups and
//! logical volumes, and Drydock's size grammar.
//!
//! A design with only a `layout` asks MAAS for that layout
//! (`set_storage_layout`). A design with devices is applied from scratch, as
//! Drydock does: the configuration is reset (flat layout, then volume groups
//! and partitions removed), then partitions are created in order, formatted
//! and mounted, then volume groups and their logical volumes. Re-applying
//! gives the same result. MAAS chooses the partition table type itself.

use drydock_sdk::prelude::*;
use serde_json::Value;

use crate::api::{Form, Maas, list, n, s};
use crate::machine::{Status, label, require};

/// MAAS aligns partitions and logical volumes to 4 MiB (rounding down).
const ALIGN: u64 = 4 << 20;
/// Room left for the partition table: MAAS reports a blank device's whole
/// size as available, then keeps a few MiB once it is partitioned.
const TABLE_MARGIN: u64 = 8 << 20;

/// A size in Drydock's grammar: `10g`, `>100g` (at least, then all that is
/// left), `50%` (of the device or volume group).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    /// Exactly this many bytes.
    Bytes(u64),
    /// At least this many bytes, growing to fill the space left.
    AtLeast(u64),
    /// This share of the whole device or volume group.
    Percent(f64),
}

impl Size {
    /// Parses `[>]<number><unit>`; units `b`, `k`/`kb`, `m`/`mb`, `g`/`gb`,
    /// `t`/`tb` (powers of 1000, as Drydock) and `%`, any case.
    pub fn parse(text: &str) -> Option<Size> {
        let t = text.trim().to_ascii_lowercase();
        let (grow, t) = match t.strip_prefix('>') {
            Some(rest) => (true, rest.trim()),
            None => (false, t.as_str()),
        };
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, unit) = t.split_at(split);
        let number: f64 = number.parse().ok().filter(|x: &f64| *x > 0.0)?;
        if unit == "%" {
            return (!grow && number <= 100.0).then_some(Size::Percent(number));
        }
        let scale = match unit.trim_end_matches('b') {
            "" => 1.0,
            "k" => 1e3,
            "m" => 1e6,
            "g" => 1e9,
            "t" => 1e12,
            _ => return None,
        };
        let bytes = (number * scale) as u64;
        Some(if grow {
            Size::AtLeast(bytes)
        } else {
            Size::Bytes(bytes)
        })
    }

    /// Bytes for a container of `total` bytes with `available` left and
    /// `after` bytes wanted by fixed items after this one, aligned down.
    /// `None` if it does not fit.
    fn bytes(self, total: u64, available: u64, after: u64) -> Option<u64> {
        let want = match self {
            Size::Bytes(b) => b,
            Size::Percent(p) => (total as f64 * p / 100.0) as u64,
            Size::AtLeast(min) => {
                let grow = available.checked_sub(after)? / ALIGN * ALIGN;
                return (grow >= min && grow > 0).then_some(grow);
            }
        };
        let want = want / ALIGN * ALIGN;
        (want > 0 && want <= available).then_some(want)
    }
}

/// Parses a design size, naming the item if it is not valid.
fn size(item: &str, text: &str) -> Result<Size> {
    Size::parse(text).ok_or_else(|| {
        DriverError::InvalidInput(format!(
            "{item}: size `{text}` is not valid (use e.g. 30g, >10g, 50%)"
        ))
    })
}

/// Bytes wanted by the fixed-size (non-growing) items among `sizes`.
fn fixed(sizes: &[Size], total: u64) -> u64 {
    sizes
        .iter()
        .map(|sz| match sz {
            Size::Bytes(b) => b / ALIGN * ALIGN,
            Size::Percent(p) => (total as f64 * p / 100.0) as u64 / ALIGN * ALIGN,
            Size::AtLeast(_) => 0,
        })
        .sum()
}

/// apply_node_storage.
pub fn apply(ctx: &Ctx, node: &Node) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let m = require(ctx, &maas, node, "apply_node_storage")?;
    let id = s(&m, "system_id").to_string();
    let status = n(&m, "status");
    if [Status::DEPLOYED, Status::DEPLOYING].contains(&status) {
        ctx.status(
            format!(
                "{} is {}; its storage is left as deployed",
                label(node, &m),
                s(&m, "status_name")
            ),
            false,
        );
        return Ok(());
    }
    if ![Status::READY, Status::ALLOCATED].contains(&status) {
        return Err(DriverError::Failed(format!(
            "cannot configure the storage of {}: it is {} in MAAS (commission it first)",
            label(node, &m),
            s(&m, "status_name")
        )));
    }
    let storage = &node.storage;
    let layout = |name: &str| {
        maas.post(
            &format!("machines/{id}/"),
            Some("set_storage_layout"),
            Form::new().with("storage_layout", name),
        )
    };
    if storage.physical_devices.is_empty() && storage.volume_groups.is_empty() {
        if let Some(name) = storage.layout.as_deref() {
            ctx.info(format!("storage layout {name} for {}", label(node, &m)));
            layout(name)?;
        }
        return Ok(());
    }
    validate(node)?;
    // Reset: flat, then nothing.
    layout("flat")?;
    for vg in list(&maas.get(&format!("nodes/{id}/volume-groups/"), &[])?) {
        maas.delete(&format!("nodes/{id}/volume-group/{}/", n(vg, "id")))?;
    }
    let devices = maas.get(&format!("nodes/{id}/blockdevices/"), &[])?;
    for bd in list(&devices).iter().filter(|b| s(b, "type") == "physical") {
        for p in list(&bd["partitions"]) {
            maas.delete(&format!(
                "nodes/{id}/blockdevices/{}/partition/{}",
                n(bd, "id"),
                n(p, "id")
            ))?;
        }
    }

    let mut block_pvs: Vec<(String, i64)> = Vec::new(); // (vg, block device id)
    let mut part_pvs: Vec<(String, i64)> = Vec::new(); // (vg, partition id)
    for dev in &storage.physical_devices {
        let bd = block_device(&m, list(&devices), &dev.name).ok_or_else(|| {
            DriverError::InvalidInput(format!(
                "{}: the machine has no block device {}",
                node.name, dev.name
            ))
        })?;
        let bid = n(&bd, "id");
        let bd_path = format!("nodes/{id}/blockdevices/{bid}/");
        if let Some(vg) = &dev.volume_group {
            block_pvs.push((vg.clone(), bid));
            continue;
        }
        let boots = dev.partitions.iter().any(|p| {
            p.bootable
                || p.filesystem
                    .as_ref()
                    .and_then(|f| f.mountpoint.as_deref())
                    .is_some_and(|mp| mp == "/" || mp == "/boot")
        });
        if boots {
            maas.post(&bd_path, Some("set_boot_disk"), Form::new())?;
        }
        let total = n(&bd, "size").max(0) as u64;
        let sizes: Vec<Size> = dev
            .partitions
            .iter()
            .map(|p| size(&format!("partition {} on {}", p.name, dev.name), &p.size))
            .collect::<Result<_>>()?;
        for (i, part) in dev.partitions.iter().enumerate() {
            let now = maas.get(&bd_path, &[])?;
            let mut available = n(&now, "available_size").max(0) as u64;
            if list(&now["partitions"]).is_empty() {
                available = available.saturating_sub(TABLE_MARGIN);
            }
            let bytes = sizes[i]
                .bytes(total, available, fixed(&sizes[i + 1..], total))
                .ok_or_else(|| {
                    DriverError::InvalidInput(format!(
                        "partition {} ({}) does not fit on {} of {}: {} MB left",
                        part.name,
                        part.size,
                        dev.name,
                        node.name,
                        available / 1_000_000
                    ))
                })?;
            let created = maas.post(
                &format!("{bd_path}partitions/"),
                None,
                Form::new()
                    .with("size", bytes)
                    .with("bootable", part.bootable),
            )?;
            let pid = n(&created, "id");
            if let Some(vg) = &part.volume_group {
                part_pvs.push((vg.clone(), pid));
            }
            if let Some(fs) = &part.filesystem {
                filesystem(
                    &maas,
                    &format!("nodes/{id}/blockdevices/{bid}/partition/{pid}"),
                    fs,
                )?;
            }
        }
    }

    for vg in &storage.volume_groups {
        let mut form = Form::new().with("name", &vg.name);
        for (_, bid) in block_pvs.iter().filter(|(g, _)| *g == vg.name) {
            form = form.with("block_devices", bid);
        }
        for (_, pid) in part_pvs.iter().filter(|(g, _)| *g == vg.name) {
            form = form.with("partitions", pid);
        }
        let created = maas.post(&format!("nodes/{id}/volume-groups/"), None, form)?;
        let vg_path = format!("nodes/{id}/volume-group/{}/", n(&created, "id"));
        let total = n(&created, "size").max(0) as u64;
        let sizes: Vec<Size> = vg
            .logical_volumes
            .iter()
            .map(|lv| {
                size(
                    &format!("logical volume {} in {}", lv.name, vg.name),
                    &lv.size,
                )
            })
            .collect::<Result<_>>()?;
        for (i, lv) in vg.logical_volumes.iter().enumerate() {
            let now = maas.get(&vg_path, &[])?;
            let available = n(&now, "available_size").max(0) as u64;
            let bytes = sizes[i]
                .bytes(total, available, fixed(&sizes[i + 1..], total))
                .ok_or_else(|| {
                    DriverError::InvalidInput(format!(
                        "logical volume {} ({}) does not fit in {} of {}: {} MB left",
                        lv.name,
                        lv.size,
                        vg.name,
                        node.name,
                        available / 1_000_000
                    ))
                })?;
            let created = maas.post(
                &vg_path,
                Some("create_logical_volume"),
                Form::new().with("name", &lv.name).with("size", bytes),
            )?;
            if let Some(fs) = &lv.filesystem {
                filesystem(
                    &maas,
                    &format!("nodes/{id}/blockdevices/{}/", n(&created, "id")),
                    fs,
                )?;
            }
        }
    }
    ctx.status(
        format!(
            "{}: storage applied ({} devices, {} volume groups)",
            label(node, &m),
            storage.physical_devices.len(),
            storage.volume_groups.len()
        ),
        false,
    );
    Ok(())
}

/// Every size must parse, every volume group a device or partition names
/// must be defined, and every defined one used.
fn validate(node: &Node) -> Result<()> {
    let storage = &node.storage;
    for dev in &storage.physical_devices {
        for p in &dev.partitions {
            size(&format!("partition {} on {}", p.name, dev.name), &p.size)?;
        }
    }
    for vg in &storage.volume_groups {
        for lv in &vg.logical_volumes {
            size(
                &format!("logical volume {} in {}", lv.name, vg.name),
                &lv.size,
            )?;
        }
    }
    let used: Vec<&String> = storage
        .physical_devices
        .iter()
        .flat_map(|d| {
            d.volume_group
                .iter()
                .chain(d.partitions.iter().filter_map(|p| p.volume_group.as_ref()))
        })
        .collect();
    for name in &used {
        if !storage.volume_groups.iter().any(|vg| &&vg.name == name) {
            return Err(DriverError::InvalidInput(format!(
                "{}: volume group {name} is used but not defined",
                node.name
            )));
        }
    }
    for vg in &storage.volume_groups {
        if !used.contains(&&vg.name) {
            return Err(DriverError::InvalidInput(format!(
                "{}: volume group {} has no physical volume",
                node.name, vg.name
            )));
        }
    }
    Ok(())
}

/// A block device by name, `id_path`, serial, or `bootdisk` (the boot disk).
fn block_device(machine: &Value, devices: &[Value], name: &str) -> Option<Value> {
    let physical = || devices.iter().filter(|b| s(b, "type") == "physical");
    if name == "bootdisk" {
        let boot = n(&machine["boot_disk"], "id");
        return physical()
            .find(|b| n(b, "id") == boot)
            .or_else(|| physical().next())
            .cloned();
    }
    physical()
        .find(|b| s(b, "name") == name || s(b, "id_path") == name || s(b, "serial") == name)
        .cloned()
}

/// Formats (and mounts, if a mount point is given) a partition or block
/// device at `path`.
fn filesystem(maas: &Maas, path: &str, fs: &Filesystem) -> Result<()> {
    maas.post(path, Some("format"), Form::new().with("fstype", &fs.fstype))?;
    if let Some(mp) = &fs.mountpoint {
        maas.post(
            path,
            Some("mount"),
            Form::new()
                .with("mount_point", mp)
                .with_opt("mount_options", fs.mount_options.as_deref()),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drydock_size_grammar() {
        assert_eq!(Size::parse("10g"), Some(Size::Bytes(10_000_000_000)));
        assert_eq!(Size::parse("512MB"), Some(Size::Bytes(512_000_000)));
        assert_eq!(Size::parse(">100g"), Some(Size::AtLeast(100_000_000_000)));
        assert_eq!(Size::parse("50%"), Some(Size::Percent(50.0)));
        assert_eq!(Size::parse("99%"), Some(Size::Percent(99.0)));
        for bad in ["", "g", "10x", ">50%", "101%", "-1g", "0g"] {
            assert_eq!(Size::parse(bad), None, "{bad}");
        }
        let gb = 1_000_000_000;
        assert_eq!(
            Size::Bytes(10 * gb).bytes(100 * gb, 100 * gb, 0),
            Some(9_999_220_736)
        );
        assert_eq!(Size::Bytes(10 * gb).bytes(100 * gb, 5 * gb, 0), None);
        let grow = Size::AtLeast(10 * gb)
            .bytes(100 * gb, 60 * gb, 20 * gb)
            .unwrap();
        assert!(grow <= 40 * gb && grow > 39 * gb);
        assert_eq!(
            Size::AtLeast(50 * gb).bytes(100 * gb, 60 * gb, 20 * gb),
            None
        );
        let most = Size::Percent(99.0).bytes(100 * gb, 100 * gb, 0).unwrap();
        assert!(most <= 99 * gb && most > 99 * gb - (4 << 20));
        assert_eq!(Size::Percent(99.0).bytes(100 * gb, 50 * gb, 0), None);
    }
}
