//! The periodic power and health sync.
//!
//! The leader runs the rounds: every `interval` it makes each node that
//! finished its last sync due again, at times spread evenly over the
//! interval (`Store::schedule_sync_round`). Every instance, leader or not,
//! claims due nodes in batches (`Store::claim_syncs`, one statement; a
//! lapsing claim: a dead claimer's nodes are taken over) and reads each
//! one's power state and health through its oob driver's `interrogate_oob`
//! ([`crate::tasks::Engine::probe`]), at most `concurrency` at once and
//! each under the node's BMC limit, which subtasks share. What it reads is
//! recorded beside what Drydock last set (`nodes.power_state`); a
//! difference is drift ([`decide`]). Outcomes reach the store in batches
//! ([`super::outcomes`]).
//!
//! A node whose BMC fails `failures_to_maintenance` syncs in a row enters
//! maintenance (`sync`) with the reason, and is retried with a doubling
//! backoff (from `interval` up to `max_backoff_s`) until its BMC answers,
//! when it leaves maintenance by itself. Maintenance an operator set
//! (`operator`) stops its syncs until the operator clears it. Tasks skip
//! nodes in maintenance.
//!
//! The timeline gets failed syncs and what syncs find changed (drift found
//! or resolved, power changed, maintenance entered or left); a sync that
//! finds nothing new is only counted ([`FleetStats`]), or a 60 s sync
//! would bury each node's history under 1,440 identical reads a day.

use super::outcomes::Outcomes;
use crate::drivers::Action;
use crate::store::{ClaimedSync, NewNodeEvent, SyncUpdate};
use crate::tasks::{Engine, ProbeError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// `[fleet]`: the sync and the timeline's retention.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Run the sync (default true).
    pub enabled: bool,
    /// Seconds between two syncs of a node (default 60); each round is
    /// spread over it.
    pub interval_s: f64,
    /// Syncs in flight at once on this instance (default 64); each also
    /// holds one of its BMC's `per_bmc` slots.
    pub concurrency: usize,
    /// Seconds one node's read may take (default 30).
    pub timeout_s: f64,
    /// Failed syncs in a row that put a node in maintenance (default 3).
    pub failures_to_maintenance: u32,
    /// Longest wait between retries of a node in maintenance, seconds
    /// (default 3600).
    pub max_backoff_s: f64,
    /// Days a timeline entry is kept (default 30).
    pub event_days: u64,
    /// Entries kept per node at most (default 1000).
    pub events_per_node: i64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_s: 60.0,
            concurrency: 64,
            timeout_s: 30.0,
            failures_to_maintenance: 3,
            max_backoff_s: 3600.0,
            event_days: 30,
            events_per_node: 1000,
        }
    }
}

/// A `[fleet]` value out of range.
#[derive(Debug, thiserror::Error)]
#[error("[fleet] {0}")]
pub struct SyncConfigError(String);

