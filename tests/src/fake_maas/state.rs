//! The fake region's state: machines and their storage and interfaces,
//! fabrics, VLANs, subnets, IP ranges, static routes, tags, SSH keys,
//! package repositories, domains, boot resources, rack controllers; and the
//! JSON each renders to, in the shapes MAAS 2.0 answers.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// MAAS node status codes (`maasserver.enum.NODE_STATUS`).
pub mod status {
    #![allow(missing_docs)]
    pub const NEW: u8 = 0;
    pub const COMMISSIONING: u8 = 1;
    pub const FAILED_COMMISSIONING: u8 = 2;
    pub const READY: u8 = 4;
    pub const DEPLOYED: u8 = 6;
    pub const BROKEN: u8 = 8;
    pub const DEPLOYING: u8 = 9;
    pub const ALLOCATED: u8 = 10;
    pub const FAILED_DEPLOYMENT: u8 = 11;
    pub const RELEASING: u8 = 12;
    pub const FAILED_RELEASING: u8 = 13;
    pub const DISK_ERASING: u8 = 14;
    pub const FAILED_DISK_ERASING: u8 = 15;

    /// MAAS's display name of a status code.
    pub fn name(code: u8) -> &'static str {
        match code {
            NEW => "New",
            COMMISSIONING => "Commissioning",
            FAILED_COMMISSIONING => "Failed commissioning",
            3 => "Missing",
            READY => "Ready",
            5 => "Reserved",
            DEPLOYED => "Deployed",
            7 => "Retired",
            BROKEN => "Broken",
            DEPLOYING => "Deploying",
            ALLOCATED => "Allocated",
            FAILED_DEPLOYMENT => "Failed deployment",
            RELEASING => "Releasing",
            FAILED_RELEASING => "Releasing failed",
            DISK_ERASING => "Disk erasing",
            FAILED_DISK_ERASING => "Failed disk erasing",
            _ => "Unknown",
        }
    }
}

/// Bytes MAAS keeps for a partition table once a device has one.
pub const PARTITION_TABLE_OVERHEAD: u64 = 5 << 20;
/// Partition and logical volume alignment (sizes are rounded down).
pub const ALIGN: u64 = 4 << 20;

/// A status change due at a time.
#[derive(Clone, Debug)]
pub struct Pending {
    /// When it lands.
    pub at: Instant,
    /// New status.
    pub to: u8,
    /// New status message.
    pub message: String,
}

/// A file system on a partition or block device.
#[derive(Clone, Debug, Default)]
pub struct Fs {
    /// e.g. `ext4`.
    pub fstype: String,
    /// Mount point, if mounted.
    pub mount_point: Option<String>,
    /// Mount options.
    pub mount_options: Option<String>,
}

/// A partition.
#[derive(Clone, Debug)]
pub struct Partition {
    /// Id.
    pub id: i64,
    /// Size in bytes.
    pub size: u64,
    /// Boot flag.
    pub bootable: bool,
    /// File system.
    pub fs: Option<Fs>,
    /// Volume group it is a physical volume of.
    pub vg: Option<i64>,
}

/// A block device: physical, or a logical volume (`virtual`).
#[derive(Clone, Debug)]
pub struct BlockDevice {
    /// Id.
    pub id: i64,
    /// Name, e.g. `sda` or `vg0-root`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Serial number.
    pub serial: String,
    /// Partitions, in order.
    pub partitions: Vec<Partition>,
    /// File system on the whole device.
    pub fs: Option<Fs>,
    /// Volume group the whole device is a physical volume of (physical), or
    /// the group the logical volume is in (virtual).
    pub vg: Option<i64>,
    /// True for a logical volume.
    pub virtual_: bool,
}

impl BlockDevice {
    /// Space left, as MAAS computes it.
    pub fn available(&self) -> u64 {
        if self.fs.is_some() || self.vg.is_some() || self.virtual_ {
            return 0;
        }
        if self.partitions.is_empty() {
            return self.size;
        }
        let used: u64 = self.partitions.iter().map(|p| p.size).sum();
        self.size
            .saturating_sub(PARTITION_TABLE_OVERHEAD)
            .saturating_sub(used)
    }
}

/// A volume group.
#[derive(Clone, Debug)]
pub struct VolumeGroup {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Size (sum of its physical volumes).
    pub size: u64,
}

