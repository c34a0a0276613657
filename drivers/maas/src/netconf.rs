//! apply_node_networking: a machine's bonds, VLAN interfaces and subnet
//! links, from the node's interface design and the site's networks.
//!
//! Each design interface sits on the fabric of its network link: its
//! physical device (or a bond of its slaves) joins the fabric's untagged
//! VLAN, each tagged network gets a VLAN interface on top, and each network
//! is linked to its subnet (static address, DHCP, or link-up when the design
//! gives no address). Links those interfaces have to other subnets are
//! removed; what already matches is left alone.

use drydock_sdk::prelude::*;
use serde_json::Value;

use crate::api::{Form, Maas, list, n, s};
use crate::machine::{Status, label, require};
use crate::site::{bonded, fabric_vlan, vid_on};

/// Statuses in which MAAS lets interfaces change.
const EDITABLE: &[i64] = &[Status::READY, Status::ALLOCATED, Status::BROKEN];

/// The machine interfaces (re-read after each change).
fn interfaces(maas: &Maas, id: &str) -> Result<Vec<Value>> {
    Ok(list(&maas.get(&format!("nodes/{id}/interfaces/"), &[])?).to_vec())
}

/// The node interfaces path of interface `iface`.
fn path(id: &str, iface: i64) -> String {
    format!("nodes/{id}/interfaces/{iface}/")
}

/// apply_node_networking.
pub fn apply(ctx: &Ctx, node: &Node, site: &SiteNetworks) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let m = require(ctx, &maas, node, "apply_node_networking")?;
    let id = s(&m, "system_id").to_string();
    let status = n(&m, "status");
    if [Status::DEPLOYED, Status::DEPLOYING].contains(&status) {
        ctx.status(
            format!(
                "{} is {}; its networking is left as deployed",
                label(node, &m),
                s(&m, "status_name")
            ),
            false,
        );
        return Ok(());
    }
    if !EDITABLE.contains(&status) {
        return Err(DriverError::Failed(format!(
            "cannot configure the interfaces of {}: it is {} in MAAS (commission it first)",
            label(node, &m),
            s(&m, "status_name")
        )));
    }
    let fabrics = maas.get("fabrics/", &[])?;
    let subnets = maas.get("subnets/", &[])?;
    // Interface id → the subnet ids the design links it to.
    let mut wanted: Vec<(i64, Vec<i64>)> = Vec::new();
    for design in &node.interfaces {
        let invalid = |why: String| {
            DriverError::InvalidInput(format!("interface {} of {}: {why}", design.name, node.name))
        };
        let link_name = design
            .device_link
            .as_deref()
            .ok_or_else(|| invalid("no network link".into()))?;
        let link = site
            .links
            .iter()
            .find(|l| l.name == link_name)
            .ok_or_else(|| invalid(format!("network link {link_name} is not in the site")))?;
        let fabric = list(&fabrics)
            .iter()
            .find(|f| s(f, "name") == link_name)
            .ok_or_else(|| {
                DriverError::Failed(format!(
                    "MAAS has no fabric {link_name} (run create_network_template first)"
                ))
            })?;
        let untagged = fabric_vlan(fabric, 0).ok_or_else(|| {
            DriverError::Failed(format!("fabric {link_name} has no untagged VLAN"))
        })?;

        let base = base_interface(ctx, &maas, &id, design, link, untagged)?;
        for net_name in &design.networks {
            let net = site
                .networks
                .iter()
                .find(|x| &x.name == net_name)
                .ok_or_else(|| invalid(format!("network {net_name} is not in the site")))?;
            let vid = vid_on(link, net);
            let target = if vid == 0 {
                base.clone()
            } else {
                let vlan = fabric_vlan(fabric, vid).ok_or_else(|| {
                    DriverError::Failed(format!(
                        "fabric {link_name} has no VLAN {vid} (run create_network_template first)"
                    ))
                })?;
                vlan_interface(&maas, &id, &base, n(vlan, "id"))?
            };
            let subnet = list(&subnets)
                .iter()
                .find(|x| s(x, "cidr") == net.cidr)
                .ok_or_else(|| {
                    DriverError::Failed(format!(
                        "MAAS has no subnet {} for {} (run create_network_template first)",
                        net.cidr, net.name
                    ))
                })?;
            let address = design.addresses.iter().find(|a| &a.network == net_name);
            link_subnet(ctx, &maas, &id, &target, subnet, address)?;
            let iface = n(&target, "id");
            match wanted.iter_mut().find(|(i, _)| *i == iface) {
                Some((_, subnets)) => subnets.push(n(subnet, "id")),
                None => wanted.push((iface, vec![n(subnet, "id")])),
            }
        }
    }
    // Links to subnets the design does not put on those interfaces go.
    for iface in interfaces(&maas, &id)? {
        let Some((iid, subnets)) = wanted.iter().find(|(i, _)| *i == n(&iface, "id")) else {
            continue;
        };
        for l in list(&iface["links"]) {
            if !subnets.contains(&n(&l["subnet"], "id")) {
                ctx.info(format!(
                    "unlinking {} from {}",
                    s(&iface, "name"),
                    s(&l["subnet"], "cidr")
                ));
                maas.post(
                    &path(&id, *iid),
                    Some("unlink_subnet"),
                    Form::new().with("id", n(l, "id")),
                )?;
            }
        }
    }
    ctx.status(
        format!(
            "{}: {} interfaces configured",
            label(node, &m),
            node.interfaces.len()
        ),
        false,
    );
    Ok(())
}

