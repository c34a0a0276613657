//! A simulated OS bootstrapper.
//!
//! Each node's record lives in `node/<node>` (JSON [`Record`]): identify
//! creates it in status `New` once the node has enlisted — by default after
//! it was PXE-booted (its boot override is PXE and it was powered on by the
//! sim oob interface, as a real bootstrapper sees a node only once it boots
//! from the network); setting `enlist = always` enlists any node at once.
//! configure_hardware moves it to `Ready`, the
//! apply actions record what they applied, deploy moves it to `Deployed`,
//! destroy deletes it. Site-wide actions record what they got under `site/`.

use std::collections::BTreeMap;

use drydock_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chaos::begin;
use crate::{Sim, fnv1a};

/// Images and their kernels.
const IMAGES: &[(&str, &[&str])] = &[
    ("jammy", &["ga-22.04", "hwe-22.04"]),
    ("noble", &["ga-24.04", "hwe-24.04"]),
];

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
                ctx.info(format!("{} enlisted as {}", node.name, record.id));
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
            ctx.info(format!("{} commissioned", node.name));
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
            .map(|i| json!({ "name": i.name, "networks": i.networks }))
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
        let image = node.platform.image.as_deref().unwrap_or(IMAGES[0].0);
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
        ctx.info(format!("{} deployed with {image}", node.name));
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
