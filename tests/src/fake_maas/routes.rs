//! The fake region's API: one function per resource, dispatched on the path
//! below `/MAAS/api/2.0/` and the `op` parameter, answering what MAAS 2.0
//! answers (JSON objects, plain-text errors for 404/409, field errors as a
//! JSON object for 400, BSON for `op=details`).

use super::state::{
    ALIGN, BlockDevice, Fs, IpRange, Link, PARTITION_TABLE_OVERHEAD, Partition, Repository, State,
    StaticRoute, Subnet, Tag, Vlan, VolumeGroup, status,
};
use base64::Engine as _;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Instant;

/// A request's parameters: the query string, then the form fields.
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn req(&self, name: &str) -> Result<&str, Reply> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| field_error(name, "This field is required."))
    }

    fn int(&self, name: &str) -> Result<Option<i64>, Reply> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| field_error(name, "Enter a whole number.")),
        }
    }

    fn flag(&self, name: &str) -> bool {
        matches!(
            self.get(name).map(str::to_ascii_lowercase).as_deref(),
            Some("true" | "1" | "on" | "yes")
        )
    }
}

/// An answer.
#[derive(Debug)]
pub enum Reply {
    /// A JSON body with a status.
    Json(u16, Value),
    /// A plain-text body with a status.
    Text(u16, String),
    /// A BSON body (200).
    Bson(Vec<u8>),
    /// 204 with no body.
    NoContent,
}

type R = Result<Reply, Reply>;

fn ok(v: Value) -> R {
    Ok(Reply::Json(200, v))
}

fn field_error(field: &str, msg: &str) -> Reply {
    Reply::Json(400, json!({ field: [msg] }))
}

fn not_found() -> Reply {
    Reply::Text(404, "Not Found".into())
}

fn conflict(msg: impl Into<String>) -> Reply {
    Reply::Text(409, msg.into())
}

/// Routes a request. `segs` are the path segments below `api/2.0/`.
pub fn dispatch(st: &mut State, method: &str, segs: &[&str], p: &Params) -> Reply {
    st.tick(Instant::now());
    let op = p.get("op").unwrap_or("");
    let result = match (segs, method) {
        (["version"], "GET") => ok(json!({
            "version": "2.9.2", "subversion": "fake",
            "capabilities": ["networks-management", "static-ipaddresses", "storage-deployment-fields",
                             "network-deployment-ubuntu", "bridge-interface-parent"],
        })),
        (["users"], "GET") if op == "whoami" => ok(json!({
            "username": "admin", "email": "admin@example.com", "is_superuser": true,
        })),
        (["boot-resources"], "GET") if op == "is_importing" => ok(json!(st.importing)),
        (["boot-resources"], "GET") => ok(Value::Array(
            st.boot_resources
                .iter()
                .map(|(id, name, arch)| {
                    json!({"id": id, "type": "Synced", "name": name, "architecture": arch,
                           "resource_uri": format!("/MAAS/api/2.0/boot-resources/{id}/")})
                })
                .collect(),
        )),
        (["rackcontrollers"], "GET") => ok(Value::Array(
            st.racks
                .iter()
                .map(|r| {
                    json!({"system_id": r.system_id, "hostname": r.hostname, "node_type": 2,
                           "service_set": r.services.iter().map(|(n, s)| json!({
                               "name": n, "status": s, "status_info": ""})).collect::<Vec<_>>()})
                })
                .collect(),
        )),
        (["fabrics", rest @ ..], _) => fabrics(st, method, rest, p),
        (["subnets", rest @ ..], _) => subnets(st, method, rest, p),
        (["ipranges", rest @ ..], _) => ipranges(st, method, rest, p),
        (["static-routes", rest @ ..], _) => static_routes(st, method, rest, p),
        (["sshkeys"], _) => sshkeys(st, method, p),
        (["package-repositories", rest @ ..], _) => repositories(st, method, rest, p),
        (["domains"], _) => domains(st, method, p),
        (["tags", rest @ ..], _) => tags(st, method, rest, p),
        (["machines"], _) => machines(st, method, p),
        (["machines", id], _) => machine(st, method, id, p),
        (["nodes", id, "interfaces", rest @ ..], _) => interfaces(st, method, id, rest, p),
        (["nodes", id, rest @ ..], _) => storage(st, method, id, rest, p),
        _ => Err(not_found()),
    };
    result.unwrap_or_else(|e| e)
}

// --- networks -------------------------------------------------------------

fn fabrics(st: &mut State, method: &str, rest: &[&str], p: &Params) -> R {
    match (rest, method) {
        ([], "GET") => ok(Value::Array(
            st.fabrics.keys().map(|id| st.fabric_json(*id)).collect(),
        )),
        ([], "POST") => {
            let id = st.id();
            let name = p.get("name").map_or(format!("fabric-{id}"), str::to_string);
            if st.fabrics.values().any(|n| *n == name) {
                return Err(field_error("name", "Fabric with this Name already exists."));
            }
            st.fabrics.insert(id, name);
            let vid = st.id();
            st.vlans.push(Vlan {
                id: vid,
                fabric: id,
                vid: 0,
                name: "untagged".into(),
                mtu: 1500,
                dhcp_on: false,
                primary_rack: None,
            });
            ok(st.fabric_json(id))
        }
        ([id], "GET") => {
            let id = parse_id(id)?;
            st.fabrics
                .contains_key(&id)
                .then(|| st.fabric_json(id))
                .map_or(Err(not_found()), ok)
        }
        ([fid, "vlans"], "GET") => {
            let fid = parse_id(fid)?;
            ok(Value::Array(
                st.vlans
                    .iter()
                    .filter(|v| v.fabric == fid)
                    .map(|v| st.vlan_json(v.id))
                    .collect(),
            ))
        }
        ([fid, "vlans"], "POST") => {
            let fid = parse_id(fid)?;
            if !st.fabrics.contains_key(&fid) {
                return Err(not_found());
            }
            let vid = p
                .int("vid")?
                .ok_or_else(|| field_error("vid", "This field is required."))?;
            if !(0..=4094).contains(&vid) {
                return Err(field_error("vid", "VID must be between 0 and 4094."));
            }
            if st.vlans.iter().any(|v| v.fabric == fid && v.vid == vid) {
                return Err(field_error(
                    "__all__",
                    "VLAN with this Vid and Fabric already exists.",
                ));
            }
            let id = st.id();
            st.vlans.push(Vlan {
                id,
                fabric: fid,
                vid,
                name: p.get("name").unwrap_or("").to_string(),
                mtu: p.int("mtu")?.unwrap_or(1500) as u32,
                dhcp_on: false,
                primary_rack: None,
            });
            ok(st.vlan_json(id))
        }
        ([fid, "vlans", vid], "GET" | "PUT") => {
            let (fid, vid) = (parse_id(fid)?, parse_id(vid)?);
            let idx = st
                .vlans
                .iter()
                .position(|v| v.fabric == fid && v.vid == vid)
                .ok_or_else(not_found)?;
            if method == "PUT" {
                if let Some(mtu) = p.int("mtu")? {
                    if !(552..=65535).contains(&mtu) {
                        return Err(field_error(
                            "mtu",
                            "Ensure this value is between 552 and 65535.",
                        ));
                    }
                    st.vlans[idx].mtu = mtu as u32;
                }
                if let Some(name) = p.get("name") {
                    st.vlans[idx].name = name.into();
                }
                if let Some(rack) = p.get("primary_rack") {
                    if !st
                        .racks
                        .iter()
                        .any(|r| r.system_id == rack || r.hostname == rack)
                    {
                        return Err(field_error("primary_rack", "Select a valid choice."));
                    }
                    st.vlans[idx].primary_rack = Some(rack.into());
                }
                if p.get("dhcp_on").is_some() {
                    let on = p.flag("dhcp_on");
                    let vlan_id = st.vlans[idx].id;
                    let has_dynamic = st.ipranges.iter().any(|r| {
                        r.kind == "dynamic"
                            && st
                                .subnets
                                .iter()
                                .any(|s| s.id == r.subnet && s.vlan == vlan_id)
                    });
                    if on && !has_dynamic {
                        return Err(field_error(
                            "dhcp_on",
                            "dhcp can only be turned on when a dynamic IP range is defined.",
                        ));
                    }
                    if on && st.vlans[idx].primary_rack.is_none() {
                        return Err(field_error(
                            "dhcp_on",
                            "dhcp can only be turned on when a primary rack controller is set.",
                        ));
                    }
                    st.vlans[idx].dhcp_on = on;
                    if on {
                        for r in &mut st.racks {
                            r.services.insert("dhcpd".into(), "running".into());
                        }
                    }
                }
            }
            ok(st.vlan_json(st.vlans[idx].id))
        }
        _ => Err(not_found()),
    }
}

