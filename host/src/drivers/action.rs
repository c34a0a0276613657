//! Driver actions by their Drydock names, the interface each belongs to, and
//! Drydock's default time limits.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A driver interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interface {
    /// Out-of-band management.
    Oob,
    /// OS bootstrapper.
    Node,
    /// Switches.
    Network,
    /// Kubernetes provisioner (WIT 0.2.0 and later).
    Provisioner,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interface::Oob => "oob",
            Interface::Node => "node",
            Interface::Network => "network",
            Interface::Provisioner => "provisioner",
        })
    }
}

macro_rules! actions {
    ($( $variant:ident => $name:literal, $iface:ident, node: $node:literal, minutes: $min:literal; )*) => {
        /// A driver action, named as in Drydock (`power_cycle_node`, ...).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Action {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Action {
            /// Every action, in WIT order.
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// Drydock's name for the action.
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name,)* }
            }

            /// The interface that defines the action.
            pub fn interface(self) -> Interface {
                match self { $(Action::$variant => Interface::$iface,)* }
            }

            /// Whether the action works on one node (and so needs one).
            pub fn is_node_scoped(self) -> bool {
                match self { $(Action::$variant => $node,)* }
            }

            /// Drydock's default time limit for one call of the action.
            pub fn default_timeout(self) -> Duration {
                match self { $(Action::$variant => Duration::from_secs($min * 60),)* }
            }
        }

        impl FromStr for Action {
            type Err = UnknownAction;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Action::$variant),)*
                    _ => Err(UnknownAction(s.to_owned())),
                }
            }
        }
    };
}

// Timeouts: Drydock's where it sets one (identify 10, configure_hardware 30,
// apply_* 5, deploy 45, destroy 30 minutes; BMC power polls 18 x 10 s = 3 min),
// 5 minutes otherwise.
actions! {
    ValidateOobServices => "validate_oob_services", Oob, node: true, minutes: 5;
    ConfigNodePxe => "config_node_pxe", Oob, node: true, minutes: 3;
    SetNodeBoot => "set_node_boot", Oob, node: true, minutes: 3;
    PowerOffNode => "power_off_node", Oob, node: true, minutes: 3;
    PowerOnNode => "power_on_node", Oob, node: true, minutes: 3;
    PowerCycleNode => "power_cycle_node", Oob, node: true, minutes: 3;
    InterrogateOob => "interrogate_oob", Oob, node: true, minutes: 3;
    ValidateNodeServices => "validate_node_services", Node, node: false, minutes: 5;
    CreateNetworkTemplate => "create_network_template", Node, node: false, minutes: 5;
    CreateStorageTemplate => "create_storage_template", Node, node: false, minutes: 5;
    CreateBootMedia => "create_boot_media", Node, node: true, minutes: 5;
    ConfigureUserCredentials => "configure_user_credentials", Node, node: false, minutes: 5;
    ConfigureNodeProvisioner => "configure_node_provisioner", Node, node: false, minutes: 5;
    PrepareHardwareConfig => "prepare_hardware_config", Node, node: true, minutes: 5;
    IdentifyNode => "identify_node", Node, node: true, minutes: 10;
    ConfigureHardware => "configure_hardware", Node, node: true, minutes: 30;
    InterrogateNode => "interrogate_node", Node, node: true, minutes: 5;
    ApplyNodeNetworking => "apply_node_networking", Node, node: true, minutes: 5;
    ApplyNodeStorage => "apply_node_storage", Node, node: true, minutes: 5;
    ApplyNodePlatform => "apply_node_platform", Node, node: true, minutes: 5;
    DeployNode => "deploy_node", Node, node: true, minutes: 45;
    DestroyNode => "destroy_node", Node, node: true, minutes: 30;
    AvailableImages => "available_images", Node, node: false, minutes: 1;
    AvailableKernels => "available_kernels", Node, node: false, minutes: 1;
    ValidateNetworkServices => "validate_network_services", Network, node: false, minutes: 5;
    InterrogatePort => "interrogate_port", Network, node: true, minutes: 3;
    ConfigPortProvisioning => "config_port_provisioning", Network, node: true, minutes: 5;
    ConfigPortProduction => "config_port_production", Network, node: true, minutes: 5;
    RelabelNode => "relabel_node", Provisioner, node: true, minutes: 5;
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a driver action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown driver action `{0}`")]
pub struct UnknownAction(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            assert_eq!(a.name().parse::<Action>().unwrap(), *a);
            assert!(seen.insert(a.name()));
        }
        assert_eq!(Action::ALL.len(), 29);
        assert!("power_on".parse::<Action>().is_err());
    }

    #[test]
    fn drydock_timeouts() {
        assert_eq!(
            Action::DeployNode.default_timeout(),
            Duration::from_secs(45 * 60)
        );
        assert_eq!(
            Action::IdentifyNode.default_timeout(),
            Duration::from_secs(600)
        );
        assert_eq!(Action::PowerCycleNode.interface(), Interface::Oob);
        assert!(!Action::AvailableImages.is_node_scoped());
    }
}
