//! The driver runtime: one wasmtime engine (pooling allocator, epoch
//! interruption ticked by its own thread), loading and checking components,
//! and running each call in a fresh store with limits.

use super::action::{Action, Interface};
use super::bindings::{Exports, WitVersion};
use super::burst::{self, BurstWatch};
use super::cache::CompileCache;
use super::config::{DriverConfig, RuntimeConfig};
use super::datagram::{self, DatagramGrant};
use super::dispatch;
use super::egress::{EgressGrant, EgressHooks, EgressPolicy};
use super::error::{CallError, LoadError};
use super::limits::{CallBudget, DriverLimits, DriverRequests, cut};
use super::pool;
use super::sandbox::CallState;
use super::services::{CallScope, DriverServices, MemoryServices};
use crate::model;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store, Trap};

/// The name of the span each driver call runs in (exported as a trace
/// span; left out of log lines, which carry its fields themselves).
pub const CALL_SPAN: &str = "driver_call";

/// The log target (`driver::loading`) of a driver's lines while it is being
/// loaded, before its `info` names it.
const LOADING_LOG: &str = "loading";

/// How long reading a driver's `info` may take at load time.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);

/// Outbound access a driver asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outbound {
    /// Hosts it needs besides BMCs.
    pub hosts: Vec<String>,
    /// Whether it talks to node BMCs.
    pub node_bmc: bool,
}

/// A driver's description, as read from its `info` export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriverInfo {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Publisher.
    pub vendor: String,
    /// Description.
    pub description: String,
    /// Interfaces it implements.
    pub interfaces: Vec<Interface>,
    /// Oob types it claims.
    pub oob_types: Vec<String>,
    /// Outbound access it asks for.
    pub outbound: Outbound,
    /// Actions not safe to repeat.
    pub unsafe_to_repeat: Vec<String>,
}

/// A loaded, checked driver component, ready to call. Cheap to clone.
#[derive(Clone)]
pub struct Driver(Arc<LoadedDriver>);

pub(crate) struct LoadedDriver {
    pub(crate) info: DriverInfo,
    pub(crate) sha256: String,
    pub(crate) size: usize,
    pub(crate) pre: InstancePre<CallState>,
    /// Its driver exports, in its WIT version.
    pub(crate) exports: Exports,
    /// Calls made and calls failed (any error) on this instance.
    pub(crate) calls: std::sync::atomic::AtomicU64,
    pub(crate) errors: std::sync::atomic::AtomicU64,
    /// Its log callsites (found once, not per line).
    pub(crate) log: &'static super::LogSites,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("info", &self.0.info)
            .field("sha256", &self.0.sha256)
            .finish()
    }
}

impl Driver {
    /// What the driver says about itself.
    pub fn info(&self) -> &DriverInfo {
        &self.0.info
    }

    /// SHA-256 of the component, hex.
    pub fn sha256(&self) -> &str {
        &self.0.sha256
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.0.size
    }

    /// The `drydock:driver` WIT version the component was built against.
    pub fn wit_version(&self) -> WitVersion {
        self.0.exports.version()
    }

    /// The WIT worlds the component satisfies (by the interfaces it exports).
    pub fn worlds(&self) -> Vec<&'static str> {
        let version = self.wit_version();
        let mut w: Vec<&'static str> = version
            .interfaces()
            .iter()
            .filter(|i| self.exports(**i))
            .map(|i| match i {
                Interface::Oob => "oob-driver",
                Interface::Node => "node-driver",
                Interface::Network => "network-driver",
                Interface::Provisioner => "provisioner-driver",
            })
            .collect();
        if w.len() == version.interfaces().len() {
            w.push("full-driver");
        }
        w
    }

    /// Whether the component exports the interface.
    pub fn exports(&self, iface: Interface) -> bool {
        self.0.exports.has(iface)
    }

    /// Calls made through this loaded driver and how many failed.
    pub fn call_counts(&self) -> (u64, u64) {
        (
            self.0.calls.load(Ordering::Relaxed),
            self.0.errors.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn loaded(&self) -> &LoadedDriver {
        &self.0
    }
}

/// One action to run.
#[derive(Clone)]
pub struct CallRequest<'a> {
    /// The action.
    pub action: Action,
    /// The node, for node-scoped actions (credentials already resolved).
    pub node: Option<&'a model::Node>,
    /// Further parameters.
    pub params: &'a model::ActionParams,
    /// The driver's operator configuration and grants.
    pub config: Arc<DriverConfig>,
    /// Key-value store, status messages, build data.
    pub services: Arc<dyn DriverServices>,
    /// Time limit; the action's default when none.
    pub timeout: Option<Duration>,
    /// Task the call runs for.
    pub task: Option<String>,
}

