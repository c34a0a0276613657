//! `POST /validatedesign`: Drydock's design validation over the API.
//!
//! The body is Drydock's (what Shipyard sends): `{"rel": "design", "href":
//! "<design_ref>", "type": "application/x-yaml"}`; only `href` is read,
//! other keys are ignored. The answer is Drydock's `Validation` status:
//! 200 and `status: Success` when the design has no error, 400 and `status:
//! Failure` otherwise, `code` repeating the HTTP status, and in
//! `details.messageList` one `ValidationMessage` per finding (`name` = the
//! rule's code, `level` `Error`/`Warning`/`Info`, `error`, `diagnostic`,
//! `ts`, `documents` = `[{schema, name}]`) plus, as Drydock does, an `Info`
//! "Validation successful." for each rule that found no error. A design
//! that cannot be fetched or parsed is a `Failure` status with one error
//! message saying why, as Drydock reports it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::{Authorized, ValidateSiteDesign};
use super::error::{ApiError, JsonBody};
use crate::design::{Finding, SourceError};
use crate::wire::status::{DocumentRef, ValidationDetails};
use crate::wire::{
    TaskMessage, ValidateDesign, ValidationEntry, ValidationMessage, ValidationStatus, timestamp,
};

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

/// Drydock's message for each rule without an error.
pub const RULE_PASSED: &str = "Validation successful.";

/// Drydock's `Validation` status body.
fn status(errors: usize, list: Vec<ValidationEntry>) -> (StatusCode, ValidationStatus) {
    let code = if errors > 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let (status, text, reason) = if errors > 0 {
        (
            "Failure",
            "Site design failed validation.",
            Some("See detail messages.".to_owned()),
        )
    } else {
        ("Success", "Site design passed validation", None)
    };
    (
        code,
        ValidationStatus {
            kind: "Status".into(),
            api_version: "v1.0".into(),
            metadata: Map::new(),
            status: status.into(),
            message: text.into(),
            reason,
            details: ValidationDetails {
                error_count: errors as u64,
                message_list: list,
            },
            code: code.as_u16(),
        },
    )
}

/// Drydock's status body for a list of findings, in the order validation
/// made them (errors and warnings, and the `Info` "Validation successful."
/// of each rule that found no error): each a `ValidationMessage` named by
/// its rule's code, with its diagnostic.
pub fn status_body(findings: &[Finding]) -> (StatusCode, ValidationStatus) {
    let errors = findings.iter().filter(|f| f.is_error()).count();
    let ts = timestamp(&Utc::now());
    let list = findings
        .iter()
        .map(|f| {
            ValidationEntry::Finding(ValidationMessage {
                kind: "ValidationMessage".into(),
                name: f.code.into(),
                message: f.message.clone(),
                error: f.is_error(),
                level: match serde_json::to_value(f.level) {
                    Ok(Value::String(s)) => s,
                    _ => String::new(),
                },
                diagnostic: f.diagnostic.clone(),
                ts: ts.clone(),
                documents: f
                    .documents
                    .iter()
                    .map(|d| DocumentRef {
                        schema: d.schema.clone(),
                        name: d.name.clone(),
                    })
                    .collect(),
            })
        })
        .collect();
    status(errors, list)
}

/// Drydock's status body for a design that could not be loaded.
fn load_failure(e: &SourceError) -> (StatusCode, ValidationStatus) {
    let list = vec![ValidationEntry::Message(TaskMessage {
        message: format!("Error loading effective site: {e}"),
        error: true,
        context_type: "NA".into(),
        context: "NA".into(),
        ts: timestamp(&Utc::now()),
        extra: json!({}),
    })];
    status(1, list)
}

/// `POST /validatedesign`.
#[utoipa::path(post, path = "/api/v1.0/validatedesign", tag = "designs",
    request_body = ValidateDesign,
    responses(
        (status = 200, description = "The design has no error", body = ValidationStatus),
        (status = 400, description = "The design has errors, or could not be loaded (a \
            `Status`), or the request is malformed (an error body)",
            body = crate::wire::status::ValidationFailure),
    ))]
pub async fn validate(
    _caller: Authorized<ValidateSiteDesign>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object with an `href` (the design reference)".into(),
        ));
    };
    let href = match obj.get("href") {
        Some(Value::String(h)) if !h.trim().is_empty() => h.clone(),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(ApiError::BadRequest(
                "The \"href\" key must be provided in the request body.".into(),
            ));
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`href` must be a string (the design reference)".into(),
            ));
        }
    };
    // Parsing and validation run off the async workers within the
    // design time budget; a design past a limit answers a failed status.
    let (code, body) = match state.engine.load_design(&href).await {
        Ok(design) => {
            let catalog = state.engine.platform_catalog().await;
            match state.engine.validate_design(&href, &design, catalog).await {
                Ok(findings) => status_body(&findings),
                Err(e) => load_failure(&e),
            }
        }
        Err(e) => load_failure(&e),
    };
    Ok((code, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::validate::Level;

    #[test]
    fn findings_become_validation_messages() {
        let finding = |code: &'static str, level: Level, text: &str| Finding {
            rule: "MtuRational",
            code,
            message: text.into(),
            diagnostic: "fix it".into(),
            level,
            documents: vec![],
        };
        let findings = vec![
            finding("DD1003", Level::Error, "bad"),
            finding("DD2002", Level::Info, RULE_PASSED),
        ];
        let (code, body) = status_body(&findings);
        let body = serde_json::to_value(body).unwrap();
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert_eq!(body["status"], "Failure");
        assert_eq!(body["code"], 400);
        assert_eq!(body["details"]["errorCount"], 1);
        let list = body["details"]["messageList"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["name"], "DD1003");
        assert_eq!(list[0]["level"], "Error");
        assert_eq!(list[0]["diagnostic"], "fix it");
        assert_eq!(list[1]["message"], RULE_PASSED);
        assert_eq!(list[1]["error"], false);
        assert!(
            list.iter()
                .all(|m| m["kind"] == "ValidationMessage" && m["ts"].is_string())
        );

        let (code, body) = status_body(&findings[1..]);
        let body = serde_json::to_value(body).unwrap();
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["status"], "Success");
        assert_eq!(body["message"], "Site design passed validation");
    }
}
