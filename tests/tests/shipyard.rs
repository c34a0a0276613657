//! Airship fidelity (issue 14): Shipyard's calls to Drydock, reproduced
//! with their exact bodies and headers, against a real `drydock serve`
//! (HTTP over TCP, SQLite, the bundled sim driver, the sample site in
//! `examples/`) behind a real Keystone (PyPI's `keystone`, SQLite, fernet
//! tokens; `tests/peers/keystone/setup.sh`).
//!
//! Where each call comes from (airshipit/shipyard,
//! `src/bin/shipyard_airflow/shipyard_airflow/`):
//! - `plugins/ucp_preflight_check_operator.py`: `requests.get(<endpoint>/health)`.
//! - `plugins/drydock_validate_design.py`: `POST <endpoint>/validatedesign`
//!   with `Content-Type`, `X-Auth-Token`, `X-Context-Marker`, `X-End-User`
//!   and `{"rel": "design", "href": ..., "type": "application/x-yaml"}`.
//! - `plugins/drydock_base_operator.py` through `drydock_client`
//!   (airshipit/drydock `drydock_client/{session,client}.py`): a
//!   `requests.Session` carrying `X-Auth-Token`, `X-Context-Marker` and
//!   `X-End-User`; `create_task` posts `{"action", "design_ref",
//!   "node_filter"}`, `get_task`, `get_tasks` (failure details),
//!   `get_nodes`, `get_nodes_for_filter` (`common/deployment_group/
//!   node_lookup.py`, every criterion sent), `delete_tasks(days=None)`,
//!   `get_node_build_data(latest=True)`.
//!
//! Bodies are written as Python's `json.dumps` writes them (`", "` and
//! `": "` separators, the dict's key order).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use drydock::config::{Config, DriverSettings};
use drydock::server::Server;
use drydock_tests::keystone::{Keystone, User};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

