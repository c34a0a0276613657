//! Driver quotas: what one call, one driver and one node may consume of the
//! host (key-value state, task messages, log lines, build data, outgoing
//! connections), the operator's `[driver_limits]`, and the per-call budget
//! that enforces them.
//!
//! Every refusal is answered to the guest as an error it can handle (a
//! `limit-exceeded` result, or a `wasi:http` error code for connections),
//! never a trap, and is reported once per call and limit in the task's
//! messages, naming the limit and its value.

use super::bindings::types::LimitExceeded;
use super::services::{CallScope, DriverServices, ServiceError, StatusMessage};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The operator's limits on drivers (`[driver_limits]` in the config file).
/// Every default is safe for the bundled drivers.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriverLimits {
    /// Keys one driver may hold in its key-value store.
    pub kv_keys: u64,
    /// Bytes (keys plus values) one driver may hold in its key-value store.
    pub kv_bytes: u64,
    /// Longest key-value key, bytes.
    pub kv_key_bytes: u64,
    /// Largest key-value value, bytes.
    pub kv_value_bytes: u64,
    /// Key-value writes (sets and deletes) one call may make.
    pub kv_writes_per_call: u32,
    /// Task messages one call may cause, whatever their source (the
    /// driver's status messages, egress denials); the engine's retry notes
    /// count against the same number per subtask.
    pub messages_per_call: u32,
    /// Longest task message, bytes (longer ones are cut).
    pub message_bytes: u64,
    /// Longest driver error text kept in task results, messages and logs,
    /// bytes (longer ones are cut).
    pub error_bytes: u64,
    /// Log lines one call may write.
    pub log_lines_per_call: u32,
    /// Build data items one call may store.
    pub build_data_per_call: u32,
    /// Build data bytes one call may store (also the largest interrogation
    /// result stored as build data).
    pub build_data_bytes_per_call: u64,
    /// Build data items kept per node (the oldest go first).
    pub build_data_per_node: u64,
    /// Build data bytes kept per node (the oldest go first).
    pub build_data_bytes_per_node: u64,
    /// Outgoing HTTP requests one call may have open at once.
    pub requests_per_call: u32,
    /// Outgoing HTTP requests all calls of one driver may have open at once.
    pub requests_per_driver: u32,
    /// UDP datagrams one call may send to its node's BMC (WIT `datagram`).
    pub datagrams_per_call: u32,
    /// Largest UDP datagram a driver may send, bytes.
    pub datagram_bytes: u64,
}

impl Default for DriverLimits {
    fn default() -> Self {
        Self {
            kv_keys: 10_000,
            kv_bytes: 64 << 20,
            kv_key_bytes: 512,
            kv_value_bytes: 1 << 20,
            kv_writes_per_call: 1_000,
            messages_per_call: 1_000,
            message_bytes: 8 << 10,
            error_bytes: 8 << 10,
            log_lines_per_call: 1_000,
            build_data_per_call: 64,
            build_data_bytes_per_call: 16 << 20,
            build_data_per_node: 256,
            build_data_bytes_per_node: 64 << 20,
            requests_per_call: 16,
            requests_per_driver: 256,
            datagrams_per_call: 1024,
            datagram_bytes: 1472,
        }
    }
}

/// A limit, by its setting name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `kv_keys`.
    KvKeys,
    /// `kv_bytes`.
    KvBytes,
    /// `kv_key_bytes`.
    KvKeyBytes,
    /// `kv_value_bytes`.
    KvValueBytes,
    /// `kv_writes_per_call`.
    KvWrites,
    /// `messages_per_call`.
    Messages,
    /// `log_lines_per_call`.
    LogLines,
    /// `build_data_per_call`.
    BuildData,
    /// `build_data_bytes_per_call`.
    BuildDataBytes,
    /// `requests_per_call`.
    RequestsPerCall,
    /// `requests_per_driver`.
    RequestsPerDriver,
    /// `datagrams_per_call`.
    Datagrams,
    /// `datagram_bytes`.
    DatagramBytes,
}

