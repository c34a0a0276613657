//! Hostile designs against a real `drydock serve` (issue 13, design half):
//! per attack the answer, the time to refuse and the server's resident set
//! (current and peak, from /proc). Attacks: a 50,000-long host profile
//! chain, alias bombs (20 KB and 100 KB), an oversize design, boot-action
//! templates that spin and flood (in a `deploy_nodes`), and design
//! references at cloud metadata, loopback and private addresses, and
//! through a redirect to loopback.
//!
//! ```sh
//! cargo build --release -p drydock-host        # the server it starts
//! cargo bench -p drydock-tests --bench hostile_designs
//! # or, on a debug build: cargo build -p drydock-host &&
//! #   cargo bench --profile dev -p drydock-tests --bench hostile_designs
//! ```
//! `DRYDOCK_BIN` names another server binary.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIEWER: &str = "viewer-token-0123456789";
const OPERATOR: &str = "operator-token-0123456789";

struct Server {
    child: Child,
    api: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// (current, peak) resident set in MiB.
    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// The server binary: `DRYDOCK_BIN`, else `drydock` in this bench's
/// profile directory.
fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("DRYDOCK_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("drydock");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build [--release] -p drydock-host) or set DRYDOCK_BIN",
        bin.display()
    );
    bin
}

fn start(dir: &Path, config: &str) -> Server {
    std::fs::write(dir.join("drydock.toml"), config).unwrap();
    let mut child = Command::new(binary())
        .args(["--log-json", "serve", "--config", "drydock.toml"])
        .current_dir(dir)
        .env("DRYDOCK_LISTEN", "127.0.0.1:0")
        .env(
            "DRYDOCK_TOKENS",
            format!("v:viewer:{VIEWER},o:operator:{OPERATOR}"),
        )
        .env("DRYDOCK_SECRET_BMC_PASSWORD", "calvin")
        .env("DRYDOCK_SECRET_SWITCH_PASSWORD", "arista")
        .env("RUST_LOG", "warn,drydock=info")
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
        .recv_timeout(Duration::from_secs(300))
        .expect("drydock serve did not start");
    Server {
        child,
        api: format!("http://{addr}/api/v1.0"),
    }
}

fn chain_design(n: usize) -> String {
    let mut text = String::with_capacity(n * 90);
    for i in 0..n {
        let parent = if i == 0 {
            String::new()
        } else {
            format!("host_profile: p{}", i - 1)
        };
        text.push_str(&format!(
            "---\nschema: drydock/HostProfile/v1\nmetadata: {{name: p{i}}}\ndata: {{{parent}}}\n"
        ));
    }
    // A node using the deepest profile, so inheritance has to walk it.
    text.push_str(&format!(
        "---\nschema: drydock/BaremetalNode/v1\nmetadata: {{name: n1}}\n\
         data: {{host_profile: p{}, addressing: [{{network: oob, address: 10.0.0.5}}]}}\n",
        n - 1
    ));
    text
}

/// One anchor of `width` values referenced `refs` times.
fn alias_bomb(width: usize, refs: usize) -> String {
    format!(
        "---\nschema: drydock/Region/v1\nmetadata: {{name: bomb}}\ndata:\n  a: &a [{}]\n  b: [{}]\n",
        vec!["x"; width].join(","),
        vec!["*a"; refs].join(",")
    )
}

/// The sample site plus boot actions for cmp01 whose package list
/// location is a template that spins, or floods.
fn template_site(examples: &Path) -> String {
    let mut site = std::fs::read_to_string(examples.join("site.yaml")).unwrap();
    for (name, template) in [
        (
            "spin",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}https://x.example/",
        ),
        (
            "flood",
            "https://x.example/{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}",
        ),
    ] {
        site.push_str(&format!(
            "---\nschema: drydock/BootAction/v1\nmetadata: {{name: {name}}}\ndata:\n  signaling: false\n  \
             node_filter: {{filter_set: [{{filter_type: union, node_names: [cmp01]}}]}}\n  \
             assets:\n  - type: pkg_list\n    location: \"{template}\"\n    location_pipeline: [template]\n"
        ));
    }
    site
}

struct Report<'a> {
    server: &'a mut Server,
}

impl Report<'_> {
    fn line(&mut self, attack: &str, answer: &str, took: Duration) {
        let alive = self.server.alive();
        let (rss, peak) = self.server.rss();
        let mut answer = answer.replace('\n', " ");
        if answer.len() > 150 {
            let mut cut = 150;
            while !answer.is_char_boundary(cut) {
                cut -= 1;
            }
            answer.truncate(cut);
            answer.push_str("...");
        }
        println!(
            "{attack:<34} {:>9.1} ms  rss {rss:>6.0} MiB  peak {peak:>6.0} MiB  {}  {answer}",
            took.as_secs_f64() * 1e3,
            if alive { "up  " } else { "DEAD" },
        );
    }
}

async fn validate(client: &reqwest::Client, api: &str, href: &str) -> String {
    match client
        .post(format!("{api}/validatedesign"))
        .bearer_auth(VIEWER)
        .json(&json!({ "href": href }))
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let finding = body["details"]["messageList"]
                .as_array()
                .and_then(|l| {
                    l.iter()
                        .find(|m| m["error"] == true)
                        .and_then(|m| m["message"].as_str())
                })
                .or(body["message"].as_str())
                .unwrap_or_default()
                .to_owned();
            format!("HTTP {status}: {finding}")
        }
        Err(e) => format!("no answer: {e}"),
    }
}

