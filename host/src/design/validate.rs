//! Drydock's design validation rules. Each rule looks at the whole design
//! and reports every finding (not just the first), with the documents
//! involved, as Drydock's `validatedesign` does.

use super::Design;
use super::documents::{DocRef, HostSpec, Kind, StorageSpec};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Level {
    /// The design cannot be used.
    Error,
    /// Suspicious but usable.
    Warning,
}

/// One validation finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule that found it (e.g. `cidr`, `duplicate_ip`).
    pub rule: &'static str,
    /// What is wrong, naming the documents and values.
    pub message: String,
    /// Error or warning.
    pub level: Level,
    /// Documents involved.
    pub documents: Vec<DocRef>,
}

impl Finding {
    /// Whether it is an error.
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

/// Images the node driver offers and each image's kernels (for the platform
/// rule). `None` in [`validate`] skips the rule (no node driver).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlatformCatalog {
    /// Image → kernels.
    pub images: BTreeMap<String, Vec<String>>,
}

/// Every rule's name, in the order they run.
pub const RULES: &[&str] = &[
    "document",
    "unique_names",
    "references",
    "cidr",
    "duplicate_ip",
    "ip_locality",
    "mtu",
    "trunking",
    "bonding",
    "storage_partitioning",
    "bootable_root",
    "hugepages",
    "bootaction",
    "platform",
];

struct Out(Vec<Finding>);

impl Out {
    fn error(&mut self, rule: &'static str, message: String, documents: Vec<DocRef>) {
        self.0.push(Finding {
            rule,
            message,
            level: Level::Error,
            documents,
        });
    }

    fn warning(&mut self, rule: &'static str, message: String, documents: Vec<DocRef>) {
        self.0.push(Finding {
            rule,
            message,
            level: Level::Warning,
            documents,
        });
    }
}

fn node_ref(name: &str) -> DocRef {
    DocRef::new(Kind::BaremetalNode, name)
}

/// Runs every rule. `catalog` enables the platform rule.
pub fn validate(d: &Design, catalog: Option<&PlatformCatalog>) -> Vec<Finding> {
    let mut out = Out(Vec::new());
    documents(d, &mut out);
    unique_names(d, &mut out);
    references(d, &mut out);
    cidr(d, &mut out);
    duplicate_ip(d, &mut out);
    ip_locality(d, &mut out);
    mtu(d, &mut out);
    trunking(d, &mut out);
    bonding(d, &mut out);
    storage_partitioning(d, &mut out);
    bootable_root(d, &mut out);
    hugepages(d, &mut out);
    bootaction(d, &mut out);
    if let Some(c) = catalog {
        platform(d, c, &mut out);
    }
    out.0
}

/// Boot actions: node filters, asset types, paths, permissions, pipeline
/// segments, templates' syntax and package lists.
fn bootaction(d: &Design, out: &mut Out) {
    for doc in d
        .documents
        .iter()
        .filter(|doc| doc.kind == Kind::BootAction)
    {
        if let Err(e) = super::bootaction::read(doc) {
            out.error(
                "bootaction",
                e.to_string(),
                vec![DocRef::new(Kind::BootAction, &doc.name)],
            );
        }
    }
}

fn documents(d: &Design, out: &mut Out) {
    for m in &d.malformed {
        out.error(
            "document",
            format!("document #{}: {}", m.index + 1, m.message),
            vec![],
        );
    }
    for (doc, message) in &d.unreadable {
        out.error("document", message.clone(), vec![doc.clone()]);
    }
    if d.nodes.is_empty() {
        out.warning(
            "document",
            "the design defines no BaremetalNode".into(),
            vec![],
        );
    }
}

fn unique_names(d: &Design, out: &mut Out) {
    let mut seen: BTreeMap<(Kind, &str), usize> = BTreeMap::new();
    for doc in &d.documents {
        *seen.entry((doc.kind, doc.name.as_str())).or_default() += 1;
    }
    for ((kind, name), n) in seen {
        if n > 1 {
            out.error(
                "unique_names",
                format!("{} `{name}` is defined {n} times", kind.name()),
                vec![DocRef::new(kind, name)],
            );
        }
    }
    if d.documents
        .iter()
        .filter(|doc| doc.kind == Kind::Region)
        .count()
        > 1
    {
        out.error(
            "unique_names",
            "more than one Region document".into(),
            vec![],
        );
    }
}

