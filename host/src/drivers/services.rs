//! What the host provides behind a driver's `host` imports: the persistent
//! key-value store, task status messages and build data.
//!
//! The runtime only sees the [`DriverServices`] trait; the task engine plugs
//! in the database, the CLI and tests use [`MemoryServices`].

use super::action::Action;
use super::kv_ledger::KvLedger;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Who a driver call is for; passed along with every callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallScope {
    /// Driver name.
    pub driver: String,
    /// Action, or none while reading the driver's `info`.
    pub action: Option<Action>,
    /// Node name, for node-scoped actions.
    pub node: Option<String>,
    /// Task the call runs for, if any.
    pub task: Option<String>,
    /// The driver's log callsites ([`crate::drivers::log_sites`]).
    pub log: &'static crate::drivers::LogSites,
}

impl CallScope {
    /// The action's name, or `info`.
    pub fn action_name(&self) -> &'static str {
        self.action.map_or("info", Action::name)
    }
}

/// A host service failed (e.g. the database is down). The guest's call fails
/// with a host error; the driver is not blamed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ServiceError(pub String);

/// A status message a driver attached to its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMessage {
    /// The call it came from.
    pub scope: CallScope,
    /// Message text.
    pub message: String,
    /// Whether it reports a failure.
    pub is_error: bool,
}

/// Build data a driver collected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildData {
    /// The call it came from.
    pub scope: CallScope,
    /// Source, e.g. `lshw`.
    pub generator: String,
    /// Media type.
    pub format: String,
    /// Content.
    pub content: String,
}

/// What a driver's key-value store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvUsage {
    /// Keys.
    pub keys: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

/// The host side of the `host` interface's stateful functions.
#[async_trait]
pub trait DriverServices: Send + Sync + 'static {
    /// Reads `key` from `driver`'s key-value store.
    async fn kv_get(&self, driver: &str, key: &str) -> Result<Option<String>, ServiceError>;
    /// What `driver`'s key-value store holds, counting writes not yet
    /// stored (a pending write may be counted as a new key: never less than
    /// the truth).
    async fn kv_usage(&self, driver: &str) -> Result<KvUsage, ServiceError>;
    /// Writes `key` in `driver`'s key-value store.
    async fn kv_set(&self, driver: &str, key: &str, value: &str) -> Result<(), ServiceError>;
    /// Deletes `key` from `driver`'s key-value store.
    async fn kv_delete(&self, driver: &str, key: &str) -> Result<(), ServiceError>;
    /// Records a status message for the call's task.
    async fn status(&self, message: StatusMessage) -> Result<(), ServiceError>;
    /// Records build data for the call's node.
    async fn build_data(&self, data: BuildData) -> Result<(), ServiceError>;
    /// The key-value usage count shared by every call writing through these
    /// services ([`KvLedger`]); without one, each call counts only its own
    /// writes from the usage it reads first.
    fn kv_ledger(&self) -> Option<Arc<KvLedger>> {
        None
    }
}

/// In-memory services: key-value pairs, messages and build data kept in the
/// process (for the CLI, tests and benchmarks).
#[derive(Debug, Default)]
pub struct MemoryServices {
    kv: Mutex<BTreeMap<(String, String), String>>,
    ledger: Arc<KvLedger>,
    messages: Mutex<Vec<StatusMessage>>,
    build_data: Mutex<Vec<BuildData>>,
}

impl MemoryServices {
    /// Empty services.
    pub fn new() -> Self {
        Self::default()
    }

    /// Services whose key-value store starts with `driver`'s pairs.
    pub fn with_kv(driver: &str, pairs: BTreeMap<String, String>) -> Self {
        let s = Self::default();
        s.kv.lock()
            .expect("kv lock")
            .extend(pairs.into_iter().map(|(k, v)| ((driver.to_owned(), k), v)));
        s
    }

    /// `driver`'s key-value pairs.
    pub fn kv_pairs(&self, driver: &str) -> BTreeMap<String, String> {
        self.kv
            .lock()
            .expect("kv lock")
            .iter()
            .filter(|((d, _), _)| d == driver)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Status messages recorded so far.
    pub fn messages(&self) -> Vec<StatusMessage> {
        self.messages.lock().expect("messages lock").clone()
    }

    /// Build data recorded so far.
    pub fn build_data(&self) -> Vec<BuildData> {
        self.build_data.lock().expect("build data lock").clone()
    }
}

#[async_trait]
impl DriverServices for MemoryServices {
    async fn kv_get(&self, driver: &str, key: &str) -> Result<Option<String>, ServiceError> {
        let kv = self.kv.lock().expect("kv lock");
        Ok(kv.get(&(driver.to_owned(), key.to_owned())).cloned())
    }

    async fn kv_usage(&self, driver: &str) -> Result<KvUsage, ServiceError> {
        let kv = self.kv.lock().expect("kv lock");
        let mut usage = KvUsage::default();
        for ((d, k), v) in kv.iter() {
            if d == driver {
                usage.keys += 1;
                usage.bytes += (k.len() + v.len()) as u64;
            }
        }
        Ok(usage)
    }

    async fn kv_set(&self, driver: &str, key: &str, value: &str) -> Result<(), ServiceError> {
        let mut kv = self.kv.lock().expect("kv lock");
        kv.insert((driver.to_owned(), key.to_owned()), value.to_owned());
        Ok(())
    }

    async fn kv_delete(&self, driver: &str, key: &str) -> Result<(), ServiceError> {
        let mut kv = self.kv.lock().expect("kv lock");
        kv.remove(&(driver.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn status(&self, message: StatusMessage) -> Result<(), ServiceError> {
        self.messages.lock().expect("messages lock").push(message);
        Ok(())
    }

    async fn build_data(&self, data: BuildData) -> Result<(), ServiceError> {
        self.build_data.lock().expect("build data lock").push(data);
        Ok(())
    }

    fn kv_ledger(&self) -> Option<Arc<KvLedger>> {
        Some(self.ledger.clone())
    }
}
