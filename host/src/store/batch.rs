//! Batch writes on Postgres with statements of constant text: columns are
//! bound as arrays and `UNNEST`ed, so however many rows a batch has, the
//! server plans one statement per connection and sqlx's statement cache
//! holds one entry (multi-row `VALUES` lists change text with every batch
//! size, up to thousands of parameters).

use chrono::{DateTime, Utc};

use super::tasks::{TaskOutcome, TaskStatus};
use super::{DbResult, Result};

/// Begins a write transaction whose statements find their rows by key:
/// `SET LOCAL enable_seqscan = off` for the transaction only.
///
/// The batch writes join an `UNNEST`ed batch to `tasks` or `nodes` on the
/// primary key. The planner costs one pass over the table below a
/// primary-key probe per row whenever the table is small next to the
/// batch, or its row count is not yet known (no `ANALYZE` since a large
/// fan-out's insert), and its estimate of how many tasks are running is a
/// guess: it hashed every row of the table for each flush (at 10,000
/// subtasks a quarter of each outcome batch's time; at 100,000, 50 of
/// 70 ms). With sequential scans off it probes the primary key per row,
/// which costs the same at any table size.
pub(super) async fn begin_keyed(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    pool.begin_with("BEGIN; SET LOCAL enable_seqscan = off")
        .await
        .db()
}

/// [`Store::finish_tasks`] on Postgres: one statement of constant text
/// however many outcomes (columns bound as arrays and `UNNEST`ed), so the
/// server plans it once per connection and the statement cache holds one
/// entry instead of one per batch size.
pub(super) async fn finish_tasks_pg(
    pool: &sqlx::PgPool,
    outcomes: &[TaskOutcome],
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut tx = begin_keyed(pool).await?;
    let changed = finish_tasks_in(&mut tx, outcomes, now).await?;
    if changed > 0 {
        super::fault::pause_in_tx(super::fault::Point::FinishTasks);
    }
    tx.commit().await.db()?;
    Ok(changed)
}

/// The fenced outcome update of [`finish_tasks_pg`], on a connection (in
/// the caller's transaction, which commits): how many rows changed.
pub(super) async fn finish_tasks_in(
    conn: &mut sqlx::PgConnection,
    outcomes: &[TaskOutcome],
    now: DateTime<Utc>,
) -> Result<u64> {
    let n = outcomes.len();
    let mut ids = Vec::with_capacity(n);
    let mut owners = Vec::with_capacity(n);
    let mut epochs = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    let mut messages = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut successes = Vec::with_capacity(n);
    let mut failures = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut retries = Vec::with_capacity(n);
    let mut terminated = Vec::with_capacity(n);
    let mut terminated_by = Vec::with_capacity(n);
    for o in outcomes {
        ids.push(o.id);
        owners.push(o.owner.clone());
        epochs.push(o.epoch);
        statuses.push(o.status.as_str());
        results.push(o.result_status.as_str());
        messages.push(o.result_message.clone());
        reasons.push(o.result_reason.clone());
        successes.push(serde_json::json!(o.successes));
        failures.push(serde_json::json!(o.failures));
        errors.push(o.error_count);
        retries.push(o.retry);
        terminated.push((o.status == TaskStatus::Terminated).then_some(now));
        terminated_by.push(o.terminated_by.clone());
    }
    // `status || ''` keeps the planner from finding the rows through an
    // index on status (`tasks_open_status`, `tasks_running_action`): those
    // hold an entry for every task that has left `running` since the last
    // vacuum, so at 100,000 subtasks each batch walked tens of thousands of
    // them (40 ms a batch). The rows are found by primary key instead, in
    // a transaction begun by [`begin_keyed`] (or the planner hashes the
    // whole table).
    let changed = sqlx::query(
        "UPDATE tasks SET status = v.status, result_status = v.result_status, \
         result_message = v.result_message, result_reason = v.result_reason, \
         successes = v.successes, failures = v.failures, \
         error_count = v.error_count, retry = v.retry, \
         terminated = COALESCE(tasks.terminated, v.terminated), \
         terminated_by = COALESCE(tasks.terminated_by, v.terminated_by), updated = $14 \
         FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::jsonb[], $9::jsonb[], $10::int8[], $11::int8[], \
                     $12::timestamptz[], $13::text[]) \
              AS v (id, owner, epoch, status, result_status, result_message, result_reason, \
                    successes, failures, error_count, retry, terminated, terminated_by) \
         WHERE tasks.id = v.id AND tasks.owner = v.owner \
           AND tasks.epoch = v.epoch AND tasks.status || '' = 'running'",
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&epochs)
    .bind(&statuses)
    .bind(&results)
    .bind(&messages)
    .bind(&reasons)
    .bind(&successes)
    .bind(&failures)
    .bind(&errors)
    .bind(&retries)
    .bind(&terminated)
    .bind(&terminated_by)
    .bind(now)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(changed)
}
