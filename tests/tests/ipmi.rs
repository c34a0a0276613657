//! The bundled IPMI driver through the host (wasm component, the host's
//! `datagram` capability) against real RMCP+ servers: OpenIPMI's `ipmi_sim`
//! and pyghmi's fake BMC. Every oob action, refused credentials, a BMC
//! that does not answer, busy answers, and a site design with
//! `oob.type: ipmi` nodes through the orchestrator (`verify_nodes`,
//! `prepare_nodes`). State is read from the peers' own files.

use drydock::drivers::{
    Action, CallError, DriverConfig, DriverError, DriverErrorKind, DriverSet, Interface, Runtime,
};
use drydock::model::{BootDevice, BootTarget, Node};
use drydock::store::{ResultStatus, TaskStatus};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use drydock_tests::ipmi_sim::{FruData, IpmiSim, PyghmiBmc, SimConfig, free_udp_port, ipmi_node};
use drydock_tests::{Call, runtime};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn ipmi(rt: &Runtime) -> drydock::drivers::Driver {
    rt.load("ipmi", drydock::bundled::IPMI)
        .await
        .expect("load the bundled ipmi driver")
}

/// A call with a 250 ms power poll, `settings` and a 60 s limit.
fn call_with(settings: &[(&str, &str)]) -> Call {
    let settings: BTreeMap<String, String> = [("poll_interval_ms", "250")]
        .iter()
        .chain(settings)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Call {
        config: Arc::new(DriverConfig {
            settings,
            ..DriverConfig::default()
        }),
        timeout: Some(Duration::from_secs(60)),
        ..Call::default()
    }
}

fn driver_error(result: Result<Value, CallError>) -> DriverError {
    match result {
        Err(CallError::Driver { error, .. }) => error,
        other => panic!("expected a driver error, got {other:?}"),
    }
}

