//! Drydock's storage rules: `BootStorageRational`, `StoragePartitioning`,
//! `StorageSizing` and `StorageMountpoints`, and Drydock's size grammar.
//!
//! The rules see storage as Drydock's ingester reads it: a physical device
//! that names a `volume_group` has no partitions (its `partitions` are not
//! read), and a partition that names a `volume_group` has no filesystem.
//! (Drydock's ingester reads a partition's volume group from a `vg` key by
//! mistake, which makes every partition-backed volume group fail
//! `StoragePartitioning`; here such a partition counts as the volume
//! group's physical volume, as Drydock's documentation describes.)

use super::super::Design;
use super::super::documents::{DeviceSpec, HostSpec, LogicalVolumeSpec, PartitionSpec};
use super::{Out, node_ref, nodes_in_order};

/// A size in Drydock's grammar (its MAAS driver's `calculate_bytes`):
/// `[>]<n>(m|mb|g|gb|t|tb|mi|mib|gi|gib|ti|tib|%)`, case as Drydock allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    /// Exactly (or at least, with `>`) this many bytes.
    Bytes {
        /// Bytes.
        bytes: u64,
        /// `>`: at least.
        at_least: bool,
    },
    /// A percentage of the device or volume group.
    Percent(u32),
}

/// Parses Drydock's size grammar (`m`, `g`, `t` are powers of 1000; `mi`,
/// `gi`, `ti` powers of 1024).
pub fn parse_size(s: &str) -> Result<Size, String> {
    let t = s.trim();
    let (at_least, rest) = match t.strip_prefix('>') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let split = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (num, unit) = rest.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("size `{s}` has no number"))?;
    if unit == "%" {
        return match n {
            1..=100 => Ok(Size::Percent(n as u32)),
            _ => Err(format!("size `{s}`: a percentage must be 1-100")),
        };
    }
    let mult: u64 = match unit {
        "m" | "M" | "mb" | "MB" => 1_000_000,
        "g" | "G" | "gb" | "GB" => 1_000_000_000,
        "t" | "T" | "tb" | "TB" => 1_000_000_000_000,
        "mi" | "Mi" | "mib" | "MiB" => 1 << 20,
        "gi" | "Gi" | "gib" | "GiB" => 1 << 30,
        "ti" | "Ti" | "tib" | "TiB" => 1 << 40,
        _ => {
            return Err(format!(
                "size `{s}` is not <number>(m|g|t|mi|gi|ti|%) with an optional leading >"
            ));
        }
    };
    if n == 0 {
        return Err(format!("size `{s}` is zero"));
    }
    n.checked_mul(mult)
        .map(|bytes| Size::Bytes { bytes, at_least })
        .ok_or_else(|| format!("size `{s}` is too large"))
}