/// A subnet link of an interface.
#[derive(Clone, Debug)]
pub struct Link {
    /// Id.
    pub id: i64,
    /// `static`, `dhcp`, `link_up` or `auto`.
    pub mode: String,
    /// Subnet id.
    pub subnet: i64,
    /// Static address.
    pub ip: Option<String>,
}

/// A machine interface.
#[derive(Clone, Debug)]
pub struct Interface {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `physical`, `bond` or `vlan`.
    pub kind: String,
    /// MAC address.
    pub mac: String,
    /// VLAN id (not the tag).
    pub vlan: Option<i64>,
    /// Parent interface ids.
    pub parents: Vec<i64>,
    /// Subnet links.
    pub links: Vec<Link>,
    /// MTU.
    pub mtu: u32,
    /// Bond mode (bonds).
    pub bond_mode: Option<String>,
}

/// A machine.
#[derive(Clone, Debug)]
pub struct Machine {
    /// System id.
    pub system_id: String,
    /// Host name.
    pub hostname: String,
    /// Domain id.
    pub domain: i64,
    /// Status code.
    pub status: u8,
    /// Status message.
    pub status_message: String,
    /// Power type, e.g. `ipmi`.
    pub power_type: String,
    /// Power parameters (`power_address`, `power_user`...).
    pub power_parameters: BTreeMap<String, String>,
    /// Interfaces.
    pub interfaces: Vec<Interface>,
    /// Block devices (physical, then logical volumes).
    pub block_devices: Vec<BlockDevice>,
    /// Volume groups.
    pub volume_groups: Vec<VolumeGroup>,
    /// Boot disk id.
    pub boot_disk: i64,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// Owner (set by allocate).
    pub owner: Option<String>,
    /// Deployed OS series.
    pub distro_series: String,
    /// Deployed kernel.
    pub hwe_kernel: Option<String>,
    /// User data given at deploy (decoded).
    pub user_data: Option<Vec<u8>>,
    /// Whether the last release asked to erase disks.
    pub erased: bool,
    /// A status change in progress.
    pub pending: Option<Pending>,
    /// Fault: commissioning never finishes (this status message stays).
    pub stuck_commissioning: Option<String>,
    /// Fault: commissioning fails with this message.
    pub fail_commissioning: Option<String>,
    /// Fault: deployment fails with this message.
    pub fail_deployment: Option<String>,
    /// How many times each op was invoked on this machine.
    pub ops: BTreeMap<String, u32>,
}

/// A VLAN.
#[derive(Clone, Debug)]
pub struct Vlan {
    /// Id.
    pub id: i64,
    /// Fabric id.
    pub fabric: i64,
    /// Tag (0 = untagged).
    pub vid: i64,
    /// Name.
    pub name: String,
    /// MTU.
    pub mtu: u32,
    /// DHCP served by MAAS.
    pub dhcp_on: bool,
    /// Rack controller serving DHCP.
    pub primary_rack: Option<String>,
}

/// A subnet.
#[derive(Clone, Debug)]
pub struct Subnet {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// CIDR.
    pub cidr: String,
    /// VLAN id.
    pub vlan: i64,
    /// Gateway.
    pub gateway_ip: Option<String>,
    /// DNS servers.
    pub dns_servers: Vec<String>,
}

/// An IP range.
#[derive(Clone, Debug)]
pub struct IpRange {
    /// Id.
    pub id: i64,
    /// `dynamic` or `reserved`.
    pub kind: String,
    /// First address.
    pub start: String,
    /// Last address.
    pub end: String,
    /// Subnet id.
    pub subnet: i64,
    /// Comment.
    pub comment: String,
}

/// A static route.
#[derive(Clone, Debug)]
pub struct StaticRoute {
    /// Id.
    pub id: i64,
    /// Source subnet id.
    pub source: i64,
    /// Destination subnet id.
    pub destination: i64,
    /// Next hop.
    pub gateway_ip: String,
    /// Metric.
    pub metric: i64,
}

/// A tag.
#[derive(Clone, Debug, Default)]
pub struct Tag {
    /// Name.
    pub name: String,
    /// Comment.
    pub comment: String,
    /// Kernel options for tagged machines.
    pub kernel_opts: String,
}

/// A package repository.
#[derive(Clone, Debug, Default)]
pub struct Repository {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// URL.
    pub url: String,
    /// Distributions.
    pub distributions: Vec<String>,
    /// Components.
    pub components: Vec<String>,
    /// Signing key.
    pub key: String,
    /// Enabled.
    pub enabled: bool,
}

