//! The per-call sandbox: the data a call's `Store` owns, the host functions a
//! guest may call (`drydock:driver/host`), and the memory limiter.
//!
//! A guest gets no files, no environment, no arguments and no sockets; its
//! stdout and stderr are captured (stderr's tail explains a panic); its only
//! way out is `wasi:http`, through [`EgressHooks`].

use super::bindings::{host, types};
use super::config::DriverConfig;
use super::egress::EgressHooks;
use super::guest_log;
use super::services::{BuildData, CallScope, DriverServices, StatusMessage};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Longest key a driver may use in its key-value store.
const MAX_KV_KEY: usize = 512;
/// Largest value a driver may store under one key.
const MAX_KV_VALUE: usize = 1 << 20;
/// Longest log line or status message kept (longer ones are cut).
const MAX_MESSAGE: usize = 8 << 10;
/// Most status messages one call may post.
const MAX_STATUS_PER_CALL: u32 = 1000;
/// Largest build-data document.
const MAX_BUILD_DATA: usize = 16 << 20;
/// How much of the guest's stdout/stderr is kept.
const STDIO_CAPTURE: usize = 16 << 10;

/// Memory limits, recording a refused growth so a trap can be explained.
pub(crate) struct Limiter {
    inner: StoreLimits,
    limit: usize,
    /// The size a refused `memory.grow` asked for.
    pub(crate) refused: Option<usize>,
}

impl Limiter {
    fn new(limit: usize) -> Self {
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(limit)
                .instances(64)
                .tables(64)
                .memories(8)
                .build(),
            limit,
            refused: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        if !ok {
            self.refused = Some(desired);
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Everything one call's `Store` owns.
pub(crate) struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    egress: EgressHooks,
    pub(crate) limiter: Limiter,
    scope: Arc<CallScope>,
    config: Arc<DriverConfig>,
    services: Arc<dyn DriverServices>,
    deadline: Instant,
    stderr: MemoryOutputPipe,
    status_posted: u32,
    /// A host service failure during the call (the call fails as a host error).
    pub(crate) host_failure: Option<String>,
    /// The host failure was a service being unavailable (transient).
    pub(crate) services_down: bool,
}

impl CallState {
    pub(crate) fn new(
        scope: Arc<CallScope>,
        config: Arc<DriverConfig>,
        services: Arc<dyn DriverServices>,
        egress: EgressHooks,
        deadline: Instant,
    ) -> Self {
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE);
        // No env, no args, no preopened directories, no sockets, no name
        // lookups: the builder's defaults, made explicit where it matters.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(stdout)
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress,
            limiter: Limiter::new(config.memory_bytes),
            scope,
            config,
            services,
            deadline,
            stderr,
            status_posted: 0,
            host_failure: None,
            services_down: false,
        }
    }

    /// The memory limit in force.
    pub(crate) fn memory_limit(&self) -> usize {
        self.limiter.limit
    }

    /// The guest's last stderr line that says something (a panic message).
    pub(crate) fn last_words(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return None;
        }
        // A Rust panic prints "thread '<name>' panicked at FILE:LINE:COL:" then the message.
        let start = lines
            .iter()
            .rposition(|l| l.contains("panicked at"))
            .unwrap_or(lines.len().saturating_sub(1));
        let words = lines[start..]
            .iter()
            .take(3)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        Some(truncate(&words, 1024))
    }

    fn fail(&mut self, what: String) -> wasmtime::Error {
        self.host_failure = Some(what.clone());
        wasmtime::Error::msg(what)
    }

    /// A failure of a host service (the database behind it): transient.
    fn unavailable(&mut self, what: String) -> wasmtime::Error {
        self.services_down = true;
        self.fail(what)
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

impl types::Host for CallState {}

fn level(l: types::LogLevel) -> tracing::Level {
    match l {
        types::LogLevel::Trace => tracing::Level::TRACE,
        types::LogLevel::Debug => tracing::Level::DEBUG,
        types::LogLevel::Info => tracing::Level::INFO,
        types::LogLevel::Warn => tracing::Level::WARN,
        types::LogLevel::Error => tracing::Level::ERROR,
    }
}

impl host::Host for CallState {
    async fn log(&mut self, level_: types::LogLevel, message: String) -> wasmtime::Result<()> {
        let message = truncate(&message, MAX_MESSAGE);
        guest_log::emit(
            &self.scope.driver,
            level(level_),
            self.scope.action_name(),
            self.scope.node.as_deref(),
            &message,
        );
        Ok(())
    }

    async fn status(&mut self, message: String, is_error: bool) -> wasmtime::Result<()> {
        self.status_posted += 1;
        if self.status_posted > MAX_STATUS_PER_CALL {
            return Ok(());
        }
        let msg = StatusMessage {
            scope: (*self.scope).clone(),
            message: truncate(&message, MAX_MESSAGE),
            is_error,
        };
        if let Err(e) = self.services.status(msg).await {
            return Err(self.unavailable(format!("recording a status message failed: {e}")));
        }
        Ok(())
    }

    async fn config_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.settings.get(&key).cloned())
    }

    async fn secret_get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        let value = self.config.secrets.get(&name).cloned();
        if value.is_none() {
            tracing::debug!(secret = %name, "driver asked for a secret it was not granted");
        }
        Ok(value)
    }

    async fn config_keys(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.config.settings.keys().cloned().collect())
    }

    async fn kv_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        check_key(&key).map_err(|e| self.fail(e))?;
        match self.services.kv_get(&self.scope.driver, &key).await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.unavailable(format!("key-value read failed: {e}"))),
        }
    }

    async fn kv_set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        check_key(&key).map_err(|e| self.fail(e))?;
        if value.len() > MAX_KV_VALUE {
            return Err(self.fail(format!(
                "key-value value for `{key}` is {} bytes; the limit is {MAX_KV_VALUE}",
                value.len()
            )));
        }
        match self.services.kv_set(&self.scope.driver, &key, &value).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.unavailable(format!("key-value write failed: {e}"))),
        }
    }

    async fn kv_delete(&mut self, key: String) -> wasmtime::Result<()> {
        check_key(&key).map_err(|e| self.fail(e))?;
        match self.services.kv_delete(&self.scope.driver, &key).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.unavailable(format!("key-value delete failed: {e}"))),
        }
    }

    async fn deadline_remaining_ms(&mut self) -> wasmtime::Result<u64> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        Ok(u64::try_from(left.as_millis()).unwrap_or(u64::MAX))
    }

    async fn sleep_ms(&mut self, ms: u64) -> wasmtime::Result<bool> {
        let want = Duration::from_millis(ms);
        let left = self.deadline.saturating_duration_since(Instant::now());
        if want >= left {
            return Ok(false);
        }
        tokio::time::sleep(want).await;
        Ok(true)
    }

    async fn build_data(
        &mut self,
        generator: String,
        format: String,
        content: String,
    ) -> wasmtime::Result<()> {
        if content.len() > MAX_BUILD_DATA {
            return Err(self.fail(format!(
                "build data from {generator} is {} bytes; the limit is {MAX_BUILD_DATA}",
                content.len()
            )));
        }
        let data = BuildData {
            scope: (*self.scope).clone(),
            generator: truncate(&generator, 128),
            format: truncate(&format, 128),
            content,
        };
        if let Err(e) = self.services.build_data(data).await {
            return Err(self.unavailable(format!("recording build data failed: {e}")));
        }
        Ok(())
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KV_KEY {
        return Err(format!(
            "key-value key must be 1 to {MAX_KV_KEY} bytes, got {}",
            key.len()
        ));
    }
    Ok(())
}
