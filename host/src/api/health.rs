//! `/versions`, `/health` (open, writes nothing) and `/health/extended`
//! (viewer).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Authorized, Read};
use super::error::ApiError;
use super::{AppState, PREFIX};

/// `GET /versions`: the API versions served.
pub async fn versions() -> Json<Value> {
    Json(json!({"v1.0": {"path": PREFIX, "status": "stable"}}))
}

/// `GET /health`: 204 when the database answers, 503 (retry) otherwise.
pub async fn health(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    state.engine.store().ping().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /health/extended`: the database, the leadership (this instance,
/// the leader, the fencing epoch, when the lease lapses), the drivers and
/// the engine; 503 with `"status": "unhealthy"` when the database does not
/// answer.
pub async fn extended(_caller: Authorized<Read>, State(state): State<AppState>) -> Response {
    let engine = &state.engine;
    let store = engine.store();
    let ping = store.ping().await;
    let mut database = json!({"backend": store.backend().to_string(), "ok": ping.is_ok()});
    if let Err(e) = &ping {
        database["error"] = json!(e.to_string());
    }
    let drivers: Vec<Value> = engine
        .drivers()
        .all()
        .iter()
        .map(|d| {
            let info = d.driver.info();
            json!({
                "name": info.name,
                "version": info.version,
                "interfaces": info.interfaces,
                "oob_types": info.oob_types,
            })
        })
        .collect();
    let lead = engine.leadership().view();
    let body = json!({
        "status": if ping.is_ok() { "ok" } else { "unhealthy" },
        "instance_id": engine.instance_id(),
        "leader": lead.leader,
        "is_leader": lead.is_leader,
        "epoch": lead.epoch,
        "lease_expires": lead.lease_expires,
        "database": database,
        "drivers": drivers,
        "inflight": engine.inflight(),
    });
    let status = if ping.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
