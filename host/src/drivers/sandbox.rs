//! The per-call sandbox: the data a call's `Store` owns, the host functions a
//! guest may call (`drydock:driver/host`), and the memory limiter.
//!
//! A guest gets no files, no environment, no arguments and no sockets; its
//! stdout and stderr are captured (stderr's tail explains a panic); its only
//! way out is `wasi:http`, through [`EgressHooks`].

use super::bindings::{host, types};
use super::config::DriverConfig;
use super::datagram::Datagrams;
use super::egress::EgressHooks;
use super::guest_log;
use super::kv_ledger::{KvDelta, KvLedger};
use super::limits::{CallBudget, Limit, cut};
use super::services::{BuildData, CallScope, DriverServices};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// How much of the guest's stdout/stderr is kept.
const STDIO_CAPTURE: usize = 16 << 10;

/// Memory limits: `limit` covers all of a component's linear memories
/// together (a component may define several). Records a refused growth so
/// a trap can be explained.
pub(crate) struct Limiter {
    inner: StoreLimits,
    limit: usize,
    /// Bytes of linear memory the store's memories hold together.
    used: usize,
    /// The total a refused `memory.grow` would have reached.
    pub(crate) refused: Option<usize>,
}

impl Limiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(limit)
                .instances(64)
                .tables(64)
                .memories(8)
                .build(),
            limit,
            used: 0,
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
        // Memories never shrink: this memory's growth adds to the total.
        let total = self.used.saturating_sub(current).saturating_add(desired);
        let ok = total <= self.limit && self.inner.memory_growing(current, desired, maximum)?;
        if ok {
            self.used = total;
        } else {
            self.refused = Some(total);
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
    /// Built at the guest's first WASI call: most calls make none.
    wasi: Option<WasiCtx>,
    http: WasiHttpCtx,
    table: ResourceTable,
    egress: EgressHooks,
    pub(crate) limiter: Limiter,
    scope: Arc<CallScope>,
    config: Arc<DriverConfig>,
    services: Arc<dyn DriverServices>,
    deadline: Instant,
    /// The guest's stderr, once it has a WASI context.
    stderr: Option<MemoryOutputPipe>,
    budget: Arc<CallBudget>,
    /// The driver's key-value usage, shared with its other calls.
    kv_ledger: Arc<KvLedger>,
    /// A host service failure during the call (the call fails as a host error).
    pub(crate) host_failure: Option<String>,
    /// The host failure was a service being unavailable (transient).
    pub(crate) services_down: bool,
    /// UDP to the node's BMC (WIT 0.2.0 `datagram`).
    pub(crate) datagrams: Datagrams,
}

impl CallState {
    pub(crate) fn new(
        scope: Arc<CallScope>,
        config: Arc<DriverConfig>,
        services: Arc<dyn DriverServices>,
        egress: EgressHooks,
        budget: Arc<CallBudget>,
        deadline: Instant,
    ) -> Self {
        // Services without a shared count: this call counts alone.
        let kv_ledger = services
            .kv_ledger()
            .unwrap_or_else(|| Arc::new(KvLedger::sole_writer()));
        let datagrams = Datagrams::new(
            egress.policy.datagram().cloned(),
            scope.clone(),
            budget.clone(),
            deadline,
        );
        Self {
            datagrams,
            wasi: None,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress,
            limiter: Limiter::new(config.memory_bytes),
            scope,
            config,
            services,
            deadline,
            stderr: None,
            budget,
            kv_ledger,
            host_failure: None,
            services_down: false,
        }
    }

    /// The driver's operator settings.
    pub(crate) fn settings(&self) -> &std::collections::BTreeMap<String, String> {
        &self.config.settings
    }

    /// The memory limit in force.
    pub(crate) fn memory_limit(&self) -> usize {
        self.limiter.limit
    }