/// Stops the epoch thread when the runtime goes.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The driver runtime. One per process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    permits: Arc<Semaphore>,
    cache: Option<CompileCache>,
    config: RuntimeConfig,
    limits: Arc<DriverLimits>,
    /// Outgoing requests open per driver (see `DriverLimits::requests_per_driver`).
    requests: DriverRequests,
    pooling: bool,
    /// Calls at once since the runtime was last idle (memory is given back
    /// after a burst).
    burst: BurstWatch,
    _ticker: Ticker,
}

/// The engine: pooled with `PAGEMAP_SCAN` where the kernel has it, pooled
/// without it otherwise, on-demand allocation when the pool's address space
/// cannot be reserved (or pooling is off). Whether it pools.
fn start_engine(config: &RuntimeConfig) -> Result<(Engine, bool), RuntimeError> {
    if config.pooling {
        let pagemap = pool::pagemap_available();
        let first = Engine::new(&pool::engine_config(config, true, pagemap));
        let pooled = match first {
            Err(e) if pagemap => {
                tracing::warn!(error = %e, "PAGEMAP_SCAN refused; pooling without it");
                Engine::new(&pool::engine_config(config, true, false))
            }
            other => other,
        };
        match pooled {
            Ok(e) => {
                tracing::debug!(pagemap, "pooling allocator ready");
                return Ok((e, true));
            }
            Err(e) => tracing::warn!(
                error = %e,
                "pooling allocator unavailable (address space reservation failed?); \
                 falling back to on-demand instance allocation"
            ),
        }
    }
    let e = Engine::new(&pool::engine_config(config, false, false))
        .map_err(|e| RuntimeError(e.to_string()))?;
    Ok((e, false))
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
#[error("driver runtime: {0}")]
pub struct RuntimeError(String);

impl Runtime {
    /// Starts a runtime. `cache` keeps compiled drivers across restarts.
    pub fn new(config: RuntimeConfig, cache: Option<CompileCache>) -> Result<Self, RuntimeError> {
        let (engine, pooling) = start_engine(&config)?;

        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError(format!("linking WASI: {e}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError(format!("linking wasi:http: {e}")))?;
        super::bindings::add_to_linker(&mut linker)
            .map_err(|e| RuntimeError(format!("linking the drydock host interfaces: {e}")))?;

        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engine = engine.clone();
            let stop = stop.clone();
            let tick = config.epoch_tick;
            std::thread::Builder::new()
                .name("drydock-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| RuntimeError(format!("starting the epoch thread: {e}")))?
        };
        tracing::debug!(
            pooling,
            max_calls = config.max_concurrent_calls,
            "driver runtime ready"
        );
        Ok(Self {
            permits: Arc::new(Semaphore::new(config.max_concurrent_calls as usize)),
            engine,
            linker,
            cache,
            limits: Arc::new(config.limits.clone()),
            requests: DriverRequests::default(),
            config,
            pooling,
            burst: BurstWatch::default(),
            _ticker: Ticker {
                stop,
                thread: Some(thread),
            },
        })
    }

    /// The limits every driver call is held to.
    pub fn limits(&self) -> &DriverLimits {
        &self.limits
    }

    /// Whether the pooling allocator is in use.
    pub fn is_pooling(&self) -> bool {
        self.pooling
    }

    /// Calls holding one of the runtime's `max_concurrent_calls` slots now
    /// (instantiating or running, including a load's `info` call).
    pub fn calls_in_flight(&self) -> usize {
        (self.config.max_concurrent_calls as usize).saturating_sub(self.permits.available_permits())
    }

    /// The wasmtime engine (for benchmarks comparing against bare wasmtime).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads a driver from a file.
    pub async fn load_file(&self, path: &std::path::Path) -> Result<Driver, LoadError> {
        let origin = path.display().to_string();
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| LoadError::Io {
                origin: origin.clone(),
                source,
            })?;
        self.load(&origin, &bytes).await
    }

    /// Compiles (or fetches from the cache) a component without checking it.
    /// Returns the component and whether it came from the cache.
    pub async fn compile(
        &self,
        origin: &str,
        bytes: &[u8],
    ) -> Result<(Component, String, bool), LoadError> {
        check_header(origin, bytes)?;
        let sha256 = hex::encode(Sha256::digest(bytes));
        if let Some(c) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.engine, &sha256))
        {
            return Ok((c, sha256, true));
        }
        let engine = self.engine.clone();
        let owned = bytes.to_vec();
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, &owned))
            .await
            .map_err(|e| LoadError::Compile {
                origin: origin.to_owned(),
                reason: e.to_string(),
            })?
            .map_err(|e| match pool::too_big(&e) {
                Some(reason) => LoadError::TooBig {
                    origin: origin.to_owned(),
                    reason,
                },
                None => LoadError::Compile {
                    origin: origin.to_owned(),
                    reason: format!("{e:#}"),
                },
            })?;
        if let Some(cache) = &self.cache {
            cache.put(&self.engine, &sha256, &component);
        }
        Ok((component, sha256, false))
    }

    /// Loads a driver from bytes: checks it is a component of a WIT version
    /// this host serves ([`WitVersion::SERVED`]), that its imports are ones
    /// the host provides, that its exports have that version's types, and
    /// reads its `info`.
    pub async fn load(&self, origin: &str, bytes: &[u8]) -> Result<Driver, LoadError> {
        let (component, sha256, cached) = self.compile(origin, bytes).await?;
        tracing::debug!(origin, sha256 = %sha256, cached, "compiled driver component");
        let version = WitVersion::of_component(&self.engine, origin, &component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Imports {
                origin: origin.to_owned(),
                reason: format!("{e:#}"),
            })?;
        if !Exports::is_driver(version, &pre) {
            return Err(LoadError::NotADriver {
                origin: origin.to_owned(),
                served: WitVersion::served_list(),
                exports: export_names(&self.engine, &component),
            });
        }
        let (info, exports) = self.read_info(origin, version, &pre).await?;
        validate_info(origin, &info, &exports)?;
        let loaded = LoadedDriver {
            log: super::log_sites(&info.name),
            info,
            sha256,
            size: bytes.len(),
            pre,
            exports,
            calls: Default::default(),
            errors: Default::default(),
        };
        Ok(Driver(Arc::new(loaded)))
    }

    /// Instantiates the driver once: looks up and type-checks every
    /// exported interface (calls use them by index, unchecked) and reads
    /// `info`.
    async fn read_info(
        &self,
        origin: &str,
        version: WitVersion,
        pre: &InstancePre<CallState>,
    ) -> Result<(DriverInfo, Exports), LoadError> {
        let scope = Arc::new(CallScope {
            driver: origin.to_owned(),
            action: None,
            node: None,
            task: None,
            // Its name is not known yet; one set for every load, so a
            // refused upload leaves no callsites behind.
            log: super::log_sites(LOADING_LOG),
        });
        let config = Arc::new(DriverConfig::default());
        let services: Arc<dyn DriverServices> = Arc::new(MemoryServices::new());
        let deadline = Instant::now() + INFO_TIMEOUT;
        let mut store = self.new_store(scope, config, services, EgressPolicy::default(), deadline);
        let info_err = |e: CallError| LoadError::Info {
            origin: origin.to_owned(),
            source: Box::new(e),
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| LoadError::Compile {
                origin: origin.to_owned(),
                reason: "runtime shutting down".into(),
            })?;
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| info_err(classify("info", origin, &store, e, INFO_TIMEOUT)))?;
        let (exports, meta) =
            Exports::load(version, pre, &mut store, &instance).map_err(|(iface, e)| {
                LoadError::ExportType {
                    origin: origin.to_owned(),
                    interface: format!("drydock:driver/{iface}@{version}"),
                    reason: format!("{e:#}"),
                }
            })?;
        let info = tokio::time::timeout(INFO_TIMEOUT, meta.info(&mut store))
            .await
            .map_err(|_| {
                info_err(CallError::Deadline {
                    driver: origin.to_owned(),
                    action: "info",
                    limit: INFO_TIMEOUT,
                })
            })?
            .map_err(|e| info_err(classify("info", origin, &store, e, INFO_TIMEOUT)))?;
        Ok((info, exports))
    }

    fn new_store(
        &self,
        scope: Arc<CallScope>,
        config: Arc<DriverConfig>,
        services: Arc<dyn DriverServices>,
        policy: EgressPolicy,
        deadline: Instant,
    ) -> Store<CallState> {
        let mut config = config;
        if config.memory_bytes > self.config.max_memory_bytes {
            let mut c = (*config).clone();
            c.memory_bytes = self.config.max_memory_bytes;
            config = Arc::new(c);
        }
        let budget = Arc::new(CallBudget::new(
            self.limits.clone(),
            scope.clone(),
            services.clone(),
            &self.requests,
        ));
        let egress = EgressHooks {
            policy: Arc::new(policy),
            tls: config.tls.clone(),
            scope: scope.clone(),
            budget: budget.clone(),
            deadline,
        };
        let state = CallState::new(scope, config, services, egress, budget, deadline);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(wasmtime::UpdateDeadline::Interrupt)
            } else {
                Ok(wasmtime::UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Runs one action in a fresh sandbox and returns its result as JSON
    /// (`null` for actions without a result).
    pub async fn call(
        &self,
        driver: &Driver,
        req: CallRequest<'_>,
    ) -> Result<serde_json::Value, CallError> {
        let d = driver.loaded();
        let action = req.action;
        let name = d.info.name.clone();
        if !driver.exports(action.interface()) || !d.info.interfaces.contains(&action.interface()) {
            return Err(CallError::Unsupported {
                driver: name,
                action: action.name(),
                interface: action.interface(),
            });
        }
        if action.is_node_scoped() && req.node.is_none() {
            return Err(CallError::InvalidRequest {
                action: action.name(),
                reason: "this action needs a node".into(),
            });
        }
        let mut limit = req.timeout.unwrap_or_else(|| action.default_timeout());
        if let Some(max) = req.config.max_call_time {
            limit = limit.min(max);
        }
        let deadline = Instant::now() + limit;
        let scope = Arc::new(CallScope {
            driver: name.clone(),
            action: Some(action),
            node: req.node.map(|n| n.name.clone()),
            task: req.task.clone(),
            log: d.log,
        });
        let policy = call_policy(&req, d.info.outbound.node_bmc);
        let span = crate::observe::traces::driver_call_span(
            &name,
            action.name(),
            req.node.map_or("-", |n| n.name.as_str()),
            req.task.as_deref().unwrap_or("-"),
        );
        // The permit is held until the store (and with it the instance's
        // pool slots) is dropped: a call's slots are back in the pool
        // before the next call may instantiate, so the pool is never
        // asked for more than `max_concurrent_calls` instances.
        let Ok(waited) = tokio::time::timeout(limit, self.permits.acquire()).await else {
            d.calls.fetch_add(1, Ordering::Relaxed);
            d.errors.fetch_add(1, Ordering::Relaxed);
            return Err(CallError::Deadline {
                driver: name,
                action: action.name(),
                limit,
            });
        };
        let Ok(permit) = waited else {
            return Err(CallError::Host {
                driver: name,
                reason: "runtime shutting down".into(),
            });
        };
        self.burst.started(self.calls_in_flight());
        let mut store = self.new_store(
            scope,
            req.config.clone(),
            req.services.clone(),
            policy,
            deadline,
        );
        let run = async {
            let instance = d.pre.instantiate_async(&mut store).await?;
            dispatch::dispatch(d, &mut store, &instance, &req).await
        };
        let started = Instant::now();
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = tokio::time::timeout(left, run.instrument(span.clone())).await;
        let result = match outcome {
            Err(_elapsed) => Err(CallError::Deadline {
                driver: name,
                action: action.name(),
                limit,
            }),
            Ok(Err(e)) => Err(classify(action.name(), &name, &store, e, limit)),
            Ok(Ok(Err(dispatch::Refused::Driver(mut e)))) => {
                // The driver's text goes into task results, messages and
                // logs: cut it.
                e.message = cut(&e.message, self.limits.error_bytes);
                Err(CallError::Driver {
                    driver: name,
                    action: action.name(),
                    error: e,
                })
            }
            Ok(Ok(Err(dispatch::Refused::Request(reason)))) => Err(CallError::InvalidRequest {
                action: action.name(),
                reason,
            }),
            Ok(Ok(Ok(v))) => Ok(v),
        };
        crate::observe::metrics::driver_call(
            &d.info.name,
            action,
            req.node,
            &result,
            started.elapsed(),
        );
        d.calls.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            d.errors.fetch_add(1, Ordering::Relaxed);
        }
        span.in_scope(|| match &result {
            Ok(_) => tracing::debug!("driver call succeeded"),
            Err(e) => tracing::info!(error = %e, kind = e.kind(), "driver call failed"),
        });
        // Slots first, then the permit (see above).
        drop(store);
        drop(permit);
        if self.burst.ended(self.calls_in_flight()) {
            tokio::task::spawn_blocking(burst::give_back);
        }
        result
    }
}

