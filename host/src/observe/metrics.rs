//! Prometheus metrics: the process-wide recorder, the metric names, and the
//! `GET /metrics` handler that renders them.
//!
//! Counters and histograms are recorded where things happen, through the
//! `metrics` facade:
//!
//! | metric | labels | recorded by |
//! | --- | --- | --- |
//! | `drydock_driver_calls_total` | driver, action, outcome | [`driver_call`] (drivers/runtime.rs) |
//! | `drydock_driver_call_seconds` (histogram) | driver, action, outcome | [`driver_call`] |
//! | `drydock_bmc_calls_total`, `drydock_bmc_errors_total` | bmc | [`driver_call`], oob actions |
//! | `drydock_bmc_call_seconds` (histogram) | bmc | [`driver_call`], oob actions |
//! | `drydock_writer_batch_size` (histogram) | | [`writer_batch`] (tasks/writer.rs) |
//! | `drydock_kv_read_batch_size` (histogram) | | [`kv_read_batch`] (tasks/kv_reads.rs) |
//! | `drydock_task_version_batch_size` (histogram) | | [`task_version_batch`] (api/task_versions.rs) |
//! | `drydock_subtasks_started_total` | via (`created`: created already running here, no claim; `claimed`: from the queue) | [`subtasks_started`] (tasks/dispatch.rs, tasks/executor.rs) |
//! | `drydock_http_requests_total` | method, route, status | [`super::http`] |
//! | `drydock_http_request_seconds` (histogram) | method, route, status | [`super::http`] |
//!
//! Gauges are read at scrape time from the engine and the store:
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `drydock_tasks` | action, status, result | tasks in the store |
//! | `drydock_queue_depth` | queue (`tasks`, `writer`, `kv`, `backlog`) | queued tasks; writes waiting for the writer; driver key-value writes not yet stored; subtasks created running here that wait for a call slot |
//! | `drydock_calls_in_flight` | | driver calls running on this instance |
//! | `drydock_leader` | | 1 while this instance leads |
//! | `drydock_leader_epoch` | | the fencing epoch this instance holds |
//! | `drydock_driver_active` | driver, version | 1 per driver version serving calls |
//!
//! The outcome of a driver call is `success` or the error's kind
//! ([`crate::drivers::CallError::kind`]). A BMC is the node's oob address
//! (its name when it has none). Label values come from the operator's own
//! data (driver names, node addresses), never from a request.

use crate::api::AppState;
use crate::api::auth::{Authorized, HealthData};
use crate::drivers::{Action, CallError, Interface};
use crate::model;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Driver calls, by driver, action and outcome.
pub const DRIVER_CALLS: &str = "drydock_driver_calls_total";
/// Driver call latency in seconds, by driver, action and outcome.
pub const DRIVER_CALL_SECONDS: &str = "drydock_driver_call_seconds";
/// Oob driver calls per BMC.
pub const BMC_CALLS: &str = "drydock_bmc_calls_total";
/// Failed oob driver calls per BMC.
pub const BMC_ERRORS: &str = "drydock_bmc_errors_total";
/// Oob driver call latency per BMC, in seconds.
pub const BMC_CALL_SECONDS: &str = "drydock_bmc_call_seconds";
/// Items (outcomes, messages, key-value writes) per writer batch.
pub const WRITER_BATCH_SIZE: &str = "drydock_writer_batch_size";
/// Driver key-value reads answered by one gathered batch.
pub const KV_READ_BATCH_SIZE: &str = "drydock_kv_read_batch_size";
/// `GET /tasks/{id}` version reads answered by one gathered statement.
pub const TASK_VERSION_BATCH_SIZE: &str = "drydock_task_version_batch_size";
/// API requests, by method, matched route and status.
pub const HTTP_REQUESTS: &str = "drydock_http_requests_total";
/// API request latency in seconds, by method, matched route and status.
pub const HTTP_REQUEST_SECONDS: &str = "drydock_http_request_seconds";
/// Tasks in the store, by action, status and result.
pub const TASKS: &str = "drydock_tasks";
/// Queue depths, by queue.
pub const QUEUE_DEPTH: &str = "drydock_queue_depth";
/// Driver calls in flight on this instance.
pub const CALLS_IN_FLIGHT: &str = "drydock_calls_in_flight";
/// 1 while this instance is the leader.
pub const LEADER: &str = "drydock_leader";
/// The fencing epoch this instance holds.
pub const LEADER_EPOCH: &str = "drydock_leader_epoch";
/// 1 per active driver version.
pub const DRIVER_ACTIVE: &str = "drydock_driver_active";
/// Subtasks started on this instance, by how they reached the executor.
pub const SUBTASKS_STARTED: &str = "drydock_subtasks_started_total";
/// Reads of finished tasks answered from the API's cache, by `hit`.
pub const TASK_CACHE: &str = "drydock_finished_task_cache_total";

