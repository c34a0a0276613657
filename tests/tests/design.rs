//! Site designs end to end: the sample site in both document forms, node
//! filters over a design, the
//! `validatedesign` and `nodefilter` routes, and the orchestrator flow
//! `prepare_nodes` → `deploy_nodes` → `destroy_nodes` on the sim driver
//! (oob, node and network) with injected failures, on both backends.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use drydock::api::{ApiToken, AppState, Auth, Role, router};
use drydock::design::{Design, PlatformCatalog, validate::validate};
use drydock::drivers::{DriverConfig, DriverSet, Runtime};
use drydock::model::PortMode;
use drydock::store::{ResultStatus, Store, TaskStatus};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn sample(file: &str) -> String {
    std::fs::read_to_string(examples().join(file)).expect("sample site")
}

/// The sim driver's images and kernels.
fn sim_catalog() -> PlatformCatalog {
    let mut c = PlatformCatalog::default();
    c.images
        .insert("jammy".into(), vec!["ga-22.04".into(), "hwe-22.04".into()]);
    c.images
        .insert("noble".into(), vec!["ga-24.04".into(), "hwe-24.04".into()]);
    c
}

/// The sample site as a list of documents, for mutation.
fn documents() -> Vec<Value> {
    let text = sample("site.yaml");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .collect()
}

fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect()
}

fn doc_mut<'a>(docs: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    let schema = format!("drydock/{kind}/v1");
    docs.iter_mut()
        .find(|d| d["schema"] == schema.as_str() && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn sample_site_ingests_the_same_in_both_forms() {
    let deckhand = Design::parse(&sample("site.yaml")).unwrap();
    let legacy = Design::parse(&sample("site-legacy.yaml")).unwrap();
    assert_eq!(deckhand.nodes.len(), 24);
    assert_eq!(deckhand.documents.len(), legacy.documents.len());
    assert_eq!(deckhand.model_nodes(), legacy.model_nodes());
    assert_eq!(deckhand.site_networks(), legacy.site_networks());
    for d in [&deckhand, &legacy] {
        let findings = validate(d, Some(&sim_catalog()));
        assert!(!findings.iter().any(|f| f.is_error()), "{findings:#?}");
    }

    let nodes: BTreeMap<String, drydock::model::Node> = deckhand
        .model_nodes()
        .into_iter()
        .map(|n| (n.name.clone(), n))
        .collect();
    // Inheritance: compute <- defaults, with `!default` removing a tag.
    let cmp = &nodes["cmp01"];
    assert_eq!(cmp.tags, ["site01", "compute"]);
    assert_eq!(cmp.labels["role"], "compute");
    assert_eq!(cmp.labels["owner"], "ops");
    assert_eq!(cmp.platform.image.as_deref(), Some("jammy"));
    assert_eq!(cmp.platform.kernel.as_deref(), Some("hwe-22.04"));
    assert_eq!(cmp.platform.kernel_params["console"], "ttyS1,115200n8");
    assert_eq!(cmp.oob.oob_type, "sim");
    assert_eq!(cmp.oob.address.as_deref(), Some("172.16.100.15"));
    assert_eq!(cmp.oob.credential.as_deref(), Some("bmc-password"));
    assert_eq!(cmp.domain.as_deref(), Some("mgmt.example.net"));
    let names: Vec<&str> = cmp.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["bond0", "pxe"]);
    // `!bond0` removes the inherited bond on control nodes.
    let ctl = &nodes["ctl01"];
    assert!(ctl.interfaces.iter().all(|i| i.name != "bond0"));
    assert_eq!(ctl.storage.volume_groups[0].name, "vg_data");
    // The switch port and its VLANs, from the link's trunking.
    let pxe = cmp.interfaces.iter().find(|i| i.name == "pxe").unwrap();
    let port = pxe.switch_port.as_ref().unwrap();
    assert_eq!(port.switch.name, "leaf01");
    assert_eq!(port.port, "Ethernet5");
    assert_eq!(port.switch.credential.as_deref(), Some("switch-password"));
    let prov = port.provisioning.as_ref().unwrap();
    assert_eq!(prov.mode, PortMode::Trunk);
    assert_eq!(prov.native_vlan, Some(100));
    assert_eq!(prov.allowed_vlans, [100]);
    let prod = port.production.as_ref().unwrap();
    assert_eq!(prod.native_vlan, Some(100));
    assert_eq!(prod.allowed_vlans, [100, 101]);
    // Racks and their labels.
    assert_eq!(deckhand.rack_labels()["rack02"]["zone"], "b");
    assert_eq!(
        deckhand.repositories()[0].distributions,
        ["jammy", "jammy-updates"]
    );
    assert_eq!(deckhand.ssh_keys().len(), 1);
}

