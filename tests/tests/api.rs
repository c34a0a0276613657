//! The REST API (`drydock::api`) through `router(state).oneshot(request)`
//! against a real engine: a fresh SQLite file per test, the bundled sim
//! driver, and three tokens (viewer, operator, admin).
//!
//! Every response checked here must carry a valid `X-Drydock-Req` (asserted
//! in [`Api::send`]); every test is bounded by [`TEST_TIMEOUT`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use drydock::api::{ApiToken, AppState, Auth, Role, router};
use drydock::drivers::{DriverConfig, DriverSet};
use drydock::store::{Store, Uuid};
use drydock::tasks::{Engine, EngineConfig};
use serde_json::{Value, json};
use sqlx::Connection;
use tower::ServiceExt;

const VIEWER: &str = "viewer-secret-token";
const OPERATOR: &str = "operator-secret-token";
const ADMIN: &str = "admin-secret-token";

/// How long any one test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a task may take to finish.
const TASK_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a test body with a time limit.
async fn bounded<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("test timed out")
}

/// One answer.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn req_id(&self) -> Uuid {
        Uuid::parse_str(self.header("x-drydock-req").expect("X-Drydock-Req")).expect("a UUID")
    }

    /// Asserts `status` and Drydock's error shape; returns the message.
    fn error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "body: {}", self.text);
        let v = self.json();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["retry"], status == StatusCode::SERVICE_UNAVAILABLE, "{v}");
        v["message"].as_str().expect("message").to_owned()
    }

    fn ok(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        if self.text.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

/// A router over a real engine and store.
struct Api {
    router: axum::Router,
    engine: Engine,
    store: Store,
    /// The API's read pool ([`AppState::reads`]).
    reads: Store,
    db: PathBuf,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.engine.shutdown();
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Api {
    async fn start() -> Api {
        Api::with_sim_settings(&[]).await
    }

    async fn with_sim_settings(settings: &[(&str, &str)]) -> Api {
        let db = std::env::temp_dir().join(format!("drydock-api-{}.db", Uuid::new_v4()));
        let store = Store::connect(&format!("sqlite:{}", db.display()))
            .await
            .expect("store");
        Api::over(store, db, settings).await
    }

    /// The API over `store` (`db`: its SQLite file, removed at the end).
    async fn over(store: Store, db: PathBuf, settings: &[(&str, &str)]) -> Api {
        let rt = drydock_tests::runtime();
        let sim = rt.load("sim", drydock::bundled::SIM).await.expect("sim");
        let mut drivers = DriverSet::new();
        let config = DriverConfig {
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..DriverConfig::default()
        };
        drivers.add(sim, Arc::new(config)).expect("add sim");
        let engine = Engine::start(
            store.clone(),
            Arc::new(rt),
            Arc::new(drivers),
            EngineConfig {
                poll_interval: Duration::from_millis(50),
                retry_backoff: Duration::from_millis(10),
                ..EngineConfig::default()
            },
        )
        .await
        .expect("engine");
        let token = |name: &str, token: &str, role| ApiToken {
            name: name.into(),
            token: token.into(),
            role,
        };
        let auth = Auth::new(vec![
            token("viewer", VIEWER, Role::Viewer),
            token("operator", OPERATOR, Role::Operator),
            token("admin", ADMIN, Role::Admin),
        ]);
        let state = AppState::new(engine.clone(), Arc::new(auth));
        let reads = state.reads.clone();
        Api {
            router: router(state),
            engine,
            store,
            reads,
            db,
        }
    }

    /// Sends a request; every answer must carry a request id.
    async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        let reply = Reply {
            status,
            headers,
            text: String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
        };
        reply.req_id();
        reply
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        };
        self.send(req.expect("request")).await
    }

    async fn get(&self, uri: &str, token: &str) -> Reply {
        self.call("GET", uri, Some(token), None).await
    }

    async fn post(&self, uri: &str, token: &str, body: Value) -> Reply {
        self.call("POST", uri, Some(token), Some(body)).await
    }

    async fn register(&self, name: &str, extra: Value) -> Value {
        let mut body = json!({"name": name, "oob": {"type": "sim"}});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        self.post("/api/v1.0/nodes", OPERATOR, body)
            .await
            .ok(StatusCode::CREATED)
    }

    /// Queues a task; returns its id.
    async fn submit(&self, body: Value) -> String {
        let r = self.post("/api/v1.0/tasks", OPERATOR, body).await;
        let v = r.ok(StatusCode::CREATED);
        v["task_id"].as_str().expect("task_id").to_owned()
    }

    /// Polls the task every 50 ms until it is complete or terminated.
    async fn wait(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self
                .get(&format!("/api/v1.0/tasks/{id}"), VIEWER)
                .await
                .ok(StatusCode::OK);
            if v["status"] == "complete" || v["status"] == "terminated" {
                return v;
            }
            assert!(
                started.elapsed() < TASK_TIMEOUT,
                "task {id} did not finish in {TASK_TIMEOUT:?}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect();
    out.sort();
    out
}

// ----------------------------------------------------------------- open routes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_health_need_no_token() {
    bounded(async {
        let api = Api::start().await;
        for uri in ["/versions", "/api/v1.0/versions"] {
            let v = api.call("GET", uri, None, None).await.ok(StatusCode::OK);
            assert_eq!(
                v,
                json!({"v1.0": {"path": "/api/v1.0", "status": "stable"}})
            );
        }
        let r = api.call("GET", "/api/v1.0/health", None, None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.text.is_empty());
        // Health writes nothing.
        let tasks = api.get("/api/v1.0/tasks", VIEWER).await.ok(StatusCode::OK);
        assert_eq!(tasks, json!([]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_fresh_whatever_the_context_marker() {
    bounded(async {
        let api = Api::start().await;
        let marker = Uuid::new_v4();
        // Drydock: X-Drydock-Req is a new id per request; the marker is the
        // client's own correlation id.
        let mut seen = std::collections::HashSet::new();
        for uri in ["/api/v1.0/health", "/api/v1.0/tasks", "/api/v1.0/nowhere"] {
            let req = Request::get(uri)
                .header("X-Context-Marker", marker.to_string())
                .body(Body::empty())
                .unwrap();
            let id = api.send(req).await.req_id();
            assert_ne!(id, marker, "{uri}");
            assert!(seen.insert(id), "{uri}: {id} repeated");
        }
        let req = Request::get("/api/v1.0/health")
            .header("X-Context-Marker", "not-a-uuid")
            .body(Body::empty())
            .unwrap();
        let id = api.send(req).await.req_id();
        assert_ne!(id, marker);
        let a = api.call("GET", "/versions", None, None).await.req_id();
        let b = api.call("GET", "/versions", None, None).await.req_id();
        assert_ne!(a, b, "fresh ids differ");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_extended_reports_database_drivers_and_engine() {
    bounded(async {
        let api = Api::start().await;
        api.call("GET", "/api/v1.0/health/extended", None, None)
            .await
            .error(StatusCode::UNAUTHORIZED);
        let v = api
            .get("/api/v1.0/health/extended", VIEWER)
            .await
            .ok(StatusCode::OK);
        // Drydock's health Status, with ours under `instance`.
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["status"], "Success");
        assert_eq!(v["reason"], "HealthCheck");
        assert_eq!(v["code"], 200);
        assert_eq!(v["details"], json!({"errorCount": 0, "messageList": []}));
        let v = &v["instance"];
        assert_eq!(v["instance_id"], api.engine.instance_id());
        assert_eq!(v["leader"], api.engine.instance_id());
        assert_eq!(v["database"], json!({"backend": "sqlite", "ok": true}));
        assert_eq!(v["inflight"], 0);
        let sim = &v["drivers"][0];
        assert_eq!(sim["name"], "sim");
        assert_eq!(sim["oob_types"], json!(["sim"]));
        assert_eq!(
            strings(&sim["interfaces"]),
            ["network", "node", "oob", "provisioner"]
        );
        assert!(sim["version"].is_string());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_when_the_database_is_gone() {
    bounded(async {
        let api = Api::start().await;
        api.store.close().await;
        let msg = api
            .call("GET", "/api/v1.0/health", None, None)
            .await
            .error(StatusCode::SERVICE_UNAVAILABLE);
        assert!(msg.contains("database"), "{msg}");
        let r = api.get("/api/v1.0/health/extended", VIEWER).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        let v = r.json();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["code"], 503);
        assert_eq!(v["details"]["errorCount"], 1);
        assert_eq!(
            v["details"]["messageList"][0],
            json!({"message": "Unable to connect to database", "error": true,
                "kind": "SimpleMessage"})
        );
        assert_eq!(v["instance"]["database"]["ok"], false);
        assert!(v["instance"]["database"]["error"].is_string());
        // Other routes: 503 with retry, no internal text.
        let msg = api
            .get("/api/v1.0/tasks", VIEWER)
            .await
            .error(StatusCode::SERVICE_UNAVAILABLE);
        assert!(!msg.to_lowercase().contains("pool"), "{msg}");
    })
    .await;
}

// ------------------------------------------------------------ auth and routing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_tokens_get_401() {
    bounded(async {
        let api = Api::start().await;
        let r = api.call("GET", "/api/v1.0/tasks", None, None).await;
        r.error(StatusCode::UNAUTHORIZED);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let r = api
            .call("GET", "/api/v1.0/nodes", Some("wrong-token"), None)
            .await;
        r.error(StatusCode::UNAUTHORIZED);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        // A body is not looked at before the token.
        api.call("POST", "/api/v1.0/tasks", None, Some(json!({"bogus": 1})))
            .await
            .error(StatusCode::UNAUTHORIZED);
        let req = Request::get("/api/v1.0/tasks")
            .header(header::AUTHORIZATION, format!("Basic {VIEWER}"))
            .body(Body::empty())
            .unwrap();
        api.send(req).await.error(StatusCode::UNAUTHORIZED);
        // drydock_client's header and a lower-case scheme both work.
        let req = Request::get("/api/v1.0/tasks")
            .header("X-Auth-Token", VIEWER)
            .body(Body::empty())
            .unwrap();
        api.send(req).await.ok(StatusCode::OK);
        let req = Request::get("/api/v1.0/tasks")
            .header(header::AUTHORIZATION, format!("bearer {VIEWER}"))
            .body(Body::empty())
            .unwrap();
        api.send(req).await.ok(StatusCode::OK);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_with_403() {
    bounded(async {
        let api = Api::start().await;
        let task = json!({"action": "power_on_node"});
        let msg = api
            .post("/api/v1.0/tasks", VIEWER, task.clone())
            .await
            .error(StatusCode::FORBIDDEN);
        assert!(msg.contains("physical_provisioner:create_task"), "{msg}");
        // Role checks come before body checks.
        api.post("/api/v1.0/tasks", VIEWER, json!({"bogus": 1}))
            .await
            .error(StatusCode::FORBIDDEN);
        api.post(
            "/api/v1.0/nodes",
            VIEWER,
            json!({"name": "n1", "oob": {"type": "sim"}}),
        )
        .await
        .error(StatusCode::FORBIDDEN);
        api.call("DELETE", "/api/v1.0/nodes/n1", Some(VIEWER), None)
            .await
            .error(StatusCode::FORBIDDEN);
        let id = Uuid::new_v4();
        api.call(
            "POST",
            &format!("/api/v1.0/tasks/{id}/cancel"),
            Some(VIEWER),
            None,
        )
        .await
        .error(StatusCode::FORBIDDEN);
        let msg = api
            .call("DELETE", "/api/v1.0/tasks?days=1", Some(OPERATOR), None)
            .await
            .error(StatusCode::FORBIDDEN);
        assert!(msg.contains("physical_provisioner:delete_tasks"), "{msg}");
        // What each role may do.
        api.post("/api/v1.0/nodefilter", VIEWER, json!({"node_filter": null}))
            .await
            .ok(StatusCode::OK);
        api.post("/api/v1.0/tasks", ADMIN, task)
            .await
            .ok(StatusCode::CREATED);
        api.call("DELETE", "/api/v1.0/tasks?days=1", Some(ADMIN), None)
            .await
            .ok(StatusCode::OK);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_get_drydock_errors() {
    bounded(async {
        let api = Api::start().await;
        for uri in ["/api/v1.0/nothing", "/nothing", "/api/v2.0/tasks"] {
            let msg = api.get(uri, VIEWER).await.error(StatusCode::NOT_FOUND);
            assert!(msg.contains(uri), "{msg}");
        }
        api.call("GET", "/api/v1.0/nothing", None, None)
            .await
            .error(StatusCode::NOT_FOUND);
        api.call("PUT", "/api/v1.0/tasks", Some(OPERATOR), Some(json!({})))
            .await
            .error(StatusCode::METHOD_NOT_ALLOWED);
        api.call("DELETE", "/api/v1.0/health", None, None)
            .await
            .error(StatusCode::METHOD_NOT_ALLOWED);
        // An axum rejection (a path that is not UTF-8) also takes the shape.
        api.get("/api/v1.0/nodes/%FF", VIEWER)
            .await
            .error(StatusCode::BAD_REQUEST);
    })
    .await;
}

// ----------------------------------------------------------------------- tasks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_requests_are_validated() {
    bounded(async {
        let api = Api::start().await;
        let msg = api
            .get("/api/v1.0/tasks/not-a-uuid", VIEWER)
            .await
            .error(StatusCode::BAD_REQUEST);
        assert_eq!(msg, "task id `not-a-uuid` is not a UUID");
        let unknown = Uuid::new_v4();
        for uri in [
            format!("/api/v1.0/tasks/{unknown}"),
            format!("/api/v1.0/tasks/{unknown}/builddata"),
        ] {
            api.get(&uri, VIEWER).await.error(StatusCode::NOT_FOUND);
        }
        api.get("/api/v1.0/tasks/xyz/builddata", VIEWER)
            .await
            .error(StatusCode::BAD_REQUEST);

        // Bodies.
        let raw = |ct: Option<&str>, body: &str| {
            let mut b = Request::post("/api/v1.0/tasks")
                .header(header::AUTHORIZATION, format!("Bearer {OPERATOR}"));
            if let Some(ct) = ct {
                b = b.header(header::CONTENT_TYPE, ct);
            }
            b.body(Body::from(body.to_owned())).unwrap()
        };
        let msg = api
            .send(raw(Some("application/json"), "{\"action\": "))
            .await
            .error(StatusCode::BAD_REQUEST);
        assert!(msg.contains("line 1"), "{msg}");
        api.send(raw(Some("application/json"), ""))
            .await
            .error(StatusCode::BAD_REQUEST);
        api.send(raw(None, "{\"action\": \"power_on_node\"}"))
            .await
            .error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        api.send(raw(Some("text/plain"), "{\"action\": \"power_on_node\"}"))
            .await
            .error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let big = format!("{{\"action\": \"{}\"}}", "x".repeat(2 << 20));
        api.send(raw(Some("application/json"), &big))
            .await
            .error(StatusCode::PAYLOAD_TOO_LARGE);

        let bad = |body: Value, needle: &'static str| {
            let api = &api;
            async move {
                let msg = api
                    .post("/api/v1.0/tasks", OPERATOR, body.clone())
                    .await
                    .error(StatusCode::BAD_REQUEST);
                assert!(msg.contains(needle), "{body}: {msg}");
            }
        };
        // Drydock ignores keys it does not know.
        api.post(
            "/api/v1.0/tasks",
            OPERATOR,
            json!({"action": "power_on_node", "colour": "red"}),
        )
        .await
        .ok(StatusCode::CREATED);
        bad(json!({"design_ref": "file:///x"}), "action").await;
        bad(json!({"action": "make_coffee"}), "make_coffee").await;
        bad(json!({"action": "deploy_nodes"}), "design_ref").await;
        bad(
            json!({"action": "power_on_node", "node_filter": {"filter_set_type": "xor"}}),
            "node_filter",
        )
        .await;
        bad(
            json!({"action": "set_node_boot", "params": {"boot": {"device": "floppy"}}}),
            "params",
        )
        .await;
        bad(
            json!({"action": "power_on_node", "params": {"nonsense": true}}),
            "params",
        )
        .await;
        bad(json!({"action": 5}), "invalid").await;
        bad(json!([1, 2]), "invalid").await;

        // Query strings.
        for uri in [
            "/api/v1.0/tasks?limit=0",
            "/api/v1.0/tasks?limit=10001",
            "/api/v1.0/tasks?limit=ten",
            "/api/v1.0/tasks?status=sleeping",
            "/api/v1.0/tasks?offset=-1",
        ] {
            api.get(uri, VIEWER).await.error(StatusCode::BAD_REQUEST);
        }
        let id = api.submit(json!({"action": "power_on_node"})).await;
        for q in [
            "layers=two",
            "layers=-2",
            "builddata=maybe",
            "subtaskerrors=yes",
        ] {
            let msg = api
                .get(&format!("/api/v1.0/tasks/{id}?{q}"), VIEWER)
                .await
                .error(StatusCode::BAD_REQUEST);
            let param = q.split('=').next().unwrap();
            assert!(msg.contains(param), "{msg}");
        }
        // DELETE /tasks without a usable `days` keeps Drydock's 90 days.
        for q in ["", "?days=", "?days=-1", "?days=soon", "?dayz=3"] {
            let v = api
                .call("DELETE", &format!("/api/v1.0/tasks{q}"), Some(ADMIN), None)
                .await
                .ok(StatusCode::OK);
            assert_eq!(v["days"], 90, "{q}: {v}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_and_purge_tasks() {
    bounded(async {
        let api = Api::start().await;
        api.register("n1", json!({})).await;
        let req = Request::post("/api/v1.0/tasks")
            .header(header::AUTHORIZATION, format!("Bearer {OPERATOR}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-End-User", "alice")
            .body(Body::from(
                json!({"action": "power_on_node", "design_ref": "file:///site.yaml",
                       "node_filter": {"filter_set": [{"node_names": ["n1"]}]}})
                .to_string(),
            ))
            .unwrap();
        let r = api.send(req).await;
        let first = r.ok(StatusCode::CREATED);
        let id = first["task_id"].as_str().unwrap().to_owned();
        assert_eq!(
            r.header("location"),
            Some(format!("/api/v1.0/tasks/{id}").as_str())
        );
        assert_eq!(first["kind"], "Task");
        // Drydock's Task.to_dict(): apiVersion v1.
        assert_eq!(first["apiVersion"], "v1");
        assert_eq!(first["retry"], 0);
        assert_eq!(first["action"], "power_on_node");
        assert_eq!(first["status"], "queued");
        assert_eq!(first["created_by"], "operator/alice");
        assert_eq!(first["design_ref"], "file:///site.yaml");
        assert_eq!(
            first["node_filter"]["filter_set"][0]["node_names"],
            json!(["n1"])
        );
        assert_eq!(first["parent_task_id"], Value::Null);
        assert_eq!(first["subtask_id_list"], json!([]));
        assert_eq!(first["result"]["kind"], "Status");
        assert_eq!(first["result"]["status"], "incomplete");
        // Drydock's links are absolute: none without a public_url.
        assert_eq!(first["result"]["links"], json!([]));
        assert_eq!(first["result"]["details"]["errorCount"], 0);
        let created = first["created"].as_str().unwrap();
        assert!(created.ends_with('Z') && created.contains('T'), "{created}");
        assert!(
            created
                .parse::<drydock::store::DateTime<drydock::store::Utc>>()
                .is_ok()
        );

        let second = api.submit(json!({"action": "power_off_node"})).await;
        let done = api.wait(&id).await;
        let done2 = api.wait(&second).await;
        assert_eq!(done["result"]["status"], "success");

        // Drydock lists every task, subtasks included, newest first.
        let list = api.get("/api/v1.0/tasks", VIEWER).await.ok(StatusCode::OK);
        let list = list.as_array().unwrap();
        let top: Vec<&str> = list
            .iter()
            .filter(|t| t["parent_task_id"].is_null())
            .map(|t| t["task_id"].as_str().unwrap())
            .collect();
        assert_eq!(top, [second.as_str(), id.as_str()], "newest first");
        let subtasks = strings(&done["subtask_id_list"]);
        assert_eq!(subtasks.len(), 1);
        assert_eq!(
            list.len(),
            2 + subtasks.len() + strings(&done2["subtask_id_list"]).len()
        );
        let sub = list
            .iter()
            .find(|t| t["task_id"] == subtasks[0].as_str())
            .expect("the subtask is listed");
        assert_eq!(sub["parent_task_id"], id.as_str());
        let parent = list.iter().find(|t| t["task_id"] == id.as_str()).unwrap();
        assert_eq!(parent["subtask_id_list"], done["subtask_id_list"]);
        let one = api
            .get("/api/v1.0/tasks?limit=1", VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(one.as_array().unwrap().len(), 1);
        assert_eq!(one[0]["task_id"], list[0]["task_id"]);
        let page2 = api
            .get("/api/v1.0/tasks?limit=1&offset=1", VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(page2[0]["task_id"], list[1]["task_id"]);
        // A partial page still names each task's subtasks.
        let parent_page = api
            .get("/api/v1.0/tasks?status=complete&limit=1000", VIEWER)
            .await
            .ok(StatusCode::OK);
        let p = parent_page
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task_id"] == id.as_str())
            .unwrap();
        assert_eq!(p["subtask_id_list"], done["subtask_id_list"]);

        let complete = api
            .get("/api/v1.0/tasks?status=complete", VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(complete.as_array().unwrap().len(), list.len());
        let queued = api
            .get("/api/v1.0/tasks?status=queued", VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(queued, json!([]));

        // Nothing is older than a day; everything finished is older than 0 days.
        let v = api
            .call("DELETE", "/api/v1.0/tasks?days=1", Some(ADMIN), None)
            .await
            .ok(StatusCode::OK);
        assert_eq!(
            (v["days"].as_u64(), v["deleted"].as_u64()),
            (Some(1), Some(0))
        );
        // Drydock's default retention, also for drydock_client's `days=None`.
        for q in ["", "?days=None", "?days=soon"] {
            let v = api
                .call("DELETE", &format!("/api/v1.0/tasks{q}"), Some(ADMIN), None)
                .await
                .ok(StatusCode::OK);
            assert_eq!(
                (v["days"].as_u64(), v["deleted"].as_u64()),
                (Some(90), Some(0)),
                "{q}"
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let v = api
            .call("DELETE", "/api/v1.0/tasks?days=0", Some(ADMIN), None)
            .await
            .ok(StatusCode::OK);
        assert_eq!(v["deleted"], 2);
        api.get(&format!("/api/v1.0/tasks/{id}"), VIEWER)
            .await
            .error(StatusCode::NOT_FOUND);
        assert_eq!(
            api.get("/api/v1.0/tasks", VIEWER).await.ok(StatusCode::OK),
            json!([])
        );
    })
    .await;
}

/// A status message about task `id` (as a late note from another instance
/// would store it).
fn task_note(id: &str, text: &str) -> drydock::store::NewMessage {
    drydock::store::NewMessage {
        task_id: Uuid::parse_str(id).unwrap(),
        message: text.into(),
        error: false,
        context_type: "task".into(),
        context: id.into(),
        extra: None,
    }
}

/// A finished task's plain dict is served from the cache while its version
/// (status, last update, newest message) holds, and rebuilt when a late
/// message arrives; other forms are always read afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_tasks_are_cached_until_a_late_message() {
    bounded(async {
        let api = Api::start().await;
        api.register(
            "c1",
            json!({"credentials": {"username": "root", "password": "pw"}}),
        )
        .await;
        let id = api.submit(json!({"action": "power_on_node"})).await;
        let done = api.wait(&id).await;
        assert_eq!(done["status"], "complete", "{done}");
        let path = format!("/api/v1.0/tasks/{id}");
        let first = api.get(&path, VIEWER).await;
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(
            first.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );

        // Change the row behind the cache's back (its version untouched):
        // the cached bytes are still what a read gets.
        let mut db = sqlx::SqliteConnection::connect(&format!("sqlite:{}", api.db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE tasks SET result_message = 'edited behind the cache' WHERE id = ?")
            .bind(Uuid::parse_str(&id).unwrap())
            .execute(&mut db)
            .await
            .unwrap();
        let second = api.get(&path, VIEWER).await;
        assert_eq!(second.text, first.text, "served from the cache");

        // A late message changes the version: the dict is rebuilt, with the
        // message and the row as it is now.
        api.store
            .add_messages(&[task_note(&id, "a late note")])
            .await
            .unwrap();
        let third = api.get(&path, VIEWER).await.ok(StatusCode::OK);
        assert!(third.to_string().contains("a late note"), "{third}");
        assert!(
            third.to_string().contains("edited behind the cache"),
            "{third}"
        );
        // Other forms are never cached.
        let layered = api
            .get(&format!("{path}?layers=1"), VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(layered[&id]["task_id"], id.as_str());
        let missing = api
            .get(&format!("/api/v1.0/tasks/{}", Uuid::nil()), VIEWER)
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    })
    .await;
}

/// Reads arriving together share version statements
/// (`api::task_versions`): 300 concurrent reads of a finished task and of
/// a missing one each get their own answer; a message stored after they
/// answered shows in the next read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_each_get_their_own_answer() {
    bounded(async {
        let api = Api::start().await;
        api.register(
            "c1",
            json!({"credentials": {"username": "root", "password": "pw"}}),
        )
        .await;
        let id = api.submit(json!({"action": "power_on_node"})).await;
        assert_eq!(api.wait(&id).await["status"], "complete");
        let path = format!("/api/v1.0/tasks/{id}");
        let missing = format!("/api/v1.0/tasks/{}", Uuid::new_v4());
        let expected = api.get(&path, VIEWER).await.ok(StatusCode::OK);
        let api = Arc::new(api);
        let mut reads = Vec::new();
        for i in 0..300 {
            let (api, path) = (
                api.clone(),
                if i % 3 == 0 {
                    missing.clone()
                } else {
                    path.clone()
                },
            );
            reads.push(tokio::spawn(
                async move { (i, api.get(&path, VIEWER).await) },
            ));
        }
        for r in reads {
            let (i, reply) = r.await.unwrap();
            if i % 3 == 0 {
                assert_eq!(
                    reply.status,
                    StatusCode::NOT_FOUND,
                    "read {i}: {}",
                    reply.text
                );
            } else {
                assert_eq!(reply.ok(StatusCode::OK), expected, "read {i}");
            }
        }
        api.store
            .add_messages(&[task_note(&id, "noted after the burst")])
            .await
            .unwrap();
        let after = api.get(&path, VIEWER).await.ok(StatusCode::OK);
        assert!(
            after.to_string().contains("noted after the burst"),
            "{after}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cycle_flow_end_to_end() {
    bounded(async {
        let api = Api::start().await;
        let names = ["n1", "n2", "n3", "n4", "n5"];
        for n in names {
            api.register(
                n,
                json!({"credentials": {"username": "root", "password": "pw"}}),
            )
            .await;
        }
        let id = api.submit(json!({"action": "power_cycle_node"})).await;
        let done = api.wait(&id).await;
        assert_eq!(done["status"], "complete", "{done}");
        assert_eq!(done["result"]["status"], "success", "{done}");
        assert_eq!(strings(&done["result"]["successes"]), names);
        assert_eq!(done["result"]["failures"], json!([]));
        let subtasks = strings(&done["subtask_id_list"]);
        assert_eq!(subtasks.len(), 5);

        // layers=2: the task and its 5 subtasks, keyed by id.
        let v = api
            .get(&format!("/api/v1.0/tasks/{id}?layers=2"), VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(v["init_task_id"], id);
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 1 + 1 + 5, "{v}");
        assert_eq!(v[&id]["task_id"], id);
        let mut nodes = Vec::new();
        for s in &subtasks {
            let sub = &v[s.as_str()];
            assert_eq!(sub["parent_task_id"], id);
            assert_eq!(sub["status"], "complete");
            assert_eq!(sub["result"]["status"], "success");
            nodes.push(sub["node_name"].as_str().unwrap().to_owned());
        }
        nodes.sort();
        assert_eq!(nodes, names);
        let one = api
            .get(&format!("/api/v1.0/tasks/{id}?layers=1"), VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(one.as_object().unwrap().len(), 2);
        let all = api
            .get(
                &format!("/api/v1.0/tasks/{id}?layers=-1&builddata=true"),
                VIEWER,
            )
            .await
            .ok(StatusCode::OK);
        assert_eq!(all.as_object().unwrap().len(), 7);
        assert_eq!(all[&id]["build_data"], json!([]));

        // No errors: an empty subtask_errors.
        let v = api
            .get(&format!("/api/v1.0/tasks/{id}?subtaskerrors=true"), VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(v["task_id"], id);
        assert_eq!(v["subtask_errors"], json!({}));

        // A subtask on its own.
        let sub = api
            .get(&format!("/api/v1.0/tasks/{}", subtasks[0]), VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(sub["action"], "power_cycle_node");
        assert!(sub["node_name"].is_string());

        // Finished: cancel is a conflict.
        let msg = api
            .call(
                "POST",
                &format!("/api/v1.0/tasks/{id}/cancel"),
                Some(OPERATOR),
                None,
            )
            .await
            .error(StatusCode::CONFLICT);
        assert!(msg.contains("complete"), "{msg}");

        // The engine recorded the power state.
        let node = api
            .get("/api/v1.0/nodes/n3", VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(node["power_state"], "on");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtask_errors_name_the_failing_node() {
    bounded(async {
        let api = Api::with_sim_settings(&[("fail_nodes", "n3")]).await;
        for n in ["n1", "n2", "n3", "n4", "n5"] {
            api.register(n, json!({})).await;
        }
        let id = api.submit(json!({"action": "power_on_node"})).await;
        let done = api.wait(&id).await;
        assert_eq!(done["result"]["status"], "partial_success", "{done}");
        assert_eq!(done["result"]["failures"], json!(["n3"]));

        let v = api
            .get(&format!("/api/v1.0/tasks/{id}?subtaskerrors=true"), VIEWER)
            .await
            .ok(StatusCode::OK);
        let errors = v["subtask_errors"].as_object().expect("subtask_errors");
        assert_eq!(errors.len(), 1, "{v}");
        let (sub_id, result) = errors.iter().next().unwrap();
        assert_eq!(result["task_id"], *sub_id);
        assert_eq!(result["status"], "failure");
        assert!(result["details"]["errorCount"].as_i64().unwrap() > 0);
        let list = result["details"]["messageList"].as_array().unwrap();
        assert!(
            list.iter()
                .any(|m| m["error"] == true && m["context"] == "n3"),
            "{result}"
        );
        let sub = api
            .get(&format!("/api/v1.0/tasks/{sub_id}"), VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(sub["node_name"], "n3");

        // With layers too: the layer dict gets subtask_errors.
        let v = api
            .get(
                &format!("/api/v1.0/tasks/{id}?layers=1&subtaskerrors=1"),
                VIEWER,
            )
            .await
            .ok(StatusCode::OK);
        assert_eq!(
            v.as_object().unwrap().len(),
            3,
            "init_task_id, the task, subtask_errors"
        );
        assert_eq!(v["subtask_errors"].as_object().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrogate_oob_collects_build_data() {
    bounded(async {
        let api = Api::start().await;
        api.register("n1", json!({})).await;
        api.register("n2", json!({})).await;
        let id = api.submit(json!({"action": "interrogate_oob"})).await;
        let done = api.wait(&id).await;
        assert_eq!(done["result"]["status"], "success", "{done}");

        let data = api
            .get(&format!("/api/v1.0/tasks/{id}/builddata"), VIEWER)
            .await
            .ok(StatusCode::OK);
        let items = data.as_array().unwrap();
        assert!(!items.is_empty());
        let mut nodes: Vec<&str> = items
            .iter()
            .map(|b| b["node_name"].as_str().unwrap())
            .collect();
        nodes.sort();
        nodes.dedup();
        assert_eq!(nodes, ["n1", "n2"]);
        assert!(
            items.iter().any(|b| b["generator"] == "interrogate_oob"),
            "the engine stores the interrogation: {data}"
        );
        for b in items {
            assert!(b["generator"].is_string());
            assert!(b["task_id"].is_string());
            assert!(b["data_format"].is_string());
            assert!(b["data_element"].is_string());
            assert!(b["collected_date"].as_str().unwrap().ends_with('Z'));
        }

        let v = api
            .get(
                &format!("/api/v1.0/tasks/{id}?layers=2&builddata=true"),
                VIEWER,
            )
            .await
            .ok(StatusCode::OK);
        let with_data = v
            .as_object()
            .unwrap()
            .values()
            .filter(|t| t["build_data"].as_array().is_some_and(|a| !a.is_empty()))
            .count();
        assert_eq!(with_data, 2, "each subtask has its own build data");

        let latest = api
            .get("/api/v1.0/nodes/n1/builddata?latest=true", VIEWER)
            .await
            .ok(StatusCode::OK);
        let all = api
            .get("/api/v1.0/nodes/n1/builddata", VIEWER)
            .await
            .ok(StatusCode::OK);
        let mut generators: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["generator"].as_str().unwrap())
            .collect();
        generators.sort();
        generators.dedup();
        let latest = latest.as_array().unwrap();
        assert_eq!(latest.len(), generators.len(), "one per generator");
        assert!(latest.iter().all(|b| b["node_name"] == "n1"));
        api.get("/api/v1.0/nodes/n1/builddata?latest=perhaps", VIEWER)
            .await
            .error(StatusCode::BAD_REQUEST);
        api.get("/api/v1.0/nodes/ghost/builddata", VIEWER)
            .await
            .error(StatusCode::NOT_FOUND);
        // A registered node without data: 404, as Drydock.
        api.register("n9", json!({})).await;
        api.get("/api/v1.0/nodes/n9/builddata", VIEWER)
            .await
            .error(StatusCode::NOT_FOUND);
        // GET /nodes carries Drydock's fields, filled from the drivers'
        // reports (interrogate_oob's power state for n1).
        let nodes = api.get("/api/v1.0/nodes", VIEWER).await.ok(StatusCode::OK);
        let n1 = nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == "n1")
            .unwrap();
        assert_eq!(n1["hostname"], "n1");
        for k in [
            "memory",
            "cpu_count",
            "status_name",
            "boot_mac",
            "power_address",
            "boot_ip",
        ] {
            assert!(n1.get(k).is_some(), "{k}: {n1}");
        }
        assert!(n1["power_state"].is_string(), "{n1}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_task() {
    bounded(async {
        let api = Api::with_sim_settings(&[("delay_ms", "20000")]).await;
        api.register("n1", json!({})).await;
        let id = api.submit(json!({"action": "power_on_node"})).await;
        api.call(
            "POST",
            &format!("/api/v1.0/tasks/{}/cancel", Uuid::new_v4()),
            Some(OPERATOR),
            None,
        )
        .await
        .error(StatusCode::NOT_FOUND);
        api.call("POST", "/api/v1.0/tasks/zzz/cancel", Some(OPERATOR), None)
            .await
            .error(StatusCode::BAD_REQUEST);
        // Cancel once the work is fanned out (the subtask queued or running).
        let started = Instant::now();
        let sub = loop {
            let v = api
                .get(&format!("/api/v1.0/tasks/{id}"), VIEWER)
                .await
                .ok(StatusCode::OK);
            if let Some(s) = v["subtask_id_list"][0].as_str() {
                break s.to_owned();
            }
            assert!(started.elapsed() < TASK_TIMEOUT, "never fanned out: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let req = Request::post(format!("/api/v1.0/tasks/{id}/cancel"))
            .header(header::AUTHORIZATION, format!("Bearer {OPERATOR}"))
            .header("X-End-User", "bob")
            .body(Body::empty())
            .unwrap();
        let v = api.send(req).await.ok(StatusCode::OK);
        assert_eq!(v["task_id"], id);
        assert_eq!(v["terminate"], true);
        assert_eq!(v["terminated_by"], "operator/bob");
        let done = api.wait(&id).await;
        assert_eq!(done["status"], "terminated", "{done}");
        assert_ne!(done["result"]["status"], "success", "{done}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the 20 s call was cut"
        );
        let sub = api.wait(&sub).await;
        assert_eq!(sub["status"], "terminated", "{sub}");
    })
    .await;
}

// ----------------------------------------------------------------------- nodes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_show_list_delete_without_leaking_passwords() {
    bounded(async {
        let api = Api::start().await;
        let password = "Sup3r-Secret-BMC-Pa55";
        let body = json!({
            "name": "rack1-n1",
            "oob": {"type": "sim", "address": "10.0.0.5", "port": 623},
            "boot_mac": "52:54:00:00:00:01",
            "tags": ["compute"],
            "labels": {"role": "worker"},
            "rack": "rack1",
            "credentials": {"username": "root", "password": password},
        });
        let r = api.post("/api/v1.0/nodes", OPERATOR, body).await;
        let v = r.ok(StatusCode::CREATED);
        assert_eq!(r.header("location"), Some("/api/v1.0/nodes/rack1-n1"));
        assert!(!r.text.contains(password));
        assert_eq!(v["kind"], "Node");
        assert_eq!(v["apiVersion"], "v1.0");
        assert_eq!(v["name"], "rack1-n1");
        assert_eq!(v["oob"]["type"], "sim");
        assert_eq!(v["oob"]["address"], "10.0.0.5");
        assert_eq!(v["oob"]["credential"], "node-rack1-n1-oob");
        assert_eq!(v["tags"], json!(["compute"]));
        assert_eq!(v["labels"], json!({"role": "worker"}));
        assert_eq!(v["power_state"], Value::Null);
        assert!(v["created"].as_str().unwrap().ends_with('Z'));
        // The password went to the secrets store.
        let secret = api
            .store
            .get_secret("node-rack1-n1-oob")
            .await
            .unwrap()
            .unwrap();
        assert!(secret.contains(password));

        // A named credential, given inside oob.
        api.register(
            "n2",
            json!({"oob": {"type": "sim", "credential": "shared-bmc",
                   "credentials": {"username": "admin", "password": password}}}),
        )
        .await;
        assert!(
            api.store
                .get_secret("shared-bmc")
                .await
                .unwrap()
                .unwrap()
                .contains(password)
        );

        for uri in [
            "/api/v1.0/nodes/rack1-n1",
            "/api/v1.0/nodes/n2",
            "/api/v1.0/nodes",
        ] {
            let r = api.get(uri, VIEWER).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(!r.text.contains(password), "{uri}: {}", r.text);
            assert!(!r.text.contains("password"), "{uri}: {}", r.text);
        }
        let list = api.get("/api/v1.0/nodes", VIEWER).await.ok(StatusCode::OK);
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["n2", "rack1-n1"]);
        let n2 = api
            .get("/api/v1.0/nodes/n2", VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(n2["oob"]["credential"], "shared-bmc");

        // Re-registering replaces the description.
        api.register("n2", json!({"tags": ["gpu"]})).await;
        let n2 = api
            .get("/api/v1.0/nodes/n2", VIEWER)
            .await
            .ok(StatusCode::OK);
        assert_eq!(n2["tags"], json!(["gpu"]));

        let r = api
            .call("DELETE", "/api/v1.0/nodes/rack1-n1", Some(OPERATOR), None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(
            api.store
                .get_secret("node-rack1-n1-oob")
                .await
                .unwrap()
                .is_none()
        );
        api.call("DELETE", "/api/v1.0/nodes/rack1-n1", Some(OPERATOR), None)
            .await
            .error(StatusCode::NOT_FOUND);
        api.get("/api/v1.0/nodes/rack1-n1", VIEWER)
            .await
            .error(StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_registration_is_validated() {
    bounded(async {
        let api = Api::start().await;
        let password = "Leaky-Pa55word";
        let cases = [
            (json!({"oob": {"type": "sim"}}), "name"),
            (json!({"name": "", "oob": {"type": "sim"}}), "name"),
            (json!({"name": "bad name", "oob": {"type": "sim"}}), "name"),
            (json!({"name": "a_b", "oob": {"type": "sim"}}), "name"),
            (json!({"name": "x".repeat(254), "oob": {"type": "sim"}}), "name"),
            (json!({"name": "n1"}), "oob.type"),
            (json!({"name": "n1", "oob": {"type": " "}}), "oob.type"),
            (json!({"name": "n1", "oob": {"type": "sim"}, "colour": "red"}), "colour"),
            (json!({"name": "n1", "oob": {"type": "sim", "port": "high"}}), "invalid"),
            (json!({"name": "n1", "oob": {"type": "sim"}, "credentials": password}), "credentials"),
            (json!({"name": "n1", "oob": {"type": "sim", "credentials": [password]}}), "credentials"),
            (json!({"name": "n1", "oob": {"type": "sim"}, "credentials": {"password": password}}), "credentials"),
            (json!({"name": "n1", "oob": {"type": "sim"},
                    "credentials": {"username": "u", "pasword": password}}), "credentials"),
            (json!({"name": "n1", "oob": {"type": "sim", "credentials": {"username": "u"}},
                    "credentials": {"username": "u"}}), "once"),
            (json!([1]), "object"),
        ];
        for (body, needle) in cases {
            let r = api.post("/api/v1.0/nodes", OPERATOR, body.clone()).await;
            let msg = r.error(StatusCode::BAD_REQUEST);
            assert!(msg.contains(needle), "{body}: {msg}");
            assert!(!r.text.contains(password), "{body}: {msg}");
        }
        assert_eq!(api.get("/api/v1.0/nodes", VIEWER).await.ok(StatusCode::OK), json!([]));
        // The longest valid name is fine.
        api.register(&"n".repeat(253), json!({})).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_filter_selects_registered_nodes() {
    bounded(async {
        let api = Api::start().await;
        api.register("a", json!({"tags": ["compute"], "rack": "r1"}))
            .await;
        api.register("b", json!({"tags": ["compute", "gpu"], "rack": "r2"}))
            .await;
        api.register(
            "c",
            json!({"tags": ["storage"], "labels": {"role": "ceph"}, "rack": "r1"}),
        )
        .await;
        let pick = |filter: Value| {
            let api = &api;
            async move {
                let v = api
                    .post("/api/v1.0/nodefilter", VIEWER, filter)
                    .await
                    .ok(StatusCode::OK);
                strings(&v)
            }
        };
        assert_eq!(pick(json!({})).await, ["a", "b", "c"]);
        assert_eq!(pick(json!({"node_filter": null})).await, ["a", "b", "c"]);
        // A design that cannot be read is a clear 400.
        let msg = api
            .post(
                "/api/v1.0/nodefilter",
                VIEWER,
                json!({"node_filter": null, "design_ref": "file:///x"}),
            )
            .await
            .error(StatusCode::BAD_REQUEST);
        assert!(msg.contains("design"), "{msg}");
        assert_eq!(
            pick(json!({"node_filter": {"filter_set": [{"node_tags": ["gpu", "storage"]}]}})).await,
            ["b", "c"]
        );
        assert_eq!(
            pick(
                json!({"node_filter": {"filter_set_type": "intersection", "filter_set": [
                {"rack_names": ["r1"]}, {"node_tags": ["compute"]}]}})
            )
            .await,
            ["a"]
        );
        assert_eq!(
            pick(json!({"node_filter": {"filter_set": [{"node_labels": {"role": "ceph"}}]}})).await,
            ["c"]
        );
        // Drydock ignores keys it does not know: a misspelt criterion is no
        // criterion (a union of none selects nothing).
        assert!(
            pick(json!({"node_filter": {"filter_set": [{"node_nmes": ["a"]}]}}))
                .await
                .is_empty()
        );
        assert_eq!(
            pick(json!({"node_filter": null, "extra": 1})).await,
            ["a", "b", "c"]
        );
        for bad in [
            json!({"node_filter": {"filter_set_type": "xor"}}),
            json!({"node_filter": [1, 2]}),
        ] {
            api.post("/api/v1.0/nodefilter", VIEWER, bad)
                .await
                .error(StatusCode::BAD_REQUEST);
        }
        api.call("POST", "/api/v1.0/nodefilter", None, Some(json!({})))
            .await
            .error(StatusCode::UNAUTHORIZED);
    })
    .await;
}

/// API reads have their own small pool on Postgres: when it is saturated a
/// read answers 503 with `Retry-After` at once (not after the engine's 10 s
/// acquire timeout), writes still go through, and reads work again as soon
/// as a connection is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_reads_get_503_with_retry_after_and_writes_go_on() {
    bounded(async {
        let (store, name) = drydock_tests::db::postgres().await;
        let api = Api::over(store, PathBuf::from("/nonexistent/drydock-api-pg"), &[]).await;
        let id = api.submit(json!({"action": "power_on_node"})).await;

        let held = drydock::store::testing::hold_all(&api.reads).await;
        let started = Instant::now();
        let r = api.get(&format!("/api/v1.0/tasks/{id}"), VIEWER).await;
        let waited = started.elapsed();
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
        assert_eq!(r.headers[header::RETRY_AFTER], "1");
        assert!(
            waited < Duration::from_secs(5),
            "answered after {waited:?}, not at once"
        );
        let r = api.get("/api/v1.0/tasks", VIEWER).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        // Writes use the engine's pool.
        api.submit(json!({"action": "power_on_node"})).await;

        drop(held);
        api.get(&format!("/api/v1.0/tasks/{id}"), VIEWER)
            .await
            .ok(StatusCode::OK);
        api.engine.shutdown();
        api.store.close().await;
        drydock_tests::db::drop_postgres(&name).await;
    })
    .await;
}
