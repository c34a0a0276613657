//! Tasks: creating them, claiming with fencing, batched outcomes, cancel
//! and clean-up. The records and requests are in `record`, plain reads
//! in `reads`, reads of whole trees in `tree`, an instance giving its
//! work back in `release`.

use sqlx::QueryBuilder;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Backend, CHUNK, DbResult, Result, Store, StoreError, now, trunc, with_pool};

/// The columns of `tasks`, in [`TaskRow`] order.
macro_rules! task_cols {
    () => {
        "id, parent_id, action, design_ref, node_filter, node_name, params, status, \
         result_status, result_message, result_reason, successes, failures, error_count, retry, \
         created, created_by, updated, terminated, terminated_by, terminate, owner, attempt, \
         deadline, epoch, max_attempts, traceparent"
    };
}

mod copy;
mod reads;
mod record;
mod release;
mod tree;

pub use record::*;
pub use tree::TreeRows;

/// A multi-row `INSERT` of `$chunk` (a slice of [`NewTask`]) for database
/// type `$db`, all created at `$now`.
macro_rules! insert_values {
    ($db:ty, $chunk:expr, $now:expr) => {{
        let now = $now;
        let mut qb = QueryBuilder::<$db>::new(
            "INSERT INTO tasks (id, parent_id, action, design_ref, node_filter, \
             node_name, params, status, created, created_by, updated, deadline, \
             owner, epoch, attempt, max_attempts, traceparent) ",
        );
        qb.push_values($chunk, |mut b, t| {
            b.push_bind(t.id)
                .push_bind(t.parent_id)
                .push_bind(t.action.clone())
                .push_bind(t.design_ref.clone())
                .push_bind(t.node_filter_json().map(|j| Json(j.0.clone())))
                .push_bind(t.node_name.clone())
                .push_bind(t.params_json())
                .push_bind(t.status.as_str())
                .push_bind(now)
                .push_bind(t.created_by.clone())
                .push_bind(now)
                .push_bind(t.deadline.map(trunc))
                .push_bind(t.owner.clone())
                .push_bind(t.epoch)
                .push_bind(t.attempt)
                .push_bind(t.max_attempts)
                .push_bind(t.traceparent.clone());
        });
        qb
    }};
}

/// PostgreSQL keeps no foreign key on `parent_id` (its check ran once per
/// row written: a query and a lock per subtask of a fan-out). This is that
/// check once per batch: a parent that is neither stored nor in the batch is
/// refused, and the stored ones are key-share locked until the batch
/// commits, so none can be deleted under it.
async fn check_parents(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tasks: &[NewTask],
) -> Result<()> {
    let own: std::collections::HashSet<Uuid> = tasks.iter().map(|t| t.id).collect();
    let mut parents: Vec<Uuid> = tasks
        .iter()
        .filter_map(|t| t.parent_id)
        .filter(|p| !own.contains(p))
        .collect();
    parents.sort_unstable();
    parents.dedup();
    if parents.is_empty() {
        return Ok(());
    }
    let found: std::collections::HashSet<Uuid> =
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM tasks WHERE id = ANY($1) FOR KEY SHARE")
            .bind(&parents)
            .fetch_all(&mut **tx)
            .await
            .db()?
            .into_iter()
            .collect();
    match parents.iter().find(|p| !found.contains(p)) {
        Some(missing) => Err(StoreError::NotFound(format!("parent task {missing}"))),
        None => Ok(()),
    }
}

/// Inserts `tasks` by `COPY` in `tx` (see [`copy`]) once their parents are
/// checked ([`check_parents`]); how many rows.
async fn copy_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tasks: &[NewTask],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    check_parents(tx, tasks).await?;
    let mut copy_in = tx.copy_in_raw(copy::STATEMENT).await.db()?;
    // Built and sent a piece at a time, so a 100,000-row fan-out never
    // holds its whole CSV (about 30 MB) at once.
    for piece in tasks.chunks(copy::ROWS_PER_SEND) {
        if let Err(e) = copy_in.send(copy::rows(piece, now)).await {
            let _ = copy_in.abort("send failed").await;
            return Err(e).db();
        }
    }
    copy_in.finish().await.db()
}

