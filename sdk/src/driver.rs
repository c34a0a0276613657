//! The traits a driver implements: [`Driver`] describes it, [`OobDriver`],
//! [`NodeDriver`], [`NetworkDriver`] and [`ProvisionerDriver`] carry the
//! actions of the WIT interfaces `oob`, `node`, `network` and `provisioner`.
//!
//! Every action receives the call's [`Ctx`] and borrows its arguments. Every
//! action has a default answering [`DriverError::Unsupported`], so a driver
//! writes only what its device does. Methods are named after the WIT
//! functions; messages use Drydock's action names, which differ for two:
//! `config_port_provisioning` / `config_port_production` are Drydock's
//! `config_port_provisioning` / `config_port_production`.
//!
//! Actions must be idempotent: the host may run one again after a failover, a
//! timeout or a retry.

use crate::{
    BootTarget, Ctx, DeployOptions, DriverError, Node, NodeIdentity, NodeInterrogation,
    OobInterrogation, PackageRepository, PortInterrogation, PortVlans, Result, SiteNetworks,
    SwitchInfo, SwitchPort,
};

/// The error a default action body answers.
fn unsupported<T>(action: &str) -> Result<T> {
    Err(DriverError::Unsupported(format!(
        "{action} is not implemented by this driver"
    )))
}

/// What a driver is and what it claims; the host reads it once at load time.
///
/// `export_driver!` turns it into the WIT `driver-info`, adding the list of
/// registered interfaces.
pub trait Driver {
    /// Driver name, unique on a host, e.g. `redfish`: lower case, digits and
    /// `-` only.
    const NAME: &'static str;
    /// Semantic version of the driver, e.g. `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// Who publishes it.
    const VENDOR: &'static str;
    /// One-line description.
    const DESCRIPTION: &'static str;
    /// Out-of-band types it claims, e.g. `redfish` (oob drivers only).
    const OOB_TYPES: &'static [&'static str] = &[];
    /// Hosts (names, IPs or CIDRs, with an optional `:port`) it needs to reach
    /// besides node BMCs. The operator's grant is what the host enforces.
    const OUTBOUND_HOSTS: &'static [&'static str] = &[];
    /// True if it talks to each node's own BMC (`node.oob.address`).
    const NODE_BMC: bool = false;
    /// Actions (by their Drydock names, e.g. `deploy_node`) that are not safe
    /// to run twice; the host fails them instead of re-running them after a
    /// failover.
    const UNSAFE_TO_REPEAT: &'static [&'static str] = &[];
}

/// Out-of-band management of a node through its BMC (WIT interface `oob`).
pub trait OobDriver {
    /// Checks that the node's BMC is reachable and accepts the credentials.
    fn validate_oob_services(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("validate_oob_services")
    }

    /// Prepares the node to PXE boot on its next boot (boot override to PXE,
    /// once).
    fn config_node_pxe(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("config_node_pxe")
    }

    /// Sets the node's boot override.
    fn set_node_boot(ctx: &Ctx, node: &Node, target: BootTarget) -> Result<()> {
        let _ = (ctx, node, target);
        unsupported("set_node_boot")
    }

    /// Powers the node off and waits until its BMC reports it off.
    fn power_off_node(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("power_off_node")
    }

    /// Powers the node on and waits until its BMC reports it on.
    fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("power_on_node")
    }

    /// Power-cycles the node (off, then on; or a reset) and waits until it is
    /// on.
    fn power_cycle_node(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("power_cycle_node")
    }

    /// Reads power state, boot override and hardware identity from the BMC.
    fn interrogate_oob(ctx: &Ctx, node: &Node) -> Result<OobInterrogation> {
        let _ = (ctx, node);
        unsupported("interrogate_oob")
    }
}

/// An OS bootstrapper (WIT interface `node`): enlists, commissions, configures
/// and deploys nodes.
pub trait NodeDriver {
    /// Checks the bootstrapper: reachable, credentials accepted, boot images
    /// imported, a healthy controller.
    fn validate_node_services(ctx: &Ctx) -> Result<()> {
        let _ = ctx;
        unsupported("validate_node_services")
    }

    /// Creates the site's networks in the bootstrapper.
    fn create_network_template(ctx: &Ctx, site: &SiteNetworks) -> Result<()> {
        let _ = (ctx, site);
        unsupported("create_network_template")
    }

    /// Creates site-wide storage templates, where the bootstrapper has them.
    fn create_storage_template(ctx: &Ctx) -> Result<()> {
        let _ = ctx;
        unsupported("create_storage_template")
    }

    /// Creates boot media for a node, where the bootstrapper needs it.
    fn create_boot_media(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("create_boot_media")
    }

