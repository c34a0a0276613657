//! `POST /validatedesign`: Drydock's design validation over the API.
//!
//! Answers Drydock's `Status` body: 200 and `status: Success` when the
//! design has no error, 400 and `status: Failure` otherwise, with every
//! finding in `details.messageList` (`name` = the rule, `level`, `error`,
//! `documents` = `[{schema, name}]`). A design that cannot be fetched or is
//! not YAML is a plain 400 error naming the cause (line and column for
//! YAML).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::{Authorized, Read};
use super::error::{ApiError, JsonBody};
use crate::design::{Finding, SourceError};

/// The body of `POST /validatedesign`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The design reference.
    pub href: String,
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

/// Drydock's `Status` body for a list of findings.
pub fn status_body(findings: &[Finding]) -> (StatusCode, serde_json::Value) {
    let errors = findings.iter().filter(|f| f.is_error()).count();
    let list: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            json!({
                "message": f.message,
                "error": f.is_error(),
                "level": f.level,
                "name": f.rule,
                "documents": f.documents,
                "diagnostic": format!("see rule `{}`", f.rule),
            })
        })
        .collect();
    let code = if errors > 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        code,
        json!({
            "kind": "Status",
            "apiVersion": "v1.0",
            "metadata": {},
            "status": if errors > 0 { "Failure" } else { "Success" },
            "message": "Drydock Validations",
            "reason": "Validation",
            "details": {"errorCount": errors, "messageList": list},
            "code": code.as_u16(),
        }),
    )
}

/// `POST /validatedesign`.
pub async fn validate(
    _caller: Authorized<Read>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ValidateRequest>,
) -> Result<Response, ApiError> {
    if body.href.trim().is_empty() {
        return Err(ApiError::BadRequest("href is required".into()));
    }
    let design = state.engine.load_design(&body.href).await?;
    let catalog = state.engine.platform_catalog().await;
    let findings = state
        .engine
        .validate_design(&body.href, &design, catalog)
        .await?;
    let (code, body) = status_body(&findings);
    Ok((code, Json(body)).into_response())
}
