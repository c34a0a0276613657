//! `drydock serve` configuration: a TOML file, then environment overrides.
//!
//! ```toml
//! listen = "127.0.0.1:9000"
//! data_dir = ".drydock"              # SQLite file, compile cache, instance id
//! database_url = "postgres://postgres@127.0.0.1/drydock"   # default: SQLite in data_dir
//! drivers_dir = "/var/lib/drydock/drivers"                  # extra *.wasm drivers
//! node_driver = "sim"                # which driver serves node actions
//! network_driver = "sim"             # which driver serves switch actions
//!
//! [[tokens]]
//! name = "shipyard"
//! role = "operator"                  # viewer | operator | admin
//! token_env = "SHIPYARD_TOKEN"       # or: token = "..."
//!
//! [limits]
//! max_concurrent_calls = 100         # sandboxes at once
//! max_concurrency = 256              # driver calls in flight
//! per_bmc = 4                        # calls in flight per BMC address
//! max_attempts = 3                   # attempts for retryable failures
//! write_queue = 4096                 # results, messages and key-value writes waiting for the database
//!
//! [driver_limits]                    # quotas on drivers (see drivers::limits::DriverLimits)
//! kv_keys = 10000                    # keys per driver
//! messages_per_call = 1000           # task messages per call
//!
//! [drivers.sim]
//! settings = { delay_ms = "0" }
//! egress = ["10.0.0.0/8:443"]
//! memory_mib = 64
//! ```
//!
//! Environment overrides: `DRYDOCK_LISTEN`, `DRYDOCK_DATA_DIR`,
//! `DRYDOCK_DATABASE_URL`, `DRYDOCK_DRIVERS_DIR`, `DRYDOCK_INSTANCE_ID`,
//! `DRYDOCK_TOKENS` (`name:role:token,...`), `DRYDOCK_MAX_CONCURRENCY`.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A bearer token as configured.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (shown in logs and as `created_by`).
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// The token itself.
    #[serde(default)]
    pub token: Option<String>,
    /// An environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Engine and runtime limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Sandboxes that may run at once.
    pub max_concurrent_calls: u32,
    /// Driver calls in flight on this instance.
    pub max_concurrency: usize,
    /// Driver calls in flight per BMC address.
    pub per_bmc: usize,
    /// Attempts for retryable failures.
    pub max_attempts: u32,
    /// Results, task messages and driver key-value writes that may wait for
    /// the database at once; past it, drivers and tasks wait (memory stays
    /// bounded however fast drivers write).
    pub write_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 100,
            max_concurrency: 256,
            per_bmc: 4,
            max_attempts: 3,
            write_queue: 4096,
        }
    }
}

/// Leader lease timing (several instances on one Postgres). The defaults
/// give a failover of about two seconds.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderSettings {
    /// How long the lease lasts without renewal, in ms.
    pub lease_ms: u64,
    /// How often every instance beats and renews or tries the lease, in ms.
    pub renew_ms: u64,
    /// How old a heartbeat makes an instance dead, in ms.
    pub dead_after_ms: u64,
}

impl Default for LeaderSettings {
    fn default() -> Self {
        Self {
            lease_ms: 2000,
            renew_ms: 400,
            dead_after_ms: 2000,
        }
    }
}

impl LeaderSettings {
    /// Checks the timings make sense together.
    pub fn check(&self) -> Result<()> {
        if self.renew_ms == 0 || self.renew_ms * 2 > self.lease_ms {
            bail!(
                "leader.renew_ms ({}) must be positive and at most half of leader.lease_ms ({})",
                self.renew_ms,
                self.lease_ms
            );
        }
        if self.dead_after_ms < self.renew_ms * 2 {
            bail!(
                "leader.dead_after_ms ({}) must be at least twice leader.renew_ms ({})",
                self.dead_after_ms,
                self.renew_ms
            );
        }
        Ok(())
    }
}

