//! Site-wide actions: checking the region, the network template (fabrics,
//! VLANs, subnets, IP ranges, DHCP, static routes), SSH keys, package
//! repositories, and the image catalogue (boot resources).

use std::collections::BTreeSet;

use drydock_sdk::prelude::*;
use serde_json::Value;

use crate::api::{Form, Maas, list, n, s};

/// Services a rack controller must run, and the states that count as
/// healthy (`dhcpd` is `off` until DHCP is enabled), as Drydock checks them.
const RACK_SERVICES: &[&str] = &["rackd", "tftp", "http", "dhcpd", "ntp_rack"];
const HEALTHY: &[&str] = &["running", "off"];

/// validate_node_services: version, API key, boot images, a healthy rack
/// controller.
pub fn validate(ctx: &Ctx) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let version = maas.get("version/", &[])?;
    ctx.info(format!("MAAS version {}", s(&version, "version")));
    let user = maas.get("users/", &[("op", "whoami")])?;
    ctx.debug(format!(
        "API key accepted for user {}",
        s(&user, "username")
    ));

    let resources = maas.get("boot-resources/", &[])?;
    let importing = maas.get("boot-resources/", &[("op", "is_importing")])?;
    if list(&resources).is_empty() {
        return Err(if importing.as_bool() == Some(true) {
            DriverError::Busy("MAAS is still importing its first boot images".into())
        } else {
            DriverError::Failed(
                "MAAS has no boot images: import some (Images page or boot-resources import)"
                    .into(),
            )
        });
    }

    let racks = maas.get("rackcontrollers/", &[])?;
    let mut problems = Vec::new();
    for rack in list(&racks) {
        let services = list(&rack["service_set"]);
        let bad: Vec<String> = RACK_SERVICES
            .iter()
            .filter_map(|name| {
                let status = services
                    .iter()
                    .find(|svc| s(svc, "name") == *name)
                    .map(|svc| s(svc, "status"))
                    .unwrap_or("missing");
                (!HEALTHY.contains(&status)).then(|| format!("{name} {status}"))
            })
            .collect();
        if bad.is_empty() {
            ctx.status(
                format!(
                    "MAAS {} is usable: {} boot resources, rack controller {} healthy",
                    s(&version, "version"),
                    list(&resources).len(),
                    s(rack, "hostname")
                ),
                false,
            );
            return Ok(());
        }
        problems.push(format!("{}: {}", s(rack, "hostname"), bad.join(", ")));
    }
    Err(DriverError::Failed(if problems.is_empty() {
        "MAAS has no rack controller".into()
    } else {
        format!("no healthy MAAS rack controller ({})", problems.join("; "))
    }))
}

/// The region's fabrics (with their VLANs) and subnets, kept current as the
/// template creates them.
struct Inventory {
    fabrics: Vec<Value>,
    subnets: Vec<Value>,
}

impl Inventory {
    fn fabric(&self, name: &str) -> Option<&Value> {
        self.fabrics.iter().find(|f| s(f, "name") == name)
    }

    fn subnet(&self, cidr: &str) -> Option<&Value> {
        self.subnets.iter().find(|x| s(x, "cidr") == cidr)
    }
}

/// The fabric VLAN with tag `vid` (0 = untagged).
pub fn fabric_vlan(fabric: &Value, vid: i64) -> Option<&Value> {
    list(&fabric["vlans"]).iter().find(|v| n(v, "vid") == vid)
}

/// The VLAN tag a network has on a link: 0 (untagged) on a link that is
/// not an 802.1q trunk, for the link's native network, or for an untagged
/// network.
pub fn vid_on(link: &NetworkLink, net: &Network) -> i64 {
    let trunk = link.trunk_mode.as_deref() == Some("802.1q");
    if !trunk || link.native_network.as_deref() == Some(net.name.as_str()) {
        0
    } else {
        net.vlan.map_or(0, i64::from)
    }
}

/// Whether a link bonds its interfaces (Drydock writes `disabled` for no).
pub fn bonded(link: &NetworkLink) -> bool {
    link.bonding_mode
        .as_deref()
        .is_some_and(|m| !m.is_empty() && m != "disabled" && m != "none")
}

