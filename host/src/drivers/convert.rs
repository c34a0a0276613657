//! Conversions between the host's model (`crate::model`) and each served
//! WIT version's generated types, and from driver results to JSON.
//!
//! The records every version shares are converted by one body of code,
//! [`conversions!`], expanded once per version module with that version's
//! types in scope as `wit` and its `size` conversion: 0.1.0 hands sizes over
//! as the design's text, 0.2.0 parses them once with Drydock's grammar
//! ([`crate::design::validate::parse_size`]).

use super::error::{DriverError, DriverErrorKind};
use crate::model;
use serde_json::{Value, json};

/// The conversions of one WIT version; expects `wit` (the version's types)
/// and `fn size(&str) -> Result<_, String>` (the design's size text in the
/// version's size type) in scope.
macro_rules! conversions {
    () => {
        fn creds(c: &Option<model::Credentials>) -> Option<wit::Credentials> {
            c.as_ref().map(|c| wit::Credentials {
                username: c.username.clone(),
                password: c.password.clone(),
            })
        }

        fn pairs(m: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }

        fn filesystem(f: &Option<model::Filesystem>) -> Option<wit::Filesystem> {
            f.as_ref().map(|f| wit::Filesystem {
                mountpoint: f.mountpoint.clone(),
                fstype: f.fstype.clone(),
                mount_options: f.mount_options.clone(),
            })
        }

        /// The switch as a driver sees it.
        pub fn switch(s: &model::Switch) -> wit::SwitchInfo {
            wit::SwitchInfo {
                name: s.name.clone(),
                address: s.address.clone(),
                port: s.port,
                credentials: creds(&s.credentials),
            }
        }

        /// A switch port as a driver sees it.
        pub fn switch_port(p: &model::SwitchPort) -> wit::SwitchPort {
            wit::SwitchPort {
                switch: switch(&p.switch),
                port: p.port.clone(),
            }
        }

        /// The node as a driver sees it; fails on a size that does not parse.
        pub fn node(n: &model::Node) -> Result<wit::Node, String> {
            Ok(wit::Node {
                name: n.name.clone(),
                oob: wit::OobInfo {
                    oob_type: n.oob.oob_type.clone(),
                    address: n.oob.address.clone(),
                    port: n.oob.port,
                    credentials: creds(&n.oob.credentials),
                    params: pairs(&n.oob.params),
                },
                boot_mac: n.boot_mac.clone(),
                interfaces: n
                    .interfaces
                    .iter()
                    .map(|i| wit::NodeInterface {
                        name: i.name.clone(),
                        device_link: i.device_link.clone(),
                        slaves: i.slaves.clone(),
                        networks: i.networks.clone(),
                        addresses: i
                            .addresses
                            .iter()
                            .map(|a| wit::InterfaceAddress {
                                network: a.network.clone(),
                                address: a.address.clone(),
                            })
                            .collect(),
                        mac: i.mac.clone(),
                        switch_port: i.switch_port.as_ref().map(switch_port),
                    })
                    .collect(),
                platform: wit::Platform {
                    image: n.platform.image.clone(),
                    kernel: n.platform.kernel.clone(),
                    kernel_params: pairs(&n.platform.kernel_params),
                },
                storage: wit::Storage {
                    layout: n.storage.layout.clone(),
                    physical_devices: n
                        .storage
                        .physical_devices
                        .iter()
                        .map(|d| {
                            Ok(wit::PhysicalDevice {
                                name: d.name.clone(),
                                partition_table: d.partition_table.clone(),
                                volume_group: d.volume_group.clone(),
                                partitions: d
                                    .partitions
                                    .iter()
                                    .map(|p| {
                                        Ok(wit::Partition {
                                            name: p.name.clone(),
                                            size: size(&p.size).map_err(|e| {
                                                format!("partition {} on {}: {e}", p.name, d.name)
                                            })?,
                                            bootable: p.bootable,
                                            volume_group: p.volume_group.clone(),
                                            filesystem: filesystem(&p.filesystem),
                                        })
                                    })
                                    .collect::<Result<_, String>>()?,
                            })
                        })
                        .collect::<Result<_, String>>()?,
                    volume_groups: n
                        .storage
                        .volume_groups
                        .iter()
                        .map(|g| {
                            Ok(wit::VolumeGroup {
                                name: g.name.clone(),
                                logical_volumes: g
                                    .logical_volumes
                                    .iter()
                                    .map(|v| {
                                        Ok(wit::LogicalVolume {
                                            name: v.name.clone(),
                                            size: size(&v.size).map_err(|e| {
                                                format!(
                                                    "logical volume {} in {}: {e}",
                                                    v.name, g.name
                                                )
                                            })?,
                                            filesystem: filesystem(&v.filesystem),
                                        })
                                    })
                                    .collect::<Result<_, String>>()?,
                            })
                        })
                        .collect::<Result<_, String>>()?,
                },
                tags: n.tags.clone(),
                labels: pairs(&n.labels),
                rack: n.rack.clone(),
                domain: n.domain.clone(),
            })
        }

        /// A boot override as a driver sees it.
        pub fn boot_target(b: &model::BootTarget) -> wit::BootTarget {
            wit::BootTarget {
                device: match b.device {
                    model::BootDevice::Pxe => wit::BootDevice::Pxe,
                    model::BootDevice::Disk => wit::BootDevice::Disk,
                    model::BootDevice::Cdrom => wit::BootDevice::Cdrom,
                    model::BootDevice::BiosSetup => wit::BootDevice::BiosSetup,
                },
                persistent: b.persistent,
            }
        }

        /// The site's networks as a driver sees them.
        pub fn site(s: &model::SiteNetworks) -> wit::SiteNetworks {
            wit::SiteNetworks {
                links: s
                    .links
                    .iter()
                    .map(|l| wit::NetworkLink {
                        name: l.name.clone(),
                        mtu: l.mtu,
                        bonding_mode: l.bonding_mode.clone(),
                        trunk_mode: l.trunk_mode.clone(),
                        native_network: l.native_network.clone(),
                        allowed_networks: l.allowed_networks.clone(),
                    })
                    .collect(),
                networks: s
                    .networks
                    .iter()
                    .map(|n| wit::Network {
                        name: n.name.clone(),
                        cidr: n.cidr.clone(),
                        vlan: n.vlan,
                        mtu: n.mtu,
                        routes: n
                            .routes
                            .iter()
                            .map(|r| wit::Route {
                                subnet: r.subnet.clone(),
                                gateway: r.gateway.clone(),
                                metric: r.metric,
                            })
                            .collect(),
                        ranges: n
                            .ranges
                            .iter()
                            .map(|r| wit::IpRange {
                                kind: r.kind.clone(),
                                start: r.start.clone(),
                                end: r.end.clone(),
                            })
                            .collect(),
                        dns_servers: n.dns_servers.clone(),
                        dns_domain: n.dns_domain.clone(),
                    })
                    .collect(),
            }
        }

        /// Package repositories as a driver sees them.
        pub fn repositories(r: &[model::Repository]) -> Vec<wit::PackageRepository> {
            r.iter()
                .map(|r| wit::PackageRepository {
                    name: r.name.clone(),
                    url: r.url.clone(),
                    distributions: r.distributions.clone(),
                    components: r.components.clone(),
                    gpg_key: r.gpg_key.clone(),
                })
                .collect()
        }

        /// A port VLAN configuration as a driver sees it.
        pub fn port_vlans(v: &model::PortVlans) -> wit::PortVlans {
            wit::PortVlans {
                mode: match v.mode {
                    model::PortMode::Access => wit::PortMode::Access,
                    model::PortMode::Trunk => wit::PortMode::Trunk,
                    model::PortMode::Other => wit::PortMode::Other,
                },
                access_vlan: v.access_vlan,
                native_vlan: v.native_vlan,
                allowed_vlans: v.allowed_vlans.clone(),
            }
        }

        /// A driver's error in host terms.
        pub fn driver_error(e: wit::DriverError) -> DriverError {
            let (kind, message) = match e {
                wit::DriverError::Unreachable(m) => (DriverErrorKind::Unreachable, m),
                wit::DriverError::Busy(m) => (DriverErrorKind::Busy, m),
                wit::DriverError::Timeout(m) => (DriverErrorKind::Timeout, m),
                wit::DriverError::Unsupported(m) => (DriverErrorKind::Unsupported, m),
                wit::DriverError::Auth(m) => (DriverErrorKind::Auth, m),
                wit::DriverError::InvalidInput(m) => (DriverErrorKind::InvalidInput, m),
                wit::DriverError::Failed(m) => (DriverErrorKind::Failed, m),
            };
            DriverError { kind, message }
        }

        fn power(p: wit::PowerState) -> &'static str {
            match p {
                wit::PowerState::On => "on",
                wit::PowerState::Off => "off",
                wit::PowerState::Unknown => "unknown",
            }
        }

        fn boot_json(b: &wit::BootTarget) -> Value {
            let device = match b.device {
                wit::BootDevice::Pxe => "pxe",
                wit::BootDevice::Disk => "disk",
                wit::BootDevice::Cdrom => "cdrom",
                wit::BootDevice::BiosSetup => "bios_setup",
            };
            json!({ "device": device, "persistent": b.persistent })
        }

        /// The driver's raw JSON, or the text as a string when it is not JSON.
        fn raw(raw: &str) -> Value {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
        }

        /// `interrogate_oob`'s result as JSON.
        pub fn oob_interrogation(i: &wit::OobInterrogation) -> Value {
            let f = &i.facts;
            json!({
                "power_state": power(f.power),
                "boot_override": f.boot_override.as_ref().map(boot_json),
                "manufacturer": f.manufacturer,
                "model": f.model,
                "serial": f.serial,
                "bios_version": f.bios_version,
                "macs": f.macs,
                "raw": raw(&i.raw_json),
            })
        }

        /// A node identity as JSON.
        pub fn node_identity(i: &wit::NodeIdentity) -> Value {
            json!({ "id": i.id, "status": i.status })
        }

        /// `interrogate_node`'s result as JSON.
        pub fn node_interrogation(i: &wit::NodeInterrogation) -> Value {
            json!({
                "identity": i.identity.as_ref().map(node_identity),
                "raw": raw(&i.raw_json),
            })
        }

        /// `interrogate_port`'s result as JSON.
        pub fn port_interrogation(p: &wit::PortInterrogation) -> Value {
            let mode = match p.vlans.mode {
                wit::PortMode::Access => "access",
                wit::PortMode::Trunk => "trunk",
                wit::PortMode::Other => "other",
            };
            json!({
                "mode": mode,
                "access_vlan": p.vlans.access_vlan,
                "native_vlan": p.vlans.native_vlan,
                "allowed_vlans": p.vlans.allowed_vlans,
                "link_up": p.link_up,
                "description": p.description,
                "raw": raw(&p.raw_json),
            })
        }
    };
}