#[tokio::test]
async fn boot_actions_render_for_their_nodes() {
    use drydock::design::bootaction::{ActionContext, AssetType, render};
    let mut docs = documents();
    doc_mut(&mut docs, "BootAction", "hello")["data"]["assets"]
        .as_array_mut()
        .unwrap()
        .extend([
            json!({"type": "file", "path": "/etc/drydock/whoami", "permissions": "644",
                   "data": "{{ node.hostname }} {{ node.network.default.ip }}/{{ node.network.default.cidr }} \
{{ node.tags | join(',') }} {{ action.report_url }}{{ action.action_id }} {{ action.action_key }}",
                   "data_pipeline": ["template"]}),
            json!({"type": "unit", "path": "/lib/systemd/system/hello.service",
                   "location": "file://units/{{ node.hostname }}.service",
                   "location_pipeline": ["template"]}),
            json!({"type": "pkg_list", "data": {"curl": null, "jq": "1.6*"}}),
        ]);
    let design = Design::parse(&to_yaml(&docs)).unwrap();
    let findings = validate(&design, Some(&sim_catalog()));
    assert!(
        !findings.iter().any(|f| f.rule == "bootaction"),
        "{findings:#?}"
    );
    let actions = design.boot_actions().unwrap();
    assert_eq!(actions.len(), 1);
    let hello = &actions[0];
    assert_eq!(hello.name, "hello");
    // The sample's `signaled: false` is Drydock's `signaling`.
    assert!(!hello.signaling);
    let targets = &design.boot_action_nodes(&actions)[0];
    assert!(
        targets.contains("cmp01") && !targets.contains("ctl01"),
        "{targets:?}"
    );

    let ctx = ActionContext {
        action_id: "01ABC".into(),
        action_key: "beef".into(),
        report_url: "http://drydock:9000/api/v1.0/bootactions/".into(),
        design_ref: "file:///site.yaml".into(),
    };
    let fetched = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = fetched.clone();
    let fetch = move |url: String| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(url.clone());
            Ok(format!("[Service]\nExecStart=/bin/true # {url}\n").into_bytes())
        }
    };
    let node = design.template_node("cmp01");
    let all = render(hello, None, &node, &ctx, &fetch).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].path, "/var/tmp/hello.sh");
    assert_eq!(all[0].mode, 0o555);
    assert_eq!(all[0].bytes, b"#!/bin/bash\necho hello\n");
    let whoami = String::from_utf8(all[1].bytes.clone()).unwrap();
    let ip = node["network"]["default"]["ip"].as_str().unwrap();
    assert!(whoami.starts_with(&format!("cmp01 {ip}/")), "{whoami}");
    assert!(
        whoami.ends_with("http://drydock:9000/api/v1.0/bootactions/01ABC beef"),
        "{whoami}"
    );
    assert_eq!(all[1].mode, 0o644);
    assert_eq!(all[2].asset_type, AssetType::Unit);
    assert_eq!(*fetched.lock().unwrap(), ["file://units/cmp01.service"]);
    assert_eq!(all[3].packages.get("jq"), Some(&Some("1.6*".to_string())));
    assert_eq!(all[3].packages.get("curl"), Some(&None));
    // A type filter keeps only that type.
    let units = render(hello, Some(AssetType::Unit), &node, &ctx, &fetch)
        .await
        .unwrap();
    assert_eq!(units.len(), 1);
    // A failing fetch names the boot action, the asset and the location.
    let broken = |url: String| async move { Err::<Vec<u8>, String>(format!("no such file {url}")) };
    let err = render(hello, Some(AssetType::Unit), &node, &ctx, &broken)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hello")
            && err.contains("/lib/systemd/system/hello.service")
            && err.contains("no such file"),
        "{err}"
    );
}

