//! The drivers a running host has loaded, with their operator configuration,
//! and which one serves an action: oob drivers by the node's `oob.type`
//! (first driver claiming it wins, as in Drydock), node and network drivers
//! by configuration.

use super::action::{Action, Interface};
use super::config::DriverConfig;
use super::runtime::Driver;
use crate::model::Node;
use std::sync::Arc;

/// A loaded driver and the operator's settings for it.
#[derive(Clone, Debug)]
pub struct Installed {
    /// The driver.
    pub driver: Driver,
    /// Its settings and grants.
    pub config: Arc<DriverConfig>,
}

/// The set of loaded drivers.
#[derive(Clone, Debug, Default)]
pub struct DriverSet {
    entries: Vec<Installed>,
    node_driver: Option<String>,
    network_driver: Option<String>,
}

impl DriverSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a driver. Two drivers with one name are refused.
    pub fn add(&mut self, driver: Driver, config: Arc<DriverConfig>) -> Result<(), String> {
        let name = &driver.info().name;
        if self.get(name).is_some() {
            return Err(format!("two drivers are named `{name}`"));
        }
        self.entries.push(Installed { driver, config });
        Ok(())
    }

    /// Names the driver that serves node (bootstrapper) actions.
    pub fn set_node_driver(&mut self, name: Option<String>) {
        self.node_driver = name;
    }

    /// Names the driver that serves network (switch) actions.
    pub fn set_network_driver(&mut self, name: Option<String>) {
        self.network_driver = name;
    }

    /// The driver named `name`.
    pub fn get(&self, name: &str) -> Option<&Installed> {
        self.entries.iter().find(|e| e.driver.info().name == name)
    }

    /// Every loaded driver, in load order.
    pub fn all(&self) -> &[Installed] {
        &self.entries
    }

    /// The first driver claiming `oob_type`.
    pub fn for_oob_type(&self, oob_type: &str) -> Option<&Installed> {
        self.entries.iter().find(|e| {
            e.driver.info().interfaces.contains(&Interface::Oob)
                && e.driver.info().oob_types.iter().any(|t| t == oob_type)
        })
    }

    fn configured(&self, iface: Interface, name: &Option<String>) -> Result<&Installed, String> {
        match name {
            Some(name) => self
                .get(name)
                .filter(|e| e.driver.info().interfaces.contains(&iface))
                .ok_or_else(|| format!("the configured {iface} driver `{name}` is not loaded")),
            None => {
                let mut it = self
                    .entries
                    .iter()
                    .filter(|e| e.driver.info().interfaces.contains(&iface));
                match (it.next(), it.next()) {
                    (Some(one), None) => Ok(one),
                    (None, _) => Err(format!("no loaded driver implements the {iface} interface")),
                    (Some(_), Some(_)) => Err(format!(
                        "several drivers implement the {iface} interface; name one in the configuration"
                    )),
                }
            }
        }
    }

    /// The driver that serves `action` for `node`.
    pub fn for_action(&self, action: Action, node: Option<&Node>) -> Result<&Installed, String> {
        match action.interface() {
            Interface::Oob => {
                let node = node.ok_or("an oob action needs a node")?;
                let t = &node.oob.oob_type;
                if t.is_empty() {
                    return Err(format!("node {} has no oob type", node.name));
                }
                self.for_oob_type(t).ok_or_else(|| {
                    format!(
                        "no loaded driver claims oob type `{t}` (node {})",
                        node.name
                    )
                })
            }
            Interface::Node => self.configured(Interface::Node, &self.node_driver),
            Interface::Network => self.configured(Interface::Network, &self.network_driver),
        }
    }
}
