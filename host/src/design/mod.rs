//! Site designs: ingestion, validation and what the orchestrator takes
//! from them.
//!
//! A design is a YAML stream of Drydock documents ([`documents`]), fetched
//! from a `design_ref` ([`source`]), parsed once, resolved (host profile
//! inheritance), validated with Drydock's rules ([`validate`]) and turned into
//! the [`model::Node`]s and site data the drivers get.

pub mod aliases;
pub mod bootaction;
pub mod documents;
pub mod fetch;
pub mod ingest;
mod inheritance;
pub mod limits;
pub mod source;
pub mod template;
pub mod validate;

use crate::model::{self, PortMode, PortVlans};
use documents::{
    DEFAULT_DOMAIN, DocRef, Document, HardwareProfileSpec, HostSpec, Kind, Malformed,
    NetworkLinkSpec, NetworkSpec, RackSpec, RegionSpec, parse_stream, scalar_text, strip_removals,
};
use serde_json::Value;
use std::collections::BTreeMap;

pub use fetch::{AuthToken, DesignSources, TokenError};
pub use limits::{DesignLimits, ParseError};
pub use source::{DesignSource, SourceError};
pub use validate::{Finding, Level, PlatformCatalog, Report, Rule, RuleOutcome};

/// A parsed site design. Built once per task (and cached by content).
#[derive(Clone, Debug, Default)]
pub struct Design {
    /// Every Drydock document, in stream order.
    pub documents: Vec<Document>,
    /// Drydock documents that could not be read (reported by validation).
    pub malformed: Vec<Malformed>,
    /// Documents that failed to deserialize into their kind, or profiles
    /// whose inheritance is broken: `(document, message)`.
    pub unreadable: Vec<(DocRef, String)>,
    /// Region settings (the first Region; Drydock allows one).
    pub region: Option<(String, RegionSpec)>,
    /// Racks by name.
    pub racks: BTreeMap<String, RackSpec>,
    /// Network links by name.
    pub links: BTreeMap<String, NetworkLinkSpec>,
    /// Networks by name.
    pub networks: BTreeMap<String, NetworkSpec>,
    /// Hardware profiles by name.
    pub hardware: BTreeMap<String, HardwareProfileSpec>,
    /// Host profiles by name, inheritance applied.
    pub profiles: BTreeMap<String, HostSpec>,
    /// Nodes by name, inheritance applied.
    pub nodes: BTreeMap<String, HostSpec>,
}

impl Design {
    /// Parses a YAML stream within the default [`DesignLimits`].
    pub fn parse(text: &str) -> Result<Design, ParseError> {
        Design::parse_with(text, &DesignLimits::default())
    }

    /// Parses a YAML stream within `limits`. Fails only on YAML syntax or a
    /// limit of the text itself (bytes, documents, values); everything else
    /// (inheritance limits included) is kept for [`validate::validate`] to
    /// report.
    pub fn parse_with(text: &str, limits: &DesignLimits) -> Result<Design, ParseError> {
        let (documents, malformed) = parse_stream(text, limits)?;
        let mut d = Design {
            documents,
            malformed,
            ..Design::default()
        };
        d.index(limits);
        Ok(d)
    }

