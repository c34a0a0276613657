//! The host's own view of nodes and action parameters.
//!
//! These serde types are what the CLI (`--node JSON`) and, later, the REST API
//! and site-design ingestion produce. They are deliberately forgiving on input
//! (every field but a node's name has a default) and are converted into the
//! WIT types only at the driver boundary (`drivers::convert`). Credentials are
//! resolved by the host and never serialized back out.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A user name and password. `Debug` hides the password, and it is never
/// serialized.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    /// Account name.
    pub username: String,
    /// Password or token.
    #[serde(default)]
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How a node's BMC is reached.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Oob {
    /// Out-of-band type, e.g. `redfish`, `sim`.
    #[serde(rename = "type")]
    pub oob_type: String,
    /// BMC address.
    pub address: Option<String>,
    /// BMC port.
    pub port: Option<u16>,
    /// BMC login name (the design's `oob.account`), used with a secret that
    /// holds only the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Name of the secret holding the BMC credentials.
    pub credential: Option<String>,
    /// Credentials resolved by the host; never serialized.
    #[serde(skip_serializing)]
    pub credentials: Option<Credentials>,
    /// Further oob parameters.
    pub params: BTreeMap<String, String>,
}

/// A switch as a network driver reaches it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Switch {
    /// Switch name.
    pub name: String,
    /// Management address.
    pub address: String,
    /// Management port.
    pub port: Option<u16>,
    /// Login name, used with a secret that holds only the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Name of the secret holding the switch credentials.
    pub credential: Option<String>,
    /// Credentials resolved by the host; never serialized.
    #[serde(skip_serializing)]
    pub credentials: Option<Credentials>,
}

/// The switch port a node interface is cabled to.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchPort {
    /// The switch.
    pub switch: Switch,
    /// Port name.
    pub port: String,
    /// VLANs while the node is provisioned (from the site design).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<PortVlans>,
    /// VLANs once the node is deployed (from the site design).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub production: Option<PortVlans>,
}

/// An address on one network.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Address {
    /// Network name.
    pub network: String,
    /// Static address; none for DHCP.
    pub address: Option<String>,
}

/// A node network interface.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Network link.
    pub device_link: Option<String>,
    /// Member or physical devices.
    pub slaves: Vec<String>,
    /// Networks carried.
    pub networks: Vec<String>,
    /// Addresses held.
    pub addresses: Vec<Address>,
    /// Hardware address.
    pub mac: Option<String>,
    /// Switch port.
    pub switch_port: Option<SwitchPort>,
}

/// A file system.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Filesystem {
    /// Mount point.
    pub mountpoint: Option<String>,
    /// File system type.
    pub fstype: String,
    /// Mount options.
    pub mount_options: Option<String>,
}

/// A partition.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Partition {
    /// Name.
    pub name: String,
    /// Size in Drydock's grammar.
    pub size: String,
    /// Boot flag.
    pub bootable: bool,
    /// Volume group it belongs to.
    pub volume_group: Option<String>,
    /// File system.
    pub filesystem: Option<Filesystem>,
}

/// A physical device.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PhysicalDevice {
    /// Device name.
    pub name: String,
    /// Partition table type.
    pub partition_table: Option<String>,
    /// Volume group the whole device belongs to.
    pub volume_group: Option<String>,
    /// Partitions.
    pub partitions: Vec<Partition>,
}

/// A logical volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LogicalVolume {
    /// Name.
    pub name: String,
    /// Size in Drydock's grammar.
    pub size: String,
    /// File system.
    pub filesystem: Option<Filesystem>,
}

/// A volume group.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeGroup {
    /// Name.
    pub name: String,
    /// Logical volumes.
    pub logical_volumes: Vec<LogicalVolume>,
}

/// Storage design.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// Layout name.
    pub layout: Option<String>,
    /// Physical devices.
    pub physical_devices: Vec<PhysicalDevice>,
    /// Volume groups.
    pub volume_groups: Vec<VolumeGroup>,
}

/// Platform to deploy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Platform {
    /// Image.
    pub image: Option<String>,
    /// Kernel.
    pub kernel: Option<String>,
    /// Kernel parameters.
    pub kernel_params: BTreeMap<String, String>,
}

