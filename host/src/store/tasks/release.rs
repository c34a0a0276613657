//! An instance giving back the work it holds: at start-up, what a previous
//! run of it left running ([`Store::requeue_owned`]); while it drains, the
//! subtasks it took but never started ([`Store::requeue_ids`]), then the
//! calls it cut ([`Store::requeue_calls`]).

use sqlx::QueryBuilder;
use uuid::Uuid;

use super::super::{CHUNK, DbResult, Result, Store, now, with_pool};

/// `UPDATE tasks SET …` putting tasks back in the queue (owner cleared),
/// or ending those whose cancellation was requested as terminated, for
/// database type `$db`, at `$now`; the `WHERE` clause follows.
macro_rules! requeue_update {
    ($db:ty, $now:expr) => {{
        let now = $now;
        let mut qb = QueryBuilder::<$db>::new(
            "UPDATE tasks SET \
                 status = CASE WHEN terminate THEN 'terminated' ELSE 'queued' END, \
                 result_status = CASE WHEN terminate THEN 'failure' \
                     ELSE result_status END, \
                 result_message = CASE WHEN terminate THEN 'cancelled' \
                     ELSE result_message END, \
                 terminated = CASE WHEN terminate THEN ",
        );
        qb.push_bind(now)
            .push(" ELSE terminated END, owner = NULL, updated = ")
            .push_bind(now);
        qb
    }};
}

/// Which of an owner's running tasks [`Store::requeue_held`] gives back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Driver subtasks and top-level tasks (at start-up).
    All,
    /// Driver subtasks only (a drain: top-level tasks stay running, for
    /// the leader to adopt).
    Calls,
}

impl Store {
    /// At start-up: tasks left `running` by `owner` go back to `queued`
    /// (owner cleared) to be claimed again; those whose cancellation was
    /// requested are terminated instead. Tasks whose action is in `waits`
    /// (waits for reports, not driver calls) stay as they are. Orchestrator
    /// steps (subtasks that have subtasks of their own) stay `running`
    /// under `owner`: they are containers, settled when their subtasks
    /// finish. Returns how many changed.
    pub async fn requeue_owned(&self, owner: &str, waits: &[&str]) -> Result<u64> {
        self.requeue_held(owner, waits, Held::All).await
    }

    /// [`Store::requeue_owned`] for driver subtasks only: what a draining
    /// instance still holds at its end (calls it cut). Its top-level tasks
    /// stay `running` (a poller never sees one go back to `queued`); the
    /// leader adopts them. Returns how many changed.
    pub async fn requeue_calls(&self, owner: &str, waits: &[&str]) -> Result<u64> {
        self.requeue_held(owner, waits, Held::Calls).await
    }

    async fn requeue_held(&self, owner: &str, waits: &[&str], held: Held) -> Result<u64> {
        let now = now();
        Ok(with_pool!(self, |pool, DB| {
            let mut qb = requeue_update!(DB, now);
            qb.push(" WHERE status = 'running' AND owner = ")
                .push_bind(owner)
                .push(match held {
                    Held::All => {
                        " AND (parent_id IS NULL OR NOT EXISTS \
                         (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id))"
                    }
                    Held::Calls => {
                        " AND parent_id IS NOT NULL AND NOT EXISTS \
                         (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id)"
                    }
                });
            if !waits.is_empty() {
                qb.push(" AND action NOT IN (");
                let mut list = qb.separated(", ");
                for w in waits {
                    list.push_bind(*w);
                }
                qb.push(")");
            }
            qb.build().execute(pool).await.db()?.rows_affected()
        }))
    }

    /// Subtasks among `ids` still `running` under `owner` go back to
    /// `queued` (owner cleared), to be claimed by any instance; those whose
    /// cancellation was requested are terminated instead. For subtasks an
    /// instance took but never started (its call never ran). Returns how
    /// many changed.
    pub async fn requeue_ids(&self, owner: &str, ids: &[Uuid]) -> Result<u64> {
        let now = now();
        let mut changed = 0;
        for chunk in ids.chunks(CHUNK) {
            changed += with_pool!(self, |pool, DB| {
                let mut qb = requeue_update!(DB, now);
                qb.push(" WHERE status = 'running' AND owner = ")
                    .push_bind(owner)
                    .push(" AND id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(pool).await.db()?.rows_affected()
            });
        }
        Ok(changed)
    }
}