/// Runs an orchestrator task to its end: its id, status and message.
async fn task(client: &reqwest::Client, api: &str, body: Value) -> (String, String) {
    let created: Value = client
        .post(format!("{api}/tasks"))
        .bearer_auth(OPERATOR)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["task_id"].as_str().unwrap_or_default().to_owned();
    loop {
        let t: Value = client
            .get(format!("{api}/tasks/{id}"))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if t["status"] == "complete" {
            return (
                id,
                format!("{}: {}", t["result"]["status"], t["result"]["message"]),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The message of task `id` (or its subtasks) naming `needle`.
async fn message_naming(
    client: &reqwest::Client,
    api: &str,
    id: &str,
    needle: &str,
) -> Option<String> {
    let full: Value = client
        .get(format!("{api}/tasks/{id}?layers=3"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let mut stack = vec![&full];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains(needle) => return Some(s.clone()),
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    None
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let dir = std::env::temp_dir().join(drydock_tests::db::unique("hostile-designs-bench"));
    let designs = dir.join("designs");
    std::fs::create_dir_all(&designs).unwrap();
    std::fs::copy(examples.join("site.yaml"), designs.join("site.yaml")).unwrap();
    std::fs::write(designs.join("chain.yaml"), chain_design(50_000)).unwrap();
    std::fs::write(designs.join("bomb20k.yaml"), alias_bomb(2_000, 4_000)).unwrap();
    std::fs::write(designs.join("bomb100k.yaml"), alias_bomb(10_000, 20_000)).unwrap();
    std::fs::write(designs.join("big.yaml"), "# padding\n".repeat(1_800_000)).unwrap();
    std::fs::write(designs.join("templates.yaml"), template_site(&examples)).unwrap();

    // A redirector on 127.0.0.3 (the one address allowed below) sending the server on to
    // other loopback addresses and to cloud metadata.
    let redirector = axum::Router::new()
        .route(
            "/to-admin",
            axum::routing::get(|| async {
                axum::response::Redirect::temporary("http://127.0.0.2:9/api/v1.0/health")
            }),
        )
        .route(
            "/to-metadata",
            axum::routing::get(|| async {
                axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data/")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.3:0").await.unwrap();
    let redirect_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, redirector).await });

    // Room for the 50,000 chain to reach inheritance (the default
    // max_documents refuses it sooner); every other limit at its default.
    let config = "design_dir = \"designs\"\n\
                  [design_sources]\nschemes = [\"https\", \"http\"]\ncidrs = [\"127.0.0.3/32\"]\n\
                  [design_limits]\nmax_documents = 100000\nmax_host_profiles = 100000\n";
    let mut server = start(&dir, config);
    let api = server.api.clone();
    let port = api
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let mut report = Report {
        server: &mut server,
    };
    println!(
        "{:<34} {:>12}  {:<15}  {:<16}  answer",
        "attack", "to refuse", "server rss", "peak rss"
    );
    report.line("(started)", "", Duration::ZERO);

    let attacks: Vec<(&str, String)> = vec![
        ("sample site (baseline)", "file:site.yaml".into()),
        ("profile chain, 50,000 deep", "file:chain.yaml".into()),
        ("alias bomb, 20 KB (8M values)", "file:bomb20k.yaml".into()),
        (
            "alias bomb, 100 KB (200M values)",
            "file:bomb100k.yaml".into(),
        ),
        ("oversize design, 18 MB", "file:big.yaml".into()),
        (
            "ref: cloud metadata",
            "http://169.254.169.254/latest/meta-data/".into(),
        ),
        (
            "ref: loopback admin port",
            format!("http://127.0.0.1:{port}/api/v1.0/health"),
        ),
        (
            "ref: localhost by name",
            format!("http://localhost:{port}/x"),
        ),
        (
            "ref: IPv4-mapped loopback",
            format!("http://[::ffff:127.0.0.1]:{port}/x"),
        ),
        ("ref: private range", "http://10.255.255.1/site.yaml".into()),
        (
            "ref: redirect to loopback",
            format!("http://127.0.0.3:{redirect_port}/to-admin"),
        ),
        (
            "ref: redirect to metadata",
            format!("http://127.0.0.3:{redirect_port}/to-metadata"),
        ),
        (
            "ref: pin mismatch",
            format!("file:site.yaml#sha256={}", "0".repeat(64)),
        ),
    ];
    for (attack, href) in &attacks {
        let t0 = Instant::now();
        let answer = validate(&client, &api, href).await;
        report.line(attack, &answer, t0.elapsed());
    }

    // Templates render in deploy_nodes (pkg_list locations): one spins,
    // one floods; each fails its node's boot action with the limit.
    let filter = json!({"filter_set": [{"filter_type": "union", "node_names": ["cmp01"]}]});
    let t0 = Instant::now();
    let prepared = task(
        &client,
        &api,
        json!({"action": "prepare_nodes", "design_ref": "file:templates.yaml", "node_filter": filter}),
    )
    .await;
    report.line("(prepare_nodes cmp01)", &prepared.1, t0.elapsed());
    let t0 = Instant::now();
    let deployed = task(
        &client,
        &api,
        json!({"action": "deploy_nodes", "design_ref": "file:templates.yaml", "node_filter": filter}),
    )
    .await;
    let took = t0.elapsed();
    for needle in [
        "design_limits.template_fuel",
        "design_limits.template_max_bytes",
    ] {
        let msg = message_naming(&client, &api, &deployed.0, needle)
            .await
            .unwrap_or_else(|| format!("(no message naming {needle}; task {})", deployed.1));
        report.line(
            if needle.ends_with("fuel") {
                "template: nested 100k x 100k loop"
            } else {
                "template: 100 MB of output"
            },
            &msg,
            took,
        );
    }
    let t0 = Instant::now();
    let after = validate(&client, &api, "file:site.yaml").await;
    report.line("sample site (after)", &after, t0.elapsed());
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