/// Drydock's validator's own size reading (`SimpleBytes`): a prefix match of
/// `(\d+)([mMbBgGtT]{1,2})`, powers of 1000. `None` where Drydock reports
/// an invalid size format.
fn simple_bytes(size: Option<&str>) -> Option<u64> {
    let s = size?;
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let unit: String = s[digits..]
        .chars()
        .take_while(|c| "mMbBgGtT".contains(*c))
        .take(2)
        .collect();
    let mult: u64 = match unit.as_str() {
        "m" | "M" | "mb" | "MB" => 1_000_000,
        "g" | "G" | "gb" | "GB" => 1_000_000_000,
        "t" | "T" | "tb" | "TB" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The partitions of a device as Drydock's ingester reads them.
pub(super) fn partitions(dev: &DeviceSpec) -> &[PartitionSpec] {
    if dev.volume_group.is_some() {
        &[]
    } else {
        &dev.partitions
    }
}

/// A partition's mount point as Drydock's ingester reads it.
fn partition_mountpoint(p: &PartitionSpec) -> Option<&str> {
    if p.volume_group.is_some() {
        return None;
    }
    p.filesystem.as_ref()?.mountpoint.as_deref()
}

fn lv_mountpoint(lv: &LogicalVolumeSpec) -> Option<&str> {
    lv.filesystem.as_ref()?.mountpoint.as_deref()
}

/// `BootStorageRational` (DD1001): a partition named `root` of at least
/// 20 GB, and a partition named `boot` after it of at least 1 GB.
pub(super) fn boot_storage_rational(d: &Design, out: &mut Out) {
    const GB: u64 = 1_000_000_000;
    for (name, h) in nodes_in_order(d) {
        let me = || vec![node_ref(name)];
        let mut root_set = false;
        for dev in h.storage.physical_devices.values() {
            for p in partitions(dev) {
                if p.name == "root" {
                    match simple_bytes(p.size.as_deref()) {
                        Some(size) => {
                            root_set = true;
                            if size < 20 * GB {
                                out.error(
                                    format!("Root volume must be > 20GB on BaremetalNode {name}"),
                                    me(),
                                    "Configure a larger root volume",
                                );
                            }
                        }
                        None => out.error(
                            format!(
                                "Root volume has an invalid size format on BaremetalNode{name}."
                            ),
                            me(),
                            "Use a valid root volume storage specification.",
                        ),
                    }
                }
                if root_set && p.name == "boot" {
                    match simple_bytes(p.size.as_deref()) {
                        Some(size) if size < GB => out.error(
                            format!("Boot volume must be > 1GB on BaremetalNode {name}"),
                            me(),
                            "Configure a larger boot volume.",
                        ),
                        Some(_) => {}
                        None => out.error(
                            format!(
                                "Boot volume has an invalid size format on BaremetalNode {name}."
                            ),
                            me(),
                            "Use a valid boot volume storage specification.",
                        ),
                    }
                }
            }
        }
        if !root_set {
            out.error(
                format!("Root volume has to be set and must be > 20GB on BaremetalNode {name}"),
                me(),
                "All nodes require a defined root volume at least 20GB in size.",
            );
        }
    }
}

/// `StoragePartitioning` (DD2002): each device is either partitioned or a
/// volume group's physical volume; each volume group has a physical volume.
pub(super) fn storage_partitioning(d: &Design, out: &mut Out) {
    for (name, h) in nodes_in_order(d) {
        let mut backed: Vec<&String> = Vec::new();
        for dev in h.storage.physical_devices.values() {
            if partitions(dev).is_empty() && dev.volume_group.is_none() {
                out.error(
                    "Either a volume group OR partitions must be defined for each storage device."
                        .into(),
                    vec![node_ref(name)],
                    "A storage device must be used for exactly one of a volume group physical volume or carved into partitions.",
                );
            }
            backed.extend(dev.volume_group.iter());
            backed.extend(
                partitions(dev)
                    .iter()
                    .filter_map(|p| p.volume_group.as_ref()),
            );
        }
        for vg in h.storage.volume_groups.keys() {
            if !backed.contains(&vg) {
                out.error(
                    format!("Volume group {vg} not assigned any physical volumes"),
                    vec![node_ref(name)],
                    "Each volume group should be assigned at least one storage device or partition as a physical volume.",
                );
            }
        }
    }
}

/// A `N%` size's number as Drydock reads it (`size.split('%')`), or `Err`
/// when that number is not an integer (Drydock's rule crashes there, which
/// fails the validation).
fn percent_of(size: Option<&str>) -> Option<Result<i64, String>> {
    let s = size?;
    let parts: Vec<&str> = s.split('%').collect();
    if parts.len() != 2 {
        return None;
    }
    Some(
        parts[0]
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("size {s} is not an integer percentage")),
    )
}

/// `StorageSizing` (DD2003): percentages are not negative and add up to no
/// more than 99% per device; logical volumes' percentages to no more than
/// 99% (Drydock adds them up over all the node's volume groups).
pub(super) fn storage_sizing(d: &Design, out: &mut Out) {
    let diag = "Percentage-based sizes must sum to less than 100%.";
    for (name, h) in nodes_in_order(d) {
        let me = || vec![node_ref(name)];
        for (dev, spec) in &h.storage.physical_devices {
            let mut sum = 0i64;
            for p in partitions(spec) {
                match percent_of(p.size.as_deref()) {
                    None => {}
                    Some(Err(e)) => out.error(
                        format!("Storage partition {} on device {dev}: {e}", p.name),
                        me(),
                        "Partition size must be a positive number.",
                    ),
                    Some(Ok(n)) => {
                        if n < 0 {
                            out.error(
                                format!("Storage partition {} on device {dev} size is < 0", p.name),
                                me(),
                                "Partition size must be a positive number.",
                            );
                        }
                        sum += n;
                    }
                }
                if sum > 99 {
                    out.error(
                        format!("Cumulative partition sizes on device {dev} is greater than 99%."),
                        me(),
                        diag,
                    );
                }
            }
        }
        if h.storage.physical_devices.is_empty() {
            continue; // Drydock checks volume groups per device
        }
        let mut sum = 0i64;
        for (vg, spec) in &h.storage.volume_groups {
            for lv in &spec.logical_volumes {
                match percent_of(lv.size.as_deref()) {
                    None => {}
                    Some(Err(e)) => out.error(format!("Logical Volume {}: {e}", lv.name), me(), ""),
                    Some(Ok(n)) => {
                        if n < 0 {
                            out.error(format!("Logical Volume {} size is < 0 ", lv.name), me(), "");
                        }
                        sum += n;
                    }
                }
            }
            if sum > 99 {
                out.error(
                    format!(
                        "Cumulative logical volume size is greater than 99% in volume group {vg}"
                    ),
                    me(),
                    diag,
                );
            }
        }
    }
}

/// `StorageMountpoints` (DD2004): no mount point twice among a node's
/// partitions and the logical volumes of device-backed volume groups.
/// Drydock stops the rule at the first duplicate; so does this.
pub(super) fn storage_mountpoints(d: &Design, out: &mut Out) {
    for (name, h) in nodes_in_order(d) {
        if let Some(mp) = first_duplicate_mountpoint(h) {
            out.error(
                format!("Mountpoint \"{mp}\" already exists"),
                vec![node_ref(name)],
                "Please use unique mountpoints.",
            );
            return;
        }
    }
}

fn first_duplicate_mountpoint(h: &HostSpec) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for dev in h.storage.physical_devices.values() {
        let lvs = dev
            .volume_group
            .as_ref()
            .and_then(|vg| h.storage.volume_groups.get(vg))
            .map(|vg| vg.logical_volumes.as_slice())
            .unwrap_or_default();
        let mounts = partitions(dev)
            .iter()
            .filter_map(partition_mountpoint)
            .chain(lvs.iter().filter_map(lv_mountpoint));
        for mp in mounts {
            if seen.contains(&mp) {
                return Some(mp.to_owned());
            }
            seen.push(mp);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_drydock_grammar() {
        assert_eq!(
            parse_size("10g"),
            Ok(Size::Bytes {
                bytes: 10_000_000_000,
                at_least: false
            })
        );
        assert_eq!(
            parse_size(">100GiB"),
            Ok(Size::Bytes {
                bytes: 100 << 30,
                at_least: true
            })
        );
        assert_eq!(parse_size("99%"), Ok(Size::Percent(99)));
        assert!(parse_size("101%").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10x").is_err());
        assert!(parse_size("99999999999999999t").is_err());
    }

    #[test]
    fn validator_sizes_read_as_simple_bytes() {
        assert_eq!(simple_bytes(Some("20g")), Some(20_000_000_000));
        assert_eq!(simple_bytes(Some("20GB")), Some(20_000_000_000));
        assert_eq!(simple_bytes(Some("30GiB")), Some(30_000_000_000));
        assert_eq!(simple_bytes(Some(">20g")), None);
        assert_eq!(simple_bytes(Some("50%")), None);
        assert_eq!(simple_bytes(None), None);
    }
}
