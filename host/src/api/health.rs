//! `/versions`, `/health` (open, writes nothing) and `/health/extended`
//! (`physical_provisioner:health_data`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Map;

use super::auth::{Authorized, HealthData};
use super::error::ApiError;
use super::{AppState, PREFIX};
use crate::wire::{
    ApiVersion, HealthDatabase, HealthDetails, HealthDriver, HealthInstance, HealthMessage,
    HealthStatus, Versions,
};

/// `GET /versions`: the API versions served.
#[utoipa::path(get, path = "/versions", tag = "health", security(()),
    responses((status = 200, description = "The API versions", body = Versions)))]
pub async fn versions() -> Json<Versions> {
    Json(Versions {
        v1_0: ApiVersion {
            path: PREFIX.into(),
            status: "stable".into(),
        },
    })
}

/// `GET /api/v1.0/versions`: the same.
#[utoipa::path(get, path = "/api/v1.0/versions", tag = "health", security(()),
    responses((status = 200, description = "The API versions", body = Versions)))]
pub async fn versions_v1() -> Json<Versions> {
    versions().await
}

/// `GET /health`: 204 when the database answers, 503 (retry) otherwise,
/// and 503 while the instance drains (it is stopping: a load balancer or a
/// readiness probe should send requests elsewhere, though it still serves
/// them until it stops listening; see `[http] linger_ms`).
#[utoipa::path(get, path = "/api/v1.0/health", tag = "health", security(()),
    responses(
        (status = 204, description = "Healthy"),
        (status = 503, description = "The database is unavailable, or the instance is stopping"),
    ))]
pub async fn health(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    if state.engine.is_draining() {
        return Err(ApiError::Unavailable(
            "this instance is stopping (draining); use another instance".into(),
        ));
    }
    state.store.ping().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /health/extended`: Drydock's health `Status` body (`status`
/// `Success` or `Failure`, `reason: HealthCheck`, one `SimpleMessage` per
/// problem in `details.messageList`, `code`), 200 or 503; beside it,
/// `instance`: this instance, the leadership (the leader, the fencing
/// epoch, when the lease lapses), the database, the drivers and the work in
/// flight.
#[utoipa::path(get, path = "/api/v1.0/health/extended", tag = "health",
    responses(
        (status = 200, description = "Healthy", body = HealthStatus),
        (status = 503, description = "Unhealthy", body = HealthStatus),
    ))]
pub async fn extended(_caller: Authorized<HealthData>, State(state): State<AppState>) -> Response {
    let engine = &state.engine;
    let store = &state.store;
    let ping = store.ping().await;
    let mut problems = Vec::new();
    if ping.is_err() {
        problems.push(HealthMessage {
            message: "Unable to connect to database".into(),
            error: true,
            kind: "SimpleMessage".into(),
        });
    }
    let database = HealthDatabase {
        backend: store.backend().to_string(),
        ok: ping.is_ok(),
        error: ping.err().map(|e| e.to_string()),
    };
    let drivers = engine
        .drivers()
        .all()
        .iter()
        .map(|d| {
            let info = d.driver.info();
            HealthDriver {
                name: info.name.clone(),
                version: info.version.clone(),
                interfaces: info.interfaces.iter().map(|i| i.to_string()).collect(),
                oob_types: info.oob_types.clone(),
            }
        })
        .collect();
    let lead = engine.leadership().view();
    let healthy = problems.is_empty();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = HealthStatus {
        kind: "Status".into(),
        api_version: "v1.0".into(),
        metadata: Map::new(),
        status: if healthy { "Success" } else { "Failure" }.into(),
        message: if healthy {
            ""
        } else {
            "Drydock failed to respond"
        }
        .into(),
        reason: "HealthCheck".into(),
        details: HealthDetails {
            error_count: problems.len() as u64,
            message_list: problems,
        },
        code: status.as_u16(),
        instance: HealthInstance {
            instance_id: engine.instance_id().to_owned(),
            leader: lead.leader,
            is_leader: lead.is_leader,
            epoch: lead.epoch,
            lease_expires: lead.lease_expires,
            database,
            drivers,
            inflight: engine.inflight() as u64,
        },
    };
    (status, Json(body)).into_response()
}
