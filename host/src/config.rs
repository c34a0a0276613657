//! `drydock serve` configuration: a TOML file, then environment overrides.
//!
//! ```toml
//! listen = "127.0.0.1:9000"
//! data_dir = ".drydock"              # SQLite file, compile cache, instance id
//! database_url = "postgres://postgres@127.0.0.1/drydock"   # default: SQLite in data_dir
//! drivers_dir = "/var/lib/drydock/drivers"                  # extra *.wasm drivers
//! node_driver = "sim"                # which driver serves node actions
//! network_driver = "sim"             # which driver serves switch actions
//! provisioner_driver = "promenade"   # which driver serves relabel_nodes (WIT 0.2.0)
//!
//! [[tokens]]
//! name = "shipyard"
//! role = "operator"                  # viewer | operator | admin
//! token_env = "SHIPYARD_TOKEN"       # or: token = "..."
//!
//! [keystone]                        # also accept Keystone tokens (Shipyard's)
//! auth_url = "http://keystone-api:5000/v3"
//! username = "drydock"
//! password_env = "DRYDOCK_KEYSTONE_PASSWORD"
//! project_name = "service"
//!
//! [policy]                          # Drydock's policy rules, by name
//! "physical_provisioner:read_task" = "role:admin or role:reader"
//!
//! [auth_throttle]                   # peers presenting bad tokens get 429
//! max_failures = 10
//! window_s = 60
//! block_s = 60
//!
//! [limits]
//! max_concurrent_calls = 100         # sandboxes at once
//! max_concurrency = 256              # driver calls in flight
//! per_bmc = 4                        # calls in flight per BMC address
//! max_attempts = 3                   # attempts for retryable failures
//! write_queue = 4096                 # results, messages and key-value writes waiting for the database
//! backlog = 16384                    # subtasks created running here that may wait for a call slot
//! drain_ms = 20000                   # on SIGTERM: how long calls in flight may finish (then cut, requeued)
//!
//! [driver_limits]                    # quotas on drivers (see drivers::limits::DriverLimits)
//! kv_keys = 10000                    # keys per driver
//! messages_per_call = 1000           # task messages per call
//!
//! [drivers.sim]
//! settings = { delay_ms = "0" }
//! egress = ["10.0.0.0/8:443"]
//! memory_mib = 64
//!
//! [secrets]                          # prefer DRYDOCK_SECRET_<NAME> variables
//! bmc-password = "calvin"
//!
//! [secret_scopes]                    # what config/env secrets may be used for
//! maas-api-key = ["driver:maas"]     # default: `driver:NAME` for every driver
//!                                    # granted it, else ["oob", "switch"]
//!
//! [node_addresses]
//! allow = ["127.0.0.0/8"]            # special BMC/switch addresses accepted
//!
//! [http]                             # API server limits (defaults shown)
//! header_timeout_ms = 10000          # to send a request's headers
//! request_timeout_ms = 60000         # headers to answer, body included
//! idle_timeout_ms = 60000            # no byte moving, no request handled
//! max_connections = 1024             # more wait in the listen backlog
//! max_requests = 256                 # more are answered 503 + Retry-After
//! retry_after_s = 1
//! max_body_bytes = 1048576           # POST /tasks, POST /nodefilter
//! max_small_body_bytes = 65536       # every other route (drivers: 64 MiB)
//! linger_ms = 0                      # on SIGTERM: serve at least this long while /health says 503
//!
//! [design_sources]                   # where designs and boot-action assets come from
//! schemes = ["https"]                # default; add "http" for plain HTTP
//! hosts = []                         # default: any name (e.g. ["deckhand.site", "*.example.com"])
//! cidrs = []                         # non-public ranges allowed, e.g. ["10.20.0.0/16"]
//! timeout_secs = 30
//! max_concurrent = 8
//! max_redirects = 5
//!
//! [design_limits]                    # what one design may cost
//! max_bytes = 16777216
//! max_documents = 10000
//! max_values = 1000000               # YAML values, aliases expanded; also inheritance output
//! max_host_profiles = 1000
//! max_inheritance_depth = 32
//! time_budget_secs = 30              # parsing, and validating, one design
//! max_concurrent = 2
//! template_fuel = 500000             # boot-action template instructions
//! template_max_bytes = 4194304
//!
//! [observe]                          # metrics (crate::observe)
//! metrics_listen = "10.0.0.5:9100"   # also serve /metrics here, without a token
//! ```
//!
//! Environment overrides: `DRYDOCK_LISTEN`, `DRYDOCK_DATA_DIR`,
//! `DRYDOCK_DATABASE_URL`, `DRYDOCK_DRIVERS_DIR`, `DRYDOCK_INSTANCE_ID`,
//! `DRYDOCK_TOKENS` (`name:role:token,...`), `DRYDOCK_MAX_CONCURRENCY`;
//! `DRYDOCK_OTLP_ENDPOINT` (read when logging starts) exports traces.

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