impl Limit {
    /// The setting's name in `[driver_limits]`.
    pub fn name(self) -> &'static str {
        match self {
            Limit::KvKeys => "kv_keys",
            Limit::KvBytes => "kv_bytes",
            Limit::KvKeyBytes => "kv_key_bytes",
            Limit::KvValueBytes => "kv_value_bytes",
            Limit::KvWrites => "kv_writes_per_call",
            Limit::Messages => "messages_per_call",
            Limit::LogLines => "log_lines_per_call",
            Limit::BuildData => "build_data_per_call",
            Limit::BuildDataBytes => "build_data_bytes_per_call",
            Limit::RequestsPerCall => "requests_per_call",
            Limit::RequestsPerDriver => "requests_per_driver",
            Limit::Datagrams => "datagrams_per_call",
            Limit::DatagramBytes => "datagram_bytes",
        }
    }

    /// Its value in `limits`.
    pub fn value(self, limits: &DriverLimits) -> u64 {
        match self {
            Limit::KvKeys => limits.kv_keys,
            Limit::KvBytes => limits.kv_bytes,
            Limit::KvKeyBytes => limits.kv_key_bytes,
            Limit::KvValueBytes => limits.kv_value_bytes,
            Limit::KvWrites => limits.kv_writes_per_call.into(),
            Limit::Messages => limits.messages_per_call.into(),
            Limit::LogLines => limits.log_lines_per_call.into(),
            Limit::BuildData => limits.build_data_per_call.into(),
            Limit::BuildDataBytes => limits.build_data_bytes_per_call,
            Limit::RequestsPerCall => limits.requests_per_call.into(),
            Limit::RequestsPerDriver => limits.requests_per_driver.into(),
            Limit::Datagrams => limits.datagrams_per_call.into(),
            Limit::DatagramBytes => limits.datagram_bytes,
        }
    }
}

