//! A simulated OS bootstrapper.
//!
//! Each node's record lives in `node/<node>` (JSON [`Record`]): identify
//! creates it in status `New` once the node has enlisted — by default after
//! it was PXE-booted (its boot override is PXE and it was powered on by the
//! sim oob interface, as a real bootstrapper sees a node only once it boots
//! from the network); setting `enlist = always` enlists any node at once.
//! configure_hardware moves it to `Ready` (reporting the node's hardware as
//! `lshw` build data: [`LSHW`], the devices of Drydock's documented
//! hardware profile example), the
//! apply actions record what they applied, deploy moves it to `Deployed`,
//! destroy deletes it. Site-wide actions record what they got under `site/`.

use std::collections::BTreeMap;

use drydock_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chaos::begin;
use crate::{Sim, fnv1a};

/// Images and their kernels, as MAAS names Ubuntu's LTS releases (the
/// images and kernels Drydock's designs name: `image: xenial`,
/// `kernel: ga-16.04` or `hwe-16.04`, through noble).
const IMAGES: &[(&str, &[&str])] = &[
    ("xenial", &["ga-16.04", "hwe-16.04", "hwe-16.04-edge"]),
    ("bionic", &["ga-18.04", "hwe-18.04", "hwe-18.04-edge"]),
    ("focal", &["ga-20.04", "hwe-20.04", "hwe-20.04-edge"]),
    ("jammy", &["ga-22.04", "hwe-22.04", "hwe-22.04-edge"]),
    ("noble", &["ga-24.04", "hwe-24.04", "hwe-24.04-edge"]),
];

/// The image deployed when a node names none.
const DEFAULT_IMAGE: &str = "jammy";

/// What `lshw -xml` reports for every simulated node: two NICs at PCI
/// `0000:00:03.0` (`enp0s3`) and `0000:00:04.0` (`enp0s4`) and disks at SCSI
/// `2:0.0.0` (`/dev/sda`) and `2:0.1.0` (`/dev/sdb`), the addresses of
/// Drydock's documented `HardwareProfile` example, so designs that name
/// devices by alias resolve as on that hardware.
pub const LSHW: &str = r#"<?xml version="1.0" standalone="yes" ?>
<list>
<node id="sim" claimed="true" class="system" handle="DMI:0001">
 <description>Computer</description>
 <product>Drydock simulated node</product>
 <node id="core" claimed="true" class="bus" handle="DMI:0008">
  <node id="pci" claimed="true" class="bridge" handle="PCIBUS:0000:00">
   <businfo>pci@0000:00:00.0</businfo>
   <node id="network:0" claimed="true" class="network" handle="PCI:0000:00:03.0">
    <description>Ethernet interface</description>
    <product>82540EM Gigabit Ethernet Controller</product>
    <businfo>pci@0000:00:03.0</businfo>
    <logicalname>enp0s3</logicalname>
   </node>
   <node id="network:1" claimed="true" class="network" handle="PCI:0000:00:04.0">
    <description>Ethernet interface</description>
    <product>82540EM Gigabit Ethernet Controller</product>
    <businfo>pci@0000:00:04.0</businfo>
    <logicalname>enp0s4</logicalname>
   </node>
   <node id="scsi" claimed="true" class="storage" handle="PCI:0000:00:0d.0">
    <businfo>pci@0000:00:0d.0</businfo>
    <node id="disk:0" claimed="true" class="disk" handle="SCSI:02:00:00:00">
     <product>VBOX HARDDISK</product>
     <businfo>scsi@2:0.0.0</businfo>
     <logicalname>/dev/sda</logicalname>
    </node>
    <node id="disk:1" claimed="true" class="disk" handle="SCSI:02:00:01:00">
     <product>VBOX HARDDISK</product>
     <businfo>scsi@2:0.1.0</businfo>
     <logicalname>/dev/sdb</logicalname>
    </node>
   </node>
  </node>
 </node>
</node>
</list>
"#;

/// What the simulated bootstrapper knows of a node.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    id: String,
    status: String,
    /// Apply action (`networking`, `storage`, `platform`) → what it applied.
    applied: BTreeMap<String, Value>,
    image: Option<String>,
    kernel: Option<String>,
    user_data: bool,
}

fn key(node: &Node) -> String {
    format!("node/{}", node.name)
}

fn load(ctx: &Ctx, node: &Node) -> Result<Option<Record>> {
    ctx.kv_get_json(&key(node))
}