impl SyncConfig {
    /// Checks the values (positive times, at least one sync at once).
    pub fn validate(&self) -> Result<(), SyncConfigError> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v < 1e9 {
                Ok(())
            } else {
                Err(SyncConfigError(format!(
                    "{name} = {v}: must be a positive number of seconds"
                )))
            }
        };
        positive("interval_s", self.interval_s)?;
        positive("timeout_s", self.timeout_s)?;
        positive("max_backoff_s", self.max_backoff_s)?;
        if self.concurrency == 0 || self.failures_to_maintenance == 0 || self.events_per_node < 1 {
            return Err(SyncConfigError(
                "concurrency, failures_to_maintenance and events_per_node must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_s)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }

    /// How long a node in maintenance after `failures` failed syncs waits
    /// for its next one: `interval`, doubling per failure past the
    /// threshold, at most `max_backoff_s`.
    pub fn backoff(&self, failures: i64) -> Duration {
        let past = failures.saturating_sub(i64::from(self.failures_to_maintenance));
        let factor = 2f64.powi(i32::try_from(past.clamp(0, 30)).unwrap_or(30));
        Duration::from_secs_f64((self.interval_s * factor).min(self.max_backoff_s))
    }
}

/// This instance's sync counters (the sync's metrics).
#[derive(Debug, Default, Serialize)]
pub struct FleetStats {
    /// Leader rounds scheduled here.
    pub rounds: AtomicU64,
    /// Syncs made here (BMC reads).
    pub syncs: AtomicU64,
    /// Of which failed.
    pub failures: AtomicU64,
    /// Drift found (a node whose BMC disagrees with what Drydock set).
    pub drift_detected: AtomicU64,
    /// Nodes put in maintenance by the sync.
    pub maintenance_entered: AtomicU64,
    /// Nodes that left it by themselves.
    pub maintenance_left: AtomicU64,
    /// The longest wait from a node's due time to its read, ms (a sync
    /// keeping up stays well under the interval).
    pub max_lag_ms: AtomicU64,
    /// Time spent in BMC reads, ms (summed over concurrent reads).
    pub busy_ms: AtomicU64,
    /// Claim statements made here (each claims a batch of due nodes).
    pub claim_batches: AtomicU64,
    /// Time spent claiming, ms.
    pub claim_ms: AtomicU64,
    /// Outcome writes made here (each one transaction for a batch of
    /// syncs).
    pub write_batches: AtomicU64,
    /// Time spent writing outcomes, ms.
    pub write_ms: AtomicU64,
    /// Reads in flight now.
    pub in_flight: AtomicU64,
    /// The most reads in flight at once.
    pub max_in_flight: AtomicU64,
}

impl FleetStats {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What one read of a node's BMC found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// The BMC answered: power state (`on`, `off`, `unknown`) and health
    /// (`ok`, or the Redfish `Status.Health` in lower case).
    Answered {
        /// Power state.
        power: String,
        /// Health.
        health: String,
    },
    /// It did not: the reason (`unreachable`, `timeout`, `auth`, ...) and
    /// the redacted error.
    Failed {
        /// Short reason.
        reason: String,
        /// Redacted error.
        error: String,
    },
}

impl Reading {
    /// The reading of an `interrogate_oob` result.
    pub fn of(result: Result<serde_json::Value, (ProbeError, Vec<String>)>) -> Reading {
        match result {
            Ok(v) => Reading::Answered {
                power: match v["power_state"].as_str() {
                    Some(p @ ("on" | "off")) => p.to_owned(),
                    _ => "unknown".into(),
                },
                health: v["raw"]["Status"]["Health"]
                    .as_str()
                    .map(|h| h.to_ascii_lowercase())
                    .unwrap_or_else(|| "ok".into()),
            },
            Err((e, secrets)) => {
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                Reading::Failed {
                    reason: e.reason(),
                    error: super::redact(&e.to_string(), &secrets),
                }
            }
        }
    }
}

/// What a sync decided: the row to write back and the timeline entries.
#[derive(Debug)]
pub struct Decision {
    /// The node's sync row after this sync.
    pub update: SyncUpdate,
    /// Events for its timeline.
    pub events: Vec<NewNodeEvent>,
}

/// Decides a sync (pure): drift, failures in a row, maintenance, when the
/// node is due again.
pub fn decide(
    c: &ClaimedSync,
    reading: &Reading,
    took: Duration,
    cfg: &SyncConfig,
    now: DateTime<Utc>,
) -> Decision {
    let prev = &c.sync;
    let node = prev.node_name.clone();
    let mut events = Vec::new();
    let mut event = |kind: &str, outcome: &str, message: String, duration: Option<Duration>| {
        events.push(NewNodeEvent {
            node_name: node.clone(),
            ts: now,
            kind: kind.into(),
            action: Some(Action::InterrogateOob.name().into()),
            outcome: Some(outcome.into()),
            duration_ms: duration.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            message: Some(message),
            task_id: None,
        })
    };
    let mut update = SyncUpdate {
        node_name: node.clone(),
        observed_power: None,
        observed_health: prev.observed_health.clone(),
        observed_at: None,
        last_error: None,
        failures: 0,
        drift: prev.drift,
        maintenance: prev.maintenance.clone(),
        maintenance_reason: prev.maintenance_reason.clone(),
        maintenance_since: prev.maintenance_since,
        due: None,
    };
    match reading {
        Reading::Answered { power, health } => {
            update.observed_power = Some(power.clone());
            update.observed_health = Some(health.clone());
            update.observed_at = Some(now);
            let expected = c.expected_power.as_deref();
            update.drift = matches!(expected, Some(e) if power != "unknown" && e != power);
            if let Some(before) = prev.observed_power.as_deref()
                && before != power
            {
                event(
                    "state_change",
                    "observed",
                    format!("BMC reports power {power} (was {before})"),
                    Some(took),
                );
            }
            if update.drift && !prev.drift {
                event(
                    "drift",
                    "detected",
                    format!(
                        "BMC reports power {power}; Drydock last set {}",
                        expected.unwrap_or("-")
                    ),
                    Some(took),
                );
            } else if !update.drift && prev.drift {
                event(
                    "drift",
                    "resolved",
                    format!("BMC reports power {power}, as Drydock set"),
                    Some(took),
                );
            }
            if prev.maintenance.as_deref() == Some("sync") {
                update.maintenance = None;
                update.maintenance_reason = None;
                update.maintenance_since = None;
                event(
                    "maintenance",
                    "left",
                    format!("BMC answers again (power {power}, health {health})"),
                    None,
                );
            }
        }
        Reading::Failed { reason, error } => {
            update.failures = prev.failures.saturating_add(1);
            update.last_error = Some(error.clone());
            update.observed_health = Some(reason.clone());
            event(
                "sync",
                "failure",
                format!("sync {} failed: {error}", update.failures),
                Some(took),
            );
            let threshold = i64::from(cfg.failures_to_maintenance);
            if prev.maintenance.is_none() && update.failures >= threshold {
                let why = format!("BMC failed {} syncs in a row: {error}", update.failures);
                update.maintenance = Some("sync".into());
                update.maintenance_reason = Some(why.clone());
                update.maintenance_since = Some(now);
                event("maintenance", "entered", why, None);
            }
            if update.maintenance.is_some() {
                update.due = Some(
                    now + chrono::Duration::from_std(cfg.backoff(update.failures))
                        .unwrap_or(chrono::Duration::MAX),
                );
            }
        }
    }
    Decision { update, events }
}

/// Due nodes claimed per statement at most.
const CLAIM_BATCH: usize = 256;

/// Runs this instance's part of the sync until the engine stops: the
/// leader's rounds and retention while it leads, and claiming and reading
/// due nodes always.
///
/// Due nodes are claimed in batches of up to the free read slots
/// (`concurrency`, at most [`CLAIM_BATCH`]). While every slot is busy the
/// loop waits for half of them to free up (not for the next tick), so a
/// round is read as fast as the slots and BMC limits allow and each claim
/// statement still takes a batch. Outcomes go to a batching writer
/// ([`Outcomes`]).
pub async fn run(engine: Engine, cfg: SyncConfig) {
    if !cfg.enabled {
        return;
    }
    let stats = engine.fleet_stats().clone();
    let interval = cfg.interval();
    let tick = (interval / 240).clamp(Duration::from_millis(20), Duration::from_millis(250));
    let lease = cfg.timeout() * 2 + Duration::from_secs(5);
    let slots = Arc::new(Semaphore::new(cfg.concurrency));
    // Claim again once this many slots are free (while reads are in flight).
    let refill = u32::try_from(cfg.concurrency.div_ceil(2).min(CLAIM_BATCH)).unwrap_or(1);
    let me = engine.instance_id().to_owned();
    let outcomes = Outcomes::start(
        engine.store().clone(),
        engine.timeline().clone(),
        stats.clone(),
        me.clone(),
        cfg.concurrency.saturating_mul(4),
    );
    let mut next_round: Option<Instant> = None;
    let mut next_prune = Instant::now();
    loop {
        if engine.leadership().is_leader() {
            if next_round.is_none_or(|t| Instant::now() >= t) {
                next_round = Some(Instant::now() + interval);
                match engine
                    .store()
                    .schedule_sync_round(Utc::now(), interval)
                    .await
                {
                    Ok(n) => {
                        FleetStats::add(&stats.rounds, 1);
                        tracing::debug!(nodes = n, "sync round scheduled");
                    }
                    Err(e) => tracing::warn!(error = %e, "scheduling a sync round failed"),
                }
            }
            if Instant::now() >= next_prune {
                next_prune = Instant::now() + interval.max(Duration::from_secs(600));
                let age = Duration::from_secs(cfg.event_days.saturating_mul(86_400));
                if let Err(e) = engine
                    .store()
                    .prune_node_events(age, cfg.events_per_node)
                    .await
                {
                    tracing::warn!(error = %e, "pruning node timelines failed");
                }
            }
        } else {
            next_round = None;
        }
        let free = slots.available_permits();
        let busy = free < cfg.concurrency;
        if busy && free < refill as usize {
            // Reads in flight hold the slots: claim again when enough free
            // up (or at the next tick, for the leader's work).
            tokio::select! {
                _ = engine.stopped() => return,
                enough = slots.acquire_many(refill) => drop(enough),
                _ = tokio::time::sleep(tick) => {}
            }
            continue;
        }
        let room = free.min(CLAIM_BATCH);
        let t = Instant::now();
        let claimed = engine.store().claim_syncs(&me, room as i64, lease).await;
        FleetStats::add(&stats.claim_batches, 1);
        FleetStats::add(&stats.claim_ms, ms(t.elapsed()));
        let mut full = false;
        match claimed {
            Ok(claimed) => {
                full = claimed.len() == room;
                for c in claimed {
                    // Free: only this loop takes slots, and it counted them.
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let (engine, cfg, stats, outcomes) =
                        (engine.clone(), cfg.clone(), stats.clone(), outcomes.clone());
                    tokio::spawn(async move {
                        let d = sync_one(&engine, c, &cfg, &stats).await;
                        drop(permit);
                        outcomes.send(d).await;
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "claiming syncs failed"),
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = engine.stopped() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Milliseconds of `d`, saturating.
pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads one claimed node and decides what to write back (the writer
/// writes it).
async fn sync_one(
    engine: &Engine,
    c: ClaimedSync,
    cfg: &SyncConfig,
    stats: &FleetStats,
) -> Decision {
    let now = Utc::now();
    if let Some(lag) = c.sync.due.and_then(|d| (now - d).to_std().ok()) {
        stats.max_lag_ms.fetch_max(
            u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
    let started = Instant::now();
    let now_in_flight = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    stats
        .max_in_flight
        .fetch_max(now_in_flight, Ordering::Relaxed);
    let result = engine
        .probe(&c.sync.node_name, Action::InterrogateOob, cfg.timeout())
        .await;
    let took = started.elapsed();
    stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    let reading = Reading::of(result);
    FleetStats::add(&stats.syncs, 1);
    FleetStats::add(
        &stats.busy_ms,
        u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
    );
    let d = decide(&c, &reading, took, cfg, Utc::now());
    if matches!(reading, Reading::Failed { .. }) {
        FleetStats::add(&stats.failures, 1);
    }
    if d.update.drift && !c.sync.drift {
        FleetStats::add(&stats.drift_detected, 1);
        tracing::warn!(node = %c.sync.node_name, expected = c.expected_power.as_deref().unwrap_or("-"),
            observed = d.update.observed_power.as_deref().unwrap_or("-"), "power drift");
    }
    match (
        c.sync.maintenance.as_deref(),
        d.update.maintenance.as_deref(),
    ) {
        (None, Some(_)) => {
            FleetStats::add(&stats.maintenance_entered, 1);
            tracing::warn!(node = %c.sync.node_name, reason = d.update.maintenance_reason.as_deref().unwrap_or(""),
                "node entered maintenance");
        }
        (Some(_), None) => {
            FleetStats::add(&stats.maintenance_left, 1);
            tracing::info!(node = %c.sync.node_name, "node left maintenance: its BMC answers again");
        }
        _ => {}
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NodeSyncRecord;

    fn claimed(expected: Option<&str>, observed: Option<&str>, failures: i64) -> ClaimedSync {
        ClaimedSync {
            sync: NodeSyncRecord {
                node_name: "n1".into(),
                observed_power: observed.map(Into::into),
                observed_health: None,
                observed_at: None,
                last_error: None,
                failures,
                drift: false,
                maintenance: None,
                maintenance_reason: None,
                maintenance_since: None,
                due: None,
            },
            expected_power: expected.map(Into::into),
        }
    }

    fn answered(power: &str) -> Reading {
        Reading::Answered {
            power: power.into(),
            health: "ok".into(),
        }
    }

    #[test]
    fn drift_is_a_difference_from_what_drydock_set() {
        let cfg = SyncConfig::default();
        let now = Utc::now();
        let d = decide(
            &claimed(Some("on"), Some("on"), 0),
            &answered("off"),
            Duration::ZERO,
            &cfg,
            now,
        );
        assert!(d.update.drift);
        assert!(
            d.events
                .iter()
                .any(|e| e.kind == "drift" && e.outcome.as_deref() == Some("detected"))
        );
        assert!(d.events.iter().any(|e| e.kind == "state_change"));
        // Nothing set yet, or an unknown reading: no drift.
        assert!(
            !decide(
                &claimed(None, None, 0),
                &answered("off"),
                Duration::ZERO,
                &cfg,
                now
            )
            .update
            .drift
        );
        assert!(
            !decide(
                &claimed(Some("on"), None, 0),
                &answered("unknown"),
                Duration::ZERO,
                &cfg,
                now
            )
            .update
            .drift
        );
        // Resolved.
        let mut c = claimed(Some("on"), Some("off"), 0);
        c.sync.drift = true;
        let d = decide(&c, &answered("on"), Duration::ZERO, &cfg, now);
        assert!(!d.update.drift);
        assert!(
            d.events
                .iter()
                .any(|e| e.outcome.as_deref() == Some("resolved"))
        );
    }

    #[test]
    fn failures_in_a_row_enter_maintenance_with_backoff_and_an_answer_leaves_it() {
        let cfg = SyncConfig {
            interval_s: 10.0,
            max_backoff_s: 35.0,
            ..SyncConfig::default()
        };
        let now = Utc::now();
        let fail = Reading::Failed {
            reason: "unreachable".into(),
            error: "connection refused".into(),
        };
        let d = decide(&claimed(None, None, 1), &fail, Duration::ZERO, &cfg, now);
        assert_eq!(
            (
                d.update.failures,
                d.update.maintenance.as_deref(),
                d.update.due
            ),
            (2, None, None)
        );
        let d = decide(&claimed(None, None, 2), &fail, Duration::ZERO, &cfg, now);
        assert_eq!(d.update.maintenance.as_deref(), Some("sync"));
        assert!(
            d.update
                .maintenance_reason
                .as_deref()
                .unwrap()
                .contains("3 syncs in a row")
        );
        assert_eq!(d.update.due, Some(now + chrono::Duration::seconds(10)));
        assert_eq!(cfg.backoff(4), Duration::from_secs(20));
        assert_eq!(cfg.backoff(9), Duration::from_secs(35));
        let mut c = claimed(None, None, 5);
        c.sync.maintenance = Some("sync".into());
        let d = decide(&c, &answered("on"), Duration::ZERO, &cfg, now);
        assert_eq!((d.update.failures, d.update.maintenance), (0, None));
        assert!(
            d.events
                .iter()
                .any(|e| e.kind == "maintenance" && e.outcome.as_deref() == Some("left"))
        );
    }
}