#[test]
fn node_filters_over_the_design() {
    let design = Design::parse(&sample("site.yaml")).unwrap();
    let nodes = design.model_nodes();
    let pick = |f: Value| {
        let filter = drydock::tasks::filter::NodeFilter::from_json(&f).unwrap();
        drydock::tasks::filter::select(&nodes, filter.as_ref(), &design.rack_labels())
    };
    assert_eq!(pick(Value::Null).len(), 24);
    let zone_b = pick(json!({"filter_set": [{"rack_labels": {"zone": "b"}}]}));
    assert_eq!(zone_b.len(), 12);
    assert!(zone_b.contains(&"ctl02".to_string()));
    let gpu_compute = pick(json!({"filter_set_type": "intersection", "filter_set": [
        {"node_tags": ["gpu"]}, {"node_labels": {"role": "compute"}}]}));
    assert_eq!(gpu_compute, ["cmp03", "cmp04"]);
    let union = pick(
        json!({"filter_set": [{"node_names": ["cmp01"]}, {"rack_names": ["rack01"], "node_tags": ["control"], "filter_type": "intersection"}]}),
    );
    assert_eq!(union, ["cmp01", "ctl01", "ctl03"]);
}

// ------------------------------------------------------------ engine flow

const SECRETS: &[(&str, &str)] = &[("bmc-password", "calvin"), ("switch-password", "arista")];

async fn engine(store: Store, settings: &[(&str, &str)]) -> Engine {
    engine_with(store, settings, |_| {}).await
}

/// [`engine`] with its configuration adjusted by `tweak`.
async fn engine_with(
    store: Store,
    settings: &[(&str, &str)],
    tweak: impl FnOnce(&mut EngineConfig),
) -> Engine {
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut set = DriverSet::new();
    set.add(
        sim,
        Arc::new(DriverConfig {
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..DriverConfig::default()
        }),
    )
    .unwrap();
    let mut secrets = drydock::drivers::GrantedSecrets::default();
    for (k, v) in SECRETS {
        secrets.insert(*k, *v);
    }
    let mut cfg = EngineConfig {
        retry_backoff: Duration::from_millis(5),
        poll_interval: Duration::from_millis(50),
        design_dir: Some(examples()),
        secrets,
        ..EngineConfig::default()
    };
    tweak(&mut cfg);
    Engine::start(store, rt, Arc::new(set), cfg).await.unwrap()
}

async fn run(engine: &Engine, action: &str, filter: Option<Value>) -> drydock::store::TaskRecord {
    let req = TaskRequest {
        action: action.into(),
        design_ref: Some("file:site.yaml".into()),
        node_filter: filter,
        created_by: Some("test".into()),
        ..TaskRequest::default()
    };
    let done = drydock_tests::run_to_end(engine, req, Duration::from_secs(120)).await;
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    done
}

/// The step tasks of an orchestrator task: action → (successes, failures).
async fn steps(store: &Store, id: drydock::store::Uuid) -> Vec<(String, Vec<String>, Vec<String>)> {
    store
        .subtasks(id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.action, s.successes, s.failures))
        .collect()
}

async fn kv(store: &Store, key: &str) -> Option<Value> {
    store
        .kv_get("sim", key)
        .await
        .unwrap()
        .map(|v| serde_json::from_str(&v).unwrap_or(Value::String(v)))
}