fn hosts(d: &Design) -> impl Iterator<Item = (Kind, &String, &HostSpec)> {
    d.profiles
        .iter()
        .map(|(n, s)| (Kind::HostProfile, n, s))
        .chain(d.nodes.iter().map(|(n, s)| (Kind::BaremetalNode, n, s)))
}

fn references(d: &Design, out: &mut Out) {
    let missing = |what: &str, name: &str, from: DocRef, out: &mut Out| {
        out.error(
            "references",
            format!(
                "{} `{}` refers to {what} `{name}`, which is not defined",
                from.schema, from.name
            ),
            vec![from],
        );
    };
    for (kind, hname, h) in hosts(d) {
        let me = DocRef::new(kind, hname);
        if let Some(p) = &h.host_profile
            && !d.profiles.contains_key(p)
        {
            missing("HostProfile", p, me.clone(), out);
        }
        if let Some(p) = &h.hardware_profile
            && !d.hardware.contains_key(p)
        {
            missing("HardwareProfile", p, me.clone(), out);
        }
        for net in h.primary_network.iter().chain(h.oob.network.iter()) {
            if !d.networks.contains_key(net) {
                missing("Network", net, me.clone(), out);
            }
        }
        for (iname, i) in &h.interfaces {
            if let Some(l) = &i.device_link
                && !d.links.contains_key(l)
            {
                missing("NetworkLink", l, me.clone(), out);
            }
            for net in &i.networks {
                if !d.networks.contains_key(net) {
                    missing("Network", net, me.clone(), out);
                }
            }
            if let Some(sp) = &i.switch_port {
                if d.tor_switch(&sp.switch).is_none() {
                    missing(
                        &format!("switch (interface {iname})"),
                        &sp.switch,
                        me.clone(),
                        out,
                    );
                }
                if let Some(net) = &sp.provisioning_network
                    && !d.networks.contains_key(net)
                {
                    missing("Network", net, me.clone(), out);
                }
            }
        }
        for a in &h.addressing {
            if !d.networks.contains_key(&a.network) {
                missing("Network", &a.network, me.clone(), out);
            }
        }
        if kind == Kind::BaremetalNode {
            if let Some(rack) = &h.metadata.rack
                && !d.racks.contains_key(rack)
            {
                missing("Rack", rack, me.clone(), out);
            }
            if h.oob.oob_type.as_deref().unwrap_or("").is_empty() {
                out.error(
                    "references",
                    format!("BaremetalNode `{hname}` has no oob.type (its out-of-band driver)"),
                    vec![me.clone()],
                );
            }
        }
    }
    for (lname, l) in &d.links {
        let me = DocRef::new(Kind::NetworkLink, lname);
        for net in l
            .allowed_networks
            .iter()
            .chain(l.trunking.default_network.iter())
        {
            if !d.networks.contains_key(net) {
                missing("Network", net, me.clone(), out);
            }
        }
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse().ok()
}

fn cidr(d: &Design, out: &mut Out) {
    for (name, n) in &d.networks {
        let me = vec![DocRef::new(Kind::Network, name)];
        let net: IpNet = match n.cidr.trim().parse() {
            Ok(c) => c,
            Err(_) => {
                out.error(
                    "cidr",
                    format!("Network `{name}`: `{}` is not a CIDR", n.cidr),
                    me,
                );
                continue;
            }
        };
        if net.trunc() != net {
            out.error(
                "cidr",
                format!(
                    "Network `{name}`: `{}` has host bits set (did you mean {}?)",
                    n.cidr,
                    net.trunc()
                ),
                me.clone(),
            );
        }
        if let Err(e) = n.vlan_id() {
            out.error("cidr", format!("Network `{name}`: {e}"), me.clone());
        }
        for r in &n.ranges {
            match (parse_ip(&r.start), parse_ip(&r.end)) {
                (Some(s), Some(e)) => {
                    if !net.contains(&s) || !net.contains(&e) {
                        out.error(
                            "cidr",
                            format!(
                                "Network `{name}`: range {}-{} is outside {}",
                                r.start, r.end, n.cidr
                            ),
                            me.clone(),
                        );
                    } else if s > e {
                        out.error(
                            "cidr",
                            format!(
                                "Network `{name}`: range {}-{} ends before it starts",
                                r.start, r.end
                            ),
                            me.clone(),
                        );
                    }
                }
                _ => out.error(
                    "cidr",
                    format!(
                        "Network `{name}`: range `{}`-`{}` is not a pair of addresses",
                        r.start, r.end
                    ),
                    me.clone(),
                ),
            }
            if !matches!(r.kind.as_str(), "static" | "dhcp" | "reserved") {
                out.error(
                    "cidr",
                    format!(
                        "Network `{name}`: range type `{}` is not static, dhcp or reserved",
                        r.kind
                    ),
                    me.clone(),
                );
            }
        }
        for r in &n.routes {
            if r.subnet.trim().parse::<IpNet>().is_err() {
                out.error(
                    "cidr",
                    format!(
                        "Network `{name}`: route subnet `{}` is not a CIDR",
                        r.subnet
                    ),
                    me.clone(),
                );
            }
            match parse_ip(&r.gateway) {
                Some(gw) if net.contains(&gw) => {}
                Some(_) => out.error(
                    "cidr",
                    format!(
                        "Network `{name}`: route gateway {} is not on {}",
                        r.gateway, n.cidr
                    ),
                    me.clone(),
                ),
                None => out.error(
                    "cidr",
                    format!(
                        "Network `{name}`: route gateway `{}` is not an address",
                        r.gateway
                    ),
                    me.clone(),
                ),
            }
        }
    }
}

fn static_addresses(d: &Design) -> impl Iterator<Item = (&String, &String, &str)> {
    d.nodes.iter().flat_map(|(node, h)| {
        h.addressing.iter().filter_map(move |a| {
            a.address
                .as_deref()
                .filter(|x| *x != "dhcp")
                .map(|x| (node, &a.network, x))
        })
    })
}

fn duplicate_ip(d: &Design, out: &mut Out) {
    let mut by_ip: BTreeMap<IpAddr, Vec<&String>> = BTreeMap::new();
    for (node, _, addr) in static_addresses(d) {
        if let Some(ip) = parse_ip(addr) {
            by_ip.entry(ip).or_default().push(node);
        }
    }
    for (ip, nodes) in by_ip {
        if nodes.len() > 1 {
            let names: Vec<&str> = nodes.iter().map(|s| s.as_str()).collect();
            out.error(
                "duplicate_ip",
                format!(
                    "address {ip} is assigned to more than one node: {}",
                    names.join(", ")
                ),
                nodes.iter().map(|n| node_ref(n)).collect(),
            );
        }
    }
}

fn ip_locality(d: &Design, out: &mut Out) {
    for (node, network, addr) in static_addresses(d) {
        let me = vec![node_ref(node), DocRef::new(Kind::Network, network)];
        let Some(ip) = parse_ip(addr) else {
            out.error(
                "ip_locality",
                format!("BaremetalNode `{node}`: `{addr}` on {network} is not an address"),
                me,
            );
            continue;
        };
        let Some(net) = d
            .networks
            .get(network)
            .and_then(|n| n.cidr.trim().parse::<IpNet>().ok())
        else {
            continue; // reported by references / cidr
        };
        if !net.contains(&ip) {
            out.error(
                "ip_locality",
                format!("BaremetalNode `{node}`: {ip} is not within network {network} ({net})"),
                me,
            );
        } else if let IpNet::V4(v4) = net
            && v4.prefix_len() < 31
            && (ip == IpAddr::V4(v4.network()) || ip == IpAddr::V4(v4.broadcast()))
        {
            out.error(
                "ip_locality",
                format!(
                    "BaremetalNode `{node}`: {ip} is the network or broadcast address of {net}"
                ),
                me,
            );
        }
    }
    // Each node needs an address on the networks it attaches to.
    for (node, h) in &d.nodes {
        let attached: BTreeSet<&String> = h
            .interfaces
            .values()
            .flat_map(|i| i.networks.iter())
            .collect();
        for a in &h.addressing {
            if !attached.contains(&a.network) && h.oob.network.as_ref() != Some(&a.network) {
                out.warning(
                    "ip_locality",
                    format!("BaremetalNode `{node}` has an address on {} but no interface attached to it", a.network),
                    vec![node_ref(node)],
                );
            }
        }
    }
}

const MTU_MIN: u32 = 1280;
const MTU_MAX: u32 = 9216;

fn mtu(d: &Design, out: &mut Out) {
    for (name, l) in &d.links {
        let mtu = l.mtu.unwrap_or(1500);
        if !(MTU_MIN..=MTU_MAX).contains(&mtu) {
            out.error(
                "mtu",
                format!("NetworkLink `{name}`: MTU {mtu} is outside {MTU_MIN}-{MTU_MAX}"),
                vec![DocRef::new(Kind::NetworkLink, name)],
            );
        }
        for net in &l.allowed_networks {
            let Some(n) = d.networks.get(net) else {
                continue;
            };
            let nm = n.mtu.unwrap_or(mtu.min(1500));
            if !(MTU_MIN..=MTU_MAX).contains(&nm) {
                out.error(
                    "mtu",
                    format!("Network `{net}`: MTU {nm} is outside {MTU_MIN}-{MTU_MAX}"),
                    vec![DocRef::new(Kind::Network, net)],
                );
            } else if nm > mtu {
                out.error(
                    "mtu",
                    format!("Network `{net}`: MTU {nm} is larger than link `{name}`'s MTU {mtu}"),
                    vec![
                        DocRef::new(Kind::Network, net),
                        DocRef::new(Kind::NetworkLink, name),
                    ],
                );
            }
        }
    }
}

fn trunking(d: &Design, out: &mut Out) {
    for (name, l) in &d.links {
        let me = DocRef::new(Kind::NetworkLink, name);
        let mode = l.trunking.mode.as_deref().unwrap_or("disabled");
        match mode {
            "disabled" => {
                if l.allowed_networks.len() > 1 {
                    out.error(
                        "trunking",
                        format!(
                            "NetworkLink `{name}` has trunking disabled but allows {} networks",
                            l.allowed_networks.len()
                        ),
                        vec![me.clone()],
                    );
                }
            }
            "802.1q" => {
                for net in &l.allowed_networks {
                    if Some(net) == l.trunking.default_network.as_ref() {
                        continue;
                    }
                    if let Some(n) = d.networks.get(net)
                        && matches!(n.vlan_id(), Ok(None))
                    {
                        out.error(
                                "trunking",
                                format!(
                                    "Network `{net}` on 802.1q link `{name}` has no VLAN tag and is not the link's default_network"
                                ),
                                vec![me.clone(), DocRef::new(Kind::Network, net)],
                            );
                    }
                }
                if let Some(native) = &l.trunking.default_network
                    && !l.allowed_networks.contains(native)
                {
                    out.error(
                            "trunking",
                            format!("NetworkLink `{name}`: default_network `{native}` is not in allowed_networks"),
                            vec![me.clone()],
                        );
                }
            }
            other => out.error(
                "trunking",
                format!("NetworkLink `{name}`: trunking mode `{other}` is not disabled or 802.1q"),
                vec![me.clone()],
            ),
        }
    }
    for (kind, hname, h) in hosts(d) {
        for (iname, i) in &h.interfaces {
            let Some(link) = i
                .device_link
                .as_ref()
                .and_then(|l| d.links.get(l).map(|s| (l, s)))
            else {
                continue;
            };
            let (lname, l) = link;
            for net in &i.networks {
                if !l.allowed_networks.contains(net) {
                    out.error(
                        "trunking",
                        format!(
                            "{} `{hname}` interface {iname}: network `{net}` is not allowed on link `{lname}`",
                            kind.name()
                        ),
                        vec![DocRef::new(kind, hname), DocRef::new(Kind::NetworkLink, lname)],
                    );
                }
            }
            if l.trunking.mode.as_deref().unwrap_or("disabled") == "disabled"
                && i.networks.len() > 1
            {
                out.error(
                    "trunking",
                    format!(
                        "{} `{hname}` interface {iname} carries {} networks on untrunked link `{lname}`",
                        kind.name(),
                        i.networks.len()
                    ),
                    vec![DocRef::new(kind, hname)],
                );
            }
        }
    }
}

const BOND_MODES: &[&str] = &[
    "disabled",
    "802.3ad",
    "active-backup",
    "balance-rr",
    "balance-xor",
    "broadcast",
    "balance-tlb",
    "balance-alb",
];
const HASH_POLICIES: &[&str] = &["layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4"];

fn bonding(d: &Design, out: &mut Out) {
    for (name, l) in &d.links {
        let me = vec![DocRef::new(Kind::NetworkLink, name)];
        let mode = l.bonding.mode.as_deref().unwrap_or("disabled");
        if !BOND_MODES.contains(&mode) {
            out.error(
                "bonding",
                format!("NetworkLink `{name}`: bonding mode `{mode}` is unknown"),
                me.clone(),
            );
        }
        if mode == "802.3ad" {
            match l.bonding.hash.as_deref() {
                Some(h) if HASH_POLICIES.contains(&h) => {}
                Some(h) => out.error(
                    "bonding",
                    format!("NetworkLink `{name}`: 802.3ad hash `{h}` is unknown"),
                    me.clone(),
                ),
                None => out.error(
                    "bonding",
                    format!("NetworkLink `{name}`: 802.3ad bonding needs a hash policy"),
                    me.clone(),
                ),
            }
            if let Some(r) = l.bonding.peer_rate.as_deref()
                && !matches!(r, "slow" | "fast")
            {
                out.error(
                    "bonding",
                    format!("NetworkLink `{name}`: peer_rate `{r}` is not slow or fast"),
                    me.clone(),
                );
            }
            if l.bonding.mon_rate == Some(0) {
                out.error(
                    "bonding",
                    format!("NetworkLink `{name}`: mon_rate must be positive"),
                    me.clone(),
                );
            }
        }
    }
    for (kind, hname, h) in hosts(d) {
        for (iname, i) in &h.interfaces {
            let Some(l) = i.device_link.as_ref().and_then(|l| d.links.get(l)) else {
                continue;
            };
            let bonded = l.bonding.mode.as_deref().unwrap_or("disabled") != "disabled";
            let me = vec![DocRef::new(kind, hname)];
            if bonded && i.slaves.len() < 2 && kind == Kind::BaremetalNode {
                out.error(
                    "bonding",
                    format!("{} `{hname}` interface {iname} is bonded but has {} slave(s); a bond needs 2 or more", kind.name(), i.slaves.len()),
                    me,
                );
            } else if !bonded && i.slaves.len() > 1 {
                out.error(
                    "bonding",
                    format!(
                        "{} `{hname}` interface {iname} has {} slaves on a link without bonding",
                        kind.name(),
                        i.slaves.len()
                    ),
                    me,
                );
            }
        }
    }
}

/// A size in Drydock's grammar: `[>]<n>(m|mb|g|gb|t|tb|%)`, case-insensitive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    /// Exactly (or at least, with `>`) this many bytes.
    Bytes {
        /// Bytes.
        bytes: u64,
        /// `>`: at least.
        at_least: bool,
    },
    /// A percentage of what is left.
    Percent(u32),
}

