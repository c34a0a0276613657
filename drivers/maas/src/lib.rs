//! `maas`: Canonical MAAS (REST API 2.0) as Drydock's node driver.
//!
//! Does what Airship Drydock's MAAS driver does, action by action: checks the
//! region (version, API key, boot images, a healthy rack controller), builds
//! the site's networks (a fabric per network link, VLANs, subnets, IP ranges,
//! DHCP, static routes), installs SSH keys and package repositories, finds
//! each node (by host name, BMC address or boot MAC), commissions it, applies
//! its interfaces, storage and platform, deploys and releases it. Every
//! action is idempotent: a machine already in the target state is left alone.
//!
//! # Layout
//!
//! - [`api`]: the HTTP client (OAuth 1.0 PLAINTEXT, multipart forms, retries,
//!   MAAS answers mapped to driver errors).
//! - `site`: site-wide actions and the image catalogue.
//! - `machine`: finding machines and their lifecycle (commission, deploy,
//!   release, tags); status codes as data.
//! - `netconf`: a machine's bonds, VLAN interfaces and subnet links.
//! - `storage`: a machine's partitions, volume groups and logical volumes, and
//!   Drydock's size grammar.
//!
//! # Settings
//!
//! | key | meaning |
//! | --- | --- |
//! | `url` | MAAS root, e.g. `http://maas:5240/MAAS` (required) |
//! | `api_key_secret` | name of the secret holding the API key `consumer:token:secret` (default `maas-api-key`) |
//! | `poll_interval_ms` | wait between status polls (default 5000) |
//! | `rack_controller` | host name or system id of the rack controller serving DHCP (default: the first one) |
//! | `erase_disks` | `true` (default) to erase disks on release, quickly |
//!
//! The API key is a secret the operator grants to the driver; it is sent only
//! in the `Authorization` header, never logged nor returned.

pub mod api;
mod machine;
mod netconf;
mod site;
mod storage;

use drydock_sdk::prelude::*;

/// The MAAS driver.
pub struct Maas;

impl Driver for Maas {
    const NAME: &'static str = "maas";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const VENDOR: &'static str = "Drydock";
    const DESCRIPTION: &'static str = "Canonical MAAS (API 2.0) as the node bootstrapper";
}

drydock_sdk::export_driver!(Maas: node);

impl NodeDriver for Maas {
    fn validate_node_services(ctx: &Ctx) -> Result<()> {
        site::validate(ctx)
    }

    fn create_network_template(ctx: &Ctx, site: &SiteNetworks) -> Result<()> {
        site::network_template(ctx, site)
    }

    fn create_storage_template(ctx: &Ctx) -> Result<()> {
        ctx.debug("MAAS has no site-wide storage templates; nothing to do");
        Ok(())
    }

    fn create_boot_media(ctx: &Ctx, node: &Node) -> Result<()> {
        ctx.debug(format!(
            "MAAS PXE boots {}; no boot media needed",
            node.name
        ));
        Ok(())
    }

    fn configure_user_credentials(ctx: &Ctx, ssh_keys: &[String]) -> Result<()> {
        site::ssh_keys(ctx, ssh_keys)
    }

    fn configure_node_provisioner(ctx: &Ctx, repositories: &[PackageRepository]) -> Result<()> {
        site::repositories(ctx, repositories)
    }

    fn prepare_hardware_config(ctx: &Ctx, node: &Node) -> Result<()> {
        ctx.debug(format!(
            "MAAS has no firmware settings; nothing to prepare for {}",
            node.name
        ));
        Ok(())
    }

    fn identify_node(ctx: &Ctx, node: &Node) -> Result<NodeIdentity> {
        machine::identify(ctx, node)
    }

    fn configure_hardware(ctx: &Ctx, node: &Node) -> Result<()> {
        machine::commission(ctx, node)
    }

    fn interrogate_node(ctx: &Ctx, node: &Node) -> Result<NodeInterrogation> {
        machine::interrogate(ctx, node)
    }

    fn apply_node_networking(ctx: &Ctx, node: &Node, site: &SiteNetworks) -> Result<()> {
        netconf::apply(ctx, node, site)
    }

    fn apply_node_storage(ctx: &Ctx, node: &Node) -> Result<()> {
        storage::apply(ctx, node)
    }

    fn apply_node_platform(ctx: &Ctx, node: &Node) -> Result<()> {
        machine::platform(ctx, node)
    }

    fn deploy_node(ctx: &Ctx, node: &Node, options: &DeployOptions) -> Result<()> {
        machine::deploy(ctx, node, options)
    }

    fn destroy_node(ctx: &Ctx, node: &Node) -> Result<()> {
        machine::destroy(ctx, node)
    }

    fn available_images(ctx: &Ctx) -> Result<Vec<String>> {
        site::images(ctx)
    }

    fn available_kernels(ctx: &Ctx, image: &str) -> Result<Vec<String>> {
        site::kernels(ctx, image)
    }
}