impl TokenConfig {
    /// A token given in the configuration itself (as `DRYDOCK_TOKENS`
    /// gives them), not through an environment variable.
    pub fn inline(name: &str, role: &str, token: &str) -> Self {
        Self {
            name: name.into(),
            role: role.into(),
            token: Some(token.into()),
            token_env: None,
        }
    }
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
    /// Subtasks the leader creates already running under itself that may
    /// wait in memory for a call slot (a few KiB each); past it, subtasks
    /// are created queued and claimed. 0: only those that fit in free slots.
    pub backlog: usize,
    /// On SIGTERM or Ctrl-C, how long driver calls in flight may finish
    /// before they are cut and requeued for another instance, in ms (the
    /// drain; see `tasks::drain`). Keep it under the supervisor's kill
    /// timeout (Kubernetes: `terminationGracePeriodSeconds`, 30 s by
    /// default), which must also cover storing the last results.
    pub drain_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 100,
            max_concurrency: 256,
            per_bmc: 4,
            max_attempts: 3,
            write_queue: 4096,
            backlog: 16_384,
            drain_ms: 20_000,
        }
    }
}

/// Leader lease timing (several instances on one Postgres). With the
/// leader lock (the default), a leader whose process dies is replaced in
/// well under a second; a leader that hangs with its connection open is
/// replaced when its lease lapses (about two seconds with the defaults).
///
/// The lease also bounds every Postgres session
/// ([`SessionLimits::for_lease`](crate::store::SessionLimits::for_lease)):
/// idle in a transaction at most `lease_ms`, a lock wait at most
/// `lease_ms / 2`, a statement at most 30 × `lease_ms` (at least 60 s), so a
/// paused instance's open transaction stalls the others no longer than
/// that.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderSettings {
    /// How long the lease lasts without renewal, in ms (also the longest a
    /// Postgres session may idle in a transaction; see above).
    pub lease_ms: u64,
    /// How often every instance beats and renews or tries the lease, in ms.
    pub renew_ms: u64,
    /// How old a heartbeat makes an instance dead, in ms.
    pub dead_after_ms: u64,
    /// Hold a Postgres session-level advisory lock while leading, so that
    /// a dead leader's lock (released when its connection drops) wakes a
    /// successor at once. Turn off behind a pooler in transaction mode
    /// (e.g. PgBouncer's), where session locks do not work: failover then
    /// waits for the lease to lapse.
    pub advisory_lock: bool,
}

impl Default for LeaderSettings {
    fn default() -> Self {
        Self {
            lease_ms: 2000,
            renew_ms: 400,
            dead_after_ms: 2000,
            advisory_lock: true,
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
    /// start from the `[secrets]` table or `DRYDOCK_SECRET_<NAME>`. Granting
    /// a secret here scopes it to this driver (`driver:NAME`: no node or
    /// switch credential can name it) unless `[secret_scopes]` declares its
    /// scopes, which must then include `driver:NAME`.
    pub secrets: Vec<String>,
}

/// `[http]`: limits of the API server (see [`crate::httpd`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Milliseconds a client has to send a request's headers, counted from
    /// when the server starts waiting for them (so also how long a
    /// keep-alive connection may wait for its next request). Default 10 s.
    pub header_timeout_ms: u64,
    /// Milliseconds from a request's headers to its answer, reading the body
    /// included; past it the answer is 503 with `Retry-After`. Default 60 s.
    pub request_timeout_ms: u64,
    /// Milliseconds a connection may go without a byte moving either way
    /// while none of its requests is being handled (e.g. a client not
    /// reading its answer); then it is closed. Default 60 s.
    pub idle_timeout_ms: u64,
    /// Connections open at once; further ones wait, unaccepted, in the
    /// listen backlog until one closes. Keep it well under the process's
    /// open-file limit (`ulimit -n`, often 1024). Default 512.
    pub max_connections: usize,
    /// Requests handled at once; further ones are answered 503 with
    /// `Retry-After`. Default 256.
    pub max_requests: usize,
    /// The `Retry-After` of 503 answers, in seconds. Default 1.
    pub retry_after_s: u64,
    /// Largest body of `POST /tasks` and `POST /nodefilter` (node lists),
    /// bytes; larger gets 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Largest body of every other route (small JSON), bytes; larger gets
    /// 413. Driver uploads (`POST /drivers`) take up to 64 MiB. Default
    /// 64 KiB.
    pub max_small_body_bytes: usize,
    /// Milliseconds the API keeps accepting requests after SIGTERM, at
    /// least, while `GET /health` answers 503: time for a load balancer
    /// or Kubernetes (a readiness probe, the endpoints' update) to stop
    /// sending requests here before the listener closes. The API also
    /// serves for as long as the engine drains. Default 0; at most 10
    /// minutes (it counts against the supervisor's kill timeout).
    pub linger_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
            max_requests: 256,
            retry_after_s: 1,
            max_body_bytes: 1 << 20,
            max_small_body_bytes: 64 << 10,
            linger_ms: 0,
        }
    }
}

