//! Drydock's node and boot action rules: `HugepagesValidity`,
//! `PlatformSelection`, `HostnameValidity`, `IpmiValidity`,
//! `LibvirtValidity`, `BootactionDefined` and `BootactionPackageListValid`,
//! with Drydock's checks and messages.

use super::super::Design;
use super::super::bootaction;
use super::super::documents::{DEFAULT_DOMAIN, DocRef, Kind};
use super::{Out, PlatformCatalog, node_ref, nodes_in_order};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// `HugepagesValidity` (DD1008): kernel parameters `hugepages` and
/// `hugepagesz` come together.
pub(super) fn hugepages_validity(d: &Design, out: &mut Out) {
    for (name, h) in nodes_in_order(d) {
        let params = &h.platform.kernel_params;
        if params.contains_key("hugepages") != params.contains_key("hugepagesz") {
            out.error(
                "Invalid hugepages kernel configuration".into(),
                vec![node_ref(name)],
                "hugepages and hugepagesz must be specified together",
            );
        }
    }
}

/// `PlatformSelection` (DD3001): each node's image is one the node driver
/// offers, and its kernel one the driver offers for that image.
pub(super) fn platform_selection(d: &Design, catalog: Option<&PlatformCatalog>, out: &mut Out) {
    let Some(catalog) = catalog else {
        out.warn(
            "Platform Validation: No enabled node driver, imageand kernel selections not validated."
                .into(),
            vec![],
            "Cannot validate platform selection without accessing the node provisioner.",
        );
        return;
    };
    let images: Vec<&str> = catalog.images.keys().map(String::as_str).collect();
    for (name, h) in nodes_in_order(d) {
        let image = h.platform.image.as_deref();
        let Some(kernels) = image.and_then(|i| catalog.images.get(i)) else {
            out.error(
                format!(
                    "Platform Validation: invalid image {}",
                    image.unwrap_or("None")
                ),
                vec![node_ref(name)],
                &format!("Select a valid image from: {}", images.join(",")),
            );
            continue;
        };
        let kernel = h.platform.kernel.as_deref();
        if !kernel.is_some_and(|k| kernels.iter().any(|x| x == k)) {
            out.error(
                format!(
                    "Platform Validation: invalid kernel {}",
                    kernel.unwrap_or("None")
                ),
                vec![node_ref(name)],
                &format!("Select a valid kernel from: {}", kernels.join(",")),
            );
        }
    }
}

/// A node's FQDN as Drydock builds it: its name, then the DNS domain of its
/// primary network (`local` when there is none).
pub fn node_fqdn(d: &Design, node: &str) -> String {
    let domain = d
        .nodes
        .get(node)
        .and_then(|h| h.primary_network.as_ref())
        .and_then(|p| d.networks.get(p))
        .map(|n| n.dns_domain())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_DOMAIN.to_owned());
    format!("{node}.{domain}")
}

/// `HostnameValidity` (DD3003): FQDNs of at most 255 characters, each label
/// 1-63 of `A-Z a-z 0-9 -` (RFC 1035).
pub(super) fn hostname_validity(d: &Design, out: &mut Out) {
    let nodes = nodes_in_order(d);
    for (name, _) in &nodes {
        let fqdn = node_fqdn(d, name);
        if fqdn.len() > 255 {
            out.error(
                format!("FQDN {fqdn} is invalid, greater than 255 characters."),
                vec![node_ref(name)],
                "RFC 1035 requires full DNS names to be < 256 characters.",
            );
        }
    }
    for (name, _) in &nodes {
        let fqdn = node_fqdn(d, name);
        for label in fqdn.split('.') {
            let valid = (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                out.error(
                    format!("FQDN {fqdn} is invalid - label '{label}' is invalid."),
                    vec![node_ref(name)],
                    "RFC 1035 requires each label in a DNS name to be <= 63 characters and contain only A-Z, a-z, 0-9, and hyphens.",
                );
            }
        }
    }
}

/// `IpmiValidity` (DD4001): an `ipmi` node names its BMC account,
/// credential and network, and has an address on that network.
pub(super) fn ipmi_validity(d: &Design, out: &mut Out) {
    for (name, h) in nodes_in_order(d) {
        if h.oob.oob_type.as_deref() != Some("ipmi") {
            continue;
        }
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        for (param, value) in [
            ("account", &h.oob.account),
            ("credential", &h.oob.credential),
            ("network", &h.oob.network),
        ] {
            if !given(value) {
                out.error(
                    format!("OOB parameter {param} for IPMI node {name} missing."),
                    vec![node_ref(name)],
                    &format!("Define OOB parameter {param}"),
                );
            }
        }
        let address = h.oob.network.as_ref().and_then(|net| {
            h.addressing
                .iter()
                .rfind(|a| &a.network == net)
                .and_then(|a| a.address.as_deref())
                .filter(|a| *a != "dhcp" && !a.is_empty())
        });
        if address.is_none() {
            out.error(
                format!("OOB address missing for IPMI node {name}."),
                vec![node_ref(name)],
                "Provide address to node OOB interface.",
            );
        }
    }
}

