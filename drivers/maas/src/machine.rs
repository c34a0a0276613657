//! Machines: finding a node in MAAS and walking it through its lifecycle
//! (commission → Ready → allocate → deploy → Deployed → release → delete),
//! plus its tags. MAAS status codes are data ([`Status`]).

use drydock_sdk::prelude::*;
use serde_json::Value;

use crate::api::{Form, Maas, list, n, s};
use drydock_sdk::encoding::base64_encode as base64;

/// MAAS node status codes (`maasserver.enum.NODE_STATUS`).
pub struct Status;

#[allow(missing_docs)]
impl Status {
    pub const NEW: i64 = 0;
    pub const COMMISSIONING: i64 = 1;
    pub const FAILED_COMMISSIONING: i64 = 2;
    pub const READY: i64 = 4;
    pub const DEPLOYED: i64 = 6;
    pub const BROKEN: i64 = 8;
    pub const DEPLOYING: i64 = 9;
    pub const ALLOCATED: i64 = 10;
    pub const FAILED_DEPLOYMENT: i64 = 11;
    pub const RELEASING: i64 = 12;
    pub const FAILED_RELEASING: i64 = 13;
    pub const DISK_ERASING: i64 = 14;
    pub const FAILED_DISK_ERASING: i64 = 15;
    pub const TESTING: i64 = 21;
    pub const FAILED_TESTING: i64 = 22;
}

/// Statuses from which `release` is the way back to Ready.
const RELEASABLE: &[i64] = &[
    Status::ALLOCATED,
    Status::DEPLOYED,
    Status::DEPLOYING,
    Status::FAILED_DEPLOYMENT,
    Status::FAILED_RELEASING,
    Status::FAILED_DISK_ERASING,
    Status::BROKEN,
];

fn kv_key(node: &Node) -> String {
    format!("system_id/{}", node.name)
}

/// `name (system_id)` for messages.
pub fn label(node: &Node, machine: &Value) -> String {
    format!("{} ({})", node.name, s(machine, "system_id"))
}

/// Finds the node's machine: by the system id remembered from an earlier
/// call, by host name, by BMC address (power parameters), by boot MAC.
pub fn find(ctx: &Ctx, maas: &Maas, node: &Node) -> Result<Option<Value>> {
    if let Some(id) = ctx.kv_get(&kv_key(node))
        && let Some(m) = maas.get_opt(&format!("machines/{id}/"))?
    {
        return Ok(Some(m));
    }
    let found = match list(&maas.get("machines/", &[("hostname", &node.name)])?).first() {
        Some(m) => Some(m.clone()),
        None => match by_bmc(maas, node)? {
            Some(m) => Some(m),
            None => by_mac(maas, node)?,
        },
    };
    if let Some(m) = &found {
        ctx.kv_set(&kv_key(node), s(m, "system_id"))?;
    }
    Ok(found)
}

fn by_bmc(maas: &Maas, node: &Node) -> Result<Option<Value>> {
    let Some(address) = node.oob.address.as_deref() else {
        return Ok(None);
    };
    let params = maas.get("machines/", &[("op", "power_parameters")])?;
    let Some(map) = params.as_object() else {
        return Ok(None);
    };
    for (system_id, p) in map {
        if host_of(s(p, "power_address")) == address {
            return maas.get_opt(&format!("machines/{system_id}/"));
        }
    }
    Ok(None)
}

/// The host part of a power address (`10.0.0.5`, `10.0.0.5:623`,
/// `https://10.0.0.5/redfish/v1`, `qemu+ssh://u@h/system`).
fn host_of(address: &str) -> &str {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    match rest.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => rest,
    }
}

fn by_mac(maas: &Maas, node: &Node) -> Result<Option<Value>> {
    let Some(mac) = node.boot_mac.as_deref() else {
        return Ok(None);
    };
    let found = maas.get("machines/", &[("mac_address", &mac.to_ascii_lowercase())])?;
    Ok(list(&found).first().cloned())
}

