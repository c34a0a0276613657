//! Fleet truth: each node's synced BMC state and maintenance
//! (`node_sync`), and its timeline (`node_events`). The decisions (what is
//! drift, when a node enters maintenance) belong to [`crate::fleet`]; this
//! module only stores them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::QueryBuilder;
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

use super::{Backend, DbResult, Result, Store, now, trunc, with_pool};

/// One entry of a node's timeline, to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNodeEvent {
    /// The node.
    pub node_name: String,
    /// When it happened.
    pub ts: DateTime<Utc>,
    /// `driver_call`, `state_change`, `drift`, `sync` or `maintenance`.
    pub kind: String,
    /// The driver action, for driver calls.
    pub action: Option<String>,
    /// `success`, `failure`, `cancelled`, `entered`, `left`, ...
    pub outcome: Option<String>,
    /// How long a driver call took.
    pub duration_ms: Option<i64>,
    /// What happened, in words (errors redacted before they get here).
    pub message: Option<String>,
    /// The task the call ran for, if any.
    pub task_id: Option<Uuid>,
}

/// One stored entry of a node's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct NodeEventRecord {
    /// Position in the timeline (increasing; the paging cursor).
    pub seq: i64,
    /// The node.
    pub node_name: String,
    /// When it happened.
    pub ts: DateTime<Utc>,
    /// `driver_call`, `state_change`, `drift`, `sync` or `maintenance`.
    pub kind: String,
    /// The driver action, for driver calls.
    pub action: Option<String>,
    /// The outcome.
    pub outcome: Option<String>,
    /// How long a driver call took.
    pub duration_ms: Option<i64>,
    /// What happened.
    pub message: Option<String>,
    /// The task the call ran for, if any.
    pub task_id: Option<Uuid>,
}

/// A node's synced state and maintenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct NodeSyncRecord {
    /// The node.
    pub node_name: String,
    /// The power state its BMC last reported (`on`, `off`, `unknown`).
    pub observed_power: Option<String>,
    /// Its BMC's health as of the last sync (`ok`, or `unreachable`, ...).
    pub observed_health: Option<String>,
    /// When its BMC last answered a sync.
    pub observed_at: Option<DateTime<Utc>>,
    /// Why the last sync failed (redacted), if it did.
    pub last_error: Option<String>,
    /// Syncs failed in a row.
    pub failures: i64,
    /// Whether the observed power state differs from what Drydock set.
    pub drift: bool,
    /// `operator` or `sync` while in maintenance.
    pub maintenance: Option<String>,
    /// Why it is in maintenance.
    pub maintenance_reason: Option<String>,
    /// Since when.
    pub maintenance_since: Option<DateTime<Utc>>,
    /// When its next sync is due (none: waits for the leader's next round).
    pub due: Option<DateTime<Utc>>,
}

/// A sync claimed by an instance: the node's sync row and what Drydock
/// last set.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedSync {
    /// The sync row.
    #[sqlx(flatten)]
    pub sync: NodeSyncRecord,
    /// The power state Drydock last set (`nodes.power_state`).
    pub expected_power: Option<String>,
}

/// The outcome of one node's sync, written back by its claimer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncUpdate {
    /// The node.
    pub node_name: String,
    /// The new observed power state (`None` keeps the last one).
    pub observed_power: Option<String>,
    /// The new health.
    pub observed_health: Option<String>,
    /// Set when the BMC answered.
    pub observed_at: Option<DateTime<Utc>>,
    /// The error, when the sync failed.
    pub last_error: Option<String>,
    /// Failures in a row after this sync.
    pub failures: i64,
    /// Drift after this sync.
    pub drift: bool,
    /// Maintenance after this sync.
    pub maintenance: Option<String>,
    /// Its reason.
    pub maintenance_reason: Option<String>,
    /// Since when.
    pub maintenance_since: Option<DateTime<Utc>>,
    /// When the node is due again (a backoff), or `None` for the next round.
    pub due: Option<DateTime<Utc>>,
}