/// `LibvirtValidity` (DD4002): a `libvirt` node has a `qemu+ssh` URI and a
/// boot MAC.
pub(super) fn libvirt_validity(d: &Design, out: &mut Out) {
    for (name, h) in nodes_in_order(d) {
        if h.oob.oob_type.as_deref() != Some("libvirt") {
            continue;
        }
        match h.oob.extra.get("libvirt_uri").and_then(Value::as_str) {
            None | Some("") => out.error(
                format!("OOB parameter libvirt_uri missing for node {name}."),
                vec![node_ref(name)],
                "Provide libvirt URI to node hypervisor.",
            ),
            Some(uri) if !uri.starts_with("qemu+ssh") => out.error(
                "OOB parameter libvirt_uri has invalid scheme.".into(),
                vec![node_ref(name)],
                "Only scheme 'qemu+ssh' is supported.",
            ),
            Some(_) => {}
        }
        if h.metadata.boot_mac.as_deref().is_none_or(str::is_empty) {
            out.error(
                "libvirt-based node requries defined boot MAC address.".into(),
                vec![node_ref(name)],
                "Specify the node's PXE MAC address in metadata.boot_mac",
            );
        }
    }
}

/// `BootactionDefined` (DD4001): warns for each node no boot action targets.
pub(super) fn bootaction_defined(d: &Design, out: &mut Out) {
    let actions: Vec<bootaction::BootAction> = d
        .documents
        .iter()
        .filter(|doc| doc.kind == Kind::BootAction)
        .filter_map(|doc| bootaction::read(doc).ok())
        .collect();
    let targeted: BTreeSet<String> = d
        .boot_action_nodes(&actions)
        .into_iter()
        .flatten()
        .collect();
    for (name, _) in nodes_in_order(d) {
        if !targeted.contains(name) {
            out.warn(
                format!("Node {name} is not in scope for any bootactions."),
                vec![node_ref(name)],
                "It is expected all nodes have at least one post-deploy action.",
            );
        }
    }
}

/// Drydock's package version grammar (`BootactionPackageListValid`), matched
/// whole: `[epoch:]upstream-revision`.
fn version_grammar() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^(?:(\d+:)?([a-zA-Z0-9.+~-]+)(-[a-zA-Z0-9.+~]+))$")
            .expect("a constant pattern")
    })
}

/// Whether `v` is a version Drydock's `pkg_list` accepts (empty: any).
pub fn valid_package_version(v: &str) -> bool {
    v.is_empty() || version_grammar().is_match(v)
}

/// `BootactionPackageListValid` (DD4002): a `pkg_list` asset has packages
/// (or a location), and each version is `[epoch:]upstream-revision`.
pub(super) fn bootaction_package_list_valid(d: &Design, out: &mut Out) {
    for doc in d
        .documents
        .iter()
        .filter(|doc| doc.kind == Kind::BootAction)
    {
        let me = || vec![DocRef::new(Kind::BootAction, &doc.name)];
        let assets = doc.data.get("assets").and_then(Value::as_array);
        for a in assets.into_iter().flatten() {
            if a.get("type").and_then(Value::as_str) != Some("pkg_list") {
                continue;
            }
            let location = a
                .get("location")
                .and_then(Value::as_str)
                .is_some_and(|l| !l.is_empty());
            let packages = a.get("data").and_then(Value::as_object);
            match packages.filter(|p| !p.is_empty()) {
                None if !location => out.error(
                    "Bootaction has asset of type 'pkg_list' but no valid package data".into(),
                    me(),
                    "pkg_list bootaction assets must specify a list of packages.",
                ),
                None => {}
                Some(list) => {
                    for v in list.values().filter_map(Value::as_str) {
                        if !valid_package_version(v) {
                            out.error(
                                format!("Version specifier {v} is not a valid format."),
                                me(),
                                "pkg_list version specifications must be in a valid format.",
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_versions_follow_drydocks_grammar() {
        for ok in ["", "3.2.1-1", "1:2.30-1ubuntu4", "1.0~rc1-2+deb10u1"] {
            assert!(valid_package_version(ok), "{ok}");
        }
        for bad in ["1.0", "latest", "1:-1", "1.0-", "a b-1"] {
            assert!(!valid_package_version(bad), "{bad}");
        }
    }
}