/// What Shipyard's `requests` sends on every call besides its own headers.
fn requests_defaults() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "user-agent",
        HeaderValue::from_static("python-requests/2.32.3"),
    );
    h.insert("accept-encoding", HeaderValue::from_static("gzip, deflate"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    h.insert("connection", HeaderValue::from_static("keep-alive"));
    h
}

/// The context marker Shipyard sends (the action's id).
const MARKER: &str = "6a7b2a4c-8a3e-4f0e-9d51-0d6f5b1f2e10";
/// The user Shipyard acts for.
const END_USER: &str = "shipyard-operator";
/// The design reference (Shipyard's is a Deckhand URL; the sample site here).
const DESIGN_REF: &str = "file:site.yaml";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// A Drydock server on a free port, with `keystone` when given.
struct Site {
    server: Option<Server>,
    base: String,
    dir: PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Site {
    async fn start(
        keystone: Option<(&Keystone, &User)>,
        tokens: Vec<drydock::config::TokenConfig>,
        policy: &[(&str, &str)],
    ) -> Site {
        let dir = std::env::temp_dir().join(format!(
            "drydock-shipyard-{}",
            drydock::store::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            data_dir: dir.clone(),
            design_dir: Some(repo().join("examples")),
            public_url: Some("http://drydock-api.ucp.svc.cluster.local:9000".into()),
            tokens,
            policy: policy
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Config::default()
        };
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
        if let Some((ks, svc)) = keystone {
            cfg.keystone = Some(
                serde_json::from_value(json!({
                    "auth_url": format!("{}/v3", ks.url()),
                    "username": svc.name,
                    "password": svc.password,
                    "project_name": svc.project,
                }))
                .unwrap(),
            );
        }
        let server = drydock::server::start(cfg).await.expect("drydock starts");
        // drydock_client's base URL; Shipyard's endpoint is `<base>v1.0`.
        let base = format!("http://{}/api", server.addr);
        Site {
            server: Some(server),
            base,
            dir,
        }
    }

    fn engine(&self) -> &drydock::tasks::Engine {
        &self.server.as_ref().unwrap().engine
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}

/// Shipyard's `DrydockSession`: a `requests.Session` with the auth, marker
/// and end-user headers on every call.
struct Shipyard {
    http: reqwest::Client,
    base: String,
}

impl Shipyard {
    fn new(base: &str, token: &str) -> Shipyard {
        Self::from(base, token, None)
    }

    fn from(base: &str, token: &str, local: Option<IpAddr>) -> Shipyard {
        let mut h = requests_defaults();
        h.insert("x-auth-token", HeaderValue::from_str(token).unwrap());
        h.insert("x-context-marker", HeaderValue::from_static(MARKER));
        h.insert("x-end-user", HeaderValue::from_static(END_USER));
        let http = reqwest::Client::builder()
            .default_headers(h)
            .local_address(local)
            .build()
            .unwrap();
        Shipyard {
            http,
            base: base.into(),
        }
    }

    async fn answer(r: reqwest::Response) -> (u16, HeaderMap, Value) {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/{path}", self.base))
            .send()
            .await
            .unwrap();
        let (s, _, v) = Self::answer(r).await;
        (s, v)
    }

    /// `session.post(endpoint, data=...)`: `json=` in requests, so
    /// `Content-Type: application/json` and `json.dumps` of the body.
    async fn post(&self, path: &str, python_json: &str) -> (u16, HeaderMap, Value) {
        let r = self
            .http
            .post(format!("{}/{path}", self.base))
            .header("content-type", "application/json")
            .body(python_json.to_owned())
            .send()
            .await
            .unwrap();
        Self::answer(r).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .delete(format!("{}/{path}", self.base))
            .send()
            .await
            .unwrap();
        let (s, _, v) = Self::answer(r).await;
        (s, v)
    }

    /// `drydock_client.create_task(design_ref, task_action, node_filter)`.
    async fn create_task(&self, action: &str, node_filter: &str) -> (u16, Value) {
        let body = format!(
            "{{\"action\": \"{action}\", \"design_ref\": \"{DESIGN_REF}\", \"node_filter\": {node_filter}}}"
        );
        let (s, h, v) = self.post("v1.0/tasks", &body).await;
        if s == 201 {
            let id = v["task_id"].as_str().unwrap();
            assert_eq!(
                h["location"].to_str().unwrap(),
                format!("/api/v1.0/tasks/{id}")
            );
        }
        (s, v)
    }
}

/// `gen_node_name_filter(node_names)` in Python's rendering.
fn name_filter(names: &[&str]) -> String {
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{{\"filter_set_type\": \"union\", \"filter_set\": [{{\"filter_type\": \"union\", \"node_names\": [{list}]}}]}}"
    )
}

/// The task, once the engine says it ended (then read as Shipyard reads it).
async fn finished(site: &Site, sy: &Shipyard, task: &Value) -> Value {
    let id: drydock::store::Uuid = task["task_id"].as_str().unwrap().parse().unwrap();
    site.engine()
        .wait_finished(id, Duration::from_secs(120))
        .await
        .unwrap();
    let (s, t) = sy.get(&format!("v1.0/tasks/{id}")).await;
    assert_eq!(s, 200, "{t}");
    assert!(
        ["complete", "terminated"].contains(&t["status"].as_str().unwrap()),
        "{t}"
    );
    if t["result"]["status"] != "success" {
        let (_, errors) = sy.get(&format!("v1.0/tasks/{id}?subtaskerrors=true")).await;
        eprintln!("task {id} subtask errors: {}", errors["subtask_errors"]);
    }
    t
}

/// Keystone with Drydock's service user and Shipyard's.
async fn keystone() -> (Keystone, User, User) {
    let ks = Keystone::start().await;
    // Keystone lets the `service` role check others' tokens.
    let drydock = ks.user("drydock", "service", &["service"]).await;
    let shipyard = ks.user("shipyard", "service", &["admin"]).await;
    (ks, drydock, shipyard)
}

#[tokio::test]
async fn shipyard_deploy_site_against_keystone() {
    let (ks, drydock_user, shipyard_user) = keystone().await;
    let site = Site::start(Some((&ks, &drydock_user)), vec![], &[]).await;
    let token = ks.token_for(&shipyard_user).await;
    let sy = Shipyard::new(&site.base, &token);

    // Preflight: a bare requests.get on <endpoint>/health.
    let plain = reqwest::Client::builder()
        .default_headers(requests_defaults())
        .build()
        .unwrap();
    let r = plain
        .get(format!("{}/v1.0/health", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // validate_site_design, with its exact body and headers.
    let body = format!(
        "{{\"rel\": \"design\", \"href\": \"{DESIGN_REF}\", \"type\": \"application/x-yaml\"}}"
    );
    let (s, h, v) = sy.post("v1.0/validatedesign", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "Success", "{v}");
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["code"], 200);
    assert_eq!(v["details"]["errorCount"], 0);
    let list = v["details"]["messageList"].as_array().unwrap();
    assert!(!list.is_empty());
    assert!(
        list.iter()
            .all(|m| m["kind"] == "ValidationMessage" && m["ts"].is_string())
    );
    assert!(list.iter().any(|m| {
        m["level"] == "Info"
            && m["message"]
                .as_str()
                .is_some_and(|t| t.ends_with("Validation successful."))
    }));
    // A request id of our own, not the marker.
    let req_id = h["x-drydock-req"].to_str().unwrap().to_owned();
    assert_ne!(req_id, MARKER);

    // verify_site and prepare_site: no node filter.
    for action in ["verify_site", "prepare_site"] {
        let (s, t) = sy.create_task(action, "null").await;
        assert_eq!(s, 201, "{t}");
        assert_eq!(t["kind"], "Task");
        assert_eq!(t["apiVersion"], "v1");
        assert_eq!(t["status"], "queued");
        assert_eq!(t["created_by"], format!("shipyard/{END_USER}"));
        let done = finished(&site, &sy, &t).await;
        assert_eq!(done["result"]["status"], "success", "{done}");
    }

    // The deployment group lookup: every criterion sent, unused ones empty.
    let group = format!(
        "{{\"node_filter\": {{\"filter_set_type\": \"union\", \"filter_set\": [{{\"filter_type\": \"intersection\", \"node_names\": [], \"node_tags\": [\"gpu\"], \"node_labels\": {{\"role\": \"compute\"}}, \"rack_names\": []}}]}}, \"design_ref\": \"{DESIGN_REF}\"}}"
    );
    let (s, _, nodes) = sy.post("v1.0/nodefilter", &group).await;
    assert_eq!(s, 200, "{nodes}");
    assert_eq!(nodes, json!(["cmp03", "cmp04"]));

    // prepare_nodes, then deploy_nodes, over the group's nodes.
    let (s, t) = sy
        .create_task("prepare_nodes", &name_filter(&["cmp03", "cmp04"]))
        .await;
    assert_eq!(s, 201, "{t}");
    let prep = finished(&site, &sy, &t).await;
    assert_eq!(prep["result"]["status"], "success", "{prep}");
    let (s, t) = sy
        .create_task("deploy_nodes", &name_filter(&["cmp03", "cmp04"]))
        .await;
    assert_eq!(s, 201, "{t}");
    let dep = finished(&site, &sy, &t).await;
    assert_eq!(dep["result"]["status"], "success", "{dep}");
    let mut successes: Vec<String> =
        serde_json::from_value(dep["result"]["successes"].clone()).unwrap();
    successes.sort();
    assert_eq!(successes, ["cmp03", "cmp04"]);
    // Links are absolute, under public_url.
    for l in dep["result"]["links"].as_array().unwrap() {
        assert!(
            l["href"]
                .as_str()
                .unwrap()
                .starts_with("http://drydock-api.ucp.svc.cluster.local:9000/api/v1.0/tasks/"),
            "{l}"
        );
    }

    // get_successes_for_task walks subtask_id_list with get_task.
    for child in dep["subtask_id_list"].as_array().unwrap() {
        let (s, c) = sy
            .get(&format!("v1.0/tasks/{}", child.as_str().unwrap()))
            .await;
        assert_eq!(s, 200);
        assert_eq!(c["parent_task_id"], dep["task_id"]);
        assert!(c["result"]["details"]["errorCount"].is_u64());
    }

    // fetch_failure_details: get_tasks holds every task, subtasks included.
    let (s, all) = sy.get("v1.0/tasks").await;
    assert_eq!(s, 200);
    let all = all.as_array().unwrap();
    let ids: Vec<&str> = all.iter().map(|t| t["task_id"].as_str().unwrap()).collect();
    for child in dep["subtask_id_list"].as_array().unwrap() {
        assert!(ids.contains(&child.as_str().unwrap()), "{child} not listed");
    }
    let listed = all.iter().find(|t| t["task_id"] == dep["task_id"]).unwrap();
    assert_eq!(listed["subtask_id_list"], dep["subtask_id_list"]);

    // DrydockVerifyNodesExistOperator: get_nodes, with Drydock's fields.
    let (s, nodes) = sy.get("v1.0/nodes").await;
    assert_eq!(s, 200);
    let cmp03 = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["hostname"] == "cmp03")
        .unwrap_or_else(|| panic!("{nodes}"));
    for k in [
        "hostname",
        "memory",
        "cpu_count",
        "status_name",
        "boot_mac",
        "power_state",
        "power_address",
        "boot_ip",
    ] {
        assert!(cmp03.get(k).is_some(), "{k} missing: {cmp03}");
    }

    // get_node_build_data(nodename, latest=True): Python's `True`.
    let (s, _) = sy.get("v1.0/nodes/nosuchnode/builddata?latest=True").await;
    assert_eq!(s, 404);

    // delete_tasks() with its default: `?days=None`, Drydock's 90 days.
    let (s, v) = sy.delete("v1.0/tasks?days=None").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["days"], 90);

    site.stop().await;
}

#[tokio::test]
async fn a_group_selecting_nothing_is_a_success_with_nothing_to_do() {
    let (ks, drydock_user, shipyard_user) = keystone().await;
    let site = Site::start(Some((&ks, &drydock_user)), vec![], &[]).await;
    let sy = Shipyard::new(&site.base, &ks.token_for(&shipyard_user).await);
    let group = format!(
        "{{\"node_filter\": {{\"filter_set_type\": \"union\", \"filter_set\": [{{\"filter_type\": \"intersection\", \"node_names\": [], \"node_tags\": [\"no-such-tag\"], \"node_labels\": {{}}, \"rack_names\": []}}]}}, \"design_ref\": \"{DESIGN_REF}\"}}"
    );
    let (s, _, nodes) = sy.post("v1.0/nodefilter", &group).await;
    assert_eq!((s, nodes), (200, json!([])));
    let (s, t) = sy.create_task("prepare_nodes", &name_filter(&[])).await;
    assert_eq!(s, 201, "{t}");
    let done = finished(&site, &sy, &t).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["result"]["status"], "success", "{done}");
    assert_eq!(done["subtask_id_list"], json!([]));
    assert!(
        done["result"]["details"]["messageList"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["message"] == "No nodes in scope, no work to do.")
    );
    site.stop().await;
}

#[tokio::test]
async fn keystone_tokens_roles_policy_and_cache() {
    let (ks, drydock_user, shipyard_user) = keystone().await;
    let viewer = ks.user("viewer", "service", &["viewer"]).await;
    let reader = ks.user("reader-only", "service", &["reader"]).await;
    let static_token = drydock::config::TokenConfig {
        name: "ops".into(),
        role: "operator".into(),
        token: Some("static-operator-token-0123456789".into()),
        token_env: None,
    };
    // One rule overridden: deploy_nodes needs the `deployer` role.
    let site = Site::start(
        Some((&ks, &drydock_user)),
        vec![static_token],
        &[("physical_provisioner:deploy_nodes", "role:deployer")],
    )
    .await;
    let admin = Shipyard::new(&site.base, &ks.token_for(&shipyard_user).await);
    let view = Shipyard::new(&site.base, &ks.token_for(&viewer).await);
    let read = Shipyard::new(&site.base, &ks.token_for(&reader).await);
    let ops = Shipyard::new(&site.base, "static-operator-token-0123456789");

    // Roles come from Keystone: viewer reads, cannot create.
    assert_eq!(view.get("v1.0/tasks").await.0, 200);
    let (s, v) = view.create_task("verify_site", "null").await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("create_task"),
        "{v}"
    );
    // Keystone's `reader` is none of the default roles.
    assert_eq!(read.get("v1.0/tasks").await.0, 403);
    // The overridden rule: admin may prepare but not deploy.
    assert_eq!(admin.create_task("verify_site", "null").await.0, 201);
    let (s, v) = admin.create_task("deploy_nodes", "null").await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("deploy_nodes"),
        "{v}"
    );
    // created_by is the Keystone user.
    let (_, t) = admin.create_task("verify_site", "null").await;
    assert_eq!(t["created_by"], format!("shipyard/{END_USER}"));
    // Static tokens still work beside Keystone.
    assert_eq!(ops.get("v1.0/nodes").await.0, 200);
    // delete_tasks is admin's only.
    assert_eq!(ops.delete("v1.0/tasks?days=1").await.0, 403);
    // Bad tokens are 401s, as is no token.
    let bogus = Shipyard::new(&site.base, "gAAAAABnot-a-real-fernet-token");
    let (s, v) = bogus.get("v1.0/tasks").await;
    assert_eq!(s, 401, "{v}");
    let r = reqwest::get(format!("{}/v1.0/tasks", site.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));

    // Validations are cached for the token's life: with Keystone gone, the
    // tokens already seen still work; a new one cannot be checked (503,
    // not 401).
    let fresh = ks.token_for(&viewer).await;
    drop(ks);
    assert_eq!(view.get("v1.0/tasks").await.0, 200);
    assert_eq!(admin.get("v1.0/nodes").await.0, 200);
    let unseen = Shipyard::new(&site.base, &fresh);
    let (s, v) = unseen.get("v1.0/tasks").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["retry"], true);
    site.stop().await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_once_not_cached() {
    let (ks, drydock_user, _) = keystone().await;
    let viewer = ks.user("viewer", "service", &["viewer"]).await;
    let site = Site::start(Some((&ks, &drydock_user)), vec![], &[]).await;
    let token = ks.token_for(&viewer).await;
    ks.revoke(&token).await;
    let sy = Shipyard::new(&site.base, &token);
    assert_eq!(sy.get("v1.0/tasks").await.0, 401);
    site.stop().await;
}

#[tokio::test]
async fn repeated_bad_tokens_from_one_peer_get_429() {
    let good = "static-viewer-token-0123456789";
    let site = Site::start(
        None,
        vec![drydock::config::TokenConfig {
            name: "viewer".into(),
            role: "viewer".into(),
            token: Some(good.into()),
            token_env: None,
        }],
        &[],
    )
    .await;
    let here = Some(IpAddr::from([127, 0, 0, 1]));
    let guesser = Shipyard::from(&site.base, "guess", here);
    // The default: 10 bad tokens within a minute.
    for i in 0..10 {
        let (s, v) = guesser.get("v1.0/tasks").await;
        assert_eq!(s, 401, "guess {i}: {v}");
    }
    let r = guesser
        .http
        .get(format!("{}/v1.0/tasks", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()[HeaderName::from_static("retry-after")]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error");
    // Even a good token from that peer waits...
    let same_peer = Shipyard::from(&site.base, good, here);
    assert_eq!(same_peer.get("v1.0/tasks").await.0, 429);
    // ...another peer does not.
    let other = Shipyard::from(&site.base, good, Some(IpAddr::from([127, 0, 0, 2])));
    assert_eq!(other.get("v1.0/tasks").await.0, 200);
    // The open health check is not throttled.
    assert_eq!(guesser.get("v1.0/health").await.0, 204);
    site.stop().await;
}

#[tokio::test]
async fn the_service_token_hook_yields_drydocks_own_token() {
    use drydock::api::keystone::{Keystone as Client, ServiceToken};
    let (ks, drydock_user, _) = keystone().await;
    let client = Client::new(
        serde_json::from_value(json!({
            "auth_url": ks.url(),
            "username": drydock_user.name,
            "password": drydock_user.password,
            "project_name": drydock_user.project,
        }))
        .unwrap(),
    )
    .unwrap();
    let hook: &dyn ServiceToken = &client;
    let token = hook.service_token().await.unwrap();
    // Renewed only near expiry: the same token twice.
    assert_eq!(hook.service_token().await.unwrap(), token);
    let who = client
        .validate(&token)
        .await
        .unwrap()
        .expect("a valid token");
    assert_eq!(who.user_name, "drydock");
    assert!(who.roles.iter().any(|r| r == "service"), "{who:?}");
    assert_eq!(client.cached(), 1);
    // Wrong service credentials are an error naming them, not a 401 later.
    let wrong = Client::new(
        serde_json::from_value(json!({
            "auth_url": ks.url(), "username": "drydock", "password": "nope",
        }))
        .unwrap(),
    )
    .unwrap();
    let e = wrong.service_token().await.unwrap_err().to_string();
    assert!(e.contains("service credentials"), "{e}");
}