/// A node as the host knows it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// BMC access.
    pub oob: Oob,
    /// PXE boot MAC.
    pub boot_mac: Option<String>,
    /// Interfaces.
    pub interfaces: Vec<Interface>,
    /// Platform.
    pub platform: Platform,
    /// Storage.
    pub storage: Storage,
    /// Tags.
    pub tags: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Rack.
    pub rack: Option<String>,
    /// DNS domain.
    pub domain: Option<String>,
    /// Device aliases of the node's hardware profile, by which interface
    /// slaves and physical devices may be named; the host resolves them to
    /// the node's own device names (from its `lshw` build data) before a
    /// driver sees the node, as Drydock does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_aliases: Vec<DeviceAlias>,
}

/// A device alias of a hardware profile: a device by its bus address.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceAlias {
    /// The alias, e.g. `prim_nic01`.
    pub alias: String,
    /// `pci` or `scsi`.
    pub bus_type: String,
    /// Bus address (`0000:00:03.0`), or `regexp:<pattern>` matching the PCI
    /// addresses of network devices.
    pub address: String,
    /// Device description.
    pub dev_type: Option<String>,
}

/// A boot device.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BootDevice {
    /// Network boot.
    #[default]
    Pxe,
    /// Local disk.
    Disk,
    /// Optical media.
    Cdrom,
    /// Firmware setup.
    BiosSetup,
}

/// A boot override.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BootTarget {
    /// Device.
    pub device: BootDevice,
    /// Keep for every boot (true) or the next boot only (false).
    pub persistent: bool,
}

/// A route.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    /// Destination CIDR.
    pub subnet: String,
    /// Next hop.
    pub gateway: String,
    /// Metric.
    pub metric: u32,
}

/// An address range.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct IpRange {
    /// `static`, `dhcp` or `reserved`.
    #[serde(rename = "type")]
    pub kind: String,
    /// First address.
    pub start: String,
    /// Last address.
    pub end: String,
}

/// A network link.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkLink {
    /// Name.
    pub name: String,
    /// MTU.
    pub mtu: u32,
    /// Bonding mode.
    pub bonding_mode: Option<String>,
    /// Trunking mode.
    pub trunk_mode: Option<String>,
    /// Native network.
    pub native_network: Option<String>,
    /// Allowed networks.
    pub allowed_networks: Vec<String>,
}

/// A network.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// Name.
    pub name: String,
    /// CIDR.
    pub cidr: String,
    /// VLAN tag.
    pub vlan: Option<u16>,
    /// MTU.
    pub mtu: u32,
    /// Routes.
    pub routes: Vec<Route>,
    /// Ranges.
    pub ranges: Vec<IpRange>,
    /// DNS servers.
    pub dns_servers: Vec<String>,
    /// DNS domain.
    pub dns_domain: Option<String>,
}

/// The site's networks.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SiteNetworks {
    /// Links.
    pub links: Vec<NetworkLink>,
    /// Networks.
    pub networks: Vec<Network>,
}

/// A package repository.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Repository {
    /// Name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// Distributions.
    pub distributions: Vec<String>,
    /// Components.
    pub components: Vec<String>,
    /// Signing key.
    pub gpg_key: Option<String>,
}

/// Switchport mode.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PortMode {
    /// Access port.
    #[default]
    Access,
    /// Trunk port.
    Trunk,
    /// Anything else.
    Other,
}

/// A port's VLAN configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PortVlans {
    /// Mode.
    pub mode: PortMode,
    /// Access VLAN.
    pub access_vlan: Option<u16>,
    /// Native VLAN.
    pub native_vlan: Option<u16>,
    /// Allowed VLANs.
    pub allowed_vlans: Vec<u16>,
}

/// Parameters of a driver action besides the node. Each action reads the
/// fields it needs and reports a missing one as invalid input.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ActionParams {
    /// `set_node_boot`: the boot override (default: PXE, once).
    pub boot: Option<BootTarget>,
    /// `create_network_template`, `apply_node_networking`: the site's networks.
    pub site: Option<SiteNetworks>,
    /// `configure_user_credentials`: SSH public keys.
    pub ssh_keys: Vec<String>,
    /// `configure_node_provisioner`: package repositories.
    pub repositories: Vec<Repository>,
    /// `deploy_node`: cloud-init user data.
    pub user_data: Option<String>,
    /// `available_kernels`: the image.
    pub image: Option<String>,
    /// Network actions: the port (default: the first node interface with one).
    pub switch_port: Option<SwitchPort>,
    /// `validate_network_services`: the switch.
    pub switch: Option<Switch>,
    /// `configure_port_*`: the VLAN configuration to apply.
    pub vlans: Option<PortVlans>,
}
