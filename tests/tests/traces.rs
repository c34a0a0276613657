//! Traces end to end: an in-process OTLP receiver (HTTP/protobuf, decoded
//! with `opentelemetry-proto`; it stands in for a collector), the process's
//! subscriber exporting to it, and tasks created by requests carrying a W3C
//! `traceparent`:
//!
//! - a `power_cycle_node` task: every span of it (the request, the task,
//!   each subtask, each driver call with its task id) arrives in the
//!   caller's trace, parented as a tree;
//! - a `prepare_nodes` orchestration on two instances sharing one Postgres
//!   (the one taking the request leads and advances the steps but runs no
//!   driver call, the other runs every call): its steps and their calls
//!   land in the caller's trace, each step under the task's span and each
//!   call under its step's, through the `traceparent` stored with each
//!   task (the only parent step and call spans take when it is set).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use drydock::config::{Config, DriverSettings, TokenConfig};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

const TOKEN: &str = "traces-operator-token-0123456789";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// The orchestration's caller's trace.
const ORCH_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const ORCH_CALLER_SPAN: &str = "b7ad6b7169203331";

/// What the receiver got: every span of every export request.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    notify: Arc<tokio::sync::Notify>,
}

async fn export(State(r): State<Received>, body: Bytes) -> Vec<u8> {
    let req = ExportTraceServiceRequest::decode(body).expect("an OTLP export request");
    let spans = req
        .resource_spans
        .into_iter()
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans);
    r.spans.lock().unwrap().extend(spans);
    r.notify.notify_waiters();
    ExportTraceServiceResponse::default().encode_to_vec()
}

/// The receiver, on a thread of its own (shared by this file's tests, which
/// run on runtimes of their own), and the process's subscriber exporting
/// to it (installed once).
fn collector() -> &'static Received {
    static COLLECTOR: OnceLock<Received> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let received = Received::default();
        let state = received.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new()
                    .route("/v1/traces", axum::routing::post(export))
                    .with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().expect("the receiver listens");
        // The log writer lives as long as the test process.
        std::mem::forget(drydock::telemetry::init_with(
            false,
            Some(&format!("http://{addr}/v1/traces")),
        ));
        received
    })
}

/// Flushes the exporter until `done` holds for the spans received.
async fn wait_for(what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    let received = collector();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let wait = received.notify.notified();
        tokio::task::spawn_blocking(drydock::observe::traces::flush)
            .await
            .unwrap();
        let spans = received.spans.lock().unwrap().clone();
        if done(&spans) {
            return spans;
        }
        assert!(
            tokio::time::timeout_at(deadline, wait).await.is_ok(),
            "{what}: not exported"
        );
    }
}

