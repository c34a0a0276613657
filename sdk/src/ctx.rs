//! [`Ctx`]: the host's `host` interface during one driver call.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wit::drydock::driver::host;
use crate::{DriverError, LimitExceeded, LogLevel, Result};

/// The host during one driver call: logging, task status, the driver's
/// configuration and key-value store, the call's deadline.
///
/// Each call runs in a fresh sandbox: nothing kept in memory survives it.
/// What must last goes in the key-value store ([`Ctx::kv_set`]).
#[derive(Debug)]
pub struct Ctx {
    /// The driver's settings, read with one `config-all` call at the first
    /// [`Ctx::config`] of the call.
    settings: OnceCell<BTreeMap<String, String>>,
    /// The most detailed level the host records (`None`: no lines), asked
    /// once per call, at the first line logged.
    log_level: OnceCell<Option<LogLevel>>,
}

/// Severity rank: `trace` 0 to `error` 4.
fn rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Trace => 0,
        LogLevel::Debug => 1,
        LogLevel::Info => 2,
        LogLevel::Warn => 3,
        LogLevel::Error => 4,
    }
}

impl Ctx {
    pub(crate) fn new() -> Self {
        Ctx {
            settings: OnceCell::new(),
            log_level: OnceCell::new(),
        }
    }

    /// Whether the host records log lines at `level` for this driver (it
    /// is asked once per call). Lines below are dropped: the `log` methods
    /// skip them, and the [`debug!`](crate::debug) family of macros does not
    /// even format them.
    pub fn log_enabled(&self, level: LogLevel) -> bool {
        self.log_level
            .get_or_init(host::log_threshold)
            .is_some_and(|min| rank(level) >= rank(min))
    }

    /// Every operator-configured setting of this driver (never a secret),
    /// read from the host once per call.
    pub fn config_all(&self) -> &BTreeMap<String, String> {
        self.settings
            .get_or_init(|| host::config_all().into_iter().collect())
    }

    /// Writes a log line; the host tags it with the call's action and node.
    /// Never log secrets. Lines past the host's limit per call are dropped
    /// (the host reports that once); see [`Ctx::try_log`].
    pub fn log(&self, level: LogLevel, message: impl AsRef<str>) {
        let _ = self.try_log(level, message);
    }

    /// Like [`Ctx::log`], saying whether the host refused the line (its
    /// log lines per call are used up). A line below the level the host
    /// records ([`Ctx::log_enabled`]) is not sent.
    pub fn try_log(
        &self,
        level: LogLevel,
        message: impl AsRef<str>,
    ) -> std::result::Result<(), LimitExceeded> {
        if !self.log_enabled(level) {
            return Ok(());
        }
        host::log(level, message.as_ref())
    }