fn parse_id(text: &str) -> Result<i64, Reply> {
    text.parse().map_err(|_| not_found())
}

fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = cidr.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((addr.parse().ok()?, len))
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (Some((net, len)), Ok(ip)) = (parse_cidr(cidr), ip.parse::<Ipv4Addr>()) else {
        return false;
    };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn ip_u32(ip: &str) -> u32 {
    ip.parse::<Ipv4Addr>().map(u32::from).unwrap_or(0)
}

fn subnets(st: &mut State, method: &str, rest: &[&str], p: &Params) -> R {
    match (rest, method) {
        ([], "GET") => ok(Value::Array(
            st.subnets.iter().map(|s| st.subnet_json(s.id)).collect(),
        )),
        ([], "POST") => {
            let cidr = p.req("cidr")?.to_string();
            if parse_cidr(&cidr).is_none() {
                return Err(field_error(
                    "cidr",
                    "Required format: <network>/<prefixlen>.",
                ));
            }
            if st.subnets.iter().any(|s| s.cidr == cidr) {
                return Err(field_error("cidr", "Subnet with this Cidr already exists."));
            }
            let vlan = match p.int("vlan")? {
                Some(v) if st.vlans.iter().any(|x| x.id == v) => v,
                Some(_) => return Err(field_error("vlan", "Select a valid choice.")),
                None => st
                    .vlans
                    .iter()
                    .find(|v| v.vid == 0)
                    .map(|v| v.id)
                    .ok_or_else(|| field_error("vlan", "This field is required."))?,
            };
            let id = st.id();
            let mut subnet = Subnet {
                id,
                name: p.get("name").unwrap_or(&cidr).to_string(),
                cidr,
                vlan,
                gateway_ip: None,
                dns_servers: Vec::new(),
            };
            subnet_fields(&mut subnet, p)?;
            st.subnets.push(subnet);
            ok(st.subnet_json(id))
        }
        ([id], "GET" | "PUT") => {
            let id = parse_id(id)?;
            let idx = st
                .subnets
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(not_found)?;
            if method == "PUT" {
                if let Some(v) = p.int("vlan")? {
                    if !st.vlans.iter().any(|x| x.id == v) {
                        return Err(field_error("vlan", "Select a valid choice."));
                    }
                    st.subnets[idx].vlan = v;
                }
                if let Some(name) = p.get("name") {
                    st.subnets[idx].name = name.into();
                }
                subnet_fields(&mut st.subnets[idx], p)?;
            }
            ok(st.subnet_json(id))
        }
        _ => Err(not_found()),
    }
}

