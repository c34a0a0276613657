//! Hostile designs and hostile design sources (issue 13, items 1 and 2):
//! a 50,000-long host profile chain and an alias bomb posted to
//! `validatedesign` by a viewer, the chain in an orchestrator task, and
//! every refusal of the host's own fetches (cloud metadata, loopback by
//! address and by name, a redirect to loopback, a private range not
//! listed, oversize content, a pin mismatch, the node key templated into a
//! boot-action location), plus template fuel and output caps.

use drydock::api::{ApiToken, AppState, Auth, Role, router};
use drydock::design::bootaction::{ActionContext, AssetType, BootAction, render_with};
use drydock::design::{Design, DesignLimits};
use drydock::drivers::{DriverSet, Runtime};
use drydock::store::ResultStatus;
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use serde_json::{Value, json};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A design directory holding the sample site and `files`.
fn design_dir(files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(drydock_tests::db::unique("hostile-designs"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(examples().join("site.yaml"), dir.join("site.yaml")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// HostProfiles p0 <- p1 <- ... <- p{n-1}, and a node using the last.
fn chain_design(n: usize) -> String {
    let mut text = String::with_capacity(n * 90);
    for i in 0..n {
        text.push_str(&format!(
            "---\nschema: drydock/HostProfile/v1\nmetadata: {{name: p{i}}}\ndata: {{{}}}\n",
            if i == 0 {
                String::new()
            } else {
                format!("host_profile: p{}", i - 1)
            }
        ));
    }
    text.push_str(&format!(
        "---\nschema: drydock/BaremetalNode/v1\nmetadata: {{name: n1}}\ndata: {{host_profile: p{}, addressing: [{{network: oob, address: 10.0.0.5}}]}}\n",
        n - 1
    ));
    text
}

/// About 20 KB: one anchor of 2,000 values referenced 4,000 times.
fn alias_bomb() -> String {
    format!(
        "---\nschema: drydock/Region/v1\nmetadata: {{name: bomb}}\ndata:\n  a: &a [{}]\n  b: [{}]\n",
        vec!["x"; 2_000].join(","),
        vec!["*a"; 4_000].join(",")
    )
}

/// Limits letting the 50,000 chain reach inheritance (the defaults refuse
/// it earlier, for its document count).
fn roomy() -> DesignLimits {
    DesignLimits {
        max_documents: 100_000,
        max_host_profiles: 100_000,
        ..DesignLimits::default()
    }
}

async fn engine(dir: &Path, tweak: impl FnOnce(&mut EngineConfig)) -> Engine {
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let mut cfg = EngineConfig {
        poll_interval: Duration::from_millis(50),
        design_dir: Some(dir.to_path_buf()),
        ..EngineConfig::default()
    };
    tweak(&mut cfg);
    Engine::start(
        drydock_tests::db::sqlite().await,
        rt,
        Arc::new(DriverSet::new()),
        cfg,
    )
    .await
    .unwrap()
}

/// The API on a real socket, with a viewer token.
async fn serve(engine: &Engine) -> String {
    let auth = Auth::new(vec![ApiToken {
        name: "viewer".into(),
        token: "viewer-token".into(),
        role: Role::Viewer,
    }]);
    let app = router(AppState::new(engine.clone(), Arc::new(auth)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/v1.0")
}

async fn validatedesign(api: &str, href: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{api}/validatedesign"))
        .bearer_auth("viewer-token")
        .json(&json!({ "href": href }))
        .send()
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// This process's peak resident set, from /proc.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::test]
async fn a_50000_profile_chain_is_a_finding_naming_it_and_the_server_keeps_answering() {
    let dir = design_dir(&[("chain.yaml", &chain_design(50_000))]);
    // The defaults refuse it for its document count.
    let strict = engine(&dir, |_| {}).await;
    let api = serve(&strict).await;
    let (status, body) = validatedesign(&api, "file:chain.yaml").await;
    assert_eq!(status, 400, "{body}");
    // Drydock's Status: the reason is in the message list.
    assert!(
        body.to_string().contains("design_limits.max_documents"),
        "{body}"
    );
    strict.shutdown();

    // With room for it, inheritance runs (without recursion) and stops at
    // the depth limit: one finding naming the chain.
    let e = engine(&dir, |c| c.design_limits = roomy()).await;
    let api = serve(&e).await;
    let (status, body) = validatedesign(&api, "file:chain.yaml").await;
    assert_eq!(status, 400, "{body}");
    let list = body["details"]["messageList"].as_array().unwrap();
    let depth: Vec<&Value> = list
        .iter()
        .filter(|m| {
            m["message"]
                .as_str()
                .is_some_and(|s| s.contains("max_inheritance_depth"))
        })
        .collect();
    assert_eq!(depth.len(), 1, "{list:#?}");
    let finding = depth[0]["message"].as_str().unwrap();
    assert!(
        finding.contains("`p32`")
            && finding.contains("p32 -> p31 -> p30")
            && finding.contains("-> p0"),
        "{finding}"
    );
    assert_eq!(depth[0]["documents"][0]["name"], "p32");
    // Still serving.
    let (status, body) = validatedesign(&api, "file:site.yaml").await;
    assert_eq!(status, 200, "{body}");
    e.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_alias_bomb_is_refused_within_its_value_budget() {
    let bomb = alias_bomb();
    assert!(bomb.len() < 24 << 10, "{} bytes", bomb.len());
    let dir = design_dir(&[("bomb.yaml", &bomb)]);
    let e = engine(&dir, |_| {}).await;
    let api = serve(&e).await;
    let before = peak_rss_mib();
    let (status, body) = validatedesign(&api, "file:bomb.yaml").await;
    println!(
        "alias bomb ({} bytes, 8,000,000 values expanded): HTTP {status}, peak RSS {before:.0} -> {:.0} MiB",
        bomb.len(),
        peak_rss_mib()
    );
    assert_eq!(status, 400, "{body}");
    let msg = body.to_string();
    assert!(
        msg.contains("more than 1000000 YAML values") && msg.contains("design_limits.max_values"),
        "{msg}"
    );
    let (status, _) = validatedesign(&api, "file:site.yaml").await;
    assert_eq!(status, 200);
    e.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_orchestrator_task_with_the_chain_fails_with_the_reason() {
    let dir = design_dir(&[("chain.yaml", &chain_design(50_000))]);
    let e = engine(&dir, |c| c.design_limits = roomy()).await;
    let req = TaskRequest {
        action: "prepare_nodes".into(),
        design_ref: Some("file:chain.yaml".into()),
        ..TaskRequest::default()
    };
    let done = drydock_tests::run_to_end(&e, req, Duration::from_secs(120)).await;
    assert_eq!(done.result_status, ResultStatus::Failure, "{done:?}");
    let msgs = e.store().messages(done.id).await.unwrap();
    assert!(
        msgs.iter().any(|m| m.error
            && m.message.contains("p32 -> p31")
            && m.message.contains("max_inheritance_depth")),
        "{msgs:?}"
    );
    // The alias bomb fails its task with the limit it broke.
    std::fs::write(dir.join("bomb.yaml"), alias_bomb()).unwrap();
    let req = TaskRequest {
        action: "validate_design".into(),
        design_ref: Some("file:bomb.yaml".into()),
        ..TaskRequest::default()
    };
    let done = drydock_tests::run_to_end(&e, req, Duration::from_secs(120)).await;
    assert_eq!(done.result_status, ResultStatus::Failure, "{done:?}");
    let msgs = e.store().messages(done.id).await.unwrap();
    assert!(
        msgs.iter()
            .any(|m| m.message.contains("design_limits.max_values")),
        "{msgs:?}"
    );
    e.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

// ------------------------------------------------------------ fetches

/// A local HTTP server on `ip` serving `app`; its port.
async fn local(ip: &str, app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn site() -> String {
    std::fs::read_to_string(examples().join("site.yaml")).unwrap()
}

/// Serves the sample site at `/site.yaml`, counting requests.
fn site_app(hits: Arc<AtomicUsize>) -> axum::Router {
    let text = site();
    axum::Router::new().route(
        "/site.yaml",
        axum::routing::get(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            let text = text.clone();
            async move { text }
        }),
    )
}

/// http allowed, loopback 127.0.0.1 listed.
fn http_from_loopback(c: &mut EngineConfig) {
    c.design_sources.schemes = vec!["http".into(), "https".into()];
    c.design_sources.cidrs = vec!["127.0.0.1/32".into()];
}

#[tokio::test]
async fn special_addresses_are_refused_unless_listed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = local("127.0.0.1", site_app(hits.clone())).await;
    let dir = design_dir(&[]);
    let open = engine(&dir, |c| {
        c.design_sources.schemes = vec!["http".into(), "https".into()];
    })
    .await;
    for (reference, needle) in [
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "cloud metadata",
        ),
        (
            "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
            "cloud metadata",
        ),
        (format!("http://127.0.0.1:{port}/site.yaml"), "loopback"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/site.yaml"),
            "loopback",
        ),
        // By name: resolved, every address checked, refused before connecting.
        (format!("http://localhost:{port}/site.yaml"), "loopback"),
        ("http://10.255.255.1/site.yaml".to_owned(), "private"),
        ("http://192.168.0.1/site.yaml".to_owned(), "private"),
    ] {
        let err = open.load_design(&reference).await.unwrap_err().to_string();
        assert!(
            err.contains("refused") && err.contains(needle),
            "{reference}: {err}"
        );
        // Boot-action locations go through the same checks.
        let err = open
            .fetch_reference(&reference)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{reference}: {err}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused source was contacted"
    );
    open.shutdown();

    // Listed, the same server is read.
    let listed = engine(&dir, http_from_loopback).await;
    let d = listed
        .load_design(&format!("http://127.0.0.1:{port}/site.yaml"))
        .await
        .unwrap();
    assert_eq!(d.nodes.len(), 24);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    listed.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_redirect_is_checked_like_the_first_url() {
    // 127.0.0.2 is loopback too, but only 127.0.0.1 is listed.
    let hits = Arc::new(AtomicUsize::new(0));
    let target = local("127.0.0.2", site_app(hits.clone())).await;
    let redirect = axum::Router::new()
        .route(
            "/to-loopback",
            axum::routing::get(move || async move {
                axum::response::Redirect::temporary(&format!("http://127.0.0.2:{target}/site.yaml"))
            }),
        )
        .route(
            "/to-metadata",
            axum::routing::get(|| async {
                axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data/")
            }),
        );
    let port = local("127.0.0.1", redirect).await;
    let dir = design_dir(&[]);
    let e = engine(&dir, http_from_loopback).await;
    for (path, needle) in [
        ("to-loopback", "127.0.0.2"),
        ("to-metadata", "cloud metadata"),
    ] {
        let err = e
            .load_design(&format!("http://127.0.0.1:{port}/{path}"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refused") && err.contains("redirect") && err.contains(needle),
            "{path}: {err}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
    e.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn size_pins_and_remote_content_in_errors() {
    let app = axum::Router::new()
        .route(
            "/big.yaml",
            axum::routing::get(|| async { "# padding\n".repeat(300) }),
        )
        .route(
            "/secret",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "AKIA-SECRET-BODY",
                )
            }),
        )
        .route(
            "/not-yaml",
            axum::routing::get(|| async { "key: [AKIA-SECRET-BODY\n" }),
        );
    let port = local("127.0.0.1", app).await;
    let dir = design_dir(&[]);
    let e = engine(&dir, |c| {
        http_from_loopback(c);
        c.design_limits.max_bytes = 1024;
    })
    .await;
    let err = e
        .load_design(&format!("http://127.0.0.1:{port}/big.yaml"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than 1024 bytes"), "{err}");
    let err = e
        .load_design(&format!("http://127.0.0.1:{port}/secret"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("500") && !err.contains("AKIA"), "{err}");
    e.shutdown();

    // A pin: the right digest loads, another is refused.
    let e = engine(&dir, |_| {}).await;
    let digest = hex::encode(sha2::Sha256::digest(site().as_bytes()));
    let pinned = e
        .load_design(&format!("file:site.yaml#sha256={digest}"))
        .await
        .unwrap();
    assert_eq!(pinned.nodes.len(), 24);
    let err = e
        .load_design(&format!("file:site.yaml#sha256={}", "0".repeat(64)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match its pin"), "{err}");
    e.shutdown();

    // A package list fetched from a source: its content never in the error.
    let e = engine(&dir, http_from_loopback).await;
    let action = boot_action(json!([{"type": "pkg_list",
        "location": format!("http://127.0.0.1:{port}/not-yaml")}]));
    let fetch = |r: String| {
        let e = e.clone();
        async move { e.fetch_reference(&r).await.map_err(|e| e.to_string()) }
    };
    let err = render_with(
        &action,
        None,
        &json!({}),
        &ctx(),
        &fetch,
        &DesignLimits::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("not YAML") && !err.contains("AKIA"), "{err}");
    e.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

// ------------------------------------------------------- boot actions

fn boot_action(assets: Value) -> BootAction {
    let doc = drydock::design::documents::Document {
        kind: drydock::design::documents::Kind::BootAction,
        form: drydock::design::documents::Form::Deckhand,
        name: "hostile".into(),
        data: json!({ "assets": assets }),
        index: 0,
    };
    drydock::design::bootaction::read(&doc).unwrap()
}

fn ctx() -> ActionContext {
    ActionContext {
        action_id: "01ABC".into(),
        action_key: "beefcafe".into(),
        report_url: "http://drydock:9000/api/v1.0/bootactions/".into(),
        design_ref: "file:site.yaml".into(),
    }
}

#[tokio::test]
async fn the_node_key_is_never_in_a_location() {
    let asked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = asked.clone();
    let fetch = move |url: String| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(url);
            Ok(b"[Service]\n".to_vec())
        }
    };
    let action = boot_action(
        json!([{"type": "unit", "path": "/etc/systemd/system/x.service",
        "location": "https://assets.example/{{ action.action_key }}/x.service",
        "location_pipeline": ["template"]}]),
    );
    let err = render_with(
        &action,
        None,
        &json!({"hostname": "n1"}),
        &ctx(),
        &fetch,
        &DesignLimits::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("undefined"), "{err}");
    assert!(
        asked.lock().unwrap().is_empty(),
        "{:?}",
        asked.lock().unwrap()
    );
    // The rest of the context is there; the key still reaches the data.
    let action = boot_action(json!([{"type": "file", "path": "/etc/x",
        "location": "https://assets.example/{{ node.hostname }}/{{ action.action_id }}",
        "location_pipeline": ["template"],
        "data_pipeline": ["utf8_decode", "template"]}]));
    let fetch_template = |_url: String| async move { Ok(b"key={{ action.action_key }}".to_vec()) };
    let out = render_with(
        &action,
        None,
        &json!({"hostname": "n1"}),
        &ctx(),
        &fetch_template,
        &DesignLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(out[0].bytes, b"key=beefcafe");
    let action = boot_action(json!([{"type": "file", "path": "/etc/x",
        "location": "https://assets.example/{{ node.hostname }}/{{ action.action_id }}",
        "location_pipeline": ["template"]}]));
    render_with(
        &action,
        None,
        &json!({"hostname": "n1"}),
        &ctx(),
        &fetch,
        &DesignLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(*asked.lock().unwrap(), ["https://assets.example/n1/01ABC"]);
}

#[tokio::test]
async fn templates_run_out_of_fuel_and_output() {
    let none = |_: String| async { Err::<Vec<u8>, String>("no fetch".into()) };
    let file = |template: &str| {
        boot_action(json!([{"type": "file", "path": "/etc/x", "data": template,
            "data_pipeline": ["template"]}]))
    };
    let spin =
        file("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
    let err = render_with(
        &spin,
        None,
        &json!({}),
        &ctx(),
        &none,
        &DesignLimits::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("design_limits.template_fuel"), "{err}");
    let flood = file(&format!(
        "{{% for i in range(100000) %}}{}{{% endfor %}}",
        "x".repeat(100)
    ));
    let err = render_with(
        &flood,
        None,
        &json!({}),
        &ctx(),
        &none,
        &DesignLimits::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("design_limits.template_max_bytes"), "{err}");
    // Values built on repeatedly escape fuel and the output cap: such a
    // template is refused when the design is read (validation), before
    // anything is compiled (the compiler folds constant expressions).
    let doubling = format!(
        "{{% set a = 'x' * 1000000 %}}{}{{{{ a | length }}}}",
        "{% set a = a ~ a %}".repeat(5)
    );
    let doc = drydock::design::documents::Document {
        kind: drydock::design::documents::Kind::BootAction,
        form: drydock::design::documents::Form::Deckhand,
        name: "doubling".into(),
        data: json!({"assets": [{"type": "file", "path": "/etc/x", "data": doubling,
            "data_pipeline": ["template"]}]}),
        index: 0,
    };
    let err = drydock::design::bootaction::read(&doc)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`*` is not allowed"), "{err}");
    let fine = file("{{ node.hostname }}");
    let out = render_with(
        &fine,
        Some(AssetType::File),
        &json!({"hostname": "n1"}),
        &ctx(),
        &none,
        &DesignLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(out[0].bytes, b"n1");
    // Parsing a design never recurses per profile: the chain parses.
    let d = Design::parse_with(&chain_design(50_000), &roomy()).unwrap();
    assert_eq!(d.profiles.len(), 32);
}