/// 0.1.0: sizes cross as the design's text.
pub(crate) mod v0_1 {
    use super::super::bindings::v0_1::types as wit;
    use super::*;

    fn size(text: &str) -> Result<String, String> {
        Ok(text.to_owned())
    }

    conversions!();
}

/// 0.2.0: sizes parsed once, on the host, with Drydock's grammar.
pub(crate) mod v0_2 {
    use super::super::bindings::v0_2::types as wit;
    use super::*;
    use crate::design::validate::{Size, parse_size};

    fn size(text: &str) -> Result<wit::Size, String> {
        Ok(match parse_size(text)? {
            Size::Bytes {
                bytes,
                at_least: false,
            } => wit::Size::Bytes(bytes),
            Size::Bytes {
                bytes,
                at_least: true,
            } => wit::Size::AtLeast(bytes),
            // parse_size keeps percentages within 1-100.
            Size::Percent(p) => wit::Size::Percent(u8::try_from(p).unwrap_or(100)),
        })
    }

    conversions!();

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn sizes_are_parsed_with_drydocks_grammar() {
            assert!(matches!(size("10g"), Ok(wit::Size::Bytes(10_000_000_000))));
            assert!(matches!(size(">4gi"), Ok(wit::Size::AtLeast(b)) if b == 4 << 30));
            assert!(matches!(size("99%"), Ok(wit::Size::Percent(99))));
            assert!(size("500k").is_err());
            assert!(size("1.5g").is_err());
        }
    }
}
