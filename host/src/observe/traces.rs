//! Traces: a span per API request, per task and per driver call, exported
//! by OTLP (HTTP/protobuf) when an endpoint is configured
//! (`DRYDOCK_OTLP_ENDPOINT`, the collector's full traces URL, e.g.
//! `http://collector:4318/v1/traces`).
//!
//! The tree of one task: an API request carrying a W3C `traceparent`
//! continues that trace in its `http_request` span ([`super::http`]);
//! `POST /tasks` opens the task's `task` span under it
//! ([`task_submitted`], kept open until the task finishes,
//! [`task_finished`]); each orchestration step opens a `task` span under
//! its task's ([`step_started`], open until the step finishes); each driver
//! call runs in a `task` span ([`subtask_span`]) under its parent's (the
//! task's or the step's), and the runtime's `driver_call` span (with
//! `task.id`) inside it.
//!
//! The parent's `traceparent` is stored with each task
//! ([`crate::store::TaskRecord::traceparent`]: a task's or step's own span,
//! copied to its calls when they are created), and step and call spans take
//! their parent from it alone, so a step or a call run by another instance
//! than the one holding its parent's span joins the trace the same way.
//!
//! A span is exported when it closes: a task or step finished by another
//! instance than the one that opened its span is closed when the open
//! spans exceed [`MAX_OPEN_TASKS`] (oldest first).

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
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

/// At most this many task and step spans are held open; the oldest is
/// closed first (a task finished on another instance never closes its own).
pub const MAX_OPEN_TASKS: usize = 10_000;

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("OTLP exporter for {endpoint}: {source}")]
pub struct TraceError {
    endpoint: String,
    #[source]
    source: opentelemetry_otlp::ExporterBuildError,
}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether this process exports traces (an OTLP layer has been built).
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

/// The span a driver call runs in
/// ([`CALL_SPAN`](crate::drivers::runtime::CALL_SPAN)) when this process
/// exports traces; none otherwise. No log layer records it (a guest's lines
/// carry driver, action, node and task themselves), so without an exporter
/// a call makes no span at all.
pub fn driver_call_span(driver: &str, action: &'static str, node: &str, task: &str) -> Span {
    if !exporting() {
        return Span::none();
    }
    tracing::info_span!(
        crate::drivers::runtime::CALL_SPAN,
        driver = %driver,
        action = action,
        node = node,
        task.id = task
    )
}

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

/// The W3C `traceparent` of `span`, when its trace is exported (`None`
/// without an OTLP layer).
fn traceparent_of(span: &Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span `traceparent` names (a stored one; an
/// invalid value is ignored).
fn continue_trace(span: &Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Holds `span` open as task `id`'s until [`task_finished`]; returns its
/// `traceparent`.
fn hold(id: Uuid, span: Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let traceparent = traceparent_of(&span);
    let mut open = open_tasks().lock().expect("task spans lock");
    if open.spans.len() >= MAX_OPEN_TASKS
        && let Some(oldest) = open.order.pop_front()
    {
        open.spans.remove(&oldest);
    }
    open.spans.insert(id, span);
    open.order.push_back(id);
    traceparent
}

/// Opens task `id`'s span, a child of the current span (the API request
/// that created it). Called by the engine when it queues a task; returns
/// the span's `traceparent`, stored with the task.
pub fn task_submitted(id: Uuid, action: &str) -> Option<String> {
    hold(
        id,
        tracing::info_span!("task", task.id = %id, action = action),
    )
}

/// Opens the span of step `id` of orchestration `task`, a child of the
/// task's span (`traceparent`, stored with the task), on whichever instance
/// advances the orchestration. Returns the step's `traceparent`, stored
/// with the step and its calls.
pub fn step_started(
    id: Uuid,
    task: Uuid,
    action: &str,
    traceparent: Option<&str>,
) -> Option<String> {
    let span = tracing::info_span!(
        parent: None,
        "task",
        task.id = %id,
        task.parent_id = %task,
        action = action,
        node = "-"
    );
    if let Some(tp) = traceparent {
        continue_trace(&span, tp);
    }
    hold(id, span)
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
/// action and node, under its parent's span: the one its stored
/// `traceparent` names, wherever that span is held (this instance or
/// another); without one (traces not exported), the one this process
/// holds, for the log lines' context.
pub fn subtask_span(t: &TaskRecord) -> Span {
    let stored = t.traceparent.as_deref();
    let local = match (stored, t.parent_id) {
        (None, Some(p)) => {
            let open = open_tasks().lock().expect("task spans lock");
            open.spans.get(&p).and_then(Span::id)
        }
        _ => None,
    };
    let span = tracing::info_span!(
        parent: local,
        "task",
        task.id = %t.id,
        task.parent_id = t.parent_id.map(|p| p.to_string()).as_deref().unwrap_or("-"),
        action = %t.action,
        node = t.node_name.as_deref().unwrap_or("-")
    );
    if let Some(tp) = stored {
        continue_trace(&span, tp);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No exporter in this process: a driver call makes no span, even under
    /// `serve`'s subscriber at `trace`, which makes every other span.
    #[test]
    fn driver_calls_make_no_span_without_an_exporter() {
        assert!(!exporting(), "no unit test builds an OTLP layer");
        let subscriber = crate::telemetry::subscriber(
            false,
            false,
            tracing_subscriber::EnvFilter::new("trace"),
            None,
            std::io::sink,
        );
        tracing::subscriber::with_default(subscriber, || {
            let call = driver_call_span("sim", "power_on_node", "n1", "-");
            assert!(call.is_disabled());
            let task = tracing::info_span!("task", task.id = "t-1");
            assert!(!task.is_disabled(), "other spans are made");
        });
    }
}