/// A rack controller and the state of its services.
#[derive(Clone, Debug)]
pub struct Rack {
    /// System id.
    pub system_id: String,
    /// Host name.
    pub hostname: String,
    /// Service name → status (`running`, `off`, `dead`, ...).
    pub services: BTreeMap<String, String>,
}

/// Everything the fake region holds. Tests may read and change it through
/// `FakeMaas::with_state`.
#[derive(Debug)]
pub struct State {
    /// How long each timed status step takes.
    pub step: Duration,
    next_id: i64,
    /// Machines by system id.
    pub machines: BTreeMap<String, Machine>,
    /// Fabrics: id → name.
    pub fabrics: BTreeMap<i64, String>,
    /// VLANs.
    pub vlans: Vec<Vlan>,
    /// Subnets.
    pub subnets: Vec<Subnet>,
    /// IP ranges.
    pub ipranges: Vec<IpRange>,
    /// Static routes.
    pub static_routes: Vec<StaticRoute>,
    /// Tags by name.
    pub tags: BTreeMap<String, Tag>,
    /// SSH keys of the API user: (id, key).
    pub sshkeys: Vec<(i64, String)>,
    /// Package repositories.
    pub repositories: Vec<Repository>,
    /// Domains: id → name.
    pub domains: BTreeMap<i64, String>,
    /// Boot resources: (id, name `ubuntu/jammy`, architecture `amd64/ga-22.04`).
    pub boot_resources: Vec<(i64, String, String)>,
    /// Whether an image import is running.
    pub importing: bool,
    /// Rack controllers.
    pub racks: Vec<Rack>,
}

/// What a test machine starts as.
#[derive(Clone, Debug)]
pub struct NewMachine {
    /// Host name MAAS gave it at enlistment.
    pub hostname: String,
    /// Boot interface MAC.
    pub mac: String,
    /// BMC address (`power_address`).
    pub bmc: Option<String>,
    /// Further physical interfaces (name, MAC) after `eth0`.
    pub extra_nics: Vec<(String, String)>,
    /// Disks (name, bytes); default `sda` 500 GB and `sdb` 1 TB.
    pub disks: Vec<(String, u64)>,
}

impl NewMachine {
    /// A new machine with one NIC and the default disks.
    pub fn new(hostname: &str, mac: &str) -> Self {
        NewMachine {
            hostname: hostname.into(),
            mac: mac.into(),
            bmc: None,
            extra_nics: Vec::new(),
            disks: vec![
                ("sda".into(), 500_000_000_000),
                ("sdb".into(), 1_000_000_000_000),
            ],
        }
    }
}

impl State {
    /// A region with one domain (`maas`), one healthy rack controller, and
    /// boot resources for jammy and noble.
    pub fn new(step: Duration) -> Self {
        let mut s = State {
            step,
            next_id: 1,
            machines: BTreeMap::new(),
            fabrics: BTreeMap::new(),
            vlans: Vec::new(),
            subnets: Vec::new(),
            ipranges: Vec::new(),
            static_routes: Vec::new(),
            tags: BTreeMap::new(),
            sshkeys: Vec::new(),
            repositories: Vec::new(),
            domains: BTreeMap::new(),
            boot_resources: Vec::new(),
            importing: false,
            racks: Vec::new(),
        };
        let domain = s.id();
        s.domains.insert(domain, "maas".into());
        for (name, arch) in [
            ("ubuntu/jammy", "amd64/ga-22.04"),
            ("ubuntu/jammy", "amd64/hwe-22.04"),
            ("ubuntu/noble", "amd64/ga-24.04"),
        ] {
            let id = s.id();
            s.boot_resources.push((id, name.into(), arch.into()));
        }
        let services = [
            ("rackd", "running"),
            ("tftp", "running"),
            ("http", "running"),
            ("dhcpd", "off"),
            ("dhcpd6", "off"),
            ("ntp_rack", "running"),
            ("dns_rack", "running"),
        ];
        s.racks.push(Rack {
            system_id: "rack01".into(),
            hostname: "rack-1".into(),
            services: services
                .iter()
                .map(|(n, st)| (n.to_string(), st.to_string()))
                .collect(),
        });
        s
    }

