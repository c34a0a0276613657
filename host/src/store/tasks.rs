//! Tasks: the records, claiming with fencing, batched outcomes, cancel and
//! clean-up.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::QueryBuilder;
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    Backend, CHUNK, DbResult, Result, Store, StoreError, now, parse_col, trunc, with_pool,
};

/// The columns of `tasks`, in [`TaskRow`] order.
macro_rules! task_cols {
    () => {
        "id, parent_id, action, design_ref, node_filter, node_name, params, status, \
         result_status, result_message, result_reason, successes, failures, error_count, retry, \
         created, created_by, updated, terminated, terminated_by, terminate, owner, attempt, \
         deadline, epoch, max_attempts, traceparent"
    };
}

/// Where a task is in its life (Drydock's task status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Created but not yet accepted for execution.
    Requested,
    /// Waiting to be claimed by an executor.
    Queued,
    /// Claimed and being executed by its `owner`.
    Running,
    /// Finished (successfully or not: see [`ResultStatus`]).
    Complete,
    /// Stopped before finishing (cancelled).
    Terminated,
}

impl TaskStatus {
    /// The text stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Requested => "requested",
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Complete => "complete",
            TaskStatus::Terminated => "terminated",
        }
    }

    /// Whether the task has finished (complete or terminated).
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Complete | TaskStatus::Terminated)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "requested" => TaskStatus::Requested,
            "queued" => TaskStatus::Queued,
            "running" => TaskStatus::Running,
            "complete" => TaskStatus::Complete,
            "terminated" => TaskStatus::Terminated,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown task status {other:?}"
                )));
            }
        })
    }
}

/// How a task turned out (Drydock's `result.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// Not finished yet.
    Incomplete,
    /// Everything succeeded.
    Success,
    /// Some nodes or steps succeeded, others failed.
    PartialSuccess,
    /// Nothing succeeded.
    Failure,
}

impl ResultStatus {
    /// The text stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Incomplete => "incomplete",
            ResultStatus::Success => "success",
            ResultStatus::PartialSuccess => "partial_success",
            ResultStatus::Failure => "failure",
        }
    }
}

impl fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResultStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "incomplete" => ResultStatus::Incomplete,
            "success" => ResultStatus::Success,
            "partial_success" => ResultStatus::PartialSuccess,
            "failure" => ResultStatus::Failure,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown result status {other:?}"
                )));
            }
        })
    }
}

/// A task as stored. Subtask ids are not stored: ask
/// [`Store::subtask_ids`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Task id.
    pub id: Uuid,
    /// The parent task, for subtasks.
    pub parent_id: Option<Uuid>,
    /// The action name (e.g. `deploy_nodes`, `power_on_node`).
    pub action: String,
    /// Site design reference (`file://`, `http(s)://`, `deckhand+http://`).
    pub design_ref: Option<String>,
    /// Drydock node filter (`{filter_set_type, filter_set}`); `None` = all.
    pub node_filter: Option<Value>,
    /// The node a per-node subtask acts on.
    pub node_name: Option<String>,
    /// Action parameters (`{}` when none).
    pub params: Value,
    /// Life-cycle status.
    pub status: TaskStatus,
    /// Result status.
    pub result_status: ResultStatus,
    /// Result message.
    pub result_message: Option<String>,
    /// Result reason.
    pub result_reason: Option<String>,
    /// Names of the nodes the task succeeded on.
    pub successes: Vec<String>,
    /// Names of the nodes the task failed on.
    pub failures: Vec<String>,
    /// Number of error messages.
    pub error_count: i64,
    /// Drydock's retry number: how many times the task's action was
    /// retried (0 when the first attempt settled it).
    pub retry: i64,
    /// Attempts allowed for the task's driver action (0: the engine's
    /// default policy).
    pub max_attempts: i64,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Who created the task.
    pub created_by: Option<String>,
    /// Last change.
    pub updated: DateTime<Utc>,
    /// When the task was terminated.
    pub terminated: Option<DateTime<Utc>>,
    /// Who asked for termination.
    pub terminated_by: Option<String>,
    /// Cancellation requested: the executor should stop.
    pub terminate: bool,
    /// The instance that claimed (is executing) the task.
    pub owner: Option<String>,
    /// How many times the task was claimed.
    pub attempt: i32,
    /// When the task must be finished by.
    pub deadline: Option<DateTime<Utc>>,
    /// Fencing epoch of the current claim.
    pub epoch: i64,
    /// The W3C `traceparent` the task's spans continue: its own span's for
    /// a task that has one (a top-level task, an orchestration step), its
    /// parent's for a driver call. `None` when traces are not exported.
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// The database row behind a [`TaskRecord`].
#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    id: Uuid,
    parent_id: Option<Uuid>,
    action: String,
    design_ref: Option<String>,
    node_filter: Option<Json<Value>>,
    node_name: Option<String>,
    params: Json<Value>,
    status: String,
    result_status: String,
    result_message: Option<String>,
    result_reason: Option<String>,
    successes: Json<Vec<String>>,
    failures: Json<Vec<String>>,
    error_count: i64,
    retry: i64,
    created: DateTime<Utc>,
    created_by: Option<String>,
    updated: DateTime<Utc>,
    terminated: Option<DateTime<Utc>>,
    terminated_by: Option<String>,
    terminate: bool,
    owner: Option<String>,
    attempt: i32,
    deadline: Option<DateTime<Utc>>,
    epoch: i64,
    max_attempts: i64,
    traceparent: Option<String>,
}

