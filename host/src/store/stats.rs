//! Counts for the metrics endpoint ([`crate::observe::metrics`]): how many
//! tasks there are per action, status and result.

use super::{DbResult, Result, ResultStatus, Store, TaskStatus, parse_col, with_pool};

/// How many tasks have one action, status and result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskCount {
    /// The action.
    pub action: String,
    /// The lifecycle status.
    pub status: TaskStatus,
    /// The result status.
    pub result: ResultStatus,
    /// How many tasks.
    pub count: i64,
}

impl Store {
    /// Tasks per (action, status, result), subtasks included; one grouped
    /// query.
    pub async fn count_tasks(&self) -> Result<Vec<TaskCount>> {
        let rows: Vec<(String, String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT action, status, result_status, COUNT(*) FROM tasks \
                 GROUP BY action, status, result_status ORDER BY action, status, result_status",
            )
            .fetch_all(pool)
            .await
            .db()?
        });
        rows.into_iter()
            .map(|(action, s, r, count)| {
                Ok(TaskCount {
                    action,
                    status: parse_col("status", &s)?,
                    result: parse_col("result_status", &r)?,
                    count,
                })
            })
            .collect()
    }
}
