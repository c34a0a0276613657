//! Site design documents as Drydock writes them, in both forms:
//!
//! - Deckhand: `schema: drydock/<Kind>/v1`, `metadata.name`, `data:`;
//! - legacy: `apiVersion: drydock/v1`, `kind: <Kind>`, `metadata.name`, `spec:`.
//!
//! Documents of other schemas (`deckhand/...`, `promenade/...`) are skipped,
//! as Drydock skips them. Unknown fields are accepted so every design Drydock
//! accepts parses here.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub use super::ingest::{DEFAULT_DOMAIN, EffectiveBonding, scalar_text};
use super::limits::{DesignLimits, ParseError, read_yaml};

/// A YAML parse failure with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid YAML{}: {message}", location.map(|(l, c)| format!(" at line {l}, column {c}")).unwrap_or_default())]
pub struct YamlError {
    /// What went wrong.
    pub message: String,
    /// Line and column (1-based), when known.
    pub location: Option<(usize, usize)>,
}

/// The document kinds Drydock knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Site-wide settings (SSH keys, repositories).
    Region,
    /// A rack (its ToR switches, labels).
    Rack,
    /// A physical link between a node and the fabric (bonding, trunking, MTU).
    NetworkLink,
    /// An L3 network (CIDR, VLAN, ranges, routes, DNS).
    Network,
    /// A hardware model (device aliases, hugepages).
    HardwareProfile,
    /// A reusable node description, inheritable.
    HostProfile,
    /// One server.
    BaremetalNode,
    /// An action run on a node after deploy.
    BootAction,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 8] = [
        Kind::Region,
        Kind::Rack,
        Kind::NetworkLink,
        Kind::Network,
        Kind::HardwareProfile,
        Kind::HostProfile,
        Kind::BaremetalNode,
        Kind::BootAction,
    ];

    /// The kind's name as in `schema: drydock/<name>/v1`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Region => "Region",
            Kind::Rack => "Rack",
            Kind::NetworkLink => "NetworkLink",
            Kind::Network => "Network",
            Kind::HardwareProfile => "HardwareProfile",
            Kind::HostProfile => "HostProfile",
            Kind::BaremetalNode => "BaremetalNode",
            Kind::BootAction => "BootAction",
        }
    }

    /// The Deckhand schema of the kind.
    pub fn schema(self) -> String {
        format!("drydock/{}/v1", self.name())
    }

    fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Which of Drydock's two document forms a document is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Form {
    /// `schema: drydock/<Kind>/v1` with `data:` (Drydock's Deckhand
    /// ingester, which checks each body against Drydock's JSON schema).
    #[default]
    Deckhand,
    /// `apiVersion: drydock/v1`, `kind:`, `spec:` (Drydock's YAML ingester,
    /// which checks no schema).
    Legacy,
}

/// One Drydock document: kind, name and its body (`data` or `spec`).
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Kind.
    pub kind: Kind,
    /// The form it was written in.
    pub form: Form,
    /// `metadata.name`.
    pub name: String,
    /// The body as JSON.
    pub data: Value,
    /// Position in the stream (0-based), for messages.
    pub index: usize,
}

/// A reference to a document in findings: `{schema, name}` as Drydock reports.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct DocRef {
    /// `drydock/<Kind>/v1`.
    pub schema: String,
    /// Document name.
    pub name: String,
}

impl DocRef {
    /// A reference to `name` of `kind`.
    pub fn new(kind: Kind, name: &str) -> DocRef {
        DocRef {
            schema: kind.schema(),
            name: name.to_owned(),
        }
    }
}

