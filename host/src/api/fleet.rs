//! Fleet truth routes (see [`crate::fleet`]): a node's timeline, its synced
//! state and maintenance, and the fleet's sync figures.
//!
//! | route | policy rule (default roles) |
//! | --- | --- |
//! | `GET /nodes/{name}/events?limit=N&before=SEQ` | `read_data` (viewer) |
//! | `GET /nodes/{name}/sync` | `read_data` (viewer) |
//! | `POST /nodes/{name}/maintenance` `{"reason": "..."}` | `manage_nodes` (operator) |
//! | `DELETE /nodes/{name}/maintenance` | `manage_nodes` (operator) |
//! | `GET /fleet` | `read_data` (viewer) |

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Authorized, Operate, Read};
use super::error::{ApiError, JsonBody};
use super::nodes::validate_name;
use super::params::QueryMap;
use crate::fleet::FleetStats;
use crate::store::{NewNodeEvent, NodeEventRecord};

/// Timeline entries per page by default.
pub const DEFAULT_PAGE: i64 = 100;
/// Timeline entries per page at most.
pub const MAX_PAGE: i64 = 500;
/// The longest maintenance reason, in bytes.
pub const MAX_REASON: usize = 1024;

/// The fleet routes, merged into [`super::router`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1.0/nodes/{name}/events", get(events))
        .route("/api/v1.0/nodes/{name}/sync", get(sync_state))
        .route(
            "/api/v1.0/nodes/{name}/maintenance",
            axum::routing::post(set_maintenance).delete(clear_maintenance),
        )
        .route("/api/v1.0/fleet", get(fleet))
}

/// A page of a node's timeline, newest first.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventPage {
    /// The node.
    pub node: String,
    /// The entries.
    pub events: Vec<NodeEventRecord>,
    /// Pass as `before` for the next (older) page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// `POST /nodes/{name}/maintenance`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// Why (shown in skipped tasks' messages and the timeline).
    pub reason: String,
}

fn checked(name: &str) -> Result<(), ApiError> {
    validate_name(name).map_err(ApiError::BadRequest)
}

async fn registered(state: &AppState, name: &str) -> Result<(), ApiError> {
    checked(name)?;
    match state.engine.store().get_node(name).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!(
            "node `{name}` is not registered"
        ))),
    }
}

/// `GET /nodes/{name}/events`: the node's timeline, newest first, `limit`
/// (1 to 500, default 100) entries older than `before`.
pub async fn events(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: QueryMap,
) -> Result<Json<EventPage>, ApiError> {
    checked(&name)?;
    let limit = query
        .parsed::<i64>("limit", "a number from 1 to 500")?
        .unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "query parameter `limit` must be from 1 to {MAX_PAGE}, not {limit}"
        )));
    }
    let before = query.parsed::<i64>("before", "an event sequence number")?;
    let events = state
        .engine
        .store()
        .node_events(&name, before, limit)
        .await?;
    if events.is_empty() && before.is_none() {
        // A node with no history yet is fine; an unknown one is a 404.
        registered(&state, &name).await?;
    }
    let next_before = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(EventPage {
        node: name,
        events,
        next_before,
    }))
}

/// `GET /nodes/{name}/sync`: what the node's BMC last answered beside what
/// Drydock set, drift, failures, maintenance.
pub async fn sync_state(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    registered(&state, &name).await?;
    let store = state.engine.store();
    let expected = store.get_node(&name).await?.and_then(|n| n.power_state);
    let sync = store.node_sync(&name).await?;
    Ok(Json(json!({
        "node": name,
        "expected_power": expected,
        "sync": sync,
    })))
}

/// `POST /nodes/{name}/maintenance`: puts the node in operator maintenance
/// (tasks skip it, syncs stop) until cleared.
pub async fn set_maintenance(
    caller: Authorized<Operate>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<MaintenanceRequest>,
) -> Result<Json<Value>, ApiError> {
    checked(&name)?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "`reason` must be 1 to {MAX_REASON} bytes of text without control characters"
        )));
    }
    let store = state.engine.store();
    if !store.set_maintenance(&name, reason).await? {
        return Err(ApiError::NotFound(format!(
            "node `{name}` is not registered"
        )));
    }
    let by = caller.0.actor();
    record(&state, &name, "entered", format!("set by {by}: {reason}")).await;
    Ok(Json(
        json!({"node": name, "maintenance": "operator", "reason": reason}),
    ))
}

/// `DELETE /nodes/{name}/maintenance`: takes the node out of maintenance
/// (whoever set it); it is synced in the next round. 404 when it was not
/// in maintenance.
pub async fn clear_maintenance(
    caller: Authorized<Operate>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    registered(&state, &name).await?;
    if !state.engine.store().clear_maintenance(&name).await? {
        return Err(ApiError::NotFound(format!(
            "node `{name}` is not in maintenance"
        )));
    }
    let by = caller.0.actor();
    record(&state, &name, "left", format!("cleared by {by}")).await;
    Ok(Json(json!({"node": name, "maintenance": null})))
}

async fn record(state: &AppState, node: &str, outcome: &str, message: String) {
    let timeline = state.engine.timeline();
    timeline.record(NewNodeEvent {
        node_name: node.to_owned(),
        ts: chrono::Utc::now(),
        kind: "maintenance".into(),
        action: None,
        outcome: Some(outcome.into()),
        duration_ms: None,
        message: Some(message),
        task_id: None,
    });
    // The answer implies the event is in the timeline.
    timeline.flush().await;
}

/// `GET /fleet`: nodes synced, drifted and in maintenance (the whole
/// cluster), and this instance's sync counters.
pub async fn fleet(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let (nodes, drifted, maintenance) = state.engine.store().fleet_counts().await?;
    let s = state.engine.fleet_stats();
    Ok(Json(json!({
        "nodes": nodes,
        "drifted": drifted,
        "in_maintenance": maintenance,
        "instance": {
            "id": state.engine.instance_id(),
            "rounds": FleetStats::get(&s.rounds),
            "syncs": FleetStats::get(&s.syncs),
            "sync_failures": FleetStats::get(&s.failures),
            "drift_detected": FleetStats::get(&s.drift_detected),
            "maintenance_entered": FleetStats::get(&s.maintenance_entered),
            "maintenance_left": FleetStats::get(&s.maintenance_left),
            "max_lag_ms": FleetStats::get(&s.max_lag_ms),
            "timeline_dropped": state.engine.timeline().dropped(),
        },
    })))
}