/// Settings and grants for one driver.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriverSettings {
    /// Plain settings the driver reads.
    pub settings: BTreeMap<String, String>,
    /// Outbound grants (`host`, `host:port`, `ip`, `cidr`, `cidr:port`).
    pub egress: Vec<String>,
    /// Memory per call in MiB.
    pub memory_mib: Option<usize>,
    /// Longest a call may run, in seconds.
    pub max_call_secs: Option<u64>,
    /// PEM file of CA certificates to trust for HTTPS.
    pub ca_file: Option<PathBuf>,
    /// Names of secrets the driver may read (`secret-get`), resolved at
    /// start from the `[secrets]` table or `DRYDOCK_SECRET_<NAME>`.
    pub secrets: Vec<String>,
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// The URL deployed nodes reach this service at (default
    /// `http://<listen>`): their boot actions are fetched from and reported
    /// to `<public_url>/api/v1.0/bootactions/`.
    pub public_url: Option<String>,
    /// Minutes deploy_nodes waits for nodes' boot action reports (Drydock's
    /// 15).
    pub boot_action_timeout_min: u64,
    /// Directory for the SQLite database, compile cache and instance id.
    pub data_dir: PathBuf,
    /// Database URL; SQLite in `data_dir` when unset.
    pub database_url: Option<String>,
    /// Directory of extra driver components (`*.wasm`).
    pub drivers_dir: Option<PathBuf>,
    /// Load the drivers built into the binary (default true).
    pub bundled_drivers: bool,
    /// This instance's id; persisted in `data_dir` when unset.
    pub instance_id: Option<String>,
    /// Driver serving node actions.
    pub node_driver: Option<String>,
    /// Driver serving network actions.
    pub network_driver: Option<String>,
    /// API tokens.
    pub tokens: Vec<TokenConfig>,
    /// Limits.
    pub limits: Limits,
    /// Quotas on drivers: key-value state, task messages, log lines, build
    /// data, outgoing connections, error text.
    pub driver_limits: crate::drivers::DriverLimits,
    /// Per-driver settings, by driver name.
    pub drivers: BTreeMap<String, DriverSettings>,
    /// Directory `file:` design references are read from (nothing outside
    /// it can be named). Default `examples` (the bundled sample site),
    /// ignored when it does not exist.
    pub design_dir: Option<PathBuf>,
    /// Secrets by name (BMC and switch passwords, driver API keys). Prefer
    /// `DRYDOCK_SECRET_<NAME>` variables or the database over this table.
    pub secrets: crate::drivers::GrantedSecrets,
    /// Leader lease timing.
    pub leader: LeaderSettings,
    /// Installed drivers: trusted vendor keys, development mode, polling.
    pub driver_store: DriverStoreSettings,
}

/// `[driver_store]`: who may sign installed drivers and how instances learn
/// about activations.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriverStoreSettings {
    /// Trusted vendor keys, `VENDOR:HEXPUBLICKEY:DRIVER[,DRIVER...]` (the
    /// key from `drydock driver keygen`, then the driver names it may sign;
    /// `*` for any name). A package named `maas` signed by a key not bound
    /// to `maas` is refused, at install, when a stored version loads, and in
    /// `drivers_dir`. The older `VENDOR:HEXPUBLICKEY` form is refused.
    pub trusted_keys: Vec<String>,
    /// Development only: install unsigned components, and load unsigned
    /// ones from `drivers_dir` (otherwise they must be signed by a trusted
    /// key).
    pub allow_unsigned: bool,
    /// Development only (with `allow_unsigned`): a directory whose new or
    /// changed `*.wasm` files are installed and activated.
    pub dev_dir: Option<PathBuf>,
    /// How often each instance polls the active versions, ms.
    pub poll_ms: u64,
    /// Run a new version's validate actions before activating it.
    pub validate: bool,
    /// First calls of a newly activated version to watch (0: none) ...
    pub watch_calls: u64,
    /// ... rolling back by itself when more than this share failed.
    pub max_error_ratio: f64,
    /// Seconds a loaded version that is neither active nor previous stays
    /// loaded after its last use.
    pub warm_grace_s: u64,
}

impl Default for DriverStoreSettings {
    fn default() -> Self {
        Self {
            trusted_keys: Vec::new(),
            allow_unsigned: false,
            dev_dir: None,
            poll_ms: 1000,
            validate: true,
            watch_calls: 20,
            max_error_ratio: 0.5,
            warm_grace_s: 600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9000".parse().expect("valid default address"),
            public_url: None,
            boot_action_timeout_min: 15,
            data_dir: PathBuf::from(".drydock"),
            database_url: None,
            drivers_dir: None,
            bundled_drivers: true,
            instance_id: None,
            node_driver: None,
            network_driver: None,
            tokens: Vec::new(),
            limits: Limits::default(),
            driver_limits: Default::default(),
            drivers: BTreeMap::new(),
            design_dir: Some(PathBuf::from("examples")),
            secrets: Default::default(),
            leader: LeaderSettings::default(),
            driver_store: DriverStoreSettings::default(),
        }
    }
}

