//! The drivers a running host has loaded, with their operator configuration,
//! and which one serves an action: oob drivers by the node's `oob.type`
//! (first driver claiming it wins, as in Drydock), node and network drivers
//! by configuration.
//!
//! The set is swappable: [`DriverSet::replace`] installs another version of
//! a driver atomically. Every lookup reads the current snapshot once and
//! hands back an owned [`Installed`], so a call in flight keeps the version
//! it started with while new calls get the new one.

use super::action::{Action, Interface};
use super::config::DriverConfig;
use super::runtime::Driver;
use crate::model::Node;
use std::sync::{Arc, RwLock};

/// A loaded driver and the operator's settings for it.
#[derive(Clone, Debug)]
pub struct Installed {
    /// The driver.
    pub driver: Driver,
    /// Its settings and grants.
    pub config: Arc<DriverConfig>,
}

#[derive(Clone, Debug, Default)]
struct Snapshot {
    entries: Vec<Installed>,
    node_driver: Option<String>,
    network_driver: Option<String>,
    provisioner_driver: Option<String>,
}

/// The set of loaded drivers.
#[derive(Default)]
pub struct DriverSet {
    current: RwLock<Arc<Snapshot>>,
}

impl std::fmt::Debug for DriverSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverSet")
            .field("drivers", &self.snapshot().entries)
            .finish()
    }
}

impl Clone for DriverSet {
    fn clone(&self) -> Self {
        Self {
            current: RwLock::new(self.snapshot()),
        }
    }
}

impl DriverSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().expect("driver set lock").clone()
    }

    fn edit(&mut self) -> &mut Snapshot {
        Arc::make_mut(self.current.get_mut().expect("driver set lock"))
    }

    /// Adds a driver. Two drivers with one name are refused.
    pub fn add(&mut self, driver: Driver, config: Arc<DriverConfig>) -> Result<(), String> {
        let name = driver.info().name.clone();
        if self.get(&name).is_some() {
            return Err(format!("two drivers are named `{name}`"));
        }
        self.edit().entries.push(Installed { driver, config });
        Ok(())
    }

    /// Installs `installed` in place of the driver of the same name (or adds
    /// it), atomically; returns the one it replaced. Calls already holding
    /// the old one finish on it.
    pub fn replace(&self, installed: Installed) -> Option<Installed> {
        let mut guard = self.current.write().expect("driver set lock");
        let mut next = Snapshot::clone(&guard);
        let name = installed.driver.info().name.clone();
        let old = match next
            .entries
            .iter_mut()
            .find(|e| e.driver.info().name == name)
        {
            Some(slot) => Some(std::mem::replace(slot, installed)),
            None => {
                next.entries.push(installed);
                None
            }
        };
        *guard = Arc::new(next);
        old
    }

    /// Names the driver that serves node (bootstrapper) actions.
    pub fn set_node_driver(&mut self, name: Option<String>) {
        self.edit().node_driver = name;
    }

    /// Names the driver that serves network (switch) actions.
    pub fn set_network_driver(&mut self, name: Option<String>) {
        self.edit().network_driver = name;
    }

    /// Names the driver that serves provisioner (Kubernetes) actions.
    pub fn set_provisioner_driver(&mut self, name: Option<String>) {
        self.edit().provisioner_driver = name;
    }

    /// The driver named `name`.
    pub fn get(&self, name: &str) -> Option<Installed> {
        self.snapshot().get(name).cloned()
    }

    /// Every loaded driver, in load order.
    pub fn all(&self) -> Vec<Installed> {
        self.snapshot().entries.clone()
    }

    /// The first driver claiming `oob_type`.
    pub fn for_oob_type(&self, oob_type: &str) -> Option<Installed> {
        self.snapshot().for_oob_type(oob_type).cloned()
    }

    /// The driver that serves `action` for `node` (the version current now).
    pub fn for_action(&self, action: Action, node: Option<&Node>) -> Result<Installed, String> {
        self.snapshot().for_action(action, node).cloned()
    }
}

impl Snapshot {
    fn get(&self, name: &str) -> Option<&Installed> {
        self.entries.iter().find(|e| e.driver.info().name == name)
    }

    fn for_oob_type(&self, oob_type: &str) -> Option<&Installed> {
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

    fn for_action(&self, action: Action, node: Option<&Node>) -> Result<&Installed, String> {
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
            Interface::Provisioner => {
                self.configured(Interface::Provisioner, &self.provisioner_driver)
            }
        }
    }
}
