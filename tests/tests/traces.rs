//! Traces end to end: an in-process OTLP receiver (HTTP/protobuf, decoded
//! with `opentelemetry-proto`; it stands in for a collector), the process's
//! subscriber exporting to it, and a `power_cycle_node` task created by a
//! request carrying a W3C `traceparent`. Every span of that task (the
//! request, the task, each subtask, each driver call with its task id) must
//! arrive in the caller's trace, parented as a tree.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
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
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(export))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let _logs =
        drydock::telemetry::init_with(false, Some(&format!("http://{collector}/v1/traces")));

    let dir = drydock_tests::temp_dir("drydock-traces");
    let mut cfg = Config {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        data_dir: dir.clone(),
        design_dir: None,
        tokens: vec![TokenConfig {
            name: "operator".into(),
            role: "operator".into(),
            token: Some(TOKEN.into()),
            token_env: None,
        }],
        ..Config::default()
    };
    cfg.drivers.insert(
        "sim".into(),
        DriverSettings {
            settings: [("delay_ms".to_string(), "0".to_string())].into(),
            ..DriverSettings::default()
        },
    );
    let server = drydock::server::start(cfg).await.expect("drydock starts");
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
    let has_task_span = |spans: &[Span]| {
        spans
            .iter()
            .any(|s| s.name == "task" && attr(s, "task.id").as_deref() == Some(id.as_str()))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let wait = received.notify.notified();
        tokio::task::spawn_blocking(drydock::observe::traces::flush)
            .await
            .unwrap();
        if has_task_span(&received.spans.lock().unwrap()) {
            break;
        }
        assert!(
            tokio::time::timeout_at(deadline, wait).await.is_ok(),
            "no span of task {id} exported"
        );
    }

    let spans: Vec<Span> = received.spans.lock().unwrap().clone();
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