/// The networks a link carries: its native network, then the allowed ones.
pub fn link_networks<'s>(site: &'s SiteNetworks, link: &NetworkLink) -> Vec<&'s Network> {
    let names: Vec<&String> = link
        .native_network
        .iter()
        .chain(&link.allowed_networks)
        .collect();
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .filter(|n| seen.insert(n.as_str()))
        .filter_map(|name| site.networks.iter().find(|x| &x.name == name))
        .collect()
}

fn gateway(net: &Network) -> Option<&str> {
    net.routes
        .iter()
        .find(|r| r.subnet == "0.0.0.0/0" || r.subnet == "::/0")
        .map(|r| r.gateway.as_str())
}

/// create_network_template: a fabric per link, the VLANs of its networks,
/// a subnet per network, then IP ranges, DHCP and static routes.
pub fn network_template(ctx: &Ctx, site: &SiteNetworks) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let mut inv = Inventory {
        fabrics: maas
            .get("fabrics/", &[])?
            .as_array()
            .cloned()
            .unwrap_or_default(),
        subnets: maas
            .get("subnets/", &[])?
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    // (network, fabric id, vid) of each network placed on a link.
    let mut placed: Vec<(&Network, i64, i64)> = Vec::new();
    for link in &site.links {
        if inv.fabric(&link.name).is_none() {
            ctx.info(format!("creating fabric {}", link.name));
            maas.post("fabrics/", None, Form::new().with("name", &link.name))?;
            inv.fabrics = list(&maas.get("fabrics/", &[])?).to_vec();
        }
        let fabric = inv.fabric(&link.name).cloned().unwrap_or_default();
        let fid = n(&fabric, "id");
        ensure_vlan(&maas, &fabric, 0, None, link.mtu)?;
        for net in link_networks(site, link) {
            if let Some((_, fid, _)) = placed.iter().find(|(p, _, _)| p.name == net.name) {
                ctx.status(
                    format!(
                        "network {} is on several links; MAAS keeps it on the first (fabric {fid})",
                        net.name
                    ),
                    true,
                );
                continue;
            }
            let vid = vid_on(link, net);
            if vid != 0 {
                ensure_vlan(&maas, &fabric, vid, Some(&net.name), net.mtu)?;
            }
            placed.push((net, fid, vid));
        }
    }
    for net in &site.networks {
        if !placed.iter().any(|(p, _, _)| p.name == net.name) {
            ctx.status(
                format!(
                    "network {} is on no network link; not created in MAAS",
                    net.name
                ),
                true,
            );
        }
    }
    // VLAN ids, after creation.
    let fabrics = maas.get("fabrics/", &[])?;
    let vlan_of = |fid: i64, vid: i64| -> Option<Value> {
        list(&fabrics)
            .iter()
            .find(|f| n(f, "id") == fid)
            .and_then(|f| fabric_vlan(f, vid))
            .cloned()
    };
    for (net, fid, vid) in &placed {
        let vlan = vlan_of(*fid, *vid)
            .ok_or_else(|| DriverError::Failed(format!("MAAS lost VLAN {vid} of fabric {fid}")))?;
        let mut form = Form::new()
            .with("name", &net.name)
            .with("vlan", n(&vlan, "id"))
            .with_opt("gateway_ip", gateway(net));
        if !net.dns_servers.is_empty() {
            form = form.with("dns_servers", net.dns_servers.join(" "));
        }
        match inv.subnet(&net.cidr) {
            None => {
                ctx.info(format!("creating subnet {} ({})", net.cidr, net.name));
                let created = maas.post("subnets/", None, form.with("cidr", &net.cidr))?;
                inv.subnets.push(created);
            }
            Some(existing) => {
                let same = s(existing, "name") == net.name
                    && n(&existing["vlan"], "id") == n(&vlan, "id")
                    && gateway(net).is_none_or(|g| s(existing, "gateway_ip") == g)
                    && dns_of(existing) == net.dns_servers;
                if !same {
                    let id = n(existing, "id");
                    ctx.info(format!("updating subnet {} ({})", net.cidr, net.name));
                    let updated = maas.put(&format!("subnets/{id}/"), form)?;
                    inv.subnets.retain(|x| n(x, "id") != id);
                    inv.subnets.push(updated);
                }
            }
        }
    }
    let rack = rack_controller(ctx, &maas)?;
    let ranges = maas.get("ipranges/", &[])?;
    let routes = maas.get("static-routes/", &[])?;
    for (net, fid, vid) in &placed {
        let subnet = inv.subnet(&net.cidr).cloned().unwrap_or_default();
        let sid = n(&subnet, "id");
        for r in &net.ranges {
            let kind = match r.kind.as_str() {
                "dhcp" => "dynamic",
                "reserved" => "reserved",
                // Static addresses are assigned per interface; MAAS needs no range.
                _ => continue,
            };
            let exists = list(&ranges).iter().any(|x| {
                s(x, "type") == kind
                    && s(x, "start_ip") == r.start
                    && s(x, "end_ip") == r.end
                    && n(&x["subnet"], "id") == sid
            });
            if !exists {
                maas.post(
                    "ipranges/",
                    None,
                    Form::new()
                        .with("type", kind)
                        .with("start_ip", &r.start)
                        .with("end_ip", &r.end)
                        .with("subnet", sid)
                        .with("comment", format!("Drydock {} range", r.kind)),
                )?;
            }
        }
        if net.ranges.iter().any(|r| r.kind == "dhcp") {
            let vlan = vlan_of(*fid, *vid).unwrap_or_default();
            if vlan["dhcp_on"].as_bool() != Some(true) {
                let rack = rack.as_deref().ok_or_else(|| {
                    DriverError::Failed(format!(
                        "network {} wants DHCP but MAAS has no rack controller",
                        net.name
                    ))
                })?;
                ctx.info(format!("enabling DHCP for {} on rack {rack}", net.name));
                maas.put(
                    &format!("fabrics/{fid}/vlans/{vid}/"),
                    Form::new().with("dhcp_on", true).with("primary_rack", rack),
                )?;
            }
        }
        for route in &net.routes {
            if gateway(net) == Some(route.gateway.as_str()) && route.subnet.ends_with("/0") {
                continue; // The default route is the subnet's gateway.
            }
            let Some(dest) = inv.subnet(&route.subnet) else {
                ctx.status(
                    format!(
                        "route {} via {} on {}: the destination is not a MAAS subnet; skipped",
                        route.subnet, route.gateway, net.name
                    ),
                    true,
                );
                continue;
            };
            let did = n(dest, "id");
            let existing = list(&routes)
                .iter()
                .find(|x| n(&x["source"], "id") == sid && n(&x["destination"], "id") == did);
            let form = Form::new()
                .with("source", sid)
                .with("destination", did)
                .with("gateway_ip", &route.gateway)
                .with("metric", route.metric);
            match existing {
                None => {
                    maas.post("static-routes/", None, form)?;
                }
                Some(x)
                    if s(x, "gateway_ip") != route.gateway
                        || n(x, "metric") != i64::from(route.metric) =>
                {
                    maas.put(&format!("static-routes/{}/", n(x, "id")), form)?;
                }
                Some(_) => {}
            }
        }
    }
    ctx.status(
        format!(
            "MAAS network template: {} fabrics, {} networks",
            site.links.len(),
            placed.len()
        ),
        false,
    );
    Ok(())
}