/// A document that names a Drydock kind but is malformed (no name, unknown
/// kind, body not a mapping).
#[derive(Clone, Debug, PartialEq)]
pub struct Malformed {
    /// Position in the stream (0-based).
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

/// Splits a YAML stream into Drydock documents, within `limits` (bytes,
/// documents, values with aliases expanded: see [`read_yaml`]). Other
/// schemas are skipped; malformed Drydock documents are returned separately
/// (validation reports them).
pub fn parse_stream(
    text: &str,
    limits: &DesignLimits,
) -> Result<(Vec<Document>, Vec<Malformed>), ParseError> {
    let mut docs = Vec::new();
    let mut bad = Vec::new();
    for (index, value) in read_yaml(text, limits)?.into_iter().enumerate() {
        if value.is_null() {
            continue;
        }
        match classify(&value) {
            Ok(None) => {}
            Ok(Some((kind, form, name, data))) => docs.push(Document {
                kind,
                form,
                name,
                data,
                index,
            }),
            Err(message) => bad.push(Malformed { index, message }),
        }
    }
    Ok((docs, bad))
}

/// `Ok(None)` for documents of other systems (and, as Drydock's Deckhand
/// ingester does, for a `schema` that is not three `/`-separated parts).
/// Errors carry Drydock's ingestion messages.
fn classify(v: &Value) -> Result<Option<(Kind, Form, String, Value)>, String> {
    let (kind_name, form, body) = if let Some(schema) = v.get("schema").and_then(Value::as_str) {
        let parts: Vec<&str> = schema.split('/').collect();
        let [namespace, kind, version] = parts[..] else {
            return Ok(None);
        };
        if namespace != "drydock" {
            return Ok(None);
        }
        if version != "v1" || Kind::parse(kind).is_none() {
            return Err(format!(
                "Invalid document - Kind {kind} and Version {version}"
            ));
        }
        (kind.to_owned(), Form::Deckhand, v.get("data"))
    } else if let Some(api) = v.get("apiVersion").and_then(Value::as_str) {
        if !api.starts_with("drydock/") {
            return Ok(None);
        }
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        if Kind::parse(kind).is_none() {
            return Err(format!("Invalid document Kind {kind}"));
        }
        (kind.to_owned(), Form::Legacy, v.get("spec"))
    } else {
        return Ok(None);
    };
    let kind =
        Kind::parse(&kind_name).ok_or_else(|| format!("Invalid document Kind {kind_name}"))?;
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| format!("a {kind_name} document has no metadata.name"))?
        .to_owned();
    let data = match body {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(b @ Value::Object(_)) => b.clone(),
        Some(_) => return Err(format!("{kind_name} `{name}`: the body is not a mapping")),
    };
    Ok(Some((kind, form, name, data)))
}

// ------------------------------------------------------------------ bodies

/// `Region` body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegionSpec {
    /// SSH public keys for deployed nodes.
    pub authorized_keys: Vec<String>,
    /// Package repositories: `remove_unlisted` plus one entry per repository.
    pub repositories: BTreeMap<String, Value>,
}

/// A ToR switch of a rack (`Rack.tor_switches.<name>`). Drydock's fields plus
/// the credentials the network driver needs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TorSwitch {
    /// Management address.
    pub mgmt_ip: Option<String>,
    /// SDN API endpoint (Drydock's field; its host is used when no mgmt_ip).
    pub sdn_api_uri: Option<String>,
    /// API port (Drydock extension).
    pub port: Option<u16>,
    /// Login name (Drydock extension).
    pub account: Option<String>,
    /// Secret holding the password (Drydock extension).
    pub credential: Option<String>,
}

/// `Rack` body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RackSpec {
    /// ToR switches by name.
    pub tor_switches: BTreeMap<String, TorSwitch>,
    /// Rack labels (matched by node filters' `rack_labels`).
    pub labels: BTreeMap<String, String>,
    /// Networks local to the rack.
    pub local_networks: Vec<String>,
}

/// `NetworkLink.bonding`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Bonding {
    /// `disabled` (default), `802.3ad`, `active-backup` or `balance-rr`.
    pub mode: Option<String>,
    /// 802.3ad transmit hash policy (Drydock's default `layer3+4`).
    pub hash: Option<String>,
    /// 802.3ad LACP rate (Drydock's default `fast`).
    pub peer_rate: Option<String>,
    /// Link monitoring interval in ms (Drydock's default 100 for bonds).
    pub mon_rate: Option<u32>,
    /// Up delay in ms (Drydock's default 200 for bonds).
    pub up_delay: Option<u32>,
    /// Down delay in ms (Drydock's default 200 for bonds).
    pub down_delay: Option<u32>,
}

/// `NetworkLink.trunking`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Trunking {
    /// `disabled` or `802.1q`.
    pub mode: Option<String>,
    /// The untagged (native) network.
    pub default_network: Option<String>,
}