async fn ok(
    call: &Call,
    rt: &Runtime,
    d: &drydock::drivers::Driver,
    action: Action,
    node: &Node,
) -> Value {
    call.run(rt, d, action, Some(node))
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

async fn set_boot(
    call: &Call,
    rt: &Runtime,
    d: &drydock::drivers::Driver,
    node: &Node,
    device: BootDevice,
    persistent: bool,
) {
    let mut boot = Call {
        config: call.config.clone(),
        services: call.services.clone(),
        ..Call::default()
    };
    boot.params.boot = Some(BootTarget { device, persistent });
    ok(&boot, rt, d, Action::SetNodeBoot, node).await;
}

#[tokio::test]
async fn info_claims_ipmi_and_node_bmc_access() {
    let rt = runtime();
    let d = ipmi(&rt).await;
    let info = d.info();
    assert_eq!(info.name, "ipmi");
    assert_eq!(info.oob_types, ["ipmi"]);
    assert_eq!(info.interfaces, [Interface::Oob]);
    assert!(info.outbound.node_bmc);
}

#[tokio::test]
async fn every_oob_action_against_ipmi_sim() {
    let sim = IpmiSim::start(SimConfig {
        fru: Some(FruData {
            manufacturer: "Drydock Labs".into(),
            product: "Test Server 9000".into(),
            serial: "SN-4711".into(),
        }),
        ..SimConfig::default()
    });
    let rt = runtime();
    let d = ipmi(&rt).await;
    let call = call_with(&[]);
    let n = ipmi_node("n1", sim.port);

    ok(&call, &rt, &d, Action::ValidateOobServices, &n).await;
    let facts = ok(&call, &rt, &d, Action::InterrogateOob, &n).await;
    assert_eq!(facts["power_state"], "off");
    assert_eq!(facts["manufacturer"], "Drydock Labs");
    assert_eq!(facts["model"], "Test Server 9000");
    assert_eq!(facts["serial"], "SN-4711");
    assert_eq!(facts["raw"]["device_id"]["manufacturer_id"], 0x1291);
    assert_eq!(facts["raw"]["device_id"]["firmware"], "9.08");
    assert_eq!(facts["raw"]["cipher_suite"], 3);
    let stored = call.services.build_data();
    let stored = stored
        .iter()
        .find(|b| b.generator == "ipmi" && b.scope.node.as_deref() == Some("n1"))
        .expect("interrogate_oob stores build data");
    assert_eq!(stored.format, "application/json");
    let stored: Value = serde_json::from_str(&stored.content).unwrap();
    assert_eq!(stored, facts["raw"]);

    ok(&call, &rt, &d, Action::PowerOnNode, &n).await;
    assert!(sim.power());
    ok(&call, &rt, &d, Action::PowerOnNode, &n).await;

    // Boot overrides, as the chassis script receives them.
    ok(&call, &rt, &d, Action::ConfigNodePxe, &n).await;
    assert_eq!(sim.boot(), "pxe");
    set_boot(&call, &rt, &d, &n, BootDevice::BiosSetup, true).await;
    assert_eq!(sim.boot(), "bios");
    set_boot(&call, &rt, &d, &n, BootDevice::Cdrom, false).await;
    assert_eq!(sim.boot(), "cdrom");

    // Cycle an on node: ipmi_sim goes off, then on a second later.
    let before = sim.sets().len();
    ok(&call, &rt, &d, Action::PowerCycleNode, &n).await;
    let sets = sim.sets()[before..].to_vec();
    assert_eq!(
        sets,
        ["power 0", "power 1"],
        "off then on, and the wait saw on"
    );
    assert!(sim.power());

    ok(&call, &rt, &d, Action::PowerOffNode, &n).await;
    assert!(!sim.power());
    ok(&call, &rt, &d, Action::PowerOffNode, &n).await;
    let facts = ok(&call, &rt, &d, Action::InterrogateOob, &n).await;
    assert_eq!(facts["power_state"], "off");

    // Cycling an off node powers it on.
    ok(&call, &rt, &d, Action::PowerCycleNode, &n).await;
    assert!(sim.power());

    let messages = call.statuses();
    for want in [
        "answers IPMI 2.0 and accepts the credentials",
        "n1: power up sent",
        "n1 is powered on",
        "n1 is already on",
        "n1: boot override set to PXE (next boot)",
        "n1: boot override set to BIOS setup (persistent)",
        "n1: power cycle sent",
        "n1 is powered off",
        "n1 is already off",
        "n1 is not on; powering it on",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(want)),
            "no status `{want}` in {messages:#?}"
        );
    }
}

#[tokio::test]
async fn graceful_power_off_and_off_on_cycle() {
    let rt = runtime();
    let d = ipmi(&rt).await;
    let call = call_with(&[("graceful", "true"), ("cycle", "off-on")]);

    // pyghmi honours the soft shutdown...
    let bmc = PyghmiBmc::start(0);
    let n = ipmi_node("n1", bmc.port);
    ok(&call, &rt, &d, Action::PowerOnNode, &n).await;
    ok(&call, &rt, &d, Action::PowerOffNode, &n).await;
    assert_eq!(bmc.state()["power"], "off");
    let messages = call.statuses();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("n1: soft shutdown sent")),
        "{messages:#?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("power down sent")),
        "{messages:#?}"
    );

    // ...and so does ipmi_sim (its chassis script powers off); `off-on`
    // cycles with two commands rather than a power cycle.
    let sim = IpmiSim::start(SimConfig {
        power_on: true,
        ..SimConfig::default()
    });
    let call = call_with(&[("graceful", "true"), ("cycle", "off-on")]);
    let n = ipmi_node("n2", sim.port);
    ok(&call, &rt, &d, Action::PowerCycleNode, &n).await;
    assert_eq!(sim.sets(), ["shutdown 1", "power 1"]);
    let messages = call.statuses();
    for want in [
        "n2: soft shutdown sent",
        "n2 is powered off",
        "n2: power up sent",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(want)),
            "no status `{want}` in {messages:#?}"
        );
    }
    assert!(
        !messages.iter().any(|m| m.contains("power cycle sent")),
        "{messages:#?}"
    );

    // A soft shutdown that does not land in `graceful_timeout_s`: powered
    // down. (ipmi_sim's script ignores it when told to.)
    sim.set_power(true);
    sim.ignore_shutdown();
    let call = call_with(&[("graceful", "true"), ("graceful_timeout_s", "0")]);
    ok(&call, &rt, &d, Action::PowerOffNode, &n).await;
    assert!(!sim.power());
    let messages = call.statuses();
    for want in [
        "did not shut down within 0 s; powering it down",
        "n2: power down sent",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(want)),
            "no status `{want}` in {messages:#?}"
        );
    }
}