/// A server (the sim driver, no delay, no fleet sync) with an operator
/// token, on `database` (SQLite in its directory when `None`).
async fn server(
    dir: &std::path::Path,
    database: Option<&str>,
    tweak: impl FnOnce(&mut Config),
) -> drydock::server::Server {
    let mut cfg = Config {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        data_dir: dir.to_path_buf(),
        database_url: database.map(str::to_owned),
        design_dir: Some(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("examples"),
        ),
        tokens: vec![TokenConfig::inline("operator", "operator", TOKEN)],
        ..Config::default()
    };
    cfg.fleet.enabled = false;
    // The sample site's BMC and switch passwords.
    cfg.secrets.insert("bmc-password", "calvin");
    cfg.secrets.insert("switch-password", "arista");
    cfg.drivers.insert(
        "sim".into(),
        DriverSettings {
            settings: [("delay_ms".to_string(), "0".to_string())].into(),
            ..DriverSettings::default()
        },
    );
    tweak(&mut cfg);
    drydock::server::start(cfg).await.expect("drydock starts")
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(v) => Some(v.clone()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_s_spans_continue_the_caller_s_trace() {
    collector();
    let dir = drydock_tests::temp_dir("drydock-traces");
    let server = server(&dir, None, |_| {}).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    for i in 0..2 {
        let r = http
            .post(format!("{base}/api/v1.0/nodes"))
            .bearer_auth(TOKEN)
            .json(&json!({"name": format!("tr-{i}"),
                "oob": {"type": "sim", "address": format!("10.3.0.{}", 10 + i)},
                "credentials": {"username": "root", "password": "calvin"}}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let r = http
        .post(format!("{base}/api/v1.0/tasks"))
        .bearer_auth(TOKEN)
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({"action": "power_cycle_node", "node_filter": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let task: Value = r.json().await.unwrap();
    let id = task["task_id"].as_str().unwrap().to_owned();
    let done = server
        .engine
        .wait_finished(id.parse().unwrap(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.result_status.as_str(), "success");

    // Flush until the task's own span (closed when it finished) arrived.
    let spans = wait_for(&format!("the span of task {id}"), |spans| {
        spans
            .iter()
            .any(|s| s.name == "task" && attr(s, "task.id").as_deref() == Some(id.as_str()))
    })
    .await;
    let trace = hex::decode(TRACE_ID).unwrap();
    let ours: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
    let find = |name: &'static str| ours.iter().filter(move |s| s.name == name).copied();
    // The request continues the caller's span.
    let request = find("http_request")
        .find(|s| attr(s, "http.route").as_deref() == Some("/api/v1.0/tasks"))
        .expect("the request's span in the caller's trace");
    assert_eq!(hex::encode(&request.parent_span_id), CALLER_SPAN);
    // The task under the request.
    let top = find("task")
        .find(|s| attr(s, "task.id").as_deref() == Some(id.as_str()))
        .expect("the task's span in the caller's trace");
    assert_eq!(top.parent_span_id, request.span_id);
    // One subtask span per node under the task, one driver call (naming
    // its subtask) under each.
    let subs: Vec<&Span> = find("task")
        .filter(|s| attr(s, "task.parent_id").as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(subs.len(), 2, "{ours:#?}");
    for sub in &subs {
        assert_eq!(sub.parent_span_id, top.span_id);
        assert_eq!(attr(sub, "action").as_deref(), Some("power_cycle_node"));
        let call = find("driver_call")
            .find(|c| c.parent_span_id == sub.span_id)
            .expect("a driver call under the subtask");
        assert_eq!(attr(call, "task.id"), attr(sub, "task.id"));
        assert_eq!(attr(call, "driver").as_deref(), Some("sim"));
        assert_eq!(attr(call, "node"), attr(sub, "node"));
    }
    let mut nodes: Vec<String> = subs.iter().filter_map(|s| attr(s, "node")).collect();
    nodes.sort();
    assert_eq!(nodes, ["tr-0", "tr-1"]);

    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestration_on_two_instances_lands_in_one_trace() {
    collector();
    let db = drydock_tests::db::unique("drydock_traces");
    let url = drydock::store::testing::create_pg_database(&drydock_tests::db::pg_admin_url(), &db)
        .await
        .expect("Postgres is needed for this test");
    let (dir_a, dir_b) = (
        drydock_tests::temp_dir("drydock-traces-a"),
        drydock_tests::temp_dir("drydock-traces-b"),
    );
    // A takes the request and leads (it advances the orchestration: its
    // steps' spans are opened there) but runs no driver call; B, started
    // once A leads, runs every call.
    let a = server(&dir_a, Some(&url), |c| c.limits.max_concurrency = 0).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while !a.engine.leadership().is_leader() {
            a.engine.leadership().changed().await;
        }
    })
    .await
    .expect("A leads");
    let b = server(&dir_b, Some(&url), |_| {}).await;

    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1.0/tasks", a.addr))
        .bearer_auth(TOKEN)
        .header(
            "traceparent",
            format!("00-{ORCH_TRACE_ID}-{ORCH_CALLER_SPAN}-01"),
        )
        .json(
            &json!({"action": "prepare_nodes", "design_ref": "file:site.yaml",
            "node_filter": {"filter_set": [{"filter_type": "union",
                "node_names": ["cmp01", "cmp02"]}]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let task: Value = r.json().await.unwrap();
    let id = task["task_id"].as_str().unwrap().to_owned();
    let done = a
        .engine
        .wait_finished(id.parse().unwrap(), Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(done.result_status.as_str(), "success", "{done:?}");

    // The task's span closes last (its steps and their calls before it).
    let spans = wait_for(&format!("the span of task {id}"), |spans| {
        spans
            .iter()
            .any(|s| s.name == "task" && attr(s, "task.id").as_deref() == Some(id.as_str()))
    })
    .await;
    let trace = hex::decode(ORCH_TRACE_ID).unwrap();
    let ours: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
    // Every span of a task (a call retried by the executor has one per
    // claim), by task id.
    let mut of_task: HashMap<String, Vec<&Span>> = HashMap::new();
    for s in ours.iter().filter(|s| s.name == "task") {
        of_task
            .entry(attr(s, "task.id").unwrap())
            .or_default()
            .push(s);
    }
    let request = ours
        .iter()
        .find(|s| {
            s.name == "http_request" && attr(s, "http.route").as_deref() == Some("/api/v1.0/tasks")
        })
        .expect("the request's span in the caller's trace");
    assert_eq!(hex::encode(&request.parent_span_id), ORCH_CALLER_SPAN);
    let top = of_task[&id][0];
    assert_eq!(top.parent_span_id, request.span_id);

    // Each step (from the store) has its span under the task's, opened by
    // A; each of its calls, run by B, has its spans under the step's, with
    // its driver calls inside.
    let store = a.engine.store();
    let steps = store.subtasks(id.parse().unwrap()).await.unwrap();
    // prepare_nodes' six steps (the probe fails: the nodes are new).
    assert_eq!(steps.len(), 6, "{steps:#?}");
    let mut calls = 0;
    for step in &steps {
        assert_eq!(step.owner.as_deref(), Some(a.engine.instance_id()));
        let step_span = of_task
            .get(&step.id.to_string())
            .and_then(|s| s.first())
            .unwrap_or_else(|| panic!("no span of step {} in the trace", step.action));
        assert_eq!(step_span.parent_span_id, top.span_id, "{}", step.action);
        assert_eq!(
            attr(step_span, "action").as_deref(),
            Some(step.action.as_str())
        );
        // The step stores its own span's traceparent, its calls a copy.
        let stored = format!("00-{ORCH_TRACE_ID}-{}-01", hex::encode(&step_span.span_id));
        assert_eq!(step.traceparent.as_deref(), Some(stored.as_str()));
        for call in store.subtasks(step.id).await.unwrap() {
            assert_eq!(call.owner.as_deref(), Some(b.engine.instance_id()));
            assert_eq!(call.traceparent, step.traceparent);
            let spans = of_task.get(&call.id.to_string()).unwrap_or_else(|| {
                panic!("no span of {} call {} in the trace", call.action, call.id)
            });
            for s in spans {
                assert_eq!(s.parent_span_id, step_span.span_id, "{}", call.action);
                assert!(
                    ours.iter()
                        .any(|d| d.name == "driver_call" && d.parent_span_id == s.span_id),
                    "no driver call under {} call {}",
                    call.action,
                    call.id
                );
            }
            calls += 1;
        }
    }
    // Each step's call for each of the two nodes.
    assert_eq!(calls, 12);

    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
    drydock_tests::db::drop_postgres(&db).await;
    let _ = std::fs::remove_dir_all(dir_a);
    let _ = std::fs::remove_dir_all(dir_b);
}
