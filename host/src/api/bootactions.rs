//! `/bootactions`: what deploying nodes call, as in Drydock. These routes
//! take no API token: a node proves itself with the key it was given at
//! deploy time, in `X-Bootaction-Key` (401 without it, 403 when wrong).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/v1.0/bootactions/nodes/{hostname}/units` | the node's `unit` assets, a gzipped tar |
//! | `GET /api/v1.0/bootactions/nodes/{hostname}/files` | the node's `file` assets, a gzipped tar |
//! | `POST /api/v1.0/bootactions/{action_id}` `{"status"?, "details"?}` | the node reports |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, JsonBody};
use crate::design::bootaction::{ActionContext, AssetType, Rendered, render_with};
use crate::store::bootactions::{FAILURE, INCOMPLETE, SUCCESS, key_hash};
use crate::store::{BootActionRecord, NewMessage};
use crate::wire::{BootActionReport, BootActionView};

/// The header a node sends its key in.
pub const KEY_HEADER: &str = "x-bootaction-key";

/// Checks the request's key against `stored` (a hash); returns the key.
fn check_key(headers: &HeaderMap, stored: &str) -> Result<String, ApiError> {
    let key = headers
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("no X-Bootaction-Key".into()))?;
    let given = key_hash(key);
    // Hashes compared without an early exit: the hash of a guess says
    // nothing useful, but there is no reason to leak timing either.
    let differ = given.len() != stored.len()
        || given
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0;
    if differ {
        tracing::warn!("boot action request with a wrong key");
        return Err(ApiError::Forbidden("invalid X-Bootaction-Key".into()));
    }
    Ok(key.to_ascii_lowercase())
}

/// `GET /bootactions/nodes/{hostname}/units`.
#[utoipa::path(get, path = "/api/v1.0/bootactions/nodes/{hostname}/units", tag = "bootactions",
    security(("bootaction_key" = [])),
    params(("hostname" = String, Path, description = "The node")),
    responses((status = 200, description = "The node's `unit` assets, a gzipped tar",
        content_type = "application/gzip", body = [u8])))]
pub async fn units(
    State(state): State<AppState>,
    Path(hostname): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    assets(state, hostname, headers, AssetType::Unit, "units").await
}

/// `GET /bootactions/nodes/{hostname}/files`.
#[utoipa::path(get, path = "/api/v1.0/bootactions/nodes/{hostname}/files", tag = "bootactions",
    security(("bootaction_key" = [])),
    params(("hostname" = String, Path, description = "The node")),
    responses((status = 200, description = "The node's `file` assets, a gzipped tar",
        content_type = "application/gzip", body = [u8])))]
pub async fn files(
    State(state): State<AppState>,
    Path(hostname): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    assets(state, hostname, headers, AssetType::File, "files").await
}

async fn assets(
    state: AppState,
    hostname: String,
    headers: HeaderMap,
    only: AssetType,
    what: &str,
) -> Result<Response, ApiError> {
    let engine = &state.engine;
    let records = state.store.boot_actions_for_node(&hostname).await?;
    let Some(first) = records.first() else {
        return Err(ApiError::NotFound(format!(
            "no boot actions for node {hostname}"
        )));
    };
    let key = check_key(&headers, &first.key_hash)?;
    let design = engine
        .load_design(&first.design_ref)
        .await
        .map_err(|e| ApiError::Internal(format!("boot actions of {hostname}: {e}")))?;
    let actions = design
        .boot_actions()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let node = design.template_node(&hostname);
    let fetch = |reference: String| async move {
        engine
            .fetch_reference(&reference)
            .await
            .map_err(|e| e.to_string())
    };
    let mut rendered: Vec<Rendered> = Vec::new();
    for record in &records {
        let Some(action) = actions.iter().find(|a| a.name == record.name) else {
            continue;
        };
        let ctx = ActionContext {
            action_id: record.action_id.clone(),
            action_key: key.clone(),
            report_url: engine.boot_action_url().to_owned(),
            design_ref: record.design_ref.clone(),
        };
        let assets = render_with(
            action,
            Some(only),
            &node,
            &ctx,
            &fetch,
            engine.design_limits(),
        )
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        rendered.extend(assets);
    }
    let tarball = tarball(&rendered).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{hostname}-{what}.tar.gz\""),
            ),
        ],
        tarball,
    )
        .into_response())
}

/// A gzipped tar of `assets` (their absolute paths made relative, owned by
/// root, with their modes).
pub fn tarball(assets: &[Rendered]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for a in assets.iter().filter(|a| a.asset_type != AssetType::PkgList) {
        let mut h = tar::Header::new_gnu();
        h.set_size(a.bytes.len() as u64);
        h.set_mode(a.mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, a.path.trim_start_matches('/'), a.bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}

/// `POST /bootactions/{action_id}`: detail messages (added to the task that
/// deployed the node) and, once, the final status (`success` or `failure`,
/// any case); 409 once final.
#[utoipa::path(post, path = "/api/v1.0/bootactions/{action_id}", tag = "bootactions",
    security(("bootaction_key" = [])),
    params(("action_id" = String, Path, description = "The boot action's id")),
    request_body = BootActionReport,
    responses((status = 200, description = "The boot action after the report", body = BootActionView)))]
pub async fn report(
    State(state): State<AppState>,
    Path(action_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let store = &state.store;
    let record = store
        .boot_action(&action_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no boot action {action_id}")))?;
    check_key(&headers, &record.key_hash)?;
    let JsonBody(body): JsonBody<BootActionReport> = JsonBody::parse(&headers, &body)?;
    let status = match body.status.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(s) if s == SUCCESS || s == FAILURE => Some(s),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "status `{other}` is not Success or Failure"
            )));
        }
    };
    if record.status != INCOMPLETE {
        return Err(ApiError::Conflict(format!(
            "boot action {action_id} is final ({}); no more updates",
            record.status
        )));
    }
    let messages: Vec<NewMessage> = body
        .details
        .into_iter()
        .map(|d| NewMessage {
            task_id: record.task_id,
            message: format!("{} {}: {}", record.node_name, record.name, d.message),
            error: d.error,
            context_type: "bootaction".into(),
            context: action_id.clone(),
            extra: (!d.extra.is_empty()).then_some(Value::Object(d.extra)),
        })
        .collect();
    store.add_messages(&messages).await?;
    if let Some(s) = &status
        && !store.finish_boot_action(&action_id, s).await?
    {
        return Err(ApiError::Conflict(format!(
            "boot action {action_id} is final; no more updates"
        )));
    }
    if status.is_some() {
        state.engine.wake_scheduler();
    }
    let record: BootActionRecord = store
        .boot_action(&action_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no boot action {action_id}")))?;
    Ok((StatusCode::OK, axum::Json(view(record))).into_response())
}

/// A boot action as the API shows it (never its key's hash).
fn view(r: BootActionRecord) -> BootActionView {
    BootActionView {
        action_id: r.action_id,
        task_id: r.task_id.to_string(),
        node_name: r.node_name,
        name: r.name,
        signaling: r.signaling,
        status: r.status,
        design_ref: r.design_ref,
        created: r.created,
        updated: r.updated,
    }
}
