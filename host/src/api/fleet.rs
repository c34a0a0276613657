//! Fleet truth routes (see [`crate::fleet`]): a node's timeline, its synced
//! state and maintenance, and the fleet's sync figures. Bodies are the wire
//! model's ([`crate::wire::fleet`]).
//!
//! | route | policy rule (default roles) |
//! | --- | --- |
//! | `GET /nodes/{name}/events?limit=N&before=SEQ` | `read_data` (viewer) |
//! | `GET /nodes/{name}/sync` | `read_data` (viewer) |
//! | `POST /nodes/{name}/maintenance` `{"reason": "..."}` | `manage_nodes` (operator) |
//! | `DELETE /nodes/{name}/maintenance` | `manage_nodes` (operator) |
//! | `GET /fleet` | `read_data` (viewer) |
//! | `GET /fleet/bmcs` | `read_data` (viewer) |

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, State};

use super::auth::{Authorized, Operate, Read};
use super::error::{ApiError, JsonBody};
use super::nodes::validate_name;
use super::params::QueryMap;
use super::{AppState, view};
use crate::drivers::{Action, Interface};
use crate::fleet::FleetStats;
use crate::store::NewNodeEvent;
use crate::wire::{
    BmcError, BmcHealth, EventPage, FleetInstance, FleetView, MaintenanceRequest, MaintenanceState,
    NodeSyncState,
};

/// Timeline entries per page by default.
pub const DEFAULT_PAGE: i64 = 100;
/// Timeline entries per page at most.
pub const MAX_PAGE: i64 = 500;
/// The longest maintenance reason, in bytes.
pub const MAX_REASON: usize = 1024;

fn checked(name: &str) -> Result<(), ApiError> {
    validate_name(name).map_err(ApiError::BadRequest)
}

async fn registered(state: &AppState, name: &str) -> Result<(), ApiError> {
    checked(name)?;
    match state.store.get_node(name).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!(
            "node `{name}` is not registered"
        ))),
    }
}

/// `GET /nodes/{name}/events`: the node's timeline, newest first, `limit`
/// (1 to 500, default 100) entries older than `before`.
#[utoipa::path(get, path = "/api/v1.0/nodes/{name}/events", tag = "fleet",
    params(
        ("name" = String, Path, description = "Node name"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500,
            description = "At most this many entries (default 100)"),
        ("before" = Option<i64>, Query,
            description = "Only entries older than this sequence number (the previous page's `next_before`)"),
    ),
    responses((status = 200, description = "A page of the node's timeline, newest first",
        body = EventPage)))]
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
    let events = state.reads.node_events(&name, before, limit).await?;
    if events.is_empty() && before.is_none() {
        // A node with no history yet is fine; an unknown one is a 404.
        registered(&state, &name).await?;
    }
    let next_before = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(EventPage {
        node: name,
        events: events.iter().map(view::node_event_view).collect(),
        next_before,
    }))
}

/// `GET /nodes/{name}/sync`: what the node's BMC last answered beside what
/// Drydock set, drift, failures, maintenance.
#[utoipa::path(get, path = "/api/v1.0/nodes/{name}/sync", tag = "fleet",
    params(("name" = String, Path, description = "Node name")),
    responses((status = 200, description = "The node's synced state", body = NodeSyncState)))]
pub async fn sync_state(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<NodeSyncState>, ApiError> {
    checked(&name)?;
    let store = &state.reads;
    let node = store
        .get_node(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("node `{name}` is not registered")))?;
    let sync = store.node_sync(&name).await?;
    Ok(Json(NodeSyncState {
        node: name,
        expected_power: node.power_state,
        sync: sync.as_ref().map(view::node_sync_view),
    }))
}

/// `POST /nodes/{name}/maintenance`: puts the node in operator maintenance
/// (tasks skip it, syncs stop) until cleared.
#[utoipa::path(post, path = "/api/v1.0/nodes/{name}/maintenance", tag = "fleet",
    params(("name" = String, Path, description = "Node name")),
    request_body = MaintenanceRequest,
    responses((status = 200, description = "The node is in operator maintenance",
        body = MaintenanceState)))]
pub async fn set_maintenance(
    caller: Authorized<Operate>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<MaintenanceRequest>,
) -> Result<Json<MaintenanceState>, ApiError> {
    checked(&name)?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "`reason` must be 1 to {MAX_REASON} bytes of text without control characters"
        )));
    }
    if !state.store.set_maintenance(&name, reason).await? {
        return Err(ApiError::NotFound(format!(
            "node `{name}` is not registered"
        )));
    }
    let by = caller.0.actor();
    record(&state, &name, "entered", format!("set by {by}: {reason}")).await;
    Ok(Json(MaintenanceState {
        node: name,
        maintenance: Some("operator".into()),
        reason: Some(reason.to_owned()),
    }))
}

