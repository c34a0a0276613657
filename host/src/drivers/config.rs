//! Operator settings: per-driver configuration and grants, and the runtime's
//! global limits.

use super::egress::{EgressGrant, TlsSettings};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Default memory a driver call may use.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;

/// What the operator configured and granted for one driver.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Plain settings the driver reads with `config-get` (never secrets).
    pub settings: BTreeMap<String, String>,
    /// Hosts the driver may reach (besides a node's BMC on oob calls),
    /// parsed once and shared by every call (`vec![...].into()`).
    pub egress: Arc<[EgressGrant]>,
    /// Memory one call may use, in bytes (capped by the runtime's ceiling).
    pub memory_bytes: usize,
    /// Longest a single call may run, whatever the action's own timeout.
    pub max_call_time: Option<Duration>,
    /// TLS roots for outbound HTTPS: public roots by default, plus a private
    /// CA with `TlsSettings::with_extra_roots`; `TlsSettings::insecure_skip_verify`
    /// turns verification off (logged as a warning on every connection).
    pub tls: TlsSettings,
    /// Secrets granted to this driver, by name (read with `secret-get`).
    /// Never logged: `Debug` prints only the names.
    pub secrets: GrantedSecrets,
}

/// Secret values by name (granted to a driver, or the config file's
/// `[secrets]` table). `Debug` shows names only.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct GrantedSecrets(BTreeMap<String, String>);

impl GrantedSecrets {
    /// Grants `name` with `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// The value of `name`, if granted.
    pub fn get(&self, name: &str) -> Option<&String> {
        self.0.get(name)
    }

    /// Names of the granted secrets.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for GrantedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            settings: BTreeMap::new(),
            egress: Arc::from([]),
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_call_time: None,
            tls: TlsSettings::default(),
            secrets: GrantedSecrets::default(),
        }
    }
}

/// Global settings of the driver runtime.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Instances that may run at once (the pooling allocator's size, and the
    /// semaphore in front of it).
    pub max_concurrent_calls: u32,
    /// Ceiling on any one instance's linear memory.
    pub max_memory_bytes: usize,
    /// Epoch tick (granularity of deadline enforcement).
    pub epoch_tick: Duration,
    /// Use the pooling allocator (falls back to on-demand when the address
    /// space cannot be reserved).
    pub pooling: bool,
    /// Quotas every driver call is held to.
    pub limits: super::limits::DriverLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 100,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(10),
            pooling: true,
            limits: super::limits::DriverLimits::default(),
        }
    }
}