#[tokio::test]
async fn every_call_closes_its_session() {
    // ipmi_sim's session table holds 63 sessions (see ipmi_protocol.rs):
    // 80 calls in a row only work if each one closes its session.
    let sim = IpmiSim::start(SimConfig::default());
    let rt = runtime();
    let d = ipmi(&rt).await;
    let call = call_with(&[]);
    let n = ipmi_node("n1", sim.port);
    for _ in 0..80 {
        ok(&call, &rt, &d, Action::ValidateOobServices, &n).await;
    }
}

#[tokio::test]
async fn refused_credentials_and_silent_bmcs() {
    let sim = IpmiSim::start(SimConfig::default());
    let rt = runtime();
    let d = ipmi(&rt).await;
    let call = call_with(&[("timeout_ms", "200"), ("attempts", "2")]);

    let mut wrong = ipmi_node("n1", sim.port);
    wrong.oob.credentials.as_mut().unwrap().password = "not-the-password".into();
    let err = driver_error(call.run(&rt, &d, Action::PowerOnNode, Some(&wrong)).await);
    assert_eq!(err.kind, DriverErrorKind::Auth, "{err:?}");
    assert!(
        err.message
            .contains("refused the credentials of user `admin`"),
        "{err:?}"
    );
    assert!(!err.message.contains("not-the-password"), "{err:?}");
    assert!(!sim.power());

    // Nothing listens: the host reports the ICMP refusal.
    let closed = ipmi_node("n2", free_udp_port());
    let err = driver_error(
        call.run(&rt, &d, Action::ValidateOobServices, Some(&closed))
            .await,
    );
    assert_eq!(err.kind, DriverErrorKind::Unreachable, "{err:?}");

    // Bound but silent: the attempts time out.
    let silent = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let n = ipmi_node("n3", silent.local_addr().unwrap().port());
    let err = driver_error(
        call.run(&rt, &d, Action::ValidateOobServices, Some(&n))
            .await,
    );
    assert_eq!(err.kind, DriverErrorKind::Unreachable, "{err:?}");
    assert!(err.message.contains("does not answer IPMI"), "{err:?}");

    // No credentials: refused before any datagram.
    let mut none = ipmi_node("n4", sim.port);
    none.oob.credentials = None;
    let err = driver_error(call.run(&rt, &d, Action::PowerOnNode, Some(&none)).await);
    assert_eq!(err.kind, DriverErrorKind::InvalidInput, "{err:?}");
}

#[tokio::test]
async fn pyghmi_with_busy_answers() {
    // The first two Get Chassis Status answers are "node busy".
    let bmc = PyghmiBmc::start(2);
    let rt = runtime();
    let d = ipmi(&rt).await;
    let call = call_with(&[]);
    let n = ipmi_node("n1", bmc.port);
    ok(&call, &rt, &d, Action::PowerOnNode, &n).await;
    assert_eq!(bmc.state()["power"], "on");
    set_boot(&call, &rt, &d, &n, BootDevice::Disk, true).await;
    assert_eq!(bmc.state()["boot"], "hd");
    let facts = ok(&call, &rt, &d, Action::InterrogateOob, &n).await;
    assert_eq!(
        facts["boot_override"],
        json!({"device": "disk", "persistent": false})
    );
    assert_eq!(facts["raw"]["fru"], Value::Null);
    ok(&call, &rt, &d, Action::PowerCycleNode, &n).await;
    ok(&call, &rt, &d, Action::PowerOffNode, &n).await;
    assert_eq!(bmc.state()["power"], "off");
}