/// Parses Drydock's size grammar.
pub fn parse_size(s: &str) -> Result<Size, String> {
    let t = s.trim().to_ascii_lowercase();
    let (at_least, rest) = match t.strip_prefix('>') {
        Some(r) => (true, r),
        None => (false, t.as_str()),
    };
    let split = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (num, unit) = rest.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("size `{s}` has no number"))?;
    let mult: u64 = match unit {
        "%" if !at_least => {
            return match n {
                1..=100 => Ok(Size::Percent(n as u32)),
                _ => Err(format!("size `{s}`: a percentage must be 1-100")),
            };
        }
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        _ => {
            return Err(format!(
                "size `{s}` is not <number>(m|g|t|%) with an optional leading >"
            ));
        }
    };
    if n == 0 {
        return Err(format!("size `{s}` is zero"));
    }
    Ok(Size::Bytes {
        bytes: n * mult,
        at_least,
    })
}

/// The percentage of its disk or volume group `size` claims (0 for an
/// absolute size), reporting a missing or unreadable size of `what`.
fn claimed_percent(size: Option<&str>, what: &str, out: &mut Out, docs: Vec<DocRef>) -> u32 {
    match size.map(parse_size) {
        None => {
            out.error("storage_partitioning", format!("{what} has no size"), docs);
            0
        }
        Some(Err(e)) => {
            out.error("storage_partitioning", format!("{what}: {e}"), docs);
            0
        }
        Some(Ok(Size::Percent(n))) => n,
        Some(Ok(_)) => 0,
    }
}