    /// Installs the SSH public keys deployed nodes accept.
    fn configure_user_credentials(ctx: &Ctx, ssh_keys: &[String]) -> Result<()> {
        let _ = (ctx, ssh_keys);
        unsupported("configure_user_credentials")
    }

    /// Configures the package repositories deployed nodes use.
    fn configure_node_provisioner(ctx: &Ctx, repositories: &[PackageRepository]) -> Result<()> {
        let _ = (ctx, repositories);
        unsupported("configure_node_provisioner")
    }

    /// Prepares hardware configuration (e.g. firmware settings) for a node.
    fn prepare_hardware_config(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("prepare_hardware_config")
    }

    /// Finds the node in the bootstrapper and records its identity. Fails
    /// while the node is not enlisted yet.
    fn identify_node(ctx: &Ctx, node: &Node) -> Result<NodeIdentity> {
        let _ = (ctx, node);
        unsupported("identify_node")
    }

    /// Commissions the node (hardware discovery) and waits until it is ready.
    fn configure_hardware(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("configure_hardware")
    }

    /// Reads what the bootstrapper knows of the node.
    fn interrogate_node(ctx: &Ctx, node: &Node) -> Result<NodeInterrogation> {
        let _ = (ctx, node);
        unsupported("interrogate_node")
    }

    /// Applies the node's interface design (bonds, VLANs, addresses).
    fn apply_node_networking(ctx: &Ctx, node: &Node, site: &SiteNetworks) -> Result<()> {
        let _ = (ctx, node, site);
        unsupported("apply_node_networking")
    }

    /// Applies the node's storage design.
    fn apply_node_storage(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("apply_node_storage")
    }

    /// Applies the node's platform (kernel parameters, tags).
    fn apply_node_platform(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("apply_node_platform")
    }

    /// Deploys the node's operating system and waits until it is deployed.
    fn deploy_node(ctx: &Ctx, node: &Node, options: &DeployOptions) -> Result<()> {
        let _ = (ctx, node, options);
        unsupported("deploy_node")
    }

    /// Releases (with disk erase where supported) and removes the node.
    fn destroy_node(ctx: &Ctx, node: &Node) -> Result<()> {
        let _ = (ctx, node);
        unsupported("destroy_node")
    }

    /// Lists the operating system images the bootstrapper can deploy.
    fn available_images(ctx: &Ctx) -> Result<Vec<String>> {
        let _ = ctx;
        unsupported("available_images")
    }

    /// Lists the kernels available for an image.
    fn available_kernels(ctx: &Ctx, image: &str) -> Result<Vec<String>> {
        let _ = (ctx, image);
        unsupported("available_kernels")
    }
}

/// Switch port changes during provisioning (WIT interface `network`).
pub trait NetworkDriver {
    /// Checks that the switch is reachable and accepts the credentials.
    fn validate_network_services(ctx: &Ctx, switch: &SwitchInfo) -> Result<()> {
        let _ = (ctx, switch);
        unsupported("validate_network_services")
    }

    /// Reads a port's configuration and status.
    fn interrogate_port(ctx: &Ctx, node: &Node, port: &SwitchPort) -> Result<PortInterrogation> {
        let _ = (ctx, node, port);
        unsupported("interrogate_port")
    }

    /// Puts the node's port into the provisioning VLAN configuration `target`.
    /// The driver may remember the previous configuration in its key-value
    /// store. Drydock's `config_port_provisioning`.
    fn config_port_provisioning(
        ctx: &Ctx,
        node: &Node,
        port: &SwitchPort,
        target: &PortVlans,
    ) -> Result<()> {
        let _ = (ctx, node, port, target);
        unsupported("config_port_provisioning")
    }

    /// Puts the node's port into its production VLAN configuration `target`.
    /// Drydock's `config_port_production`.
    fn config_port_production(
        ctx: &Ctx,
        node: &Node,
        port: &SwitchPort,
        target: &PortVlans,
    ) -> Result<()> {
        let _ = (ctx, node, port, target);
        unsupported("config_port_production")
    }
}

/// A Kubernetes provisioner (WIT interface `provisioner`, new in 0.2.0):
/// Drydock's `relabel_nodes` calls it for each node of its filter.
pub trait ProvisionerDriver {
    /// Makes the node's Kubernetes labels exactly `labels` (name and value;
    /// the node's labels from the design). Idempotent. Drydock's
    /// `relabel_node`.
    fn relabel_node(ctx: &Ctx, node: &Node, labels: &[(String, String)]) -> Result<()> {
        let _ = (ctx, node, labels);
        unsupported("relabel_node")
    }
}