fn subnet_fields(subnet: &mut Subnet, p: &Params) -> Result<(), Reply> {
    if let Some(gw) = p.get("gateway_ip") {
        if !in_cidr(gw, &subnet.cidr) {
            return Err(field_error(
                "gateway_ip",
                "Gateway IP must be within CIDR range.",
            ));
        }
        subnet.gateway_ip = Some(gw.into());
    }
    if let Some(dns) = p.get("dns_servers") {
        subnet.dns_servers = dns
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    Ok(())
}

fn ipranges(st: &mut State, method: &str, rest: &[&str], p: &Params) -> R {
    let json = |st: &State, r: &IpRange| {
        json!({"id": r.id, "type": r.kind, "start_ip": r.start, "end_ip": r.end,
               "subnet": st.subnet_json(r.subnet), "comment": r.comment, "user": "admin"})
    };
    match (rest, method) {
        ([], "GET") => ok(Value::Array(
            st.ipranges.iter().map(|r| json(st, r)).collect(),
        )),
        ([], "POST") => {
            let kind = p.req("type")?.to_string();
            if kind != "dynamic" && kind != "reserved" {
                return Err(field_error("type", "Select a valid choice."));
            }
            let (start, end) = (p.req("start_ip")?.to_string(), p.req("end_ip")?.to_string());
            let subnet = match p.int("subnet")? {
                Some(s) => st.subnets.iter().find(|x| x.id == s),
                None => st.subnets.iter().find(|x| in_cidr(&start, &x.cidr)),
            }
            .ok_or_else(|| field_error("subnet", "Select a valid choice."))?
            .clone();
            if !in_cidr(&start, &subnet.cidr) || !in_cidr(&end, &subnet.cidr) {
                return Err(field_error(
                    "__all__",
                    "Range must be within the subnet's CIDR.",
                ));
            }
            if ip_u32(&start) > ip_u32(&end) {
                return Err(field_error(
                    "end_ip",
                    "End IP address must not be less than Start IP address.",
                ));
            }
            let overlaps = st.ipranges.iter().any(|r| {
                r.subnet == subnet.id
                    && ip_u32(&r.start) <= ip_u32(&end)
                    && ip_u32(&start) <= ip_u32(&r.end)
            });
            if overlaps {
                return Err(field_error(
                    "__all__",
                    &format!("Requested {kind} range conflicts with an existing range."),
                ));
            }
            let id = st.id();
            let range = IpRange {
                id,
                kind,
                start,
                end,
                subnet: subnet.id,
                comment: p.get("comment").unwrap_or("").into(),
            };
            let out = json(st, &range);
            st.ipranges.push(range);
            ok(out)
        }
        ([id], "DELETE") => {
            let id = parse_id(id)?;
            st.ipranges.retain(|r| r.id != id);
            Ok(Reply::NoContent)
        }
        _ => Err(not_found()),
    }
}

fn static_routes(st: &mut State, method: &str, rest: &[&str], p: &Params) -> R {
    let json = |st: &State, r: &StaticRoute| {
        json!({"id": r.id, "source": st.subnet_json(r.source),
               "destination": st.subnet_json(r.destination),
               "gateway_ip": r.gateway_ip, "metric": r.metric})
    };
    let fields = |st: &State, r: &mut StaticRoute| -> Result<(), Reply> {
        for (name, slot) in [
            ("source", &mut r.source),
            ("destination", &mut r.destination),
        ] {
            if let Some(id) = p.int(name)? {
                if !st.subnets.iter().any(|s| s.id == id) {
                    return Err(field_error(name, "Select a valid choice."));
                }
                *slot = id;
            }
        }
        if let Some(gw) = p.get("gateway_ip") {
            r.gateway_ip = gw.into();
        }
        if let Some(m) = p.int("metric")? {
            r.metric = m;
        }
        let source = st.subnets.iter().find(|s| s.id == r.source);
        if source.is_none_or(|s| !in_cidr(&r.gateway_ip, &s.cidr)) {
            return Err(field_error(
                "gateway_ip",
                "Gateway IP must be within the source subnet.",
            ));
        }
        if r.source == r.destination {
            return Err(field_error(
                "__all__",
                "source and destination cannot be the same subnet.",
            ));
        }
        Ok(())
    };
    match (rest, method) {
        ([], "GET") => ok(Value::Array(
            st.static_routes.iter().map(|r| json(st, r)).collect(),
        )),
        ([], "POST") => {
            let mut r = StaticRoute {
                id: st.id(),
                source: 0,
                destination: 0,
                gateway_ip: p.req("gateway_ip")?.into(),
                metric: 0,
            };
            p.req("source")?;
            p.req("destination")?;
            fields(st, &mut r)?;
            if st.static_routes.iter().any(|x| {
                x.source == r.source
                    && x.destination == r.destination
                    && x.gateway_ip == r.gateway_ip
            }) {
                return Err(field_error(
                    "__all__",
                    "Static route with this Source, Destination and Gateway ip already exists.",
                ));
            }
            let out = json(st, &r);
            st.static_routes.push(r);
            ok(out)
        }
        ([id], "PUT") => {
            let id = parse_id(id)?;
            let idx = st
                .static_routes
                .iter()
                .position(|r| r.id == id)
                .ok_or_else(not_found)?;
            let mut r = st.static_routes[idx].clone();
            fields(st, &mut r)?;
            st.static_routes[idx] = r;
            ok(json(st, &st.static_routes[idx]))
        }
        _ => Err(not_found()),
    }
}

// --- site -----------------------------------------------------------------

fn sshkeys(st: &mut State, method: &str, p: &Params) -> R {
    let json = |(id, key): &(i64, String)| {
        json!({"id": id, "key": key, "keysource": null,
               "resource_uri": format!("/MAAS/api/2.0/account/prefs/sshkeys/{id}/")})
    };
    match method {
        "GET" => ok(Value::Array(st.sshkeys.iter().map(json).collect())),
        "POST" => {
            let key = p.req("key")?.trim().to_string();
            let fields: Vec<&str> = key.split_whitespace().collect();
            let known = [
                "ssh-rsa",
                "ssh-ed25519",
                "ssh-dss",
                "ecdsa-sha2-nistp256",
                "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp521",
            ];
            let body_ok = fields
                .get(1)
                .is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_ok());
            if fields.len() < 2 || !known.contains(&fields[0]) || !body_ok {
                return Err(field_error(
                    "key",
                    "Invalid SSH public key: Key type is not recognised.",
                ));
            }
            if st.sshkeys.iter().any(|(_, k)| {
                k.split_whitespace()
                    .take(2)
                    .eq(fields.iter().take(2).copied())
            }) {
                return Err(field_error(
                    "__all__",
                    "This key has already been added for this user.",
                ));
            }
            let entry = (st.id(), key);
            let out = json(&entry);
            st.sshkeys.push(entry);
            Ok(Reply::Json(201, out))
        }
        _ => Err(not_found()),
    }
}

fn repositories(st: &mut State, method: &str, rest: &[&str], p: &Params) -> R {
    let json = |r: &Repository| {
        json!({"id": r.id, "name": r.name, "url": r.url, "distributions": r.distributions,
               "disabled_pockets": [], "disabled_components": [], "components": r.components,
               "arches": ["amd64"], "key": r.key, "enabled": r.enabled,
               "resource_uri": format!("/MAAS/api/2.0/package-repositories/{}/", r.id)})
    };
    let fields = |r: &mut Repository| -> Result<(), Reply> {
        let list = |v: &str| -> Vec<String> {
            v.split([',', ' '])
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        if let Some(url) = p.get("url") {
            if !(url.starts_with("http://")
                || url.starts_with("https://")
                || url.starts_with("ppa:"))
            {
                return Err(field_error("url", "Enter a valid URL."));
            }
            r.url = url.into();
        }
        if let Some(v) = p.get("distributions") {
            r.distributions = list(v);
        }
        if let Some(v) = p.get("components") {
            r.components = list(v);
        }
        if let Some(v) = p.get("key") {
            r.key = v.into();
        }
        if p.get("enabled").is_some() {
            r.enabled = p.flag("enabled");
        }
        Ok(())
    };
    match (rest, method) {
        ([], "GET") => ok(Value::Array(st.repositories.iter().map(json).collect())),
        ([], "POST") => {
            let name = p.req("name")?.to_string();
            p.req("url")?;
            if st.repositories.iter().any(|r| r.name == name) {
                return Err(field_error(
                    "name",
                    "Package repository with this Name already exists.",
                ));
            }
            let mut r = Repository {
                id: st.id(),
                name,
                enabled: true,
                ..Repository::default()
            };
            fields(&mut r)?;
            let out = json(&r);
            st.repositories.push(r);
            ok(out)
        }
        ([id], "PUT") => {
            let id = parse_id(id)?;
            let r = st
                .repositories
                .iter_mut()
                .find(|r| r.id == id)
                .ok_or_else(not_found)?;
            fields(r)?;
            ok(json(r))
        }
        _ => Err(not_found()),
    }
}

fn domains(st: &mut State, method: &str, p: &Params) -> R {
    match method {
        "GET" => ok(Value::Array(
            st.domains
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name, "authoritative": true, "ttl": null}))
                .collect(),
        )),
        "POST" => {
            let name = p.req("name")?.to_string();
            if st.domains.values().any(|n| *n == name) {
                return Err(field_error("name", "Domain with this Name already exists."));
            }
            let id = st.id();
            st.domains.insert(id, name.clone());
            ok(json!({"id": id, "name": name, "authoritative": true, "ttl": null}))
        }
        _ => Err(not_found()),
    }
}

