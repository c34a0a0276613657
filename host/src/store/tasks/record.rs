//! The task records and the requests about them: statuses, rows, new
//! tasks, filters, claims, outcomes and patches.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::store::{Result, StoreError, parse_col};

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

pub(super) fn records(rows: Vec<TaskRow>) -> Result<Vec<TaskRecord>> {
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
    /// Times claimed so far: 1 for a subtask created already running under
    /// the instance that runs it, else 0.
    pub attempt: i32,
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
            attempt: 0,
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

    /// The record of this task as stored at `created` (what a read would
    /// return right after the insert).
    pub fn record(&self, created: DateTime<Utc>) -> TaskRecord {
        TaskRecord {
            id: self.id,
            parent_id: self.parent_id,
            action: self.action.clone(),
            design_ref: self.design_ref.clone(),
            node_filter: self.node_filter.clone().filter(|v| !v.is_null()),
            node_name: self.node_name.clone(),
            params: self.params.clone(),
            status: self.status,
            result_status: ResultStatus::Incomplete,
            result_message: None,
            result_reason: None,
            successes: Vec::new(),
            failures: Vec::new(),
            error_count: 0,
            retry: 0,
            max_attempts: self.max_attempts,
            created,
            created_by: self.created_by.clone(),
            updated: created,
            terminated: None,
            terminated_by: None,
            terminate: false,
            owner: self.owner.clone(),
            attempt: self.attempt,
            deadline: self.deadline.map(crate::store::trunc),
            epoch: self.epoch,
            traceparent: self.traceparent.clone(),
        }
    }

    pub(super) fn node_filter_json(&self) -> Option<Json<&Value>> {
        self.node_filter.as_ref().filter(|v| !v.is_null()).map(Json)
    }

    pub(super) fn params_json(&self) -> Json<Value> {
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