impl Store {
    /// Creates one task and returns it as stored.
    ///
    /// Fails with [`StoreError::Conflict`] if the id is taken.
    pub async fn insert_task(&self, task: &NewTask) -> Result<TaskRecord> {
        let now = now();
        // One statement, run on the pool or in a transaction.
        macro_rules! insert_one {
            ($executor:expr) => {
                sqlx::query_as(concat!(
                    "INSERT INTO tasks (id, parent_id, action, design_ref, node_filter, \
                     node_name, params, status, created, created_by, updated, deadline, owner, \
                     epoch, attempt, max_attempts, traceparent) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $11, $12, $13, $14, \
                     $15, $16) RETURNING ",
                    task_cols!()
                ))
                .bind(task.id)
                .bind(task.parent_id)
                .bind(&task.action)
                .bind(&task.design_ref)
                .bind(task.node_filter_json())
                .bind(&task.node_name)
                .bind(task.params_json())
                .bind(task.status.as_str())
                .bind(now)
                .bind(&task.created_by)
                .bind(task.deadline.map(trunc))
                .bind(&task.owner)
                .bind(task.epoch)
                .bind(task.attempt)
                .bind(task.max_attempts)
                .bind(&task.traceparent)
                .fetch_one($executor)
                .await
                .db()?
            };
        }
        if let (Some(_), super::Inner::Postgres(pool)) = (task.parent_id, &self.inner) {
            // A subtask: its parent checked as in a batch, in the same
            // transaction as the insert.
            let mut tx = pool.begin().await.db()?;
            check_parents(&mut tx, std::slice::from_ref(task)).await?;
            let row: TaskRow = insert_one!(&mut *tx);
            tx.commit().await.db()?;
            return row.try_into();
        }
        let row: TaskRow = with_pool!(self, |pool| { insert_one!(pool) });
        row.try_into()
    }

    /// Creates many tasks in one transaction: one `COPY` on PostgreSQL
    /// (however many rows), multi-row `INSERT`s of 500 rows on SQLite.
    /// Returns how many were inserted. All share the same `created` time.
    pub async fn insert_tasks(&self, tasks: &[NewTask]) -> Result<u64> {
        self.insert_tasks_fenced(tasks, None).await
    }

    /// Like [`Store::insert_tasks`], but when `fence` is `(holder, epoch)`
    /// nothing is inserted unless that instance holds the leader lease at
    /// that epoch when the transaction commits (Postgres; SQLite serves one
    /// instance). The lease row is share-locked after the rows are sent,
    /// just before the commit: a takeover committed by then is seen, and one
    /// that comes later waits for the commit (and then finds the rows), while
    /// lease renewals are not held up for the whole of a large `COPY`.
    /// Fails with [`StoreError::Fenced`] otherwise.
    pub async fn insert_tasks_fenced(
        &self,
        tasks: &[NewTask],
        fence: Option<(&str, i64)>,
    ) -> Result<u64> {
        if tasks.is_empty() {
            return Ok(0);
        }
        let now = now();
        let mut inserted = 0;
        if let super::Inner::Postgres(pool) = &self.inner {
            let mut tx = pool.begin().await.db()?;
            inserted = copy_in(&mut tx, tasks, now).await?;
            if let Some((holder, epoch)) = fence {
                let held: Option<i64> = sqlx::query_scalar(
                    "SELECT epoch FROM leader_lease WHERE id = 1 AND holder = $1 AND epoch = $2 \
                     AND expires > clock_timestamp() FOR SHARE",
                )
                .bind(holder)
                .bind(epoch)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
                if held.is_none() {
                    // Dropping `tx` rolls the rows back.
                    return Err(StoreError::Fenced(format!(
                        "{holder} does not hold the leader lease at epoch {epoch}"
                    )));
                }
            }
            tx.commit().await.db()?;
            return Ok(inserted);
        }
        with_pool!(self, |pool, DB| {
            let mut tx = pool.begin().await.db()?;
            for chunk in tasks.chunks(CHUNK) {
                let mut qb = insert_values!(DB, chunk, now);
                inserted += qb.build().execute(&mut *tx).await.db()?.rows_affected();
            }
            tx.commit().await.db()?;
        });
        Ok(inserted)
    }

