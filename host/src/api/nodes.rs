//! `/nodes`: register, list, show and remove nodes; `/nodes/{name}/builddata`;
//! `/nodefilter`.
//!
//! A node is registered with a [`Node`] JSON plus an optional top-level
//! `"credentials": {"username", "password"}`. The credentials go to the
//! secrets store under `oob.credential` (default `node-<name>-oob`) and the
//! node keeps only that name: no answer ever holds a password. A secret is
//! stored for its node only (scope `oob`, serving no other node) and never
//! replaces a secret another node or the operator's config or environment
//! holds (409). The node's BMC and switch addresses must each be one host
//! that is not special (see [`crate::node_address`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Authorized, Operate, Read, ReadBuildData};
use super::error::{ApiError, JsonBody};
use super::params::QueryMap;
use super::{AppState, view};
use crate::model::{Credentials, Node};
use crate::store::Store;
use crate::tasks::filter::{NodeFilter, select};
use crate::wire::{BuildData, NodeFilterRequest, NodeRegistration, NodeView};

/// The longest node name.
pub const MAX_NAME: usize = 253;

/// Checks a node name: 1 to 253 characters of `[A-Za-z0-9.-]`.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("node name must be 1 to {MAX_NAME} characters long"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        return Err(format!(
            "node name `{name}` has `{c}`; only letters, digits, `.` and `-` are allowed"
        ));
    }
    Ok(())
}

/// The secret name used when a node's credentials come without one.
pub fn default_credential_name(node: &str) -> String {
    format!("node-{node}-oob")
}

/// What the drivers last reported about node `name`.
async fn facts(store: &Store, name: &str) -> Result<view::NodeFacts, ApiError> {
    let latest = store.build_data_for_node(name, true).await?;
    Ok(view::NodeFacts::from_build_data(&latest))
}

/// `GET /nodes`: every registered node, by name, with Drydock's fields
/// (`hostname`, `memory`, `cpu_count`, `status_name`, `boot_mac`,
/// `power_state`, `power_address`, `boot_ip`) from what the drivers last
/// reported.
#[utoipa::path(get, path = "/api/v1.0/nodes", tag = "nodes",
    responses((status = 200, description = "Every registered node, by name", body = Vec<NodeView>)))]
pub async fn list(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
) -> Result<Json<Vec<NodeView>>, ApiError> {
    let store = &state.reads;
    let nodes = store.list_nodes().await?;
    let mut out = Vec::with_capacity(nodes.len());
    for n in &nodes {
        out.push(view::node_view_with(n, &facts(store, &n.name).await?));
    }
    Ok(Json(out))
}

/// `GET /nodes/{name}`: one node, or 404.
#[utoipa::path(get, path = "/api/v1.0/nodes/{name}", tag = "nodes",
    params(("name" = String, Path, description = "Node name")),
    responses((status = 200, description = "The node", body = NodeView)))]
pub async fn get(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<NodeView>, ApiError> {
    let store = &state.reads;
    let node = store
        .get_node(&name)
        .await?
        .ok_or_else(|| not_registered(&name))?;
    Ok(Json(view::node_view_with(
        &node,
        &facts(store, &name).await?,
    )))
}

fn not_registered(name: &str) -> ApiError {
    ApiError::NotFound(format!("node `{name}` is not registered"))
}

/// Splits a registration body into the node and its credentials. Errors
/// about the credentials never quote them. Public for the fuzz targets
/// (`fuzz/`) only.
#[doc(hidden)]
pub fn parse_registration(mut body: Value) -> Result<(Node, Option<Credentials>), ApiError> {
    let Some(obj) = body.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object (a node)".into(),
        ));
    };
    let bad_credentials = || {
        ApiError::BadRequest(
            "`credentials` must be {\"username\": string, \"password\": string}".into(),
        )
    };
    let parse = |v: Option<Value>| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) if m.keys().all(|k| k == "username" || k == "password") => {
            serde_json::from_value::<Credentials>(Value::Object(m))
                .map(Some)
                .map_err(|_| bad_credentials())
        }
        Some(_) => Err(bad_credentials()),
    };
    let top = parse(obj.remove("credentials"))?;
    let in_oob = parse(
        obj.get_mut("oob")
            .and_then(Value::as_object_mut)
            .and_then(|oob| oob.remove("credentials")),
    )?;
    let node: Node = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid node: {e}")))?;
    let credentials = match (top, in_oob) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give credentials once: top-level `credentials` or `oob.credentials`".into(),
            ));
        }
        (a, b) => a.or(b),
    };
    if credentials.as_ref().is_some_and(|c| c.username.is_empty()) {
        return Err(ApiError::BadRequest(
            "`credentials.username` must not be empty".into(),
        ));
    }
    validate_name(&node.name).map_err(ApiError::BadRequest)?;
    if node.oob.oob_type.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "`oob.type` is required (e.g. `redfish`, `ipmi`, `sim`)".into(),
        ));
    }
    Ok((node, credentials))
}

