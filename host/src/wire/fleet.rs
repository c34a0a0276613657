//! Fleet truth on the wire: a node's timeline (`GET /nodes/{name}/events`),
//! its synced state (`GET /nodes/{name}/sync`), maintenance (`POST` and
//! `DELETE /nodes/{name}/maintenance`), the fleet's sync figures (`GET
//! /fleet`) and each BMC's health (`GET /fleet/bmcs`).
//!
//! Every text here that came from a BMC or a driver (a timeline message, a
//! sync's last error) was redacted before it was stored: no credential,
//! URL user information or authorization header value reaches the wire.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One entry of a node's timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeEvent {
    /// Position in the timeline (increasing; the paging cursor).
    pub seq: i64,
    /// The node.
    pub node_name: String,
    /// When it happened (RFC 3339).
    pub ts: String,
    /// `driver_call`, `state_change`, `drift`, `sync` or `maintenance`.
    #[schema(example = "driver_call")]
    pub kind: String,
    /// The driver action, e.g. `power_on_node`.
    pub action: Option<String>,
    /// `success`, `failure`, `observed`, `detected`, `resolved`, `entered`,
    /// `left`, ...
    pub outcome: Option<String>,
    /// How long a driver call or sync took, in ms.
    pub duration_ms: Option<i64>,
    /// What happened, in words (redacted).
    pub message: Option<String>,
    /// The task the call ran for (a UUID), if any.
    pub task_id: Option<String>,
}

/// A page of a node's timeline, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// The node.
    pub node: String,
    /// The entries, newest first.
    pub events: Vec<NodeEvent>,
    /// Pass as `before` for the next (older) page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// What a node's BMC last answered, drift, failed syncs and maintenance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeSync {
    /// The node.
    pub node_name: String,
    /// The power state its BMC last reported (`on`, `off`, `unknown`).
    pub observed_power: Option<String>,
    /// Its BMC's health as of the last sync (`ok`, `unreachable`, ...).
    pub observed_health: Option<String>,
    /// When its BMC last answered a sync (RFC 3339).
    pub observed_at: Option<String>,
    /// Why the last sync failed (redacted), if it did.
    pub last_error: Option<String>,
    /// Syncs failed in a row.
    pub failures: i64,
    /// Whether the observed power state differs from what Drydock set.
    pub drift: bool,
    /// `operator` or `sync` while in maintenance.
    pub maintenance: Option<String>,
    /// Why it is in maintenance.
    pub maintenance_reason: Option<String>,
    /// Since when (RFC 3339).
    pub maintenance_since: Option<String>,
    /// When its next sync is due (RFC 3339; none: the leader's next round).
    pub due: Option<String>,
}

/// `GET /nodes/{name}/sync`: the node's synced state beside what Drydock
/// set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeSyncState {
    /// The node.
    pub node: String,
    /// The power state Drydock last set.
    pub expected_power: Option<String>,
    /// The sync state; none before the node's first sync round.
    pub sync: Option<NodeSync>,
}

/// The body of `POST /nodes/{name}/maintenance`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// Why: 1 to 1024 bytes of text without control characters (shown in
    /// skipped tasks' messages and the timeline).
    #[schema(min_length = 1, max_length = 1024)]
    pub reason: String,
}

/// A node's maintenance after `POST` or `DELETE
/// /nodes/{name}/maintenance`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceState {
    /// The node.
    pub node: String,
    /// `operator` while in maintenance; `null` once out of it.
    pub maintenance: Option<String>,
    /// Why (while in maintenance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// This instance's sync counters (since it started).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FleetInstance {
    /// The instance's id.
    pub id: String,
    /// Sync rounds it scheduled (while leader).
    pub rounds: u64,
    /// Syncs it made (BMC reads).
    pub syncs: u64,
    /// Of which failed.
    pub sync_failures: u64,
    /// Drift found (a node whose BMC disagrees with what Drydock set).
    pub drift_detected: u64,
    /// Nodes its syncs put in maintenance.
    pub maintenance_entered: u64,
    /// Nodes that left the sync's maintenance by themselves.
    pub maintenance_left: u64,
    /// The longest wait from a node's due time to its read, in ms.
    pub max_lag_ms: u64,
    /// Timeline entries dropped (the timeline's queue was full).
    pub timeline_dropped: u64,
}

/// `GET /fleet`: nodes synced, drifted and in maintenance (the whole
/// cluster), and this instance's sync counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FleetView {
    /// Nodes with a sync state.
    pub nodes: i64,
    /// Of which drifted.
    pub drifted: i64,
    /// Of which in maintenance.
    pub in_maintenance: i64,
    /// The answering instance's counters.
    pub instance: FleetInstance,
}

/// The newest failure in a BMC's nodes' timelines: a failed out-of-band
/// driver call or a failed sync.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BmcError {
    /// When (RFC 3339).
    pub ts: String,
    /// The node it was for.
    pub node: String,
    /// `driver_call` or `sync`.
    pub kind: String,
    /// The action, e.g. `power_on_node`.
    pub action: Option<String>,
    /// What failed (redacted).
    pub message: Option<String>,
}

/// One BMC (a node's out-of-band address; the node's name when it has
/// none) with the whole cluster's view of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BmcHealth {
    /// The BMC's address.
    pub bmc: String,
    /// The nodes it manages, by name.
    pub nodes: Vec<String>,
    /// Its health as of the last sync of any of its nodes (`ok`,
    /// `unreachable`, ...).
    pub observed_health: Option<String>,
    /// The most syncs failed in a row among its nodes.
    pub sync_failures: i64,
    /// The newest failure, if its nodes' timelines hold one.
    pub last_error: Option<BmcError>,
}