/// The egress grants of one call: the driver's, plus the node's BMC for oob
/// actions of a driver that declares node-BMC access (`node_bmc`: the
/// `node-bmc` flag of its `outbound-access`, the SDK's `NODE_BMC`), and the
/// switch for network actions (the operator's design names both).
fn call_policy(req: &CallRequest<'_>, node_bmc: bool) -> EgressPolicy {
    let mut policy = EgressPolicy::new(req.config.egress.clone());
    match req.action.interface() {
        Interface::Oob => {
            if node_bmc
                && let Some(n) = req.node
                && let Some(addr) = n.oob.address.as_deref()
            {
                grant_endpoint(&mut policy, addr, n.oob.port, "node BMC");
                policy.grant_datagram(DatagramGrant {
                    host: addr.to_owned(),
                    port: n.oob.port.unwrap_or(datagram::DEFAULT_PORT),
                });
            }
        }
        Interface::Network => {
            let switch = req
                .params
                .switch
                .as_ref()
                .or(req.params.switch_port.as_ref().map(|p| &p.switch))
                .or_else(|| {
                    req.node.and_then(|n| {
                        n.interfaces
                            .iter()
                            .find_map(|i| i.switch_port.as_ref().map(|p| &p.switch))
                    })
                });
            if let Some(sw) = switch.filter(|s| !s.address.is_empty()) {
                grant_endpoint(&mut policy, &sw.address, sw.port, "switch");
            }
        }
        Interface::Node | Interface::Provisioner => {}
    }
    policy
}

