//! `drydock serve` as a real process: the README walk-through, the CLI
//! client against it, and a kill -9 mid-task followed by a restart.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Serve {
    child: Child,
    url: String,
    token: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "serve-{}-{name}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `drydock serve` in `dir` with `config`, waiting for its
/// "drydock serving" log line to learn the address.
fn serve(dir: &Path, config: &str) -> Serve {
    std::fs::write(dir.join("drydock.toml"), config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(["--log-json", "serve", "--config", "drydock.toml"])
        .current_dir(dir)
        .env("DRYDOCK_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start drydock serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent
                && let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["fields"]["message"] == "drydock serving"
            {
                let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("drydock serve did not start within 60 s");
    let token = std::fs::read_to_string(dir.join(".drydock/admin-token"))
        .expect("generated admin token")
        .trim()
        .to_owned();
    Serve {
        child,
        url: format!("http://{addr}/api/v1.0"),
        token,
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl Serve {
    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = client()
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        client()
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// Polls the task until `pred` holds (the API is the observable here).
    fn wait_task(&self, id: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + within;
        loop {
            let v = self.get(&format!("/tasks/{id}?layers=2"));
            if pred(&v) {
                return v;
            }
            assert!(Instant::now() < until, "task {id} did not get there: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn register(s: &Serve, n: usize) {
    for i in 0..n {
        let (code, body) = s.post(
            "/nodes",
            json!({"name": format!("node-{i}"), "oob": {"type": "sim", "address": "10.0.0.1"},
                   "credentials": {"username": "root", "password": "calvin-secret"}}),
        );
        assert_eq!(code, 201, "{body}");
        assert!(!body.to_string().contains("calvin-secret"));
    }
}

#[test]
fn readme_walk_through_and_cli_client() {
    let dir = scratch("readme");
    let s = serve(&dir, "");
    register(&s, 3);
    let (code, task) = s.post(
        "/tasks",
        json!({"action": "power_cycle_node", "node_filter": null}),
    );
    assert_eq!(code, 201, "{task}");
    let id = task["task_id"].as_str().unwrap().to_owned();
    let done = s.wait_task(&id, Duration::from_secs(60), |v| {
        v[&id]["status"] == "complete"
    });
    assert_eq!(done[&id]["result"]["status"], "success");
    assert_eq!(
        done[&id]["result"]["successes"],
        json!(["node-0", "node-1", "node-2"])
    );
    assert_eq!(done[&id]["subtask_id_list"].as_array().unwrap().len(), 3);

    // The CLI client against the same server.
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_drydock"))
            .args(args)
            .env("DRYDOCK_URL", s.url.trim_end_matches("/api/v1.0"))
            .env("DRYDOCK_TOKEN", &s.token)
            .output()
            .unwrap()
    };
    let out = cli(&["node", "add", "node-9", "--oob-type", "sim"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&[
        "task",
        "create",
        "power_on_node",
        "--node",
        "node-9",
        "--wait",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["task", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // A failing task makes `--wait` exit 1 (a design that is not there; a
    // filter selecting no node is a success with nothing to do, as in
    // Drydock); a bad token exits 2.
    let out = cli(&[
        "task",
        "create",
        "validate_design",
        "--design-ref",
        "file:no-such-design.yaml",
        "--wait",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(["task", "list"])
        .env("DRYDOCK_URL", s.url.trim_end_matches("/api/v1.0"))
        .env("DRYDOCK_TOKEN", "not-the-token-at-all")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn killed_mid_task_and_restarted_the_task_finishes() {
    let dir = scratch("kill");
    let slow = "[drivers.sim]\nsettings = { delay_ms = \"30000\" }\n";
    let mut s = serve(&dir, slow);
    register(&s, 6);
    let (_, task) = s.post("/tasks", json!({"action": "power_on_node"}));
    let id = task["task_id"].as_str().unwrap().to_owned();
    // Wait until every subtask is running (claimed, driver call in flight).
    s.wait_task(&id, Duration::from_secs(60), |v| {
        let subs: Vec<&Value> = v
            .as_object()
            .map(|o| {
                o.values()
                    .filter(|t| t["parent_task_id"] == json!(id))
                    .collect()
            })
            .unwrap_or_default();
        subs.len() == 6 && subs.iter().all(|t| t["status"] == "running")
    });
    // kill -9: no chance to clean up.
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    drop(s);
    // Restart on the same data directory with fast drivers: the instance
    // finds its unfinished work, re-runs it and completes the task.
    let s = serve(&dir, "");
    let done = s.wait_task(&id, Duration::from_secs(60), |v| {
        v[&id]["status"] == "complete"
    });
    assert_eq!(done[&id]["result"]["status"], "success", "{done}");
    assert_eq!(
        done[&id]["result"]["successes"].as_array().unwrap().len(),
        6
    );
}