/// Sync columns, in [`NodeSyncRecord`] order.
macro_rules! sync_cols {
    () => {
        "node_sync.node_name, observed_power, observed_health, observed_at, last_error, \
         failures, drift, maintenance, maintenance_reason, maintenance_since, due"
    };
}

/// Event columns, in [`NodeEventRecord`] order.
macro_rules! event_cols {
    () => {
        "seq, node_name, ts, kind, action, outcome, duration_ms, message, task_id"
    };
}

/// Picks due syncs, claims them and returns their rows with what Drydock
/// last set, in one statement (`FOR UPDATE SKIP LOCKED` where `$lock` says
/// so).
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "WITH picked AS MATERIALIZED (SELECT node_name FROM node_sync \
             WHERE due <= $1 AND (claim_until IS NULL OR claim_until < $1) \
             ORDER BY due LIMIT $2",
            $lock,
            ") UPDATE node_sync SET claimed_by = $3, claim_until = $4 \
             WHERE node_name IN (SELECT node_name FROM picked) RETURNING ",
            claim_cols!(),
            ", (SELECT power_state FROM nodes WHERE nodes.name = node_sync.node_name) \
             AS expected_power"
        )
    };
}

/// Sync columns as a claim returns them (unqualified, for SQLite's
/// `RETURNING`), in [`NodeSyncRecord`] order.
macro_rules! claim_cols {
    () => {
        "node_name, observed_power, observed_health, observed_at, last_error, \
         failures, drift, maintenance, maintenance_reason, maintenance_since, due"
    };
}

/// The end of an outcome write: the claim released, fenced by claimer and
/// by operator maintenance (`$1` the node, `$2` the claimer).
macro_rules! finish_fence {
    () => {
        "claimed_by = NULL, claim_until = NULL \
         WHERE node_sync.node_name = $1 AND node_sync.claimed_by = $2 \
         AND (node_sync.maintenance IS NULL OR node_sync.maintenance <> 'operator')"
    };
}

/// [`Store::finish_syncs_written`] on PostgreSQL: one statement of constant
/// text for `updates` (as `batch.rs` does for task outcomes).
async fn finish_syncs_pg(
    pool: &sqlx::PgPool,
    owner: &str,
    updates: &[SyncUpdate],
) -> Result<Vec<String>> {
    let n = updates.len();
    let mut names = Vec::with_capacity(n);
    let mut powers = Vec::with_capacity(n);
    let mut healths = Vec::with_capacity(n);
    let mut observed = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut failures = Vec::with_capacity(n);
    let mut drifts = Vec::with_capacity(n);
    let mut maintenance = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut since = Vec::with_capacity(n);
    let mut dues = Vec::with_capacity(n);
    for u in updates {
        names.push(u.node_name.as_str());
        powers.push(u.observed_power.as_deref());
        healths.push(u.observed_health.as_deref());
        observed.push(u.observed_at);
        errors.push(u.last_error.as_deref());
        failures.push(u.failures);
        drifts.push(u.drift);
        maintenance.push(u.maintenance.as_deref());
        reasons.push(u.maintenance_reason.as_deref());
        since.push(u.maintenance_since);
        dues.push(u.due);
    }
    sqlx::query_scalar(
        "UPDATE node_sync SET observed_power = COALESCE(v.observed_power, node_sync.observed_power), \
         observed_health = v.observed_health, \
         observed_at = COALESCE(v.observed_at, node_sync.observed_at), \
         last_error = v.last_error, failures = v.failures, drift = v.drift, \
         maintenance = v.maintenance, maintenance_reason = v.maintenance_reason, \
         maintenance_since = v.maintenance_since, due = v.due, \
         claimed_by = NULL, claim_until = NULL \
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], \
                     $7::int8[], $8::bool[], $9::text[], $10::text[], $11::timestamptz[], \
                     $12::timestamptz[]) \
              AS v (node_name, observed_power, observed_health, observed_at, last_error, \
                    failures, drift, maintenance, maintenance_reason, maintenance_since, due) \
         WHERE node_sync.node_name = v.node_name AND node_sync.claimed_by = $1 \
         AND (node_sync.maintenance IS NULL OR node_sync.maintenance <> 'operator') \
         RETURNING node_sync.node_name",
    )
    .bind(owner)
    .bind(&names)
    .bind(&powers)
    .bind(&healths)
    .bind(&observed)
    .bind(&errors)
    .bind(&failures)
    .bind(&drifts)
    .bind(&maintenance)
    .bind(&reasons)
    .bind(&since)
    .bind(&dues)
    .fetch_all(pool)
    .await
    .db()
}