    /// Completes a running subtask that no executor runs (a wait for boot
    /// action reports) with `result`, taking it over as `owner` at `epoch`;
    /// false if it was not running any more. Its outcome follows from stored
    /// reports and its deadline, so whichever leader decides decides alike.
    pub async fn settle_wait(
        &self,
        t: &TaskRecord,
        owner: &str,
        epoch: i64,
        (status, result): (TaskStatus, ResultStatus),
        message: &str,
    ) -> Result<bool> {
        let now = now();
        let node: Vec<String> = t.node_name.iter().cloned().collect();
        let ok = result == ResultStatus::Success;
        let (successes, failures) = if ok {
            (node, Vec::new())
        } else {
            (Vec::new(), node)
        };
        let n = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE tasks SET status = $10, result_status = $2, result_message = $3, \
                 successes = $4, failures = $5, error_count = $6, \
                 owner = $7, epoch = $8, updated = $9, \
                 terminated = CASE WHEN $10 = 'terminated' THEN $9 ELSE terminated END \
                 WHERE id = $1 AND status = 'running'",
            )
            .bind(t.id)
            .bind(result.as_str())
            .bind(message)
            .bind(Json(successes))
            .bind(Json(failures))
            .bind(i64::from(!ok))
            .bind(owner)
            .bind(epoch)
            .bind(now)
            .bind(status.as_str())
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Atomically moves up to `spec.limit` queued tasks in `spec.scope`
    /// (oldest first) to `running`, owned by `spec.owner` at `spec.epoch`,
    /// and bumps their `attempt`. Concurrent claimers never get the same
    /// task (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writing
    /// statement at a time). Returns the claimed tasks, oldest first.
    pub async fn claim_tasks(&self, spec: &ClaimSpec<'_>) -> Result<Vec<TaskRecord>> {
        if spec.limit <= 0 {
            return Ok(Vec::new());
        }
        let now = now();
        let skip_locked = self.backend() == Backend::Postgres;
        let rows: Vec<TaskRow> = with_pool!(self, |pool, DB| {
            // The pick is a materialised CTE so it runs exactly once:
            // PostgreSQL may re-run an `IN (subquery ... LIMIT)` per outer
            // row and take more than `limit` tasks.
            let mut qb = QueryBuilder::<DB>::new(
                "WITH picked AS MATERIALIZED (SELECT id FROM tasks WHERE status = 'queued'",
            );
            match spec.scope {
                ClaimScope::Any => {}
                ClaimScope::TopLevel => {
                    qb.push(" AND parent_id IS NULL");
                }
                ClaimScope::Subtasks => {
                    qb.push(" AND parent_id IS NOT NULL");
                }
                ClaimScope::ChildrenOf(parent) => {
                    qb.push(" AND parent_id = ").push_bind(parent);
                }
            }
            qb.push(" ORDER BY created, id LIMIT ")
                .push_bind(spec.limit);
            if skip_locked {
                qb.push(" FOR UPDATE SKIP LOCKED");
            }
            qb.push(") UPDATE tasks SET status = 'running', attempt = attempt + 1, owner = ")
                .push_bind(spec.owner)
                .push(", epoch = ")
                .push_bind(spec.epoch)
                .push(", updated = ")
                .push_bind(now)
                .push(" WHERE status = 'queued' AND ");
            // PostgreSQL: `= ANY(ARRAY(...))` finds the picked rows through
            // the primary key. With `IN (SELECT ...)` it planned a hash
            // semi-join over a scan of every queued task, so each claim cost
            // O(queued) and a 10,000-node task's claims O(n²).
            if skip_locked {
                qb.push("id = ANY(ARRAY(SELECT id FROM picked))");
            } else {
                qb.push("id IN (SELECT id FROM picked)");
            }
            qb.push(concat!(" RETURNING ", task_cols!()));
            qb.build_query_as().fetch_all(pool).await.db()?
        });
        let mut claimed = records(rows)?;
        claimed.sort_by_key(|t| (t.created, t.id));
        Ok(claimed)
    }