impl TryFrom<TaskRow> for TaskRecord {
    type Error = StoreError;

    fn try_from(r: TaskRow) -> Result<Self> {
        Ok(TaskRecord {
            id: r.id,
            parent_id: r.parent_id,
            action: r.action,
            design_ref: r.design_ref,
            node_filter: r.node_filter.map(|j| j.0),
            node_name: r.node_name,
            params: r.params.0,
            status: parse_col("status", &r.status)?,
            result_status: parse_col("result_status", &r.result_status)?,
            result_message: r.result_message,
            result_reason: r.result_reason,
            successes: r.successes.0,
            failures: r.failures.0,
            error_count: r.error_count,
            retry: r.retry,
            max_attempts: r.max_attempts,
            created: r.created,
            created_by: r.created_by,
            updated: r.updated,
            terminated: r.terminated,
            terminated_by: r.terminated_by,
            terminate: r.terminate,
            owner: r.owner,
            attempt: r.attempt,
            deadline: r.deadline,
            epoch: r.epoch,
            traceparent: r.traceparent,
        })
    }
}

fn records(rows: Vec<TaskRow>) -> Result<Vec<TaskRecord>> {
    rows.into_iter().map(TaskRecord::try_from).collect()
}

/// A task to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// Task id (time-ordered, `Uuid::now_v7()`: new rows land at the end of the primary key index).
    pub id: Uuid,
    /// Parent task, for subtasks.
    pub parent_id: Option<Uuid>,
    /// Action name.
    pub action: String,
    /// Site design reference.
    pub design_ref: Option<String>,
    /// Node filter (`None` or JSON `null`: every node).
    pub node_filter: Option<Value>,
    /// The node a per-node subtask acts on.
    pub node_name: Option<String>,
    /// Action parameters (`{}` when none).
    pub params: Value,
    /// Initial status (normally [`TaskStatus::Queued`]).
    pub status: TaskStatus,
    /// Who creates the task.
    pub created_by: Option<String>,
    /// When the task must be finished by.
    pub deadline: Option<DateTime<Utc>>,
    /// Owner, for a task created already `running` (an orchestrator step).
    pub owner: Option<String>,
    /// Fencing epoch of the owner.
    pub epoch: i64,
    /// Attempts allowed for the task's driver action (0: the engine's
    /// default policy).
    pub max_attempts: i64,
    /// The W3C `traceparent` its spans continue (see
    /// [`TaskRecord::traceparent`]).
    pub traceparent: Option<String>,
}

impl NewTask {
    /// A queued top-level task for `action` with a fresh id and no
    /// parameters.
    pub fn new(action: impl Into<String>) -> NewTask {
        NewTask {
            id: Uuid::now_v7(),
            parent_id: None,
            action: action.into(),
            design_ref: None,
            node_filter: None,
            node_name: None,
            params: Value::Object(Default::default()),
            status: TaskStatus::Queued,
            created_by: None,
            deadline: None,
            owner: None,
            epoch: 0,
            max_attempts: 0,
            traceparent: None,
        }
    }

