//! `/drivers`: upload (install), list, show, activate, roll back and delete
//! driver versions. Reading needs `viewer`; changes need `admin`. The
//! routes answer 503 on an [`AppState`] without a driver lifecycle.
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

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::{Authorized, ManageDrivers as Administer, ReadDrivers as Read};
use super::error::{ApiError, JsonBody};
use crate::lifecycle::LifecycleError;
use crate::store::ActiveDriver;
use crate::wire::{ActivateBody, Activation, DriverStatus, Installation};

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

/// `GET /drivers`: every driver.
#[utoipa::path(get, path = "/api/v1.0/drivers", tag = "drivers",
    responses((status = 200, description = "Every driver", body = Vec<DriverStatus>)))]
pub async fn list(
    _c: Authorized<Read>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let served = crate::drivers::WitVersion::served_list();
    let list = state.lifecycle()?.list().await?;
    Ok(([(WIT_VERSIONS_HEADER, served)], Json(list)).into_response())
}

/// The response header naming the `drydock:driver` WIT versions this host
/// serves (`0.1.0, 0.2.0`), on `GET /drivers`.
pub const WIT_VERSIONS_HEADER: &str = "drydock-wit-versions";

/// `GET /drivers/{name}`: one driver.
#[utoipa::path(get, path = "/api/v1.0/drivers/{name}", tag = "drivers",
    params(("name" = String, Path, description = "Driver name")),
    responses((status = 200, description = "The driver", body = DriverStatus)))]
pub async fn show(
    _c: Authorized<Read>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<DriverStatus>, ApiError> {
    Ok(Json(state.lifecycle()?.describe(&name).await?))
}

/// `POST /drivers`: installs a driver component (verified, checked,
/// compiled, stored); 201 when new, 200 when the same file was there.
#[utoipa::path(post, path = "/api/v1.0/drivers", tag = "drivers",
    request_body(content = [u8], content_type = "application/octet-stream",
        description = "The driver component (`.wasm`, any content type), signed unless \
            unsigned drivers are allowed"),
    responses(
        (status = 201, description = "A new version was stored", body = Installation),
        (status = 200, description = "The same file was there", body = Installation),
    ))]
pub async fn install(
    c: Authorized<Administer>,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let l = state.lifecycle()?;
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
    Ok((status, Json(done)).into_response())
}

/// The wire form of an activation.
fn activation(a: ActiveDriver, with_message: bool) -> Activation {
    Activation {
        name: a.name,
        version: a.version,
        sha256: a.sha256,
        previous: a.previous,
        generation: a.generation,
        message: if with_message { a.message } else { None },
    }
}

/// `POST /drivers/{name}/activate`: makes a version active on every
/// instance (validated first, then watched).
#[utoipa::path(post, path = "/api/v1.0/drivers/{name}/activate", tag = "drivers",
    params(("name" = String, Path, description = "Driver name")),
    request_body = ActivateBody,
    responses((status = 200, description = "Active", body = Activation)))]
pub async fn activate(
    _c: Authorized<Administer>,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ActivateBody>,
) -> Result<Json<Activation>, ApiError> {
    let a = state
        .lifecycle()?
        .activate(&name, &body.version, None)
        .await?;
    Ok(Json(activation(a, false)))
}

/// `POST /drivers/{name}/rollback`: returns to the version active before.
#[utoipa::path(post, path = "/api/v1.0/drivers/{name}/rollback", tag = "drivers",
    params(("name" = String, Path, description = "Driver name")),
    responses((status = 200, description = "Rolled back", body = Activation)))]
pub async fn rollback(
    _c: Authorized<Administer>,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Activation>, ApiError> {
    let a = state.lifecycle()?.rollback(&name, None).await?;
    Ok(Json(activation(a, true)))
}

/// `DELETE /drivers/{name}/versions/{version}`: deletes an inactive
/// version.
#[utoipa::path(delete, path = "/api/v1.0/drivers/{name}/versions/{version}", tag = "drivers",
    params(
        ("name" = String, Path, description = "Driver name"),
        ("version" = String, Path, description = "Version"),
    ),
    responses((status = 204, description = "Deleted")))]
pub async fn remove(
    _c: Authorized<Administer>,
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.lifecycle()?.delete(&name, &version).await?;
    Ok(StatusCode::NO_CONTENT)
}
