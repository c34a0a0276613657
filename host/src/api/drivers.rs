//! `/drivers`: upload (install), list, show, activate, roll back and delete
//! driver versions. Reading needs `viewer`; changes need `admin`.
//!
//! | route | role |
//! | --- | --- |
//! | `GET /drivers`, `GET /drivers/{name}` | viewer |
//! | `POST /drivers` (body: the `.wasm` file) | admin |
//! | `POST /drivers/{name}/activate` `{"version": V}` | admin |
//! | `POST /drivers/{name}/rollback` | admin |
//! | `DELETE /drivers/{name}/versions/{version}` (inactive only) | admin |
//!
//! `GET /drivers` names the `drydock:driver` WIT versions the host serves in
//! its `Drydock-Wit-Versions` header; each loaded driver shows its own
//! (`loaded.wit`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::{Authorized, ManageDrivers as Administer, ReadDrivers as Read};
use super::error::{ApiError, JsonBody};
use crate::lifecycle::{Lifecycle, LifecycleError};

/// The largest driver file accepted, in bytes.
pub const MAX_DRIVER_BYTES: usize = 64 << 20;

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Refused(_) | LifecycleError::Load(_) | LifecycleError::Manifest(_) => {
                ApiError::BadRequest(e.to_string())
            }
            LifecycleError::NotFound(m) => ApiError::NotFound(m),
            LifecycleError::Conflict(m) => ApiError::Conflict(m),
            LifecycleError::Validation(_) | LifecycleError::Untrusted { .. } => {
                ApiError::Conflict(e.to_string())
            }
            LifecycleError::Store(s) => s.into(),
        }
    }
}

/// The `/drivers` routes (their own body limit: components are large).
pub fn router(state: AppState, lifecycle: Arc<Lifecycle>) -> Router {
    Router::new()
        .route(
            "/api/v1.0/drivers",
            get(list)
                .post(install)
                .layer(DefaultBodyLimit::max(MAX_DRIVER_BYTES)),
        )
        .route("/api/v1.0/drivers/{name}", get(show))
        .route(
            "/api/v1.0/drivers/{name}/activate",
            post(activate).layer(DefaultBodyLimit::max(super::MAX_SMALL_BODY_BYTES)),
        )
        .route(
            "/api/v1.0/drivers/{name}/rollback",
            post(rollback).layer(DefaultBodyLimit::max(super::MAX_SMALL_BODY_BYTES)),
        )
        .route(
            "/api/v1.0/drivers/{name}/versions/{version}",
            delete(remove),
        )
        .layer(Extension(lifecycle))
        .layer(axum::middleware::from_fn(super::context::middleware))
        .with_state(state)
}

/// The response header naming the `drydock:driver` WIT versions this host
/// serves (`0.1.0, 0.2.0`), on `GET /drivers`.
pub const WIT_VERSIONS_HEADER: &str = "drydock-wit-versions";

async fn list(
    _c: Authorized<Read>,
    Extension(l): Extension<Arc<Lifecycle>>,
) -> Result<Response, ApiError> {
    let served = crate::drivers::WitVersion::served_list();
    Ok(([(WIT_VERSIONS_HEADER, served)], Json(l.list().await?)).into_response())
}

async fn show(
    _c: Authorized<Read>,
    Extension(l): Extension<Arc<Lifecycle>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(l.describe(&name).await?).into_response())
}

async fn install(
    c: Authorized<Administer>,
    Extension(l): Extension<Arc<Lifecycle>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "send the driver component (.wasm) as the request body".into(),
        ));
    }
    let done = l.install(&body, Some(&c.actor())).await?;
    let status = if done.stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(done))).into_response())
}

/// `POST /drivers/{name}/activate` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    /// The version to activate.
    pub version: String,
}

async fn activate(
    _c: Authorized<Administer>,
    Extension(l): Extension<Arc<Lifecycle>>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ActivateBody>,
) -> Result<Response, ApiError> {
    let a = l.activate(&name, &body.version, None).await?;
    Ok(Json(
        json!({"name": a.name, "version": a.version, "sha256": a.sha256,
        "previous": a.previous, "generation": a.generation}),
    )
    .into_response())
}

async fn rollback(
    _c: Authorized<Administer>,
    Extension(l): Extension<Arc<Lifecycle>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let a = l.rollback(&name, None).await?;
    Ok(Json(
        json!({"name": a.name, "version": a.version, "sha256": a.sha256,
        "previous": a.previous, "generation": a.generation, "message": a.message}),
    )
    .into_response())
}

async fn remove(
    _c: Authorized<Administer>,
    Extension(l): Extension<Arc<Lifecycle>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    l.delete(&name, &version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
