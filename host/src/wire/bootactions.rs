//! Boot actions on the wire: what a deploying node reports (`POST
//! /bootactions/{action_id}`) and the boot action it gets back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A boot action as the node's report leaves it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BootActionView {
    /// Its id.
    pub action_id: String,
    /// The deploy_nodes task.
    pub task_id: String,
    /// The node.
    pub node_name: String,
    /// The `BootAction` document.
    pub name: String,
    /// Whether the node reports its outcome.
    pub signaling: bool,
    /// `incomplete`, `success` or `failure`.
    pub status: String,
    /// The design the deployment used.
    pub design_ref: String,
    /// When it was handed out.
    pub created: DateTime<Utc>,
    /// When it last changed.
    pub updated: DateTime<Utc>,
}

/// A node's report: detail messages (added to the task that deployed the
/// node) and, once, the final status (`success` or `failure`, any case).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BootActionReport {
    /// `Success` or `Failure` (any case); absent: details only.
    #[serde(default)]
    pub status: Option<String>,
    /// Detail messages.
    #[serde(default)]
    pub details: Vec<ReportDetail>,
}

/// One detail line of a report; other keys are kept as the message's
/// `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReportDetail {
    /// Text.
    pub message: String,
    /// Whether it reports an error.
    pub error: bool,
    /// Further keys.
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub extra: Map<String, Value>,
}