    /// The guest's last stderr line that says something (a panic message).
    pub(crate) fn last_words(&self) -> Option<String> {
        let bytes = self.stderr.as_ref()?.contents();
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
        Some(cut(&words, 1024))
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

/// The guest's WASI context and its stderr: no env, no args, no preopened
/// directories, no sockets, no name lookups (the builder's defaults, made
/// explicit where it matters); stdout and stderr captured.
fn sandbox_wasi() -> (WasiCtx, MemoryOutputPipe) {
    let stdout = MemoryOutputPipe::new(STDIO_CAPTURE);
    let stderr = MemoryOutputPipe::new(STDIO_CAPTURE);
    let wasi = wasmtime_wasi::WasiCtxBuilder::new()
        .stdout(stdout)
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    (wasi, stderr)
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let stderr = &mut self.stderr;
        let ctx = self.wasi.get_or_insert_with(|| {
            let (wasi, pipe) = sandbox_wasi();
            *stderr = Some(pipe);
            wasi
        });
        WasiCtxView {
            ctx,
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

/// Every guest log level, most detailed first.
const LEVELS: [types::LogLevel; 5] = [
    types::LogLevel::Trace,
    types::LogLevel::Debug,
    types::LogLevel::Info,
    types::LogLevel::Warn,
    types::LogLevel::Error,
];

impl CallState {
    /// The most detailed level at which this driver's log lines are
    /// recorded now (WIT 0.2.0 `host.log-threshold`); `None` if none are.
    pub(crate) fn recorded_log_level(&self) -> Option<types::LogLevel> {
        LEVELS
            .into_iter()
            .find(|l| guest_log::recorder(self.scope.log, level(*l)).is_some())
    }
}

/// A host function's answer: done, or refused by a limit.
type Answer = wasmtime::Result<Result<(), types::LimitExceeded>>;

impl CallState {
    /// Refuses with `limit`, reporting it once for the call.
    async fn refuse(&mut self, limit: Limit, what: &str) -> Answer {
        Ok(Err(self.budget.report(limit, what).await))
    }

    /// The refusal for a bad key, if it is one.
    async fn check_key(&mut self, key: &str) -> Option<Answer> {
        let max = self.budget.limits().kv_key_bytes;
        if key.is_empty() || key.len() as u64 > max {
            let what = format!(
                "a key-value key must be 1 to {max} bytes, got {}",
                key.len()
            );
            return Some(self.refuse(Limit::KvKeyBytes, &what).await);
        }
        None
    }

    /// Reads the driver's usage into the ledger when it has none or its
    /// count is stale.
    async fn kv_read_usage(&mut self) -> wasmtime::Result<()> {
        let read = self.services.kv_usage(&self.scope.driver);
        match self.kv_ledger.refresh(&self.scope.driver, read).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.unavailable(format!("key-value read failed: {e}"))),
        }
    }

    /// `kv-set`, in `key`'s turn ([`super::kv_order`]).
    async fn kv_set_in_turn(&mut self, key: &str, value: &str) -> Answer {
        if let Some(refused) = self.check_key(key).await {
            return refused;
        }
        let limits = self.budget.limits().clone();
        if value.len() as u64 > limits.kv_value_bytes {
            let what = format!("the value for `{}` is {} bytes", cut(key, 64), value.len());
            return self.refuse(Limit::KvValueBytes, &what).await;
        }
        if !self.budget.take_kv_write() {
            return self
                .refuse(Limit::KvWrites, "further key-value writes were refused")
                .await;
        }
        self.kv_read_usage().await?;
        let old = self.kv_size(key).await?;
        let size = (key.len() + value.len()) as u64;
        let delta = KvDelta {
            keys: i64::from(old.is_none()),
            bytes: size as i64 - old.unwrap_or(0) as i64,
        };
        // Reserved in the driver's shared count before the write, so two
        // calls cannot both take the last key.
        let write = self.services.kv_set(&self.scope.driver, key, value);
        let made = self
            .kv_ledger
            .write(&self.scope.driver, delta, &limits, write)
            .await;
        match made {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err(e)) => Err(self.unavailable(format!("key-value write failed: {e}"))),
            Err(Limit::KvKeys) => {
                let what = format!("a new key `{}` was refused", cut(key, 64));
                self.refuse(Limit::KvKeys, &what).await
            }
            Err(limit) => {
                let what = format!("a {size}-byte write to `{}` was refused", cut(key, 64));
                self.refuse(limit, &what).await
            }
        }
    }

    /// `kv-delete`, in `key`'s turn.
    async fn kv_delete_in_turn(&mut self, key: &str) -> Answer {
        if let Some(refused) = self.check_key(key).await {
            return refused;
        }
        if !self.budget.take_kv_write() {
            return self
                .refuse(Limit::KvWrites, "further key-value writes were refused")
                .await;
        }
        let old = self.kv_size(key).await?;
        let freed = old.map(|old| KvDelta {
            keys: -1,
            bytes: -(old as i64),
        });
        let delete = self.services.kv_delete(&self.scope.driver, key);
        match self
            .kv_ledger
            .delete(&self.scope.driver, freed, delete)
            .await
        {
            Ok(()) => Ok(Ok(())),
            Err(e) => Err(self.unavailable(format!("key-value delete failed: {e}"))),
        }
    }

    /// `kv-compare-and-swap` (0.2.0): in `key`'s turn, writes `value`
    /// (`None` deletes) if the key holds `expected` (`None`: absent).
    /// `Ok(Ok(false))` when it does not (nothing written, no write counted).
    pub(crate) async fn kv_swap(
        &mut self,
        key: &str,
        expected: Option<&str>,
        value: Option<&str>,
    ) -> wasmtime::Result<Result<bool, types::LimitExceeded>> {
        if let Some(refused) = self.check_key(key).await {
            return refused.map(|r| r.map(|()| false));
        }
        let _turn = super::kv_order::turn(&self.scope.driver, key).await;
        let now = match self.services.kv_get(&self.scope.driver, key).await {
            Ok(v) => v,
            Err(e) => return Err(self.unavailable(format!("key-value read failed: {e}"))),
        };
        if now.as_deref() != expected {
            return Ok(Ok(false));
        }
        let written = match value {
            Some(v) => self.kv_set_in_turn(key, v).await?,
            None => self.kv_delete_in_turn(key).await?,
        };
        Ok(written.map(|()| true))
    }

    /// Bytes `key` holds now (key plus value), if it exists.
    async fn kv_size(&mut self, key: &str) -> wasmtime::Result<Option<u64>> {
        match self.services.kv_get(&self.scope.driver, key).await {
            Ok(v) => Ok(v.map(|v| (key.len() + v.len()) as u64)),
            Err(e) => Err(self.unavailable(format!("key-value read failed: {e}"))),
        }
    }
}

impl host::Host for CallState {
    async fn log(&mut self, level_: types::LogLevel, message: String) -> Answer {
        if !self.budget.take_log_line() {
            return self
                .refuse(Limit::LogLines, "further log lines were dropped")
                .await;
        }
        // Most lines are below the level in force: drop them before
        // copying or escaping anything.
        let Some(recorder) = guest_log::recorder(self.scope.log, level(level_)) else {
            return Ok(Ok(()));
        };
        let message = log_line(&message, self.budget.limits().message_bytes);
        recorder.emit(
            self.scope.action_name(),
            self.scope.node.as_deref(),
            self.scope.task.as_deref(),
            &message,
        );
        Ok(Ok(()))
    }