// ------------------------------------------------------------ orchestrator

/// The nodes of the IPMI site and their BMC addresses (one `ipmi_sim`
/// each); the last one's credential is the wrong password.
const NODES: [(&str, Ipv4Addr); 3] = [
    ("cmp01", Ipv4Addr::new(127, 0, 0, 2)),
    ("cmp02", Ipv4Addr::new(127, 0, 0, 3)),
    ("cmp03", Ipv4Addr::new(127, 0, 0, 4)),
];
const BAD_BMC: &str = "cmp03";

/// The sample site cut to [`NODES`] with `oob.type: ipmi` BMCs on `port`.
fn ipmi_site(port: u16) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/site.yaml");
    let text = std::fs::read_to_string(path).expect("sample site");
    let mut docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .collect();
    let keep: Vec<&str> = NODES.iter().map(|n| n.0).collect();
    docs.retain(|d| {
        d["schema"] != "drydock/BaremetalNode/v1"
            || keep.contains(&d["metadata"]["name"].as_str().unwrap_or_default())
    });
    for d in docs.iter_mut() {
        let (schema, name) = (d["schema"].clone(), d["metadata"]["name"].clone());
        if schema == "drydock/Network/v1" && name == "oob" {
            d["data"] = json!({
                "cidr": "127.0.0.0/24",
                "mtu": 1500,
                "ranges": [{"type": "static", "start": "127.0.0.2", "end": "127.0.0.250"}],
            });
        }
        if schema == "drydock/HostProfile/v1" && name == "defaults" {
            d["data"]["oob"] = json!({
                "type": "ipmi",
                "network": "oob",
                "account": drydock_tests::ipmi_sim::USER,
                "credential": "bmc-password",
                "port": port,
            });
        }
        if schema == "drydock/BaremetalNode/v1" {
            let (node, address) = NODES.iter().find(|n| name == n.0).unwrap();
            let data = &mut d["data"];
            data.as_object_mut().unwrap().remove("interfaces");
            for a in data["addressing"].as_array_mut().unwrap() {
                if a["network"] == "oob" {
                    a["address"] = json!(address.to_string());
                }
            }
            if *node == BAD_BMC {
                data["oob"] = json!({"credential": "bmc-wrong"});
            }
        }
    }
    docs
}

async fn run(e: &Engine, action: &str) -> drydock::store::TaskRecord {
    let started = Instant::now();
    let req = TaskRequest {
        action: action.into(),
        design_ref: Some("file:site.yaml".into()),
        created_by: Some("ipmi".into()),
        ..TaskRequest::default()
    };
    let done = drydock_tests::run_to_end(e, req, Duration::from_secs(240)).await;
    eprintln!(
        "{action}: {} ms, {} - {}",
        started.elapsed().as_millis(),
        done.result_status.as_str(),
        done.result_message.as_deref().unwrap_or_default()
    );
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    done
}

/// Plays the provisioning network for the sim bootstrapper: once a node's
/// `ipmi_sim` received a PXE boot override and then a power-on, the sim
/// learns the node booted (its key-value store, as its own oob interface
/// would write it).
fn pxe_watcher(
    sims: Arc<Vec<(String, IpmiSim)>>,
    store: drydock::store::Store,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut seen: Vec<String> = Vec::new();
        while seen.len() < sims.len() && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for (node, sim) in sims.iter() {
                if seen.contains(node) {
                    continue;
                }
                let sets = sim.sets();
                let pxe = sets.iter().position(|s| s == "boot pxe");
                let on = sets.iter().rposition(|s| s == "power 1");
                if matches!((pxe, on), (Some(p), Some(o)) if o > p) {
                    store
                        .kv_set(
                            "sim",
                            &format!("boot/{node}"),
                            r#"{"device":"pxe","persistent":false}"#,
                        )
                        .await
                        .unwrap();
                    store
                        .kv_set("sim", &format!("power/{node}"), "on")
                        .await
                        .unwrap();
                    seen.push(node.clone());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    })
}