fn storage_partitioning(d: &Design, out: &mut Out) {
    for (kind, hname, h) in hosts(d) {
        let me = || vec![DocRef::new(kind, hname)];
        let s: &StorageSpec = &h.storage;
        let mut pv_groups: BTreeSet<&String> = BTreeSet::new();
        for (dev, spec) in &s.physical_devices {
            if spec.volume_group.is_some() && !spec.partitions.is_empty() {
                out.error(
                    "storage_partitioning",
                    format!(
                        "{} `{hname}` device {dev} is both a volume group member and partitioned",
                        kind.name()
                    ),
                    me(),
                );
            }
            pv_groups.extend(spec.volume_group.iter());
            let mut percent = 0;
            for p in &spec.partitions {
                pv_groups.extend(p.volume_group.iter());
                if p.volume_group.is_some() && p.filesystem.is_some() {
                    out.error(
                        "storage_partitioning",
                        format!(
                            "{} `{hname}` partition {} has both a filesystem and a volume group",
                            kind.name(),
                            p.name
                        ),
                        me(),
                    );
                }
                let what = format!("{} `{hname}` partition {} on {dev}", kind.name(), p.name);
                percent += claimed_percent(p.size.as_deref(), &what, out, me());
            }
            if percent > 100 {
                out.error(
                    "storage_partitioning",
                    format!(
                        "{} `{hname}` device {dev}: partitions take {percent}% of the disk",
                        kind.name()
                    ),
                    me(),
                );
            }
        }
        for (vg, spec) in &s.volume_groups {
            if !pv_groups.contains(vg) {
                out.error(
                    "storage_partitioning",
                    format!(
                        "{} `{hname}` volume group {vg} has no physical volume",
                        kind.name()
                    ),
                    me(),
                );
            }
            let mut percent = 0;
            for lv in &spec.logical_volumes {
                let what = format!("{} `{hname}` logical volume {}", kind.name(), lv.name);
                percent += claimed_percent(lv.size.as_deref(), &what, out, me());
            }
            if percent > 100 {
                out.error(
                    "storage_partitioning",
                    format!(
                        "{} `{hname}` volume group {vg}: logical volumes take {percent}%",
                        kind.name()
                    ),
                    me(),
                );
            }
        }
        for vg in pv_groups {
            if !s.volume_groups.contains_key(vg) {
                out.error(
                    "storage_partitioning",
                    format!(
                        "{} `{hname}` refers to volume group {vg}, which is not defined",
                        kind.name()
                    ),
                    me(),
                );
            }
        }
    }
}

