//! The OpenAPI document against the real server: it covers every route
//! (each documented path answers each documented method, and only those),
//! the docs page works offline, and schemathesis (PyPI,
//! `tests/peers/schemathesis/setup.sh`) finds no 5xx and no answer that
//! breaks the document.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use drydock::config::{Config, DriverSettings, TokenConfig};
use drydock::server::Server;
use serde_json::{Value, json};

const ADMIN: &str = "openapi-admin-token-0123456789";
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A real server (SQLite, the sim driver) with an admin token.
struct Site {
    server: Option<Server>,
    url: String,
    dir: PathBuf,
}

impl Site {
    async fn start() -> Site {
        let dir = drydock_tests::temp_dir("openapi");
        let mut cfg = Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            data_dir: dir.clone(),
            design_dir: Some(repo().join("examples")),
            tokens: vec![TokenConfig::inline("admin", "admin", ADMIN)],
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
        let url = format!("http://{}", server.addr);
        Site {
            server: Some(server),
            url,
            dir,
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `path` with its `{params}` filled in (a UUID for `{id}`).
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(match &rest[start + 1..end] {
            "id" => "00000000-0000-4000-8000-000000000000",
            _ => "no-such-thing",
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_covers_every_route_and_the_docs_page_is_offline() {
    let site = Site::start().await;
    let http = Site::client();
    // Open: no token needed.
    let r = http
        .get(format!("{}/api/v1.0/openapi.json", site.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Every route of the API (README's table), each documented.
    let expected: &[(&str, &str)] = &[
        ("get", "/versions"),
        ("get", "/api/v1.0/versions"),
        ("get", "/api/v1.0/health"),
        ("get", "/api/v1.0/health/extended"),
        ("get", "/api/v1.0/tasks"),
        ("post", "/api/v1.0/tasks"),
        ("delete", "/api/v1.0/tasks"),
        ("get", "/api/v1.0/tasks/{id}"),
        ("get", "/api/v1.0/tasks/{id}/builddata"),
        ("post", "/api/v1.0/tasks/{id}/cancel"),
        ("get", "/api/v1.0/nodes"),
        ("post", "/api/v1.0/nodes"),
        ("get", "/api/v1.0/nodes/{name}"),
        ("delete", "/api/v1.0/nodes/{name}"),
        ("get", "/api/v1.0/nodes/{name}/builddata"),
        ("post", "/api/v1.0/nodefilter"),
        ("post", "/api/v1.0/validatedesign"),
        ("get", "/api/v1.0/bootactions/nodes/{hostname}/units"),
        ("get", "/api/v1.0/bootactions/nodes/{hostname}/files"),
        ("post", "/api/v1.0/bootactions/{action_id}"),
        ("get", "/api/v1.0/drivers"),
        ("post", "/api/v1.0/drivers"),
        ("get", "/api/v1.0/drivers/{name}"),
        ("post", "/api/v1.0/drivers/{name}/activate"),
        ("post", "/api/v1.0/drivers/{name}/rollback"),
        ("delete", "/api/v1.0/drivers/{name}/versions/{version}"),
        ("get", "/api/v1.0/nodes/{name}/events"),
        ("get", "/api/v1.0/nodes/{name}/sync"),
        ("post", "/api/v1.0/nodes/{name}/maintenance"),
        ("delete", "/api/v1.0/nodes/{name}/maintenance"),
        ("get", "/api/v1.0/fleet"),
        ("get", "/api/v1.0/fleet/bmcs"),
        ("get", "/api/v1.0/openapi.json"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in expected {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is not documented"
        );
    }

    // Every documented path answers its documented methods (not the
    // router's 404 or 405) and 405s the others: the document and the
    // router agree.
    for (path, item) in paths {
        let url = format!("{}{}", site.url, concrete(path));
        for method in METHODS {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = http
                .request(m, &url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let message = body["message"].as_str().unwrap_or_default();
            if item.get(method).is_some() {
                assert_ne!(status, 405, "{method} {path}: {body}");
                assert!(
                    !message.starts_with("no such route"),
                    "{method} {path} is documented and not served: {body}"
                );
                assert!(status < 500, "{method} {path}: {status} {body}");
            } else {
                assert_eq!(status, 405, "{method} {path} is served and not documented");
            }
        }
        // Every operation has the error body as its default answer.
        for method in METHODS {
            if let Some(op) = item.get(method) {
                assert_eq!(
                    op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}"
                );
            }
        }
    }

    // The docs page: Swagger UI from the binary, nothing from elsewhere.
    let page = http
        .get(format!("{}/api/v1.0/docs", site.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/v1.0/openapi.json"), "{html}");
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "{html}"
    );
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let r = http
            .get(format!("{}/api/v1.0/docs/{asset}", site.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(r.bytes().await.unwrap().len() > 10_000, "{asset}");
    }
    site.stop().await;
}

/// Installs schemathesis (idempotent); the path of its `st`.
fn schemathesis() -> PathBuf {
    let setup = repo().join("tests/peers/schemathesis/setup.sh");
    let status = std::process::Command::new("bash")
        .arg(&setup)
        .status()
        .expect("run setup.sh");
    assert!(status.success(), "{} failed", setup.display());
    repo().join("target/peers/schemathesis/venv/bin/st")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let st = schemathesis();
    let site = Site::start().await;
    let http = Site::client();
    // Some data, so that lists and details have something to show.
    for n in ["st-node-1", "st-node-2"] {
        let r = http
            .post(format!("{}/api/v1.0/nodes", site.url))
            .bearer_auth(ADMIN)
            .json(
                &json!({"name": n, "oob": {"type": "sim", "address": "10.0.0.1"},
                "credentials": {"username": "root", "password": "calvin"}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = http
        .post(format!("{}/api/v1.0/tasks", site.url))
        .bearer_auth(ADMIN)
        .json(&json!({"action": "interrogate_oob", "node_filter": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let task: Value = r.json().await.unwrap();
    let task_id = task["task_id"].as_str().unwrap().to_owned();
    // Its driver calls are in st-node-1's timeline before the run starts.
    let engine = &site.server.as_ref().unwrap().engine;
    let done = engine
        .wait_finished(task_id.parse().unwrap(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.result_status.as_str(), "success", "{done:?}");
    engine.timeline().flush().await;

    // Real identifiers, so that detail routes answer more than 404s: the
    // node routes name st-node-2 (which `DELETE /nodes/{name}` may remove),
    // the fleet routes st-node-1 (whose timeline holds the task's driver
    // calls). The coverage phase is off for the boot action report only:
    // schemathesis 4.32.5's coverage generator fails on its own
    // ("Inconsistent results") for that body's free-form `details[].*`; the
    // fuzzing phase still sends it generated reports.
    let config = site.dir.join("schemathesis.toml");
    let text = r#"
[parameters]
"path.id" = "TASK_ID"
"path.hostname" = "st-node-1"

[[operations]]
include-path-regex = "^/api/v1.0/nodes/\\{name\\}(/builddata)?$"
parameters = { "path.name" = "st-node-2" }

[[operations]]
include-path-regex = "^/api/v1.0/nodes/\\{name\\}/(events|sync|maintenance)$"
parameters = { "path.name" = "st-node-1" }

[[operations]]
include-path-regex = "^/api/v1.0/drivers/"
parameters = { "path.name" = "sim" }

[[operations]]
include-path = "/api/v1.0/bootactions/{action_id}"
phases.coverage.enabled = false
"#;
    std::fs::write(&config, text.replace("TASK_ID", &task_id)).unwrap();

    // A schemathesis run whose only problems are its own errors (e.g.
    // Hypothesis calling its data generation flaky on a busy machine) is
    // tried once more; any failure of a check fails the test at once.
    for attempt in 1..=2 {
        let report = site.dir.join(format!("schemathesis-{attempt}.json"));
        let out = run_schemathesis(&st, &config, &site.url, &report).await;
        // The summary (operations, test cases, failures) for the log.
        println!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&std::fs::read(&report).expect("a JSON report"))
            .expect("the report is JSON");
        println!(
            "schemathesis attempt {attempt}: {} test cases, {} with failures, \
             {} unique failures, {} errored; failures {}; errors {}",
            r["test_cases"]["generated"],
            r["test_cases"]["with_failures"],
            r["test_cases"]["unique_failures"],
            r["test_cases"]["errored"],
            r["failures"],
            r["errors"]
        );
        assert_eq!(
            r["failures"],
            json!([]),
            "schemathesis found problems; see its output above"
        );
        assert!(r["test_cases"]["generated"].as_u64().unwrap() > 500, "{r}");
        if out.status.success() {
            break;
        }
        assert!(
            attempt < 2,
            "schemathesis failed twice (exit {:?}); see its output above",
            out.status.code()
        );
    }
    site.stop().await;
}

/// One schemathesis run against `url` with the admin token and `config`,
/// bounded (25 examples per operation and phase).
async fn run_schemathesis(
    st: &std::path::Path,
    config: &std::path::Path,
    url: &str,
    report: &std::path::Path,
) -> std::process::Output {
    let mut cmd = std::process::Command::new(st);
    cmd.arg("--config-file")
        .arg(config)
        .args([
            "run",
            &format!("{url}/api/v1.0/openapi.json"),
            "--url",
            url,
            "--header",
            &format!("Authorization: Bearer {ADMIN}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--workers",
            "2",
            "--request-timeout",
            "20",
            "--suppress-health-check",
            "all",
            "--report",
            "json",
            "--report-json-path",
        ])
        .arg(report)
        // Its cache (`.schemathesis/`) goes beside the report, not into the
        // repository.
        .current_dir(report.parent().expect("the report is in a directory"))
        .env("NO_COLOR", "1");
    tokio::task::spawn_blocking(move || cmd.output().expect("run schemathesis"))
        .await
        .unwrap()
}
