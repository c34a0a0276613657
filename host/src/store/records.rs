//! Task status messages and per-node build data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::QueryBuilder;
use sqlx::types::Json;
use uuid::Uuid;

use super::{CHUNK, DbResult, Result, Store, now, with_pool};

/// A status message to attach to a task (Drydock's `result_message`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The task the message belongs to.
    pub task_id: Uuid,
    /// Message text.
    pub message: String,
    /// Whether it reports an error.
    pub error: bool,
    /// What the message is about: `"task"` or `"node"`.
    pub context_type: String,
    /// The task id or node name the message is about.
    pub context: String,
    /// Extra structured detail.
    pub extra: Option<Value>,
}

/// A stored status message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct MessageRecord {
    /// Monotonically increasing sequence number (store-wide).
    pub seq: i64,
    /// The task the message belongs to.
    pub task_id: Uuid,
    /// Message text.
    pub message: String,
    /// Whether it reports an error.
    pub error: bool,
    /// `"task"` or `"node"`.
    pub context_type: String,
    /// The task id or node name the message is about.
    pub context: String,
    /// When it was recorded.
    pub ts: DateTime<Utc>,
    /// Extra structured detail.
    #[sqlx(json(nullable))]
    pub extra: Option<Value>,
}

/// Data collected from a node (e.g. `lshw` output) to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBuildData {
    /// The node it was collected from.
    pub node_name: String,
    /// The task that collected it.
    pub task_id: Option<Uuid>,
    /// What produced it (e.g. `lshw`).
    pub generator: String,
    /// Its MIME type or format name (e.g. `application/json`).
    pub format: String,
    /// The data.
    pub content: String,
}

/// Stored build data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct BuildDataRecord {
    /// Row id (increasing).
    pub id: i64,
    /// The node it was collected from.
    pub node_name: String,
    /// The task that collected it (cleared if that task is deleted).
    pub task_id: Option<Uuid>,
    /// What produced it.
    pub generator: String,
    /// Its format.
    pub format: String,
    /// The data.
    pub content: String,
    /// When it was stored.
    pub collected: DateTime<Utc>,
}

/// Message columns, in [`MessageRecord`] order.
macro_rules! message_cols {
    () => {
        "seq, task_id, message, error, context_type, context, ts, extra"
    };
}
pub(super) use message_cols;

/// Message columns, in [`MessageRecord`] order.
const MESSAGE_COLS: &str = message_cols!();

/// What a task's dict is built from changes with: its status, its last
/// update and its newest message. A finished task whose version is the same
/// reads the same (see the API's finished-task cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskVersion {
    /// The task's status.
    pub status: super::TaskStatus,
    /// When the task row last changed.
    pub updated: DateTime<Utc>,
    /// The `seq` of its newest message, if it has any.
    pub last_message: Option<i64>,
}