/// Latency buckets (seconds) of every `_seconds` histogram: BMCs answer in
/// milliseconds to minutes.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Buckets of the writer's batch sizes.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// One series' labels.
type Labels = Vec<(&'static str, String)>;

/// The label sets a scrape-time gauge was set for, per metric: a set that
/// is gone (a purged task kind, a replaced driver version) is set to 0.
static SEEN: Mutex<Vec<(&'static str, Labels)>> = Mutex::new(Vec::new());

/// Sets gauge `name` for each of `current` (labels, value) and 0 for label
/// sets it had at an earlier scrape but not now.
fn set_all(name: &'static str, current: Vec<(Labels, f64)>) {
    let mut seen = SEEN.lock().expect("gauge labels lock");
    for (_, labels) in seen.iter().filter(|(n, _)| *n == name) {
        if !current.iter().any(|(l, _)| l == labels) {
            metrics::gauge!(name, labels).set(0.0);
        }
    }
    for (labels, value) in current {
        metrics::gauge!(name, &labels).set(value);
        if !seen.iter().any(|(n, l)| *n == name && *l == labels) {
            seen.push((name, labels));
        }
    }
}

/// Installs the process-wide Prometheus recorder (once; later calls return
/// the same handle). `None` when another recorder was installed first (an
/// embedding program's): then `/metrics` answers 503.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(WRITER_BATCH_SIZE.into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(KV_READ_BATCH_SIZE.into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(TASK_VERSION_BATCH_SIZE.into()),
                        BATCH_BUCKETS,
                    )
                })
                .map_err(|e| e.to_string())
                .and_then(|b| b.install_recorder().map_err(|e| e.to_string()));
            match built {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed: /metrics is unavailable");
                    None
                }
            }
        })
        .as_ref()
}

