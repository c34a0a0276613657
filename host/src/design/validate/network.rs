//! Drydock's network rules: `CidrValidity`, `IpLocalityCheck`,
//! `MtuRational`, `NetworkTrunkingRational`, `NoDuplicateIpsCheck`,
//! `RationalNetworkBond` and `UniqueNetworkCheck`, with Drydock's checks and
//! messages (its `orchestrator/validations/*.py`). Where Drydock's Python
//! crashes on a value (an address that is not one), the rule reports an
//! error instead: Drydock fails the validation either way.

use super::super::Design;
use super::super::documents::{DocRef, Kind, RouteSpec};
use super::{Out, node_ref, nodes_in_order, py_repr};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

fn net_ref(name: &str) -> DocRef {
    DocRef::new(Kind::Network, name)
}

fn link_ref(name: &str) -> DocRef {
    DocRef::new(Kind::NetworkLink, name)
}

fn parse_net(cidr: &str) -> Option<IpNet> {
    cidr.trim().parse().ok()
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse().ok()
}

/// Networks in document order.
fn networks_in_order(d: &Design) -> Vec<&String> {
    let mut seen = std::collections::BTreeSet::new();
    d.documents
        .iter()
        .filter(|doc| doc.kind == Kind::Network)
        .filter_map(|doc| d.networks.get_key_value(&doc.name).map(|(k, _)| k))
        .filter(|n| seen.insert(n.as_str()))
        .collect()
}

/// Links in document order.
fn links_in_order(d: &Design) -> Vec<&String> {
    let mut seen = std::collections::BTreeSet::new();
    d.documents
        .iter()
        .filter(|doc| doc.kind == Kind::NetworkLink)
        .filter_map(|doc| d.links.get_key_value(&doc.name).map(|(k, _)| k))
        .filter(|n| seen.insert(n.as_str()))
        .collect()
}

/// `CidrValidity` (DD2006): no host bits set.
pub(super) fn cidr_validity(d: &Design, out: &mut Out) {
    if d.networks.is_empty() {
        out.warn(
            "No networks found.".into(),
            vec![],
            "Site design likely incomplete without defined networks",
        );
        return;
    }
    for name in networks_in_order(d) {
        let cidr = &d.networks[name].cidr;
        match parse_net(cidr) {
            Some(net) if net.trunc() != net => out.error(
                format!("The provided CIDR {cidr} has host bits set"),
                vec![net_ref(name)],
                &format!("Provide a CIDR acceptable by MAAS: {}", net.trunc()),
            ),
            Some(_) => {}
            // Drydock's rule ignores this; its IpLocalityCheck then fails
            // the validation on it.
            None => out.error(
                format!("The provided CIDR {cidr:?} is not a valid network"),
                vec![net_ref(name)],
                "Provide a CIDR acceptable by MAAS, e.g. 172.16.1.0/24",
            ),
        }
    }
}

fn routes_repr(routes: &[RouteSpec]) -> String {
    let opt = |v: &Option<String>| v.clone().map(serde_json::Value::from).unwrap_or_default();
    let list: Vec<String> = routes
        .iter()
        .map(|r| {
            format!(
                "{{'subnet': {}, 'gateway': {}, 'metric': {}, 'routedomain': {}}}",
                py_repr(&opt(&r.subnet)),
                py_repr(&opt(&r.gateway)),
                r.metric.map(|m| m.to_string()).unwrap_or("None".into()),
                py_repr(&opt(&r.routedomain)),
            )
        })
        .collect();
    format!("[{}]", list.join(", "))
}