fn save(ctx: &Ctx, node: &Node, record: &Record) -> Result<()> {
    ctx.kv_set_json(&key(node), record)
}

/// The node's record once commissioned (`Ready` or `Deployed`), else a
/// permanent failure naming what must run first.
fn commissioned(ctx: &Ctx, node: &Node, action: &str) -> Result<Record> {
    match load(ctx, node)? {
        None => Err(DriverError::Failed(format!(
            "{action} on {}: the node is not identified yet (run identify_node first)",
            node.name
        ))),
        Some(record) if record.status == "New" => Err(DriverError::Failed(format!(
            "{action} on {}: the node is not commissioned yet (run configure_hardware first)",
            node.name
        ))),
        Some(record) => Ok(record),
    }
}

fn apply(ctx: &Ctx, node: &Node, action: &str, what: &str, applied: Value) -> Result<()> {
    begin(ctx, action, &node.name)?;
    let mut record = commissioned(ctx, node, action)?;
    record.applied.insert(what.to_string(), applied);
    save(ctx, node, &record)
}

fn kernels(image: &str) -> Option<&'static [&'static str]> {
    IMAGES.iter().find(|(i, _)| *i == image).map(|(_, k)| *k)
}

impl NodeDriver for Sim {
    fn validate_node_services(ctx: &Ctx) -> Result<()> {
        begin(ctx, "validate_node_services", "")
    }

