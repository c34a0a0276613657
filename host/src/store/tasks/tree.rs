//! Reading task trees: a task's descendants down to a depth, their
//! messages, and the build data collected under a task, each in one
//! recursive query, however wide or deep the tree. `GET
//! /tasks/{id}?layers=N`, `?subtaskerrors` and `/builddata` use these.
//!
//! On PostgreSQL every step of the walk is a lateral subquery (kept apart
//! with `OFFSET 0`), so each task found is followed by index: a plain join
//! was planned as a hash or merge join over a scan of every task (100 ms
//! for a task's subtask ids with 100,000 rows in `tasks`, against well
//! under a millisecond by index). SQLite follows the indexes as it is.

use uuid::Uuid;

use super::{TaskRecord, TaskRow, records};
use crate::store::records::message_cols;
use crate::store::{
    Backend, BuildDataRecord, DateTime, DbResult, MessageRecord, Result, Store, Utc, with_pool,
};

/// A query over the tree under `$1` down to level `$2`: `$cols` of the rows
/// of `$table` whose `$key` is a task of the tree (as `x`), then `$rest`.
/// The PostgreSQL text first, then SQLite's.
macro_rules! over_tree {
    ($cols:expr, $table:literal, $key:literal, $rest:literal) => {
        (
            concat!(
                walk!(
                    "CROSS JOIN LATERAL (SELECT c.id FROM tasks c \
                       WHERE c.parent_id = tree.tree_id OFFSET 0) c"
                ),
                "SELECT ",
                $cols,
                " FROM tree CROSS JOIN LATERAL (SELECT ",
                $cols,
                " FROM ",
                $table,
                " WHERE ",
                $key,
                " = tree.tree_id OFFSET 0) x ",
                $rest
            ),
            concat!(
                walk!("JOIN tasks c ON c.parent_id = tree.tree_id"),
                "SELECT ",
                $cols,
                " FROM tree JOIN ",
                $table,
                " x ON x.",
                $key,
                " = tree.tree_id ",
                $rest
            ),
        )
    };
}

/// The walk: the task `$1` at level 1 and its descendants down to level
/// `$2`, each level's subtasks found through `$step` (which names them `c`).
macro_rules! walk {
    ($step:literal) => {
        concat!(
            "WITH RECURSIVE tree (tree_id, tree_level) AS ( \
                 SELECT id, 1 FROM tasks WHERE id = $1 \
                 UNION ALL \
                 SELECT c.id, tree.tree_level + 1 FROM tree ",
            $step,
            " WHERE tree.tree_level < $2 ) "
        )
    };
}

/// The tasks of the tree, level by level, each level by creation and id.
const TASKS: (&str, &str) = over_tree!(
    task_cols!(),
    "tasks",
    "id",
    "ORDER BY tree.tree_level, x.created, x.id"
);

/// The messages of the tasks of the tree, in order.
const MESSAGES: (&str, &str) = over_tree!(message_cols!(), "messages", "task_id", "ORDER BY x.seq");

/// (parent, id) of the subtasks of the tree's tasks at level `$2`.
const BELOW: (&str, &str) = over_tree!(
    "parent_id, id, created",
    "tasks",
    "parent_id",
    "WHERE tree.tree_level = $2 ORDER BY x.parent_id, x.created, x.id"
);

/// The build data of the tasks of the tree, oldest first.
const BUILD_DATA: (&str, &str) = over_tree!(
    "id, node_name, task_id, generator, format, content, collected",
    "build_data",
    "task_id",
    "ORDER BY x.collected, x.id"
);

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

/// The subtasks of `$1` alone, for a read of one level (what a plain
/// `GET /tasks/{id}` makes, many times a second): no walk.
const CHILDREN: &str = "SELECT parent_id, id, created FROM tasks WHERE parent_id = $1 \
                        ORDER BY created, id";

