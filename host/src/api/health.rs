//! `/versions`, `/health` (open, writes nothing) and `/health/extended`
//! (`physical_provisioner:health_data`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Authorized, HealthData};
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

/// `GET /health/extended`: Drydock's health `Status` body (`status`
/// `Success` or `Failure`, `reason: HealthCheck`, one `SimpleMessage` per
/// problem in `details.messageList`, `code`), 200 or 503; beside it,
/// `instance`: this instance, the leadership (the leader, the fencing
/// epoch, when the lease lapses), the database, the drivers and the work in
/// flight.
pub async fn extended(_caller: Authorized<HealthData>, State(state): State<AppState>) -> Response {
    let engine = &state.engine;
    let store = engine.store();
    let ping = store.ping().await;
    let mut database = json!({"backend": store.backend().to_string(), "ok": ping.is_ok()});
    let mut problems = Vec::new();
    if let Err(e) = &ping {
        database["error"] = json!(e.to_string());
        problems.push(json!({
            "message": "Unable to connect to database",
            "error": true,
            "kind": "SimpleMessage",
        }));
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
    let healthy = problems.is_empty();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1.0",
        "metadata": {},
        "status": if healthy { "Success" } else { "Failure" },
        "message": if healthy { "" } else { "Drydock failed to respond" },
        "reason": "HealthCheck",
        "details": {"errorCount": problems.len(), "messageList": problems},
        "code": status.as_u16(),
        "instance": {
            "instance_id": engine.instance_id(),
            "leader": lead.leader,
            "is_leader": lead.is_leader,
            "epoch": lead.epoch,
            "lease_expires": lead.lease_expires,
            "database": database,
            "drivers": drivers,
            "inflight": engine.inflight(),
        },
    });
    (status, Json(body)).into_response()
}