/// `NetworkLink` body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkLinkSpec {
    /// Bonding.
    pub bonding: Bonding,
    /// MTU (default 1500).
    pub mtu: Option<u32>,
    /// Link speed.
    pub linkspeed: Option<String>,
    /// Trunking.
    pub trunking: Trunking,
    /// Networks the link may carry.
    pub allowed_networks: Vec<String>,
}

/// `Network.ranges[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RangeSpec {
    /// `static`, `dhcp` or `reserved`.
    #[serde(rename = "type")]
    pub kind: String,
    /// First address.
    pub start: String,
    /// Last address.
    pub end: String,
}

/// `Network.routes[]`: to an explicit `subnet`, or (with `routedomain`)
/// to every network of a route domain, which Drydock renders into one
/// route per member network.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RouteSpec {
    /// Destination CIDR (absent on a route-domain route).
    pub subnet: Option<String>,
    /// Next hop.
    pub gateway: Option<String>,
    /// Metric.
    pub metric: Option<u32>,
    /// The route domain this route reaches.
    pub routedomain: Option<String>,
}

/// `Network.dns`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DnsSpec {
    /// Domain.
    pub domain: Option<String>,
    /// Comma-separated servers.
    pub servers: Option<String>,
}

/// `Network.dhcp_relay`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DhcpRelaySpec {
    /// The relay's own address.
    pub self_ip: Option<String>,
    /// The DHCP server requests are relayed to.
    pub upstream_target: Option<String>,
}

/// `Network` body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkSpec {
    /// CIDR.
    pub cidr: String,
    /// VLAN tag (number or string in Drydock's designs).
    pub vlan: Option<Value>,
    /// MTU (default: the link's).
    pub mtu: Option<u32>,
    /// Address ranges.
    pub ranges: Vec<RangeSpec>,
    /// Static routes.
    pub routes: Vec<RouteSpec>,
    /// The route domain the network belongs to.
    pub routedomain: Option<String>,
    /// DNS.
    pub dns: DnsSpec,
    /// DHCP relay.
    pub dhcp_relay: Option<DhcpRelaySpec>,
    /// Labels.
    pub labels: BTreeMap<String, Value>,
}

impl NetworkSpec {
    /// The VLAN tag, if any; `Err` if it is not a number in 1..=4094.
    pub fn vlan_id(&self) -> Result<Option<u16>, String> {
        let raw = match &self.vlan {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(other) => return Err(format!("vlan `{other}` is not a number")),
        };
        match raw.parse::<u16>() {
            Ok(v) if (1..=4094).contains(&v) => Ok(Some(v)),
            _ => Err(format!("vlan `{raw}` is not a VLAN id (1-4094)")),
        }
    }
}

/// `HardwareProfile.hugepages.<name>`. Drydock keeps `size` as a string
/// used as-is (`1G`) and `count` as a non-negative integer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Hugepages {
    /// Page size, as the kernel reads it.
    pub size: Option<Value>,
    /// Page count.
    pub count: Option<Value>,
}

/// `HardwareProfile.device_aliases.<alias>`: a device by its bus address.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct DeviceAlias {
    /// Bus address (`0000:00:03.0`, `2:0.0.0`), or `regexp:<pattern>` for
    /// network devices whose PCI address matches.
    pub address: Option<String>,
    /// Device description.
    pub dev_type: Option<String>,
    /// `pci` (network interfaces) or `scsi` (disks).
    pub bus_type: Option<String>,
}

/// `HardwareProfile` body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct HardwareProfileSpec {
    /// Vendor.
    pub vendor: Option<String>,
    /// Generation.
    pub generation: Option<String>,
    /// Hardware version.
    pub hw_version: Option<String>,
    /// BIOS version.
    pub bios_version: Option<String>,
    /// `bios` or `uefi`.
    pub boot_mode: Option<String>,
    /// `pxe`, `usb` or `hdd`.
    pub bootstrap_protocol: Option<String>,
    /// Interface used to PXE boot.
    pub pxe_interface: Option<Value>,
    /// Device aliases.
    pub device_aliases: BTreeMap<String, DeviceAlias>,
    /// Hugepage pools.
    pub hugepages: BTreeMap<String, Hugepages>,
    /// CPU sets (name → CPU list such as `2,4`).
    pub cpu_sets: BTreeMap<String, Value>,
}

