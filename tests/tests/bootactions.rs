//! Boot actions end to end on the sim driver: `deploy_nodes` hands each node
//! its boot actions and a key in its cloud-init user data; the test plays
//! the deployed nodes, fetching their files and units from the boot action
//! API with that key and reporting outcomes; the last step of
//! `deploy_nodes` waits for the reports (success, failure, none by the
//! deadline).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use drydock::api::{ApiToken, AppState, Auth, Role, router};
use drydock::drivers::{DriverConfig, DriverSet, Runtime};
use drydock::store::{ResultStatus, Store, TaskRecord, TaskStatus};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const URL: &str = "http://drydock.test:9000/api/v1.0/bootactions/";

/// The sample site with boot action `hello` (signaling) on cmp01..cmp03 —
/// a script, a templated file, a unit and packages — and `quiet` (not
/// signaling) on ctl01, in a fresh design directory.
fn design_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/site.yaml");
    let text = std::fs::read_to_string(root).unwrap();
    let mut docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let hello = docs
        .iter_mut()
        .find(|d| d["schema"] == "drydock/BootAction/v1" && d["metadata"]["name"] == "hello")
        .unwrap();
    hello["data"]["signaling"] = json!(true);
    hello["data"].as_object_mut().unwrap().remove("signaled");
    hello["data"]["node_filter"] = json!({"filter_set": [{"filter_type": "union", "node_names": ["cmp01", "cmp02", "cmp03"]}]});
    hello["data"]["assets"].as_array_mut().unwrap().extend([
        json!({"type": "file", "path": "/etc/drydock/whoami", "permissions": "644",
               "data": "{{ node.hostname }} {{ action.report_url }}{{ action.action_id }} {{ action.action_key }}",
               "data_pipeline": ["template"]}),
        json!({"type": "unit", "path": "/lib/systemd/system/hello.service", "permissions": "644",
               "data": "[Service]\nExecStart=/var/tmp/hello.sh\n"}),
        json!({"type": "pkg_list", "data": {"curl": null, "jq": "1.6-1ubuntu0.1"}}),
    ]);
    let mut quiet = hello.clone();
    quiet["metadata"]["name"] = json!("quiet");
    quiet["data"] = json!({
        "signaling": false,
        "node_filter": {"filter_set": [{"filter_type": "union", "node_names": ["ctl01"]}]},
        "assets": [{"type": "file", "path": "/etc/motd", "data": "hi"}],
    });
    docs.push(quiet);
    let dir = std::env::temp_dir().join(drydock_tests::db::unique("bootactions"));
    std::fs::create_dir_all(&dir).unwrap();
    let yaml: String = docs
        .iter()
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect();
    std::fs::write(dir.join("site.yaml"), yaml).unwrap();
    dir
}

async fn engine(store: Store, dir: PathBuf, wait: Duration) -> Engine {
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut set = DriverSet::new();
    set.add(sim, Arc::new(DriverConfig::default())).unwrap();
    let mut secrets = drydock::drivers::GrantedSecrets::default();
    secrets.insert("bmc-password", "calvin");
    secrets.insert("switch-password", "arista");
    Engine::start(
        store,
        rt,
        Arc::new(set),
        EngineConfig {
            retry_backoff: Duration::from_millis(5),
            poll_interval: Duration::from_millis(50),
            design_dir: Some(dir),
            secrets,
            boot_action_url: URL.into(),
            timeouts: BTreeMap::from([("boot_action_report".to_string(), wait)]),
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap()
}

fn submit(action: &str) -> TaskRequest {
    TaskRequest {
        action: action.into(),
        design_ref: Some("file:site.yaml".into()),
        node_filter: Some(
            json!({"filter_set": [{"filter_type": "union", "node_names": ["cmp01", "cmp02", "cmp03", "ctl01"]}]}),
        ),
        ..TaskRequest::default()
    }
}

/// Sends a request as a node would (no API token), with `key` if given.
async fn node_request(
    app: &axum::Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        req = req.header("X-Bootaction-Key", k);
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

/// path → (mode, content) of a gzipped tar.
fn untar(bytes: &[u8]) -> BTreeMap<String, (u32, String)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let mode = e.header().mode().unwrap();
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            (path, (mode, text))
        })
        .collect()
}

