//! Leadership and liveness in the database (Postgres): the leader lease with
//! its fencing epoch, instance heartbeats, and taking over the work of dead
//! instances. Every time is the database's clock, so instances whose clocks
//! disagree still agree on who leads.
//!
//! SQLite serves one instance: there, [`Store::acquire_lease`] always
//! succeeds at epoch 1 and nothing is ever reclaimed.

use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

use super::{Backend, DbResult, Result, Store, StoreError, now, with_pool};

/// The leader lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Holder's instance id.
    pub holder: String,
    /// Fencing epoch: grows with every change of leader (and every time a
    /// lapsed lease is taken again).
    pub epoch: i64,
    /// When it lapses unless renewed.
    pub expires: DateTime<Utc>,
}

/// What [`Store::reclaim_dead`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Driver subtasks put back in the queue to be run again.
    pub requeued: u64,
    /// Driver subtasks failed because their action is unsafe to repeat.
    pub failed: u64,
    /// Orchestration tasks and steps now owned by the caller.
    pub adopted: u64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

type LeaseRow = (String, i64, DateTime<Utc>);

impl Store {
    /// Takes the lease for `me` if it is free or lapsed, or renews it if
    /// `me` holds it; `None` if another instance holds it. The epoch grows
    /// whenever the lease changes hands or is taken again after lapsing.
    pub async fn acquire_lease(&self, me: &str, length: Duration) -> Result<Option<Lease>> {
        if self.backend() == Backend::Sqlite {
            return Ok(Some(Lease {
                holder: me.to_owned(),
                epoch: 1,
                expires: now() + chrono::Duration::milliseconds(millis(length)),
            }));
        }
        let row: Option<LeaseRow> = match &self.inner {
            super::Inner::Postgres(pool) => sqlx::query_as(
                "INSERT INTO leader_lease (id, holder, epoch, expires) \
                 VALUES (1, $1, 1, clock_timestamp() + make_interval(secs => $2::float8 / 1000)) \
                 ON CONFLICT (id) DO UPDATE SET \
                     holder = $1, \
                     epoch = CASE WHEN leader_lease.holder = $1 \
                                  AND leader_lease.expires > clock_timestamp() \
                             THEN leader_lease.epoch ELSE leader_lease.epoch + 1 END, \
                     expires = clock_timestamp() + make_interval(secs => $2::float8 / 1000) \
                 WHERE leader_lease.holder = $1 OR leader_lease.expires <= clock_timestamp() \
                 RETURNING holder, epoch, expires",
            )
            .bind(me)
            .bind(millis(length) as f64)
            .fetch_optional(pool)
            .await
            .db()?,
            super::Inner::Sqlite(_) => unreachable!("handled above"),
        };
        Ok(row.map(|(holder, epoch, expires)| Lease {
            holder,
            epoch,
            expires,
        }))
    }

