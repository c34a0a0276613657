//! This project's own checks, beside Drydock's rules: only what Drydock's
//! validation lets through but its deploy then fails on (a reference to a
//! network that does not exist, an address range MAAS refuses, a size its
//! driver cannot read), as errors; and what Drydock only logs, as warnings.
//! Codes are `DDX...` so they never pass for Drydock's.

use super::super::Design;
use super::super::bootaction;
use super::super::documents::{DocRef, Kind};
use super::{Finding, Level, Out, Rule, node_ref, nodes_in_order, parse_size};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// This project's checks, in the order they run.
pub const EXTRA_RULES: [Rule; 7] = [
    super::rule("DuplicateDocuments", "DDX001", "Duplicate Documents"),
    super::rule("DesignReferences", "DDX002", "Design References"),
    super::rule("NetworkRanges", "DDX003", "Network Ranges"),
    super::rule("BondOptions", "DDX004", "Bond Options"),
    super::rule("StorageLayout", "DDX005", "Storage Layout"),
    super::rule("BootactionAssets", "DDX006", "Bootaction Assets"),
    super::rule(
        "KernelParamReferences",
        "DDX007",
        "Kernel Parameter References",
    ),
];

/// Runs every check.
pub(super) fn checks(d: &Design) -> Vec<Finding> {
    let fns: [fn(&Design, &mut Out); 7] = [
        duplicates,
        references,
        ranges,
        bond_options,
        storage_layout,
        bootaction_assets,
        kernel_param_references,
    ];
    let mut all = Vec::new();
    for (rule, f) in EXTRA_RULES.into_iter().zip(fns) {
        let mut out = Out::new(rule);
        f(d, &mut out);
        all.append(&mut out.findings);
    }
    all
}

/// Drydock keeps the first of two documents of one kind and name (and the
/// last Region); Deckhand refuses them. A warning here.
fn duplicates(d: &Design, out: &mut Out) {
    let mut seen: BTreeMap<(Kind, &str), usize> = BTreeMap::new();
    for doc in &d.documents {
        *seen.entry((doc.kind, doc.name.as_str())).or_default() += 1;
    }
    for ((kind, name), n) in seen {
        if n > 1 {
            out.warn(
                format!(
                    "{} {name} is defined {n} times; the first is used",
                    kind.name()
                ),
                vec![DocRef::new(kind, name)],
                "Give each document a unique name.",
            );
        }
    }
    let regions = d
        .documents
        .iter()
        .filter(|doc| doc.kind == Kind::Region)
        .count();
    if regions > 1 {
        out.warn(
            format!("{regions} Region documents; the first is used"),
            vec![],
            "Define one Region.",
        );
    }
}