    /// A fresh object id.
    pub fn id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Enlists a machine in status New; returns its system id.
    pub fn enlist(&mut self, new: NewMachine) -> String {
        let n = self.machines.len() + 1;
        let system_id = format!("m{n:05x}");
        let mut interfaces = Vec::new();
        for (name, mac) in
            std::iter::once(("eth0".to_string(), new.mac.clone())).chain(new.extra_nics)
        {
            interfaces.push(Interface {
                id: self.id(),
                name,
                kind: "physical".into(),
                mac: mac.to_ascii_lowercase(),
                vlan: None,
                parents: Vec::new(),
                links: Vec::new(),
                mtu: 1500,
                bond_mode: None,
            });
        }
        let mut block_devices = Vec::new();
        for (i, (name, size)) in new.disks.into_iter().enumerate() {
            block_devices.push(BlockDevice {
                id: self.id(),
                name,
                size,
                serial: format!("SN{system_id}{i}"),
                partitions: Vec::new(),
                fs: None,
                vg: None,
                virtual_: false,
            });
        }
        let boot_disk = block_devices.first().map_or(0, |b| b.id);
        let mut power_parameters = BTreeMap::new();
        if let Some(bmc) = new.bmc {
            power_parameters.insert("power_address".into(), bmc);
            power_parameters.insert("power_user".into(), "admin".into());
        }
        let domain = *self.domains.keys().next().expect("a default domain");
        self.machines.insert(
            system_id.clone(),
            Machine {
                system_id: system_id.clone(),
                hostname: new.hostname,
                domain,
                status: status::NEW,
                status_message: String::new(),
                power_type: "ipmi".into(),
                power_parameters,
                interfaces,
                block_devices,
                volume_groups: Vec::new(),
                boot_disk,
                tags: BTreeSet::new(),
                owner: None,
                distro_series: String::new(),
                hwe_kernel: None,
                user_data: None,
                erased: false,
                pending: None,
                stuck_commissioning: None,
                fail_commissioning: None,
                fail_deployment: None,
                ops: BTreeMap::new(),
            },
        );
        system_id
    }

    /// Lands every status change that is due.
    pub fn tick(&mut self, now: Instant) {
        let mut flat = Vec::new();
        for m in self.machines.values_mut() {
            while let Some(p) = m.pending.clone().filter(|p| p.at <= now) {
                let from = m.status;
                m.pending = None;
                m.status = p.to;
                m.status_message = p.message;
                if from == status::COMMISSIONING && p.to == status::READY {
                    flat.push(m.system_id.clone());
                }
                if p.to == status::READY {
                    m.owner = None;
                }
            }
        }
        // Commissioning leaves the default (flat) storage layout.
        for id in flat {
            let _ = self.layout(&id, "flat");
        }
    }

    /// Applies a storage layout (`flat`, `lvm` or `blank`) to a machine.
    pub fn layout(&mut self, system_id: &str, layout: &str) -> Result<(), String> {
        let ids: Vec<i64> = (0..3).map(|_| self.id()).collect();
        let m = self.machines.get_mut(system_id).ok_or("no such machine")?;
        m.block_devices.retain(|b| !b.virtual_);
        m.volume_groups.clear();
        for b in &mut m.block_devices {
            b.partitions.clear();
            b.fs = None;
            b.vg = None;
        }
        let boot = m.boot_disk;
        let Some(disk) = m.block_devices.iter_mut().find(|b| b.id == boot) else {
            return Ok(());
        };
        let efi = 512 << 20;
        match layout {
            "blank" => {}
            "flat" => {
                let rest = (disk.size - PARTITION_TABLE_OVERHEAD - efi) / ALIGN * ALIGN;
                disk.partitions = vec![
                    Partition {
                        id: ids[0],
                        size: efi,
                        bootable: true,
                        fs: Some(Fs {
                            fstype: "fat32".into(),
                            mount_point: Some("/boot/efi".into()),
                            mount_options: None,
                        }),
                        vg: None,
                    },
                    Partition {
                        id: ids[1],
                        size: rest,
                        bootable: false,
                        fs: Some(Fs {
                            fstype: "ext4".into(),
                            mount_point: Some("/".into()),
                            mount_options: None,
                        }),
                        vg: None,
                    },
                ];
            }
            "lvm" => {
                let rest = (disk.size - PARTITION_TABLE_OVERHEAD - efi) / ALIGN * ALIGN;
                disk.partitions = vec![Partition {
                    id: ids[0],
                    size: rest,
                    bootable: false,
                    fs: None,
                    vg: Some(ids[1]),
                }];
                let serial = disk.serial.clone();
                m.volume_groups.push(VolumeGroup {
                    id: ids[1],
                    name: "vgroot".into(),
                    size: rest,
                });
                m.block_devices.push(BlockDevice {
                    id: ids[2],
                    name: "vgroot-lvroot".into(),
                    size: rest,
                    serial,
                    partitions: Vec::new(),
                    fs: Some(Fs {
                        fstype: "ext4".into(),
                        mount_point: Some("/".into()),
                        mount_options: None,
                    }),
                    vg: Some(ids[1]),
                    virtual_: true,
                });
            }
            other => return Err(format!("Unknown storage layout: {other}")),
        }
        Ok(())
    }

