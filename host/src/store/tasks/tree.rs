//! Reading task trees a layer at a time: the subtasks of many parents in
//! one query (per [`CHUNK`] parents), and every descendant of a task in one
//! recursive query. `GET /tasks/{id}?layers=N` and `/builddata` read a tree
//! in a number of queries that does not grow with its width.

use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{TaskRecord, TaskRow, records};
use crate::store::{CHUNK, DbResult, Result, Store, with_pool};

impl Store {
    /// The subtasks of every task in `parents`, in one list ordered by
    /// parent (as given), then creation and id.
    pub async fn subtasks_of(&self, parents: &[Uuid]) -> Result<Vec<TaskRecord>> {
        let mut rows: Vec<TaskRow> = Vec::new();
        for chunk in parents.chunks(CHUNK) {
            let part: Vec<TaskRow> = with_pool!(self, |pool, DB| {
                let mut qb = QueryBuilder::<DB>::new(concat!(
                    "SELECT ",
                    task_cols!(),
                    " FROM tasks WHERE parent_id IN ("
                ));
                let mut ids = qb.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                qb.push(")");
                qb.build_query_as().fetch_all(pool).await.db()?
            });
            rows.extend(part);
        }
        let mut tasks = records(rows)?;
        let order: std::collections::HashMap<Uuid, usize> =
            parents.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        tasks.sort_by_key(|t| {
            (
                t.parent_id.and_then(|p| order.get(&p).copied()),
                t.created,
                t.id,
            )
        });
        Ok(tasks)
    }

    /// The subtask ids of every task in `parents`, per parent (in the
    /// order given; each parent's by creation, then id).
    pub async fn subtask_ids_of(&self, parents: &[Uuid]) -> Result<Vec<Vec<Uuid>>> {
        let mut by_parent: std::collections::HashMap<Uuid, Vec<Uuid>> =
            std::collections::HashMap::new();
        for chunk in parents.chunks(CHUNK) {
            let part: Vec<(Uuid, Uuid)> = with_pool!(self, |pool, DB| {
                let mut qb =
                    QueryBuilder::<DB>::new("SELECT parent_id, id FROM tasks WHERE parent_id IN (");
                let mut ids = qb.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                qb.push(") ORDER BY parent_id, created, id");
                qb.build_query_as().fetch_all(pool).await.db()?
            });
            for (parent, id) in part {
                by_parent.entry(parent).or_default().push(id);
            }
        }
        Ok(parents
            .iter()
            .map(|p| by_parent.remove(p).unwrap_or_default())
            .collect())
    }

    /// The build data collected by every task in `tasks`, in that order
    /// (each task's by collection time, then id).
    pub async fn build_data_for_tasks(
        &self,
        tasks: &[Uuid],
    ) -> Result<Vec<crate::store::BuildDataRecord>> {
        let mut by_task: std::collections::HashMap<Uuid, Vec<crate::store::BuildDataRecord>> =
            std::collections::HashMap::new();
        for chunk in tasks.chunks(CHUNK) {
            let part: Vec<crate::store::BuildDataRecord> = with_pool!(self, |pool, DB| {
                let mut qb = QueryBuilder::<DB>::new(
                    "SELECT id, node_name, task_id, generator, format, content, collected \
                     FROM build_data WHERE task_id IN (",
                );
                let mut ids = qb.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                qb.push(") ORDER BY collected, id");
                qb.build_query_as().fetch_all(pool).await.db()?
            });
            for b in part {
                if let Some(t) = b.task_id {
                    by_task.entry(t).or_default().push(b);
                }
            }
        }
        Ok(tasks
            .iter()
            .flat_map(|t| by_task.remove(t).unwrap_or_default())
            .collect())
    }
}