fn tags(st: &mut State, method: &str, rest: &[&str], p: &Params) -> R {
    let json = |t: &Tag| {
        json!({"name": t.name, "definition": "", "comment": t.comment,
               "kernel_opts": t.kernel_opts,
               "resource_uri": format!("/MAAS/api/2.0/tags/{}/", t.name)})
    };
    let op = p.get("op").unwrap_or("");
    match (rest, method) {
        ([], "GET") => ok(Value::Array(st.tags.values().map(json).collect())),
        ([], "POST") => {
            let name = p.req("name")?.to_string();
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(field_error("name", "Invalid character in tag name."));
            }
            if st.tags.contains_key(&name) {
                return Err(field_error("name", "Tag with this Name already exists."));
            }
            let tag = Tag {
                name: name.clone(),
                comment: p.get("comment").unwrap_or("").into(),
                kernel_opts: p.get("kernel_opts").unwrap_or("").into(),
            };
            let out = json(&tag);
            st.tags.insert(name, tag);
            ok(out)
        }
        ([name], "GET") if op == "machines" => {
            if !st.tags.contains_key(*name) {
                return Err(not_found());
            }
            ok(Value::Array(
                st.machines
                    .values()
                    .filter(|m| m.tags.contains(*name))
                    .map(|m| st.machine_json(m))
                    .collect(),
            ))
        }
        ([name], "GET") => st.tags.get(*name).map(json).map_or(Err(not_found()), ok),
        ([name], "PUT") => {
            let tag = st.tags.get_mut(*name).ok_or_else(not_found)?;
            if let Some(v) = p.get("comment") {
                tag.comment = v.into();
            }
            if let Some(v) = p.get("kernel_opts") {
                tag.kernel_opts = v.into();
            }
            ok(json(tag))
        }
        ([name], "POST") if op == "update_nodes" => {
            if !st.tags.contains_key(*name) {
                return Err(not_found());
            }
            let (mut added, mut removed) = (0, 0);
            for id in p.all("add") {
                let m = st
                    .machines
                    .get_mut(id)
                    .ok_or_else(|| field_error("add", "Unknown node"))?;
                added += u32::from(m.tags.insert(name.to_string()));
            }
            for id in p.all("remove") {
                if let Some(m) = st.machines.get_mut(id) {
                    removed += u32::from(m.tags.remove(*name));
                }
            }
            ok(json!({"added": added, "removed": removed}))
        }
        _ => Err(not_found()),
    }
}

// --- machines -------------------------------------------------------------

fn machines(st: &mut State, method: &str, p: &Params) -> R {
    let op = p.get("op").unwrap_or("");
    match (method, op) {
        ("GET", "") => {
            let hostnames = p.all("hostname");
            let macs: Vec<String> = p
                .all("mac_address")
                .iter()
                .map(|m| m.to_ascii_lowercase())
                .collect();
            let ids = p.all("id");
            ok(Value::Array(
                st.machines
                    .values()
                    .filter(|m| hostnames.is_empty() || hostnames.contains(&m.hostname.as_str()))
                    .filter(|m| {
                        macs.is_empty() || m.interfaces.iter().any(|i| macs.contains(&i.mac))
                    })
                    .filter(|m| ids.is_empty() || ids.contains(&m.system_id.as_str()))
                    .map(|m| st.machine_json(m))
                    .collect(),
            ))
        }
        ("GET", "power_parameters") => ok(Value::Object(
            st.machines
                .values()
                .map(|m| (m.system_id.clone(), json!(m.power_parameters)))
                .collect(),
        )),
        ("POST", "allocate") => {
            let wanted = p.get("system_id").or(p.get("name"));
            let m = st.machines.values_mut().find(|m| {
                m.status == status::READY
                    && wanted.is_none_or(|w| m.system_id == w || m.hostname == w)
            });
            let Some(m) = m else {
                return Err(conflict(format!(
                    "No available machine matches constraints: [('system_id', ['{}'])]",
                    wanted.unwrap_or("")
                )));
            };
            m.status = status::ALLOCATED;
            m.status_message = String::new();
            m.owner = Some("admin".into());
            *m.ops.entry("allocate".into()).or_default() += 1;
            let m = m.clone();
            ok(st.machine_json(&m))
        }
        _ => Err(not_found()),
    }
}