    /// The lease as it stands (possibly lapsed), if anyone ever held it.
    pub async fn current_lease(&self) -> Result<Option<Lease>> {
        let row: Option<LeaseRow> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT holder, epoch, expires FROM leader_lease WHERE id = 1")
                .fetch_optional(pool)
                .await
                .db()?
        });
        Ok(row.map(|(holder, epoch, expires)| Lease {
            holder,
            epoch,
            expires,
        }))
    }

    /// Gives the lease up at once (a clean shutdown), if `me` holds it, so
    /// another instance takes over without waiting for it to lapse.
    pub async fn release_lease(&self, me: &str) -> Result<()> {
        if let super::Inner::Postgres(pool) = &self.inner {
            sqlx::query(
                "UPDATE leader_lease SET expires = clock_timestamp() - interval '1 millisecond' \
                 WHERE id = 1 AND holder = $1",
            )
            .bind(me)
            .execute(pool)
            .await
            .db()?;
        }
        Ok(())
    }

    /// Records that instance `me` is alive.
    pub async fn heartbeat(&self, me: &str) -> Result<()> {
        if let super::Inner::Postgres(pool) = &self.inner {
            sqlx::query(
                "INSERT INTO instances (id, heartbeat, started) \
                 VALUES ($1, clock_timestamp(), clock_timestamp()) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat = clock_timestamp()",
            )
            .bind(me)
            .execute(pool)
            .await
            .db()?;
        }
        Ok(())
    }

    /// Forgets instance `me`'s heartbeat: it left cleanly, holding no work
    /// (see `Engine::drain`), so no leader need wait for it to look dead.
    /// A later heartbeat (it starts again) brings it back.
    pub async fn depart(&self, me: &str) -> Result<()> {
        if let super::Inner::Postgres(pool) = &self.inner {
            sqlx::query("DELETE FROM instances WHERE id = $1")
                .bind(me)
                .execute(pool)
                .await
                .db()?;
        }
        Ok(())
    }

    /// Instances whose heartbeat is younger than `alive`, with their last
    /// heartbeat.
    pub async fn live_instances(&self, alive: Duration) -> Result<Vec<(String, DateTime<Utc>)>> {
        match &self.inner {
            super::Inner::Postgres(pool) => Ok(sqlx::query_as(
                "SELECT id, heartbeat FROM instances \
                 WHERE heartbeat > clock_timestamp() - make_interval(secs => $1::float8 / 1000) \
                 ORDER BY id",
            )
            .bind(millis(alive) as f64)
            .fetch_all(pool)
            .await
            .db()?),
            super::Inner::Sqlite(_) => Ok(Vec::new()),
        }
    }

    /// The leader's takeover of dead instances' work (an instance is dead
    /// when its heartbeat is older than `dead_after`, or it never beat),
    /// fenced: nothing changes unless `me` holds the lease at `epoch`.
    ///
    /// - Driver subtasks they had running go back to the queue (actions are
    ///   idempotent), except those whose action is in `unsafe_actions`,
    ///   which complete as failures saying why. Subtasks whose action is in
    ///   `waits` (waits for reports, not driver calls) stay as they are.
    /// - Orchestration tasks and steps (tasks with subtasks, and top-level
    ///   tasks) running under any other owner — dead, or alive but no longer
    ///   leading — or under `me` at an older epoch become `me`'s at `epoch`,
    ///   to be settled by `me` (only the leader schedules).
    /// - The dead instances' heartbeat rows are deleted: their work is
    ///   taken over (see [`Store::dead_instances`]).
    pub async fn reclaim_dead(
        &self,
        me: &str,
        epoch: i64,
        dead_after: Duration,
        unsafe_actions: &[String],
        waits: &[&str],
    ) -> Result<Reclaimed> {
        let super::Inner::Postgres(pool) = &self.inner else {
            return Ok(Reclaimed::default());
        };
        let mut tx = pool.begin().await.db()?;
        hold_lease(&mut tx, me, epoch).await?;
        // One cutoff for the whole pass, so the instances forgotten at its
        // end are exactly those whose work it took over.
        let cutoff: DateTime<Utc> = sqlx::query_scalar(
            "SELECT clock_timestamp() - make_interval(secs => $1::float8 / 1000)",
        )
        .bind(millis(dead_after) as f64)
        .fetch_one(&mut *tx)
        .await
        .db()?;
        // Constant fragments only (no input is formatted into SQL).
        let dead = "owner <> $1 AND owner NOT IN (SELECT id FROM instances WHERE heartbeat > $2)";
        let container = "(parent_id IS NULL OR EXISTS \
             (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id))";
        let ts = now();
        let failed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tasks SET status = 'complete', result_status = 'failure', \
                 result_message = 'in flight on instance ' || owner || \
                     ' when it died; ' || action || ' is unsafe to repeat', \
                 result_reason = 'owner_lost', error_count = 1, \
                 successes = '[]', failures = CASE WHEN node_name IS NULL THEN '[]' \
                     ELSE jsonb_build_array(node_name) END, updated = $4 \
             WHERE status = 'running' AND {dead} AND NOT {container} \
                 AND action = ANY($3) AND NOT (action = ANY($5))"
        )))
        .bind(me)
        .bind(cutoff)
        .bind(unsafe_actions)
        .bind(ts)
        .bind(waits)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
        let requeued = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tasks SET status = CASE WHEN terminate THEN 'terminated' ELSE 'queued' END, \
                 result_status = CASE WHEN terminate THEN 'failure' ELSE result_status END, \
                 result_message = CASE WHEN terminate THEN 'cancelled' ELSE result_message END, \
                 owner = NULL, updated = $3 \
             WHERE status = 'running' AND {dead} AND NOT {container} \
                 AND NOT (action = ANY($4))"
        )))
        .bind(me)
        .bind(cutoff)
        .bind(ts)
        .bind(waits)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
        let adopted = adopt_in(&mut tx, me, epoch, ts).await?;
        // Their work taken over, the dead are forgotten: the leader's next
        // ticks find no stale heartbeat and skip this pass (see
        // `cluster::recovery`). One that was only cut off beats again and is
        // back (its reclaimed work is not).
        sqlx::query("DELETE FROM instances WHERE id <> $1 AND heartbeat <= $2")
            .bind(me)
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .db()?;
        super::fault::pause_in_tx(super::fault::Point::ReclaimDead);
        tx.commit().await.db()?;
        Ok(Reclaimed {
            requeued,
            failed,
            adopted,
        })
    }

    /// The leader's adoption of every running orchestration task and step
    /// it does not own at `epoch` (see [`Store::reclaim_dead`]), alone:
    /// fenced on the lease, and safe at once — it takes no driver work, so
    /// it need not wait to tell dead instances from slow ones. Returns how
    /// many were adopted (always 0 on SQLite, which has one instance).
    pub async fn adopt_containers(&self, me: &str, epoch: i64) -> Result<u64> {
        let super::Inner::Postgres(pool) = &self.inner else {
            return Ok(0);
        };
        let mut tx = pool.begin().await.db()?;
        hold_lease(&mut tx, me, epoch).await?;
        let adopted = adopt_in(&mut tx, me, epoch, now()).await?;
        tx.commit().await.db()?;
        Ok(adopted)
    }

    /// Whether an instance other than `me` has a heartbeat older than
    /// `dead_after`: one died since the last [`Store::reclaim_dead`], which
    /// forgets the dead whose work it takes over. Reads only `instances`
    /// (false on SQLite, which has one instance).
    pub async fn dead_instances(&self, me: &str, dead_after: Duration) -> Result<bool> {
        let super::Inner::Postgres(pool) = &self.inner else {
            return Ok(false);
        };
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM instances WHERE id <> $1 \
             AND heartbeat <= clock_timestamp() - make_interval(secs => $2::float8 / 1000))",
        )
        .bind(me)
        .bind(millis(dead_after) as f64)
        .fetch_one(pool)
        .await
        .db()
    }

    /// Fails driver subtasks still running `grace` past their deadline
    /// whatever their owner (an instance that is alive but stuck would
    /// otherwise hold them for ever), as leader `me` at `epoch` (refused
    /// otherwise). Their owner's late outcome is then refused, since
    /// outcomes only land on running tasks; their step settles as usual.
    /// Returns how many were failed. Postgres only (SQLite has one instance,
    /// which enforces its own deadlines).
    pub async fn expire_overdue(&self, me: &str, epoch: i64, grace: Duration) -> Result<u64> {
        let super::Inner::Postgres(pool) = &self.inner else {
            return Ok(0);
        };
        let mut tx = pool.begin().await.db()?;
        hold_lease(&mut tx, me, epoch).await?;
        let failed = sqlx::query(
            "UPDATE tasks SET status = 'complete', result_status = 'failure', \
                 result_message = action || ' timed out: still running on ' || \
                     COALESCE(owner, '?') || ' past its deadline', \
                 result_reason = 'timeout', error_count = error_count + 1, \
                 successes = '[]', failures = CASE WHEN node_name IS NULL THEN '[]' \
                     ELSE jsonb_build_array(node_name) END, updated = $2 \
             WHERE status = 'running' AND deadline IS NOT NULL \
                 AND deadline < clock_timestamp() - make_interval(secs => $1::float8 / 1000) \
                 AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id) \
                 AND parent_id IS NOT NULL",
        )
        .bind(millis(grace) as f64)
        .bind(now())
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
        tx.commit().await.db()?;
        Ok(failed)
    }

    /// Running containers (top-level tasks and orchestration steps) owned
    /// by `owner` whose subtasks have all finished: they are ready to be
    /// settled. Containers act on no one node (`node_name` is null), so the
    /// partial index `tasks_running_containers` finds them without walking
    /// the entries of every per-node call that ran here.
    ///
    /// Each candidate's children are probed by index. The probes are
    /// scalar subqueries, which PostgreSQL runs per candidate rather than
    /// turning into joins, and sequential scans are off for the statement:
    /// when one 100,000-subtask task is most of the table, the statistics
    /// say every row is its child, and the existence checks were planned as
    /// a hash over a scan of the whole table (15 to 25 ms, every second;
    /// 0.1 to 0.6 ms now).
    pub async fn settled_containers(&self, owner: &str) -> Result<Vec<Uuid>> {
        const SETTLED: &str = "SELECT p.id FROM tasks p WHERE p.status = 'running' \
             AND p.owner = $1 AND p.node_name IS NULL \
             AND (SELECT 1 FROM tasks c WHERE c.parent_id = p.id LIMIT 1) IS NOT NULL \
             AND (SELECT 1 FROM tasks c WHERE c.parent_id = p.id \
                  AND c.status NOT IN ('complete', 'terminated') LIMIT 1) IS NULL \
             ORDER BY p.created LIMIT 100";
        if let super::Inner::Postgres(pool) = &self.inner {
            let mut tx = pool.begin().await.db()?;
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await
                .db()?;
            let ids = sqlx::query_scalar(SETTLED)
                .bind(owner)
                .fetch_all(&mut *tx)
                .await
                .db()?;
            tx.commit().await.db()?;
            return Ok(ids);
        }
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(SETTLED)
                .bind(owner)
                .fetch_all(pool)
                .await
                .db()?
        }))
    }

    /// Which of `ids` have cancellation requested.
    pub async fn terminate_requested(&self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if let super::Inner::Postgres(pool) = &self.inner {
            // One statement of constant text, however many ids.
            return sqlx::query_scalar("SELECT id FROM tasks WHERE terminate AND id = ANY($1)")
                .bind(ids)
                .fetch_all(pool)
                .await
                .db();
        }
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let found: Vec<Uuid> = with_pool!(self, |pool, DB| {
                let mut qb = sqlx::QueryBuilder::<DB>::new(
                    "SELECT id FROM tasks WHERE terminate AND id IN (",
                );
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                qb.push(")");
                qb.build_query_scalar().fetch_all(pool).await.db()?
            });
            out.extend(found);
        }
        Ok(out)
    }

    /// Whether `me` holds the lease at `epoch` right now (database clock).
    pub async fn holds_lease(&self, me: &str, epoch: i64) -> Result<bool> {
        if self.backend() == Backend::Sqlite {
            return Ok(true);
        }
        let held: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT epoch FROM leader_lease WHERE id = 1 AND holder = $1 AND epoch = $2 \
                 AND expires > clock_timestamp()",
            )
            .bind(me)
            .bind(epoch)
            .fetch_optional(pool)
            .await
            .db()?
        });
        Ok(held.is_some())
    }
}

