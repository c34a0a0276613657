//! Reading tasks: one, a list, a parent's subtasks and their counts.

use uuid::Uuid;

use sqlx::QueryBuilder;

use super::{ResultStatus, TaskFilter, TaskRecord, TaskRow, TaskStatus, records};
use crate::store::{DbResult, Result, Store, parse_col, with_pool};

impl Store {
    /// One task, if it exists.
    pub async fn get_task(&self, id: Uuid) -> Result<Option<TaskRecord>> {
        let row: Option<TaskRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                task_cols!(),
                " FROM tasks WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
            .db()?
        });
        row.map(TaskRecord::try_from).transpose()
    }

    /// Tasks matching `filter`, newest first.
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>> {
        let limit = if filter.limit <= 0 {
            i64::MAX
        } else {
            filter.limit
        };
        let rows: Vec<TaskRow> = with_pool!(self, |pool, DB| {
            let mut qb = QueryBuilder::<DB>::new(concat!(
                "SELECT ",
                task_cols!(),
                " FROM tasks WHERE 1 = 1"
            ));
            match filter.parent {
                None => {}
                Some(None) => {
                    qb.push(" AND parent_id IS NULL");
                }
                Some(Some(parent)) => {
                    qb.push(" AND parent_id = ").push_bind(parent);
                }
            }
            if let Some(status) = filter.status {
                qb.push(" AND status = ").push_bind(status.as_str());
            }
            qb.push(" ORDER BY created DESC, id DESC LIMIT ")
                .push_bind(limit)
                .push(" OFFSET ")
                .push_bind(filter.offset.max(0));
            qb.build_query_as().fetch_all(pool).await.db()?
        });
        records(rows)
    }

    /// The subtasks of `parent`, ordered by node name (unnamed last), then
    /// creation.
    pub async fn subtasks(&self, parent: Uuid) -> Result<Vec<TaskRecord>> {
        let rows: Vec<TaskRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                task_cols!(),
                " FROM tasks WHERE parent_id = $1 \
                 ORDER BY node_name ASC NULLS LAST, created, id"
            ))
            .bind(parent)
            .fetch_all(pool)
            .await
            .db()?
        });
        records(rows)
    }

    /// Feeds `f` the outcome of each subtask of `parent` (its id, node,
    /// status and result), streamed: a 100,000-node task's roll-up never
    /// holds its subtasks' rows. Returns how many there were.
    pub async fn fold_subtask_outcomes(
        &self,
        parent: Uuid,
        mut f: impl FnMut(Uuid, Option<&str>, TaskStatus, ResultStatus),
    ) -> Result<u64> {
        use futures_util::TryStreamExt;
        let mut n = 0;
        with_pool!(self, |pool| {
            let mut rows = sqlx::query_as::<_, (Uuid, Option<String>, String, String)>(
                "SELECT id, node_name, status, result_status FROM tasks WHERE parent_id = $1",
            )
            .bind(parent)
            .fetch(pool);
            while let Some((id, node, status, result)) = rows.try_next().await.db()? {
                f(
                    id,
                    node.as_deref(),
                    parse_col("status", &status)?,
                    parse_col("result_status", &result)?,
                );
                n += 1;
            }
        });
        Ok(n)
    }

    /// Running subtasks whose action is `action`, any owner (the waits for
    /// boot action reports, which no executor claims).
    pub async fn running_with_action(&self, action: &str) -> Result<Vec<TaskRecord>> {
        let rows: Vec<TaskRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                task_cols!(),
                " FROM tasks WHERE status = 'running' AND action = $1 ORDER BY created, id"
            ))
            .bind(action)
            .fetch_all(pool)
            .await
            .db()?
        });
        records(rows)
    }

    /// The ids of the subtasks of `parent` (Drydock's `subtask_id_list`),
    /// oldest first.
    pub async fn subtask_ids(&self, parent: Uuid) -> Result<Vec<Uuid>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM tasks WHERE parent_id = $1 ORDER BY created, id")
                .bind(parent)
                .fetch_all(pool)
                .await
                .db()?
        }))
    }

    /// Whether `parent` has any subtask (one index probe, where
    /// [`Store::subtask_ids`] reads them all).
    pub async fn has_subtasks(&self, parent: Uuid) -> Result<bool> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM tasks WHERE parent_id = $1)",
            )
            .bind(parent)
            .fetch_one(pool)
            .await
            .db()?
        }))
    }

    /// Whether `parent` has a subtask not yet finished (one probe of
    /// a partial index, however many subtasks it has).
    pub async fn has_open_subtasks(&self, parent: Uuid) -> Result<bool> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM tasks WHERE parent_id = $1 \
                 AND status NOT IN ('complete', 'terminated'))",
            )
            .bind(parent)
            .fetch_one(pool)
            .await
            .db()?
        }))
    }

    /// How many subtasks of `parent` there are per (status, result status).
    pub async fn count_subtasks_by_status(
        &self,
        parent: Uuid,
    ) -> Result<Vec<(TaskStatus, ResultStatus, i64)>> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT status, result_status, COUNT(*) FROM tasks WHERE parent_id = $1 \
                 GROUP BY status, result_status ORDER BY status, result_status",
            )
            .bind(parent)
            .fetch_all(pool)
            .await
            .db()?
        });
        rows.into_iter()
            .map(|(s, r, n)| Ok((parse_col("status", &s)?, parse_col("result_status", &r)?, n)))
            .collect()
    }
}