fn bootable_root(d: &Design, out: &mut Out) {
    for (name, h) in &d.nodes {
        let s = &h.storage;
        if s.physical_devices.is_empty() && s.volume_groups.is_empty() {
            continue; // the bootstrapper's default layout
        }
        let on_partition = |mp: &str| {
            s.physical_devices
                .values()
                .flat_map(|d| d.partitions.iter())
                .any(|p| p.filesystem.as_ref().and_then(|f| f.mountpoint.as_deref()) == Some(mp))
        };
        let on_lv = |mp: &str| {
            s.volume_groups
                .values()
                .flat_map(|v| v.logical_volumes.iter())
                .any(|lv| lv.filesystem.as_ref().and_then(|f| f.mountpoint.as_deref()) == Some(mp))
        };
        let me = vec![node_ref(name)];
        let roots = s
            .physical_devices
            .values()
            .flat_map(|d| d.partitions.iter().filter_map(|p| p.filesystem.as_ref()))
            .chain(s.volume_groups.values().flat_map(|v| {
                v.logical_volumes
                    .iter()
                    .filter_map(|l| l.filesystem.as_ref())
            }))
            .filter(|f| f.mountpoint.as_deref() == Some("/"))
            .count();
        if roots == 0 {
            out.error(
                "bootable_root",
                format!("BaremetalNode `{name}`: storage defines no root (/) filesystem"),
                me,
            );
        } else if roots > 1 {
            out.error(
                "bootable_root",
                format!("BaremetalNode `{name}`: storage defines {roots} root (/) filesystems"),
                me,
            );
        } else if on_lv("/") && !on_partition("/boot") {
            out.error(
                "bootable_root",
                format!("BaremetalNode `{name}`: root is on a logical volume but there is no /boot partition"),
                me,
            );
        }
    }
}