async fn full_flow(store: Store) {
    let rack02 = json!({"filter_set": [{"rack_names": ["rack02"]}]});

    // prepare_site, then prepare_nodes on rack02 with cmp04 failing to commission.
    let e = engine(
        store.clone(),
        &[
            ("fail_nodes", "cmp04"),
            ("fail_actions", "configure_hardware"),
        ],
    )
    .await;
    let site = run(&e, "prepare_site", None).await;
    assert_eq!(site.result_status, ResultStatus::Success, "{site:?}");
    let site_steps: Vec<String> = steps(&store, site.id)
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(
        site_steps,
        [
            "create_network_template",
            "configure_user_credentials",
            "configure_node_provisioner"
        ]
    );

    let prep = run(&e, "prepare_nodes", Some(rack02.clone())).await;
    assert_eq!(prep.result_status, ResultStatus::PartialSuccess, "{prep:?}");
    assert_eq!(prep.failures, ["cmp04"]);
    assert_eq!(prep.successes.len(), 11);
    assert!(
        prep.result_message
            .as_deref()
            .unwrap()
            .contains("cmp04 (configure_hardware)"),
        "{prep:?}"
    );
    let s = steps(&store, prep.id).await;
    let actions: Vec<&str> = s.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "identify_node",
            "config_port_provisioning",
            "set_node_boot",
            "power_cycle_node",
            "identify_node",
            "configure_hardware"
        ]
    );
    // Unknown nodes failed the first identify, were PXE booted, then enlisted.
    assert_eq!(s[0].1.len(), 0);
    assert_eq!(s[0].2.len(), 12);
    assert_eq!(s[3].1.len(), 12);
    assert_eq!(s[4].1.len(), 12);
    assert_eq!(s[5].2, ["cmp04"]);
    // Drydock's 3 attempts for configure_hardware.
    let ch = store
        .subtasks(store.subtask_ids(prep.id).await.unwrap()[5])
        .await
        .unwrap();
    let cmp04 = ch
        .iter()
        .find(|t| t.node_name.as_deref() == Some("cmp04"))
        .unwrap();
    // Drydock's retry is the retry number: two retries of three attempts.
    assert_eq!((cmp04.max_attempts, cmp04.retry), (3, 2));
    let msgs = store.messages(cmp04.id).await.unwrap();
    assert_eq!(
        msgs.iter()
            .filter(|m| m.message.contains("retrying"))
            .count(),
        2,
        "{msgs:?}"
    );
    // The switch port went to the provisioning VLAN; the BMC was given the credential.
    let port = kv(&store, "port/leaf02/Ethernet6")
        .await
        .expect("port state");
    assert_eq!(port["native_vlan"], 100);
    assert_eq!(port["allowed_vlans"], json!([100]));
    assert_eq!(kv(&store, "boot/ctl02").await.unwrap()["device"], "pxe");
    let node = store.get_node("ctl02").await.unwrap().unwrap();
    assert_eq!(node.power_state.as_deref(), Some("on"));
    assert!(
        !node.spec.to_string().contains("calvin"),
        "a secret reached the node record"
    );

    // A second prepare_nodes: the nodes are known, so no PXE boot.
    let again = run(
        &e,
        "prepare_nodes",
        Some(json!({"filter_set": [{"node_names": ["ctl02"]}]})),
    )
    .await;
    assert_eq!(again.result_status, ResultStatus::Success);
    let s = steps(&store, again.id).await;
    let actions: Vec<&str> = s.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(actions, ["identify_node", "configure_hardware"]);
    e.shutdown();

    // deploy_nodes with cmp06 failing to deploy: cmp04 (not commissioned)
    // and cmp06 drop out; the others' ports go to production.
    let e = engine(
        store.clone(),
        &[("fail_nodes", "cmp06"), ("fail_actions", "deploy_node")],
    )
    .await;
    let dep = run(&e, "deploy_nodes", Some(rack02.clone())).await;
    assert_eq!(dep.result_status, ResultStatus::PartialSuccess, "{dep:?}");
    assert_eq!(dep.failures, ["cmp04", "cmp06"]);
    let msg = dep.result_message.as_deref().unwrap();
    assert!(
        msg.contains("cmp04 (apply_node_networking)") && msg.contains("cmp06 (deploy_node)"),
        "{msg}"
    );
    let s = steps(&store, dep.id).await;
    let actions: Vec<&str> = s.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "apply_node_networking",
            "apply_node_storage",
            "apply_node_platform",
            "deploy_node",
            "config_port_production"
        ]
    );
    assert_eq!(s[4].1.len(), 10);
    let port = kv(&store, "port/leaf02/Ethernet6").await.unwrap();
    assert_eq!(port["allowed_vlans"], json!([100, 101]));
    let port = kv(&store, "port/leaf02/Ethernet10").await.unwrap(); // cmp06 stays provisioning
    assert_eq!(port["allowed_vlans"], json!([100]));
    assert_eq!(
        kv(&store, "node/ctl02").await.unwrap()["status"],
        "Deployed"
    );
    e.shutdown();

    // destroy_nodes on everything in rack02.
    let e = engine(store.clone(), &[]).await;
    let gone = run(&e, "destroy_nodes", Some(rack02)).await;
    assert_eq!(gone.result_status, ResultStatus::Success, "{gone:?}");
    assert_eq!(gone.successes.len(), 12);
    assert!(kv(&store, "node/ctl02").await.is_none());
    // Build data: verify_nodes stores each BMC's interrogation.
    let v = run(
        &e,
        "verify_nodes",
        Some(json!({"filter_set": [{"node_names": ["cmp01"]}]})),
    )
    .await;
    assert_eq!(v.result_status, ResultStatus::Success);
    let bd = store.build_data_for_node("cmp01", false).await.unwrap();
    assert!(
        bd.iter().any(|b| b.generator == "interrogate_oob"),
        "{bd:?}"
    );
    e.shutdown();
}