fn dns_of(subnet: &Value) -> Vec<String> {
    list(&subnet["dns_servers"])
        .iter()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect()
}

/// Creates VLAN `vid` on the fabric if missing; sets its MTU if it differs.
fn ensure_vlan(maas: &Maas, fabric: &Value, vid: i64, name: Option<&str>, mtu: u32) -> Result<()> {
    let fid = n(fabric, "id");
    match fabric_vlan(fabric, vid) {
        None => {
            maas.post(
                &format!("fabrics/{fid}/vlans/"),
                None,
                Form::new()
                    .with("vid", vid)
                    .with_opt("name", name)
                    .with_opt("mtu", (mtu > 0).then_some(mtu)),
            )?;
        }
        Some(v) if mtu > 0 && n(v, "mtu") != i64::from(mtu) => {
            maas.put(
                &format!("fabrics/{fid}/vlans/{vid}/"),
                Form::new().with("mtu", mtu),
            )?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// The system id of the rack controller serving DHCP: setting
/// `rack_controller` (host name or system id), else the first one.
fn rack_controller(ctx: &Ctx, maas: &Maas) -> Result<Option<String>> {
    let racks = maas.get("rackcontrollers/", &[])?;
    let wanted = ctx.config("rack_controller");
    let rack = list(&racks).iter().find(|r| match &wanted {
        Some(w) => s(r, "hostname") == w || s(r, "system_id") == w,
        None => true,
    });
    match (rack, wanted) {
        (Some(r), _) => Ok(Some(s(r, "system_id").to_string())),
        (None, Some(w)) => Err(DriverError::InvalidInput(format!(
            "setting rack_controller = {w}: no such MAAS rack controller"
        ))),
        (None, None) => Ok(None),
    }
}

/// The two fields that identify an SSH public key (type and key material).
fn key_id(key: &str) -> String {
    key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// configure_user_credentials: adds the keys the MAAS user lacks.
pub fn ssh_keys(ctx: &Ctx, keys: &[String]) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let existing: BTreeSet<String> = list(&maas.get("sshkeys/", &[])?)
        .iter()
        .map(|k| key_id(s(k, "key")))
        .collect();
    let mut added = 0;
    for key in keys {
        if !existing.contains(&key_id(key)) {
            maas.post("sshkeys/", None, Form::new().with("key", key.trim()))?;
            added += 1;
        }
    }
    ctx.status(
        format!("{added} SSH keys added to MAAS ({} wanted)", keys.len()),
        false,
    );
    Ok(())
}

/// configure_node_provisioner: creates or updates each package repository
/// (by name).
pub fn repositories(ctx: &Ctx, repos: &[PackageRepository]) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let existing = maas.get("package-repositories/", &[])?;
    for repo in repos {
        let form = || {
            Form::new()
                .with("name", &repo.name)
                .with("url", &repo.url)
                .with("distributions", repo.distributions.join(","))
                .with("components", repo.components.join(","))
                .with("key", repo.gpg_key.as_deref().unwrap_or(""))
                .with("enabled", true)
        };
        match list(&existing).iter().find(|r| s(r, "name") == repo.name) {
            None => {
                ctx.info(format!("adding package repository {}", repo.name));
                maas.post("package-repositories/", None, form())?;
            }
            Some(r) => {
                let strings = |field: &str| -> Vec<String> {
                    list(&r[field])
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                };
                let same = s(r, "url") == repo.url
                    && strings("distributions") == repo.distributions
                    && strings("components") == repo.components
                    && s(r, "key") == repo.gpg_key.as_deref().unwrap_or("")
                    && r["enabled"].as_bool() == Some(true);
                if !same {
                    ctx.info(format!("updating package repository {}", repo.name));
                    maas.put(&format!("package-repositories/{}/", n(r, "id")), form())?;
                }
            }
        }
    }
    Ok(())
}

/// (series, kernel) of each synced or uploaded boot resource:
/// `ubuntu/jammy` + `amd64/hwe-22.04` → (`jammy`, `hwe-22.04`).
fn catalogue(ctx: &Ctx) -> Result<Vec<(String, String)>> {
    let maas = Maas::connect(ctx)?;
    Ok(list(&maas.get("boot-resources/", &[])?)
        .iter()
        .filter_map(|r| {
            let series = s(r, "name").rsplit('/').next()?;
            let kernel = s(r, "architecture").split('/').nth(1).unwrap_or("generic");
            (!series.is_empty()).then(|| (series.to_string(), kernel.to_string()))
        })
        .collect())
}

/// available_images: the series MAAS has boot images for.
pub fn images(ctx: &Ctx) -> Result<Vec<String>> {
    let set: BTreeSet<String> = catalogue(ctx)?.into_iter().map(|(i, _)| i).collect();
    Ok(set.into_iter().collect())
}

/// available_kernels: the kernels MAAS has for one series.
pub fn kernels(ctx: &Ctx, image: &str) -> Result<Vec<String>> {
    let all = catalogue(ctx)?;
    let set: BTreeSet<String> = all
        .iter()
        .filter(|(i, _)| i == image)
        .map(|(_, k)| k.clone())
        .collect();
    if set.is_empty() {
        return Err(DriverError::InvalidInput(format!(
            "MAAS has no boot image for `{image}`"
        )));
    }
    Ok(set.into_iter().collect())
}