fn machine(st: &mut State, method: &str, id: &str, p: &Params) -> R {
    let op = p.get("op").unwrap_or("").to_string();
    let step = st.step;
    let series: Vec<String> = st
        .boot_resources
        .iter()
        .map(|(_, n, _)| n.rsplit('/').next().unwrap_or("").to_string())
        .collect();
    let kernels_of = |s: &str| -> Vec<String> {
        st.boot_resources
            .iter()
            .filter(|(_, n, _)| n.ends_with(&format!("/{s}")))
            .map(|(_, _, a)| a.split('/').nth(1).unwrap_or("").to_string())
            .collect()
    };
    let domains = st.domains.clone();
    let hostnames: Vec<(String, String)> = st
        .machines
        .values()
        .map(|m| (m.system_id.clone(), m.hostname.clone()))
        .collect();
    if !st.machines.contains_key(id) {
        return Err(not_found());
    }
    if method == "DELETE" {
        st.machines.remove(id);
        return Ok(Reply::NoContent);
    }
    let m = st.machines.get_mut(id).expect("checked above");
    if method == "POST" && !op.is_empty() {
        *m.ops.entry(op.clone()).or_default() += 1;
    }
    let later = |to: u8, message: &str| super::state::Pending {
        at: Instant::now() + step,
        to,
        message: message.into(),
    };
    let state_name = status::name(m.status);
    match (method, op.as_str()) {
        ("GET", "") => {}
        ("GET", "details") => {
            let lshw = format!(
                "<?xml version=\"1.0\" standalone=\"yes\" ?>\n<list><node id=\"{}\" class=\"system\">\
                 <product>Fake Server</product><vendor>Drydock</vendor><serial>{}</serial></node></list>",
                m.hostname, m.system_id
            );
            let lldp = "<?xml version=\"1.0\"?><lldp label=\"LLDP neighbors\"/>".to_string();
            return Ok(Reply::Bson(super::bson_doc(&[
                ("lshw", lshw.as_bytes()),
                ("lldp", lldp.as_bytes()),
            ])));
        }
        ("PUT", "") => {
            if let Some(h) = p.get("hostname") {
                let valid = !h.is_empty()
                    && !h.starts_with('-')
                    && h.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !valid {
                    return Err(field_error(
                        "hostname",
                        "Node hostname contains invalid characters.",
                    ));
                }
                if hostnames.iter().any(|(sid, name)| sid != id && name == h) {
                    return Err(field_error(
                        "hostname",
                        &format!("Node with hostname \"{h}\" already exists."),
                    ));
                }
                m.hostname = h.into();
            }
            if let Some(d) = p.get("domain") {
                let found = domains
                    .iter()
                    .find(|(did, name)| *name == d || did.to_string() == d)
                    .map(|(did, _)| *did);
                m.domain = found.ok_or_else(|| field_error("domain", "Select a valid choice."))?;
            }
        }
        ("POST", "commission") => {
            let allowed = [
                status::NEW,
                status::READY,
                status::FAILED_COMMISSIONING,
                status::BROKEN,
            ];
            if !allowed.contains(&m.status) {
                return Err(conflict(format!(
                    "Commission action is not available for this node in its current state ('{state_name}')."
                )));
            }
            m.status = status::COMMISSIONING;
            m.status_message = "Commissioning".into();
            m.pending = if let Some(stuck) = &m.stuck_commissioning {
                m.status_message = stuck.clone();
                None
            } else if let Some(reason) = &m.fail_commissioning {
                Some(later(status::FAILED_COMMISSIONING, reason))
            } else {
                Some(later(status::READY, "Ready"))
            };
        }
        ("POST", "deploy") => {
            if ![status::ALLOCATED, status::FAILED_DEPLOYMENT].contains(&m.status) {
                return Err(conflict(format!(
                    "Can't deploy machine {id} in state '{state_name}': allocate it first."
                )));
            }
            let distro = p.get("distro_series").unwrap_or("jammy").to_string();
            if !series.contains(&distro) {
                return Err(field_error(
                    "distro_series",
                    &format!(
                        "'{distro}' is not a valid distro_series.  It should be one of: {series:?}."
                    ),
                ));
            }
            if let Some(k) = p.get("hwe_kernel")
                && !kernels_of(&distro).iter().any(|x| x == k)
            {
                return Err(field_error(
                    "hwe_kernel",
                    &format!(
                        "{distro} has no kernel {k}; available: {:?}",
                        kernels_of(&distro)
                    ),
                ));
            }
            let user_data = match p.get("user_data") {
                None => None,
                Some(b64) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|_| field_error("user_data", "Invalid base64 data."))?,
                ),
            };
            m.distro_series = distro;
            m.hwe_kernel = p.get("hwe_kernel").map(str::to_string);
            m.user_data = user_data;
            m.status = status::DEPLOYING;
            m.status_message = "Deploying".into();
            m.pending = Some(match &m.fail_deployment {
                Some(reason) => later(status::FAILED_DEPLOYMENT, reason),
                None => later(status::DEPLOYED, "Deployed"),
            });
        }
        ("POST", "release") => {
            let releasable = [
                status::ALLOCATED,
                status::DEPLOYED,
                status::DEPLOYING,
                status::FAILED_DEPLOYMENT,
                status::FAILED_RELEASING,
                status::FAILED_DISK_ERASING,
                status::BROKEN,
            ];
            if !releasable.contains(&m.status) {
                return Err(conflict(format!(
                    "Machine cannot be released in its current state ('{state_name}')."
                )));
            }
            m.erased = p.flag("erase");
            m.distro_series.clear();
            m.hwe_kernel = None;
            m.user_data = None;
            if m.erased {
                m.status = status::DISK_ERASING;
                m.status_message = if p.flag("quick_erase") {
                    "Quick erasing disks"
                } else {
                    "Erasing disks"
                }
                .into();
            } else {
                m.status = status::RELEASING;
                m.status_message = "Releasing".into();
            }
            m.pending = Some(later(status::READY, "Released"));
        }
        ("POST", "set_storage_layout") => {
            if ![status::READY, status::ALLOCATED].contains(&m.status) {
                return Err(conflict(format!(
                    "Cannot change the storage layout when the machine is '{state_name}'; it must be Ready or Allocated."
                )));
            }
            let layout = p.req("storage_layout")?.to_string();
            st.layout(id, &layout)
                .map_err(|e| field_error("storage_layout", &e))?;
        }
        ("POST", "power_on" | "power_off") => {}
        _ => return Err(not_found()),
    }
    let m = st.machines[id].clone();
    ok(st.machine_json(&m))
}

// --- interfaces -----------------------------------------------------------

fn editable(st: &State, id: &str, what: &str) -> Result<(), Reply> {
    let m = st.machines.get(id).ok_or_else(not_found)?;
    if [status::READY, status::ALLOCATED, status::BROKEN].contains(&m.status) {
        Ok(())
    } else {
        Err(conflict(format!(
            "Cannot {what} because the machine is not Ready, Allocated or Broken (it is '{}').",
            status::name(m.status)
        )))
    }
}

