//! Which BMC and switch addresses Drydock accepts for a node.
//!
//! A node's `oob.address` and its switches' addresses become per-call egress
//! grants for the driver serving it and receive the node's credentials, so
//! each must name exactly one host: no CIDR, no wildcard, no `host:port`
//! (the port has its own field), and no special address — loopback,
//! unspecified, link-local, cloud metadata, multicast, reserved (as
//! [`crate::netaddr`] classifies them, IPv6 forms carrying an IPv4 address
//! judged as that address) — unless the operator lists it in
//! `[node_addresses] allow` (e.g. `["127.0.0.0/8"]` for emulators on the
//! same machine). Checked when `POST /nodes` registers a node and again
//! where a node's addresses are used (every driver call), which covers
//! design nodes too.

use crate::netaddr::{AddrClass, canonical, classify};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;

/// `[node_addresses]`: the special addresses a node's BMC or switch may
/// still have.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeAddressPolicy {
    /// Networks (`127.0.0.0/8`, `fe80::/10`) or single addresses accepted
    /// although special. Default: none.
    #[serde(deserialize_with = "nets")]
    pub allow: Vec<IpNet>,
}

fn nets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_net(s).map_err(serde::de::Error::custom))
        .collect()
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is neither an IP address nor a CIDR network"))
}

/// Why an address was refused.
#[derive(Debug, thiserror::Error)]
pub enum BadAddress {
    /// Not one host name or IP address.
    #[error("{what} address `{address}` is not one host: {reason}")]
    NotOneHost {
        /// `BMC` or `switch NAME`.
        what: String,
        /// The address (cut to 100 characters).
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A special address the operator did not allow.
    #[error(
        "{what} address `{address}` is a {class} address; list it in [node_addresses] allow \
         to use it"
    )]
    Special {
        /// `BMC` or `switch NAME`.
        what: String,
        /// The address.
        address: String,
        /// What kind of address it is.
        class: AddrClass,
    },
}

impl NodeAddressPolicy {
    /// A policy allowing `nets` besides the ordinary addresses.
    pub fn allowing(nets: &[&str]) -> Result<Self, String> {
        Ok(Self {
            allow: nets
                .iter()
                .map(|n| parse_net(n))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Checks `address`, the BMC or switch address of a node; `what` names
    /// it in the error (`BMC`, `switch leaf01`). An empty address (none) is
    /// accepted: nothing is granted for it.
    pub fn check(&self, what: &str, address: &str) -> Result<(), BadAddress> {
        if address.is_empty() {
            return Ok(());
        }
        let not_one = |reason| BadAddress::NotOneHost {
            what: what.to_owned(),
            address: address.chars().take(100).collect(),
            reason,
        };
        if address.contains('/') {
            return Err(not_one("a network (CIDR), not an address"));
        }
        if address.contains('*') {
            return Err(not_one("a wildcard"));
        }
        let bare = address
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(address);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let class = classify(ip);
            let allowed = self
                .allow
                .iter()
                .any(|n| n.contains(&ip) || n.contains(&canonical(ip)));
            if class.is_special() && !allowed {
                return Err(BadAddress::Special {
                    what: what.to_owned(),
                    address: address.to_owned(),
                    class,
                });
            }
            return Ok(());
        }
        if address.contains(':') {
            return Err(not_one(
                "`host:port` (give the port in `port`) or a bad IPv6 address",
            ));
        }
        if address.len() > 253 {
            return Err(not_one("a host name longer than 253 characters"));
        }
        let labels_ok = address.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !labels_ok {
            return Err(not_one("not a host name (letters, digits, `-` and `.`)"));
        }
        let lower = address.trim_end_matches('.').to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") {
            let loopback = "127.0.0.1".parse::<IpAddr>().expect("an IPv4 address");
            if !self.allow.iter().any(|n| n.contains(&loopback)) {
                return Err(BadAddress::Special {
                    what: what.to_owned(),
                    address: address.to_owned(),
                    class: AddrClass::Loopback,
                });
            }
        }
        Ok(())
    }

    /// Checks the switches a task's parameters name (network actions).
    pub fn check_params(&self, params: &crate::model::ActionParams) -> Result<(), BadAddress> {
        let port = params.switch_port.as_ref().map(|p| &p.switch);
        for sw in params.switch.iter().chain(port) {
            self.check(&format!("switch {}", sw.name), &sw.address)?;
        }
        Ok(())
    }

    /// Checks a node's BMC address and, with `switches`, its switches'.
    pub fn check_node(&self, node: &crate::model::Node, switches: bool) -> Result<(), BadAddress> {
        if let Some(a) = &node.oob.address {
            self.check("BMC", a)?;
        }
        if switches {
            for port in node
                .interfaces
                .iter()
                .filter_map(|i| i.switch_port.as_ref())
            {
                self.check(
                    &format!("switch {}", port.switch.name),
                    &port.switch.address,
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ordinary_host_passes() {
        let p = NodeAddressPolicy::default();
        for ok in [
            "",
            "10.0.0.5",
            "172.16.100.15",
            "192.0.2.1",
            "8.8.8.8",
            "2001:db8::1",
            "[2001:db8::1]",
            "bmc-1.example.net",
            "bmc-1.example.net.",
        ] {
            p.check("BMC", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn networks_wildcards_and_special_addresses_are_refused() {
        let p = NodeAddressPolicy::default();
        for (bad, needle) in [
            ("0.0.0.0/0", "CIDR"),
            ("::/0", "CIDR"),
            ("10.0.0.0/8", "CIDR"),
            ("*.example.net", "wildcard"),
            ("*", "wildcard"),
            ("10.0.0.5:623", "host:port"),
            ("bmc_1", "not a host name"),
            ("a..b", "not a host name"),
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("localhost", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("169.254.10.1", "link-local"),
            ("fe80::1", "link-local"),
            ("169.254.169.254", "metadata"),
            ("[fd00:ec2::254]", "metadata"),
            ("100.100.100.200", "metadata"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
        ] {
            let e = p.check("BMC", bad).expect_err(bad).to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn the_operator_may_allow_special_ranges() {
        let p = NodeAddressPolicy::allowing(&["127.0.0.0/8", "fe80::1"]).unwrap();
        for ok in [
            "127.0.0.1",
            "127.9.9.9",
            "::ffff:127.0.0.1",
            "localhost",
            "fe80::1",
        ] {
            p.check("BMC", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert!(p.check("BMC", "fe80::2").is_err());
        assert!(p.check("BMC", "169.254.169.254").is_err());
        assert!(p.check("BMC", "127.0.0.0/8").is_err(), "never a network");
        let cfg: NodeAddressPolicy = toml::from_str("allow = [\"127.0.0.0/8\"]").unwrap();
        assert_eq!(cfg.allow.len(), 1);
        assert!(toml::from_str::<NodeAddressPolicy>("allow = [\"nope\"]").is_err());
    }
}
