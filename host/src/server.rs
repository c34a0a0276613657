//! `drydock serve`: wires the store, the driver runtime, the loaded drivers,
//! the task engine and the REST API together, and shuts them down cleanly.
//!
//! Every directory the server touches (data, drivers, compile cache) is
//! opened once as a capability (`cap_std::fs::Dir`); names that arrive over
//! the network never become paths.

use crate::api::AppState;
use crate::api::auth::{ApiToken, Auth, Role};
use crate::config::{Config, DriverSettings};
use crate::drivers::{
    CompileCache, DriverConfig, DriverSet, EgressGrant, Runtime, RuntimeConfig, TlsSettings,
};
use crate::secrets::{Scope, ScopeTable};
use crate::store::Store;
use crate::tasks::{Engine, EngineConfig};
use anyhow::{Context, Result, bail};
use cap_std::fs::Dir;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The engine (for tests and embedding).
    pub engine: Engine,
    /// Installed driver versions (for tests and embedding).
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
    /// The separate metrics listener's address (`[observe] metrics_listen`).
    pub metrics_addr: Option<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio_util::sync::CancellationToken,
    /// How long calls in flight may finish when it stops (`[limits]
    /// drain_ms`).
    drain: Duration,
    /// How long, at least, the API keeps serving when it stops (`[http]
    /// linger_ms`).
    linger: Duration,
    /// The SQLite lock (one instance per database file), held while running.
    _sqlite_lock: Option<std::fs::File>,
}

impl Server {
    /// Drains the engine (see [`Engine::drain`](crate::tasks::Engine::drain)):
    /// no new work, calls in flight finish within `[limits] drain_ms`,
    /// every result stored, what is left requeued, the lead given up.
    /// Meanwhile the API keeps serving, with `GET /health` answering 503 so
    /// clients are sent elsewhere, until the drain has ended and `[http]
    /// linger_ms` has passed; then it stops accepting connections and
    /// finishes the requests in flight.
    pub async fn shutdown(self) -> Result<()> {
        let linger = tokio::time::sleep(self.linger);
        let (_, ()) = tokio::join!(self.engine.drain(self.drain), linger);
        tracing::info!("the API stops accepting connections");
        self.stop.cancel();
        self.task.await.context("server task")??;
        Ok(())
    }

    /// Waits until the server stops (after `stop` completes).
    pub async fn wait(self) -> Result<()> {
        self.task.await.context("server task")??;
        self.engine.shutdown();
        Ok(())
    }
}

fn open_dir(path: &std::path::Path) -> Result<Dir> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .with_context(|| format!("creating {}", path.display()))?;
    Dir::open_ambient_dir(path, cap_std::ambient_authority())
        .with_context(|| format!("opening {}", path.display()))
}

