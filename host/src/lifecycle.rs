//! Driver lifecycle: install (verify the signature, check and compile the
//! component, store it content-addressed), activate, roll back, and the
//! loop that makes every instance of a cluster run the active versions.
//!
//! Activation is a database write ([`Store::driver_activate`]); each
//! instance polls the active versions (every [`LifecycleConfig::poll`]) and
//! swaps what changed into its [`DriverSet`]: calls in flight finish on the
//! version they started with, new calls take the new one. The active and
//! previous versions of every driver stay loaded (warm), so a rollback
//! swaps instantly; other versions are unloaded once idle for
//! [`LifecycleConfig::warm_grace`]. Each instance compiles into its own
//! compile cache. [`rollback`] says where an active version stands with the
//! automatic rollback.

pub mod rollback;
mod status;

use status::wire_requested;

use crate::drivers::package::{self, Manifest, PackageError, Requested, TrustedKey};
use crate::drivers::{Driver, DriverInfo};
use crate::drivers::{DriverConfig, DriverSet, Installed, LoadError, Runtime};
use crate::store::{ActiveDriver, NewDriverVersion, Store, StoreError};
use crate::wire::{DriverManifest, Installation};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long after an activation instances still start watching its first
/// calls (an instance that starts later does not judge a version that has
/// been running for a while).
pub const WATCH_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Lifecycle settings.
#[derive(Clone, Debug)]
pub struct LifecycleConfig {
    /// Vendor keys whose signatures are accepted.
    pub trusted_keys: Vec<TrustedKey>,
    /// Development only: accept unsigned components.
    pub allow_unsigned: bool,
    /// How often the active versions are polled.
    pub poll: Duration,
    /// Grants of drivers by name (drivers not named get the defaults).
    pub grants: BTreeMap<String, Arc<DriverConfig>>,
    /// Before an activation, run the new version's `validate_node_services`
    /// (when it implements the node interface); a failure refuses the
    /// activation and the running version stays.
    pub validate: bool,
    /// After an activation made here, watch this many first calls of the new
    /// version (0: do not watch) ...
    pub watch_calls: u64,
    /// ... and roll back by itself when more than this share of them failed.
    pub max_error_ratio: f64,
    /// A loaded version that is neither active nor previous for its driver
    /// (e.g. installed and never activated, or two upgrades old) is unloaded
    /// once unused for this long; it loads again from the store (a compile
    /// cache hit) if needed.
    pub warm_grace: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            trusted_keys: Vec::new(),
            allow_unsigned: false,
            poll: Duration::from_secs(1),
            grants: BTreeMap::new(),
            validate: true,
            watch_calls: 20,
            max_error_ratio: 0.5,
            warm_grace: Duration::from_secs(600),
        }
    }
}

/// A loaded version and when it was last asked for.
struct Warm {
    driver: Driver,
    used: Instant,
}

impl Warm {
    fn new(driver: Driver) -> Self {
        Self {
            driver,
            used: Instant::now(),
        }
    }
}

/// Why a lifecycle request failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The package was refused (unsigned, tampered, wrong key, malformed).
    #[error("driver refused: {0}")]
    Refused(#[from] PackageError),
    /// The component does not load (not a driver, wrong WIT, ...).
    #[error("driver refused: {0}")]
    Load(#[from] LoadError),
    /// A stored version no longer passes verification (its key was
    /// removed, or may no longer sign its name; unsigned drivers are no
    /// longer allowed).
    #[error("stored driver {name} ({sha256}) is no longer trusted and was not loaded: {source}")]
    Untrusted {
        /// Driver name.
        name: String,
        /// The version's SHA-256.
        sha256: String,
        /// Why verification failed.
        source: PackageError,
    },
    /// The manifest contradicts the component.
    #[error("driver refused: {0}")]
    Manifest(String),
    /// No such driver or version.
    #[error("{0}")]
    NotFound(String),
    /// The state forbids it (active version, nothing to roll back to).
    #[error("{0}")]
    Conflict(String),
    /// The new version failed its validate action: not activated.
    #[error("activation refused, the running version stays: {0}")]
    Validation(String),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for LifecycleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => LifecycleError::NotFound(format!("not found: {m}")),
            StoreError::Conflict(m) | StoreError::Invalid(m) => LifecycleError::Conflict(m),
            other => LifecycleError::Store(other),
        }
    }
}