/// The step of `task` named `action`, once it exists.
async fn step(store: &Store, task: &TaskRecord, action: &str) -> TaskRecord {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let steps = store.subtasks(task.id).await.unwrap();
        if let Some(s) = steps.into_iter().find(|s| s.action == action) {
            return s;
        }
        assert!(Instant::now() < until, "no {action} step");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The calls of `step`, once there are `n` of them (each node moves through
/// the steps on its own, so they arrive one by one).
async fn calls_of(store: &Store, step: &TaskRecord, n: usize) -> Vec<TaskRecord> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let calls = store.subtasks(step.id).await.unwrap();
        if calls.len() >= n {
            return calls;
        }
        assert!(
            Instant::now() < until,
            "{} calls in {}: {calls:?}",
            calls.len(),
            step.action
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The key in a node's user data (`k='...'`).
fn key_of(user_data: &str) -> String {
    let start = user_data.find("k='").expect("a key in the user data") + 3;
    user_data[start..][..64].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_fetch_their_assets_and_deploy_nodes_waits_for_their_reports() {
    let dir = design_dir();
    let store = drydock_tests::db::sqlite().await;
    let e = engine(store.clone(), dir.clone(), Duration::from_secs(5)).await;
    let app = router(AppState::new(
        e.clone(),
        Arc::new(Auth::new(vec![ApiToken {
            name: "viewer".into(),
            token: "viewer-token".into(),
            role: Role::Viewer,
        }])),
    ));
    let prep =
        drydock_tests::run_to_end(&e, submit("prepare_nodes"), Duration::from_secs(120)).await;
    assert_eq!(prep.result_status, ResultStatus::Success, "{prep:?}");

    let task = e.submit(submit("deploy_nodes")).await.unwrap();
    let wait = step(&store, &task, "boot_action_report").await;

    // Each node's deploy_node got user data with its own key.
    let deploy = step(&store, &task, "deploy_node").await;
    let calls = calls_of(&store, &deploy, 4).await;
    let user_data = |node: &str| -> String {
        calls
            .iter()
            .find(|c| c.node_name.as_deref() == Some(node))
            .and_then(|c| c.params["user_data"].as_str())
            .unwrap_or_else(|| panic!("no user data for {node}"))
            .to_owned()
    };
    // (cloud-config YAML: packages, and a first-boot script)
    let script = |node: &str| -> (Value, String) {
        let ud = user_data(node);
        let yaml = ud.strip_prefix("#cloud-config\n").expect("cloud-config");
        let doc: Value = serde_yaml_ng::from_str(yaml).unwrap();
        let script = doc["runcmd"][0][2].as_str().unwrap().to_owned();
        (doc, script)
    };
    let (doc, first_boot) = script("cmp01");
    assert_eq!(doc["packages"], json!(["curl", "jq=1.6-1ubuntu0.1"]));
    assert_eq!(doc["runcmd"][0][0], "/bin/sh");
    assert!(
        first_boot.contains(&format!("u='{URL}'")) && first_boot.contains("nodes/cmp01/$t"),
        "{first_boot}"
    );
    assert!(
        first_boot.ends_with("systemctl enable --now 'hello.service'"),
        "{first_boot}"
    );
    let keys: Vec<String> = ["cmp01", "cmp02", "cmp03", "ctl01"]
        .iter()
        .map(|n| key_of(&script(n).1))
        .collect();
    assert!(keys.iter().all(|k| k.len() == 64));
    assert_ne!(keys[0], keys[1]);
    // Only signaling boot actions are waited for: ctl01 passes through.
    let waits = calls_of(&store, &wait, 3).await;
    let waited: Vec<&str> = waits
        .iter()
        .filter_map(|w| w.node_name.as_deref())
        .collect();
    assert_eq!(waited, ["cmp01", "cmp02", "cmp03"]);

    // cmp01 fetches its files and units.
    let (status, files) = node_request(
        &app,
        "GET",
        "/api/v1.0/bootactions/nodes/cmp01/files",
        Some(&keys[0]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let files = untar(&files);
    let actions = store.boot_actions_for_node("cmp01").await.unwrap();
    assert_eq!(actions.len(), 1);
    let hello = &actions[0];
    assert_eq!(
        files["etc/drydock/whoami"],
        (0o644, format!("cmp01 {URL}{} {}", hello.action_id, keys[0]))
    );
    assert_eq!(files["var/tmp/hello.sh"].0, 0o555);
    assert_eq!(files["var/tmp/hello.sh"].1, "#!/bin/bash\necho hello\n");
    assert_eq!(files.len(), 2, "{files:?}");
    let (status, units) = node_request(
        &app,
        "GET",
        "/api/v1.0/bootactions/nodes/cmp01/units",
        Some(&keys[0]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let units = untar(&units);
    assert_eq!(
        units.keys().collect::<Vec<_>>(),
        ["lib/systemd/system/hello.service"]
    );
    // Without the key, with another node's key, for an unknown node.
    let files_of = |node: &str| format!("/api/v1.0/bootactions/nodes/{node}/files");
    for (path, key, want) in [
        (files_of("cmp01"), None, StatusCode::UNAUTHORIZED),
        (
            files_of("cmp01"),
            Some(keys[1].as_str()),
            StatusCode::FORBIDDEN,
        ),
        (
            files_of("nope"),
            Some(keys[0].as_str()),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, _) = node_request(&app, "GET", &path, key, None).await;
        assert_eq!(status, want, "{path}");
    }

    // cmp01 reports progress, then success; a second final report is refused.
    let report = |id: &str| format!("/api/v1.0/bootactions/{id}");
    let (status, _) = node_request(
        &app,
        "POST",
        &report(&hello.action_id),
        Some(&keys[0]),
        Some(json!({"details": [{"message": "hello started", "error": false}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = node_request(
        &app,
        "POST",
        &report(&hello.action_id),
        Some(&keys[0]),
        Some(json!({"status": "Success"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], "success");
    assert!(body.get("key_hash").is_none(), "{body}");
    let (status, _) = node_request(
        &app,
        "POST",
        &report(&hello.action_id),
        Some(&keys[0]),
        Some(json!({"status": "Failure"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // cmp02 fails; cmp03 sends nonsense, then nothing.
    let cmp02 = &store.boot_actions_for_node("cmp02").await.unwrap()[0];
    let (status, _) = node_request(
        &app,
        "POST",
        &report(&cmp02.action_id),
        Some(&keys[1]),
        Some(json!({"status": "failure", "details": [{"message": "disk full", "error": true}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let cmp03 = &store.boot_actions_for_node("cmp03").await.unwrap()[0];
    let (status, _) = node_request(
        &app,
        "POST",
        &report(&cmp03.action_id),
        Some(&keys[2]),
        Some(json!({"status": "done"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = node_request(
        &app,
        "POST",
        &report(&cmp03.action_id),
        Some(&keys[0]),
        Some(json!({"status": "success"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another node's key");

    // The wait ends: cmp01 and ctl01 deployed, cmp02 failed its boot
    // action, cmp03 never reported.
    let done = e
        .wait_finished(task.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Complete);
    assert_eq!(done.result_status, ResultStatus::PartialSuccess, "{done:?}");
    assert_eq!(done.successes, ["cmp01", "ctl01"]);
    assert_eq!(done.failures, ["cmp02", "cmp03"]);
    let said = done.result_message.unwrap();
    assert!(
        said.contains("cmp02 (boot_action_report)") && said.contains("cmp03 (boot_action_report)"),
        "{said}"
    );
    let waits = store.subtasks(wait.id).await.unwrap();
    let reason = |node: &str| {
        waits
            .iter()
            .find(|w| w.node_name.as_deref() == Some(node))
            .and_then(|w| w.result_message.clone())
            .unwrap()
    };
    assert!(reason("cmp01").contains("hello reported success"));
    assert!(reason("cmp02").contains("hello reported failure"));
    assert!(reason("cmp03").contains("no final report from boot action(s) hello"));
    // The nodes' details reached the task that deployed them.
    let messages = store.messages(task.id).await.unwrap();
    let detail = messages
        .iter()
        .find(|m| m.message.contains("disk full"))
        .expect("cmp02's detail");
    assert!(detail.error && detail.message.starts_with("cmp02 hello"));
    assert!(messages.iter().any(|m| m.message.contains("hello started")));
    // No key appears in a message.
    for m in &messages {
        for k in &keys {
            assert!(!m.message.contains(k.as_str()), "{}", m.message);
        }
    }
    e.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_deploy_nodes_ends_the_wait_for_reports() {
    let dir = design_dir();
    let store = drydock_tests::db::sqlite().await;
    // A wait that would last an hour.
    let e = engine(store.clone(), dir.clone(), Duration::from_secs(3600)).await;
    drydock_tests::run_to_end(&e, submit("prepare_nodes"), Duration::from_secs(120)).await;
    let task = e.submit(submit("deploy_nodes")).await.unwrap();
    let wait = step(&store, &task, "boot_action_report").await;
    e.cancel(task.id, "operator").await.unwrap();
    let done = e
        .wait_finished(task.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Terminated, "{done:?}");
    for w in store.subtasks(wait.id).await.unwrap() {
        assert_eq!(w.status, TaskStatus::Terminated, "{w:?}");
        assert_eq!(w.result_message.as_deref(), Some("cancelled"));
    }
    e.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
