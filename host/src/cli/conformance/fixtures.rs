//! What the kit calls a driver with: the node, the parameters of each
//! action, the order actions run in, and which actions change nothing.

use crate::drivers::{Action, Interface};
use crate::model::{self, ActionParams, PortMode, PortVlans};

/// Every action of `interface`, in the order Drydock's orchestrator reaches
/// them (so a bootstrapper sees a node identified before it is deployed).
pub fn order(interface: Interface) -> &'static [Action] {
    use Action as A;
    match interface {
        Interface::Oob => &[
            A::ValidateOobServices,
            A::InterrogateOob,
            A::SetNodeBoot,
            A::ConfigNodePxe,
            A::PowerOffNode,
            A::PowerOnNode,
            A::PowerCycleNode,
        ],
        Interface::Node => &[
            A::ValidateNodeServices,
            A::AvailableImages,
            A::AvailableKernels,
            A::CreateNetworkTemplate,
            A::CreateStorageTemplate,
            A::ConfigureUserCredentials,
            A::ConfigureNodeProvisioner,
            A::CreateBootMedia,
            A::PrepareHardwareConfig,
            A::IdentifyNode,
            A::ConfigureHardware,
            A::InterrogateNode,
            A::ApplyNodeNetworking,
            A::ApplyNodeStorage,
            A::ApplyNodePlatform,
            A::DeployNode,
            A::DestroyNode,
        ],
        Interface::Network => &[
            A::ValidateNetworkServices,
            A::InterrogatePort,
            A::ConfigPortProvisioning,
            A::ConfigPortProduction,
        ],
        Interface::Provisioner => &[A::RelabelNode],
    }
}

/// Actions that only read: the ones run against recorded, read-only trees.
pub fn is_read_only(action: Action) -> bool {
    use Action as A;
    matches!(
        action,
        A::ValidateOobServices
            | A::InterrogateOob
            | A::ValidateNodeServices
            | A::AvailableImages
            | A::AvailableKernels
            | A::IdentifyNode
            | A::InterrogateNode
            | A::ValidateNetworkServices
            | A::InterrogatePort
    )
}

/// The action whose answer is the interface's observable state, read after
/// each run to compare them.
pub fn observer(interface: Interface) -> Action {
    match interface {
        Interface::Oob => Action::InterrogateOob,
        Interface::Node => Action::InterrogateNode,
        Interface::Network => Action::InterrogatePort,
        // Nothing reads a node's labels back: relabelling again with the
        // same labels must answer the same.
        Interface::Provisioner => Action::RelabelNode,
    }
}

/// The cheap call that reaches the device: used for the error checks.
pub fn probes(interface: Interface) -> [Action; 2] {
    match interface {
        Interface::Oob => [Action::ValidateOobServices, Action::InterrogateOob],
        Interface::Node => [Action::ValidateNodeServices, Action::AvailableImages],
        Interface::Network => [Action::ValidateNetworkServices, Action::InterrogatePort],
        Interface::Provisioner => [Action::RelabelNode, Action::RelabelNode],
    }
}

/// Where the device is, as a node and its switch see it.
#[derive(Clone, Debug)]
pub struct Target {
    /// `host:port` of the device (or of the kit's endpoint in front of it).
    pub authority: Option<String>,
    /// Credentials for the BMC and the switch.
    pub credentials: Option<model::Credentials>,
}

/// The node the kit acts on: `base` (from `--node`, or a default one) with
/// its BMC and its switch pointed at `target`.
pub fn node(base: &model::Node, oob_type: &str, target: &Target, port: &str) -> model::Node {
    let mut node = base.clone();
    if node.name.is_empty() {
        node.name = "conformance-node".into();
    }
    if node.oob.oob_type.is_empty() {
        node.oob.oob_type = oob_type.to_owned();
    }
    let (host, tcp_port) = split(target.authority.as_deref());
    if let Some(host) = &host {
        node.oob.address = Some(host.clone());
        node.oob.port = tcp_port;
    }
    node.oob.credentials = target.credentials.clone();
    if node.interfaces.is_empty() {
        node.interfaces.push(model::Interface {
            name: "eth0".into(),
            mac: Some("52:54:00:00:00:01".into()),
            ..Default::default()
        });
    }
    if node.boot_mac.is_none() {
        node.boot_mac = node.interfaces[0].mac.clone();
    }
    let switch = model::Switch {
        name: "conformance-switch".into(),
        address: host.unwrap_or_else(|| "192.0.2.1".into()),
        port: tcp_port,
        credentials: target.credentials.clone(),
        ..Default::default()
    };
    let first = &mut node.interfaces[0];
    let mut switch_port = first.switch_port.clone().unwrap_or(model::SwitchPort {
        switch: switch.clone(),
        port: port.to_owned(),
        provisioning: None,
        production: None,
    });
    switch_port.switch = model::Switch {
        name: switch_port.switch.name.clone(),
        ..switch
    };
    first.switch_port = Some(switch_port);
    node
}