    fn typed<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        doc: &Document,
        data: &Value,
    ) -> T {
        match serde_json::from_value(data.clone()) {
            Ok(v) => v,
            Err(e) => {
                self.unreadable.push((
                    DocRef::new(doc.kind, &doc.name),
                    format!("{}: {e}", doc.kind.name()),
                ));
                T::default()
            }
        }
    }

    fn index(&mut self, limits: &DesignLimits) {
        let docs = self.documents.clone();
        let mut raw_profiles: BTreeMap<String, Value> = BTreeMap::new();
        let mut raw_nodes: Vec<(Document, Value)> = Vec::new();
        for doc in &docs {
            match doc.kind {
                Kind::Region => {
                    let spec: RegionSpec = self.typed(doc, &doc.data);
                    if self.region.is_none() {
                        self.region = Some((doc.name.clone(), spec));
                    }
                }
                Kind::Rack => {
                    let spec = self.typed(doc, &doc.data);
                    self.racks.entry(doc.name.clone()).or_insert(spec);
                }
                Kind::NetworkLink => {
                    let spec = self.typed(doc, &doc.data);
                    self.links.entry(doc.name.clone()).or_insert(spec);
                }
                Kind::Network => {
                    let spec = self.typed(doc, &doc.data);
                    self.networks.entry(doc.name.clone()).or_insert(spec);
                }
                Kind::HardwareProfile => {
                    let spec = self.typed(doc, &doc.data);
                    self.hardware.entry(doc.name.clone()).or_insert(spec);
                }
                Kind::HostProfile => {
                    raw_profiles
                        .entry(doc.name.clone())
                        .or_insert(doc.data.clone());
                }
                Kind::BaremetalNode => raw_nodes.push((doc.clone(), doc.data.clone())),
                Kind::BootAction => {
                    // Read by [`Design::boot_actions`]; checked by the
                    // `bootaction` rule.
                }
            }
        }
        let mut inheritance = inheritance::Resolver::new(limits);
        let resolved = inheritance.profiles(&raw_profiles);
        for (name, v) in &resolved {
            let doc = Document {
                kind: Kind::HostProfile,
                form: documents::Form::Deckhand,
                name: name.clone(),
                data: v.clone(),
                index: 0,
            };
            let spec = self.typed(&doc, v);
            self.profiles.insert(name.clone(), spec);
        }
        for (doc, data) in raw_nodes {
            let merged = match data.get("host_profile").and_then(Value::as_str) {
                Some(p) => match resolved.get(p) {
                    Some(parent) => match inheritance.node(&doc.name, parent, &data) {
                        Some(merged) => merged,
                        None => break, // past the value budget: reported below
                    },
                    None => data.clone(), // reported by validation (unresolved reference)
                },
                None => data.clone(),
            };
            let mut merged = merged;
            strip_removals(&mut merged);
            let spec = self.typed(&doc, &merged);
            if self.nodes.contains_key(&doc.name) {
                continue; // duplicate, reported by validation
            }
            self.nodes.insert(doc.name.clone(), spec);
        }
        self.unreadable.extend(inheritance.into_errors());
    }

    /// Labels of every rack (for node filters' `rack_labels`).
    pub fn rack_labels(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.racks
            .iter()
            .map(|(n, r)| (n.clone(), r.labels.clone()))
            .collect()
    }

    /// SSH keys from the Region.
    pub fn ssh_keys(&self) -> Vec<String> {
        self.region
            .as_ref()
            .map(|(_, r)| r.authorized_keys.clone())
            .unwrap_or_default()
    }

    /// Package repositories from the Region.
    pub fn repositories(&self) -> Vec<model::Repository> {
        let Some((_, region)) = &self.region else {
            return Vec::new();
        };
        let strings = |v: &Value| -> Vec<String> {
            match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect(),
                Value::String(s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
                _ => Vec::new(),
            }
        };
        region
            .repositories
            .iter()
            .filter(|(_, v)| v.is_object())
            .map(|(name, v)| model::Repository {
                name: name.clone(),
                url: v["url"].as_str().unwrap_or_default().to_owned(),
                distributions: strings(&v["distributions"]),
                components: strings(&v["components"]),
                gpg_key: v["gpgkey"].as_str().map(str::to_owned),
            })
            .collect()
    }

    /// The site's networks and links as drivers get them.
    pub fn site_networks(&self) -> model::SiteNetworks {
        let links = self
            .links
            .iter()
            .map(|(name, l)| model::NetworkLink {
                name: name.clone(),
                mtu: l.mtu.unwrap_or(1500),
                bonding_mode: l.bonding.mode.clone().filter(|m| m != "disabled"),
                trunk_mode: l.trunking.mode.clone(),
                native_network: l.trunking.default_network.clone(),
                allowed_networks: l.allowed_networks.clone(),
            })
            .collect();
        let mut routes = self.rendered_routes();
        let networks = self
            .networks
            .iter()
            .map(|(name, n)| model::Network {
                name: name.clone(),
                cidr: n.cidr.clone(),
                vlan: n.vlan_id().ok().flatten(),
                mtu: n.mtu.unwrap_or(1500),
                routes: routes.remove(name).unwrap_or_default(),
                ranges: n
                    .ranges
                    .iter()
                    .map(|r| model::IpRange {
                        kind: r.kind.clone(),
                        start: r.start.clone(),
                        end: r.end.clone(),
                    })
                    .collect(),
                dns_servers: n
                    .dns
                    .servers
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                dns_domain: Some(n.dns_domain()),
            })
            .collect();
        model::SiteNetworks { links, networks }
    }

    /// Networks in document order (the first of duplicates).
    fn networks_in_order(&self) -> Vec<(&String, &NetworkSpec)> {
        let mut seen = std::collections::BTreeSet::new();
        self.documents
            .iter()
            .filter(|doc| doc.kind == Kind::Network)
            .filter_map(|doc| self.networks.get_key_value(&doc.name))
            .filter(|(n, _)| seen.insert(n.as_str()))
            .collect()
    }

    /// Each network's static routes as Drydock renders them: its routes to
    /// a `subnet`, then, for each route domain a route of the network names
    /// (with a gateway and a metric, the first such route per domain), a
    /// route to every other member network's CIDR through that gateway.
    /// Route-domain routes themselves are placeholders that reach no driver,
    /// as in Drydock's MAAS driver; a route without a metric gets 100.
    pub fn rendered_routes(&self) -> BTreeMap<String, Vec<model::Route>> {
        let networks = self.networks_in_order();
        let mut domains: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (_, n) in &networks {
            if let Some(rd) = n.routedomain.as_deref() {
                domains.entry(rd).or_default().push(n.cidr.as_str());
            }
        }
        let mut out = BTreeMap::new();
        for (name, n) in &networks {
            let mut routes: Vec<model::Route> = n
                .routes
                .iter()
                .filter_map(|r| {
                    Some(model::Route {
                        subnet: r.subnet.clone().filter(|s| !s.is_empty())?,
                        gateway: r.gateway.clone().unwrap_or_default(),
                        metric: r.metric.unwrap_or(100),
                    })
                })
                .collect();
            for (rd, cidrs) in &domains {
                let Some(route) = n
                    .routes
                    .iter()
                    .find(|r| r.routedomain.as_deref() == Some(*rd))
                else {
                    continue;
                };
                let (Some(gateway), Some(metric)) = (&route.gateway, route.metric) else {
                    continue;
                };
                routes.extend(
                    cidrs
                        .iter()
                        .filter(|c| **c != n.cidr)
                        .map(|c| model::Route {
                            subnet: (*c).to_owned(),
                            gateway: gateway.clone(),
                            metric,
                        }),
                );
            }
            out.insert((*name).clone(), routes);
        }
        out
    }

    /// Every node as drivers get it, by name. Credentials are not resolved
    /// here (secrets reach only the driver call).
    pub fn model_nodes(&self) -> Vec<model::Node> {
        self.nodes
            .iter()
            .map(|(name, spec)| self.model_node(name, spec))
            .collect()
    }

    fn vlan(&self, network: &str) -> Option<u16> {
        self.networks
            .get(network)
            .and_then(|n| n.vlan_id().ok().flatten())
    }

    fn model_node(&self, name: &str, spec: &HostSpec) -> model::Node {
        let address_on = |net: &str| {
            spec.addressing
                .iter()
                .find(|a| a.network == net)
                .and_then(|a| a.address.clone())
                .filter(|a| a != "dhcp")
        };
        let mut params = BTreeMap::new();
        let mut port = None;
        for (k, v) in &spec.oob.extra {
            if k == "port" {
                // The BMC's port (Drydock extension), when not 80/443.
                port = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .and_then(|p| u16::try_from(p).ok());
                continue;
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            params.insert(k.clone(), text);
        }
        let oob = model::Oob {
            oob_type: spec.oob.oob_type.clone().unwrap_or_default(),
            address: spec.oob.network.as_deref().and_then(address_on),
            port,
            account: spec.oob.account.clone(),
            credential: spec.oob.credential.clone(),
            credentials: None,
            params,
        };
        let interfaces = spec
            .interfaces
            .iter()
            .map(|(iname, i)| model::Interface {
                name: iname.clone(),
                device_link: i.device_link.clone(),
                slaves: i.slaves.clone(),
                networks: i.networks.clone(),
                addresses: i
                    .networks
                    .iter()
                    .filter_map(|n| {
                        spec.addressing.iter().find(|a| &a.network == n).map(|a| {
                            model::Address {
                                network: n.clone(),
                                // `dhcp` in the design is no static
                                // address (the model's `None`).
                                address: a.address.clone().filter(|x| x != "dhcp"),
                            }
                        })
                    })
                    .collect(),
                mac: None,
                switch_port: i
                    .switch_port
                    .as_ref()
                    .and_then(|sp| self.switch_port(sp, i)),
            })
            .collect();
        let storage = model::Storage {
            layout: spec.storage.layout.clone(),
            physical_devices: spec
                .storage
                .physical_devices
                .iter()
                .map(|(dname, d)| model::PhysicalDevice {
                    name: dname.clone(),
                    partition_table: d.partition_table.clone(),
                    volume_group: d.volume_group.clone(),
                    // As Drydock ingests storage: a volume group member
                    // has no partitions, a volume group's partition no
                    // filesystem.
                    partitions: d
                        .partitions
                        .iter()
                        .filter(|_| d.volume_group.is_none())
                        .map(|p| model::Partition {
                            name: p.name.clone(),
                            size: p.size.clone().unwrap_or_default(),
                            bootable: p.bootable,
                            volume_group: p.volume_group.clone(),
                            filesystem: p
                                .filesystem
                                .as_ref()
                                .filter(|_| p.volume_group.is_none())
                                .map(filesystem),
                        })
                        .collect(),
                })
                .collect(),
            volume_groups: spec
                .storage
                .volume_groups
                .iter()
                .map(|(vname, vg)| model::VolumeGroup {
                    name: vname.clone(),
                    logical_volumes: vg
                        .logical_volumes
                        .iter()
                        .map(|lv| model::LogicalVolume {
                            name: lv.name.clone(),
                            size: lv.size.clone().unwrap_or_default(),
                            filesystem: lv.filesystem.as_ref().map(filesystem),
                        })
                        .collect(),
                })
                .collect(),
        };
        let hardware = spec
            .hardware_profile
            .as_ref()
            .and_then(|p| self.hardware.get(p));
        let platform = model::Platform {
            image: spec.platform.image.clone(),
            kernel: spec.platform.kernel.clone(),
            kernel_params: spec
                .platform
                .kernel_params
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Bool(true) => String::new(),
                        Value::String(s) => {
                            resolve_kernel_param(s, hardware).unwrap_or_else(|_| s.clone())
                        }
                        other => scalar_text(other).unwrap_or_else(|| other.to_string()),
                    };
                    (k.clone(), v)
                })
                .collect(),
        };
        let device_aliases = hardware
            .map(|hw| {
                hw.device_aliases
                    .iter()
                    .filter_map(|(alias, a)| {
                        Some(model::DeviceAlias {
                            alias: alias.clone(),
                            bus_type: a.bus_type.clone()?,
                            address: a.address.clone()?,
                            dev_type: a.dev_type.clone(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        model::Node {
            name: name.to_owned(),
            oob,
            boot_mac: spec.metadata.boot_mac.clone(),
            interfaces,
            platform,
            storage,
            tags: spec.metadata.tags.clone(),
            labels: spec.metadata.owner_data.clone(),
            rack: spec.metadata.rack.clone(),
            domain: Some(
                spec.primary_network
                    .as_deref()
                    .and_then(|n| self.networks.get(n))
                    .map(NetworkSpec::dns_domain)
                    .unwrap_or_else(|| DEFAULT_DOMAIN.to_owned()),
            ),
            device_aliases,
        }
    }

    /// The ToR switch named `name` in any rack.
    pub fn tor_switch(&self, name: &str) -> Option<&documents::TorSwitch> {
        self.racks.values().find_map(|r| r.tor_switches.get(name))
    }

    fn switch_port(
        &self,
        sp: &documents::SwitchPortSpec,
        iface: &documents::InterfaceSpec,
    ) -> Option<model::SwitchPort> {
        let tor = self.tor_switch(&sp.switch)?;
        let address = tor.mgmt_ip.clone().or_else(|| {
            tor.sdn_api_uri
                .as_deref()
                .and_then(|u| u.split("://").nth(1))
                .map(|rest| rest.split(['/', ':']).next().unwrap_or(rest).to_owned())
        })?;
        let link = iface.device_link.as_deref().and_then(|l| self.links.get(l));
        let trunked = link.and_then(|l| l.trunking.mode.as_deref()) == Some("802.1q");
        let native = link.and_then(|l| l.trunking.default_network.clone());
        let pxe = sp.provisioning_network.clone().or(native.clone());
        let pxe_vlan = pxe.as_deref().and_then(|n| self.vlan(n));
        let provisioning = if trunked {
            PortVlans {
                mode: PortMode::Trunk,
                access_vlan: None,
                native_vlan: pxe_vlan,
                allowed_vlans: pxe_vlan.into_iter().collect(),
            }
        } else {
            PortVlans {
                mode: PortMode::Access,
                access_vlan: pxe_vlan,
                native_vlan: None,
                allowed_vlans: Vec::new(),
            }
        };
        let production = if trunked {
            let mut allowed: Vec<u16> =
                iface.networks.iter().filter_map(|n| self.vlan(n)).collect();
            let native_vlan = native.as_deref().and_then(|n| self.vlan(n));
            allowed.extend(native_vlan);
            allowed.sort_unstable();
            allowed.dedup();
            PortVlans {
                mode: PortMode::Trunk,
                access_vlan: None,
                native_vlan,
                allowed_vlans: allowed,
            }
        } else {
            PortVlans {
                mode: PortMode::Access,
                access_vlan: iface.networks.first().and_then(|n| self.vlan(n)),
                native_vlan: None,
                allowed_vlans: Vec::new(),
            }
        };
        Some(model::SwitchPort {
            switch: model::Switch {
                name: sp.switch.clone(),
                address,
                port: tor.port,
                account: tor.account.clone(),
                credential: tor.credential.clone(),
                credentials: None,
            },
            port: sp.port.clone(),
            provisioning: Some(provisioning),
            production: Some(production),
        })
    }
}

fn filesystem(f: &documents::FilesystemSpec) -> model::Filesystem {
    model::Filesystem {
        mountpoint: f.mountpoint.clone(),
        fstype: f.fstype.clone().unwrap_or_else(|| "ext4".into()),
        mount_options: Some(f.mount_options.clone().unwrap_or_else(|| "defaults".into())),
    }
}

/// Why a `hardwareprofile:` kernel parameter reference does not resolve
/// (Drydock's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(String);

/// Resolves a kernel parameter value as Drydock does: values
/// `hardwareprofile:cpuset.<set>`, `hardwareprofile:hugepages.<conf>.size`
/// and `hardwareprofile:hugepages.<conf>.count` come from the node's
/// hardware profile; any other value is itself. (Drydock logs an error
/// and keeps the text when a reference does not resolve.)
pub fn resolve_kernel_param(
    value: &str,
    hardware: Option<&HardwareProfileSpec>,
) -> Result<String, ReferenceError> {
    let bad = |m: String| Err(ReferenceError(m));
    let Some(reference) = value.strip_prefix("hardwareprofile:") else {
        return Ok(value.to_owned());
    };
    if reference.is_empty() {
        return Ok(value.to_owned());
    }
    let Some((kind, name)) = reference.split_once('.') else {
        return bad(format!("Invalid parameter reference {reference}."));
    };
    let Some(hw) = hardware else {
        return bad("Hardware profile not found.".into());
    };
    match kind {
        "cpuset" => match hw.cpu_sets.get(name).and_then(scalar_text) {
            Some(cpus) => Ok(cpus),
            None => bad(format!("CPU set {name} not found.")),
        },
        "hugepages" => {
            let (conf, field) = name.split_once('.').unwrap_or((name, ""));
            let Some(pool) = hw.hugepages.get(conf) else {
                return bad(format!("Hugepage configuration {conf} not found."));
            };
            let found = match field {
                "size" => pool.size_text(),
                "count" => pool.count_value().ok().flatten().map(|c| c.to_string()),
                other => return bad(format!("Invalid field {other} specified.")),
            };
            found.ok_or_else(|| {
                ReferenceError(format!("Hugepage configuration {conf} has no {field}."))
            })
        }
        other => bad(format!("Invalid configuration {other} specified.")),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_parameter_references_resolve_as_drydocks() {
        let hw: HardwareProfileSpec = serde_json::from_value(serde_json::json!({
            "cpu_sets": {"sriov": "2,4"},
            "hugepages": {"dpdk": {"size": "2M", "count": 530000}},
        }))
        .unwrap();
        let r = |v: &str| resolve_kernel_param(v, Some(&hw)).map_err(|e| e.to_string());
        assert_eq!(r("hardwareprofile:cpuset.sriov"), Ok("2,4".into()));
        assert_eq!(r("hardwareprofile:hugepages.dpdk.size"), Ok("2M".into()));
        assert_eq!(
            r("hardwareprofile:hugepages.dpdk.count"),
            Ok("530000".into())
        );
        assert_eq!(r("ttyS1,115200n8"), Ok("ttyS1,115200n8".into()));
        assert_eq!(r("hardwareprofile:"), Ok("hardwareprofile:".into()));
        assert_eq!(
            r("hardwareprofile:cpuset.x"),
            Err("CPU set x not found.".into())
        );
        assert_eq!(
            r("hardwareprofile:hugepages.dpdk.pages"),
            Err("Invalid field pages specified.".into())
        );
        assert_eq!(
            r("hardwareprofile:numa.0"),
            Err("Invalid configuration numa specified.".into())
        );
        assert!(r("hardwareprofile:cpuset").is_err());
        assert!(resolve_kernel_param("hardwareprofile:cpuset.sriov", None).is_err());
    }
}
