//! The error body, `/versions`, and Drydock's `Status` bodies of `GET
//! /health/extended` and `POST /validatedesign`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::TaskMessage;

/// Every error answer: `{"type": "error", "message": ..., "retry": ...}`
/// (`retry` is true for 429 and 503). Internal errors say only "internal
/// error, see the server log for request <id>".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Always `error`.
    #[serde(rename = "type", default)]
    #[schema(required = true, example = "error")]
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// Whether trying again later may help.
    #[serde(default)]
    #[schema(required = true)]
    pub retry: bool,
}

impl ErrorBody {
    /// An error body.
    pub fn new(message: impl Into<String>, retry: bool) -> Self {
        Self {
            kind: "error".into(),
            message: message.into(),
            retry,
        }
    }
}

/// `GET /versions`: the API versions served.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Versions {
    /// The one version, `v1.0`.
    #[serde(rename = "v1.0")]
    pub v1_0: ApiVersion,
}

/// One API version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiVersion {
    /// Its path prefix (`/api/v1.0`).
    pub path: String,
    /// `stable`.
    pub status: String,
}

/// `GET /health/extended`: Drydock's health `Status` (`Success` or
/// `Failure`, `reason: HealthCheck`, one `SimpleMessage` per problem), and
/// beside it this instance's view of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthStatus {
    /// Always `Status`.
    pub kind: String,
    /// Always `v1.0`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always `{}`.
    pub metadata: Map<String, Value>,
    /// `Success` or `Failure`.
    pub status: String,
    /// Empty, or `Drydock failed to respond`.
    pub message: String,
    /// `HealthCheck`.
    pub reason: String,
    /// The problems.
    pub details: HealthDetails,
    /// The HTTP status (200 or 503).
    pub code: u16,
    /// This instance.
    pub instance: HealthInstance,
}

/// The problems of a health check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthDetails {
    /// How many.
    #[serde(rename = "errorCount")]
    pub error_count: u64,
    /// One per problem.
    #[serde(rename = "messageList")]
    pub message_list: Vec<HealthMessage>,
}

/// A health problem (Drydock's `SimpleMessage`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthMessage {
    /// What is wrong.
    pub message: String,
    /// Always true.
    pub error: bool,
    /// `SimpleMessage`.
    pub kind: String,
}

/// An instance's view: leadership, database, drivers, work in flight.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthInstance {
    /// This instance's id.
    pub instance_id: String,
    /// The leader as last read (possibly lapsed).
    pub leader: Option<String>,
    /// Whether this instance leads.
    pub is_leader: bool,
    /// The fencing epoch.
    pub epoch: i64,
    /// When the lease lapses unless renewed.
    pub lease_expires: Option<DateTime<Utc>>,
    /// The database.
    pub database: HealthDatabase,
    /// The drivers loaded here.
    pub drivers: Vec<HealthDriver>,
    /// Driver calls running here.
    pub inflight: u64,
}

/// The database, as a health check saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthDatabase {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Whether it answered.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A driver loaded here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthDriver {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Interfaces it implements (`oob`, `node`, `network`).
    pub interfaces: Vec<String>,
    /// Oob types it claims.
    pub oob_types: Vec<String>,
}

/// The body of `POST /validatedesign` (Drydock's, what Shipyard sends:
/// `{"rel": "design", "href": ..., "type": "application/x-yaml"}`); only
/// `href` is read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidateDesign {
    /// The design reference.
    pub href: String,
    /// `design`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<String>,
    /// `application/x-yaml`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// `POST /validatedesign`'s answer: Drydock's `Validation` status, 200 and
/// `Success` without errors, 400 and `Failure` otherwise (`code` repeats the
/// HTTP status).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidationStatus {
    /// Always `Status`.
    pub kind: String,
    /// Always `v1.0`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always `{}`.
    pub metadata: Map<String, Value>,
    /// `Success` or `Failure`.
    pub status: String,
    /// Summary.
    pub message: String,
    /// `See detail messages.` on failure.
    pub reason: Option<String>,
    /// The findings.
    pub details: ValidationDetails,
    /// The HTTP status.
    pub code: u16,
}

/// A validation's findings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidationDetails {
    /// How many errors.
    #[serde(rename = "errorCount")]
    pub error_count: u64,
    /// Every finding, in the order validation made them.
    #[serde(rename = "messageList")]
    pub message_list: Vec<ValidationEntry>,
}

/// A finding, or (for a design that could not be loaded) a plain message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ValidationEntry {
    /// A rule's finding.
    Finding(ValidationMessage),
    /// Why the design could not be loaded.
    Message(TaskMessage),
}

/// One finding (Drydock's `ValidationMessage`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidationMessage {
    /// `ValidationMessage`.
    pub kind: String,
    /// The rule's code, e.g. `DD1003`.
    pub name: String,
    /// What is wrong (or `Validation successful.`).
    pub message: String,
    /// Whether it is an error.
    pub error: bool,
    /// `Error`, `Warning` or `Info`.
    pub level: String,
    /// How to fix it.
    pub diagnostic: String,
    /// When (RFC 3339).
    pub ts: String,
    /// The documents involved.
    pub documents: Vec<DocumentRef>,
}

/// A document named by a finding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentRef {
    /// `drydock/<Kind>/v1`.
    pub schema: String,
    /// Document name.
    pub name: String,
}

/// A 400 of `POST /validatedesign`: the `Status` of a design with errors
/// (or that could not be loaded), or the error body of a malformed request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ValidationFailure {
    /// The design's findings.
    Status(ValidationStatus),
    /// The request was malformed.
    Error(ErrorBody),
}