/// `host` and `port` of `host:port` (brackets kept off an IPv6 host).
fn split(authority: Option<&str>) -> (Option<String>, Option<u16>) {
    let Some(a) = authority else {
        return (None, None);
    };
    match a.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (
            Some(h.trim_start_matches('[').trim_end_matches(']').to_owned()),
            p.parse().ok(),
        ),
        _ => (Some(a.to_owned()), None),
    }
}

/// The parameters of `action` for `node`; `image` is what
/// `available_images` answered first, if anything.
pub fn params(action: Action, node: &model::Node, image: Option<&str>) -> ActionParams {
    let mut p = ActionParams::default();
    let port = node.interfaces.iter().find_map(|i| i.switch_port.clone());
    match action {
        Action::SetNodeBoot => {
            p.boot = Some(model::BootTarget {
                device: model::BootDevice::Pxe,
                persistent: false,
            });
        }
        Action::CreateNetworkTemplate | Action::ApplyNodeNetworking => {
            p.site = Some(model::SiteNetworks::default());
        }
        Action::ConfigureUserCredentials => {
            p.ssh_keys = vec![
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRyeWRvY2tjb25mb3JtYW5jZWtleTAwMDAw kit"
                    .into(),
            ];
        }
        Action::DeployNode => p.user_data = Some("#cloud-config\n{}\n".into()),
        Action::AvailableKernels => {
            p.image = Some(
                image
                    .map(str::to_owned)
                    .or_else(|| node.platform.image.clone())
                    .unwrap_or_else(|| "noble".into()),
            );
        }
        Action::ValidateNetworkServices => p.switch = port.as_ref().map(|p| p.switch.clone()),
        Action::InterrogatePort => p.switch_port = port,
        Action::ConfigPortProvisioning => {
            p.switch_port = port;
            p.vlans = Some(PortVlans {
                mode: PortMode::Access,
                access_vlan: Some(100),
                native_vlan: None,
                allowed_vlans: Vec::new(),
            });
        }
        Action::ConfigPortProduction => {
            p.switch_port = port;
            p.vlans = Some(PortVlans {
                mode: PortMode::Trunk,
                access_vlan: None,
                native_vlan: Some(100),
                allowed_vlans: vec![100, 200],
            });
        }
        _ => {}
    }
    p
}

/// A wrong secret of the same shape: every letter and digit moved one on
/// (`calvin` → `dbmwjo`, `a:b:c` → `b:c:d`), so a parser still accepts it
/// and only the device can tell.
pub fn wrong(secret: &str) -> String {
    secret
        .chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            c if c.is_ascii_alphanumeric() => char::from(c as u8 + 1),
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_secrets_keep_their_shape() {
        assert_eq!(wrong("calvin"), "dbmwjo");
        assert_eq!(wrong("a:Z:9"), "b:A:0");
        assert_ne!(wrong("password"), "password");
    }

    #[test]
    fn nodes_point_at_the_target() {
        let target = Target {
            authority: Some("127.0.0.1:8123".into()),
            credentials: None,
        };
        let n = node(&model::Node::default(), "redfish", &target, "Ethernet7");
        assert_eq!(n.name, "conformance-node");
        assert_eq!(n.oob.oob_type, "redfish");
        assert_eq!(n.oob.address.as_deref(), Some("127.0.0.1"));
        assert_eq!(n.oob.port, Some(8123));
        let sp = n.interfaces[0].switch_port.as_ref().unwrap();
        assert_eq!(
            (sp.switch.address.as_str(), sp.switch.port),
            ("127.0.0.1", Some(8123))
        );
        assert_eq!(sp.port, "Ethernet7");
        let p = params(Action::ConfigPortProvisioning, &n, None);
        assert_eq!(p.switch_port.unwrap().port, "Ethernet7");
        assert!(
            order(Interface::Oob)
                .iter()
                .all(|a| a.interface() == Interface::Oob)
        );
        assert!(
            order(Interface::Node).len()
                + order(Interface::Oob).len()
                + order(Interface::Network).len()
                + order(Interface::Provisioner).len()
                == Action::ALL.len()
        );
    }
}