/// Stores `node`'s credentials under `secret`: 409 when the name belongs
/// to a config or environment secret or to another node's.
async fn store_credentials(
    state: &AppState,
    node: &str,
    secret: &str,
    c: &Credentials,
) -> Result<(), ApiError> {
    let taken = || {
        ApiError::Conflict(format!(
            "secret `{secret}` exists and was not stored for node `{node}`: name another \
             `oob.credential` for its credentials"
        ))
    };
    let held = state
        .engine
        .secrets()
        .find(secret)
        .await
        .map_err(|e| match e {
            crate::secrets::SecretError::Source {
                source_name: "database",
                ..
            } => ApiError::Unavailable("the database is unavailable; retry later".into()),
            other => ApiError::Internal(other.to_string()),
        })?;
    if matches!(held, Some((source, _)) if source != "database") {
        return Err(taken());
    }
    let value = json!({"username": c.username, "password": c.password}).to_string();
    if !state.store.put_node_secret(secret, &value, node).await? {
        return Err(taken());
    }
    Ok(())
}

/// `POST /nodes`: registers (or replaces) a node; 201 with `Location` and
/// the node dict.
#[utoipa::path(post, path = "/api/v1.0/nodes", tag = "nodes", request_body = NodeRegistration,
    responses((status = 201, description = "Registered (or replaced)", body = NodeView,
        headers(("Location" = String, description = "The node's URL path")))))]
pub async fn register(
    _caller: Authorized<Operate>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (mut node, credentials) = parse_registration(body)?;
    state
        .engine
        .node_addresses()
        .check_node(&node, true)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let store = &state.store;
    if let Some(c) = credentials {
        let secret = node
            .oob
            .credential
            .clone()
            .unwrap_or_else(|| default_credential_name(&node.name));
        store_credentials(&state, &node.name, &secret, &c).await?;
        node.oob.credential = Some(secret);
    }
    let spec = serde_json::to_value(&node)
        .map_err(|e| ApiError::Internal(format!("serializing node {}: {e}", node.name)))?;
    let record = store
        .upsert_node(&node.name, &spec, node.oob.credential.as_deref())
        .await?;
    tracing::info!(node = %record.name, oob_type = %node.oob.oob_type, "node registered");
    let location = view::node_href(&record.name);
    let body = view::node_view(&record);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// `DELETE /nodes/{name}`: unregisters a node (and its credential, when the
/// secret has the default name); 204, or 404.
#[utoipa::path(delete, path = "/api/v1.0/nodes/{name}", tag = "nodes",
    params(("name" = String, Path, description = "Node name")),
    responses((status = 204, description = "Removed")))]
pub async fn delete(
    _caller: Authorized<Operate>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = &state.store;
    let record = store
        .get_node(&name)
        .await?
        .ok_or_else(|| not_registered(&name))?;
    if !store.delete_node(&name).await? {
        return Err(not_registered(&name));
    }
    let default = default_credential_name(&name);
    if record.credential.as_deref() == Some(default.as_str()) {
        store.delete_secret(&default).await?;
    }
    tracing::info!(node = %name, "node removed");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /nodes/{name}/builddata?latest=true`: build data collected from the
/// node, newest first (with `latest`, the newest per generator); 404 when
/// there is none (as Drydock).
#[utoipa::path(get, path = "/api/v1.0/nodes/{name}/builddata", tag = "nodes",
    params(
        ("name" = String, Path, description = "Node name"),
        ("latest" = Option<bool>, Query, description = "Only the newest item per generator"),
    ),
    responses((status = 200, description = "Build data, newest first", body = Vec<BuildData>)))]
pub async fn build_data(
    _caller: Authorized<ReadBuildData>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: QueryMap,
) -> Result<Json<Vec<BuildData>>, ApiError> {
    let latest = q.flag("latest")?;
    let store = &state.reads;
    let items = store.build_data_for_node(&name, latest).await?;
    if items.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no build data found for node `{name}`"
        )));
    }
    Ok(Json(items.iter().map(view::build_data_view).collect()))
}

/// The registered nodes as [`Node`]s (unreadable ones are skipped, logged).
async fn registered_nodes(store: &Store) -> Result<Vec<Node>, ApiError> {
    let records = store.list_nodes().await?;
    Ok(records
        .into_iter()
        .filter_map(|r| match serde_json::from_value::<Node>(r.spec) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(node = %r.name, error = %e, "skipping a node with an unreadable description");
                None
            }
        })
        .collect())
}

/// `POST /nodefilter`: the names of the nodes a filter selects, among the
/// design's nodes when `design_ref` is given, else the registered ones.
#[utoipa::path(post, path = "/api/v1.0/nodefilter", tag = "nodes",
    request_body = NodeFilterRequest,
    responses((status = 200, description = "The names of the nodes selected", body = Vec<String>)))]
pub async fn filter(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NodeFilterRequest>,
) -> Result<Json<Vec<String>>, ApiError> {
    let filter = match &body.node_filter {
        None => None,
        Some(f) => NodeFilter::from_json(f).map_err(|e| ApiError::BadRequest(e.to_string()))?,
    };
    if let Some(r) = body.design_ref.as_deref().filter(|r| !r.trim().is_empty()) {
        let design = state.engine.load_design(r).await?;
        return Ok(Json(select(
            &design.model_nodes(),
            filter.as_ref(),
            &design.rack_labels(),
        )));
    }
    let nodes = registered_nodes(&state.reads).await?;
    Ok(Json(select(&nodes, filter.as_ref(), &BTreeMap::new())))
}