fn hugepages(d: &Design, out: &mut Out) {
    for (name, hw) in &d.hardware {
        let me = vec![DocRef::new(Kind::HardwareProfile, name)];
        for (pool, hp) in &hw.hugepages {
            if !matches!(hp.size.to_ascii_uppercase().as_str(), "2M" | "1G") {
                out.error(
                    "hugepages",
                    format!(
                        "HardwareProfile `{name}` hugepages {pool}: size `{}` is not 2M or 1G",
                        hp.size
                    ),
                    me.clone(),
                );
            }
            if hp.count <= 0 {
                out.error(
                    "hugepages",
                    format!("HardwareProfile `{name}` hugepages {pool}: count must be positive"),
                    me.clone(),
                );
            }
        }
    }
    // Kernel parameters may refer to hugepage pools:
    // `hardwareprofile:hugepages.<pool>.size|count`.
    for (node, h) in &d.nodes {
        let hw = h.hardware_profile.as_ref().and_then(|p| d.hardware.get(p));
        for (k, v) in &h.platform.kernel_params {
            let Some(reference) = v
                .as_str()
                .and_then(|s| s.strip_prefix("hardwareprofile:hugepages."))
            else {
                continue;
            };
            let mut parts = reference.split('.');
            let (pool, field) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let ok = hw.is_some_and(|hw| hw.hugepages.contains_key(pool))
                && matches!(field, "size" | "count");
            if !ok {
                out.error(
                    "hugepages",
                    format!("BaremetalNode `{node}` kernel parameter {k} refers to hugepages `{reference}`, which its hardware profile does not define"),
                    vec![node_ref(node)],
                );
            }
        }
    }
}