    /// Claims the tasks among `ids` that are still queued, as
    /// [`Store::claim_tasks`] claims (running, owned by `owner` at `epoch`,
    /// `attempt` bumped), by primary key: no scan of the queue. Tasks
    /// another claimer took, or that were cancelled, are left out. Returns
    /// the claimed tasks, oldest first.
    pub async fn claim_ids(
        &self,
        ids: &[Uuid],
        owner: &str,
        epoch: i64,
    ) -> Result<Vec<TaskRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = now();
        let mut rows: Vec<TaskRow> = Vec::with_capacity(ids.len());
        match &self.inner {
            super::Inner::Postgres(pool) => {
                // One statement text whatever the count (an array), by
                // primary key (`status || ''` is not indexed: see
                // `batch::finish_tasks_pg`).
                rows = sqlx::query_as(concat!(
                    "UPDATE tasks SET status = 'running', attempt = attempt + 1, owner = $2, \
                     epoch = $3, updated = $4 WHERE id = ANY($1) AND status || '' = 'queued' \
                     RETURNING ",
                    task_cols!()
                ))
                .bind(ids)
                .bind(owner)
                .bind(epoch)
                .bind(now)
                .fetch_all(pool)
                .await
                .db()?;
            }
            super::Inner::Sqlite(pool) => {
                for chunk in ids.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<sqlx::Sqlite>::new(
                        "UPDATE tasks SET status = 'running', attempt = attempt + 1, owner = ",
                    );
                    qb.push_bind(owner)
                        .push(", epoch = ")
                        .push_bind(epoch)
                        .push(", updated = ")
                        .push_bind(now)
                        .push(" WHERE status = 'queued' AND id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(concat!(") RETURNING ", task_cols!()));
                    rows.extend(qb.build_query_as::<TaskRow>().fetch_all(pool).await.db()?);
                }
            }
        }
        let mut claimed = records(rows)?;
        claimed.sort_by_key(|t| (t.created, t.id));
        Ok(claimed)
    }

    /// Records task outcomes, fenced: a row changes only if it is still
    /// `running` under the outcome's owner and epoch, so a deposed writer
    /// changes nothing. Sets `updated`, and `terminated` (if unset) for
    /// terminated tasks. Batched (500 rows per statement, one
    /// transaction). Returns how many rows changed.
    ///
    /// Fails with [`StoreError::Invalid`] (changing nothing) if an outcome's
    /// status is not complete or terminated.
    pub async fn finish_tasks(&self, outcomes: &[TaskOutcome]) -> Result<u64> {
        if let Some(bad) = outcomes.iter().find(|o| !o.status.is_terminal()) {
            return Err(StoreError::Invalid(format!(
                "task {} cannot finish with status {}",
                bad.id, bad.status
            )));
        }
        if outcomes.is_empty() {
            return Ok(0);
        }
        let now = now();
        if let super::Inner::Postgres(pool) = &self.inner {
            return super::batch::finish_tasks_pg(pool, outcomes, now).await;
        }
        let mut changed = 0;
        with_pool!(self, |pool, DB| {
            let mut tx = pool.begin().await.db()?;
            for chunk in outcomes.chunks(CHUNK) {
                let mut qb = QueryBuilder::<DB>::new(
                    "WITH v (id, owner, epoch, status, result_status, result_message, \
                     result_reason, successes, failures, error_count, retry, terminated, \
                     terminated_by) AS (",
                );
                qb.push_values(chunk, |mut b, o| {
                    let terminated = (o.status == TaskStatus::Terminated).then_some(now);
                    b.push_bind(o.id)
                        .push_bind(o.owner.clone())
                        .push_bind(o.epoch)
                        .push_bind(o.status.as_str())
                        .push_bind(o.result_status.as_str())
                        .push_bind(o.result_message.clone())
                        .push_bind(o.result_reason.clone())
                        .push_bind(Json(o.successes.clone()))
                        .push_bind(Json(o.failures.clone()))
                        .push_bind(o.error_count)
                        .push_bind(o.retry)
                        .push_bind(terminated)
                        .push_bind(o.terminated_by.clone());
                });
                qb.push(
                    ") UPDATE tasks SET status = v.status, result_status = v.result_status, \
                     result_message = v.result_message, result_reason = v.result_reason, \
                     successes = v.successes, failures = v.failures, \
                     error_count = v.error_count, retry = v.retry, \
                     terminated = COALESCE(tasks.terminated, v.terminated), \
                     terminated_by = COALESCE(tasks.terminated_by, v.terminated_by), \
                     updated = ",
                )
                .push_bind(now)
                .push(
                    " FROM v WHERE tasks.id = v.id AND tasks.owner = v.owner \
                     AND tasks.epoch = v.epoch AND tasks.status = 'running'",
                );
                changed += qb.build().execute(&mut *tx).await.db()?.rows_affected();
            }
            if changed > 0 {
                super::fault::pause_in_tx(super::fault::Point::FinishTasks);
            }
            tx.commit().await.db()?;
        });
        Ok(changed)
    }

    /// Changes the fields set in `patch` (unconditionally) and `updated`.
    /// Returns whether the task exists.
    pub async fn update_task(&self, id: Uuid, patch: &TaskPatch) -> Result<bool> {
        let now = now();
        let affected = with_pool!(self, |pool, DB| {
            let mut qb = QueryBuilder::<DB>::new("UPDATE tasks SET updated = ");
            qb.push_bind(now);
            if let Some(status) = patch.status {
                qb.push(", status = ").push_bind(status.as_str());
                if status == TaskStatus::Terminated {
                    qb.push(", terminated = COALESCE(terminated, ")
                        .push_bind(now)
                        .push(")");
                }
            }
            if let Some(r) = patch.result_status {
                qb.push(", result_status = ").push_bind(r.as_str());
            }
            if let Some(m) = &patch.result_message {
                qb.push(", result_message = ").push_bind(m.clone());
            }
            if let Some(r) = &patch.result_reason {
                qb.push(", result_reason = ").push_bind(r.clone());
            }
            if let Some(s) = &patch.successes {
                qb.push(", successes = ").push_bind(Json(s.clone()));
            }
            if let Some(f) = &patch.failures {
                qb.push(", failures = ").push_bind(Json(f.clone()));
            }
            if let Some(n) = patch.error_count {
                qb.push(", error_count = ").push_bind(n);
            }
            if let Some(n) = patch.retry {
                qb.push(", retry = ").push_bind(n);
            }
            if let Some(owner) = &patch.owner {
                qb.push(", owner = ").push_bind(owner.clone());
            }
            if let Some(deadline) = patch.deadline {
                qb.push(", deadline = ").push_bind(deadline.map(trunc));
            }
            qb.push(" WHERE id = ").push_bind(id);
            qb.build().execute(pool).await.db()?.rows_affected()
        });
        Ok(affected > 0)
    }

    /// Marks a task `running` under `owner` at `epoch` (bumping `attempt`),
    /// whoever owned it before; used for a task executed directly rather
    /// than claimed. Never revives a complete or terminated task. Returns
    /// whether the task changed.
    pub async fn set_running(&self, id: Uuid, owner: &str, epoch: i64) -> Result<bool> {
        let now = now();
        let affected = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE tasks SET status = 'running', owner = $2, epoch = $3, \
                 attempt = attempt + 1, updated = $4 \
                 WHERE id = $1 AND status IN ('requested', 'queued', 'running')",
            )
            .bind(id)
            .bind(owner)
            .bind(epoch)
            .bind(now)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        });
        Ok(affected > 0)
    }

    /// Requests cancellation of a task and all its descendants: every
    /// unfinished one gets `terminate = true` and `terminated_by = by` (if
    /// unset); requested or queued ones go straight to `terminated` with
    /// result `failure`, message "cancelled". Running ones are left to
    /// their executor (see [`Store::is_cancel_requested`]). Finished tasks
    /// are untouched. Returns the task as updated, `None` if it does not
    /// exist.
    pub async fn request_cancel(&self, id: Uuid, by: &str) -> Result<Option<TaskRecord>> {
        let now = now();
        with_pool!(self, |pool| {
            sqlx::query(
                "WITH RECURSIVE tree (id) AS ( \
                     SELECT id FROM tasks WHERE id = $1 \
                     UNION ALL \
                     SELECT c.id FROM tasks c JOIN tree ON c.parent_id = tree.id \
                 ) \
                 UPDATE tasks SET terminate = TRUE, \
                     terminated_by = COALESCE(terminated_by, $2), \
                     status = CASE WHEN status IN ('requested', 'queued') \
                         THEN 'terminated' ELSE status END, \
                     result_status = CASE WHEN status IN ('requested', 'queued') \
                         THEN 'failure' ELSE result_status END, \
                     result_message = CASE WHEN status IN ('requested', 'queued') \
                         THEN 'cancelled' ELSE result_message END, \
                     terminated = CASE WHEN status IN ('requested', 'queued') \
                         THEN $3 ELSE terminated END, \
                     updated = $3 \
                 WHERE id IN (SELECT id FROM tree) \
                     AND status IN ('requested', 'queued', 'running')",
            )
            .bind(id)
            .bind(by)
            .bind(now)
            .execute(pool)
            .await
            .db()?;
        });
        self.get_task(id).await
    }

    /// Whether cancellation of the task was requested.
    ///
    /// Fails with [`StoreError::NotFound`] if the task does not exist
    /// (e.g. was deleted).
    pub async fn is_cancel_requested(&self, id: Uuid) -> Result<bool> {
        let flag: Option<bool> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT terminate FROM tasks WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .db()?
        });
        flag.ok_or_else(|| StoreError::NotFound(format!("task {id}")))
    }

    /// Tasks `running` under `owner` become `complete` with result
    /// `failure` and `reason` as result reason. Returns how many changed.
    pub async fn fail_owned(&self, owner: &str, reason: &str) -> Result<u64> {
        let now = now();
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE tasks SET status = 'complete', result_status = 'failure', \
                     result_reason = $2, updated = $3 \
                 WHERE status = 'running' AND owner = $1",
            )
            .bind(owner)
            .bind(reason)
            .bind(now)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        }))
    }

    /// Deletes finished (complete or terminated) top-level tasks last
    /// updated more than `days` days ago, with their whole trees (subtasks,
    /// their subtasks) and messages. Returns how many top-level tasks were
    /// deleted. PostgreSQL keeps no foreign key on the parent link (it cost
    /// a check per subtask written), so the tree is found here; SQLite's
    /// foreign key cascades.
    pub async fn delete_tasks_older_than(&self, days: u32) -> Result<u64> {
        let cutoff = now() - chrono::Duration::days(i64::from(days));
        Ok(match &self.inner {
            super::Inner::Postgres(pool) => {
                let n: i64 = sqlx::query_scalar(
                    "WITH RECURSIVE doomed AS ( \
                         SELECT id FROM tasks WHERE parent_id IS NULL \
                             AND status IN ('complete', 'terminated') AND updated < $1 \
                         UNION ALL \
                         SELECT c.id FROM tasks c JOIN doomed d ON c.parent_id = d.id), \
                     gone AS (DELETE FROM tasks WHERE id IN (SELECT id FROM doomed) \
                         RETURNING parent_id) \
                     SELECT COUNT(*) FROM gone WHERE parent_id IS NULL",
                )
                .bind(cutoff)
                .fetch_one(pool)
                .await
                .db()?;
                n.max(0) as u64
            }
            super::Inner::Sqlite(pool) => sqlx::query(
                "DELETE FROM tasks WHERE parent_id IS NULL \
                 AND status IN ('complete', 'terminated') AND updated < $1",
            )
            .bind(cutoff)
            .execute(pool)
            .await
            .db()?
            .rows_affected(),
        })
    }

    /// Test helper: moves a task's `updated` (and `created`) `days` days
    /// into the past.
    #[doc(hidden)]
    pub async fn backdate_task_for_tests(&self, id: Uuid, days: u32) -> Result<bool> {
        let task = self
            .get_task(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("task {id}")))?;
        let delta = chrono::Duration::days(i64::from(days));
        let affected = with_pool!(self, |pool| {
            sqlx::query("UPDATE tasks SET updated = $2, created = $3 WHERE id = $1")
                .bind(id)
                .bind(task.updated - delta)
                .bind(task.created - delta)
                .execute(pool)
                .await
                .db()?
                .rows_affected()
        });
        Ok(affected > 0)
    }
}
