//! The wire model: one serde type per request and response body of the REST
//! API (Airship Drydock's `/api/v1.0` shapes, so Shipyard and
//! `drydock_client` keep working), used by the API handlers, the OpenAPI
//! document ([`crate::api::openapi`]) and the CLI client alike.
//!
//! This module owns shapes only: it names no store record, no engine and no
//! HTTP framework. The API turns records into these types
//! ([`crate::api::view`]); the CLI reads them back. Types the CLI reads are
//! lenient when reading (missing fields take their defaults, `null` lists
//! read as empty) and exact when written: the OpenAPI document still says
//! every field the server always sends is required.
//!
//! # Layout
//!
//! - [`tasks`]: the task dict, its result (`Status`), messages, build data,
//!   the task-creation body, `layers` answers.
//! - [`nodes`]: the node dict, the registration body, `/nodefilter`.
//! - [`status`]: the error body, `/versions`, the health and validation
//!   `Status` bodies.
//! - [`drivers`]: driver status, installation, activation.
//! - [`bootactions`]: boot action reports.
//! - [`fleet`]: node timelines, synced state, maintenance, the fleet's
//!   figures and BMC health.

pub mod bootactions;
pub mod drivers;
pub mod fleet;
pub mod nodes;
pub mod status;
pub mod tasks;

pub use bootactions::{BootActionReport, BootActionView, ReportDetail};
pub use drivers::{
    ActivateBody, Activation, ActiveVersion, AutoRollback, DriverManifest, DriverStatus,
    DriverVersion, Grant, Installation, LoadedVersion, NotGranted, Requested, RollbackState,
};
pub use fleet::{
    BmcError, BmcHealth, EventPage, FleetInstance, FleetView, MaintenanceRequest, MaintenanceState,
    NodeEvent, NodeSync, NodeSyncState,
};
pub use nodes::{Credentials, NodeFilterRequest, NodeOob, NodeRegistration, NodeView};
pub use status::{
    ApiVersion, ErrorBody, HealthDatabase, HealthDetails, HealthDriver, HealthInstance,
    HealthMessage, HealthStatus, ValidateDesign, ValidationEntry, ValidationMessage,
    ValidationStatus, Versions,
};
pub use tasks::{
    BuildData, CreateTask, Link, PurgeResult, StatusDetails, SubtaskError, TaskDict, TaskLayers,
    TaskMessage, TaskResult, TaskView,
};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A timestamp as the API shows it: RFC 3339 in UTC with microseconds.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `null` as the type's default (a server may send `null` for empty lists).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Any scalar as text (`null` as `None`), for timestamps and contexts.
pub(crate) fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        v => Some(v.to_string()),
    })
}
