//! Traces: a span per API request, per task and per driver call, exported
//! by OTLP (HTTP/protobuf) when an endpoint is configured
//! (`DRYDOCK_OTLP_ENDPOINT`, the collector's full traces URL, e.g.
//! `http://collector:4318/v1/traces`).
//!
//! The tree of one task: an API request carrying a W3C `traceparent`
//! continues that trace in its `http_request` span ([`super::http`]);
//! `POST /tasks` opens the task's `task` span under it
//! ([`task_submitted`], kept open until the task finishes,
//! [`task_finished`]); each subtask's driver call runs in a `task` span
//! ([`subtask_span`]) whose parent is its task's span, and the runtime's
//! `driver_call` span (with `task.id`) inside it.
//!
//! Task spans live in this process: a subtask run by another instance, or
//! a step of an orchestration (whose parent is the step, not the task the
//! request created), starts a trace of its own.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use uuid::Uuid;

use crate::store::TaskRecord;

/// The environment variable naming the OTLP traces endpoint.
pub const ENDPOINT_ENV: &str = "DRYDOCK_OTLP_ENDPOINT";

/// At most this many task spans are held open; the oldest is closed
/// first (a task finished on another instance never closes its own).
const MAX_OPEN_TASKS: usize = 10_000;

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("OTLP exporter for {endpoint}: {source}")]
pub struct TraceError {
    endpoint: String,
    #[source]
    source: opentelemetry_otlp::ExporterBuildError,
}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The `tracing` layer exporting spans to `endpoint` by OTLP. The provider
/// is kept for [`flush`] (the first one built wins).
pub fn layer<S>(endpoint: &str) -> Result<OpenTelemetryLayer<S, SdkTracer>, TraceError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TraceError {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("drydock")
        .build();
    let provider = PROVIDER.get_or_init(|| {
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build()
    });
    Ok(tracing_opentelemetry::layer().with_tracer(provider.tracer("drydock")))
}

/// Exports every finished span now (at shutdown, and for tests).
pub fn flush() {
    if let Some(p) = PROVIDER.get()
        && let Err(e) = p.force_flush()
    {
        tracing::warn!(error = %e, "flushing traces failed");
    }
}

/// Headers as OpenTelemetry's propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The span of one API request: it continues the caller's trace when the
/// request carries a valid W3C `traceparent` (an invalid one is ignored).
pub fn request_span(method: &str, route: &str, headers: &http::HeaderMap) -> Span {
    let span = tracing::info_span!("http_request", http.method = method, http.route = route);
    if headers.contains_key("traceparent") {
        let cx = TraceContextPropagator::new().extract(&Headers(headers));
        let _ = span.set_parent(cx);
    }
    span
}

/// The open task spans, by task id, in the order they were opened.
#[derive(Default)]
struct OpenTasks {
    spans: HashMap<Uuid, Span>,
    order: std::collections::VecDeque<Uuid>,
}

fn open_tasks() -> &'static Mutex<OpenTasks> {
    static OPEN: OnceLock<Mutex<OpenTasks>> = OnceLock::new();
    OPEN.get_or_init(Mutex::default)
}

/// Opens task `id`'s span, a child of the current span (the API request
/// that created it). Called by the engine when it queues a task.
pub fn task_submitted(id: Uuid, action: &str) {
    let span = tracing::info_span!("task", task.id = %id, action = action);
    if span.is_disabled() {
        return;
    }
    let mut open = open_tasks().lock().expect("task spans lock");
    if open.spans.len() >= MAX_OPEN_TASKS
        && let Some(oldest) = open.order.pop_front()
    {
        open.spans.remove(&oldest);
    }
    open.spans.insert(id, span);
    open.order.push_back(id);
}

/// Closes task `id`'s span, if this process opened it. Called by the engine
/// when the task finishes.
pub fn task_finished(id: Uuid) {
    let mut open = open_tasks().lock().expect("task spans lock");
    if open.spans.remove(&id).is_some() {
        open.order.retain(|t| *t != id);
    }
}

/// The span a subtask's driver call runs in: `task`, with the subtask's id,
/// action and node, under its parent task's span when this process holds
/// it.
pub fn subtask_span(t: &TaskRecord) -> Span {
    let parent = t.parent_id.and_then(|p| {
        let open = open_tasks().lock().expect("task spans lock");
        open.spans.get(&p).and_then(Span::id)
    });
    tracing::info_span!(
        parent: parent,
        "task",
        task.id = %t.id,
        task.parent_id = t.parent_id.map(|p| p.to_string()).as_deref().unwrap_or("-"),
        action = %t.action,
        node = t.node_name.as_deref().unwrap_or("-")
    )
}