    async fn status(&mut self, message: String, is_error: bool) -> Answer {
        match self.budget.post(&message, is_error).await {
            Ok(answer) => Ok(answer),
            Err(e) => Err(self.unavailable(format!("recording a status message failed: {e}"))),
        }
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
        let max = self.budget.limits().kv_key_bytes;
        if key.is_empty() || key.len() as u64 > max {
            // No such key can exist.
            return Ok(None);
        }
        match self.services.kv_get(&self.scope.driver, &key).await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.unavailable(format!("key-value read failed: {e}"))),
        }
    }

    async fn kv_set(&mut self, key: String, value: String) -> Answer {
        let _turn = super::kv_order::turn(&self.scope.driver, &key).await;
        self.kv_set_in_turn(&key, &value).await
    }

    async fn kv_delete(&mut self, key: String) -> Answer {
        let _turn = super::kv_order::turn(&self.scope.driver, &key).await;
        self.kv_delete_in_turn(&key).await
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

    async fn build_data(&mut self, generator: String, format: String, content: String) -> Answer {
        if let Some(limit) = self.budget.take_build_data(content.len() as u64) {
            let what = format!(
                "{} bytes of build data from `{}` were refused",
                content.len(),
                cut(&generator, 64)
            );
            return self.refuse(limit, &what).await;
        }
        let data = BuildData {
            scope: (*self.scope).clone(),
            generator: cut(&generator, 128),
            format: cut(&format, 128),
            content,
        };
        if let Err(e) = self.services.build_data(data).await {
            return Err(self.unavailable(format!("recording build data failed: {e}")));
        }
        Ok(Ok(()))
    }
}

/// Escapes control characters (newlines, escape sequences) so one guest
/// log line stays one log record, and cuts it at `max` bytes; borrows the
/// line when neither changes it (the common case: no copy).
fn log_line(message: &str, max: u64) -> std::borrow::Cow<'_, str> {
    let fits = usize::try_from(max).map_or(true, |max| message.len() <= max);
    if !message.chars().any(char::is_control) {
        return if fits {
            std::borrow::Cow::Borrowed(message)
        } else {
            std::borrow::Cow::Owned(cut(message, max))
        };
    }
    let mut escaped = String::with_capacity(message.len() + 16);
    for c in message.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(cut(&escaped, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_one_record() {
        assert_eq!(
            log_line("ok\nINFO forged record\r\u{1b}[31m", 1000),
            "ok\\nINFO forged record\\r\\u{1b}[31m"
        );
        assert_eq!(log_line("plain é", 1000), "plain é");
        assert_eq!(log_line("abcdef", 3), "abc…");
    }

    #[test]
    fn the_memory_limit_covers_all_memories_together() {
        let mut l = Limiter::new(100 << 20);
        // Two memories of 40 MiB each fit; a third does not.
        assert!(l.memory_growing(0, 40 << 20, None).unwrap());
        assert!(l.memory_growing(0, 40 << 20, None).unwrap());
        assert!(!l.memory_growing(0, 40 << 20, None).unwrap());
        assert_eq!(l.refused, Some(120 << 20));
        // Growing the first memory by 20 MiB reaches the limit exactly.
        assert!(l.memory_growing(40 << 20, 60 << 20, None).unwrap());
        assert!(!l.memory_growing(60 << 20, 61 << 20, None).unwrap());
    }
}
