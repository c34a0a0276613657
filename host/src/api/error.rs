//! API errors as Drydock shows them: `{"type": "error", "message": "...",
//! "retry": false}` with the matching status, and the JSON body extractor
//! whose failures take that shape.
//!
//! Internal failures (database errors, bugs) are logged with the request id
//! and answered with "internal error, see the server log for request <id>":
//! SQL and other internal text never reach a client.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::context::request_id;
use crate::store::StoreError;
use crate::tasks::EngineError;
use crate::wire::ErrorBody;

/// Why a request failed, by HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or not acceptable.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no token, or an unknown one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token lacks the role the request needs.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource or route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the resource's state forbids the request.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: the peer must wait `retry_after` (sent as `Retry-After`).
    #[error("{message}")]
    TooManyRequests {
        /// What to tell the client.
        message: String,
        /// How long to wait.
        retry_after: std::time::Duration,
    },
    /// 503: a dependency (the database) is unavailable; worth retrying. The
    /// text is shown to the client.
    #[error("{0}")]
    Unavailable(String),
    /// 500: anything else. The text is logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The message shown for internal errors.
fn internal_message() -> String {
    match request_id() {
        Some(id) => format!("internal error, see the server log for request {id}"),
        None => "internal error, see the server log".to_owned(),
    }
}

/// Drydock's error response.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let body = ErrorBody::new(
        message,
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS,
    );
    let mut res = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(detail) => {
                let req_id = request_id().map(|i| i.to_string()).unwrap_or_default();
                tracing::error!(req_id = %req_id, error = %detail, "request failed");
                error_response(status, &internal_message())
            }
            ApiError::TooManyRequests {
                message,
                retry_after,
            } => {
                let mut res = error_response(status, message);
                // Whole seconds, rounded up.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                res.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(secs.max(1)));
                res
            }
            ApiError::Unavailable(message) => {
                // Worth retrying soon: the database (or a part of this
                // instance) is busy or briefly away.
                let mut res = error_response(status, message);
                res.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(1u64));
                res
            }
            other => error_response(status, &other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                let req_id = request_id().map(|i| i.to_string()).unwrap_or_default();
                tracing::warn!(req_id = %req_id, error = %detail, "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry later".into())
            }
            StoreError::Contended(detail) => {
                let req_id = request_id().map(|i| i.to_string()).unwrap_or_default();
                tracing::warn!(req_id = %req_id, error = %detail, "database contended");
                ApiError::Unavailable("the database is busy; retry later".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(m) | EngineError::Design(m) => ApiError::BadRequest(m),
            EngineError::NotFound(m) => ApiError::NotFound(m),
            EngineError::Store(e) => e.into(),
        }
    }
}

/// A JSON request body. Rejections are [`ApiError`]s: 415 without a JSON
/// content type, 413 past the route's body limit, 400 for an empty body or one
/// that does not parse or fit `T` (serde's message, with line and column).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Whether the request says its body is JSON (`application/json` or
/// `application/<something>+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim();
    let mime = mime.to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a JSON body with `Content-Type: application/json`".into(),
            ));
        }
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body is larger than this route accepts".into())
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {}", r.body_text()))
            }
        })?;
        Self::parse(&headers, &bytes)
    }
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// Parses a body already read, with the same checks and errors as the
    /// extractor (for handlers that check something else first).
    pub fn parse(headers: &axum::http::HeaderMap, bytes: &[u8]) -> Result<Self, ApiError> {
        if !is_json(headers) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a JSON body with `Content-Type: application/json`".into(),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "request body is empty; expected a JSON object".into(),
            ));
        }
        serde_json::from_slice(bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))
    }
}

/// The router's fallback: 404 for unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such route: {}", uri.path()))
}

/// The answer for a known route with a wrong method: 405.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}

/// Gives any error answer not already in Drydock's shape (e.g. a rejection
/// from an axum extractor) that shape, keeping its status. A non-JSON 5xx
/// body is replaced, never shown.
pub(crate) async fn ensure_error_shape(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.headers()) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if status.is_server_error() {
        tracing::error!(status = status.as_u16(), body = %text, "non-JSON server error");
        internal_message()
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut shaped = error_response(status, &message);
    for (name, value) in parts.headers.iter() {
        let ours = name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH;
        if !ours && !shaped.headers().contains_key(name) {
            shaped.headers_mut().insert(name, value.clone());
        }
    }
    shaped
}