/// Runs the tree queries `$body` with `$exec` bound to something they can
/// run on: on PostgreSQL a read-only transaction (one snapshot for all of
/// them) with sequential scans and JIT off — when one large task is most
/// of the table, the statistics say any task may have most of the rows as
/// children, and each step of the walk was planned as a scan of the whole
/// table with a JIT compile on top; on SQLite a (read) transaction.
macro_rules! in_snapshot {
    ($store:expr, |$exec:ident| $body:expr) => {
        match &$store.inner {
            $crate::store::Inner::Postgres(pool) => {
                let mut tx = pool.begin().await.db()?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .db()?;
                sqlx::query(
                    "SELECT set_config('enable_seqscan', 'off', true), \
                     set_config('jit', 'off', true)",
                )
                .execute(&mut *tx)
                .await
                .db()?;
                let $exec = &mut *tx;
                let out = $body;
                tx.commit().await.db()?;
                out
            }
            $crate::store::Inner::Sqlite(pool) => {
                let mut tx = pool.begin().await.db()?;
                let $exec = &mut *tx;
                let out = $body;
                tx.commit().await.db()?;
                out
            }
        }
    };
}

impl Store {
    /// This backend's text of `sql`.
    fn tree_sql(&self, sql: (&'static str, &'static str)) -> &'static str {
        match self.backend() {
            Backend::Postgres => sql.0,
            Backend::Sqlite => sql.1,
        }
    }

    /// `root` and its descendants `depth` levels deep (1 = the root only;
    /// `None` = all), their messages, and the ids of the subtasks under
    /// the deepest level: three queries, whatever the tree's shape (two
    /// when only the root, which is given, is asked for).
    pub async fn task_tree(&self, root: &TaskRecord, depth: Option<usize>) -> Result<TreeRows> {
        let id = root.id;
        let deepest = level(depth);
        if deepest <= 1 {
            let rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = with_pool!(self, |pool| {
                sqlx::query_as(CHILDREN)
                    .bind(id)
                    .fetch_all(pool)
                    .await
                    .db()?
            });
            return Ok(TreeRows {
                tasks: vec![root.clone()],
                messages: self.messages(id).await?,
                below: rows.into_iter().map(|(p, c, _)| (p, c)).collect(),
            });
        }
        let (tasks_sql, messages_sql) = (self.tree_sql(TASKS), self.tree_sql(MESSAGES));
        let below_sql = depth.map(|_| self.tree_sql(BELOW));
        let (rows, messages, below) = in_snapshot!(self, |exec| {
            let rows: Vec<TaskRow> = sqlx::query_as(tasks_sql)
                .bind(id)
                .bind(deepest)
                .fetch_all(&mut *exec)
                .await
                .db()?;
            let messages: Vec<MessageRecord> = sqlx::query_as(messages_sql)
                .bind(id)
                .bind(deepest)
                .fetch_all(&mut *exec)
                .await
                .db()?;
            let below: Vec<(Uuid, Uuid, DateTime<Utc>)> = match below_sql {
                Some(sql) => sqlx::query_as(sql)
                    .bind(id)
                    .bind(deepest)
                    .fetch_all(&mut *exec)
                    .await
                    .db()?,
                None => Vec::new(),
            };
            (rows, messages, below)
        });
        Ok(TreeRows {
            tasks: records(rows)?,
            messages,
            below: below.into_iter().map(|(p, c, _)| (p, c)).collect(),
        })
    }

    /// The build data collected by `root` and every task under it, by
    /// collection time, then id: one query.
    pub async fn build_data_under(&self, root: Uuid) -> Result<Vec<BuildDataRecord>> {
        let sql = self.tree_sql(BUILD_DATA);
        Ok(in_snapshot!(self, |exec| {
            sqlx::query_as(sql)
                .bind(root)
                .bind(i64::MAX)
                .fetch_all(&mut *exec)
                .await
                .db()?
        }))
    }
}