/// `IpLocalityCheck` (DD2002): route gateways and static node addresses lie
/// within their network's CIDR.
pub(super) fn ip_locality_check(d: &Design, out: &mut Out) {
    if d.networks.is_empty() {
        out.warn(
            "No networks found.".into(),
            vec![],
            "Site design likely incomplete without defined networks",
        );
    } else {
        for name in networks_in_order(d) {
            let n = &d.networks[name];
            let Some(net) = parse_net(&n.cidr) else {
                continue; // CidrValidity reports it
            };
            for r in &n.routes {
                match r.gateway.as_deref() {
                    None | Some("") => out.error(
                        format!("No gateway found for route {}.", routes_repr(&n.routes)),
                        vec![net_ref(name)],
                        "Define a network-local gateway for the route.",
                    ),
                    Some(gw) if parse_ip(gw).is_some_and(|ip| net.contains(&ip)) => {}
                    Some(gw) => out.error(
                        format!(
                            "The gateway IP Address {gw} is not within the defined CIDR: {} of {name}.",
                            n.cidr
                        ),
                        vec![net_ref(name)],
                        "Route gateways must reside on the local network. Check gateway IP and CIDR netmask.",
                    ),
                }
            }
        }
    }
    if d.nodes.is_empty() {
        out.warn(
            "No baremetal_nodes found.".into(),
            vec![],
            "site design likely incomplete without defined networks.",
        );
        return;
    }
    for (node, h) in nodes_in_order(d) {
        for a in &h.addressing {
            let Some(address) = a
                .address
                .as_deref()
                .filter(|x| *x != "dhcp" && !x.is_empty())
            else {
                continue;
            };
            let Some(n) = d.networks.get(&a.network) else {
                out.error(
                    format!("{} is not a valid network.", a.network),
                    vec![node_ref(node)],
                    "Define network or correct address definition.",
                );
                continue;
            };
            let Some(net) = parse_net(&n.cidr) else {
                continue;
            };
            if !parse_ip(address).is_some_and(|ip| net.contains(&ip)) {
                out.error(
                    format!(
                        "The IP Address {address} is not within the defined CIDR: {} of {} .",
                        n.cidr, a.network
                    ),
                    vec![node_ref(node)],
                    "Define a valid address for this network.",
                );
            }
        }
    }
}

const MIN_MTU: u32 = 1280;
const MAX_MTU: u32 = 65536;

/// `MtuRational` (DD2003): MTUs within 1280..=65536; a link's native
/// network no larger than the link (a link's MTU defaults to 1500).
pub(super) fn mtu_rational(d: &Design, out: &mut Out) {
    let range_msg =
        |mtu: u32| format!("MTU must be between {MIN_MTU} and {MAX_MTU}, value is {mtu}");
    let diag = "Define a valid MTU. Standard is 1500, Jumbo is 9100.";
    let mut parent_mtu: BTreeMap<&str, u32> = BTreeMap::new();
    for name in links_in_order(d) {
        let l = &d.links[name];
        let mtu = l.mtu.unwrap_or(1500);
        if mtu != 0 && !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            out.error(range_msg(mtu), vec![link_ref(name)], diag);
        }
        if let Some(native) = &l.trunking.default_network {
            parent_mtu.insert(native, mtu);
        }
    }
    for name in networks_in_order(d) {
        let Some(mtu) = d.networks[name].mtu.filter(|m| *m != 0) else {
            continue;
        };
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            out.error(range_msg(mtu), vec![net_ref(name)], diag);
        }
        if let Some(parent) = parent_mtu.get(name.as_str())
            && *parent != 0
            && mtu > *parent
        {
            out.error(
                format!("MTU must be <= the parent Network Link; for Network {name}"),
                vec![net_ref(name)],
                "Define a MTU less than or equal to that of the carrying network link.",
            );
        }
    }
}

fn trunk_disabled(mode: Option<&str>) -> bool {
    mode.unwrap_or("disabled") == "disabled"
}

/// `NetworkTrunkingRational` (DD2004): an untrunked link carries one
/// network, names it as `default_network`, and that network is untagged.
pub(super) fn network_trunking_rational(d: &Design, out: &mut Out) {
    for name in links_in_order(d) {
        let l = &d.links[name];
        let disabled = trunk_disabled(l.trunking.mode.as_deref());
        if l.allowed_networks.len() > 1 && disabled {
            out.error(
                "If there is more than 1 allowed network,trunking mode must be enabled".into(),
                vec![link_ref(name)],
                "Reduce the allowed network list to 1 or enable trunking on the link.",
            );
        }
        if !disabled {
            continue;
        }
        match &l.trunking.default_network {
            None => out.error(
                "Trunking mode is disabled, a trunking default_network must be defined".into(),
                vec![link_ref(name)],
                "Non-trunked links must have a native network defined.",
            ),
            Some(native) => {
                let tagged = d
                    .networks
                    .get(native)
                    .is_some_and(|n| !matches!(n.vlan_id(), Ok(None)));
                if tagged {
                    out.error(
                        "Network link native network has a defined VLAN tag.".into(),
                        vec![net_ref(native), link_ref(name)],
                        "Tagged network not allowed on non-trunked network links.",
                    );
                }
            }
        }
    }
}