    /// Writes a `trace` log line.
    pub fn trace(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Trace, message);
    }

    /// Writes a `debug` log line.
    pub fn debug(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Debug, message);
    }

    /// Writes an `info` log line.
    pub fn info(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Info, message);
    }

    /// Writes a `warn` log line.
    pub fn warn(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Warn, message);
    }

    /// Writes an `error` log line.
    pub fn error(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Error, message);
    }

    /// Attaches a status message to the task running this call, visible to
    /// operators; `is_error` marks a failure note. Messages past the host's
    /// limit per call are dropped (the host reports that once); see
    /// [`Ctx::try_status`].
    pub fn status(&self, message: impl AsRef<str>, is_error: bool) {
        let _ = self.try_status(message, is_error);
    }

    /// Like [`Ctx::status`], saying whether the host refused the message
    /// (its messages per call are used up).
    pub fn try_status(
        &self,
        message: impl AsRef<str>,
        is_error: bool,
    ) -> std::result::Result<(), LimitExceeded> {
        host::status(message.as_ref(), is_error)
    }

    /// Reads an operator-configured setting of this driver (never a secret).
    pub fn config(&self, key: &str) -> Option<String> {
        self.config_all().get(key).cloned()
    }

    /// Reads a secret the operator granted to this driver (e.g. an API key) by
    /// its name in the host's secrets source. Never log or return the value.
    pub fn secret(&self, name: &str) -> Option<String> {
        host::secret_get(name)
    }

    /// Reads a setting and parses it (surrounding whitespace ignored).
    /// `Ok(None)` if unset; [`DriverError::InvalidInput`] naming the key if the
    /// value does not parse.
    pub fn config_parse<T>(&self, key: &str) -> Result<Option<T>>
    where
        T: FromStr,
        T::Err: Display,
    {
        let Some(raw) = self.config(key) else {
            return Ok(None);
        };
        raw.trim().parse().map(Some).map_err(|e| {
            DriverError::InvalidInput(format!("driver setting `{key}` = `{raw}` is invalid: {e}"))
        })
    }

    /// Like [`Ctx::config_parse`], with a default for an unset key.
    pub fn config_or<T>(&self, key: &str, default: T) -> Result<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.config_parse(key)?.unwrap_or(default))
    }

    /// Lists the keys of the operator-configured settings of this driver.
    pub fn config_keys(&self) -> Vec<String> {
        self.config_all().keys().cloned().collect()
    }

    /// Reads a value from this driver's persistent key-value store.
    pub fn kv_get(&self, key: &str) -> Option<String> {
        host::kv_get(key)
    }

    /// Writes a value to this driver's persistent key-value store.
    /// [`DriverError::Failed`] naming the limit when the host refuses it (key
    /// too long, the driver's keys or bytes used up, too many writes in this
    /// call).
    pub fn kv_set(&self, key: &str, value: &str) -> Result<()> {
        host::kv_set(key, value).map_err(DriverError::from)
    }

    /// Deletes a value from the key-value store; a missing key is not an
    /// error. A delete counts as a write against the host's limit per call.
    pub fn kv_delete(&self, key: &str) -> Result<()> {
        host::kv_delete(key).map_err(DriverError::from)
    }

    /// Compare-and-swap: if `key` holds `expected` now (`None`: absent),
    /// replaces it with `value` (`None` deletes it) and returns `true`;
    /// otherwise writes nothing and returns `false`. Atomic with respect to
    /// every other write of the key by this driver's calls on the same
    /// Drydock instance (instances sharing a database do not order their
    /// writes against each other's). A swap counts as a write; a refusal is
    /// [`DriverError::Failed`] naming the limit, as for [`Ctx::kv_set`].
    pub fn kv_compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        value: Option<&str>,
    ) -> Result<bool> {
        host::kv_compare_and_swap(key, expected, value).map_err(DriverError::from)
    }

    /// Reads a JSON value from the key-value store. `Ok(None)` if missing;
    /// [`DriverError::Failed`] if the stored text does not decode as `T`.
    pub fn kv_get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(raw) = self.kv_get(key) else {
            return Ok(None);
        };
        serde_json::from_str(&raw)
            .map(Some)
            .map_err(|e| DriverError::Failed(format!("stored value `{key}` does not decode: {e}")))
    }

    /// Writes a value as JSON to the key-value store.
    pub fn kv_set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| {
            DriverError::Failed(format!("cannot encode value `{key}` as JSON: {e}"))
        })?;
        self.kv_set(key, &text)
    }

    /// Time left before the call's deadline; the host cuts the call then.
    pub fn deadline_remaining(&self) -> Duration {
        Duration::from_millis(host::deadline_remaining_ms())
    }

    /// Sleeps without burning CPU. [`DriverError::Timeout`], without
    /// sleeping, when the deadline would pass first.
    pub fn sleep(&self, duration: Duration) -> Result<()> {
        let ms = millis(duration);
        if host::sleep_ms(ms) {
            Ok(())
        } else {
            Err(DriverError::Timeout(format!(
                "a {ms} ms wait would pass the call's deadline"
            )))
        }
    }

    /// Calls `poll` every `interval` until it returns `Ok(Some(_))`, and
    /// returns that value. An error from `poll` ends the polling at once
    /// (map transient errors to `Ok(None)` to keep polling). When the next
    /// wait would pass the deadline the answer is [`DriverError::Timeout`]
    /// saying "timed out waiting for `what`".
    pub fn poll_until<T>(
        &self,
        interval: Duration,
        what: &str,
        mut poll: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        loop {
            if let Some(value) = poll()? {
                return Ok(value);
            }
            if !host::sleep_ms(millis(interval)) {
                return Err(DriverError::Timeout(format!(
                    "timed out waiting for {what}"
                )));
            }
        }
    }

    /// Stores data collected about this call's node (e.g. a hardware
    /// inventory) as build data. `generator` names the source, `format` the
    /// media type, e.g. `application/json`. [`DriverError::Failed`] naming the
    /// limit when the host refuses it (too many items or bytes in this call).
    pub fn build_data(&self, generator: &str, format: &str, content: &str) -> Result<()> {
        host::build_data(generator, format, content).map_err(DriverError::from)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