    /// A queued subtask of `parent` acting on `node`.
    pub fn subtask(parent: Uuid, action: impl Into<String>, node: impl Into<String>) -> NewTask {
        NewTask {
            parent_id: Some(parent),
            node_name: Some(node.into()),
            ..NewTask::new(action)
        }
    }

    fn node_filter_json(&self) -> Option<Json<&Value>> {
        self.node_filter.as_ref().filter(|v| !v.is_null()).map(Json)
    }

    fn params_json(&self) -> Json<Value> {
        if self.params.is_null() {
            Json(Value::Object(Default::default()))
        } else {
            Json(self.params.clone())
        }
    }
}

/// Which tasks [`Store::list_tasks`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFilter {
    /// `None`: any task; `Some(None)`: top-level tasks only;
    /// `Some(Some(id))`: subtasks of `id`.
    pub parent: Option<Option<Uuid>>,
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// At most this many (`<= 0`: no limit).
    pub limit: i64,
    /// Skip this many first.
    pub offset: i64,
}

impl Default for TaskFilter {
    /// Any task, first 100.
    fn default() -> Self {
        TaskFilter {
            parent: None,
            status: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// Which queued tasks a claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimScope {
    /// Any queued task.
    Any,
    /// Only top-level tasks (no parent).
    TopLevel,
    /// Only subtasks (any parent).
    Subtasks,
    /// Only subtasks of this task.
    ChildrenOf(Uuid),
}

/// A request to claim queued tasks ([`Store::claim_tasks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimSpec<'a> {
    /// Which tasks.
    pub scope: ClaimScope,
    /// The claiming instance's id (stored as the tasks' `owner`).
    pub owner: &'a str,
    /// The claimer's fencing epoch (stored as the tasks' `epoch`).
    pub epoch: i64,
    /// At most this many tasks.
    pub limit: i64,
}

/// The outcome of a claimed task ([`Store::finish_tasks`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutcome {
    /// Task id.
    pub id: Uuid,
    /// The owner that claimed it (must still match).
    pub owner: String,
    /// The epoch of the claim (must still match).
    pub epoch: i64,
    /// Final status: [`TaskStatus::Complete`] or [`TaskStatus::Terminated`].
    pub status: TaskStatus,
    /// Result status.
    pub result_status: ResultStatus,
    /// Result message.
    pub result_message: Option<String>,
    /// Result reason.
    pub result_reason: Option<String>,
    /// Nodes the task succeeded on.
    pub successes: Vec<String>,
    /// Nodes the task failed on.
    pub failures: Vec<String>,
    /// Number of error messages.
    pub error_count: i64,
    /// Drydock's retry number: how many times the action was retried.
    pub retry: i64,
    /// Who terminated the task (kept if already set).
    pub terminated_by: Option<String>,
}

impl TaskOutcome {
    /// A complete outcome with `result_status` and nothing else.
    pub fn complete(id: Uuid, owner: &str, epoch: i64, result_status: ResultStatus) -> TaskOutcome {
        TaskOutcome {
            id,
            owner: owner.to_string(),
            epoch,
            status: TaskStatus::Complete,
            result_status,
            result_message: None,
            result_reason: None,
            successes: Vec::new(),
            failures: Vec::new(),
            error_count: 0,
            retry: 0,
            terminated_by: None,
        }
    }
}

/// A plain change to a task ([`Store::update_task`]); `None` fields are
/// left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskPatch {
    /// New status (setting [`TaskStatus::Terminated`] also stamps
    /// `terminated` if unset).
    pub status: Option<TaskStatus>,
    /// New result status.
    pub result_status: Option<ResultStatus>,
    /// New result message.
    pub result_message: Option<String>,
    /// New result reason.
    pub result_reason: Option<String>,
    /// New success list.
    pub successes: Option<Vec<String>>,
    /// New failure list.
    pub failures: Option<Vec<String>>,
    /// New error count.
    pub error_count: Option<i64>,
    /// New retry counter.
    pub retry: Option<i64>,
    /// New owner (`Some(None)` clears it).
    pub owner: Option<Option<String>>,
    /// New deadline (`Some(None)` clears it).
    pub deadline: Option<Option<DateTime<Utc>>>,
}