/// `NoDuplicateIpsCheck` (DD2005): no static address on two nodes.
pub(super) fn no_duplicate_ips_check(d: &Design, out: &mut Out) {
    if d.nodes.is_empty() {
        out.warn(
            "No BaremetalNodes Found.".into(),
            vec![],
            "Site design unlikely complete with no defined baremetal nodes.",
        );
        return;
    }
    let mut found: BTreeMap<&str, &String> = BTreeMap::new();
    for (node, h) in nodes_in_order(d) {
        for a in &h.addressing {
            let Some(address) = a
                .address
                .as_deref()
                .filter(|x| *x != "dhcp" && !x.is_empty())
            else {
                continue;
            };
            match found.get(address) {
                Some(first) => out.error(
                    format!("Duplicate IP Address Found: {address} "),
                    vec![node_ref(node), node_ref(first)],
                    "Select unique IP addresses for each node.",
                ),
                None => {
                    found.insert(address, node);
                }
            }
        }
    }
}

/// `RationalNetworkBond` (DD1006): an 802.3ad bond's up and down delays are
/// at least its `mon_rate` (Drydock's defaults: 100 and 200/200 ms). Bond
/// options on a link whose mode is `disabled` are not read by Drydock's
/// ingester, so they never reach this rule there; nor here.
pub(super) fn rational_network_bond(d: &Design, out: &mut Out) {
    for name in links_in_order(d) {
        let b = d.links[name].bonding.effective();
        if b.mode != "802.3ad" {
            continue;
        }
        let mon = b.mon_rate.unwrap_or(100);
        let up = b.up_delay.unwrap_or(200);
        let down = b.down_delay.unwrap_or(200);
        if up < mon {
            out.error(
                format!("Up delay {up} is less than mon rate {mon}"),
                vec![link_ref(name)],
                "Link up delay must be equal or greater than the mon_rate",
            );
        }
        if down < mon {
            out.error(
                format!("Down delay {down} is less than mon rate {mon}"),
                vec![link_ref(name)],
                "Link down delay must be equal or greater than the mon_rate",
            );
        }
    }
}

/// `UniqueNetworkCheck` (DD1007): each network is allowed on one link only,
/// and each node interface carries only networks its link allows.
pub(super) fn unique_network_check(d: &Design, out: &mut Out) {
    let links = links_in_order(d);
    for (i, a) in links.iter().enumerate() {
        for b in &links[i + 1..] {
            let allowed_b = &d.links[*b].allowed_networks;
            for net in d.links[*a]
                .allowed_networks
                .iter()
                .filter(|n| allowed_b.contains(n))
            {
                out.error(
                    format!(
                        "Allowed network {net} duplicated on NetworkLink {a} and NetworkLink {b}"
                    ),
                    vec![],
                    "Each network is only allowed to cross a single network link.",
                );
            }
        }
    }
    for (node, h) in nodes_in_order(d) {
        for (iname, i) in &h.interfaces {
            let link = i.device_link.as_ref().and_then(|l| d.links.get(l));
            for net in &i.networks {
                match link {
                    Some(l) if l.allowed_networks.contains(net) => {}
                    Some(_) => out.error(
                        format!(
                            "Interface {iname} attached to network {net} not allowed on interface link"
                        ),
                        vec![node_ref(node)],
                        "Interfaces can only be attached to networks allowed on the network link connected to the interface.",
                    ),
                    None => out.error(
                        format!(
                            "Interface {iname} connected to undefined network link {}.",
                            i.device_link.as_deref().unwrap_or("None")
                        ),
                        vec![node_ref(node)],
                        "Define the network link attached to this interface.",
                    ),
                }
            }
        }
    }
}
