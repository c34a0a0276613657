//! `/metrics` after real work: a server with the sim driver, three nodes
//! behind three BMC addresses, one `power_cycle_node` task through the API;
//! then the Prometheus text on both the API listener (token) and the
//! separate metrics listener (`[observe] metrics_listen`, no token) must
//! carry the driver, BMC, task, HTTP, writer, leadership and driver-version
//! series with the values that work implies.
//!
//! The recorder is process-wide, so counters are compared with a scrape
//! taken before the task (this binary holds one test only, but the deltas
//! keep the assertions exact either way).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use drydock::config::{Config, DriverSettings, TokenConfig};
use serde_json::{Value, json};

const TOKEN: &str = "observe-admin-token-0123456789";
const VIEWER: &str = "observe-viewer-token-012345678";

/// The value of the series `name{labels}` (labels in any order, all
/// required, none extra), if present.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, v) = line.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let got: Vec<(&str, &str)> = if rest.is_empty() {
                Vec::new()
            } else {
                rest.split("\",")
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").expect("label");
                        (k, v.trim_end_matches('"'))
                    })
                    .collect()
            };
            let same = got.len() == labels.len() && labels.iter().all(|l| got.contains(l));
            same.then(|| v.parse().expect("a number"))
        })
}

fn count(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(text, name, labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_real_task() {
    let dir = drydock_tests::temp_dir("drydock-observe");
    let mut cfg = Config {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        data_dir: dir.clone(),
        design_dir: None,
        tokens: vec![
            TokenConfig::inline("admin", "admin", TOKEN),
            TokenConfig::inline("viewer", "viewer", VIEWER),
        ],
        ..Config::default()
    };
    cfg.observe.metrics_listen = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    cfg.drivers.insert(
        "sim".into(),
        DriverSettings {
            settings: [("delay_ms".to_string(), "0".to_string())].into(),
            ..DriverSettings::default()
        },
    );
    let server = drydock::server::start(cfg).await.expect("drydock starts");
    let base = format!("http://{}", server.addr);
    let open = format!(
        "http://{}/metrics",
        server.metrics_addr.expect("metrics listener")
    );
    let http = reqwest::Client::new();

    // The separate listener's /metrics needs no token; the API listener's
    // does.
    let r = http.get(&open).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let before = r.text().await.unwrap();
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let bmcs = ["10.1.0.11", "10.1.0.12", "10.1.0.13"];
    for (i, bmc) in bmcs.iter().enumerate() {
        let r = http
            .post(format!("{base}/api/v1.0/nodes"))
            .bearer_auth(TOKEN)
            .json(
                &json!({"name": format!("obs-{i}"), "oob": {"type": "sim", "address": bmc},
                "credentials": {"username": "root", "password": "calvin"}}),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let r = http
        .post(format!("{base}/api/v1.0/tasks"))
        .bearer_auth(TOKEN)
        .json(&json!({"action": "power_cycle_node", "node_filter": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let task: Value = r.json().await.unwrap();
    let id: drydock::store::Uuid = task["task_id"].as_str().unwrap().parse().unwrap();
    let done = server
        .engine
        .wait_finished(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.result_status.as_str(), "success");

    // A viewer token reads /metrics on the API listener.
    let r = http
        .get(format!("{base}/metrics"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let after = r.text().await.unwrap();
    let delta = |name: &str, labels: &[(&str, &str)]| {
        count(&after, name, labels) - count(&before, name, labels)
    };

    // Driver calls: one per node, all successful, each timed.
    let call = [
        ("driver", "sim"),
        ("action", "power_cycle_node"),
        ("outcome", "success"),
    ];
    assert_eq!(delta("drydock_driver_calls_total", &call), 3.0, "{after}");
    assert_eq!(delta("drydock_driver_call_seconds_count", &call), 3.0);
    let le = [&call[..], &[("le", "+Inf")]].concat();
    assert_eq!(delta("drydock_driver_call_seconds_bucket", &le), 3.0);
    // Per BMC: one call each, no errors.
    for bmc in bmcs {
        assert_eq!(
            delta("drydock_bmc_calls_total", &[("bmc", bmc)]),
            1.0,
            "{bmc}"
        );
        assert_eq!(
            delta("drydock_bmc_call_seconds_count", &[("bmc", bmc)]),
            1.0
        );
        assert_eq!(
            count(&after, "drydock_bmc_errors_total", &[("bmc", bmc)]),
            0.0
        );
    }
    // Tasks by action, status and result (from the store): the parent and
    // its three subtasks.
    let tasks = [
        ("action", "power_cycle_node"),
        ("status", "complete"),
        ("result", "success"),
    ];
    assert_eq!(value(&after, "drydock_tasks", &tasks), Some(4.0), "{after}");
    assert_eq!(
        value(&after, "drydock_queue_depth", &[("queue", "tasks")]),
        Some(0.0)
    );
    assert_eq!(
        value(&after, "drydock_queue_depth", &[("queue", "writer")]),
        Some(0.0)
    );
    assert_eq!(value(&after, "drydock_calls_in_flight", &[]), Some(0.0));
    assert_eq!(
        value(&after, "drydock_queue_depth", &[("queue", "backlog")]),
        Some(0.0)
    );
    // The writer wrote the outcomes in at least one batch.
    assert!(delta("drydock_writer_batch_size_count", &[]) >= 1.0);
    assert!(delta("drydock_writer_batch_size_sum", &[]) >= 3.0);
    // The sim's key-value reads went through the gatherer.
    assert!(delta("drydock_kv_read_batch_size_count", &[]) >= 1.0);
    assert!(delta("drydock_kv_read_batch_size_sum", &[]) >= 3.0);
    // A lone instance leads, at a positive epoch.
    assert_eq!(value(&after, "drydock_leader", &[]), Some(1.0));
    assert!(value(&after, "drydock_leader_epoch", &[]).unwrap() >= 1.0);
    // The sim driver's version is active.
    let sim = server.engine.drivers().get("sim").unwrap();
    let version = sim.driver.info().version.clone();
    assert_eq!(
        value(
            &after,
            "drydock_driver_active",
            &[("driver", "sim"), ("version", &version)]
        ),
        Some(1.0)
    );
    // HTTP requests by route pattern (not the raw path) and status.
    let post = [
        ("method", "POST"),
        ("route", "/api/v1.0/tasks"),
        ("status", "201"),
    ];
    assert_eq!(delta("drydock_http_requests_total", &post), 1.0);
    assert_eq!(delta("drydock_http_request_seconds_count", &post), 1.0);
    let nodes = [
        ("method", "POST"),
        ("route", "/api/v1.0/nodes"),
        ("status", "201"),
    ];
    assert_eq!(delta("drydock_http_requests_total", &nodes), 3.0, "{after}");
    let refused = [("method", "GET"), ("route", "/metrics"), ("status", "401")];
    assert_eq!(delta("drydock_http_requests_total", &refused), 1.0);
    assert!(!after.contains(TOKEN) && !after.contains("calvin"));

    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