/// Grants `addr` on `port`, or on 80 and 443 when no port is given
/// (`addr` parsed once).
fn grant_endpoint(policy: &mut EgressPolicy, addr: &str, port: Option<u16>, what: &str) {
    match (EgressGrant::host(addr, port), port) {
        (Ok(g), Some(_)) => policy.push(g),
        (Ok(g), None) => {
            for port in [80, 443] {
                policy.push(g.on_port(port));
            }
        }
        (Err(e), _) => tracing::warn!(error = %e, "{what} address is not a valid host"),
    }
}

/// Turns a wasmtime error from instantiation or a call into a `CallError`.
fn classify(
    action: &'static str,
    driver: &str,
    store: &Store<CallState>,
    e: wasmtime::Error,
    limit: Duration,
) -> CallError {
    let state = store.data();
    if let Some(reason) = &state.host_failure
        && state.services_down
    {
        return CallError::ServicesUnavailable {
            driver: driver.to_owned(),
            reason: reason.clone(),
        };
    }
    if let Some(reason) = &state.host_failure {
        return CallError::Host {
            driver: driver.to_owned(),
            reason: reason.clone(),
        };
    }
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return CallError::Deadline {
            driver: driver.to_owned(),
            action,
            limit,
        };
    }
    if let Some(requested) = state.limiter.refused {
        return CallError::MemoryLimit {
            driver: driver.to_owned(),
            action,
            limit: state.memory_limit(),
            requested,
        };
    }
    let mut trap = match e.downcast_ref::<Trap>() {
        Some(t) => format!("wasm trap: {t}"),
        None => format!("{e:#}"),
    };
    if let Some(words) = state.last_words() {
        trap = format!("{trap}; guest stderr: {words}");
    }
    CallError::Trap {
        driver: driver.to_owned(),
        action,
        trap,
    }
}