/// Names that must resolve for the deploy to work: networks and links of
/// node interfaces, addresses and primary networks; networks of links;
/// switch ports (this project's extension); the node's oob type.
fn references(d: &Design, out: &mut Out) {
    let diag = "Define the document or correct the reference.";
    for (name, h) in nodes_in_order(d) {
        let me = || vec![node_ref(name)];
        let missing = |what: &str, target: &str, out: &mut Out| {
            out.error(
                format!("BaremetalNode {name} refers to {what} {target}, which is not defined"),
                me(),
                diag,
            );
        };
        if let Some(p) = &h.primary_network
            && !d.networks.contains_key(p)
        {
            missing("primary Network", p, out);
        }
        for (iname, i) in &h.interfaces {
            if let Some(l) = &i.device_link
                && !d.links.contains_key(l)
                && i.networks.is_empty()
            {
                missing(&format!("(interface {iname}) NetworkLink"), l, out);
            }
            for net in &i.networks {
                if !d.networks.contains_key(net) {
                    missing(&format!("(interface {iname}) Network"), net, out);
                }
            }
            if let Some(sp) = &i.switch_port {
                if d.tor_switch(&sp.switch).is_none() {
                    missing(&format!("(interface {iname}) switch"), &sp.switch, out);
                }
                if let Some(net) = &sp.provisioning_network
                    && !d.networks.contains_key(net)
                {
                    missing(
                        &format!("(interface {iname} switch port) Network"),
                        net,
                        out,
                    );
                }
            }
        }
        for a in &h.addressing {
            let dhcp = a.address.as_deref().is_none_or(|x| x == "dhcp");
            if dhcp && !d.networks.contains_key(&a.network) {
                missing("(dhcp addressing) Network", &a.network, out);
            }
        }
        if h.oob.oob_type.as_deref().is_none_or(str::is_empty) {
            out.error(
                format!("BaremetalNode {name} has no oob.type (its out-of-band driver)"),
                me(),
                "Set oob.type (e.g. ipmi, redfish) in the node or its host profile.",
            );
        }
    }
    for (lname, l) in &d.links {
        for net in l
            .allowed_networks
            .iter()
            .chain(l.trunking.default_network.iter())
        {
            if !d.networks.contains_key(net) {
                out.error(
                    format!("NetworkLink {lname} refers to Network {net}, which is not defined"),
                    vec![DocRef::new(Kind::NetworkLink, lname)],
                    diag,
                );
            }
        }
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse().ok()
}

/// What MAAS refuses when Drydock creates the networks: ranges outside the
/// CIDR or reversed or of an unknown type, VLAN tags that are not 1-4094,
/// route destinations that are not CIDRs.
fn ranges(d: &Design, out: &mut Out) {
    for (name, n) in &d.networks {
        let me = || vec![DocRef::new(Kind::Network, name)];
        if let Err(e) = n.vlan_id() {
            out.error(
                format!("Network {name}: {e}"),
                me(),
                "Use a VLAN tag of 1-4094.",
            );
        }
        for r in &n.routes {
            if let Some(subnet) = &r.subnet
                && subnet.trim().parse::<IpNet>().is_err()
            {
                out.error(
                    format!("Network {name}: route subnet {subnet:?} is not a CIDR"),
                    me(),
                    "Give the route's destination as a CIDR, or a routedomain.",
                );
            }
        }
        let Ok(net) = n.cidr.trim().parse::<IpNet>() else {
            continue; // CidrValidity reports it
        };
        for r in &n.ranges {
            let diag = "Ranges must lie within the network's CIDR, start <= end.";
            match (parse_ip(&r.start), parse_ip(&r.end)) {
                (Some(s), Some(e)) if !net.contains(&s) || !net.contains(&e) => out.error(
                    format!(
                        "Network {name}: range {}-{} is outside {}",
                        r.start, r.end, n.cidr
                    ),
                    me(),
                    diag,
                ),
                (Some(s), Some(e)) if s > e => out.error(
                    format!(
                        "Network {name}: range {}-{} ends before it starts",
                        r.start, r.end
                    ),
                    me(),
                    diag,
                ),
                (Some(_), Some(_)) => {}
                _ => out.error(
                    format!(
                        "Network {name}: range {:?}-{:?} is not a pair of addresses",
                        r.start, r.end
                    ),
                    me(),
                    diag,
                ),
            }
            if !matches!(r.kind.as_str(), "static" | "dhcp" | "reserved") {
                out.error(
                    format!(
                        "Network {name}: range type {:?} is not static, dhcp or reserved",
                        r.kind
                    ),
                    me(),
                    "Use a range type MAAS knows.",
                );
            }
        }
    }
}

/// 802.3ad options MAAS refuses.
fn bond_options(d: &Design, out: &mut Out) {
    const HASHES: [&str; 5] = ["layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4"];
    for (name, l) in &d.links {
        let b = l.bonding.effective();
        if b.mode != "802.3ad" {
            continue;
        }
        let me = || vec![DocRef::new(Kind::NetworkLink, name)];
        if let Some(h) = b.hash.as_deref().filter(|h| !HASHES.contains(h)) {
            out.error(
                format!("NetworkLink {name}: 802.3ad hash {h} is unknown"),
                me(),
                &format!("Use one of {}.", HASHES.join(", ")),
            );
        }
        if let Some(r) = b
            .peer_rate
            .as_deref()
            .filter(|r| !matches!(*r, "slow" | "fast"))
        {
            out.error(
                format!("NetworkLink {name}: peer_rate {r} is not slow or fast"),
                me(),
                "Use slow or fast.",
            );
        }
    }
}

/// Sizes Drydock's driver cannot read, and volume groups named but not
/// defined.
fn storage_layout(d: &Design, out: &mut Out) {
    for (name, h) in nodes_in_order(d) {
        let me = || vec![node_ref(name)];
        let diag = "Sizes are [>]<number>(m|g|t|mi|gi|ti|%).";
        let size = |what: String, s: Option<&str>, out: &mut Out| match s.map(parse_size) {
            None => out.error(format!("{what} has no size"), me(), diag),
            Some(Err(e)) => out.error(format!("{what}: {e}"), me(), diag),
            Some(Ok(_)) => {}
        };
        for (dev, spec) in &h.storage.physical_devices {
            for p in super::storage::partitions(spec) {
                size(
                    format!("partition {} on {dev}", p.name),
                    p.size.as_deref(),
                    out,
                );
            }
            for vg in spec.volume_group.iter().chain(
                super::storage::partitions(spec)
                    .iter()
                    .filter_map(|p| p.volume_group.as_ref()),
            ) {
                if !h.storage.volume_groups.contains_key(vg) {
                    out.error(
                        format!("device {dev} names volume group {vg}, which is not defined"),
                        me(),
                        "Define the volume group under storage.volume_groups.",
                    );
                }
            }
        }
        for (vg, spec) in &h.storage.volume_groups {
            for lv in &spec.logical_volumes {
                size(
                    format!("logical volume {} in {vg}", lv.name),
                    lv.size.as_deref(),
                    out,
                );
            }
        }
    }
}

/// What renders or installs a boot action: pipeline segments, paths,
/// permissions, templates, node filters.
fn bootaction_assets(d: &Design, out: &mut Out) {
    for doc in d
        .documents
        .iter()
        .filter(|doc| doc.kind == Kind::BootAction)
    {
        if let Err(e) = bootaction::read(doc) {
            out.error(
                e.to_string(),
                vec![DocRef::new(Kind::BootAction, &doc.name)],
                "See the boot action's assets.",
            );
        }
    }
}

/// `hardwareprofile:` kernel parameter references that do not resolve:
/// Drydock logs a warning and passes the text on as the value.
fn kernel_param_references(d: &Design, out: &mut Out) {
    for (name, h) in nodes_in_order(d) {
        let hw = h.hardware_profile.as_ref().and_then(|p| d.hardware.get(p));
        for (k, v) in &h.platform.kernel_params {
            let Some(text) = v.as_str() else { continue };
            if let Err(e) = super::super::resolve_kernel_param(text, hw) {
                out.push(
                    Level::Warning,
                    format!("Error resolving parameter reference on node {name}: {e} ({k}={text})"),
                    vec![node_ref(name)],
                    "Define the cpu set or hugepages configuration in the node's hardware profile.",
                );
            }
        }
    }
}