/// Records one driver call: by driver, action and outcome, and for oob
/// actions by BMC.
pub fn driver_call(
    driver: &str,
    action: Action,
    node: Option<&model::Node>,
    result: &Result<serde_json::Value, CallError>,
    elapsed: Duration,
) {
    let outcome = match result {
        Ok(_) => "success",
        Err(e) => e.kind(),
    };
    let labels = [
        ("driver", driver.to_owned()),
        ("action", action.name().to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!(DRIVER_CALLS, &labels).increment(1);
    metrics::histogram!(DRIVER_CALL_SECONDS, &labels).record(elapsed.as_secs_f64());
    if action.interface() == Interface::Oob
        && let Some(n) = node
    {
        let bmc = n.oob.address.clone().unwrap_or_else(|| n.name.clone());
        metrics::counter!(BMC_CALLS, "bmc" => bmc.clone()).increment(1);
        if result.is_err() {
            metrics::counter!(BMC_ERRORS, "bmc" => bmc.clone()).increment(1);
        }
        metrics::histogram!(BMC_CALL_SECONDS, "bmc" => bmc).record(elapsed.as_secs_f64());
    }
}

/// Records the size of one writer batch (outcomes, messages and key-value
/// writes).
pub fn writer_batch(items: usize) {
    metrics::histogram!(WRITER_BATCH_SIZE).record(items as f64);
}

/// Records the size of one gathered batch of driver key-value reads.
pub fn kv_read_batch(reads: usize) {
    metrics::histogram!(KV_READ_BATCH_SIZE).record(reads as f64);
}

/// Records how many `GET /tasks/{id}` version reads one statement answered.
pub fn task_version_batch(reads: usize) {
    metrics::histogram!(TASK_VERSION_BATCH_SIZE).record(reads as f64);
}

/// Counts `n` subtasks started on this instance, `via` `created` (created
/// already running here) or `claimed` (from the queue).
pub fn subtasks_started(via: &'static str, n: u64) {
    metrics::counter!(SUBTASKS_STARTED, "via" => via).increment(n);
}

/// Counts one read of a finished task's dict: from the cache or not.
pub fn task_cache(hit: bool) {
    metrics::counter!(TASK_CACHE, "hit" => if hit { "true" } else { "false" }).increment(1);
}

/// Sets the scrape-time gauges from the engine and the store.
async fn refresh_gauges(state: &AppState) {
    let engine = &state.engine;
    let lead = engine.leadership().view();
    metrics::gauge!(LEADER).set(if lead.is_leader { 1.0 } else { 0.0 });
    metrics::gauge!(LEADER_EPOCH).set(engine.leadership().epoch() as f64);
    metrics::gauge!(CALLS_IN_FLIGHT).set(engine.inflight() as f64);
    let (writes, kv) = engine.writes_waiting();
    metrics::gauge!(QUEUE_DEPTH, "queue" => "writer").set(writes as f64);
    metrics::gauge!(QUEUE_DEPTH, "queue" => "kv").set(kv as f64);
    metrics::gauge!(QUEUE_DEPTH, "queue" => "backlog").set(engine.backlog() as f64);
    let active = engine
        .drivers()
        .all()
        .iter()
        .map(|d| {
            let info = d.driver.info();
            let labels = vec![
                ("driver", info.name.clone()),
                ("version", info.version.clone()),
            ];
            (labels, 1.0)
        })
        .collect();
    set_all(DRIVER_ACTIVE, active);
    match engine.store().count_tasks().await {
        Ok(rows) => {
            let queued: i64 = rows
                .iter()
                .filter(|r| r.status == crate::store::TaskStatus::Queued)
                .map(|r| r.count)
                .sum();
            let tasks = rows
                .into_iter()
                .map(|r| {
                    let labels = vec![
                        ("action", r.action),
                        ("status", r.status.as_str().to_owned()),
                        ("result", r.result.as_str().to_owned()),
                    ];
                    (labels, r.count as f64)
                })
                .collect();
            set_all(TASKS, tasks);
            metrics::gauge!(QUEUE_DEPTH, "queue" => "tasks").set(queued as f64);
        }
        Err(e) => tracing::debug!(error = %e, "counting tasks for /metrics failed"),
    }
}

/// Renders every metric in Prometheus' text format.
pub async fn render(state: &AppState) -> Response {
    let Some(handle) = install() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response();
    };
    refresh_gauges(state).await;
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// `GET /metrics` on the API listener: needs a token allowed
/// `physical_provisioner:health_data`.
pub async fn scrape_authorized(
    _caller: Authorized<HealthData>,
    State(state): State<AppState>,
) -> Response {
    render(&state).await
}

/// `GET /metrics` on the separate metrics listener (`[observe]
/// metrics_listen`): open, for a private network.
pub async fn scrape_open(State(state): State<AppState>) -> Response {
    render(&state).await
}

/// The router of the separate metrics listener: `GET /metrics` only.
pub fn open_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape_open))
        .with_state(state)
}