/// `oob` of a host profile or node.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct OobSpec {
    /// Driver type (`redfish`, `ipmi`, `sim`...).
    #[serde(rename = "type")]
    pub oob_type: Option<String>,
    /// Network on which the node's address is its BMC address.
    pub network: Option<String>,
    /// BMC login name.
    pub account: Option<String>,
    /// Name of the secret holding the BMC password (or `{username,password}`).
    pub credential: Option<String>,
    /// Anything else: `port` (the BMC's port, when not 80/443) and driver
    /// parameters such as `system_id` or `scheme`.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A filesystem on a partition or logical volume.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct FilesystemSpec {
    /// Mount point.
    pub mountpoint: Option<String>,
    /// Filesystem type (default ext4).
    pub fstype: Option<String>,
    /// Mount options.
    pub mount_options: Option<String>,
}

/// A partition.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PartitionSpec {
    /// Name.
    pub name: String,
    /// Size in Drydock's grammar (`10g`, `>100g`, `50%`).
    pub size: Option<String>,
    /// Bootable flag.
    pub bootable: bool,
    /// Volume group this partition backs.
    pub volume_group: Option<String>,
    /// Filesystem.
    pub filesystem: Option<FilesystemSpec>,
}

/// A physical device.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeviceSpec {
    /// Partition table (`gpt`, `msdos`).
    pub partition_table: Option<String>,
    /// Volume group the whole device backs.
    pub volume_group: Option<String>,
    /// Partitions.
    pub partitions: Vec<PartitionSpec>,
}

/// A logical volume.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogicalVolumeSpec {
    /// Name.
    pub name: String,
    /// Size.
    pub size: Option<String>,
    /// Filesystem.
    pub filesystem: Option<FilesystemSpec>,
}

/// A volume group.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct VolumeGroupSpec {
    /// Logical volumes.
    pub logical_volumes: Vec<LogicalVolumeSpec>,
}

/// `storage` of a host profile or node.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct StorageSpec {
    /// Layout (`lvm`, `flat`...).
    pub layout: Option<String>,
    /// Devices by name (or hardware alias).
    pub physical_devices: BTreeMap<String, DeviceSpec>,
    /// Volume groups by name.
    pub volume_groups: BTreeMap<String, VolumeGroupSpec>,
}

/// Which switch port an interface is cabled to (Drydock extension).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SwitchPortSpec {
    /// A ToR switch name from a `Rack`'s `tor_switches`.
    pub switch: String,
    /// The port, as the switch names it (`Ethernet1`).
    pub port: String,
    /// The network the node PXE boots on (default: the link's
    /// `trunking.default_network`).
    pub provisioning_network: Option<String>,
}

/// An interface of a host profile or node.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct InterfaceSpec {
    /// The `NetworkLink` it is cabled to.
    pub device_link: Option<String>,
    /// Physical devices (bond members, or the one NIC).
    pub slaves: Vec<String>,
    /// Networks attached.
    pub networks: Vec<String>,
    /// The switch port (Drydock extension, optional).
    pub switch_port: Option<SwitchPortSpec>,
}

/// `platform`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PlatformSpec {
    /// OS image.
    pub image: Option<String>,
    /// Kernel.
    pub kernel: Option<String>,
    /// Kernel parameters (`true` = flag).
    pub kernel_params: BTreeMap<String, Value>,
}

/// `metadata` of a node or profile.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeMetadata {
    /// Tags.
    pub tags: Vec<String>,
    /// Labels (matched by `node_labels`).
    pub owner_data: BTreeMap<String, String>,
    /// Rack name.
    pub rack: Option<String>,
    /// MAC the node PXE boots from.
    pub boot_mac: Option<String>,
}

/// `addressing[]` of a node.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AddressSpec {
    /// Network.
    pub network: String,
    /// Address, or `dhcp`.
    pub address: Option<String>,
}

