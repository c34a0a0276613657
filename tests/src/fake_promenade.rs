//! A fake of Airship Promenade's node-labels API for the Promenade driver's
//! tests. **It is a fake, not Promenade**: written from Promenade's source
//! (`promenade/control/node_labels.py`, `promenade/kubeclient.py`,
//! `promenade/exceptions.py`, `promenade/utils/message.py`), with a map of
//! Kubernetes nodes and their labels standing in for the Kubernetes API.
//!
//! A real HTTP server on `127.0.0.1:0`, started in-process by a test.
//!
//! # What it models
//!
//! - `PUT /api/v1.0/node-labels/{node_name}` with a JSON object body: the
//!   node's labels become the body's, computed as Promenade's
//!   `_get_update_labels` does (new and changed labels set; labels not in the
//!   body removed, except those containing `kubernetes.io`; no patch when
//!   nothing changes), answering 200 with Promenade's `SuccessMessage`
//!   (`{"kind": "Status", "apiVersion": "v1.0", "status": "Success",
//!   "reason": "Update node labels", "code": "200 OK", ...}`).
//! - Errors as Promenade's `format_error_resp` writes them (Airship status
//!   documents with `message`, `reason`, `code`, `retry`): 401
//!   `Unauthenticated` without `X-Auth-Token` or with another token than the
//!   fake's; 400 `Invalid format error` for a body that is not a JSON object
//!   (or not `application/json`); 404 `Node not found` for a node Kubernetes
//!   does not have; 503 `Kubernetes API Error` when a test injects one.
//!
//! # What it does not model
//!
//! Keystone itself (one fixed token stands for a valid one), policy rules
//! beyond "authenticated", Promenade's other routes (join scripts, health,
//! validatedesign), label values that are not strings.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The token the fake accepts in `X-Auth-Token`.
pub const TOKEN: &str = "fake-keystone-token";

/// The Kubernetes side: nodes and their labels, plus injected failures.
#[derive(Debug, Default)]
pub struct Cluster {
    /// Labels by node name.
    pub nodes: BTreeMap<String, BTreeMap<String, String>>,
    /// Answer the next this many requests with 503 (Kubernetes API error).
    pub fail_next: u32,
    /// Patches sent to Kubernetes (node name, labels patch with `null` for a
    /// removal), in order.
    pub patches: Vec<(String, Value)>,
}

/// A running fake Promenade.
pub struct FakePromenade {
    /// Its API base, e.g. `http://127.0.0.1:PORT/api/v1.0`.
    pub url: String,
    /// The cluster behind it.
    pub cluster: Arc<Mutex<Cluster>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakePromenade {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakePromenade {
    /// Starts a fake whose Kubernetes cluster has `nodes`, each with labels.
    pub async fn start(nodes: &[(&str, &[(&str, &str)])]) -> Self {
        let mut cluster = Cluster::default();
        for (name, labels) in nodes {
            cluster.nodes.insert(
                name.to_string(),
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        let cluster = Arc::new(Mutex::new(cluster));
        let app = Router::new()
            .route("/api/v1.0/node-labels/{node_name}", put(node_labels))
            .with_state(cluster.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/api/v1.0"),
            cluster,
            task,
        }
    }

    /// The labels of `node` now.
    pub fn labels(&self, node: &str) -> Option<BTreeMap<String, String>> {
        self.cluster.lock().unwrap().nodes.get(node).cloned()
    }
}

/// Promenade's error document (`format_error_resp`).
fn error(status: StatusCode, title: &str, description: &str, retry: bool) -> Response {
    let code = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let body = json!({
        "kind": "status",
        "apiVersion": "v1.0",
        "metadata": {},
        "status": "Failure",
        "message": description,
        "reason": title,
        "details": {
            "errorType": "PromenadeException",
            "errorCount": 1,
            "messageList": [{"message": description, "error": true}],
        },
        "code": code,
        "retry": retry,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `_get_update_labels`: the patch turning `existing` into `input`.
fn update_labels(
    existing: &BTreeMap<String, String>,
    input: &Map<String, Value>,
) -> Map<String, Value> {
    let mut patch = Map::new();
    for (k, v) in input {
        if v.is_null() {
            continue;
        }
        if existing.get(k).map(|e| Value::String(e.clone())) != Some(v.clone()) {
            patch.insert(k.clone(), v.clone());
        }
    }
    for k in existing.keys() {
        if !input.contains_key(k) && !k.contains("kubernetes.io") {
            patch.insert(k.clone(), Value::Null);
        }
    }
    patch
}

async fn node_labels(
    State(cluster): State<Arc<Mutex<Cluster>>>,
    Path(node_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get("x-auth-token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthenticated",
            "Credentials are not established",
            false,
        );
    }
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) if json_type => m,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid format error",
                "Missing input: labels dict",
                false,
            );
        }
    };
    let mut c = cluster.lock().unwrap();
    if c.fail_next > 0 {
        c.fail_next -= 1;
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Kubernetes API Error",
            "Kubernetes API Error",
            false,
        );
    }
    let Some(existing) = c.nodes.get(&node_name).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "Node not found",
            "Node not found",
            false,
        );
    };
    let patch = update_labels(&existing, &input);
    if !patch.is_empty() {
        let labels = c.nodes.get_mut(&node_name).expect("checked above");
        for (k, v) in &patch {
            match v {
                Value::String(s) => {
                    labels.insert(k.clone(), s.clone());
                }
                Value::Null => {
                    labels.remove(k);
                }
                other => {
                    labels.insert(k.clone(), other.to_string());
                }
            }
        }
        c.patches.push((node_name.clone(), Value::Object(patch)));
    }
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1.0",
        "metadata": {},
        "details": {"errorCount": 0, "messageList": []},
        "status": "Success",
        "message": "",
        "reason": "Update node labels",
        "code": "200 OK",
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