impl Store {
    /// The [`TaskVersion`] of task `id` (one query), or `None` if there is
    /// no such task.
    pub async fn task_version(&self, id: Uuid) -> Result<Option<TaskVersion>> {
        let row: Option<(String, DateTime<Utc>, Option<i64>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT t.status, t.updated, \
                 (SELECT MAX(m.seq) FROM messages m WHERE m.task_id = t.id) \
                 FROM tasks t WHERE t.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
            .db()?
        });
        row.map(|(status, updated, last_message)| {
            Ok(TaskVersion {
                status: status.parse()?,
                updated,
                last_message,
            })
        })
        .transpose()
    }

    /// The [`TaskVersion`]s of the tasks among `ids` that exist (one
    /// statement on PostgreSQL, a primary-key probe per id; one query per
    /// id on SQLite).
    ///
    /// A lone id is read by [`Store::task_version`]'s statement: PostgreSQL
    /// plans the array statement again on every execution (its estimate
    /// depends on the array's length, so it keeps a custom plan), about
    /// 80 µs each time, while the single-row statement's generic plan is
    /// made once.
    pub async fn task_versions(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, TaskVersion>> {
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        let pool = match &self.inner {
            super::Inner::Postgres(pool) if ids.len() > 1 => pool,
            _ => {
                for &id in ids {
                    if let Some(v) = self.task_version(id).await? {
                        found.insert(id, v);
                    }
                }
                return Ok(found);
            }
        };
        // A primary-key probe per id whatever the table's size or
        // statistics: the lateral subquery, fenced by `OFFSET 0`, is not
        // flattened into a join the planner could answer by hashing all of
        // `tasks` (see `batch::begin_keyed`).
        let rows: Vec<(Uuid, String, DateTime<Utc>, Option<i64>)> = sqlx::query_as(
            "SELECT k.id, t.status, t.updated, \
             (SELECT MAX(m.seq) FROM messages m WHERE m.task_id = k.id) \
             FROM unnest($1::uuid[]) AS k (id) \
             CROSS JOIN LATERAL (SELECT status, updated FROM tasks \
                                 WHERE tasks.id = k.id OFFSET 0) AS t",
        )
        .bind(ids)
        .fetch_all(pool)
        .await
        .db()?;
        for (id, status, updated, last_message) in rows {
            let version = TaskVersion {
                status: status.parse()?,
                updated,
                last_message,
            };
            found.insert(id, version);
        }
        Ok(found)
    }

    /// Appends status messages (batched, one transaction). Messages get
    /// increasing `seq` numbers in slice order. Returns how many were
    /// stored.
    pub async fn add_messages(&self, messages: &[NewMessage]) -> Result<u64> {
        if messages.is_empty() {
            return Ok(0);
        }
        let now = now();
        if let super::Inner::Postgres(pool) = &self.inner {
            let mut conn = pool.acquire().await.db()?;
            return add_messages_pg(&mut conn, messages, now).await;
        }
        let mut added = 0;
        with_pool!(self, |pool, DB| {
            let mut tx = pool.begin().await.db()?;
            for chunk in messages.chunks(CHUNK) {
                let mut qb = QueryBuilder::<DB>::new(
                    "INSERT INTO messages (task_id, message, error, context_type, context, ts, \
                     extra) ",
                );
                qb.push_values(chunk, |mut b, m| {
                    b.push_bind(m.task_id)
                        .push_bind(m.message.clone())
                        .push_bind(m.error)
                        .push_bind(m.context_type.clone())
                        .push_bind(m.context.clone())
                        .push_bind(now)
                        .push_bind(m.extra.clone().filter(|v| !v.is_null()).map(Json));
                });
                // Multi-row VALUES are inserted in order, so `seq` follows
                // the slice.
                added += qb.build().execute(&mut *tx).await.db()?.rows_affected();
            }
            tx.commit().await.db()?;
        });
        Ok(added)
    }

    /// The messages of one task, in `seq` order.
    pub async fn messages(&self, task_id: Uuid) -> Result<Vec<MessageRecord>> {
        self.messages_for_tasks(&[task_id]).await
    }

    /// The messages of several tasks (e.g. a task and its subtasks, to roll
    /// them up), in `seq` order.
    pub async fn messages_for_tasks(&self, task_ids: &[Uuid]) -> Result<Vec<MessageRecord>> {
        let mut all = Vec::new();
        for chunk in task_ids.chunks(CHUNK) {
            let rows: Vec<MessageRecord> = with_pool!(self, |pool, DB| {
                let mut qb = QueryBuilder::<DB>::new(format!(
                    "SELECT {MESSAGE_COLS} FROM messages WHERE task_id IN ("
                ));
                let mut ids = qb.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                qb.push(") ORDER BY seq");
                qb.build_query_as().fetch_all(pool).await.db()?
            });
            all.extend(rows);
        }
        if task_ids.len() > CHUNK {
            all.sort_by_key(|m| m.seq);
        }
        Ok(all)
    }

    /// Stores data collected from a node and returns it.
    pub async fn add_build_data(&self, data: &NewBuildData) -> Result<BuildDataRecord> {
        let now = now();
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO build_data (node_name, task_id, generator, format, content, \
                 collected) VALUES ($1, $2, $3, $4, $5, $6) \
                 RETURNING id, node_name, task_id, generator, format, content, collected",
            )
            .bind(&data.node_name)
            .bind(data.task_id)
            .bind(&data.generator)
            .bind(&data.format)
            .bind(&data.content)
            .bind(now)
            .fetch_one(pool)
            .await
            .db()?
        }))
    }

    /// Keeps a node's newest build data within `max_items` items and
    /// `max_bytes` bytes of content (the newest item always stays); returns
    /// how many older items were deleted.
    pub async fn prune_build_data(
        &self,
        node_name: &str,
        max_items: u64,
        max_bytes: u64,
    ) -> Result<u64> {
        let items = i64::try_from(max_items.max(1)).unwrap_or(i64::MAX);
        let bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM build_data WHERE id IN (SELECT id FROM ( \
                     SELECT id, \
                         ROW_NUMBER() OVER (ORDER BY collected DESC, id DESC) AS rn, \
                         SUM(OCTET_LENGTH(content)) OVER ( \
                             ORDER BY collected DESC, id DESC \
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS total \
                     FROM build_data WHERE node_name = $1) x \
                 WHERE rn > $2 OR (rn > 1 AND total > $3))",
            )
            .bind(node_name)
            .bind(items)
            .bind(bytes)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        }))
    }

    /// Build data of a node, newest first; with `latest`, only the newest
    /// item per generator (ordered by generator).
    pub async fn build_data_for_node(
        &self,
        node_name: &str,
        latest: bool,
    ) -> Result<Vec<BuildDataRecord>> {
        Ok(with_pool!(self, |pool| {
            let sql = if latest {
                "SELECT id, node_name, task_id, generator, format, content, collected FROM ( \
                     SELECT b.*, ROW_NUMBER() OVER ( \
                         PARTITION BY generator ORDER BY collected DESC, id DESC) AS rn \
                     FROM build_data b WHERE node_name = $1) x \
                 WHERE rn = 1 ORDER BY generator"
            } else {
                "SELECT id, node_name, task_id, generator, format, content, collected \
                 FROM build_data WHERE node_name = $1 ORDER BY collected DESC, id DESC"
            };
            sqlx::query_as(sql)
                .bind(node_name)
                .fetch_all(pool)
                .await
                .db()?
        }))
    }

    /// Build data collected by a task, oldest first.
    pub async fn build_data_for_task(&self, task_id: Uuid) -> Result<Vec<BuildDataRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, node_name, task_id, generator, format, content, collected \
                 FROM build_data WHERE task_id = $1 ORDER BY collected, id",
            )
            .bind(task_id)
            .fetch_all(pool)
            .await
            .db()?
        }))
    }
}