/// Only the leader settles orchestrations: it adopts every running one it
/// does not own at its epoch (a dead instance's, a former leader's that is
/// alive but no longer leads, its own from an older epoch). Inside a
/// transaction that holds the lease.
async fn adopt_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    me: &str,
    epoch: i64,
    ts: DateTime<Utc>,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE tasks SET owner = $1, epoch = $2, updated = $3 \
         WHERE status = 'running' \
             AND (parent_id IS NULL OR EXISTS \
                 (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id)) \
             AND (owner IS DISTINCT FROM $1 OR epoch <> $2)",
    )
    .bind(me)
    .bind(epoch)
    .bind(ts)
    .execute(&mut **tx)
    .await
    .db()?
    .rows_affected())
}

/// Locks the lease row inside `tx` if `me` holds it at `epoch` (refused
/// otherwise), so the transaction's writes are fenced on the lease.
async fn hold_lease(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    me: &str,
    epoch: i64,
) -> Result<()> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT epoch FROM leader_lease WHERE id = 1 AND holder = $1 AND epoch = $2 \
         AND expires > clock_timestamp() FOR UPDATE",
    )
    .bind(me)
    .bind(epoch)
    .fetch_optional(&mut **tx)
    .await
    .db()?;
    if held.is_none() {
        return Err(StoreError::Invalid(format!(
            "{me} does not hold the leader lease at epoch {epoch}"
        )));
    }
    Ok(())
}