/// The node's machine, or a failure saying identify_node must run first.
pub fn require(ctx: &Ctx, maas: &Maas, node: &Node, action: &str) -> Result<Value> {
    find(ctx, maas, node)?.ok_or_else(|| {
        DriverError::Failed(format!(
            "{action} on {}: the node is not in MAAS (run identify_node first)",
            node.name
        ))
    })
}

fn identity(machine: &Value) -> NodeIdentity {
    NodeIdentity {
        id: s(machine, "system_id").to_string(),
        status: s(machine, "status_name").to_string(),
    }
}

/// identify_node: finds the machine and sets its host name and domain.
pub fn identify(ctx: &Ctx, node: &Node) -> Result<NodeIdentity> {
    let maas = Maas::connect(ctx)?;
    let Some(machine) = find(ctx, &maas, node)? else {
        // Retryable: the node may still be PXE booting into enlistment.
        return Err(DriverError::Busy(format!(
            "{} is not enlisted in MAAS yet: no machine with host name {}{}{}",
            node.name,
            node.name,
            node.oob
                .address
                .as_deref()
                .map(|a| format!(", BMC address {a}"))
                .unwrap_or_default(),
            node.boot_mac
                .as_deref()
                .map(|m| format!(" or boot MAC {m}"))
                .unwrap_or_default(),
        )));
    };
    let id = s(&machine, "system_id").to_string();
    let mut form = Form::new();
    if s(&machine, "hostname") != node.name {
        form = form.with("hostname", &node.name);
    }
    if let Some(domain) = node.domain.as_deref()
        && s(&machine["domain"], "name") != domain
    {
        ensure_domain(&maas, domain)?;
        form = form.with("domain", domain);
    }
    let machine = if form.is_empty() {
        machine
    } else {
        ctx.info(format!("naming machine {id} {}", node.name));
        maas.put(&format!("machines/{id}/"), form)?
    };
    let identity = identity(&machine);
    ctx.status(
        format!("{} is MAAS machine {id} ({})", node.name, identity.status),
        false,
    );
    Ok(identity)
}

fn ensure_domain(maas: &Maas, domain: &str) -> Result<()> {
    let domains = maas.get("domains/", &[])?;
    if !list(&domains).iter().any(|d| s(d, "name") == domain) {
        maas.post(
            "domains/",
            None,
            Form::new().with("name", domain).with("authoritative", true),
        )?;
    }
    Ok(())
}

/// interrogate_node: what MAAS knows of the node, if anything.
pub fn interrogate(ctx: &Ctx, node: &Node) -> Result<NodeInterrogation> {
    let maas = Maas::connect(ctx)?;
    Ok(match find(ctx, &maas, node)? {
        None => NodeInterrogation {
            identity: None,
            raw_json: "{}".into(),
        },
        Some(m) => NodeInterrogation {
            identity: Some(identity(&m)),
            raw_json: m.to_string(),
        },
    })
}

/// Polls the machine every `poll_interval_ms` until its status is in
/// `wanted` (returns the machine) or in `failed` (a permanent failure with
/// MAAS's status message); a timeout names the last status and message.
fn wait(
    ctx: &Ctx,
    maas: &Maas,
    node: &Node,
    id: &str,
    wanted: &[i64],
    failed: &[i64],
    what: &str,
) -> Result<Value> {
    let interval = Duration::from_millis(ctx.config_or("poll_interval_ms", 5000u64)?);
    let mut last = String::new();
    loop {
        let m = maas.get(&format!("machines/{id}/"), &[])?;
        let status = n(&m, "status");
        let line = format!(
            "{} {}: {}",
            label(node, &m),
            s(&m, "status_name"),
            reason(&m)
        );
        if line != last {
            ctx.status(&line, false);
            last = line;
        }
        if wanted.contains(&status) {
            return Ok(m);
        }
        if failed.contains(&status) {
            return Err(DriverError::Failed(format!(
                "{} failed {what}: MAAS says {} ({})",
                label(node, &m),
                s(&m, "status_name"),
                reason(&m)
            )));
        }
        // Keep time for the next status read and the answer: a wait cut by
        // the host's deadline could not say why the machine is stuck.
        let margin = Duration::from_millis(500);
        if ctx.deadline_remaining() < interval + margin || ctx.sleep(interval).is_err() {
            return Err(DriverError::Timeout(format!(
                "timed out waiting for {} to finish {what}: still {} ({})",
                label(node, &m),
                s(&m, "status_name"),
                reason(&m)
            )));
        }
    }
}