fn platform(d: &Design, catalog: &PlatformCatalog, out: &mut Out) {
    let images: Vec<&str> = catalog.images.keys().map(String::as_str).collect();
    for (node, h) in &d.nodes {
        let me = vec![node_ref(node)];
        let Some(image) = &h.platform.image else {
            out.error(
                "platform",
                format!("BaremetalNode `{node}` has no platform.image"),
                me,
            );
            continue;
        };
        match catalog.images.get(image) {
            None => out.error(
                "platform",
                format!("BaremetalNode `{node}`: image `{image}` is not offered by the node driver (offered: {})", images.join(", ")),
                me,
            ),
            Some(kernels) => {
                if let Some(k) = &h.platform.kernel
                    && !kernels.contains(k) {
                        out.error(
                            "platform",
                            format!("BaremetalNode `{node}`: kernel `{k}` is not offered for image `{image}` (offered: {})", kernels.join(", ")),
                            me,
                        );
                    }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_drydock_grammar() {
        assert_eq!(
            parse_size("10g"),
            Ok(Size::Bytes {
                bytes: 10 << 30,
                at_least: false
            })
        );
        assert_eq!(
            parse_size(">100GB"),
            Ok(Size::Bytes {
                bytes: 100 << 30,
                at_least: true
            })
        );
        assert_eq!(parse_size("99%"), Ok(Size::Percent(99)));
        assert!(parse_size("101%").is_err());
        assert!(parse_size(">5%").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10x").is_err());
    }
}
