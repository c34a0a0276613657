//! Per-request HTTP metrics and spans: every API request counted by
//! method, matched route (the route pattern, never the raw path, so ids do
//! not multiply series) and status, with its latency; and handled in an
//! `http_request` span that continues the caller's W3C `traceparent`.

use super::metrics::{HTTP_REQUEST_SECONDS, HTTP_REQUESTS};
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// Middleware recording [`HTTP_REQUESTS`] and [`HTTP_REQUEST_SECONDS`].
/// Layered with `Router::layer` it runs after routing, so the matched
/// route is known.
pub async fn middleware(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    // A client may send any method: only the standard ones are labels.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let started = Instant::now();
    let span = super::traces::request_span(&method, &route, req.headers());
    let res = tracing::Instrument::instrument(next.run(req), span).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", res.status().as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_REQUEST_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    res
}

/// Adds the middleware to every route of `router`.
pub fn layer<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router.layer(axum::middleware::from_fn(middleware))
}