/// `verify_nodes` and `prepare_nodes` on three `oob.type: ipmi` nodes, each
/// BMC its own `ipmi_sim` on its own loopback address, the sim driver as
/// bootstrapper; one node's credential is the wrong password.
#[tokio::test]
async fn ipmi_bmcs_through_the_orchestrator() {
    let port = free_udp_port();
    let sims: Vec<(String, IpmiSim)> = NODES
        .iter()
        .map(|(name, address)| {
            let sim = IpmiSim::start(SimConfig {
                address: Some(*address),
                port: Some(port),
                ..SimConfig::default()
            });
            (name.to_string(), sim)
        })
        .collect();
    let sims = Arc::new(sims);
    let dir = std::env::temp_dir().join(drydock_tests::db::unique("ipmi-site"));
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = ipmi_site(port)
        .iter()
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect();
    std::fs::write(dir.join("site.yaml"), text).unwrap();

    let store = drydock_tests::db::sqlite().await;
    let rt: Arc<Runtime> = Arc::new(runtime());
    let mut set = DriverSet::new();
    set.add(
        rt.load("sim", drydock::bundled::SIM).await.unwrap(),
        Arc::new(DriverConfig::default()),
    )
    .unwrap();
    let config = DriverConfig {
        settings: [("poll_interval_ms".to_string(), "250".to_string())].into(),
        ..DriverConfig::default()
    };
    set.add(ipmi(&rt).await, Arc::new(config)).unwrap();
    set.set_node_driver(Some("sim".into()));
    set.set_network_driver(Some("sim".into()));
    let mut secrets = drydock::drivers::GrantedSecrets::default();
    secrets.insert("bmc-password", drydock_tests::ipmi_sim::PASSWORD);
    secrets.insert("bmc-wrong", "not-the-password");
    let e = Engine::start(
        store.clone(),
        rt,
        Arc::new(set),
        EngineConfig {
            retry_backoff: Duration::from_millis(100),
            poll_interval: Duration::from_millis(50),
            design_dir: Some(dir.clone()),
            secrets,
            node_addresses: drydock_tests::loopback_peers(),
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    let good = ["cmp01", "cmp02"];

    let v = run(&e, "verify_nodes").await;
    assert_eq!(v.result_status, ResultStatus::PartialSuccess, "{v:?}");
    assert_eq!(v.successes, good);
    assert_eq!(v.failures, [BAD_BMC]);
    for name in good {
        let bd = store.build_data_for_node(name, false).await.unwrap();
        let oob = bd
            .iter()
            .find(|b| b.generator == "interrogate_oob")
            .unwrap_or_else(|| panic!("no interrogate_oob build data for {name}: {bd:?}"));
        let facts: Value = serde_json::from_str(&oob.content).unwrap();
        assert_eq!(facts["power_state"], "off", "{name}");
        assert_eq!(facts["raw"]["device_id"]["product_id"], 0x0F02, "{name}");
        assert!(bd.iter().any(|b| b.generator == "ipmi"), "{bd:?}");
    }

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = pxe_watcher(sims.clone(), store.clone(), stop.clone());
    let prep = run(&e, "prepare_nodes").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut booted = watcher.await.unwrap();
    booted.sort();
    assert_eq!(booted, good);
    assert_eq!(prep.result_status, ResultStatus::PartialSuccess, "{prep:?}");
    assert_eq!(prep.successes, good);
    assert_eq!(prep.failures, [BAD_BMC]);
    let msg = prep.result_message.as_deref().unwrap();
    assert!(msg.contains("cmp03 (set_node_boot)"), "{msg}");
    for (name, sim) in sims.iter() {
        if name == BAD_BMC {
            assert!(sim.sets().is_empty(), "{name}'s BMC was never driven");
            assert!(!sim.power());
        } else {
            assert!(sim.power(), "{name} is on");
            let sets = sim.sets();
            assert!(sets.contains(&"boot pxe".to_string()), "{name}: {sets:?}");
            let node = store.get_node(name).await.unwrap().unwrap();
            assert_eq!(node.power_state.as_deref(), Some("on"), "{name}");
        }
    }
    e.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