fn reason(m: &Value) -> String {
    match s(m, "status_message") {
        "" => "no status message".into(),
        msg => format!("status message: {msg}"),
    }
}

/// configure_hardware: commissions a New or Failed machine, waits for Ready
/// and stores what commissioning found as build data.
pub fn commission(ctx: &Ctx, node: &Node) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let m = require(ctx, &maas, node, "configure_hardware")?;
    let id = s(&m, "system_id").to_string();
    match n(&m, "status") {
        Status::NEW | Status::FAILED_COMMISSIONING | Status::FAILED_TESTING => {
            ctx.info(format!("commissioning {}", label(node, &m)));
            ctx.kv_delete(&format!("details/{id}"))?;
            maas.post(
                &format!("machines/{id}/"),
                Some("commission"),
                Form::new().with("enable_ssh", 0),
            )?;
        }
        Status::COMMISSIONING | Status::TESTING => {}
        Status::READY | Status::ALLOCATED | Status::DEPLOYING | Status::DEPLOYED => {
            ctx.debug(format!("{} is already commissioned", label(node, &m)));
            store_details(ctx, &maas, &m);
            return Ok(());
        }
        _ => {
            return Err(DriverError::Failed(format!(
                "cannot commission {}: it is {} in MAAS",
                label(node, &m),
                s(&m, "status_name")
            )));
        }
    }
    let m = wait(
        ctx,
        &maas,
        node,
        &id,
        &[Status::READY],
        &[Status::FAILED_COMMISSIONING, Status::FAILED_TESTING],
        "commissioning",
    )?;
    store_details(ctx, &maas, &m);
    Ok(())
}

/// Stores the `details` (lshw, lldp) of a machine as build data, once per
/// machine (remembered in `details/<system_id>`). Best effort:
/// commissioning succeeded even if they cannot be read.
fn store_details(ctx: &Ctx, maas: &Maas, m: &Value) {
    let marker = format!("details/{}", s(m, "system_id"));
    if ctx.kv_get(&marker).is_some() {
        return;
    }
    let path = format!("machines/{}/", s(m, "system_id"));
    match maas.get_raw(&path, &[("op", "details")]) {
        Ok(bson) => match bson_fields(&bson) {
            Some(fields) => {
                for (name, content) in fields {
                    let text = String::from_utf8_lossy(&content);
                    if let Err(e) = ctx.build_data(&name, "text/xml", &text) {
                        ctx.warn(format!("machine details not stored as build data: {e}"));
                        return;
                    }
                }
                if let Err(e) = ctx.kv_set(&marker, "stored") {
                    ctx.warn(format!(
                        "could not remember that the details are stored: {e}"
                    ));
                }
            }
            None => ctx.warn("MAAS answered undecodable BSON for the machine's details"),
        },
        Err(e) => ctx.warn(format!(
            "could not read the machine's details: {}",
            e.message()
        )),
    }
}