#[tokio::test]
async fn full_flow_on_sqlite() {
    full_flow(drydock_tests::db::sqlite().await).await;
}

#[tokio::test]
async fn full_flow_on_postgres() {
    let (store, name) = drydock_tests::db::postgres().await;
    full_flow(store).await;
    drydock_tests::db::drop_postgres(&name).await;
}

#[tokio::test]
async fn a_design_with_errors_fails_the_task_with_its_findings() {
    let dir = std::env::temp_dir().join(drydock_tests::db::unique("designs"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut docs = documents();
    doc_mut(&mut docs, "Network", "mgmt")["data"]["cidr"] = json!("nonsense");
    std::fs::write(dir.join("bad.yaml"), to_yaml(&docs)).unwrap();
    let store = drydock_tests::db::sqlite().await;
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut set = DriverSet::new();
    set.add(sim, Arc::new(DriverConfig::default())).unwrap();
    let e = Engine::start(
        store.clone(),
        rt,
        Arc::new(set),
        EngineConfig {
            design_dir: Some(dir.clone()),
            poll_interval: Duration::from_millis(50),
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    for (design_ref, needle) in [
        ("file:bad.yaml", "nonsense"),
        ("file:../etc/passwd", "`..`"),
        ("file:/etc/passwd", "inside the design directory"),
        ("ftp://x/site.yaml", "file://, http(s)://"),
    ] {
        let req = TaskRequest {
            action: "prepare_nodes".into(),
            design_ref: Some(design_ref.into()),
            ..TaskRequest::default()
        };
        let done = drydock_tests::run_to_end(&e, req, Duration::from_secs(30)).await;
        assert_eq!(done.result_status, ResultStatus::Failure, "{done:?}");
        let msgs = store.messages(done.id).await.unwrap();
        assert!(
            msgs.iter().any(|m| m.error && m.message.contains(needle)),
            "{design_ref}: no message containing {needle}: {msgs:?}"
        );
        assert!(store.subtasks(done.id).await.unwrap().is_empty());
    }
    e.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

// ------------------------------------------------------------------- API

async fn api() -> (axum::Router, Engine) {
    let store = drydock_tests::db::sqlite().await;
    let e = engine(store, &[]).await;
    let auth = Auth::new(vec![ApiToken {
        name: "viewer".into(),
        token: "viewer-token".into(),
        role: Role::Viewer,
    }]);
    (router(AppState::new(e.clone(), Arc::new(auth))), e)
}

async fn post(router: &axum::Router, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = router
        .clone()
        .oneshot(
            Request::post(path)
                .header(header::AUTHORIZATION, "Bearer viewer-token")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn validatedesign_and_nodefilter_routes() {
    let (router, e) = api().await;
    let (status, body) = post(
        &router,
        "/api/v1.0/validatedesign",
        json!({"href": "file:site.yaml"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "Success");
    assert_eq!(body["details"]["errorCount"], 0);

    // A design with errors: every finding, with its documents.
    let dir = examples();
    let mut docs = documents();
    doc_mut(&mut docs, "BaremetalNode", "cmp01")["data"]["addressing"][2]["address"] =
        json!("172.16.1.11");
    // Beyond Drydock's MTU limit, and larger than its link's 1500.
    doc_mut(&mut docs, "Network", "oob")["data"]["mtu"] = json!(70000);
    let name = format!("{}.yaml", drydock_tests::db::unique("bad-site"));
    std::fs::write(dir.join(&name), to_yaml(&docs)).unwrap();
    let (status, body) = post(
        &router,
        "/api/v1.0/validatedesign",
        json!({"href": format!("file:{name}")}),
    )
    .await;
    std::fs::remove_file(dir.join(&name)).unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["details"]["errorCount"], 3, "{body}");
    let list = body["details"]["messageList"].as_array().unwrap();
    let message = |m: &Value| m["message"].as_str().unwrap_or_default().to_owned();
    let dup = list
        .iter()
        .find(|m| {
            message(m).starts_with("Duplicated IP Check: Duplicate IP Address Found: 172.16.1.11")
        })
        .unwrap();
    assert_eq!(dup["level"], "Error");
    assert_eq!(dup["documents"].as_array().unwrap().len(), 2);
    assert!(
        list.iter()
            .any(|m| message(m).starts_with("MTU Rationality: MTU must be between 1280 and 65536"))
    );

    // Bad YAML: Drydock's failed Status (400), its one error message with
    // line and column.
    let name = format!("{}.yaml", drydock_tests::db::unique("bad-yaml"));
    std::fs::write(
        dir.join(&name),
        "---\nschema: drydock/Network/v1\nmetadata: {name: [x\n",
    )
    .unwrap();
    let (status, body) = post(
        &router,
        "/api/v1.0/validatedesign",
        json!({"href": format!("file:{name}")}),
    )
    .await;
    std::fs::remove_file(dir.join(&name)).unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "Failure", "{body}");
    let msg = body["details"]["messageList"][0]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("line") && msg.contains("column"), "{msg}");

    // nodefilter over the design, rack labels included.
    let (status, body) = post(
        &router,
        "/api/v1.0/nodefilter",
        json!({"design_ref": "file:site.yaml", "node_filter": {"filter_set": [{"rack_labels": {"zone": "a"}, "node_tags": ["control"], "filter_type": "intersection"}]}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!(["ctl01", "ctl03"]));
    e.shutdown();
}

#[tokio::test]
async fn designs_come_over_http_and_deckhand_http_and_are_parsed_once() {
    let text = sample("site.yaml");
    let app = axum::Router::new()
        .route(
            "/site.yaml",
            axum::routing::get(move || async move { text.clone() }),
        )
        .route(
            "/missing.yaml",
            axum::routing::get(|| async { (StatusCode::NOT_FOUND, "no") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    // By default only https from public addresses: a local server is refused.
    let strict = engine(drydock_tests::db::sqlite().await, &[]).await;
    let err = strict
        .load_design(&format!("http://127.0.0.1:{port}/site.yaml"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("scheme `http`"), "{err}");
    strict.shutdown();
    // The operator allows plain http from loopback.
    let e = engine_with(drydock_tests::db::sqlite().await, &[], |c| {
        c.design_sources.schemes = vec!["http".into()];
        c.design_sources.cidrs = vec!["127.0.0.1/32".into()];
    })
    .await;
    let plain = e
        .load_design(&format!("http://127.0.0.1:{port}/site.yaml"))
        .await
        .unwrap();
    assert_eq!(plain.nodes.len(), 24);
    let deckhand = e
        .load_design(&format!("deckhand+http://127.0.0.1:{port}/site.yaml"))
        .await
        .unwrap();
    // The same text is parsed once: the cache hands out the same design.
    assert!(Arc::ptr_eq(&plain, &deckhand));
    let from_file = e.load_design("file:site.yaml").await.unwrap();
    assert!(Arc::ptr_eq(&plain, &from_file));
    let err = e
        .load_design(&format!("http://127.0.0.1:{port}/missing.yaml"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    e.shutdown();
}
