//! Which IP addresses are special: the one list of loopback, link-local,
//! cloud-metadata, private and other non-public ranges, shared by every
//! place that decides whether the host may contact an address — driver
//! egress, the host's own fetches (design references, boot-action
//! locations) and the addresses accepted for a node's BMC or switch.
//!
//! IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
//! IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`,
//! 6to4 `2002::/16`) are judged as the IPv4 address they carry, so an
//! IPv6 rule can never reach, say, IPv4 loopback through
//! `[::ffff:127.0.0.1]`. Use [`canonical`] before matching an address
//! against a grant, and [`classify`] to know what kind of address it is.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP is, most specific first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrClass {
    /// A cloud provider's instance-metadata or platform endpoint
    /// (169.254.169.254, fd00:ec2::254, 169.254.170.2, 100.100.100.200,
    /// 168.63.129.16, ...).
    Metadata,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 0.0.0.0/8 ("this network", including 0.0.0.0) and `::`.
    Unspecified,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255 and 240.0.0.0/4 (reserved for future use).
    Reserved,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT),
    /// 198.18/15 (benchmarking), fc00::/7 (unique local).
    Private,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32.
    Documentation,
    /// Everything else.
    Public,
}

impl AddrClass {
    /// Whether this class is refused by default wherever the host or a
    /// driver contacts an address an outsider chose (everything but
    /// [`AddrClass::Public`], [`AddrClass::Private`] and
    /// [`AddrClass::Documentation`]: private ranges are where BMCs and
    /// switches live, and documentation ranges route nowhere).
    pub fn is_special(self) -> bool {
        !matches!(
            self,
            AddrClass::Public | AddrClass::Private | AddrClass::Documentation
        )
    }

    /// A short name for messages ("loopback", "cloud metadata", ...).
    pub fn name(self) -> &'static str {
        match self {
            AddrClass::Metadata => "cloud metadata",
            AddrClass::Loopback => "loopback",
            AddrClass::Unspecified => "unspecified",
            AddrClass::LinkLocal => "link-local",
            AddrClass::Multicast => "multicast",
            AddrClass::Reserved => "reserved",
            AddrClass::Private => "private",
            AddrClass::Documentation => "documentation",
            AddrClass::Public => "public",
        }
    }
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Cloud metadata and platform endpoints reached over IPv4.
const METADATA_V4: &[[u8; 4]] = &[
    [169, 254, 169, 254], // AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
    [169, 254, 170, 2],   // AWS ECS task metadata
    [169, 254, 169, 123], // AWS time sync
    [169, 254, 169, 250], // AWS DNS resolver
    [169, 254, 169, 253], // AWS DNS resolver
    [100, 100, 100, 200], // Alibaba Cloud
    [168, 63, 129, 16],   // Azure wire server
    [192, 0, 0, 192],     // Oracle Cloud (legacy)
];

/// Cloud metadata and platform endpoints reached over IPv6.
const METADATA_V6: &[Ipv6Addr] = &[
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), // AWS IMDS
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),  // AWS ECS / time sync
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x123), // AWS time sync
];

/// The IPv4 address an IPv6 address carries, if it is one of the forms that
/// reach IPv4 hosts (mapped, compatible, NAT64 well-known and local-use
/// prefixes, 6to4).
pub fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks);
    // `::` and `::1` are IPv6's own unspecified and loopback.
    if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
        return Some(tail(s[6], s[7]));
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail(s[6], s[7]));
    }
    // NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215): the IPv4 address
    // sits in the low 32 bits with the /96 layout used by translators.
    if s[..3] == [0x64, 0xff9b, 1] {
        return Some(tail(s[6], s[7]));
    }
    // 6to4 2002:AABB:CCDD::/48.
    if s[0] == 0x2002 {
        return Some(tail(s[1], s[2]));
    }
    None
}

/// The address as it is judged: an IPv6 address carrying an IPv4 address
/// becomes that IPv4 address; everything else is unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// What kind of address `ip` is (after [`canonical`]).
pub fn classify(ip: IpAddr) -> AddrClass {
    match canonical(ip) {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => classify_v6(a),
    }
}

