//! Designs in the shape of Airship Drydock's own: Drydock's test designs
//! (`tests/designs/`, copied from airshipit/drydock) and documented example
//! (`examples/airship-site.yaml`, Deckhand and legacy forms) validate with no
//! error, route domains render as Drydock renders them, and the nodes reach
//! the (sim) driver with kernel parameter references and device aliases
//! resolved.

use drydock::design::validate::{Level, validate_report};
use drydock::design::{Design, PlatformCatalog};
use drydock::drivers::{DriverConfig, DriverSet, Runtime};
use drydock::store::{ResultStatus, Store, TaskStatus};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).expect("design file")
}

/// The bundled sim's catalog, as the engine reads it from the driver.
async fn sim_catalog() -> PlatformCatalog {
    let e = engine(drydock_tests::db::sqlite().await).await;
    let c = e
        .platform_catalog()
        .await
        .expect("the sim lists its images");
    e.shutdown();
    c
}

fn errors(design: &Design, catalog: &PlatformCatalog) -> Vec<String> {
    validate_report(design, Some(catalog))
        .findings
        .into_iter()
        .filter(|f| f.level == Level::Error)
        .map(|f| f.message)
        .collect()
}

/// The Deckhand documents of `text` in Drydock's legacy form.
fn legacy(text: &str) -> String {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("yaml"))
        .filter(|d| !d.is_null())
        .map(|mut d| {
            let kind = d["schema"]
                .as_str()
                .unwrap()
                .split('/')
                .nth(1)
                .unwrap()
                .to_owned();
            let doc = json!({"apiVersion": "drydock/v1", "kind": kind,
                             "metadata": d["metadata"].take(), "spec": d["data"].take()});
            format!("---\n{}", serde_yaml_ng::to_string(&doc).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn drydocks_designs_validate_without_error() {
    let catalog = sim_catalog().await;
    // The sim offers what Drydock's designs name.
    assert!(catalog.images["xenial"].contains(&"ga-16.04".to_owned()));
    assert!(catalog.images["noble"].contains(&"hwe-24.04".to_owned()));
    for file in [
        "tests/designs/drydock-fullsite.yaml",
        "tests/designs/drydock-routedomain.yaml",
        "examples/airship-site.yaml",
    ] {
        let text = read(file);
        for (form, text) in [("deckhand", text.clone()), ("legacy", legacy(&text))] {
            let design = Design::parse(&text).unwrap();
            let errs = errors(&design, &catalog);
            assert!(errs.is_empty(), "{file} ({form}): {errs:#?}");
        }
    }
    // Both forms make the same nodes.
    let text = read("examples/airship-site.yaml");
    let (a, b) = (
        Design::parse(&text).unwrap(),
        Design::parse(&legacy(&text)).unwrap(),
    );
    assert_eq!(a.model_nodes(), b.model_nodes());
    assert_eq!(a.site_networks(), b.site_networks());
}

#[test]
fn route_domains_render_as_drydock_renders_them() {
    // Drydock's own test (test_render_routedomain.py) on its design.
    let design = Design::parse(&read("tests/designs/drydock-routedomain.yaml")).unwrap();
    let routes = design.rendered_routes();
    let rack3: Vec<(&str, &str, u32)> = routes["storage_rack3"]
        .iter()
        .map(|r| (r.subnet.as_str(), r.gateway.as_str(), r.metric))
        .collect();
    assert_eq!(
        rack3,
        [
            ("172.16.1.0/24", "172.16.3.1", 10),
            ("172.16.2.0/24", "172.16.3.1", 10)
        ]
    );
}

#[test]
fn documented_defaults_and_references() {
    let design = Design::parse(&read("examples/airship-site.yaml")).unwrap();
    // 802.3ad without a hash: Drydock's defaults.
    let gp = design.links["gp"].bonding.effective();
    assert_eq!(gp.hash.as_deref(), Some("layer3+4"));
    assert_eq!(gp.peer_rate.as_deref(), Some("slow"));
    assert_eq!(
        (gp.mon_rate, gp.up_delay, gp.down_delay),
        (Some(100), Some(200), Some(200))
    );
    let nodes = design.model_nodes();
    let compute01 = nodes.iter().find(|n| n.name == "compute01").unwrap();
    let params = &compute01.platform.kernel_params;
    assert_eq!(params["isolcpus"], "2,4");
    assert_eq!(params["hugepagesz"], "1G");
    assert_eq!(params["hugepages"], "300");
    assert_eq!(params["quiet"], "");
    assert_eq!(params["console"], "ttyS2");
    // A rack no Rack document defines.
    assert_eq!(compute01.rack.as_deref(), Some("rack2"));
    assert!(design.racks.is_empty());
    let aliases: Vec<&str> = compute01
        .device_aliases
        .iter()
        .map(|a| a.alias.as_str())
        .collect();
    assert_eq!(aliases, ["prim_nic01", "prim_nic02", "primary_boot"]);
    // Filesystems without mount options get Drydock's `defaults`.
    let boot = &compute01.storage.physical_devices[0].partitions[1];
    assert_eq!(
        boot.filesystem.as_ref().unwrap().mount_options.as_deref(),
        Some("defaults")
    );
}

async fn engine(store: Store) -> Engine {
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut set = DriverSet::new();
    set.add(sim, Arc::new(DriverConfig::default())).unwrap();
    let mut secrets = drydock::drivers::GrantedSecrets::default();
    secrets.insert("bmc-password", "calvin");
    Engine::start(
        store,
        rt,
        Arc::new(set),
        EngineConfig {
            retry_backoff: Duration::from_millis(5),
            poll_interval: Duration::from_millis(50),
            design_dir: Some(root().join("examples")),
            secrets,
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap()
}

async fn run(engine: &Engine, action: &str) -> drydock::store::TaskRecord {
    let req = TaskRequest {
        action: action.into(),
        design_ref: Some("file:airship-site.yaml".into()),
        created_by: Some("test".into()),
        ..TaskRequest::default()
    };
    let done = drydock_tests::run_to_end(engine, req, Duration::from_secs(120)).await;
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    assert_eq!(
        done.result_status,
        ResultStatus::Success,
        "{action}: {done:?}"
    );
    done
}

/// The sim records kernel parameters as `[name, value]` pairs.
fn pairs(v: &Value) -> Value {
    let map: serde_json::Map<String, Value> = v
        .as_array()
        .expect("kernel parameters")
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].clone()))
        .collect();
    Value::Object(map)
}

async fn kv(store: &Store, key: &str) -> Value {
    let text = store.kv_get("sim", key).await.unwrap().expect(key);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn documented_site_reaches_the_driver_resolved() {
    let store = drydock_tests::db::sqlite().await;
    let e = engine(store.clone()).await;
    run(&e, "validate_design").await;
    run(&e, "prepare_site").await;
    // Route domains reach the driver rendered; their placeholders do not.
    let template = kv(&store, "site/network_template").await;
    let nets = template["networks"].as_array().unwrap();
    let routes = |name: &str| -> Value {
        nets.iter().find(|n| n["name"] == name).unwrap()["routes"].clone()
    };
    assert_eq!(
        routes("storage_rack1"),
        json!([{"subnet": "172.16.11.0/24", "gateway": "172.16.10.1", "metric": 10}])
    );
    assert_eq!(
        routes("mgmt"),
        json!([{"subnet": "0.0.0.0/0", "gateway": "172.16.1.1", "metric": 10}])
    );
    run(&e, "prepare_nodes").await;
    let deployed = run(&e, "deploy_nodes").await;
    assert_eq!(deployed.successes.len(), 3, "{deployed:?}");

    let node = kv(&store, "node/compute01").await;
    assert_eq!(node["status"], "Deployed");
    let applied = &node["applied"];
    // Kernel parameter references: from the hardware profile.
    let params = pairs(&applied["platform"]["kernel_params"]);
    assert_eq!(params["isolcpus"], "2,4", "{applied}");
    assert_eq!(params["hugepagesz"], "1G");
    assert_eq!(params["hugepages"], "300");
    assert_eq!(applied["platform"]["kernel"], "hwe-16.04");
    assert_eq!(applied["platform"]["image"], "xenial");
    // Device aliases: the names lshw reported for their bus addresses.
    let slaves = |iface: &str| -> Value {
        applied["networking"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == iface)
            .unwrap()["slaves"]
            .clone()
    };
    assert_eq!(slaves("bond0"), json!(["enp0s3", "enp0s4"]));
    assert_eq!(slaves("pxe"), json!(["enp0s3"]));
    assert_eq!(applied["storage"]["devices"], json!(["sda", "sdb"]));
    // A node without references keeps its parameters as written.
    let controller = kv(&store, "node/controller01").await;
    let params = pairs(&controller["applied"]["platform"]["kernel_params"]);
    assert!(params.get("isolcpus").is_none(), "{params}");
    assert_eq!(params["console"], "ttyS2");
    e.shutdown();
}