    fn create_network_template(ctx: &Ctx, site: &SiteNetworks) -> Result<()> {
        begin(ctx, "create_network_template", "")?;
        let template = json!({
            "links": site.links.iter().map(|l| &l.name).collect::<Vec<_>>(),
            "networks": site.networks.iter().map(|n| json!({
                "name": n.name, "cidr": n.cidr, "vlan": n.vlan,
                "routes": n.routes.iter().map(|r| json!({
                    "subnet": r.subnet, "gateway": r.gateway, "metric": r.metric,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        ctx.kv_set_json("site/network_template", &template)
    }

    fn create_storage_template(ctx: &Ctx) -> Result<()> {
        begin(ctx, "create_storage_template", "")?;
        ctx.kv_set("site/storage_template", "created")
    }

    fn create_boot_media(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "create_boot_media", &node.name)?;
        ctx.kv_set(&format!("boot_media/{}", node.name), "created")
    }

    fn configure_user_credentials(ctx: &Ctx, ssh_keys: &[String]) -> Result<()> {
        begin(ctx, "configure_user_credentials", "")?;
        ctx.kv_set_json("site/ssh_keys", ssh_keys)
    }

    fn configure_node_provisioner(ctx: &Ctx, repositories: &[PackageRepository]) -> Result<()> {
        begin(ctx, "configure_node_provisioner", "")?;
        let repos: Vec<Value> = repositories
            .iter()
            .map(|r| json!({ "name": r.name, "url": r.url }))
            .collect();
        ctx.kv_set_json("site/repositories", &repos)
    }

    fn prepare_hardware_config(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "prepare_hardware_config", &node.name)?;
        ctx.kv_set(&format!("hardware_config/{}", node.name), "prepared")
    }

    fn identify_node(ctx: &Ctx, node: &Node) -> Result<NodeIdentity> {
        begin(ctx, "identify_node", &node.name)?;
        let record = match load(ctx, node)? {
            Some(record) => record,
            None => {
                let always = ctx.config("enlist").as_deref() == Some("always");
                let pxe = ctx
                    .kv_get_json::<Value>(&format!("boot/{}", node.name))?
                    .is_some_and(|b| b["device"] == "pxe");
                let powered = ctx.kv_get(&format!("power/{}", node.name)).as_deref() == Some("on");
                let enlisted = always || (pxe && powered);
                if !enlisted {
                    return Err(DriverError::Failed(format!(
                        "{} is not enlisted: it has not PXE-booted yet",
                        node.name
                    )));
                }
                let record = Record {
                    id: format!("sim-{:08x}", fnv1a(&[node.name.as_bytes()]) as u32),
                    status: "New".to_string(),
                    applied: BTreeMap::new(),
                    image: None,
                    kernel: None,
                    user_data: false,
                };
                save(ctx, node, &record)?;
                drydock_sdk::info!(ctx, "{} enlisted as {}", node.name, record.id);
                record
            }
        };
        Ok(NodeIdentity {
            id: record.id,
            status: record.status,
        })
    }

    fn configure_hardware(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "configure_hardware", &node.name)?;
        let Some(mut record) = load(ctx, node)? else {
            return Err(DriverError::Failed(format!(
                "configure_hardware on {}: the node is not identified yet (run identify_node first)",
                node.name
            )));
        };
        if record.status == "New" {
            record.status = "Ready".to_string();
            save(ctx, node, &record)?;
            ctx.build_data("lshw", "text/xml", LSHW)?;
            drydock_sdk::info!(ctx, "{} commissioned", node.name);
        }
        Ok(())
    }

    fn interrogate_node(ctx: &Ctx, node: &Node) -> Result<NodeInterrogation> {
        begin(ctx, "interrogate_node", &node.name)?;
        Ok(match load(ctx, node)? {
            None => NodeInterrogation {
                identity: None,
                raw_json: "{}".to_string(),
            },
            Some(record) => NodeInterrogation {
                raw_json: serde_json::to_string(&record).unwrap_or_else(|_| "{}".into()),
                identity: Some(NodeIdentity {
                    id: record.id,
                    status: record.status,
                }),
            },
        })
    }

    fn apply_node_networking(ctx: &Ctx, node: &Node, _site: &SiteNetworks) -> Result<()> {
        let interfaces: Vec<Value> = node
            .interfaces
            .iter()
            .map(|i| json!({ "name": i.name, "slaves": i.slaves, "networks": i.networks }))
            .collect();
        apply(
            ctx,
            node,
            "apply_node_networking",
            "networking",
            json!(interfaces),
        )
    }

    fn apply_node_storage(ctx: &Ctx, node: &Node) -> Result<()> {
        let storage = json!({
            "layout": node.storage.layout,
            "devices": node.storage.physical_devices.iter().map(|d| &d.name).collect::<Vec<_>>(),
            "volume_groups": node.storage.volume_groups.iter().map(|v| &v.name).collect::<Vec<_>>(),
        });
        apply(ctx, node, "apply_node_storage", "storage", storage)
    }

    fn apply_node_platform(ctx: &Ctx, node: &Node) -> Result<()> {
        let platform = json!({
            "image": node.platform.image,
            "kernel": node.platform.kernel,
            "kernel_params": node.platform.kernel_params,
        });
        apply(ctx, node, "apply_node_platform", "platform", platform)
    }

    fn deploy_node(ctx: &Ctx, node: &Node, options: &DeployOptions) -> Result<()> {
        begin(ctx, "deploy_node", &node.name)?;
        let mut record = commissioned(ctx, node, "deploy_node")?;
        if record.status == "Deployed" {
            return Ok(());
        }
        let image = node.platform.image.as_deref().unwrap_or(DEFAULT_IMAGE);
        let Some(available) = kernels(image) else {
            return Err(DriverError::InvalidInput(format!(
                "deploy_node on {}: image `{image}` is not available",
                node.name
            )));
        };
        if let Some(kernel) = node.platform.kernel.as_deref()
            && !available.contains(&kernel)
        {
            return Err(DriverError::InvalidInput(format!(
                "deploy_node on {}: kernel `{kernel}` is not available for `{image}`",
                node.name
            )));
        }
        record.status = "Deployed".to_string();
        record.image = Some(image.to_string());
        record.kernel = node.platform.kernel.clone();
        record.user_data = options.user_data.is_some();
        save(ctx, node, &record)?;
        drydock_sdk::info!(ctx, "{} deployed with {image}", node.name);
        Ok(())
    }

    fn destroy_node(ctx: &Ctx, node: &Node) -> Result<()> {
        begin(ctx, "destroy_node", &node.name)?;
        ctx.kv_delete(&key(node))
    }

    fn available_images(ctx: &Ctx) -> Result<Vec<String>> {
        begin(ctx, "available_images", "")?;
        Ok(IMAGES.iter().map(|(i, _)| i.to_string()).collect())
    }

    fn available_kernels(ctx: &Ctx, image: &str) -> Result<Vec<String>> {
        begin(ctx, "available_kernels", "")?;
        match kernels(image) {
            Some(k) => Ok(k.iter().map(|k| k.to_string()).collect()),
            None => Err(DriverError::InvalidInput(format!(
                "available_kernels: image `{image}` is not available"
            ))),
        }
    }
}