/// A `HostProfile` or `BaremetalNode` body after inheritance.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct HostSpec {
    /// Parent profile.
    pub host_profile: Option<String>,
    /// Hardware profile.
    pub hardware_profile: Option<String>,
    /// The network whose gateway is the default route.
    pub primary_network: Option<String>,
    /// Out-of-band management.
    pub oob: OobSpec,
    /// Storage.
    pub storage: StorageSpec,
    /// Interfaces by name.
    pub interfaces: BTreeMap<String, InterfaceSpec>,
    /// Platform.
    pub platform: PlatformSpec,
    /// Metadata.
    pub metadata: NodeMetadata,
    /// Addresses (nodes only).
    pub addressing: Vec<AddressSpec>,
}

// ------------------------------------------------------------ inheritance

/// Merges a child body over its parent's, as Drydock's profile inheritance
/// does: mappings merge key by key (a child key `!name` removes the parent's
/// `name`), lists of strings are the parent's plus the child's (a child item
/// `!x` removes `x`), lists of named mappings merge by `name`, and any other
/// child value replaces the parent's.
pub fn inherit(parent: &Value, child: &Value) -> Value {
    match (parent, child) {
        (Value::Object(p), Value::Object(c)) => {
            let mut out = p.clone();
            for (k, v) in c {
                if let Some(removed) = k.strip_prefix('!') {
                    out.remove(removed);
                    continue;
                }
                let merged = match p.get(k) {
                    Some(pv) if !v.is_null() => inherit(pv, v),
                    Some(pv) => pv.clone(),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(p), Value::Array(c)) if is_named_list(p) && is_named_list(c) => {
            let mut out = p.clone();
            for item in c {
                let name = &item["name"];
                match out.iter_mut().find(|o| &o["name"] == name) {
                    Some(slot) => *slot = inherit(slot, item),
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        (Value::Array(p), Value::Array(c)) => {
            let mut out: Vec<Value> = p.clone();
            for item in c {
                if let Some(removed) = item.as_str().and_then(|s| s.strip_prefix('!')) {
                    out.retain(|o| o.as_str() != Some(removed));
                } else if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Value::Array(out)
        }
        (_, Value::Null) => parent.clone(),
        (_, c) => c.clone(),
    }
}

fn is_named_list(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("name").is_some_and(Value::is_string))
}

/// Removes `!name` keys and `!x` items that had nothing to remove, so a
/// body that inherits from nothing reads cleanly.
pub fn strip_removals(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('!'));
            m.values_mut().for_each(strip_removals);
        }
        Value::Array(items) => {
            items.retain(|i| !i.as_str().is_some_and(|s| s.starts_with('!')));
            items.iter_mut().for_each(strip_removals);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms_parse_and_foreign_documents_are_skipped() {
        let text = "---\nschema: drydock/Network/v1\nmetadata: {name: pxe}\ndata: {cidr: 10.0.0.0/24}\n\
                    ---\napiVersion: drydock/v1\nkind: Network\nmetadata: {name: oob}\nspec: {cidr: 10.1.0.0/24}\n\
                    ---\nschema: promenade/Genesis/v1\nmetadata: {name: g}\ndata: {}\n";
        let (docs, bad) = parse_stream(text, &DesignLimits::default()).unwrap();
        assert!(bad.is_empty());
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].kind, Kind::Network);
        assert_eq!(docs[1].name, "oob");
        assert_eq!(docs[1].data["cidr"], "10.1.0.0/24");
    }

    #[test]
    fn bad_yaml_reports_line_and_column() {
        let err = parse_stream(
            "---\nschema: drydock/Network/v1\nmetadata: {name: [\n",
            &DesignLimits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ParseError::Yaml(y) if y.location.is_some()),
            "{err}"
        );
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn inheritance_merges_and_removes() {
        let parent = json!({"interfaces": {"pxe": {"networks": ["pxe"]}, "mgmt": {"networks": ["m"]}},
                            "metadata": {"tags": ["a", "b"]}, "platform": {"image": "jammy"}});
        let child = json!({"interfaces": {"!mgmt": null, "pxe": {"networks": ["extra"]}},
                           "metadata": {"tags": ["!a", "c"]}, "platform": {"kernel": "hwe"}});
        let merged = inherit(&parent, &child);
        assert_eq!(
            merged["interfaces"],
            json!({"pxe": {"networks": ["pxe", "extra"]}})
        );
        assert_eq!(merged["metadata"]["tags"], json!(["b", "c"]));
        assert_eq!(
            merged["platform"],
            json!({"image": "jammy", "kernel": "hwe"})
        );
    }
}