/// Reads the instance id kept in the data directory, creating it once.
fn instance_id(data: &Dir) -> Result<String> {
    if let Ok(id) = data.read_to_string("instance-id") {
        let id = id.trim().to_owned();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    let id = format!("drydock-{}", uuid::Uuid::new_v4().simple());
    data.write("instance-id", &id)
        .context("writing instance-id")?;
    Ok(id)
}

/// The configured tokens; with none configured, an admin token is generated
/// once into `<data_dir>/admin-token` (mode 0600) so the API is never open.
fn tokens(cfg: &Config, data: &Dir) -> Result<Vec<ApiToken>> {
    let mut out = Vec::new();
    for t in &cfg.tokens {
        let token = match (&t.token, &t.token_env) {
            (Some(tok), _) => tok.clone(),
            (None, Some(var)) => std::env::var(var).with_context(|| {
                format!("token `{}`: environment variable {var} is not set", t.name)
            })?,
            (None, None) => bail!("token `{}` has neither `token` nor `token_env`", t.name),
        };
        if token.len() < 16 {
            bail!("token `{}` is shorter than 16 characters", t.name);
        }
        out.push(ApiToken {
            name: t.name.clone(),
            token,
            role: t.role.parse::<Role>().map_err(anyhow::Error::msg)?,
        });
    }
    if out.is_empty() {
        let token = match data.read_to_string("admin-token") {
            Ok(t) if t.trim().len() >= 16 => t.trim().to_owned(),
            _ => {
                let t = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                let mut opts = cap_std::fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                cap_std::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = data
                    .open_with("admin-token", &opts)
                    .context("writing admin-token")?;
                std::io::Write::write_all(&mut f, t.as_bytes()).context("writing admin-token")?;
                t
            }
        };
        tracing::warn!(
            file = %cfg.data_dir.join("admin-token").display(),
            "no API tokens configured: using the generated admin token in this file"
        );
        out.push(ApiToken {
            name: "admin".into(),
            token,
            role: Role::Admin,
        });
    }
    Ok(out)
}

/// Driver `name`'s configuration and grants. A granted secret comes from
/// `[secrets]` or `DRYDOCK_SECRET_<NAME>` and must be scoped to the driver
/// (`driver:NAME`, see [`crate::secrets`]).
fn driver_config(
    name: &str,
    s: Option<&DriverSettings>,
    secrets: &crate::drivers::GrantedSecrets,
    scopes: &ScopeTable,
) -> Result<Arc<DriverConfig>> {
    let Some(s) = s else {
        return Ok(Arc::new(DriverConfig::default()));
    };
    let mut c = DriverConfig {
        settings: s.settings.clone(),
        ..DriverConfig::default()
    };
    c.egress = s
        .egress
        .iter()
        .map(|g| g.parse::<EgressGrant>())
        .collect::<Result<_, _>>()?;
    if let Some(m) = s.memory_mib {
        c.memory_bytes = m << 20;
    }
    c.max_call_time = s.max_call_secs.map(Duration::from_secs);
    let own = Scope::Driver(name.to_owned());
    for secret in &s.secrets {
        let declared = scopes.scopes(secret);
        if !declared.contains(&own) {
            bail!(
                "secret `{secret}` is granted to driver {name} but [secret_scopes] declares it \
                 for {} only: add \"{own}\" to its scopes",
                declared
                    .iter()
                    .map(Scope::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let value = secrets
            .get(secret)
            .cloned()
            .or_else(|| std::env::var(crate::secrets::EnvSecrets::variable(secret)).ok())
            .with_context(|| {
                format!(
                    "secret `{secret}` granted to a driver is neither in [secrets] nor in {}",
                    crate::secrets::EnvSecrets::variable(secret)
                )
            })?;
        c.secrets.insert(secret.clone(), value);
    }
    if let Some(ca) = &s.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        c.tls = TlsSettings::with_extra_roots(&pem).map_err(anyhow::Error::msg)?;
    }
    Ok(Arc::new(c))
}

/// The scopes of config and environment secrets: `[secret_scopes]`, then
/// the drivers' grants.
fn scopes(cfg: &Config) -> ScopeTable {
    ScopeTable::from_config(
        &cfg.secret_scopes,
        cfg.drivers
            .iter()
            .map(|(d, s)| (d.as_str(), s.secrets.as_slice())),
    )
}

/// Loads the bundled drivers and every `*.wasm` in the drivers directory.
/// A directory package must be signed by a trusted key that may sign its
/// name (`[driver_store] trusted_keys`), unless `allow_unsigned`; the
/// bundled drivers are part of the binary.
async fn load_drivers(cfg: &Config, runtime: &Runtime) -> Result<DriverSet> {
    let trusted = trusted_keys(cfg)?;
    let mut set = DriverSet::new();
    // (origin, bytes, whether its signature is checked)
    let mut sources: Vec<(String, Vec<u8>, bool)> = Vec::new();
    if cfg.bundled_drivers {
        for (name, bytes) in crate::bundled::all() {
            sources.push((format!("bundled:{name}"), bytes.to_vec(), false));
        }
    }
    if let Some(path) = &cfg.drivers_dir {
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())
            .with_context(|| format!("opening drivers directory {}", path.display()))?;
        let mut names: Vec<String> = dir
            .entries()?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".wasm"))
            .collect();
        names.sort();
        for name in names {
            let bytes = dir
                .read(&name)
                .with_context(|| format!("reading driver {name}"))?;
            sources.push((path.join(&name).display().to_string(), bytes, true));
        }
    }
    for (origin, bytes, signed) in sources {
        if signed {
            // The signature first: nothing untrusted is compiled.
            crate::drivers::package::verify(&bytes, &trusted, cfg.driver_store.allow_unsigned)
                .with_context(|| format!("driver {origin} refused"))?;
        }
        let driver = runtime
            .load(&origin, &bytes)
            .await
            .with_context(|| format!("loading driver {origin}"))?;
        let name = driver.info().name.clone();
        if signed {
            crate::drivers::package::verify_named(
                &bytes,
                &trusted,
                cfg.driver_store.allow_unsigned,
                &name,
            )
            .with_context(|| format!("driver {origin} refused"))?;
        }
        let config = driver_config(&name, cfg.drivers.get(&name), &cfg.secrets, &scopes(cfg))
            .with_context(|| format!("settings of driver {name}"))?;
        tracing::info!(driver = %name, version = %driver.info().version, origin = %origin, "driver loaded");
        set.add(driver, config).map_err(anyhow::Error::msg)?;
    }
    // Several bundled drivers implement the node and network interfaces;
    // unless the operator names one, the simulator serves them (a fresh
    // install simulates rather than touching real hardware).
    let pick = |configured: &Option<String>, what: &str| {
        configured.clone().or_else(|| {
            set.get("sim").map(|_| {
                tracing::warn!("no {what} configured: the sim driver serves {what} actions");
                "sim".to_owned()
            })
        })
    };
    let node = pick(&cfg.node_driver, "node_driver");
    let network = pick(&cfg.network_driver, "network_driver");
    let provisioner = pick(&cfg.provisioner_driver, "provisioner_driver");
    set.set_node_driver(node);
    set.set_network_driver(network);
    set.set_provisioner_driver(provisioner);
    Ok(set)
}

