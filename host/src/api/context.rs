//! Per-request context and the outermost middleware: the request id and the
//! one log line per request.
//!
//! Every response, errors and unknown routes included, carries
//! `X-Drydock-Req: <uuid>`, a fresh v4 per request (as Drydock). A client's
//! `X-Context-Marker` (a UUID) is its own correlation id: it is logged
//! beside the request id, never reused as one. The id, the marker and the
//! caller's name live in a task-local [`RequestContext`] while the request
//! is handled, so that error responses can name the id and the log line
//! can name the caller (never the token).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-drydock-req";
/// The request header a client may set to choose the request id.
pub const CONTEXT_MARKER_HEADER: &str = "x-context-marker";

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

/// What is known about the request being handled.
#[derive(Debug)]
pub struct RequestContext {
    /// The request id (`X-Drydock-Req`).
    pub id: Uuid,
    /// The client's `X-Context-Marker`, when a valid UUID.
    pub marker: Option<Uuid>,
    caller: OnceLock<String>,
}

/// The id of the request being handled, if called while handling one.
pub fn request_id() -> Option<Uuid> {
    CURRENT.try_with(|c| c.id).ok()
}

/// Records the authenticated caller's token name for the request log line.
pub(crate) fn set_caller(name: &str) {
    let _ = CURRENT.try_with(|c| c.caller.set(name.to_owned()));
}

/// The client's `X-Context-Marker`, if a valid UUID.
fn marker(headers: &HeaderMap) -> Option<Uuid> {
    headers
        .get(CONTEXT_MARKER_HEADER)?
        .to_str()
        .ok()
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
}

/// The outermost middleware: assigns the request id, gives non-JSON error
/// answers Drydock's error shape, stamps `X-Drydock-Req` and logs the
/// request.
pub async fn middleware(req: Request, next: Next) -> Response {
    let id = Uuid::new_v4();
    let ctx = Arc::new(RequestContext {
        id,
        marker: marker(req.headers()),
        caller: OnceLock::new(),
    });
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let mut res = CURRENT
        .scope(ctx.clone(), async move {
            let res = next.run(req).await;
            super::error::ensure_error_shape(res).await
        })
        .await;
    let value = HeaderValue::from_str(&id.to_string()).expect("a UUID is a valid header value");
    res.headers_mut().insert(REQUEST_ID_HEADER, value);
    tracing::info!(
        method = %method,
        path = %path,
        status = res.status().as_u16(),
        req_id = %id,
        external_ctx = %ctx.marker.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
        caller = ctx.caller.get().map(String::as_str).unwrap_or("-"),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "api request"
    );
    res
}