/// The interface carrying the design interface's untagged traffic: its
/// physical device, or a bond of its slaves, on the link's fabric.
fn base_interface(
    ctx: &Ctx,
    maas: &Maas,
    id: &str,
    design: &NodeInterface,
    link: &NetworkLink,
    untagged: &Value,
) -> Result<Value> {
    let all = interfaces(maas, id)?;
    let physical = |name: &str| -> Result<Value> {
        all.iter()
            .find(|i| {
                s(i, "type") == "physical"
                    && (s(i, "name") == name
                        || design.slaves.len() <= 1
                            && design
                                .mac
                                .as_deref()
                                .is_some_and(|m| s(i, "mac_address").eq_ignore_ascii_case(m)))
            })
            .cloned()
            .ok_or_else(|| {
                DriverError::InvalidInput(format!(
                    "interface {}: the machine has no physical interface {name}",
                    design.name
                ))
            })
    };
    let vlan_id = n(untagged, "id");
    let bond = design.slaves.len() > 1 || bonded(link);
    let iface = if bond {
        match all
            .iter()
            .find(|i| s(i, "type") == "bond" && s(i, "name") == design.name)
        {
            Some(b) => b.clone(),
            None => {
                let mut form = Form::new()
                    .with("name", &design.name)
                    .with("vlan", vlan_id)
                    .with_opt(
                        "bond_mode",
                        bonded(link).then(|| link.bonding_mode.clone()).flatten(),
                    )
                    .with_opt("mtu", (link.mtu > 0).then_some(link.mtu));
                for slave in &design.slaves {
                    form = form.with("parents", n(&physical(slave)?, "id"));
                }
                ctx.info(format!(
                    "creating bond {} of {}",
                    design.name,
                    design.slaves.join(", ")
                ));
                maas.post(
                    &format!("nodes/{id}/interfaces/"),
                    Some("create_bond"),
                    form,
                )?
            }
        }
    } else {
        physical(design.slaves.first().unwrap_or(&design.name))?
    };
    let wrong_vlan = n(&iface["vlan"], "id") != vlan_id;
    let wrong_mtu = link.mtu > 0 && n(&iface["params"], "mtu") != i64::from(link.mtu);
    if wrong_vlan || wrong_mtu {
        let form = Form::new()
            .with("vlan", vlan_id)
            .with_opt("mtu", (link.mtu > 0).then_some(link.mtu));
        return maas.put(&path(id, n(&iface, "id")), form);
    }
    Ok(iface)
}

/// The VLAN interface on `parent` for VLAN `vlan_id`, created if missing.
fn vlan_interface(maas: &Maas, id: &str, parent: &Value, vlan_id: i64) -> Result<Value> {
    let parent_name = s(parent, "name");
    let existing = interfaces(maas, id)?.into_iter().find(|i| {
        s(i, "type") == "vlan"
            && n(&i["vlan"], "id") == vlan_id
            && list(&i["parents"])
                .iter()
                .any(|p| p.as_str() == Some(parent_name))
    });
    match existing {
        Some(i) => Ok(i),
        None => maas.post(
            &format!("nodes/{id}/interfaces/"),
            Some("create_vlan"),
            Form::new()
                .with("parent", n(parent, "id"))
                .with("vlan", vlan_id),
        ),
    }
}

/// Links `iface` to `subnet`: static with the design's address, DHCP when
/// the design names the network without an address, link-up otherwise.
/// Other links to the same subnet are removed first.
fn link_subnet(
    ctx: &Ctx,
    maas: &Maas,
    id: &str,
    iface: &Value,
    subnet: &Value,
    address: Option<&InterfaceAddress>,
) -> Result<()> {
    let (mode, ip) = match address {
        Some(InterfaceAddress {
            address: Some(ip), ..
        }) => ("static", Some(ip.as_str())),
        Some(_) => ("dhcp", None),
        None => ("link_up", None),
    };
    let sid = n(subnet, "id");
    let mut stale = Vec::new();
    for l in list(&iface["links"]) {
        if n(&l["subnet"], "id") != sid {
            continue;
        }
        if s(l, "mode") == mode && ip.is_none_or(|ip| s(l, "ip_address") == ip) {
            return Ok(());
        }
        stale.push(n(l, "id"));
    }
    let iface_path = path(id, n(iface, "id"));
    for link_id in stale {
        maas.post(
            &iface_path,
            Some("unlink_subnet"),
            Form::new().with("id", link_id),
        )?;
    }
    ctx.info(format!(
        "linking {} to {} ({mode}{})",
        s(iface, "name"),
        s(subnet, "cidr"),
        ip.map(|ip| format!(" {ip}")).unwrap_or_default()
    ));
    maas.post(
        &iface_path,
        Some("link_subnet"),
        Form::new()
            .with("mode", mode.to_ascii_uppercase())
            .with("subnet", sid)
            .with_opt("ip_address", ip),
    )?;
    Ok(())
}