/// `[driver_store] trusted_keys`, parsed.
fn trusted_keys(cfg: &Config) -> Result<Vec<crate::drivers::package::TrustedKey>> {
    cfg.driver_store
        .trusted_keys
        .iter()
        .map(|k| {
            k.parse::<crate::drivers::package::TrustedKey>()
                .with_context(|| "driver_store.trusted_keys")
        })
        .collect()
}

/// The lifecycle settings: trusted keys, development mode, the grants of
/// every configured driver.
fn lifecycle_config(cfg: &Config) -> Result<crate::lifecycle::LifecycleConfig> {
    let trusted = trusted_keys(cfg)?;
    if cfg.driver_store.allow_unsigned {
        tracing::warn!(
            "driver_store.allow_unsigned: unsigned drivers can be installed (development only)"
        );
    }
    let mut grants = std::collections::BTreeMap::new();
    for (name, s) in &cfg.drivers {
        grants.insert(
            name.clone(),
            driver_config(name, Some(s), &cfg.secrets, &scopes(cfg))
                .with_context(|| format!("settings of driver {name}"))?,
        );
    }
    Ok(crate::lifecycle::LifecycleConfig {
        trusted_keys: trusted,
        allow_unsigned: cfg.driver_store.allow_unsigned,
        poll: Duration::from_millis(cfg.driver_store.poll_ms.max(50)),
        grants,
        validate: cfg.driver_store.validate,
        watch_calls: cfg.driver_store.watch_calls,
        max_error_ratio: cfg.driver_store.max_error_ratio,
        warm_grace: Duration::from_secs(cfg.driver_store.warm_grace_s),
    })
}

