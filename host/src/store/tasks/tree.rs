//! Reading task trees: a task's descendants down to a depth, their
//! messages, and the build data collected under a task, each in one
//! recursive query, however wide or deep the tree. `GET
//! /tasks/{id}?layers=N`, `?subtaskerrors` and `/builddata` use these.

use uuid::Uuid;

use super::{TaskRecord, TaskRow, records};
use crate::store::records::MESSAGE_COLS;
use crate::store::{BuildDataRecord, DbResult, MessageRecord, Result, Store, with_pool};

/// The walk every query here starts from: the task `$1` at level 1 and its
/// descendants down to level `$2`.
macro_rules! tree {
    () => {
        "WITH RECURSIVE tree (tree_id, tree_level) AS ( \
             SELECT id, 1 FROM tasks WHERE id = $1 \
             UNION ALL \
             SELECT c.id, tree.tree_level + 1 FROM tasks c \
             JOIN tree ON c.parent_id = tree.tree_id \
             WHERE tree.tree_level < $2 \
         ) "
    };
}

/// A task's tree as stored, down to a depth.
#[derive(Debug, Default)]
pub struct TreeRows {
    /// The tasks, the root first, then level by level; within a level by
    /// creation, then id.
    pub tasks: Vec<TaskRecord>,
    /// Their status messages, in `seq` order.
    pub messages: Vec<MessageRecord>,
    /// (parent, id) of the subtasks one level below the deepest read (none
    /// when the whole tree was read), by parent, then creation and id.
    pub below: Vec<(Uuid, Uuid)>,
}

/// The deepest level, as the queries bind it (`None`: all).
fn level(depth: Option<usize>) -> i64 {
    depth.map_or(i64::MAX, |d| i64::try_from(d).unwrap_or(i64::MAX))
}

impl Store {
    /// `root` and its descendants `depth` levels deep (1 = the root only;
    /// `None` = all), their messages, and the ids of the subtasks under
    /// the deepest level: three queries, whatever the tree's shape (two
    /// when `root` is given and only it is asked for).
    pub async fn task_tree(&self, root: &TaskRecord, depth: Option<usize>) -> Result<TreeRows> {
        let id = root.id;
        let deepest = level(depth);
        let tasks = if deepest <= 1 {
            vec![root.clone()]
        } else {
            let rows: Vec<TaskRow> = with_pool!(self, |pool| {
                sqlx::query_as(concat!(
                    tree!(),
                    "SELECT ",
                    task_cols!(),
                    " FROM tree JOIN tasks ON tasks.id = tree.tree_id \
                     ORDER BY tree.tree_level, tasks.created, tasks.id"
                ))
                .bind(id)
                .bind(deepest)
                .fetch_all(pool)
                .await
                .db()?
            });
            records(rows)?
        };
        let messages: Vec<MessageRecord> = with_pool!(self, |pool| {
            // Constant text: the column list is a constant.
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                concat!(
                    tree!(),
                    "SELECT {} FROM messages JOIN tree ON messages.task_id = tree.tree_id \
                     ORDER BY messages.seq"
                ),
                MESSAGE_COLS
            )))
            .bind(id)
            .bind(deepest)
            .fetch_all(pool)
            .await
            .db()?
        });
        let below: Vec<(Uuid, Uuid)> = if depth.is_none() {
            Vec::new()
        } else {
            with_pool!(self, |pool| {
                sqlx::query_as(concat!(
                    tree!(),
                    "SELECT c.parent_id, c.id FROM tasks c \
                     JOIN tree ON c.parent_id = tree.tree_id \
                     WHERE tree.tree_level = $2 \
                     ORDER BY c.parent_id, c.created, c.id"
                ))
                .bind(id)
                .bind(deepest)
                .fetch_all(pool)
                .await
                .db()?
            })
        };
        Ok(TreeRows {
            tasks,
            messages,
            below,
        })
    }

    /// The build data collected by `root` and every task under it, by
    /// collection time, then id: one query.
    pub async fn build_data_under(&self, root: Uuid) -> Result<Vec<BuildDataRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                tree!(),
                "SELECT id, node_name, task_id, generator, format, content, collected \
                 FROM build_data JOIN tree ON build_data.task_id = tree.tree_id \
                 ORDER BY collected, id"
            ))
            .bind(root)
            .bind(i64::MAX)
            .fetch_all(pool)
            .await
            .db()?
        }))
    }
}
