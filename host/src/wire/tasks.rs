//! Tasks on the wire: Drydock's task dict (`Task.to_dict()`), its result
//! (`TaskStatus.to_dict()`, a `Status`), status messages, build data, the
//! body of `POST /tasks`, and the answers of `GET /tasks/{id}` with
//! `layers` and `subtaskerrors`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{nullable, opt_text};

/// A task (Drydock's `Task.to_dict()`). `status` is `terminating` while a
/// cancelled task winds down; `retry` is how many times its action was
/// retried.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TaskDict {
    /// Always `Task`.
    #[schema(required = true, example = "Task")]
    pub kind: String,
    /// Always `v1`.
    #[serde(rename = "apiVersion")]
    #[schema(required = true, example = "v1")]
    pub api_version: String,
    /// The task's id (a UUID).
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub task_id: String,
    /// The action, e.g. `deploy_nodes`.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub action: String,
    /// The parent task, for subtasks.
    #[serde(deserialize_with = "opt_text")]
    #[schema(required = true)]
    pub parent_task_id: Option<String>,
    /// The subtasks' ids, oldest first.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub subtask_id_list: Vec<String>,
    /// `requested`, `queued`, `running`, `terminating`, `complete` or
    /// `terminated`.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub status: String,
    /// The Drydock node filter the task was created with.
    #[schema(required = true, value_type = Value)]
    pub node_filter: Option<Value>,
    /// The site design reference.
    #[serde(deserialize_with = "opt_text")]
    #[schema(required = true)]
    pub design_ref: Option<String>,
    /// The result so far.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub result: TaskResult,
    /// Creation time (RFC 3339).
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub created: String,
    /// Who created it.
    #[serde(deserialize_with = "opt_text")]
    #[schema(required = true)]
    pub created_by: Option<String>,
    /// Last change (RFC 3339).
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub updated: String,
    /// When it was terminated (cancelled).
    #[serde(deserialize_with = "opt_text")]
    #[schema(required = true)]
    pub terminated: Option<String>,
    /// Who terminated it.
    #[serde(deserialize_with = "opt_text")]
    #[schema(required = true)]
    pub terminated_by: Option<String>,
    /// Whether a cancel was asked for.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub terminate: bool,
    /// How many times its action was retried.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub retry: i64,
    /// The node a per-node subtask works on.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_text")]
    pub node_name: Option<String>,
    /// With `builddata=true`: the build data the task collected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_data: Option<Vec<BuildData>>,
    /// With `subtaskerrors=true` (and no `layers`): the results of the
    /// descendants that reported errors, by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtask_errors: Option<BTreeMap<String, SubtaskError>>,
}

impl TaskDict {
    /// Whether the task has ended (`complete` or `terminated`).
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "complete" | "terminated")
    }

    /// Whether the task ended with result `success`.
    pub fn succeeded(&self) -> bool {
        self.status == "complete" && self.result.status == "success"
    }
}

/// A task's result (Drydock's `TaskStatus`, a `Status` body). `errorCount`
/// counts the task's own error messages; `links` holds `detail_logs` (the
/// task's build data) only when the service's public URL is known.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TaskResult {
    /// Always `Status`.
    #[schema(required = true, example = "Status")]
    pub kind: String,
    /// Always `v1.0`.
    #[serde(rename = "apiVersion")]
    #[schema(required = true, example = "v1.0")]
    pub api_version: String,
    /// Always `{}`.
    #[schema(required = true)]
    pub metadata: serde_json::Map<String, Value>,
    /// `incomplete`, `success`, `partial_success` or `failure`.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub status: String,
    /// What happened.
    #[serde(deserialize_with = "opt_text")]
    #[schema(required = true)]
    pub message: Option<String>,
    /// Why.
    #[serde(deserialize_with = "opt_text")]
    #[schema(required = true)]
    pub reason: Option<String>,
    /// The nodes (or items) that succeeded.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub successes: Vec<String>,
    /// The nodes (or items) that failed.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub failures: Vec<String>,
    /// Related resources.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub links: Vec<Link>,
    /// The messages.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub details: StatusDetails,
}

/// A result's link (`{"rel": "detail_logs", "href": ...}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// What it links to.
    pub rel: String,
    /// Absolute URL.
    pub href: String,
}

/// A result's `details`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct StatusDetails {
    /// How many error messages the task has.
    #[serde(rename = "errorCount", deserialize_with = "nullable")]
    #[schema(required = true)]
    pub error_count: u64,
    /// Its messages, oldest first (the latest 1000, after a note saying how
    /// many were left out).
    #[serde(rename = "messageList", deserialize_with = "nullable")]
    #[schema(required = true)]
    pub message_list: Vec<TaskMessage>,
}

/// One status message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TaskMessage {
    /// Text.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub message: String,
    /// Whether it reports an error.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub error: bool,
    /// What `context` names (`node`, `task`, `bootaction`, ...).
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub context_type: String,
    /// The node (or other item) concerned.
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub context: String,
    /// When (RFC 3339).
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
    pub ts: String,
    /// Further fields (`{}` when none).
    #[schema(required = true, value_type = Value)]
    pub extra: Value,
}

/// An entry of `subtask_errors`: the descendant's result and its id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubtaskError {
    /// The descendant's result.
    #[serde(flatten)]
    pub result: TaskResult,
    /// The descendant's id.
    pub task_id: String,
}

/// `GET /tasks/{id}?layers=N`: the task and its descendants N layers deep,
/// keyed by id, with `init_task_id` naming the task asked for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskLayers {
    /// The task asked for.
    pub init_task_id: String,
    /// The tasks, by id.
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub tasks: BTreeMap<String, TaskDict>,
    /// With `subtaskerrors=true`: the descendants that reported errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtask_errors: Option<BTreeMap<String, SubtaskError>>,
}

/// What `GET /tasks/{id}` answers: the task dict, or with `layers` the
/// layers map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TaskView {
    /// With `layers`.
    Layers(TaskLayers),
    /// Without `layers`.
    Task(Box<TaskDict>),
}

/// One build data item (Drydock's `BuildData.to_dict()`, plus `id`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuildData {
    /// Row id (increasing).
    pub id: i64,
    /// The node it was collected from.
    pub node_name: String,
    /// The task that collected it.
    pub task_id: Option<String>,
    /// When it was stored (RFC 3339).
    pub collected_date: String,
    /// What produced it (e.g. `interrogate_oob`).
    pub generator: String,
    /// Its format (e.g. `application/json`).
    pub data_format: String,
    /// The data.
    pub data_element: String,
}

/// The body of `POST /tasks` (other keys are ignored, as Drydock ignores
/// them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateTask {
    /// The action (e.g. `power_cycle_node`, `deploy_nodes`).
    pub action: String,
    /// Site design reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub design_ref: Option<String>,
    /// Drydock node filter; absent or `null` = every node.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub node_filter: Option<Value>,
    /// Action parameters (an object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
}

/// The answer of `DELETE /tasks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PurgeResult {
    /// `Tables purged successfully.`
    pub message: String,
    /// The retention used, in days.
    pub days: u32,
    /// How many tasks were deleted.
    pub deleted: u64,
}
