//! Hostile drivers against a real `drydock serve` (issue 13, benchmark,
//! driver half): for each attack of the `hostile` guest, a server process
//! on a fresh Postgres database runs one `interrogate_oob` task and the
//! bench prints the guest's answer (what it got through and the limit that
//! stopped it), the time until the task ended, the server's peak RSS, and
//! the rows (key-value, build data) and task messages stored.
//!
//! `cargo build --release -p drydock-host && cargo bench -p drydock-tests --bench hostile_drivers`
//! (the server binary is `DRYDOCK_BIN`, else `target/release/drydock`, else
//! `target/debug/drydock`).

use drydock::store::{Store, Uuid};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "hostile-bench-admin-token";

/// An attack: its name, the guest's settings, `[driver_limits]` lines.
type Attack = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// The attacks.
const ATTACKS: &[Attack] = &[
    ("kv", &[("count", "100000"), ("size", "100")], ""),
    (
        "kv",
        &[("count", "100000"), ("size", "100")],
        "kv_writes_per_call = 100000",
    ),
    ("kv-rewrite", &[("count", "100000")], ""),
    ("messages", &[("count", "100000"), ("size", "20000")], ""),
    (
        "egress",
        &[("count", "5000"), ("url", "http://10.255.255.1:9/")],
        "",
    ),
    ("logs", &[("count", "100000")], ""),
    ("build-data", &[("count", "10000"), ("size", "100000")], ""),
    ("connections", &[("count", "5000")], ""),
    ("error", &[("size", "8388608")], ""),
    ("memory", &[("count", "100000")], ""),
];

fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DRYDOCK_BIN") {
        return p.into();
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("drydock");
        if p.exists() {
            return p;
        }
    }
    panic!("no drydock binary: run `cargo build --release -p drydock-host` or set DRYDOCK_BIN")
}

/// A peer that answers with headers and never finishes the body.
async fn holding_peer() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
                    )
                    .await;
                let _ = s.read(&mut buf).await;
            });
        }
    });
    port
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `drydock serve` in `dir` with `config`; waits until it serves.
fn serve(dir: &std::path::Path, config: &str, db_url: &str) -> Server {
    std::fs::write(dir.join("drydock.toml"), config).unwrap();
    let mut child = Command::new(server_binary())
        .args(["--log-json", "serve", "--config", "drydock.toml"])
        .current_dir(dir)
        .env("DRYDOCK_LISTEN", "127.0.0.1:0")
        .env("DRYDOCK_DATABASE_URL", db_url)
        .env("DRYDOCK_TOKENS", format!("admin:admin:{TOKEN}"))
        .env("RUST_LOG", "info,driver=off")
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
                let _ = tx.send(Ok(v["fields"]["addr"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()));
                sent = true;
            }
            if !sent && line.contains("\"ERROR\"") {
                let _ = tx.send(Err(line.clone()));
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("drydock serve did not start")
        .unwrap_or_else(|e| panic!("drydock serve failed: {e}"));
    Server {
        child,
        url: format!("http://{addr}/api/v1.0"),
    }
}

/// The peak resident set of process `pid`, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (secret, trusted) = drydock_tests::packages::key();
    let guest = std::fs::read(drydock_tests::guests::HOSTILE).unwrap();
    let signed = drydock::drivers::package::sign(&guest, &secret).unwrap();
    let base = std::env::temp_dir().join(drydock_tests::db::unique("hostile_bench"));
    let drivers = base.join("drivers");
    std::fs::create_dir_all(&drivers).unwrap();
    std::fs::write(drivers.join("hostile.wasm"), signed).unwrap();
    let peer = holding_peer().await;
    let http = reqwest::Client::new();

    println!(
        "{:<12} {:<58} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "attack", "answer", "time ms", "peak MiB", "kv rows", "bd rows", "messages"
    );
    // `HOSTILE_ONLY=kv` runs only the attacks of that name.
    let only = std::env::var("HOSTILE_ONLY").ok();
    for (attack, settings, limits) in ATTACKS {
        if only.as_deref().is_some_and(|o| o != *attack) {
            continue;
        }
        let name = drydock_tests::db::unique("drydock_hostile");
        let db_url =
            drydock::store::testing::create_pg_database(&drydock_tests::db::pg_admin_url(), &name)
                .await
                .expect("Postgres is needed for this bench");
        let store = Store::connect(&db_url).await.unwrap();
        store
            .upsert_node(
                "n1",
                &json!({"name": "n1", "oob": {"type": "hostile"}}),
                None,
            )
            .await
            .unwrap();
        let mut settings: Vec<String> = settings
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\""))
            .collect();
        settings.push(format!("attack = \"{attack}\""));
        if *attack == "connections" {
            settings.push(format!("url = \"http://127.0.0.1:{peer}/\""));
        }
        let config = format!(
            "bundled_drivers = false\ndrivers_dir = \"{}\"\n\n[driver_store]\n\
             trusted_keys = [\"bench:{}:hostile\"]\n\n[drivers.hostile]\n\
             settings = {{ {} }}\negress = [\"127.0.0.1:{peer}\"]\n\n[driver_limits]\n{limits}\n",
            drivers.display(),
            trusted.key,
            settings.join(", ")
        );
        let dir = base.join(drydock_tests::db::unique(attack));
        std::fs::create_dir_all(&dir).unwrap();
        let server = serve(&dir, &config, &db_url);

        let started = Instant::now();
        let resp = http
            .post(format!("{}/tasks", server.url))
            .bearer_auth(TOKEN)
            .json(&json!({"action": "interrogate_oob"}))
            .send()
            .await
            .expect("POST /tasks");
        assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
        let v: Value = resp.json().await.unwrap();
        let id = Uuid::parse_str(v["task_id"].as_str().unwrap()).unwrap();
        let task = loop {
            let t = store.get_task(id).await.unwrap().expect("task");
            if t.status.is_terminal() {
                break t;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "task never ended"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let elapsed = started.elapsed();
        let peak = peak_rss_mib(server.child.id());
        drop(server);

        let ids = store.subtask_ids(id).await.unwrap();
        let messages = store.messages_for_tasks(&ids).await.unwrap();
        let build_data = store.build_data_for_node("n1", false).await.unwrap();
        let kv_rows = store.kv_usage("hostile").await.unwrap().0;
        let answer = match build_data.iter().find(|b| b.generator == "interrogate_oob") {
            Some(b) => {
                let raw: Value = serde_json::from_str(&b.content).unwrap_or(Value::Null);
                let raw = &raw["raw"];
                format!(
                    "ok: {} done, {} refused, limit {}={}",
                    raw["done"], raw["refused"], raw["limit"], raw["max"]
                )
            }
            None => {
                // The node's subtask says why (its text as stored, cut).
                let sub = store.subtasks(id).await.unwrap().pop();
                let m = sub
                    .and_then(|s| s.result_message)
                    .or(task.result_message)
                    .unwrap_or_default();
                let short: String = m.chars().take(36).collect();
                format!("failed: {short}… ({} B)", m.len())
            }
        };
        let attack = if limits.is_empty() {
            attack.to_string()
        } else {
            format!("{attack}*")
        };
        println!(
            "{:<12} {:<58} {:>9.0} {:>9.1} {:>8} {:>8} {:>8}",
            attack,
            answer,
            elapsed.as_secs_f64() * 1e3,
            peak,
            kv_rows,
            build_data.len(),
            messages.len()
        );
        drop(store);
        drydock_tests::db::drop_postgres(&name).await;
    }
    println!("* with [driver_limits] kv_writes_per_call = 100000");
    let _ = std::fs::remove_dir_all(&base);
}