/// The largest `[http] linger_ms`.
const MAX_LINGER_MS: u64 = 600_000;

impl HttpSettings {
    /// Checks every limit is positive.
    pub fn check(&self) -> Result<()> {
        for (name, v) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("max_requests", self.max_requests as u64),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_small_body_bytes", self.max_small_body_bytes as u64),
        ] {
            if v == 0 {
                bail!("http.{name} must be positive");
            }
        }
        if self.linger_ms > MAX_LINGER_MS {
            bail!("http.linger_ms must be at most {MAX_LINGER_MS} (10 minutes)");
        }
        Ok(())
    }
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
    /// Minutes prepare_nodes waits for a node to enlist with the
    /// bootstrapper after its PXE boot (Drydock's 10); each node waits on
    /// its own.
    pub enlist_timeout_min: u64,
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
    /// Driver serving provisioner actions (`relabel_nodes`).
    pub provisioner_driver: Option<String>,
    /// API tokens.
    pub tokens: Vec<TokenConfig>,
    /// Keystone, to accept Keystone tokens (`X-Auth-Token`) beside the
    /// static ones: see [`crate::api::keystone::KeystoneConfig`].
    pub keystone: Option<crate::api::keystone::KeystoneConfig>,
    /// Policy rules replacing the defaults, by rule name (see
    /// [`crate::api::policy::RULES`]), in oslo.policy's syntax.
    pub policy: BTreeMap<String, String>,
    /// The bad-token throttle: see [`crate::api::throttle::ThrottleConfig`].
    pub auth_throttle: crate::api::throttle::ThrottleConfig,
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
    /// Where the host may fetch designs and boot-action assets from
    /// (`[design_sources]`: schemes, hosts, CIDRs, time, concurrency).
    pub design_sources: crate::design::DesignSources,
    /// What one design may cost (`[design_limits]`: bytes, documents,
    /// values, inheritance, time, templates).
    pub design_limits: crate::design::DesignLimits,
    /// Secrets by name (BMC and switch passwords, driver API keys). Prefer
    /// `DRYDOCK_SECRET_<NAME>` variables or the database over this table.
    pub secrets: crate::drivers::GrantedSecrets,
    /// What config and environment secrets may be used for, by name:
    /// `oob` (a node's BMC credential or `tls_ca_secret`), `switch` (a
    /// switch's credential), `driver:NAME` (driver NAME's `secret-get`).
    /// Undeclared: `driver:NAME` for every driver whose `secrets` grants
    /// the name, else `["oob", "switch"]` (see [`crate::secrets`]).
    pub secret_scopes: BTreeMap<String, Vec<crate::secrets::Scope>>,
    /// `[node_addresses] allow`: special addresses (loopback, link-local,
    /// ...) a node's BMC or switch may still have. Default none.
    pub node_addresses: crate::node_address::NodeAddressPolicy,
    /// API server limits.
    pub http: HttpSettings,
    /// Leader lease timing.
    pub leader: LeaderSettings,
    /// Installed drivers: trusted vendor keys, development mode, polling.
    pub driver_store: DriverStoreSettings,
    /// `[observe]`: where `/metrics` is served (see
    /// [`crate::observe::ObserveSettings`]).
    pub observe: crate::observe::ObserveSettings,
    /// `[fleet]`: the power and health sync, maintenance, timeline
    /// retention (see [`crate::fleet`]).
    pub fleet: crate::fleet::SyncConfig,
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
            enlist_timeout_min: 10,
            data_dir: PathBuf::from(".drydock"),
            database_url: None,
            drivers_dir: None,
            bundled_drivers: true,
            instance_id: None,
            node_driver: None,
            network_driver: None,
            provisioner_driver: None,
            tokens: Vec::new(),
            keystone: None,
            policy: BTreeMap::new(),
            auth_throttle: Default::default(),
            limits: Limits::default(),
            driver_limits: Default::default(),
            drivers: BTreeMap::new(),
            design_dir: Some(PathBuf::from("examples")),
            design_sources: Default::default(),
            design_limits: Default::default(),
            secrets: Default::default(),
            secret_scopes: BTreeMap::new(),
            node_addresses: Default::default(),
            http: HttpSettings::default(),
            leader: LeaderSettings::default(),
            driver_store: DriverStoreSettings::default(),
            observe: Default::default(),
            fleet: Default::default(),
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
        cfg.http.check()?;
        cfg.fleet.validate()?;
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
                self.tokens.push(TokenConfig::inline(name, role, token));
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
            backlog = 0
            [drivers.sim]
            settings = { delay_ms = "5" }
            egress = ["10.0.0.0/8"]
            "#,
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 9100);
        assert_eq!(cfg.limits.per_bmc, 2);
        assert_eq!(cfg.limits.max_attempts, 3);
        assert_eq!(cfg.limits.backlog, 0);
        assert_eq!(Config::default().limits.backlog, 16_384);
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
        let sources: Config = toml::from_str(
            "[design_sources]\nschemes = [\"http\"]\ncidrs = [\"127.0.0.1/32\"]\n[design_limits]\nmax_values = 10\n",
        )
        .unwrap();
        assert_eq!(sources.design_sources.cidrs, ["127.0.0.1/32"]);
        assert_eq!(sources.design_sources.timeout_secs, 30);
        assert_eq!(sources.design_limits.max_values, 10);
        assert_eq!(sources.design_limits.max_inheritance_depth, 32);
        assert_eq!(Config::default().design_sources.schemes, ["https"]);
        let store: Config = toml::from_str(
            "[driver_store]\ntrusted_keys = [\"acme:00\"]\nallow_unsigned = true\nwatch_calls = 0\n",
        )
        .unwrap();
        assert_eq!(store.driver_store.trusted_keys, ["acme:00"]);
        assert!(store.driver_store.allow_unsigned && store.driver_store.validate);
        assert_eq!(store.driver_store.watch_calls, 0);
        assert_eq!(store.driver_store.poll_ms, 1000);
        let hostile: Config = toml::from_str(
            "[secret_scopes]\nmaas-api-key = [\"driver:maas\"]\n\
             [node_addresses]\nallow = [\"127.0.0.0/8\"]\n[http]\nmax_requests = 8\n",
        )
        .unwrap();
        assert_eq!(
            hostile.secret_scopes["maas-api-key"],
            [crate::secrets::Scope::Driver("maas".into())]
        );
        assert_eq!(hostile.node_addresses.allow.len(), 1);
        assert_eq!(hostile.http.max_requests, 8);
        assert_eq!(hostile.http.header_timeout_ms, 10_000);
        assert!(toml::from_str::<Config>("[secret_scopes]\nx = [\"root\"]\n").is_err());
        assert!(toml::from_str::<Config>("[http]\nheader_timeout = 1\n").is_err());
        let linger: Config = toml::from_str("[http]\nlinger_ms = 5000\n").unwrap();
        assert_eq!(linger.http.linger_ms, 5000);
        assert!(linger.http.check().is_ok());
        let too_long: Config = toml::from_str("[http]\nlinger_ms = 600001\n").unwrap();
        let e = too_long.http.check().unwrap_err().to_string();
        assert!(e.contains("http.linger_ms must be at most 600000"), "{e}");
        let bad: BTreeMap<&str, &str> = [("DRYDOCK_TOKENS", "nocolons")].into();
        assert!(
            cfg.apply_env(|k| bad.get(k).map(|v| v.to_string()))
                .is_err()
        );
    }
}