fn interfaces(st: &mut State, method: &str, id: &str, rest: &[&str], p: &Params) -> R {
    let op = p.get("op").unwrap_or("");
    if !st.machines.contains_key(id) {
        return Err(not_found());
    }
    let iface_json = |st: &State, iid: i64| -> Value {
        let m = &st.machines[id];
        m.interfaces
            .iter()
            .find(|i| i.id == iid)
            .map_or(Value::Null, |i| st.interface_json(m, i))
    };
    match (rest, method, op) {
        ([], "GET", "") => {
            let m = &st.machines[id];
            ok(Value::Array(
                m.interfaces
                    .iter()
                    .map(|i| st.interface_json(m, i))
                    .collect(),
            ))
        }
        ([], "POST", "create_bond") => {
            editable(st, id, "create a bond")?;
            let name = p.req("name")?.to_string();
            let parents: Vec<i64> = p
                .all("parents")
                .iter()
                .filter_map(|x| x.parse().ok())
                .collect();
            if parents.is_empty() {
                return Err(field_error(
                    "parents",
                    "A bond interface must have one or more parents.",
                ));
            }
            let new_id = st.id();
            let vlan = p.int("vlan")?;
            if vlan.is_some_and(|v| !st.vlans.iter().any(|x| x.id == v)) {
                return Err(field_error("vlan", "Select a valid choice."));
            }
            let mtu = p.int("mtu")?;
            let m = st.machines.get_mut(id).expect("checked");
            if m.interfaces.iter().any(|i| i.name == name) {
                return Err(field_error(
                    "name",
                    "Interface with this name already exists on the node.",
                ));
            }
            for pid in &parents {
                let ok = m
                    .interfaces
                    .iter()
                    .any(|i| i.id == *pid && i.kind == "physical")
                    && !m
                        .interfaces
                        .iter()
                        .any(|i| i.kind == "bond" && i.parents.contains(pid));
                if !ok {
                    return Err(field_error(
                        "parents",
                        &format!("{pid} is not a free physical interface of this node."),
                    ));
                }
            }
            let first = m
                .interfaces
                .iter()
                .find(|i| i.id == parents[0])
                .expect("checked")
                .clone();
            for i in m.interfaces.iter_mut().filter(|i| parents.contains(&i.id)) {
                i.links.clear(); // Bonded parents are disconnected.
            }
            m.interfaces.push(super::state::Interface {
                id: new_id,
                name,
                kind: "bond".into(),
                mac: p
                    .get("mac_address")
                    .map_or(first.mac.clone(), str::to_string),
                vlan: vlan.or(first.vlan),
                parents,
                links: Vec::new(),
                mtu: mtu.map_or(first.mtu, |x| x as u32),
                bond_mode: Some(p.get("bond_mode").unwrap_or("balance-rr").into()),
            });
            ok(iface_json(st, new_id))
        }
        ([], "POST", "create_vlan") => {
            editable(st, id, "create a VLAN interface")?;
            let parent = p
                .int("parent")?
                .ok_or_else(|| field_error("parent", "This field is required."))?;
            let vlan = p
                .int("vlan")?
                .ok_or_else(|| field_error("vlan", "This field is required."))?;
            let v = st
                .vlans
                .iter()
                .find(|x| x.id == vlan)
                .cloned()
                .ok_or_else(|| field_error("vlan", "Select a valid choice."))?;
            let new_id = st.id();
            let parent_fabric = {
                let m = &st.machines[id];
                let pi = m
                    .interfaces
                    .iter()
                    .find(|i| i.id == parent)
                    .ok_or_else(|| field_error("parent", "Select a valid choice."))?;
                pi.vlan
                    .and_then(|pv| st.vlans.iter().find(|x| x.id == pv))
                    .map(|x| x.fabric)
            };
            if v.vid == 0 {
                return Err(field_error(
                    "vlan",
                    "A VLAN interface can only belong to a tagged VLAN.",
                ));
            }
            if parent_fabric != Some(v.fabric) {
                return Err(field_error(
                    "vlan",
                    "A VLAN interface can only belong to a VLAN on the same fabric as its parent.",
                ));
            }
            let m = st.machines.get_mut(id).expect("checked");
            if m.interfaces
                .iter()
                .any(|i| i.kind == "vlan" && i.parents == [parent] && i.vlan == Some(vlan))
            {
                return Err(field_error(
                    "__all__",
                    "A VLAN interface with this parent and VLAN already exists.",
                ));
            }
            let parent_iface = m
                .interfaces
                .iter()
                .find(|i| i.id == parent)
                .expect("checked")
                .clone();
            m.interfaces.push(super::state::Interface {
                id: new_id,
                name: format!("{}.{}", parent_iface.name, v.vid),
                kind: "vlan".into(),
                mac: parent_iface.mac,
                vlan: Some(vlan),
                parents: vec![parent],
                links: Vec::new(),
                mtu: v.mtu,
                bond_mode: None,
            });
            ok(iface_json(st, new_id))
        }
        ([iid], _, _) => {
            let iid = parse_id(iid)?;
            if !st.machines[id].interfaces.iter().any(|i| i.id == iid) {
                return Err(not_found());
            }
            match (method, op) {
                ("GET", "") => {}
                ("PUT", "") => {
                    editable(st, id, "update an interface")?;
                    let vlan = p.int("vlan")?;
                    if vlan.is_some_and(|v| !st.vlans.iter().any(|x| x.id == v)) {
                        return Err(field_error("vlan", "Select a valid choice."));
                    }
                    let mtu = p.int("mtu")?;
                    let m = st.machines.get_mut(id).expect("checked");
                    let i = m
                        .interfaces
                        .iter_mut()
                        .find(|i| i.id == iid)
                        .expect("checked");
                    if let Some(v) = vlan
                        && i.vlan != Some(v)
                    {
                        i.vlan = Some(v);
                        i.links.clear(); // Moving VLAN drops the subnet links.
                    }
                    if let Some(mtu) = mtu {
                        i.mtu = mtu as u32;
                    }
                    if let Some(name) = p.get("name") {
                        i.name = name.into();
                    }
                }
                ("DELETE", "") => {
                    editable(st, id, "delete an interface")?;
                    let m = st.machines.get_mut(id).expect("checked");
                    m.interfaces
                        .retain(|i| i.id != iid && !i.parents.contains(&iid));
                    return Ok(Reply::NoContent);
                }
                ("POST", "link_subnet") => {
                    editable(st, id, "link a subnet")?;
                    let mode = p.req("mode")?.to_ascii_lowercase();
                    if !["static", "dhcp", "link_up", "auto"].contains(&mode.as_str()) {
                        return Err(field_error("mode", "Select a valid choice."));
                    }
                    let subnet = p.int("subnet")?;
                    let subnet =
                        match subnet {
                            Some(s) => {
                                Some(st.subnets.iter().find(|x| x.id == s).cloned().ok_or_else(
                                    || field_error("subnet", "Select a valid choice."),
                                )?)
                            }
                            None if mode == "link_up" => None,
                            None => return Err(field_error("subnet", "This field is required.")),
                        };
                    let ip = p
                        .get("ip_address")
                        .filter(|x| !x.is_empty())
                        .map(str::to_string);
                    let in_use = |ip: &str| {
                        st.machines.values().any(|m| {
                            m.interfaces
                                .iter()
                                .any(|i| i.links.iter().any(|l| l.ip.as_deref() == Some(ip)))
                        })
                    };
                    if let (Some(s), Some(ip)) = (&subnet, &ip) {
                        if mode != "static" {
                            return Err(field_error(
                                "ip_address",
                                "IP address can only be set in STATIC mode.",
                            ));
                        }
                        if !in_cidr(ip, &s.cidr) {
                            return Err(field_error(
                                "ip_address",
                                &format!("IP address is not in subnet {}.", s.cidr),
                            ));
                        }
                        if st.ipranges.iter().any(|r| {
                            r.subnet == s.id
                                && r.kind == "dynamic"
                                && ip_u32(&r.start) <= ip_u32(ip)
                                && ip_u32(ip) <= ip_u32(&r.end)
                        }) {
                            return Err(field_error(
                                "ip_address",
                                "IP address is inside a dynamic range.",
                            ));
                        }
                        if in_use(ip) {
                            return Err(field_error(
                                "ip_address",
                                &format!("IP address {ip} is already in use."),
                            ));
                        }
                    }
                    let link_id = st.id();
                    let m = st.machines.get_mut(id).expect("checked");
                    let i = m
                        .interfaces
                        .iter_mut()
                        .find(|i| i.id == iid)
                        .expect("checked");
                    if let Some(s) = &subnet
                        && i.vlan != Some(s.vlan)
                    {
                        return Err(field_error(
                            "subnet",
                            "The subnet is not on the interface's VLAN.",
                        ));
                    }
                    i.links.push(Link {
                        id: link_id,
                        mode,
                        subnet: subnet.map_or(0, |s| s.id),
                        ip,
                    });
                }
                ("POST", "unlink_subnet") => {
                    editable(st, id, "unlink a subnet")?;
                    let link = p
                        .int("id")?
                        .ok_or_else(|| field_error("id", "This field is required."))?;
                    let m = st.machines.get_mut(id).expect("checked");
                    let i = m
                        .interfaces
                        .iter_mut()
                        .find(|i| i.id == iid)
                        .expect("checked");
                    let before = i.links.len();
                    i.links.retain(|l| l.id != link);
                    if i.links.len() == before {
                        return Err(field_error("id", "Select a valid choice."));
                    }
                }
                ("POST", "disconnect") => {
                    editable(st, id, "disconnect an interface")?;
                    let m = st.machines.get_mut(id).expect("checked");
                    let i = m
                        .interfaces
                        .iter_mut()
                        .find(|i| i.id == iid)
                        .expect("checked");
                    i.links.clear();
                    i.vlan = None;
                }
                _ => return Err(not_found()),
            }
            ok(iface_json(st, iid))
        }
        _ => Err(not_found()),
    }
}