/// A multi-row `INSERT` of `$chunk` (a slice of [`NewTask`]) for database
/// type `$db`, all created at `$now`.
macro_rules! insert_values {
    ($db:ty, $chunk:expr, $now:expr) => {{
        let now = $now;
        let mut qb = QueryBuilder::<$db>::new(
            "INSERT INTO tasks (id, parent_id, action, design_ref, node_filter, \
             node_name, params, status, created, created_by, updated, deadline, \
             owner, epoch, max_attempts, traceparent) ",
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
                .push_bind(t.max_attempts)
                .push_bind(t.traceparent.clone());
        });
        qb
    }};
}

impl Store {
    /// Creates one task and returns it as stored.
    ///
    /// Fails with [`StoreError::Conflict`] if the id is taken.
    pub async fn insert_task(&self, task: &NewTask) -> Result<TaskRecord> {
        let now = now();
        let row: TaskRow = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "INSERT INTO tasks (id, parent_id, action, design_ref, node_filter, node_name, \
                 params, status, created, created_by, updated, deadline, owner, epoch, max_attempts, \
                 traceparent) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $11, $12, $13, $14, $15) \
                 RETURNING ",
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
            .bind(task.max_attempts)
            .bind(&task.traceparent)
            .fetch_one(pool)
            .await
            .db()?
        });
        row.try_into()
    }

    /// Creates many tasks in one transaction with multi-row `INSERT`s
    /// (500 rows per statement). Returns how many were inserted. All share
    /// the same `created` time.
    pub async fn insert_tasks(&self, tasks: &[NewTask]) -> Result<u64> {
        self.insert_tasks_fenced(tasks, None).await
    }

    /// Like [`Store::insert_tasks`], but when `fence` is `(holder, epoch)`
    /// nothing is inserted unless that instance holds the leader lease at
    /// that epoch when the transaction runs (Postgres; the lease row is
    /// share-locked so a takeover waits for the insert, or the insert sees
    /// the takeover). Fails with [`StoreError::Fenced`] otherwise.
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
        if let (Some((holder, epoch)), super::Inner::Postgres(pool)) = (fence, &self.inner) {
            let mut tx = pool.begin().await.db()?;
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
                return Err(StoreError::Fenced(format!(
                    "{holder} does not hold the leader lease at epoch {epoch}"
                )));
            }
            for chunk in tasks.chunks(CHUNK) {
                let mut qb = insert_values!(sqlx::Postgres, chunk, now);
                inserted += qb.build().execute(&mut *tx).await.db()?.rows_affected();
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
                .push(" WHERE status = 'queued' AND id IN (SELECT id FROM picked)");
            qb.push(concat!(" RETURNING ", task_cols!()));
            qb.build_query_as().fetch_all(pool).await.db()?
        });
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

    /// At start-up: tasks left `running` by `owner` go back to `queued`
    /// (owner cleared) to be claimed again; those whose cancellation was
    /// requested are terminated instead. Tasks whose action is in `waits`
    /// (waits for reports, not driver calls) stay as they are. Orchestrator steps (subtasks that
    /// have subtasks of their own) stay `running` under `owner`: they are
    /// containers, settled when their subtasks finish. Returns how many
    /// changed.
    pub async fn requeue_owned(&self, owner: &str, waits: &[&str]) -> Result<u64> {
        let now = now();
        Ok(with_pool!(self, |pool, DB| {
            let mut qb = sqlx::QueryBuilder::<DB>::new(
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
                .push_bind(now)
                .push(" WHERE status = 'running' AND owner = ")
                .push_bind(owner)
                .push(
                    " AND (parent_id IS NULL OR NOT EXISTS \
                     (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id))",
                );
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
    /// updated more than `days` days ago, with their subtasks and messages
    /// (by cascade). Returns how many top-level tasks were deleted.
    pub async fn delete_tasks_older_than(&self, days: u32) -> Result<u64> {
        let cutoff = now() - chrono::Duration::days(i64::from(days));
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM tasks WHERE parent_id IS NULL \
                 AND status IN ('complete', 'terminated') AND updated < $1",
            )
            .bind(cutoff)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        }))
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