/// `s` cut to at most `max` bytes (on a character boundary), with `…` when
/// cut.
pub fn cut(s: &str, max: u64) -> String {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Concurrent outgoing requests per driver, shared by all its calls.
#[derive(Debug, Default)]
pub(crate) struct DriverRequests {
    per_driver: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl DriverRequests {
    fn semaphore(&self, driver: &str, limit: u32) -> Arc<Semaphore> {
        let mut map = self.per_driver.lock().expect("driver requests lock");
        map.entry(driver.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(limit as usize)))
            .clone()
    }
}

/// What one call has used of its limits; shared by the host functions and
/// the egress hooks of the call's store.
pub(crate) struct CallBudget {
    limits: Arc<DriverLimits>,
    scope: Arc<CallScope>,
    services: Arc<dyn DriverServices>,
    messages: AtomicU32,
    log_lines: AtomicU32,
    kv_writes: AtomicU32,
    build_items: AtomicU32,
    build_bytes: AtomicU64,
    /// Limits already reported for this call.
    reported: Mutex<HashSet<Limit>>,
    call_requests: Arc<Semaphore>,
    driver_requests: Arc<Semaphore>,
}

/// Permits for one outgoing request: released when its connection ends.
pub(crate) struct RequestPermit {
    _call: OwnedSemaphorePermit,
    _driver: OwnedSemaphorePermit,
}

impl CallBudget {
    pub(crate) fn new(
        limits: Arc<DriverLimits>,
        scope: Arc<CallScope>,
        services: Arc<dyn DriverServices>,
        requests: &DriverRequests,
    ) -> Self {
        let driver_requests = requests.semaphore(&scope.driver, limits.requests_per_driver);
        Self {
            call_requests: Arc::new(Semaphore::new(limits.requests_per_call as usize)),
            driver_requests,
            limits,
            scope,
            services,
            messages: AtomicU32::new(0),
            log_lines: AtomicU32::new(0),
            kv_writes: AtomicU32::new(0),
            build_items: AtomicU32::new(0),
            build_bytes: AtomicU64::new(0),
            reported: Mutex::new(HashSet::new()),
        }
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> &DriverLimits {
        &self.limits
    }

    /// Takes one unit of a per-call counter; false when it is used up.
    fn take(counter: &AtomicU32, max: u32) -> bool {
        counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether one more task message may be posted.
    pub(crate) fn take_message(&self) -> bool {
        Self::take(&self.messages, self.limits.messages_per_call)
    }

    /// Whether one more log line may be written.
    pub(crate) fn take_log_line(&self) -> bool {
        Self::take(&self.log_lines, self.limits.log_lines_per_call)
    }

    /// Whether one more key-value write may be made.
    pub(crate) fn take_kv_write(&self) -> bool {
        Self::take(&self.kv_writes, self.limits.kv_writes_per_call)
    }

    /// Takes one build data item of `bytes`; the limit it would pass, if any.
    pub(crate) fn take_build_data(&self, bytes: u64) -> Option<Limit> {
        if !Self::take(&self.build_items, self.limits.build_data_per_call) {
            return Some(Limit::BuildData);
        }
        let max = self.limits.build_data_bytes_per_call;
        let ok = self
            .build_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_add(bytes).filter(|t| *t <= max)
            })
            .is_ok();
        if ok {
            None
        } else {
            self.build_items.fetch_sub(1, Ordering::Relaxed);
            Some(Limit::BuildDataBytes)
        }
    }

    /// Permits for one more outgoing request, or the limit it would pass.
    pub(crate) fn take_request(&self) -> Result<RequestPermit, Limit> {
        let call = self
            .call_requests
            .clone()
            .try_acquire_owned()
            .map_err(|_| Limit::RequestsPerCall)?;
        let driver = self
            .driver_requests
            .clone()
            .try_acquire_owned()
            .map_err(|_| Limit::RequestsPerDriver)?;
        Ok(RequestPermit {
            _call: call,
            _driver: driver,
        })
    }

    /// Posts a task message for the call, within `messages_per_call` (cut at
    /// `message_bytes`). Past the limit nothing is posted, the limit is
    /// reported once, and the guest's answer is returned.
    pub(crate) async fn post(
        &self,
        message: &str,
        is_error: bool,
    ) -> Result<Result<(), LimitExceeded>, ServiceError> {
        if !self.take_message() {
            return Ok(Err(self
                .report(Limit::Messages, "further task messages were dropped")
                .await));
        }
        let msg = StatusMessage {
            scope: (*self.scope).clone(),
            message: cut(message, self.limits.message_bytes),
            is_error,
        };
        self.services.status(msg).await?;
        Ok(Ok(()))
    }

    /// Reports that `limit` refused something (`what`), once per call and
    /// limit, as a task message (outside `messages_per_call`: at most one per
    /// limit) and a warning; returns the guest's answer.
    pub(crate) async fn report(&self, limit: Limit, what: &str) -> LimitExceeded {
        let max = limit.value(&self.limits);
        let message = cut(
            &format!(
                "driver {} reached its limit {} = {max} in {}: {what}",
                self.scope.driver,
                limit.name(),
                self.scope.action_name()
            ),
            1024,
        );
        let first = self
            .reported
            .lock()
            .expect("reported limits lock")
            .insert(limit);
        if first {
            tracing::warn!(
                driver = %self.scope.driver,
                action = self.scope.action_name(),
                node = self.scope.node.as_deref().unwrap_or("-"),
                limit = limit.name(),
                max,
                "{message}"
            );
            let msg = StatusMessage {
                scope: (*self.scope).clone(),
                message: message.clone(),
                is_error: true,
            };
            if let Err(e) = self.services.status(msg).await {
                tracing::warn!(driver = %self.scope.driver, error = %e, "could not record a driver limit");
            }
        }
        LimitExceeded {
            limit: limit.name().to_owned(),
            max,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::MemoryServices;

    fn budget(limits: DriverLimits, services: Arc<MemoryServices>) -> CallBudget {
        let scope = Arc::new(CallScope {
            driver: "d".into(),
            action: None,
            node: None,
            task: None,
            log: crate::drivers::log_sites("d"),
        });
        CallBudget::new(
            Arc::new(limits),
            scope,
            services,
            &DriverRequests::default(),
        )
    }

    #[tokio::test]
    async fn messages_stop_at_the_limit_and_are_reported_once() {
        let services = Arc::new(MemoryServices::new());
        let limits = DriverLimits {
            messages_per_call: 3,
            message_bytes: 10,
            ..DriverLimits::default()
        };
        let b = budget(limits, services.clone());
        for _ in 0..10 {
            let _ = b.post("0123456789abcdef", false).await.unwrap();
        }
        let messages = services.messages();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert_eq!(messages[0].message, "0123456789…");
        assert!(messages[3].message.contains("messages_per_call = 3"));
    }

    #[test]
    fn build_data_counts_items_and_bytes() {
        let limits = DriverLimits {
            build_data_per_call: 3,
            build_data_bytes_per_call: 100,
            ..DriverLimits::default()
        };
        let b = budget(limits, Arc::new(MemoryServices::new()));
        assert_eq!(b.take_build_data(60), None);
        assert_eq!(b.take_build_data(60), Some(Limit::BuildDataBytes));
        assert_eq!(b.take_build_data(40), None);
        assert_eq!(b.take_build_data(0), None);
        assert_eq!(b.take_build_data(0), Some(Limit::BuildData));
    }

    #[test]
    fn requests_are_limited_per_call_and_per_driver() {
        let limits = Arc::new(DriverLimits {
            requests_per_call: 2,
            requests_per_driver: 3,
            ..DriverLimits::default()
        });
        let services: Arc<dyn DriverServices> = Arc::new(MemoryServices::new());
        let scope = Arc::new(CallScope {
            driver: "d".into(),
            action: None,
            node: None,
            task: None,
            log: crate::drivers::log_sites("d"),
        });
        let shared = DriverRequests::default();
        let a = CallBudget::new(limits.clone(), scope.clone(), services.clone(), &shared);
        let b = CallBudget::new(limits, scope, services, &shared);
        let a1 = a.take_request().unwrap();
        let _a2 = a.take_request().unwrap();
        assert_eq!(a.take_request().err(), Some(Limit::RequestsPerCall));
        let _b1 = b.take_request().unwrap();
        assert_eq!(b.take_request().err(), Some(Limit::RequestsPerDriver));
        drop(a1);
        assert!(b.take_request().is_ok());
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("héllo", 2), "h…");
        assert_eq!(cut("hi", 2), "hi");
    }
}
