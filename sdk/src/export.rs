//! Glue between the traits and the generated WIT exports, used by
//! [`export_driver!`](crate::export_driver). Not a stable API.

use std::marker::PhantomData;

use crate::wit::exports::drydock::driver::{metadata, network, node, oob, provisioner};
use crate::{
    BootTarget, Ctx, DeployOptions, Driver, DriverError, DriverInfo, DriverInterface, Labels,
    NetworkDriver, Node, NodeDriver, NodeIdentity, NodeInterrogation, OobDriver, OobInterrogation,
    OutboundAccess, PackageRepository, PortInterrogation, PortVlans, ProvisionerDriver,
    SiteNetworks, SwitchInfo, SwitchPort,
};

type Result<T> = std::result::Result<T, DriverError>;

/// What `export_driver!` registered: the driver, the implementation of each
/// interface (the driver or [`Unsupported`]) and the registered interfaces.
pub trait Registration {
    /// The driver's description.
    type Driver: Driver;
    /// Implements `oob`.
    type Oob: OobDriver;
    /// Implements `node`.
    type Node: NodeDriver;
    /// Implements `network`.
    type Network: NetworkDriver;
    /// Implements `provisioner`.
    type Provisioner: ProvisionerDriver;
    /// The interfaces listed in `export_driver!`.
    const INTERFACES: &'static [DriverInterface];
}

/// Stands in for an interface the driver did not register: every action
/// answers `unsupported`.
pub struct Unsupported;

impl OobDriver for Unsupported {}
impl NodeDriver for Unsupported {}
impl NetworkDriver for Unsupported {}
impl ProvisionerDriver for Unsupported {}

/// The type the generated `export!` macro exports.
pub struct Component<R>(PhantomData<R>);

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl<R: Registration> metadata::Guest for Component<R> {
    fn info() -> DriverInfo {
        type D<R> = <R as Registration>::Driver;
        let mut interfaces: Vec<DriverInterface> = Vec::new();
        for interface in R::INTERFACES {
            if !interfaces.contains(interface) {
                interfaces.push(*interface);
            }
        }
        DriverInfo {
            name: D::<R>::NAME.to_string(),
            version: D::<R>::VERSION.to_string(),
            vendor: D::<R>::VENDOR.to_string(),
            description: D::<R>::DESCRIPTION.to_string(),
            interfaces,
            oob_types: strings(D::<R>::OOB_TYPES),
            outbound: OutboundAccess {
                hosts: strings(D::<R>::OUTBOUND_HOSTS),
                node_bmc: D::<R>::NODE_BMC,
            },
            unsafe_to_repeat: strings(D::<R>::UNSAFE_TO_REPEAT),
        }
    }
}

impl<R: Registration> oob::Guest for Component<R> {
    fn validate_oob_services(node: Node) -> Result<()> {
        R::Oob::validate_oob_services(&Ctx::new(), &node)
    }
    fn config_node_pxe(node: Node) -> Result<()> {
        R::Oob::config_node_pxe(&Ctx::new(), &node)
    }
    fn set_node_boot(node: Node, target: BootTarget) -> Result<()> {
        R::Oob::set_node_boot(&Ctx::new(), &node, target)
    }
    fn power_off_node(node: Node) -> Result<()> {
        R::Oob::power_off_node(&Ctx::new(), &node)
    }
    fn power_on_node(node: Node) -> Result<()> {
        R::Oob::power_on_node(&Ctx::new(), &node)
    }
    fn power_cycle_node(node: Node) -> Result<()> {
        R::Oob::power_cycle_node(&Ctx::new(), &node)
    }
    fn interrogate_oob(node: Node) -> Result<OobInterrogation> {
        R::Oob::interrogate_oob(&Ctx::new(), &node)
    }
}

impl<R: Registration> node::Guest for Component<R> {
    fn validate_node_services() -> Result<()> {
        R::Node::validate_node_services(&Ctx::new())
    }
    fn create_network_template(site: SiteNetworks) -> Result<()> {
        R::Node::create_network_template(&Ctx::new(), &site)
    }
    fn create_storage_template() -> Result<()> {
        R::Node::create_storage_template(&Ctx::new())
    }
    fn create_boot_media(node: Node) -> Result<()> {
        R::Node::create_boot_media(&Ctx::new(), &node)
    }
    fn configure_user_credentials(ssh_keys: Vec<String>) -> Result<()> {
        R::Node::configure_user_credentials(&Ctx::new(), &ssh_keys)
    }
    fn configure_node_provisioner(repositories: Vec<PackageRepository>) -> Result<()> {
        R::Node::configure_node_provisioner(&Ctx::new(), &repositories)
    }
    fn prepare_hardware_config(node: Node) -> Result<()> {
        R::Node::prepare_hardware_config(&Ctx::new(), &node)
    }
    fn identify_node(node: Node) -> Result<NodeIdentity> {
        R::Node::identify_node(&Ctx::new(), &node)
    }
    fn configure_hardware(node: Node) -> Result<()> {
        R::Node::configure_hardware(&Ctx::new(), &node)
    }
    fn interrogate_node(node: Node) -> Result<NodeInterrogation> {
        R::Node::interrogate_node(&Ctx::new(), &node)
    }
    fn apply_node_networking(node: Node, site: SiteNetworks) -> Result<()> {
        R::Node::apply_node_networking(&Ctx::new(), &node, &site)
    }
    fn apply_node_storage(node: Node) -> Result<()> {
        R::Node::apply_node_storage(&Ctx::new(), &node)
    }
    fn apply_node_platform(node: Node) -> Result<()> {
        R::Node::apply_node_platform(&Ctx::new(), &node)
    }
    fn deploy_node(node: Node, options: DeployOptions) -> Result<()> {
        R::Node::deploy_node(&Ctx::new(), &node, &options)
    }
    fn destroy_node(node: Node) -> Result<()> {
        R::Node::destroy_node(&Ctx::new(), &node)
    }
    fn available_images() -> Result<Vec<String>> {
        R::Node::available_images(&Ctx::new())
    }
    fn available_kernels(image: String) -> Result<Vec<String>> {
        R::Node::available_kernels(&Ctx::new(), &image)
    }
}

impl<R: Registration> network::Guest for Component<R> {
    fn validate_network_services(switch: SwitchInfo) -> Result<()> {
        R::Network::validate_network_services(&Ctx::new(), &switch)
    }
    fn interrogate_port(node: Node, port: SwitchPort) -> Result<PortInterrogation> {
        R::Network::interrogate_port(&Ctx::new(), &node, &port)
    }
    fn config_port_provisioning(node: Node, port: SwitchPort, target: PortVlans) -> Result<()> {
        R::Network::config_port_provisioning(&Ctx::new(), &node, &port, &target)
    }
    fn config_port_production(node: Node, port: SwitchPort, target: PortVlans) -> Result<()> {
        R::Network::config_port_production(&Ctx::new(), &node, &port, &target)
    }
}

impl<R: Registration> provisioner::Guest for Component<R> {
    fn relabel_node(node: Node, labels: Labels) -> Result<()> {
        R::Provisioner::relabel_node(&Ctx::new(), &node, &labels)
    }
}
