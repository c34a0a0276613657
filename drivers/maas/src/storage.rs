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

/// Bytes for a partition or logical volume of `size` in a container of
/// `total` bytes with `available` left and `after` bytes wanted by fixed items
/// after it, aligned down. `None` if it does not fit. Sizes arrive parsed by
/// the host (Drydock's grammar, WIT 0.2.0 `size`).
fn fit(size: Size, total: u64, available: u64, after: u64) -> Option<u64> {
    let want = match size {
        Size::AtLeast(min) => {
            let grow = available.checked_sub(after)? / ALIGN * ALIGN;
            return (grow >= min && grow > 0).then_some(grow);
        }
        exact => exact.bytes_of(total),
    };
    let want = want / ALIGN * ALIGN;
    (want > 0 && want <= available).then_some(want)
}

/// A size for operators: `10000 MB`, `at least 10000 MB`, `50%`.
fn shown(size: Size) -> String {
    match size {
        Size::Bytes(b) => format!("{} MB", b / 1_000_000),
        Size::AtLeast(b) => format!("at least {} MB", b / 1_000_000),
        Size::Percent(p) => format!("{p}%"),
    }
}

/// Bytes wanted by the fixed-size (non-growing) items among `sizes`.
fn fixed(sizes: &[Size], total: u64) -> u64 {
    sizes
        .iter()
        .map(|sz| match sz {
            Size::AtLeast(_) => 0,
            exact => exact.bytes_of(total) / ALIGN * ALIGN,
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
        let sizes: Vec<Size> = dev.partitions.iter().map(|p| p.size).collect();
        for (i, part) in dev.partitions.iter().enumerate() {
            let now = maas.get(&bd_path, &[])?;
            let mut available = n(&now, "available_size").max(0) as u64;
            if list(&now["partitions"]).is_empty() {
                available = available.saturating_sub(TABLE_MARGIN);
            }
            let bytes = fit(sizes[i], total, available, fixed(&sizes[i + 1..], total)).ok_or_else(
                || {
                    DriverError::InvalidInput(format!(
                        "partition {} ({}) does not fit on {} of {}: {} MB left",
                        part.name,
                        shown(part.size),
                        dev.name,
                        node.name,
                        available / 1_000_000
                    ))
                },
            )?;
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
        let sizes: Vec<Size> = vg.logical_volumes.iter().map(|lv| lv.size).collect();
        for (i, lv) in vg.logical_volumes.iter().enumerate() {
            let now = maas.get(&vg_path, &[])?;
            let available = n(&now, "available_size").max(0) as u64;
            let bytes = fit(sizes[i], total, available, fixed(&sizes[i + 1..], total)).ok_or_else(
                || {
                    DriverError::InvalidInput(format!(
                        "logical volume {} ({}) does not fit in {} of {}: {} MB left",
                        lv.name,
                        shown(lv.size),
                        vg.name,
                        node.name,
                        available / 1_000_000
                    ))
                },
            )?;
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

/// Every volume group a device or partition names must be defined, and
/// every defined one used (sizes arrive parsed by the host).
fn validate(node: &Node) -> Result<()> {
    let storage = &node.storage;
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
    fn sizes_fit_their_container() {
        let gb = 1_000_000_000;
        assert_eq!(
            fit(Size::Bytes(10 * gb), 100 * gb, 100 * gb, 0),
            Some(9_999_220_736)
        );
        assert_eq!(fit(Size::Bytes(10 * gb), 100 * gb, 5 * gb, 0), None);
        let grow = fit(Size::AtLeast(10 * gb), 100 * gb, 60 * gb, 20 * gb).unwrap();
        assert!(grow <= 40 * gb && grow > 39 * gb);
        assert_eq!(
            fit(Size::AtLeast(50 * gb), 100 * gb, 60 * gb, 20 * gb),
            None
        );
        let most = fit(Size::Percent(99), 100 * gb, 100 * gb, 0).unwrap();
        assert!(most <= 99 * gb && most > 99 * gb - (4 << 20));
        assert_eq!(fit(Size::Percent(99), 100 * gb, 50 * gb, 0), None);
        assert_eq!(
            fixed(&[Size::Percent(50), Size::AtLeast(gb)], 8 << 30),
            4 << 30
        );
        assert_eq!(shown(Size::AtLeast(10 * gb)), "at least 10000 MB");
    }
}