/// The string and binary fields of a BSON document (what `op=details`
/// answers), or `None` if it is not well formed.
pub fn bson_fields(doc: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let i32_at = |at: usize| -> Option<usize> {
        let b = doc.get(at..at + 4)?;
        usize::try_from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    let total = i32_at(0)?;
    let end = total.checked_sub(1).filter(|e| *e < doc.len())?;
    let mut at = 4;
    let mut out = Vec::new();
    while at < end {
        let kind = doc[at];
        let name_end = at + 1 + doc[at + 1..].iter().position(|b| *b == 0)?;
        let name = String::from_utf8_lossy(&doc[at + 1..name_end]).into_owned();
        at = name_end + 1;
        at = match kind {
            0x02 => {
                let len = i32_at(at)?;
                out.push((
                    name,
                    doc.get(at + 4..at + 4 + len.checked_sub(1)?)?.to_vec(),
                ));
                at + 4 + len
            }
            0x05 => {
                let len = i32_at(at)?;
                out.push((name, doc.get(at + 5..at + 5 + len)?.to_vec()));
                at + 5 + len
            }
            0x0A => at,
            0x08 => at + 1,
            0x10 => at + 4,
            0x01 | 0x12 | 0x09 => at + 8,
            0x03 | 0x04 => at + i32_at(at)?,
            _ => return None,
        };
    }
    Some(out)
}

/// deploy_node: allocates a Ready machine and deploys it with the node's
/// image, kernel and user data, then waits for Deployed.
pub fn deploy(ctx: &Ctx, node: &Node, options: &DeployOptions) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let m = require(ctx, &maas, node, "deploy_node")?;
    let id = s(&m, "system_id").to_string();
    let status = n(&m, "status");
    if status == Status::DEPLOYED {
        ctx.debug(format!("{} is already deployed", label(node, &m)));
        return Ok(());
    }
    if status == Status::READY {
        ctx.info(format!("allocating {}", label(node, &m)));
        maas.post(
            "machines/",
            Some("allocate"),
            Form::new().with("system_id", &id),
        )?;
    }
    if matches!(
        status,
        Status::READY | Status::ALLOCATED | Status::FAILED_DEPLOYMENT
    ) {
        let form = Form::new()
            .with_opt("distro_series", node.platform.image.as_deref())
            .with_opt("hwe_kernel", node.platform.kernel.as_deref())
            .with_opt(
                "user_data",
                options.user_data.as_deref().map(|u| base64(u.as_bytes())),
            );
        ctx.info(format!(
            "deploying {} with {}",
            label(node, &m),
            node.platform
                .image
                .as_deref()
                .unwrap_or("the MAAS default image")
        ));
        maas.post(&format!("machines/{id}/"), Some("deploy"), form)?;
    } else if status != Status::DEPLOYING {
        return Err(DriverError::Failed(format!(
            "cannot deploy {}: it is {} in MAAS (commission it first)",
            label(node, &m),
            s(&m, "status_name")
        )));
    }
    wait(
        ctx,
        &maas,
        node,
        &id,
        &[Status::DEPLOYED],
        &[Status::FAILED_DEPLOYMENT],
        "deployment",
    )?;
    Ok(())
}

/// destroy_node: releases the machine (erasing its disks) and deletes it.
pub fn destroy(ctx: &Ctx, node: &Node) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let Some(m) = find(ctx, &maas, node)? else {
        ctx.debug(format!("{} is not in MAAS; nothing to destroy", node.name));
        return Ok(());
    };
    let id = s(&m, "system_id").to_string();
    let status = n(&m, "status");
    if RELEASABLE.contains(&status) {
        let erase = ctx.config_or("erase_disks", true)?;
        ctx.info(format!(
            "releasing {}{}",
            label(node, &m),
            if erase {
                " with a quick disk erase"
            } else {
                ""
            }
        ));
        maas.post(
            &format!("machines/{id}/"),
            Some("release"),
            Form::new().with("erase", erase).with("quick_erase", erase),
        )?;
    }
    if RELEASABLE.contains(&status) || [Status::RELEASING, Status::DISK_ERASING].contains(&status) {
        wait(
            ctx,
            &maas,
            node,
            &id,
            &[Status::READY, Status::NEW],
            &[Status::FAILED_RELEASING, Status::FAILED_DISK_ERASING],
            "release",
        )?;
    }
    maas.delete(&format!("machines/{id}/"))?;
    ctx.kv_delete(&kv_key(node))?;
    ctx.kv_delete(&format!("details/{id}"))?;
    ctx.status(format!("{} ({id}) deleted from MAAS", node.name), false);
    Ok(())
}