    /// VLAN JSON.
    pub fn vlan_json(&self, id: i64) -> Value {
        let Some(v) = self.vlans.iter().find(|v| v.id == id) else {
            return Value::Null;
        };
        json!({
            "id": v.id, "vid": v.vid, "name": v.name, "mtu": v.mtu,
            "fabric_id": v.fabric, "fabric": self.fabrics.get(&v.fabric),
            "dhcp_on": v.dhcp_on, "primary_rack": v.primary_rack,
            "secondary_rack": null, "relay_vlan": null, "external_dhcp": null,
            "space": "undefined",
            "resource_uri": format!("/MAAS/api/2.0/vlans/{}/", v.id),
        })
    }

    /// Fabric JSON.
    pub fn fabric_json(&self, id: i64) -> Value {
        let vlans: Vec<Value> = self
            .vlans
            .iter()
            .filter(|v| v.fabric == id)
            .map(|v| self.vlan_json(v.id))
            .collect();
        json!({
            "id": id, "name": self.fabrics.get(&id), "class_type": null, "vlans": vlans,
            "resource_uri": format!("/MAAS/api/2.0/fabrics/{id}/"),
        })
    }

    /// Subnet JSON.
    pub fn subnet_json(&self, id: i64) -> Value {
        let Some(s) = self.subnets.iter().find(|s| s.id == id) else {
            return Value::Null;
        };
        json!({
            "id": s.id, "name": s.name, "cidr": s.cidr, "vlan": self.vlan_json(s.vlan),
            "gateway_ip": s.gateway_ip, "dns_servers": s.dns_servers, "space": "undefined",
            "rdns_mode": 2, "allow_proxy": true, "active_discovery": false, "managed": true,
            "resource_uri": format!("/MAAS/api/2.0/subnets/{}/", s.id),
        })
    }

    /// Interface JSON.
    pub fn interface_json(&self, m: &Machine, i: &Interface) -> Value {
        let name_of = |id: &i64| {
            m.interfaces
                .iter()
                .find(|x| x.id == *id)
                .map(|x| x.name.clone())
        };
        let parents: Vec<String> = i.parents.iter().filter_map(name_of).collect();
        let children: Vec<String> = m
            .interfaces
            .iter()
            .filter(|c| c.parents.contains(&i.id))
            .map(|c| c.name.clone())
            .collect();
        let links: Vec<Value> = i
            .links
            .iter()
            .map(|l| {
                let mut v =
                    json!({"id": l.id, "mode": l.mode, "subnet": self.subnet_json(l.subnet)});
                if let Some(ip) = &l.ip {
                    v["ip_address"] = json!(ip);
                }
                v
            })
            .collect();
        let mut params = json!({"mtu": i.mtu});
        if let Some(mode) = &i.bond_mode {
            params["bond_mode"] = json!(mode);
        }
        json!({
            "id": i.id, "name": i.name, "type": i.kind, "mac_address": i.mac,
            "vlan": i.vlan.map_or(Value::Null, |v| self.vlan_json(v)),
            "parents": parents, "children": children, "links": links, "params": params,
            "enabled": true, "tags": [], "system_id": m.system_id,
            "resource_uri": format!("/MAAS/api/2.0/nodes/{}/interfaces/{}/", m.system_id, i.id),
        })
    }