fn classify_v4(a: Ipv4Addr) -> AddrClass {
    let o = a.octets();
    if METADATA_V4.contains(&o) {
        AddrClass::Metadata
    } else if o[0] == 127 {
        AddrClass::Loopback
    } else if o[0] == 0 {
        AddrClass::Unspecified
    } else if o[0] == 169 && o[1] == 254 {
        AddrClass::LinkLocal
    } else if (224..=239).contains(&o[0]) {
        AddrClass::Multicast
    } else if o[0] >= 240 {
        AddrClass::Reserved
    } else if o[0] == 10
        || (o[0] == 172 && (16..=31).contains(&o[1]))
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 100 && (64..=127).contains(&o[1]))
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
    {
        AddrClass::Private
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 2)
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
    {
        AddrClass::Documentation
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        // IETF protocol assignments (192.0.0.0/24), incl. DS-Lite and NAT64
        // discovery addresses.
        AddrClass::Reserved
    } else {
        AddrClass::Public
    }
}

fn classify_v6(a: Ipv6Addr) -> AddrClass {
    let s = a.segments();
    if METADATA_V6.contains(&a) {
        AddrClass::Metadata
    } else if a.is_loopback() {
        AddrClass::Loopback
    } else if a.is_unspecified() {
        AddrClass::Unspecified
    } else if (s[0] & 0xffc0) == 0xfe80 {
        AddrClass::LinkLocal
    } else if a.is_multicast() {
        AddrClass::Multicast
    } else if (s[0] & 0xfe00) == 0xfc00 {
        AddrClass::Private
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        AddrClass::Documentation
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo (2001::/32) tunnels to arbitrary IPv4 hosts.
        AddrClass::Reserved
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        // Discard-only 100::/64.
        AddrClass::Reserved
    } else {
        AddrClass::Public
    }
}

/// The class name if `ip` is special (see [`AddrClass::is_special`]).
pub fn special(ip: IpAddr) -> Option<&'static str> {
    let class = classify(ip);
    class.is_special().then(|| class.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddrClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn ipv4_classes() {
        for (ip, want) in [
            ("169.254.169.254", AddrClass::Metadata),
            ("169.254.170.2", AddrClass::Metadata),
            ("100.100.100.200", AddrClass::Metadata),
            ("168.63.129.16", AddrClass::Metadata),
            ("127.0.0.1", AddrClass::Loopback),
            ("127.255.0.9", AddrClass::Loopback),
            ("0.0.0.0", AddrClass::Unspecified),
            ("0.1.2.3", AddrClass::Unspecified),
            ("169.254.1.1", AddrClass::LinkLocal),
            ("224.0.0.1", AddrClass::Multicast),
            ("255.255.255.255", AddrClass::Reserved),
            ("240.0.0.1", AddrClass::Reserved),
            ("10.0.0.1", AddrClass::Private),
            ("172.20.1.1", AddrClass::Private),
            ("192.168.1.1", AddrClass::Private),
            ("100.64.0.1", AddrClass::Private),
            ("192.0.2.10", AddrClass::Documentation),
            ("8.8.8.8", AddrClass::Public),
            ("172.32.0.1", AddrClass::Public),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_ipv4_are_judged_as_ipv4() {
        for ip in [
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::7f00:1",
            "2002:7f00:1::1",
        ] {
            assert_eq!(class(ip), AddrClass::Loopback, "{ip}");
        }
        assert_eq!(class("::ffff:169.254.169.254"), AddrClass::Metadata);
        assert_eq!(class("64:ff9b::a9fe:a9fe"), AddrClass::Metadata);
        assert_eq!(class("::ffff:0.0.0.0"), AddrClass::Unspecified);
        assert_eq!(class("::ffff:10.1.2.3"), AddrClass::Private);
        assert_eq!(
            canonical("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_classes() {
        for (ip, want) in [
            ("::1", AddrClass::Loopback),
            ("::", AddrClass::Unspecified),
            ("fe80::1", AddrClass::LinkLocal),
            ("ff02::1", AddrClass::Multicast),
            ("fd00:ec2::254", AddrClass::Metadata),
            ("fd12:3456::1", AddrClass::Private),
            ("2001:db8::1", AddrClass::Documentation),
            ("2001:0:4136:e378::1", AddrClass::Reserved),
            ("2606:4700::1111", AddrClass::Public),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn special_is_everything_but_public_private_and_documentation() {
        assert!(special("8.8.8.8".parse().unwrap()).is_none());
        assert!(special("10.0.0.1".parse().unwrap()).is_none());
        assert_eq!(special("::ffff:127.0.0.1".parse().unwrap()), Some("loopback"));
    }
}