/// [`Store::add_messages`] on PostgreSQL, on a connection (alone or in the
/// caller's transaction): one statement of constant text (columns bound as
/// arrays and `UNNEST`ed, `WITH ORDINALITY` keeping the slice's order for
/// `seq`).
pub(super) async fn add_messages_pg(
    conn: &mut sqlx::PgConnection,
    messages: &[NewMessage],
    now: DateTime<Utc>,
) -> Result<u64> {
    let n = messages.len();
    let mut tasks = Vec::with_capacity(n);
    let mut texts = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut context_types = Vec::with_capacity(n);
    let mut contexts = Vec::with_capacity(n);
    let mut extras = Vec::with_capacity(n);
    for m in messages {
        tasks.push(m.task_id);
        texts.push(m.message.as_str());
        errors.push(m.error);
        context_types.push(m.context_type.as_str());
        contexts.push(m.context.as_str());
        extras.push(m.extra.clone().filter(|v| !v.is_null()));
    }
    Ok(sqlx::query(
        "INSERT INTO messages (task_id, message, error, context_type, context, ts, extra) \
         SELECT v.task_id, v.message, v.error, v.context_type, v.context, $7, v.extra \
         FROM UNNEST($1::uuid[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::jsonb[]) \
              WITH ORDINALITY AS v (task_id, message, error, context_type, context, extra, n) \
         ORDER BY v.n",
    )
    .bind(&tasks)
    .bind(&texts)
    .bind(&errors)
    .bind(&context_types)
    .bind(&contexts)
    .bind(&extras)
    .bind(now)
    .execute(conn)
    .await
    .db()?
    .rows_affected())
}