/// [`Store::add_node_events`] on PostgreSQL: one statement of constant text
/// however many events (columns bound as arrays and `UNNEST`ed), so it is
/// planned once per connection instead of once per batch size.
async fn add_node_events_pg(pool: &sqlx::PgPool, events: &[NewNodeEvent]) -> Result<()> {
    let n = events.len();
    let mut nodes = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut actions = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut messages = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for e in events {
        nodes.push(e.node_name.as_str());
        ts.push(trunc(e.ts));
        kinds.push(e.kind.as_str());
        actions.push(e.action.as_deref());
        outcomes.push(e.outcome.as_deref());
        durations.push(e.duration_ms);
        messages.push(e.message.as_deref());
        tasks.push(e.task_id);
    }
    sqlx::query(
        "INSERT INTO node_events (node_name, ts, kind, action, outcome, duration_ms, \
         message, task_id) \
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], \
                              $5::text[], $6::int8[], $7::text[], $8::uuid[])",
    )
    .bind(&nodes)
    .bind(&ts)
    .bind(&kinds)
    .bind(&actions)
    .bind(&outcomes)
    .bind(&durations)
    .bind(&messages)
    .bind(&tasks)
    .execute(pool)
    .await
    .db()?;
    Ok(())
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Store {
    /// Appends timeline entries (batched).
    pub async fn add_node_events(&self, events: &[NewNodeEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if let super::Inner::Postgres(pool) = &self.inner {
            return add_node_events_pg(pool, events).await;
        }
        for chunk in events.chunks(super::CHUNK / 2) {
            with_pool!(self, |pool, DB| {
                let mut qb = QueryBuilder::<DB>::new(
                    "INSERT INTO node_events (node_name, ts, kind, action, outcome, \
                     duration_ms, message, task_id) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(e.node_name.as_str())
                        .push_bind(trunc(e.ts))
                        .push_bind(e.kind.as_str())
                        .push_bind(e.action.as_deref())
                        .push_bind(e.outcome.as_deref())
                        .push_bind(e.duration_ms)
                        .push_bind(e.message.as_deref())
                        .push_bind(e.task_id);
                });
                qb.build().execute(pool).await.db()?;
            });
        }
        Ok(())
    }

    /// A page of `node`'s timeline, newest first: at most `limit` entries
    /// older than `before` (a `seq`; `None` starts at the newest).
    pub async fn node_events(
        &self,
        node: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<NodeEventRecord>> {
        let before = before.unwrap_or(i64::MAX);
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                event_cols!(),
                " FROM node_events WHERE node_name = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
            ))
            .bind(node)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await
            .db()?
        }))
    }

    /// Bounds the timeline: removes entries older than `max_age`, and each
    /// node's entries beyond its newest `per_node`. Returns how many went.
    pub async fn prune_node_events(&self, max_age: Duration, per_node: i64) -> Result<u64> {
        let cutoff = now() - chrono_of(max_age);
        Ok(with_pool!(self, |pool| {
            let old = sqlx::query("DELETE FROM node_events WHERE ts < $1")
                .bind(cutoff)
                .execute(pool)
                .await
                .db()?
                .rows_affected();
            let over = sqlx::query(
                "DELETE FROM node_events WHERE seq IN (SELECT seq FROM (SELECT seq, \
                 ROW_NUMBER() OVER (PARTITION BY node_name ORDER BY seq DESC) AS rn \
                 FROM node_events) AS ranked WHERE rn > $1)",
            )
            .bind(per_node)
            .execute(pool)
            .await
            .db()?
            .rows_affected();
            old + over
        }))
    }

    /// The leader's sync round: gives every registered node a sync row,
    /// then makes each node not already due (nor in operator maintenance)
    /// due at a time spread evenly over `[start, start + interval)`, in
    /// name order. Returns how many were scheduled.
    pub async fn schedule_sync_round(
        &self,
        start: DateTime<Utc>,
        interval: Duration,
    ) -> Result<u64> {
        let names: Vec<String> = with_pool!(self, |pool| {
            sqlx::query(
                // `WHERE true`: SQLite needs a WHERE before an upsert's ON.
                "INSERT INTO node_sync (node_name) SELECT name FROM nodes WHERE true \
                 ON CONFLICT (node_name) DO NOTHING",
            )
            .execute(pool)
            .await
            .db()?;
            sqlx::query_scalar(
                "SELECT node_name FROM node_sync WHERE due IS NULL \
                 AND (maintenance IS NULL OR maintenance <> 'operator') ORDER BY node_name",
            )
            .fetch_all(pool)
            .await
            .db()?
        });
        if names.is_empty() {
            return Ok(0);
        }
        let step = chrono_of(interval) / i32::try_from(names.len()).unwrap_or(i32::MAX);
        let dues: Vec<(String, DateTime<Utc>)> = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n,
                    trunc(start + step * i32::try_from(i).unwrap_or(i32::MAX)),
                )
            })
            .collect();
        let mut scheduled = 0;
        for chunk in dues.chunks(super::CHUNK) {
            scheduled += with_pool!(self, |pool, DB| {
                let mut qb = QueryBuilder::<DB>::new("UPDATE node_sync SET due = v.column2 FROM (");
                qb.push_values(chunk, |mut b, (n, due)| {
                    b.push_bind(n.as_str()).push_bind(*due);
                });
                qb.push(") AS v WHERE node_sync.node_name = v.column1 AND node_sync.due IS NULL");
                qb.build().execute(pool).await.db()?.rows_affected()
            });
        }
        Ok(scheduled)
    }

    /// Claims up to `limit` due syncs for `owner` for `lease` (a claim
    /// that lapses, its claimer dead, is taken by the next claimer), in one
    /// statement, earliest due first.
    /// Concurrent claimers never get the same node (PostgreSQL: `FOR
    /// UPDATE SKIP LOCKED`; SQLite: one writing statement at a time).
    pub async fn claim_syncs(
        &self,
        owner: &str,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<ClaimedSync>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let now = now();
        let until = now + chrono_of(lease);
        let sql = if self.backend() == Backend::Postgres {
            claim_sql!(" FOR UPDATE SKIP LOCKED")
        } else {
            claim_sql!("")
        };
        let mut all: Vec<ClaimedSync> = with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(now)
                .bind(limit)
                .bind(owner)
                .bind(until)
                .fetch_all(pool)
                .await
                .db()?
        });
        all.sort_by_key(|c| c.sync.due);
        Ok(all)
    }

    /// Writes syncs' outcomes back, fenced by claimer: a row another
    /// instance took over (this one's claim lapsed) or an operator put in
    /// maintenance meanwhile is left alone. Returns the rows written.
    pub async fn finish_syncs(&self, owner: &str, updates: &[SyncUpdate]) -> Result<u64> {
        let written = self.finish_syncs_written(owner, updates).await?;
        Ok(written.len() as u64)
    }

    /// [`Store::finish_syncs`], returning the nodes whose rows were
    /// written. One statement per [`super::CHUNK`] outcomes on PostgreSQL
    /// (of constant text: columns bound as arrays and `UNNEST`ed), one
    /// transaction for them all on SQLite. Each node at most once.
    pub async fn finish_syncs_written(
        &self,
        owner: &str,
        updates: &[SyncUpdate],
    ) -> Result<Vec<String>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let mut written = Vec::with_capacity(updates.len());
        match &self.inner {
            super::Inner::Postgres(pool) => {
                for chunk in updates.chunks(super::CHUNK) {
                    written.extend(finish_syncs_pg(pool, owner, chunk).await?);
                }
            }
            super::Inner::Sqlite(pool) => {
                let mut tx = pool.begin().await.db()?;
                for u in updates {
                    let n = sqlx::query(concat!(
                        "UPDATE node_sync SET observed_power = COALESCE($3, observed_power), \
                         observed_health = $4, observed_at = COALESCE($5, observed_at), \
                         last_error = $6, failures = $7, drift = $8, maintenance = $9, \
                         maintenance_reason = $10, maintenance_since = $11, due = $12, ",
                        finish_fence!()
                    ))
                    .bind(&u.node_name)
                    .bind(owner)
                    .bind(&u.observed_power)
                    .bind(&u.observed_health)
                    .bind(u.observed_at)
                    .bind(&u.last_error)
                    .bind(u.failures)
                    .bind(u.drift)
                    .bind(&u.maintenance)
                    .bind(&u.maintenance_reason)
                    .bind(u.maintenance_since)
                    .bind(u.due)
                    .execute(&mut *tx)
                    .await
                    .db()?
                    .rows_affected();
                    if n > 0 {
                        written.push(u.node_name.clone());
                    }
                }
                tx.commit().await.db()?;
            }
        }
        Ok(written)
    }

    /// Puts `node` in operator maintenance with `reason` (its syncs stop
    /// until cleared). Returns `false` when the node is not registered.
    pub async fn set_maintenance(&self, node: &str, reason: &str) -> Result<bool> {
        let now = now();
        let n = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO node_sync (node_name, maintenance, maintenance_reason, \
                 maintenance_since) SELECT name, 'operator', $2, $3 FROM nodes WHERE name = $1 \
                 ON CONFLICT (node_name) DO UPDATE SET maintenance = 'operator', \
                 maintenance_reason = excluded.maintenance_reason, \
                 maintenance_since = excluded.maintenance_since, due = NULL, \
                 claimed_by = NULL, claim_until = NULL",
            )
            .bind(node)
            .bind(reason)
            .bind(now)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Takes `node` out of maintenance (operator or sync) and forgets its
    /// failed syncs; it is synced in the leader's next round. Returns
    /// whether it was in maintenance.
    pub async fn clear_maintenance(&self, node: &str) -> Result<bool> {
        let n = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE node_sync SET maintenance = NULL, maintenance_reason = NULL, \
                 maintenance_since = NULL, failures = 0, due = NULL, claimed_by = NULL, \
                 claim_until = NULL WHERE node_name = $1 AND maintenance IS NOT NULL",
            )
            .bind(node)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Nodes in maintenance, with the reason.
    pub async fn nodes_in_maintenance(&self) -> Result<BTreeMap<String, String>> {
        let rows: Vec<(String, Option<String>, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT node_name, maintenance, maintenance_reason FROM node_sync \
                 WHERE maintenance IS NOT NULL",
            )
            .fetch_all(pool)
            .await
            .db()?
        });
        Ok(rows
            .into_iter()
            .map(|(n, by, why)| {
                let by = by.unwrap_or_default();
                (n, format!("{} (set by {by})", why.unwrap_or_default()))
            })
            .collect())
    }

    /// `node`'s sync row, if it has one.
    pub async fn node_sync(&self, node: &str) -> Result<Option<NodeSyncRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                sync_cols!(),
                " FROM node_sync WHERE node_name = $1"
            ))
            .bind(node)
            .fetch_optional(pool)
            .await
            .db()?
        }))
    }

    /// Fleet counts: nodes with a sync row, drifted, in maintenance.
    pub async fn fleet_counts(&self) -> Result<(i64, i64, i64)> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT COUNT(*), COUNT(CASE WHEN drift THEN 1 END), \
                 COUNT(CASE WHEN maintenance IS NOT NULL THEN 1 END) FROM node_sync",
            )
            .fetch_one(pool)
            .await
            .db()?
        }))
    }
}