impl Config {
    /// Reads `path` (if given), then applies environment overrides.
    pub fn load(path: Option<&std::path::Path>) -> Result<Config> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing config {}", p.display()))?
            }
            None => Config::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.leader.check()?;
        Ok(cfg)
    }

    /// Applies `DRYDOCK_*` overrides read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = get("DRYDOCK_LISTEN") {
            self.listen = v
                .parse()
                .with_context(|| format!("DRYDOCK_LISTEN `{v}` is not HOST:PORT"))?;
        }
        if let Some(v) = get("DRYDOCK_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("DRYDOCK_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("DRYDOCK_DRIVERS_DIR") {
            self.drivers_dir = Some(v.into());
        }
        if let Some(v) = get("DRYDOCK_DESIGN_DIR") {
            self.design_dir = Some(v.into());
        }
        if let Some(v) = get("DRYDOCK_INSTANCE_ID") {
            self.instance_id = Some(v);
        }
        if let Some(v) = get("DRYDOCK_MAX_CONCURRENCY") {
            self.limits.max_concurrency = v
                .parse()
                .with_context(|| format!("DRYDOCK_MAX_CONCURRENCY `{v}` is not a number"))?;
        }
        if let Some(v) = get("DRYDOCK_TRUSTED_KEYS") {
            // Entries separated by `;` or spaces (a key's names use `,`).
            self.driver_store.trusted_keys.extend(
                v.split(|c: char| c == ';' || c.is_whitespace())
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned),
            );
        }
        if let Some(v) = get("DRYDOCK_ALLOW_UNSIGNED_DRIVERS") {
            self.driver_store.allow_unsigned = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = get("DRYDOCK_DRIVER_POLL_MS") {
            self.driver_store.poll_ms = v
                .parse()
                .with_context(|| format!("DRYDOCK_DRIVER_POLL_MS `{v}` is not a number"))?;
        }
        if let Some(v) = get("DRYDOCK_TOKENS") {
            for entry in v.split(',').filter(|e| !e.trim().is_empty()) {
                let mut parts = entry.trim().splitn(3, ':');
                let (Some(name), Some(role), Some(token)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    bail!("DRYDOCK_TOKENS entries must be NAME:ROLE:TOKEN");
                };
                self.tokens.push(TokenConfig {
                    name: name.into(),
                    role: role.into(),
                    token: Some(token.into()),
                    token_env: None,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_env() {
        let mut cfg: Config = toml::from_str(
            r#"
            listen = "0.0.0.0:9100"
            node_driver = "sim"
            [[tokens]]
            name = "ops"
            role = "operator"
            token = "t1"
            [limits]
            per_bmc = 2
            [drivers.sim]
            settings = { delay_ms = "5" }
            egress = ["10.0.0.0/8"]
            "#,
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 9100);
        assert_eq!(cfg.limits.per_bmc, 2);
        assert_eq!(cfg.limits.max_attempts, 3);
        assert_eq!(cfg.drivers["sim"].settings["delay_ms"], "5");
        let env: BTreeMap<&str, &str> = [
            ("DRYDOCK_DATABASE_URL", "postgres://x"),
            ("DRYDOCK_TOKENS", "a:admin:s3cret,v:viewer:v1"),
        ]
        .into();
        cfg.apply_env(|k| env.get(k).map(|v| v.to_string()))
            .unwrap();
        assert_eq!(cfg.database_url.as_deref(), Some("postgres://x"));
        assert_eq!(cfg.tokens.len(), 3);
        assert!(!format!("{cfg:?}").contains("s3cret"));
        assert!(toml::from_str::<Config>("listne = 1").is_err());
        let store: Config = toml::from_str(
            "[driver_store]\ntrusted_keys = [\"acme:00\"]\nallow_unsigned = true\nwatch_calls = 0\n",
        )
        .unwrap();
        assert_eq!(store.driver_store.trusted_keys, ["acme:00"]);
        assert!(store.driver_store.allow_unsigned && store.driver_store.validate);
        assert_eq!(store.driver_store.watch_calls, 0);
        assert_eq!(store.driver_store.poll_ms, 1000);
        let bad: BTreeMap<&str, &str> = [("DRYDOCK_TOKENS", "nocolons")].into();
        assert!(
            cfg.apply_env(|k| bad.get(k).map(|v| v.to_string()))
                .is_err()
        );
    }
}