fn check_header(origin: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm(origin.to_owned()));
    }
    // Core modules have version 1 with layer 0; components use layer 1.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule(origin.to_owned()));
    }
    Ok(())
}

fn export_names(engine: &Engine, c: &Component) -> String {
    let names: Vec<String> = c
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_owned())
        .collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

fn validate_info(origin: &str, info: &DriverInfo, exports: &Exports) -> Result<(), LoadError> {
    let bad = |reason: String| LoadError::BadInfo {
        origin: origin.to_owned(),
        reason,
    };
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !info.name.starts_with('-');
    if !name_ok {
        return Err(bad(format!(
            "name `{}` must be 1-64 characters of a-z, 0-9 and `-`",
            cut(&info.name, 64).escape_debug()
        )));
    }
    if info.version.is_empty() || info.version.len() > 64 {
        return Err(bad("version must be 1-64 characters".into()));
    }
    // What a driver says about itself is stored and shown: bounded.
    let too_long = |what: &str, text: &str, max: usize| {
        (text.len() > max).then(|| bad(format!("{what} is longer than {max} bytes")))
    };
    let lists = [
        ("oob types", &info.oob_types, 32, 64),
        ("outbound hosts", &info.outbound.hosts, 256, 300),
        ("unsafe-to-repeat actions", &info.unsafe_to_repeat, 64, 64),
    ];
    for (what, list, most, longest) in lists {
        if list.len() > most {
            return Err(bad(format!("it lists more than {most} {what}")));
        }
        if let Some(e) = list.iter().find_map(|x| too_long(what, x, longest)) {
            return Err(e);
        }
    }
    if let Some(e) = too_long("vendor", &info.vendor, 256)
        .or_else(|| too_long("description", &info.description, 4096))
    {
        return Err(e);
    }
    if info.interfaces.is_empty() {
        return Err(bad("it claims no interface".into()));
    }
    for iface in &info.interfaces {
        if !exports.has(*iface) {
            return Err(bad(format!(
                "it claims the {iface} interface but does not export drydock:driver/{iface}@{}",
                exports.version()
            )));
        }
    }
    if !info.oob_types.is_empty() && !info.interfaces.contains(&Interface::Oob) {
        return Err(bad("it claims oob types without implementing oob".into()));
    }
    Ok(())
}