    /// Block device JSON.
    pub fn block_device_json(&self, m: &Machine, b: &BlockDevice) -> Value {
        let fs_json = |fs: &Option<Fs>| {
            fs.as_ref().map_or(Value::Null, |f| {
                json!({"fstype": f.fstype, "mount_point": f.mount_point,
                       "mount_options": f.mount_options, "label": null, "uuid": null})
            })
        };
        let partitions: Vec<Value> = b
            .partitions
            .iter()
            .enumerate()
            .map(|(n, p)| {
                json!({
                    "id": p.id, "size": p.size, "bootable": p.bootable,
                    "filesystem": fs_json(&p.fs), "type": "partition",
                    "path": format!("/dev/disk/by-dname/{}-part{}", b.name, n + 1),
                    "used_for": match (&p.fs, p.vg) {
                        (_, Some(_)) => "LVM volume".to_string(),
                        (Some(f), _) => format!("{} formatted filesystem", f.fstype),
                        _ => "Unused".to_string(),
                    },
                    "resource_uri": format!(
                        "/MAAS/api/2.0/nodes/{}/blockdevices/{}/partition/{}",
                        m.system_id, b.id, p.id),
                })
            })
            .collect();
        json!({
            "id": b.id, "name": b.name,
            "type": if b.virtual_ { "virtual" } else { "physical" },
            "size": b.size, "available_size": b.available(),
            "used_size": b.size - b.available(), "block_size": 512,
            "path": format!("/dev/disk/by-dname/{}", b.name),
            "id_path": if b.virtual_ { Value::Null } else { json!(format!("/dev/disk/by-id/wwn-{}", b.serial)) },
            "serial": b.serial, "model": "FAKEDISK", "tags": if b.virtual_ { json!([]) } else { json!(["ssd"]) },
            "partition_table_type": if b.partitions.is_empty() { Value::Null } else { json!("GPT") },
            "partitions": partitions, "filesystem": fs_json(&b.fs),
            "system_id": m.system_id,
            "resource_uri": format!("/MAAS/api/2.0/nodes/{}/blockdevices/{}/", m.system_id, b.id),
        })
    }

    /// Volume group JSON.
    pub fn volume_group_json(&self, m: &Machine, vg: &VolumeGroup) -> Value {
        let lvs: Vec<&BlockDevice> = m
            .block_devices
            .iter()
            .filter(|b| b.virtual_ && b.vg == Some(vg.id))
            .collect();
        let used: u64 = lvs.iter().map(|b| b.size).sum();
        json!({
            "id": vg.id, "name": vg.name, "size": vg.size, "used_size": used,
            "available_size": vg.size - used, "human_size": format!("{:.1} GB", vg.size as f64 / 1e9),
            "logical_volumes": lvs.iter().map(|b| self.block_device_json(m, b)).collect::<Vec<_>>(),
            "system_id": m.system_id,
            "resource_uri": format!("/MAAS/api/2.0/nodes/{}/volume-group/{}/", m.system_id, vg.id),
        })
    }

    /// Machine JSON.
    pub fn machine_json(&self, m: &Machine) -> Value {
        let domain = self.domains.get(&m.domain).cloned().unwrap_or_default();
        let ifaces: Vec<Value> = m
            .interfaces
            .iter()
            .map(|i| self.interface_json(m, i))
            .collect();
        let disks: Vec<Value> = m
            .block_devices
            .iter()
            .map(|b| self.block_device_json(m, b))
            .collect();
        let boot_disk = m
            .block_devices
            .iter()
            .find(|b| b.id == m.boot_disk)
            .map_or(Value::Null, |b| self.block_device_json(m, b));
        let deployed = [status::DEPLOYED, status::DEPLOYING].contains(&m.status);
        json!({
            "system_id": m.system_id, "hostname": m.hostname,
            "fqdn": format!("{}.{domain}", m.hostname),
            "domain": {"id": m.domain, "name": domain},
            "status": m.status, "status_name": status::name(m.status),
            "status_message": m.status_message,
            "power_type": m.power_type, "power_state": if deployed { "on" } else { "off" },
            "architecture": "amd64/generic", "cpu_count": 8, "memory": 32768,
            "osystem": if deployed { "ubuntu" } else { "" }, "distro_series": m.distro_series,
            "hwe_kernel": m.hwe_kernel, "owner": m.owner,
            "tag_names": m.tags.iter().collect::<Vec<_>>(),
            "boot_interface": ifaces.first().cloned().unwrap_or(Value::Null),
            "interface_set": ifaces, "blockdevice_set": disks, "boot_disk": boot_disk,
            "node_type": 0, "node_type_name": "Machine",
            "resource_uri": format!("/MAAS/api/2.0/machines/{}/", m.system_id),
        })
    }
}