/// MAAS tag names allow letters, digits, `-` and `_`.
fn tag_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// apply_node_platform: the node's kernel parameters as the kernel options
/// of its own tag `<node>_kp` (as Drydock does), and its static tags.
pub fn platform(ctx: &Ctx, node: &Node) -> Result<()> {
    let maas = Maas::connect(ctx)?;
    let m = require(ctx, &maas, node, "apply_node_platform")?;
    let id = s(&m, "system_id");
    let has: Vec<&str> = list(&m["tag_names"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut wanted: Vec<(String, Option<String>)> =
        node.tags.iter().map(|t| (tag_name(t), None)).collect();
    if !node.platform.kernel_params.is_empty() {
        let opts: Vec<String> = node
            .platform
            .kernel_params
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        wanted.push((tag_name(&format!("{}_kp", node.name)), Some(opts.join(" "))));
    }
    for (tag, kernel_opts) in wanted {
        match maas.get_opt(&format!("tags/{tag}/"))? {
            None => {
                let created = maas.post(
                    "tags/",
                    None,
                    Form::new()
                        .with("name", &tag)
                        .with("comment", "managed by Drydock")
                        .with_opt("kernel_opts", kernel_opts.as_deref()),
                );
                // Another node's call may have created it in between (MAAS
                // answers 400 "already exists"): carry on if it is there now.
                if let Err(e) = created
                    && maas.get_opt(&format!("tags/{tag}/"))?.is_none()
                {
                    return Err(e);
                }
            }
            Some(t) => {
                if let Some(opts) = &kernel_opts
                    && s(&t, "kernel_opts") != opts
                {
                    maas.put(
                        &format!("tags/{tag}/"),
                        Form::new().with("kernel_opts", opts),
                    )?;
                }
            }
        }
        if !has.contains(&tag.as_str()) {
            maas.post(
                &format!("tags/{tag}/"),
                Some("update_nodes"),
                Form::new().with("add", id),
            )?;
            ctx.info(format!("tagged {} with {tag}", label(node, &m)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_address_hosts() {
        assert_eq!(host_of("10.0.0.5"), "10.0.0.5");
        assert_eq!(host_of("10.0.0.5:623"), "10.0.0.5");
        assert_eq!(host_of("https://10.0.0.5/redfish/v1"), "10.0.0.5");
        assert_eq!(host_of("qemu+ssh://u@kvm1/system"), "kvm1");
    }

    #[test]
    fn bson_documents_decode() {
        // {"lshw": binary(0, b"<x/>"), "n": null, "s": "ab"}
        let mut body = Vec::new();
        body.extend_from_slice(b"\x05lshw\x00");
        body.extend_from_slice(&4i32.to_le_bytes());
        body.extend_from_slice(b"\x00<x/>");
        body.extend_from_slice(b"\x0an\x00");
        body.extend_from_slice(b"\x02s\x00");
        body.extend_from_slice(&3i32.to_le_bytes());
        body.extend_from_slice(b"ab\x00");
        let mut doc = ((body.len() + 5) as i32).to_le_bytes().to_vec();
        doc.extend_from_slice(&body);
        doc.push(0);
        let fields = bson_fields(&doc).unwrap();
        assert_eq!(
            fields,
            vec![
                ("lshw".into(), b"<x/>".to_vec()),
                ("s".into(), b"ab".to_vec())
            ]
        );
        assert!(bson_fields(&doc[..doc.len() - 3]).is_none());
    }
}