// --- storage --------------------------------------------------------------

const FSTYPES: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "fat32", "vfat", "swap",
];

fn storage(st: &mut State, method: &str, id: &str, rest: &[&str], p: &Params) -> R {
    let op = p.get("op").unwrap_or("");
    if !st.machines.contains_key(id) {
        return Err(not_found());
    }
    let changes = method != "GET";
    if changes {
        let m = &st.machines[id];
        if ![status::READY, status::ALLOCATED].contains(&m.status) {
            return Err(conflict(format!(
                "Cannot change the storage of a machine that is '{}'; it must be Ready or Allocated.",
                status::name(m.status)
            )));
        }
    }
    let new_id = st.id();
    let mounted: Vec<String> = st.machines[id]
        .block_devices
        .iter()
        .flat_map(|b| {
            b.fs.iter()
                .chain(b.partitions.iter().filter_map(|p| p.fs.as_ref()))
        })
        .filter_map(|f| f.mount_point.clone())
        .collect();
    let fs_ops = |fs: &mut Option<Fs>, in_vg: bool| -> Result<(), Reply> {
        match op {
            "format" => {
                let fstype = p.req("fstype")?;
                if !FSTYPES.contains(&fstype) {
                    return Err(field_error("fstype", "Select a valid choice."));
                }
                if in_vg {
                    return Err(field_error(
                        "__all__",
                        "Cannot format: it is part of a volume group.",
                    ));
                }
                *fs = Some(Fs {
                    fstype: fstype.into(),
                    mount_point: None,
                    mount_options: None,
                });
            }
            "mount" => {
                let mp = p.req("mount_point")?;
                let Some(f) = fs else {
                    return Err(field_error(
                        "__all__",
                        "Cannot mount an unformatted block device or partition.",
                    ));
                };
                if !(mp.starts_with('/') || (mp == "none" && f.fstype == "swap")) {
                    return Err(field_error("mount_point", "Enter a valid absolute path."));
                }
                if mounted.iter().any(|x| x == mp) {
                    return Err(field_error(
                        "mount_point",
                        &format!("Another filesystem is already mounted at {mp}."),
                    ));
                }
                f.mount_point = Some(mp.into());
                f.mount_options = p.get("mount_options").map(str::to_string);
            }
            "unformat" => *fs = None,
            _ => return Err(not_found()),
        }
        Ok(())
    };
    let m = st.machines.get_mut(id).expect("checked");
    let out: Value = match (rest, method, op) {
        (["blockdevices"], "GET", "") => Value::Null,
        (["blockdevices", bid], _, _) => {
            let bid = parse_id(bid)?;
            let b = m
                .block_devices
                .iter_mut()
                .find(|b| b.id == bid)
                .ok_or_else(not_found)?;
            match (method, op) {
                ("GET", "") => {}
                ("POST", "set_boot_disk") => {
                    if b.virtual_ {
                        return Err(field_error(
                            "__all__",
                            "Cannot set a virtual block device as the boot disk.",
                        ));
                    }
                    m.boot_disk = bid;
                }
                ("POST", _) => {
                    if !b.partitions.is_empty() && op == "format" {
                        return Err(field_error(
                            "__all__",
                            "Cannot format a block device that has partitions.",
                        ));
                    }
                    let in_vg = !b.virtual_ && b.vg.is_some();
                    fs_ops(&mut b.fs, in_vg)?;
                }
                _ => return Err(not_found()),
            }
            json!({"block_device": bid})
        }
        (["blockdevices", bid, "partitions"], _, "") => {
            let bid = parse_id(bid)?;
            let b = m
                .block_devices
                .iter_mut()
                .find(|b| b.id == bid)
                .ok_or_else(not_found)?;
            match method {
                "GET" => json!({"partitions_of": bid}),
                "POST" => {
                    if b.virtual_ || b.fs.is_some() || b.vg.is_some() {
                        return Err(field_error(
                            "__all__",
                            "Cannot create a partition on this block device.",
                        ));
                    }
                    let room = if b.partitions.is_empty() {
                        b.size.saturating_sub(PARTITION_TABLE_OVERHEAD)
                    } else {
                        b.available()
                    };
                    let size = match p.int("size")? {
                        Some(s) if s > 0 => (s as u64) / ALIGN * ALIGN,
                        Some(_) => {
                            return Err(field_error(
                                "size",
                                "Ensure this value is greater than 0.",
                            ));
                        }
                        None => room / ALIGN * ALIGN,
                    };
                    if size == 0 {
                        return Err(field_error(
                            "size",
                            "Partition is smaller than the 4 MiB alignment.",
                        ));
                    }
                    if size > room {
                        return Err(field_error(
                            "size",
                            &format!(
                                "Partition cannot be saved; not enough free space on the block device \
                             ({size} requested, {room} available)."
                            ),
                        ));
                    }
                    b.partitions.push(Partition {
                        id: new_id,
                        size,
                        bootable: p.flag("bootable"),
                        fs: None,
                        vg: None,
                    });
                    json!({"partition": [bid, new_id]})
                }
                _ => return Err(not_found()),
            }
        }
        (["blockdevices", bid, "partition", pid], _, _) => {
            let (bid, pid) = (parse_id(bid)?, parse_id(pid)?);
            let b = m
                .block_devices
                .iter_mut()
                .find(|b| b.id == bid)
                .ok_or_else(not_found)?;
            let idx = b
                .partitions
                .iter()
                .position(|x| x.id == pid)
                .ok_or_else(not_found)?;
            match (method, op) {
                ("GET", "") => {}
                ("DELETE", "") => {
                    if b.partitions[idx].vg.is_some() {
                        return Err(field_error(
                            "__all__",
                            "Cannot delete a partition that is part of a volume group.",
                        ));
                    }
                    b.partitions.remove(idx);
                    return Ok(Reply::NoContent);
                }
                ("POST", _) => {
                    let part = &mut b.partitions[idx];
                    let in_vg = part.vg.is_some();
                    fs_ops(&mut part.fs, in_vg)?;
                }
                _ => return Err(not_found()),
            }
            json!({"partition": [bid, pid]})
        }
        (["volume-groups"], "GET", "") => json!({"volume_groups": true}),
        (["volume-groups"], "POST", "") => {
            let name = p.req("name")?.to_string();
            if m.volume_groups.iter().any(|v| v.name == name) {
                return Err(field_error(
                    "name",
                    "Volume group with this name already exists.",
                ));
            }
            let mut size = 0;
            let bds: Vec<i64> = p
                .all("block_devices")
                .iter()
                .filter_map(|x| x.parse().ok())
                .collect();
            let parts: Vec<i64> = p
                .all("partitions")
                .iter()
                .filter_map(|x| x.parse().ok())
                .collect();
            if bds.is_empty() && parts.is_empty() {
                return Err(field_error(
                    "__all__",
                    "At least one valid block device or partition is required.",
                ));
            }
            for bid in &bds {
                let b = m.block_devices.iter().find(|b| b.id == *bid && !b.virtual_);
                if b.is_none_or(|b| !b.partitions.is_empty() || b.fs.is_some() || b.vg.is_some()) {
                    return Err(field_error(
                        "block_devices",
                        &format!("{bid} is not an available block device."),
                    ));
                }
            }
            for pid in &parts {
                let free = m
                    .block_devices
                    .iter()
                    .flat_map(|b| &b.partitions)
                    .any(|x| x.id == *pid && x.fs.is_none() && x.vg.is_none());
                if !free {
                    return Err(field_error(
                        "partitions",
                        &format!("{pid} is not an available partition."),
                    ));
                }
            }
            for b in &mut m.block_devices {
                if bds.contains(&b.id) {
                    b.vg = Some(new_id);
                    size += b.size;
                }
                for x in &mut b.partitions {
                    if parts.contains(&x.id) {
                        x.vg = Some(new_id);
                        size += x.size;
                    }
                }
            }
            m.volume_groups.push(VolumeGroup {
                id: new_id,
                name,
                size,
            });
            json!({"volume_group": new_id})
        }
        (["volume-group", vgid], _, _) => {
            let vgid = parse_id(vgid)?;
            let vg = m
                .volume_groups
                .iter()
                .find(|v| v.id == vgid)
                .cloned()
                .ok_or_else(not_found)?;
            match (method, op) {
                ("GET", "") => json!({"volume_group": vgid}),
                ("DELETE", "") => {
                    m.volume_groups.retain(|v| v.id != vgid);
                    m.block_devices
                        .retain(|b| !(b.virtual_ && b.vg == Some(vgid)));
                    for b in &mut m.block_devices {
                        if b.vg == Some(vgid) {
                            b.vg = None;
                        }
                        for x in &mut b.partitions {
                            if x.vg == Some(vgid) {
                                x.vg = None;
                            }
                        }
                    }
                    return Ok(Reply::NoContent);
                }
                ("POST", "create_logical_volume") => {
                    let name = p.req("name")?.to_string();
                    let full = format!("{}-{name}", vg.name);
                    if m.block_devices.iter().any(|b| b.name == full) {
                        return Err(field_error(
                            "name",
                            "Logical volume with this name already exists.",
                        ));
                    }
                    let used: u64 = m
                        .block_devices
                        .iter()
                        .filter(|b| b.virtual_ && b.vg == Some(vgid))
                        .map(|b| b.size)
                        .sum();
                    let room = vg.size - used;
                    let size = match p.int("size")? {
                        Some(s) if s > 0 => (s as u64) / ALIGN * ALIGN,
                        _ => return Err(field_error("size", "This field is required.")),
                    };
                    if size == 0 || size > room {
                        return Err(field_error(
                            "size",
                            &format!("Size is too large. Maximum size is {room}."),
                        ));
                    }
                    m.block_devices.push(BlockDevice {
                        id: new_id,
                        name: full,
                        size,
                        serial: String::new(),
                        partitions: Vec::new(),
                        fs: None,
                        vg: Some(vgid),
                        virtual_: true,
                    });
                    json!({"block_device": new_id})
                }
                _ => return Err(not_found()),
            }
        }
        _ => return Err(not_found()),
    };
    // Render what the request is about.
    let m = &st.machines[id];
    let render_bd = |bid: i64| {
        m.block_devices
            .iter()
            .find(|b| b.id == bid)
            .map_or(Value::Null, |b| st.block_device_json(m, b))
    };
    let render_vg = |vgid: i64| {
        m.volume_groups
            .iter()
            .find(|v| v.id == vgid)
            .map_or(Value::Null, |v| st.volume_group_json(m, v))
    };
    ok(if out.is_null() {
        Value::Array(
            m.block_devices
                .iter()
                .map(|b| st.block_device_json(m, b))
                .collect(),
        )
    } else if let Some(bid) = out["block_device"].as_i64() {
        render_bd(bid)
    } else if let Some(bid) = out["partitions_of"].as_i64() {
        render_bd(bid)["partitions"].clone()
    } else if let Some([bid, pid]) = out["partition"]
        .as_array()
        .map(|a| [a[0].as_i64(), a[1].as_i64()])
    {
        list_find(&render_bd(bid.unwrap_or(0))["partitions"], pid.unwrap_or(0))
    } else if out["volume_groups"].as_bool() == Some(true) {
        Value::Array(
            m.volume_groups
                .iter()
                .map(|v| st.volume_group_json(m, v))
                .collect(),
        )
    } else {
        render_vg(out["volume_group"].as_i64().unwrap_or(0))
    })
}

fn list_find(list: &Value, id: i64) -> Value {
    list.as_array()
        .and_then(|a| a.iter().find(|x| x["id"].as_i64() == Some(id)).cloned())
        .unwrap_or(Value::Null)
}