/// `DELETE /nodes/{name}/maintenance`: takes the node out of maintenance
/// (whoever set it); it is synced in the next round. 404 when it was not
/// in maintenance.
#[utoipa::path(delete, path = "/api/v1.0/nodes/{name}/maintenance", tag = "fleet",
    params(("name" = String, Path, description = "Node name")),
    responses((status = 200, description = "The node is out of maintenance",
        body = MaintenanceState)))]
pub async fn clear_maintenance(
    caller: Authorized<Operate>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<MaintenanceState>, ApiError> {
    registered(&state, &name).await?;
    if !state.store.clear_maintenance(&name).await? {
        return Err(ApiError::NotFound(format!(
            "node `{name}` is not in maintenance"
        )));
    }
    let by = caller.0.actor();
    record(&state, &name, "left", format!("cleared by {by}")).await;
    Ok(Json(MaintenanceState {
        node: name,
        maintenance: None,
        reason: None,
    }))
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
#[utoipa::path(get, path = "/api/v1.0/fleet", tag = "fleet",
    responses((status = 200, description = "The fleet's sync figures", body = FleetView)))]
pub async fn fleet(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
) -> Result<Json<FleetView>, ApiError> {
    let (nodes, drifted, in_maintenance) = state.reads.fleet_counts().await?;
    let s = state.engine.fleet_stats();
    Ok(Json(FleetView {
        nodes,
        drifted,
        in_maintenance,
        instance: FleetInstance {
            id: state.engine.instance_id().to_owned(),
            rounds: FleetStats::get(&s.rounds),
            syncs: FleetStats::get(&s.syncs),
            sync_failures: FleetStats::get(&s.failures),
            drift_detected: FleetStats::get(&s.drift_detected),
            maintenance_entered: FleetStats::get(&s.maintenance_entered),
            maintenance_left: FleetStats::get(&s.maintenance_left),
            max_lag_ms: FleetStats::get(&s.max_lag_ms),
            timeline_dropped: state.engine.timeline().dropped(),
        },
    }))
}

/// `GET /fleet/bmcs`: every BMC (a node's oob address; its name when it
/// has none) with its nodes, its health as of their last syncs, and the
/// newest failure among their out-of-band driver calls and syncs (from the
/// timelines, redacted when recorded). Call counts and latency per BMC are
/// each instance's own, in its metrics (`drydock_bmc_*`).
#[utoipa::path(get, path = "/api/v1.0/fleet/bmcs", tag = "fleet",
    responses((status = 200, description = "Every BMC, by address", body = Vec<BmcHealth>)))]
pub async fn bmcs(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
) -> Result<Json<Vec<BmcHealth>>, ApiError> {
    let store = &state.reads;
    let nodes = store.list_nodes().await?;
    let syncs: HashMap<String, _> = store
        .sync_briefs()
        .await?
        .into_iter()
        .map(|b| (b.node_name.clone(), b))
        .collect();
    let oob: Vec<&str> = Action::ALL
        .iter()
        .filter(|a| a.interface() == Interface::Oob)
        .map(|a| a.name())
        .collect();
    let mut failures = store.newest_failures(&oob).await?;
    failures.sort_by_key(|f| f.seq);
    let bmc_of: HashMap<&str, &str> = nodes
        .iter()
        .map(|n| {
            let address = n.spec["oob"]["address"].as_str().filter(|a| !a.is_empty());
            (n.name.as_str(), address.unwrap_or(&n.name))
        })
        .collect();
    let mut by: BTreeMap<&str, BmcHealth> = BTreeMap::new();
    for n in &nodes {
        let bmc = bmc_of[n.name.as_str()];
        let b = by.entry(bmc).or_insert_with(|| BmcHealth {
            bmc: bmc.to_owned(),
            ..BmcHealth::default()
        });
        b.nodes.push(n.name.clone());
        // The health of the node whose syncs failed most in a row.
        if let Some(s) = syncs.get(&n.name)
            && (b.observed_health.is_none() || s.failures > b.sync_failures)
        {
            b.sync_failures = s.failures;
            b.observed_health.clone_from(&s.observed_health);
        }
    }
    // Oldest first: the newest failure of a BMC's nodes is written last.
    for f in &failures {
        if let Some(b) = bmc_of.get(f.node_name.as_str()).and_then(|m| by.get_mut(m)) {
            b.last_error = Some(BmcError {
                ts: view::timestamp(&f.ts),
                node: f.node_name.clone(),
                kind: f.kind.clone(),
                action: f.action.clone(),
                message: f.message.clone(),
            });
        }
    }
    Ok(Json(by.into_values().collect()))
}