/// Starts a server from `cfg`; it runs until [`Server::shutdown`].
pub async fn start(cfg: Config) -> Result<Server> {
    let data = open_dir(&cfg.data_dir)?;
    let database_url = match &cfg.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite:{}", cfg.data_dir.join("drydock.db").display()),
    };
    let sqlite_lock = crate::sqlite_files::prepare(&database_url, &cfg.data_dir)?;
    // Every Postgres session bounded by the lease (see `SessionLimits`).
    let limits = crate::store::SessionLimits::for_lease(Duration::from_millis(cfg.leader.lease_ms));
    let store = Store::connect_with(&database_url, limits).await?;
    tracing::info!(backend = %store.backend(), "store ready");

    // Mode 0700: only this host may write what it later deserializes.
    let cache = CompileCache::open_path(&cfg.data_dir.join("compile-cache"))
        .context("opening compile-cache")?;
    let runtime = Arc::new(Runtime::new(
        RuntimeConfig {
            max_concurrent_calls: cfg.limits.max_concurrent_calls,
            limits: cfg.driver_limits.clone(),
            ..RuntimeConfig::default()
        },
        Some(cache),
    )?);
    let drivers = Arc::new(load_drivers(&cfg, &runtime).await?);
    let lifecycle = crate::lifecycle::Lifecycle::new(
        store.clone(),
        runtime.clone(),
        drivers.clone(),
        lifecycle_config(&cfg)?,
    );
    // Installed active versions replace the bundled and directory ones
    // before any work is taken.
    lifecycle
        .sync()
        .await
        .context("loading the active installed drivers")?;

    let instance = match &cfg.instance_id {
        Some(id) => id.clone(),
        None => instance_id(&data)?,
    };
    // Keystone, when configured: checks callers' tokens, and its service
    // token is there for calls made in this service's name (Deckhand).
    let keystone = cfg
        .keystone
        .clone()
        .map(crate::api::keystone::Keystone::new)
        .transpose()?
        .map(Arc::new);
    let engine = Engine::start(
        store,
        runtime,
        drivers,
        EngineConfig {
            instance_id: instance.clone(),
            max_concurrency: cfg.limits.max_concurrency,
            per_bmc: cfg.limits.per_bmc,
            max_attempts: cfg.limits.max_attempts,
            write_queue: cfg.limits.write_queue.max(1),
            backlog: cfg.limits.backlog,
            design_dir: cfg.design_dir.clone().filter(|d| {
                let ok = d.is_dir();
                if !ok {
                    tracing::warn!(dir = %d.display(), "design directory not found: file: design references are refused");
                }
                ok
            }),
            design_sources: cfg.design_sources.clone(),
            design_limits: cfg.design_limits.clone(),
            // Deckhand and Promenade references carry Keystone's service
            // token, as Drydock sends it.
            service_token: keystone.clone().map(|k| {
                crate::tasks::ServiceTokenSource(k as Arc<dyn crate::design::AuthToken>)
            }),
            secrets: cfg.secrets.clone(),
            secret_scopes: scopes(&cfg),
            node_addresses: cfg.node_addresses.clone(),
            leader: crate::tasks::LeaderConfig {
                lease: Duration::from_millis(cfg.leader.lease_ms),
                renew: Duration::from_millis(cfg.leader.renew_ms),
                dead_after: Duration::from_millis(cfg.leader.dead_after_ms),
                advisory_lock: cfg.leader.advisory_lock,
            },
            boot_action_url: format!(
                "{}/api/v1.0/bootactions/",
                cfg.public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", cfg.listen))
                    .trim_end_matches('/')
            ),
            enlist_timeout: Duration::from_secs(cfg.enlist_timeout_min.saturating_mul(60)),
            public_url: cfg.public_url.clone(),
            timeouts: [(
                crate::tasks::orchestrator::BOOT_ACTION_REPORT.to_owned(),
                Duration::from_secs(cfg.boot_action_timeout_min.saturating_mul(60)),
            )]
            .into(),
            ..EngineConfig::default()
        },
    )
    .await?;
    // The fleet's power and health sync (every instance; the leader leads).
    tokio::spawn(crate::fleet::sync::run(engine.clone(), cfg.fleet.clone()));

    let auth = Arc::new(
        Auth::new(tokens(&cfg, &data)?)
            .with_policy(crate::api::policy::Policy::new(&cfg.policy)?)
            .with_throttle(cfg.auth_throttle.clone())
            .with_keystone(keystone),
    );
    let state = AppState::new(engine.clone(), auth).with_lifecycle(lifecycle.clone());
    let limits = crate::api::BodyLimits {
        json: cfg.http.max_body_bytes,
        small_json: cfg.http.max_small_body_bytes,
    };
    let app = crate::api::router_with(state.clone(), limits);
    let stop = tokio_util::sync::CancellationToken::new();
    let (app, metrics_addr) = crate::observe::serve(app, state, &cfg, &stop).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tokio::spawn(lifecycle.clone().run(stop.clone()));
    if let Some(path) = &cfg.driver_store.dev_dir {
        let dir = open_dir(path).context("driver_store.dev_dir")?;
        tokio::spawn(lifecycle.clone().watch_dir(dir, stop.clone()));
    }
    let stopped = stop.clone();
    let http = cfg.http.clone();
    let task =
        tokio::spawn(async move { crate::httpd::serve(listener, app, &http, stopped).await });
    tracing::info!(%addr, instance = %instance, "drydock serving");
    Ok(Server {
        addr,
        engine,
        lifecycle,
        metrics_addr,
        task,
        stop,
        drain: Duration::from_millis(cfg.limits.drain_ms),
        linger: Duration::from_millis(cfg.http.linger_ms),
        _sqlite_lock: sqlite_lock,
    })
}

/// Runs until `shutdown` resolves (e.g. SIGTERM), then stops cleanly
/// ([`Server::shutdown`]), or at once if `again` resolves meanwhile (a
/// second signal).
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()>,
    again: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let server = start(cfg).await?;
    shutdown.await;
    tracing::info!("shutting down: draining (a second signal stops at once)");
    tokio::select! {
        r = server.shutdown() => r,
        () = again => {
            tracing::warn!("second signal: stopping without finishing the drain");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_is_granted_only_secrets_in_its_scope() {
        let mut secrets = crate::drivers::GrantedSecrets::default();
        secrets.insert("maas-api-key", "k3y");
        let grant = DriverSettings {
            secrets: vec!["maas-api-key".into()],
            ..DriverSettings::default()
        };
        let grants = [("maas", &grant.secrets[..])];
        // Undeclared: granting it scopes it to the driver.
        let implicit = ScopeTable::from_config(&Default::default(), grants);
        let c = driver_config("maas", Some(&grant), &secrets, &implicit).unwrap();
        assert_eq!(
            c.secrets.get("maas-api-key").map(String::as_str),
            Some("k3y")
        );
        assert_eq!(
            implicit.scopes("maas-api-key"),
            [Scope::Driver("maas".into())]
        );
        // Declared for BMCs only: no driver may be granted it.
        let declared = ScopeTable::from_config(
            &[("maas-api-key".to_owned(), vec![Scope::Oob])].into(),
            grants,
        );
        let e = driver_config("maas", Some(&grant), &secrets, &declared).unwrap_err();
        assert!(e.to_string().contains("driver:maas"), "{e}");
        assert!(!e.to_string().contains("k3y"), "{e}");
    }
}