/// Installs, activates and spreads driver versions on one instance.
pub struct Lifecycle {
    store: Store,
    runtime: Arc<Runtime>,
    drivers: Arc<DriverSet>,
    cfg: LifecycleConfig,
    /// Versions loaded here, by SHA-256 (warm for activation or rollback).
    warm: Mutex<HashMap<String, Warm>>,
    /// The generation applied here, by driver name.
    applied: Mutex<HashMap<String, i64>>,
    /// Serialises applying activations.
    sync_lock: tokio::sync::Mutex<()>,
    /// This lifecycle, for the watches [`Lifecycle::sync`] starts.
    me: Weak<Self>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle").finish_non_exhaustive()
    }
}

/// The manifest a component without one gets: what its `info` says.
fn derived_manifest(info: &DriverInfo) -> Manifest {
    Manifest {
        name: info.name.clone(),
        version: info.version.clone(),
        vendor: info.vendor.clone(),
        interfaces: info.interfaces.iter().map(|i| i.to_string()).collect(),
        oob_types: info.oob_types.clone(),
        requested: Requested {
            outbound: info.outbound.hosts.clone(),
            ..Requested::default()
        },
        conformance: None,
    }
}

impl Lifecycle {
    /// A lifecycle over the engine's driver set.
    pub fn new(
        store: Store,
        runtime: Arc<Runtime>,
        drivers: Arc<DriverSet>,
        cfg: LifecycleConfig,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            store,
            runtime,
            drivers,
            cfg,
            warm: Mutex::new(HashMap::new()),
            applied: Mutex::new(HashMap::new()),
            sync_lock: tokio::sync::Mutex::new(()),
            me: me.clone(),
        })
    }

    /// The driver set calls are served from.
    pub fn drivers(&self) -> &Arc<DriverSet> {
        &self.drivers
    }

    /// Verifies, checks, compiles and stores a driver file. The version is
    /// the manifest's (the component's `info` version without a manifest).
    pub async fn install(
        &self,
        bytes: &[u8],
        by: Option<&str>,
    ) -> Result<Installation, LifecycleError> {
        self.install_inner(bytes, by, false).await
    }

    /// `dev`: a component without a manifest gets the version
    /// `<info version>+dev.<sha256 prefix>` (rebuilds differ).
    async fn install_inner(
        &self,
        bytes: &[u8],
        by: Option<&str>,
        dev: bool,
    ) -> Result<Installation, LifecycleError> {
        let signer = package::verify(bytes, &self.cfg.trusted_keys, self.cfg.allow_unsigned)?;
        let sha256 = hex::encode(Sha256::digest(bytes));
        let started = Instant::now();
        let cache_hit = self.runtime.compile("upload", bytes).await?.2;
        let driver = self
            .runtime
            .load(&format!("upload {sha256}"), bytes)
            .await?;
        // The signing key must be one that may sign this driver's name.
        package::verify_named(
            bytes,
            &self.cfg.trusted_keys,
            self.cfg.allow_unsigned,
            &driver.info().name,
        )?;
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let manifest = match package::manifest(bytes)? {
            Some(m) => {
                if m.name != driver.info().name {
                    return Err(LifecycleError::Manifest(format!(
                        "the manifest names `{}`, the component `{}`",
                        m.name,
                        driver.info().name
                    )));
                }
                if m.version.is_empty() {
                    return Err(LifecycleError::Manifest(
                        "the manifest has no version".into(),
                    ));
                }
                m
            }
            None if dev => {
                let mut m = derived_manifest(driver.info());
                m.version = format!("{}+dev.{}", m.version, &sha256[..12]);
                m
            }
            None => derived_manifest(driver.info()),
        };
        let stored = self
            .store
            .driver_version_insert(&NewDriverVersion {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                sha256: sha256.clone(),
                bytes: bytes.to_vec(),
                manifest: serde_json::to_string(&manifest).expect("manifest serialises"),
                signer: signer.clone(),
                installed_by: by.map(str::to_owned),
            })
            .await?;
        self.warm
            .lock()
            .expect("warm lock")
            .insert(sha256.clone(), Warm::new(driver));
        tracing::info!(driver = %manifest.name, version = %manifest.version, sha256 = %sha256,
            signer = signer.as_deref().unwrap_or("(unsigned)"), cache_hit, load_ms, "driver installed");
        Ok(Installation {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            size: bytes.len() as u64,
            sha256,
            signer,
            stored,
            cache_hit,
            load_ms,
            manifest: wire_manifest(manifest),
        })
    }

    /// Makes `version` active on every instance; applied here before this
    /// returns. The new version is validated first (see
    /// [`LifecycleConfig::validate`]) and every instance watches its own
    /// first calls of it (see [`LifecycleConfig::watch_calls`]).
    pub async fn activate(
        self: &Arc<Self>,
        name: &str,
        version: &str,
        message: Option<&str>,
    ) -> Result<ActiveDriver, LifecycleError> {
        let record = self
            .store
            .driver_version(name, version)
            .await?
            .ok_or_else(|| {
                LifecycleError::NotFound(format!("driver {name} has no version {version}"))
            })?;
        if self.cfg.validate {
            let driver = self.warm_driver(name, &record.sha256).await?;
            self.validate(name, &driver).await?;
        }
        self.activate_now(name, version, message, self.cfg.watch_calls > 0)
            .await
    }

    async fn activate_now(
        &self,
        name: &str,
        version: &str,
        message: Option<&str>,
        watched: bool,
    ) -> Result<ActiveDriver, LifecycleError> {
        let active = self
            .store
            .driver_activate(name, version, message, watched)
            .await?;
        tracing::info!(driver = %name, version = %version, generation = active.generation, "driver activated");
        self.sync().await?;
        Ok(active)
    }

    /// The grant of driver `name`.
    fn grant(&self, name: &str) -> Arc<DriverConfig> {
        self.drivers
            .get(name)
            .map(|c| c.config)
            .or_else(|| self.cfg.grants.get(name).cloned())
            .unwrap_or_default()
    }

    /// Runs the validate action `driver` implements that needs no node.
    async fn validate(&self, name: &str, driver: &Driver) -> Result<(), LifecycleError> {
        use crate::drivers::{Action, CallError, CallRequest, MemoryServices};
        let config = self.grant(name);
        let params = crate::model::ActionParams::default();
        // validate_oob_services and validate_network_services need a node or
        // a switch: those run with the first tasks, under the watch.
        for action in [Action::ValidateNodeServices] {
            if !driver.exports(action.interface())
                || !driver.info().interfaces.contains(&action.interface())
            {
                continue;
            }
            let r = self
                .runtime
                .call(
                    driver,
                    CallRequest {
                        action,
                        node: None,
                        params: &params,
                        config: config.clone(),
                        services: Arc::new(MemoryServices::new()),
                        timeout: Some(Duration::from_secs(60)),
                        task: None,
                    },
                )
                .await;
            match r {
                Ok(_) => {}
                Err(CallError::Unsupported { .. } | CallError::InvalidRequest { .. }) => {}
                Err(CallError::Driver { error, .. })
                    if error.kind == crate::drivers::DriverErrorKind::Unsupported
                        || error.kind == crate::drivers::DriverErrorKind::InvalidInput => {}
                Err(e) => {
                    return Err(LifecycleError::Validation(format!(
                        "{} {} failed {action}: {e}",
                        name,
                        driver.info().version
                    )));
                }
            }
        }
        Ok(())
    }

    /// Watches `active`'s first calls here if it was just activated by an
    /// operator (see [`ActiveDriver::watched`] and [`WATCH_WINDOW`]).
    fn start_watch(&self, active: &ActiveDriver, driver: Driver, counts: (u64, u64)) {
        let age = chrono::Utc::now() - active.changed;
        let Ok(age) = age.to_std() else {
            return; // `changed` is ahead of this clock: skip rather than guess
        };
        if !active.watched || active.previous.is_none() || self.cfg.watch_calls == 0 {
            return;
        }
        let Some(left) = WATCH_WINDOW.checked_sub(age) else {
            return;
        };
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(me.watch(active.clone(), driver, counts, left));
        }
    }

    /// Watches this instance's first calls of `active` for up to `left`;
    /// past the error threshold, rolls it back for the whole cluster (unless
    /// another instance already did) and tells running tasks. In a cluster
    /// every instance watches its own calls, so the instance that took the
    /// activation need not be the one executing them.
    /// `counts` are the driver's call and error counts when it was swapped
    /// in.
    async fn watch(
        self: Arc<Self>,
        active: ActiveDriver,
        driver: Driver,
        counts: (u64, u64),
        left: Duration,
    ) {
        let name = active.name.clone();
        let (calls0, errors0) = counts;
        let give_up = Instant::now() + left;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let still = self
                .drivers
                .get(&name)
                .is_some_and(|i| i.driver.sha256() == active.sha256);
            if !still || Instant::now() > give_up {
                return;
            }
            let (calls, errors) = driver.call_counts();
            let (calls, errors) = (calls - calls0, errors - errors0);
            if calls < self.cfg.watch_calls {
                continue;
            }
            let ratio = errors as f64 / calls as f64;
            if ratio <= self.cfg.max_error_ratio {
                tracing::info!(driver = %name, version = %active.version, calls, errors, "new driver version passed its first calls");
                return;
            }
            let reason = format!(
                "{}{errors} of the first {calls} calls of {name} {} failed",
                rollback::REASON_PREFIX,
                active.version
            );
            tracing::warn!(driver = %name, version = %active.version, calls, errors, "{reason}");
            let message = format!(
                "rolled back from {} to {} ({reason})",
                active.version,
                active.previous.as_deref().unwrap_or("?")
            );
            match self
                .store
                .driver_rollback_if(&name, active.generation, &message)
                .await
            {
                Ok(Some(back)) => {
                    if let Err(e) = self.sync().await {
                        tracing::warn!(driver = %name, error = %e, "cannot apply the rollback here yet");
                    }
                    self.tell_running_tasks(&name, &back, &reason).await;
                }
                Ok(None) => tracing::info!(driver = %name, version = %active.version,
                    "another instance or operator already changed the version"),
                Err(e) => tracing::error!(driver = %name, error = %e, "automatic rollback failed"),
            }
            return;
        }
    }

    /// Adds a status message about a driver change to every running task.
    async fn tell_running_tasks(&self, name: &str, back: &ActiveDriver, reason: &str) {
        let filter = crate::store::TaskFilter {
            parent: Some(None),
            status: Some(crate::store::TaskStatus::Running),
            limit: 0,
            offset: 0,
        };
        let tasks = match self.store.list_tasks(&filter).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list running tasks");
                return;
            }
        };
        let messages: Vec<crate::store::NewMessage> = tasks
            .iter()
            .map(|t| crate::store::NewMessage {
                task_id: t.id,
                message: format!("driver {name}: {reason}; now on {}", back.version),
                error: true,
                context_type: "task".into(),
                context: t.id.to_string(),
                extra: None,
            })
            .collect();
        if let Err(e) = self.store.add_messages(&messages).await {
            tracing::warn!(error = %e, "cannot tell running tasks about the rollback");
        }
    }

    /// Activates the version that was active before the current one (no
    /// validation, no watch: it ran before).
    pub async fn rollback(
        &self,
        name: &str,
        reason: Option<&str>,
    ) -> Result<ActiveDriver, LifecycleError> {
        let current = self
            .store
            .active_drivers()
            .await?
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| {
                LifecycleError::NotFound(format!("driver {name} has no installed active version"))
            })?;
        let previous = current.previous.clone().ok_or_else(|| {
            LifecycleError::Conflict(format!(
                "driver {name} has no previous version to roll back to"
            ))
        })?;
        let msg = format!(
            "rolled back from {} to {previous}{}",
            current.version,
            reason.map(|r| format!(" ({r})")).unwrap_or_default()
        );
        self.activate_now(name, &previous, Some(&msg), false).await
    }

    /// Deletes an inactive version.
    pub async fn delete(&self, name: &str, version: &str) -> Result<(), LifecycleError> {
        Ok(self.store.driver_version_delete(name, version).await?)
    }

    /// Applies every activation not applied here yet. Returns how many
    /// drivers were swapped.
    pub async fn sync(&self) -> Result<usize, LifecycleError> {
        let _one = self.sync_lock.lock().await;
        let active = self.store.active_drivers().await?;
        let mut swapped = 0;
        for a in &active {
            let seen = self
                .applied
                .lock()
                .expect("applied lock")
                .get(&a.name)
                .copied();
            if seen == Some(a.generation) {
                continue;
            }
            let current = self.drivers.get(&a.name);
            if current.as_ref().map(|c| c.driver.sha256()) != Some(a.sha256.as_str()) {
                let driver = match self.warm_driver(&a.name, &a.sha256).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(driver = %a.name, version = %a.version, error = %e,
                            "cannot load the active driver version; keeping the one loaded");
                        continue;
                    }
                };
                let config = self.grant(&a.name);
                // Counted before any call can reach the new version here.
                let counts = driver.call_counts();
                self.drivers.replace(Installed {
                    driver: driver.clone(),
                    config,
                });
                swapped += 1;
                tracing::info!(driver = %a.name, version = %a.version, generation = a.generation,
                    "driver version swapped in");
                self.start_watch(a, driver, counts);
            }
            self.applied
                .lock()
                .expect("applied lock")
                .insert(a.name.clone(), a.generation);
        }
        self.unload_idle(&active).await?;
        Ok(swapped)
    }

    /// Unloads versions that are neither active nor previous for their
    /// driver and have been unused for [`LifecycleConfig::warm_grace`]
    /// (calls in flight keep their own reference). Returns how many.
    async fn unload_idle(&self, active: &[ActiveDriver]) -> Result<usize, LifecycleError> {
        let mut keep: HashSet<String> = active.iter().map(|a| a.sha256.clone()).collect();
        let idle = |keep: &HashSet<String>, sha256: &String, w: &Warm| {
            !keep.contains(sha256) && w.used.elapsed() >= self.cfg.warm_grace
        };
        let any_idle = self
            .warm
            .lock()
            .expect("warm lock")
            .iter()
            .any(|(sha256, w)| idle(&keep, sha256, w));
        if !any_idle {
            return Ok(0);
        }
        for a in active {
            if let Some(previous) = &a.previous
                && let Some(v) = self.store.driver_version(&a.name, previous).await?
            {
                keep.insert(v.sha256);
            }
        }
        let mut warm = self.warm.lock().expect("warm lock");
        let before = warm.len();
        warm.retain(|sha256, w| {
            let drop = idle(&keep, sha256, w);
            if drop {
                tracing::info!(driver = %w.driver.info().name, sha256 = %sha256,
                    "idle driver version unloaded");
            }
            !drop
        });
        Ok(before - warm.len())
    }

    /// The loaded driver `name` with this SHA-256, loading it from the
    /// store. A stored version is verified again before it loads, against
    /// the keys trusted now: removing a key (or narrowing the names it may
    /// sign) stops its drivers loading.
    async fn warm_driver(&self, name: &str, sha256: &str) -> Result<Driver, LifecycleError> {
        if let Some(w) = self.warm.lock().expect("warm lock").get_mut(sha256) {
            w.used = Instant::now();
            return Ok(w.driver.clone());
        }
        let bytes = self
            .store
            .driver_bytes(sha256)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(format!("no stored driver {sha256}")))?;
        package::verify_named(
            &bytes,
            &self.cfg.trusted_keys,
            self.cfg.allow_unsigned,
            name,
        )
        .map_err(|e| LifecycleError::Untrusted {
            name: name.to_owned(),
            sha256: sha256.to_owned(),
            source: e,
        })?;
        let driver = self
            .runtime
            .load(&format!("stored {sha256}"), &bytes)
            .await?;
        if driver.info().name != name {
            return Err(LifecycleError::Manifest(format!(
                "stored version {sha256} of `{name}` is a driver named `{}`",
                driver.info().name
            )));
        }
        self.warm
            .lock()
            .expect("warm lock")
            .insert(sha256.to_owned(), Warm::new(driver.clone()));
        Ok(driver)
    }

    /// Development mode: installs and activates every new or changed
    /// `*.wasm` in `dir` (checked every poll interval) until `stop`. Only
    /// with unsigned drivers allowed.
    pub async fn watch_dir(self: Arc<Self>, dir: cap_std::fs::Dir, stop: CancellationToken) {
        if !self.cfg.allow_unsigned {
            tracing::warn!(
                "the driver development directory is watched only when unsigned drivers are allowed"
            );
            return;
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        loop {
            let mut names: Vec<String> = match dir.entries() {
                Ok(e) => e
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".wasm"))
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the driver development directory");
                    Vec::new()
                }
            };
            names.sort();
            for name in names {
                let Ok(bytes) = dir.read(&name) else { continue };
                let sha = hex::encode(Sha256::digest(&bytes));
                if seen.get(&name) == Some(&sha) {
                    continue;
                }
                seen.insert(name.clone(), sha);
                let done = match self
                    .install_inner(&bytes, Some("development directory"), true)
                    .await
                {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(file = %name, error = %e, "development driver not installed");
                        continue;
                    }
                };
                match self
                    .activate(&done.name, &done.version, Some("development directory"))
                    .await
                {
                    Ok(_) => {
                        tracing::info!(file = %name, driver = %done.name, version = %done.version, "development driver active")
                    }
                    Err(e) => {
                        tracing::warn!(file = %name, error = %e, "development driver not activated")
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.cfg.poll) => {}
            }
        }
    }

    /// Polls the active versions until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %e, "driver activation poll failed");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.cfg.poll) => {}
            }
        }
    }
}

/// The wire form of a manifest.
fn wire_manifest(m: Manifest) -> DriverManifest {
    DriverManifest {
        name: m.name,
        version: m.version,
        vendor: m.vendor,
        interfaces: m.interfaces,
        oob_types: m.oob_types,
        requested: wire_requested(m.requested),
    }
}
