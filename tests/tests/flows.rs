//! Orchestrator flows through real peers: a site design whose BMCs are the
//! sushy-tools Redfish emulator, whose ToR switch is the fake-switches Arista
//! model (eAPI), whose bootstrapper is the fake MAAS; a real [`Engine`] runs
//! Drydock's orchestrator actions against them and each test reads the
//! peer's own state back (Redfish system, eAPI `switchport`, MAAS machine)
//! rather than trusting the task result alone.
//!
//! Designs are the sample site (`examples/site.yaml`) cut down to a few
//! nodes and pointed at the peers, written into a scratch design directory.

use drydock::drivers::{DriverConfig, DriverSet, GrantedSecrets, Runtime};
use drydock::store::{ResultStatus, Store, TaskRecord, TaskStatus, Uuid};
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use drydock_tests::fake_switches::FakeSwitch;
use drydock_tests::sushy::{FakeSystem, Sushy, SushyConfig};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

// ------------------------------------------------------------ designs

fn sample() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/site.yaml");
    let text = std::fs::read_to_string(path).expect("sample site");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .collect()
}

fn doc_mut<'a>(docs: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    let schema = format!("drydock/{kind}/v1");
    docs.iter_mut()
        .find(|d| d["schema"] == schema.as_str() && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The sample site with only the nodes `keep`.
fn site(keep: &[&str]) -> Vec<Value> {
    let mut docs = sample();
    docs.retain(|d| {
        d["schema"] != "drydock/BaremetalNode/v1"
            || keep.contains(&d["metadata"]["name"].as_str().unwrap_or_default())
    });
    assert_eq!(
        docs.iter()
            .filter(|d| d["schema"] == "drydock/BaremetalNode/v1")
            .count(),
        keep.len()
    );
    docs
}

/// Writes `docs` as `site.yaml` into a fresh design directory.
fn design_dir(docs: &[Value]) -> PathBuf {
    let dir = std::env::temp_dir().join(drydock_tests::db::unique("flows"));
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = docs
        .iter()
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect();
    std::fs::write(dir.join("site.yaml"), text).unwrap();
    dir
}

// ------------------------------------------------------------ engine

/// Drivers by name with their settings; `node` and `network` name the node
/// and network drivers when several could serve.
struct Drivers<'a> {
    list: Vec<(drydock::drivers::Driver, DriverConfig)>,
    node: Option<&'a str>,
    network: Option<&'a str>,
}

fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn engine(
    store: Store,
    rt: Arc<Runtime>,
    drivers: Drivers<'_>,
    dir: &Path,
    secrets: &[(&str, &str)],
) -> Engine {
    let mut set = DriverSet::new();
    for (driver, config) in drivers.list {
        set.add(driver, Arc::new(config)).unwrap();
    }
    set.set_node_driver(drivers.node.map(str::to_owned));
    set.set_network_driver(drivers.network.map(str::to_owned));
    let mut granted = GrantedSecrets::default();
    for (k, v) in secrets {
        granted.insert(*k, *v);
    }
    Engine::start(
        store,
        rt,
        Arc::new(set),
        EngineConfig {
            // 10 attempts of the second identify_node span ~50 s at this
            // backoff: the time a node has to enlist after its PXE boot.
            retry_backoff: Duration::from_millis(100),
            poll_interval: Duration::from_millis(50),
            design_dir: Some(dir.to_path_buf()),
            secrets: granted,
            node_addresses: drydock_tests::loopback_peers(),
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap()
}

/// Runs `action` on `site.yaml` to completion (bounded); prints its time.
async fn run(engine: &Engine, action: &str, filter: Option<Value>) -> TaskRecord {
    let started = Instant::now();
    let req = TaskRequest {
        action: action.into(),
        design_ref: Some("file:site.yaml".into()),
        node_filter: filter,
        created_by: Some("flows".into()),
        ..TaskRequest::default()
    };
    let done = drydock_tests::run_to_end(engine, req, Duration::from_secs(240)).await;
    eprintln!(
        "FIGURE {action}: {} ms, {} - {}",
        started.elapsed().as_millis(),
        done.result_status.as_str(),
        done.result_message.as_deref().unwrap_or_default()
    );
    assert_eq!(done.status, TaskStatus::Complete, "{done:?}");
    done
}

/// One step of an orchestrator task: action, successes, failures.
type StepRow = (String, Vec<String>, Vec<String>);

async fn steps(store: &Store, id: Uuid) -> Vec<StepRow> {
    store
        .subtasks(id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.action, s.successes, s.failures))
        .collect()
}

fn actions(steps: &[StepRow]) -> Vec<&str> {
    steps.iter().map(|s| s.0.as_str()).collect()
}

/// The per-node subtask of step `index` of task `id` for `node`.
async fn node_subtask(store: &Store, id: Uuid, index: usize, node: &str) -> TaskRecord {
    let step = store.subtask_ids(id).await.unwrap()[index];
    store
        .subtasks(step)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.node_name.as_deref() == Some(node))
        .unwrap_or_else(|| panic!("no subtask for {node} in step {index}"))
}

/// Every error message in the task tree under `id`, for failure output.
async fn errors(store: &Store, id: Uuid) -> Vec<String> {
    let mut out = Vec::new();
    let mut queue = vec![id];
    while let Some(t) = queue.pop() {
        for m in store.messages(t).await.unwrap() {
            if m.error {
                out.push(format!("{}: {}", m.context, m.message));
            }
        }
        queue.extend(store.subtask_ids(t).await.unwrap());
    }
    out
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------ Redfish

/// The nodes of the Redfish site, their BMC addresses and emulated systems;
/// the last one's credential is the wrong password.
const REDFISH_NODES: [(&str, &str, u8); 4] = [
    ("cmp01", "127.0.0.2", 1),
    ("cmp02", "127.0.0.3", 2),
    ("ctl01", "127.0.0.4", 3),
    ("cmp03", "127.0.0.5", 4),
];
const BAD_BMC: &str = "cmp03";

/// The sample site cut to [`REDFISH_NODES`], every BMC a system of `bmc`
/// (one emulator; each node its own loopback address, since two nodes may
/// not share an address, and its `system_id`), no switch ports.
fn redfish_site(bmc: &Sushy, systems: &[FakeSystem]) -> Vec<Value> {
    let keep: Vec<&str> = REDFISH_NODES.iter().map(|n| n.0).collect();
    let mut docs = site(&keep);
    doc_mut(&mut docs, "Network", "oob")["data"] = json!({
        "cidr": "127.0.0.0/24",
        "mtu": 1500,
        "ranges": [{"type": "static", "start": "127.0.0.2", "end": "127.0.0.250"}],
    });
    doc_mut(&mut docs, "HostProfile", "defaults")["data"]["oob"] = json!({
        "type": "redfish",
        "network": "oob",
        "account": "admin",
        "credential": "bmc-password",
        "port": bmc.port,
        "scheme": "http",
    });
    for (i, (name, address, _)) in REDFISH_NODES.iter().enumerate() {
        let node = &mut doc_mut(&mut docs, "BaremetalNode", name)["data"];
        node.as_object_mut().unwrap().remove("interfaces");
        for a in node["addressing"].as_array_mut().unwrap() {
            if a["network"] == "oob" {
                a["address"] = json!(address);
            }
        }
        node["oob"] = json!({"system_id": systems[i].uuid});
        if *name == BAD_BMC {
            node["oob"]["credential"] = json!("bmc-wrong");
        }
    }
    docs
}

/// (power state, boot override target) of a system, as the emulator says.
async fn power_and_boot(bmc: &Sushy, uuid: &str) -> (String, String) {
    let s = bmc.system(uuid).await;
    (
        s["PowerState"].as_str().unwrap_or_default().to_owned(),
        s["Boot"]["BootSourceOverrideTarget"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Plays the provisioning network for the sim bootstrapper: the sim enlists
/// a node once it saw it PXE boot, which it learns from its own key-value
/// store (`boot/<node>` PXE, `power/<node>` on — what its own oob interface
/// writes). The nodes here boot through the Redfish emulator instead, so
/// this watches each system and, once the emulator shows it powered on with
/// a PXE boot override, tells the sim so. A node whose BMC never PXE-boots
/// it never enlists. Returns the nodes seen booting, in order.
fn pxe_watcher(
    bmc: Arc<Sushy>,
    store: Store,
    nodes: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut pending = nodes;
        let mut seen = Vec::new();
        while !pending.is_empty() && !stop.load(Ordering::Relaxed) {
            let mut left = Vec::new();
            for (node, uuid) in pending {
                let (power, boot) = power_and_boot(&bmc, &uuid).await;
                if power == "On" && boot == "Pxe" {
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
                    seen.push(node);
                } else {
                    left.push((node, uuid));
                }
            }
            pending = left;
            // Polling the peer, not waiting for the engine: the engine's
            // identify_node retries give the node time to enlist.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    })
}

/// `verify_nodes` and `prepare_nodes` on four nodes whose BMCs are systems
/// of one sushy-tools emulator (basic auth, HTTP), the sim as bootstrapper;
/// one node's BMC credential is the wrong password.
#[tokio::test]
async fn redfish_bmcs_through_the_orchestrator() {
    let systems: Vec<FakeSystem> = (1..=4).map(|i| FakeSystem::numbered(i, false)).collect();
    let bmc = Arc::new(Sushy::start(SushyConfig {
        systems: systems.clone(),
        basic_auth: Some(("admin".into(), "calvin".into())),
        listen_ip: Some("0.0.0.0".into()),
        ..SushyConfig::default()
    }));
    let dir = design_dir(&redfish_site(&bmc, &systems));
    let store = drydock_tests::db::sqlite().await;
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let redfish = rt.load("redfish", drydock::bundled::REDFISH).await.unwrap();
    let e = engine(
        store.clone(),
        rt,
        Drivers {
            list: vec![
                (sim, DriverConfig::default()),
                (
                    redfish,
                    DriverConfig {
                        settings: settings(&[("poll_interval_ms", "250")]),
                        ..DriverConfig::default()
                    },
                ),
            ],
            node: Some("sim"),
            network: Some("sim"),
        },
        &dir,
        &[("bmc-password", "calvin"), ("bmc-wrong", "not-calvin")],
    )
    .await;
    let good = ["cmp01", "cmp02", "ctl01"];

    // verify_nodes: interrogate_oob on every BMC, stored as build data.
    let v = run(&e, "verify_nodes", None).await;
    assert_eq!(v.result_status, ResultStatus::PartialSuccess, "{v:?}");
    assert_eq!(v.successes, names(&good));
    assert_eq!(v.failures, [BAD_BMC]);
    let msg = v.result_message.as_deref().unwrap();
    assert!(msg.contains("cmp03 (interrogate_oob)"), "{msg}");
    assert_eq!(actions(&steps(&store, v.id).await), ["interrogate_oob"]);
    for (i, name) in good.iter().enumerate() {
        let bd = store.build_data_for_node(name, false).await.unwrap();
        let oob = bd
            .iter()
            .find(|b| b.generator == "interrogate_oob")
            .unwrap_or_else(|| panic!("no interrogate_oob build data for {name}: {bd:?}"));
        let facts: Value = serde_json::from_str(&oob.content).unwrap();
        assert_eq!(facts["power_state"], "off", "{name}");
        assert_eq!(facts["raw"]["system"]["Id"], systems[i].uuid, "{name}");
        assert_eq!(facts["macs"], json!([systems[i].mac]), "{name}");
        // The driver's own raw record too.
        assert!(bd.iter().any(|b| b.generator == "redfish"), "{bd:?}");
    }
    let bad = node_subtask(&store, v.id, 0, BAD_BMC).await;
    assert_eq!(bad.result_reason.as_deref(), Some("auth"), "{bad:?}");
    let said = bad.result_message.as_deref().unwrap();
    assert!(
        said.contains("refused the credentials of user `admin`") && said.contains("127.0.0.5"),
        "{said}"
    );
    assert!(!said.contains("not-calvin"), "{said}");
    assert!(
        store
            .build_data_for_node(BAD_BMC, false)
            .await
            .unwrap()
            .is_empty()
    );

    // prepare_nodes: no node is known, so each is PXE-booted through its
    // BMC; the bootstrapper enlists those it sees boot.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = pxe_watcher(
        bmc.clone(),
        store.clone(),
        REDFISH_NODES
            .iter()
            .enumerate()
            .map(|(i, n)| (n.0.to_string(), systems[i].uuid.clone()))
            .collect(),
        stop.clone(),
    );
    let prep = run(&e, "prepare_nodes", None).await;
    stop.store(true, Ordering::Relaxed);
    let booted: BTreeSet<String> = watcher.await.unwrap().into_iter().collect();
    assert_eq!(booted, good.iter().map(|s| s.to_string()).collect());
    assert_eq!(prep.result_status, ResultStatus::PartialSuccess, "{prep:?}");
    assert_eq!(prep.successes, names(&good));
    assert_eq!(prep.failures, [BAD_BMC]);
    let msg = prep.result_message.as_deref().unwrap();
    assert!(msg.contains("cmp03 (set_node_boot)"), "{msg}");
    let s = steps(&store, prep.id).await;
    // No node is cabled to a switch port: no config_port_provisioning.
    assert_eq!(
        actions(&s),
        [
            "identify_node",
            "set_node_boot",
            "power_cycle_node",
            "identify_node",
            "configure_hardware"
        ]
    );
    assert_eq!((s[0].1.len(), s[0].2.len()), (0, 4), "nobody known yet");
    assert_eq!(s[1].1, names(&good));
    assert_eq!(s[1].2, [BAD_BMC]);
    assert_eq!(s[2].1, names(&good));
    assert_eq!(s[3].1, names(&good));
    assert_eq!(s[4].1, names(&good));
    // The wrong password is an auth error, not retried, naming the BMC.
    let bad = node_subtask(&store, prep.id, 1, BAD_BMC).await;
    assert_eq!(bad.result_reason.as_deref(), Some("auth"), "{bad:?}");
    let msgs = store.messages(bad.id).await.unwrap();
    assert!(
        !msgs.iter().any(|m| m.message.contains("retrying")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.error && m.message.contains("BMC 127.0.0.5")),
        "{msgs:?}"
    );
    // What the BMCs did, read from the emulator: the three good systems
    // boot from PXE and are on; the bad node's system was never touched.
    for (i, (name, _, _)) in REDFISH_NODES.iter().enumerate() {
        let (power, boot) = power_and_boot(&bmc, &systems[i].uuid).await;
        if *name == BAD_BMC {
            assert_eq!((power.as_str(), boot.as_str()), ("Off", "Hdd"), "{name}");
        } else {
            assert_eq!((power.as_str(), boot.as_str()), ("On", "Pxe"), "{name}");
            let record = store.kv_get("sim", &format!("node/{name}")).await.unwrap();
            let record: Value = serde_json::from_str(&record.unwrap()).unwrap();
            assert_eq!(record["status"], "Ready", "{name}");
            let node = store.get_node(name).await.unwrap().unwrap();
            assert_eq!(node.power_state.as_deref(), Some("on"), "{name}");
        }
    }

    // Again on the good nodes: known to the bootstrapper, so no PXE boot.
    let again = run(
        &e,
        "prepare_nodes",
        Some(json!({"filter_set": [{"node_names": good}]})),
    )
    .await;
    assert_eq!(again.result_status, ResultStatus::Success, "{again:?}");
    // Only identify_node and configure_hardware called a driver. While some
    // nodes are still in identify_node, those done with it move on to
    // configure_hardware, and the steps between (which a node failing
    // identify_node would still reach) get their containers first, in plan
    // order; they end with no call. Whether that happens depends on which
    // identify_node calls end first, so only the steps that made calls are
    // compared.
    let s = steps(&store, again.id).await;
    let called: Vec<&str> = s
        .iter()
        .filter(|(_, ok, failed)| !ok.is_empty() || !failed.is_empty())
        .map(|(action, _, _)| action.as_str())
        .collect();
    assert_eq!(called, ["identify_node", "configure_hardware"], "{s:?}");
    e.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------ EOS

/// Nodes cabled to the fake switch, and their ports.
const EOS_NODES: [(&str, &str); 3] = [
    ("ctl01", "Ethernet1"),
    ("cmp01", "Ethernet2"),
    ("cmp02", "Ethernet3"),
];

/// A node in rack02 cabled to `Ethernet1` of a switch whose eAPI password
/// is not the one the design's credential holds.
const LOCKED_OUT: &str = "cmp03";

/// The sample site cut to [`EOS_NODES`], all in rack01 behind `sw`
/// (eAPI over HTTP, credential by name), plus [`LOCKED_OUT`] in rack02
/// behind `locked` with the same credential, which `locked` refuses. The
/// PXE network is the sample's VLAN 100 on link `pxe` (802.1q, default
/// network `pxe`): provisioning makes a port a trunk with native VLAN 100
/// allowing 100, production a trunk with native VLAN 100 allowing the
/// interface's networks, pxe (100) and mgmt (101).
fn eos_site(sw: &FakeSwitch, locked: &FakeSwitch) -> Vec<Value> {
    let mut keep: Vec<&str> = EOS_NODES.iter().map(|n| n.0).collect();
    keep.push(LOCKED_OUT);
    let mut docs = site(&keep);
    for (rack, switch) in [("rack01", sw), ("rack02", locked)] {
        doc_mut(&mut docs, "Rack", rack)["data"]["tor_switches"] = json!({
            switch.name.as_str(): {
                "mgmt_ip": "127.0.0.1",
                "port": switch.port,
                "account": "admin",
                "credential": "switch-password",
            }
        });
    }
    for (name, port) in EOS_NODES {
        let node = &mut doc_mut(&mut docs, "BaremetalNode", name)["data"];
        node["interfaces"]["pxe"]["switch_port"] = json!({"switch": sw.name, "port": port});
        node["metadata"]["rack"] = json!("rack01");
    }
    let node = &mut doc_mut(&mut docs, "BaremetalNode", LOCKED_OUT)["data"];
    node["interfaces"]["pxe"]["switch_port"] = json!({"switch": locked.name, "port": "Ethernet1"});
    node["metadata"]["rack"] = json!("rack02");
    docs
}

/// (mode, allowed VLANs) of `port` as the switch itself reports it.
async fn switchport(sw: &FakeSwitch, port: &str) -> (String, String) {
    let info = sw.switchport(port).await;
    (
        info["mode"].as_str().unwrap_or_default().to_owned(),
        info["trunkAllowedVlans"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The native VLAN of `port` as the switch itself reports it.
async fn native_vlan(sw: &FakeSwitch, port: &str) -> u64 {
    sw.switchport(port).await["trunkingNativeVlanId"]
        .as_u64()
        .unwrap_or_default()
}

/// `prepare_nodes` then `deploy_nodes` with the sim as BMCs and
/// bootstrapper and the eos driver on a fake Arista switch (basic auth):
/// ports go to the provisioning VLAN, then to production; a node whose
/// deploy fails keeps its port in provisioning; a node whose switch refuses
/// the design's credential is not PXE booted.
#[tokio::test]
async fn eos_switch_ports_through_the_orchestrator() {
    let ports: Vec<&str> = EOS_NODES.iter().map(|n| n.1).collect();
    let sw = FakeSwitch::start_with_auth("leaf01", &ports, "admin", "arista");
    let locked = FakeSwitch::start_with_auth("leaf02", &[], "admin", "not-arista");
    // cmp02's port starts as a trunk of other VLANs.
    let answer = sw
        .eapi(&[
            "enable",
            "configure terminal",
            "vlan 30",
            "vlan 40",
            "interface Ethernet3",
            "switchport mode trunk",
            "switchport trunk allowed vlan 30,40",
            "end",
        ])
        .await;
    assert!(answer.get("result").is_some(), "{answer}");
    let dir = design_dir(&eos_site(&sw, &locked));
    let store = drydock_tests::db::sqlite().await;
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let eos = rt.load("eos", drydock::bundled::EOS).await.unwrap();
    let e = engine(
        store.clone(),
        rt,
        Drivers {
            list: vec![
                (
                    sim,
                    DriverConfig {
                        settings: settings(&[
                            ("fail_nodes", "cmp02"),
                            ("fail_actions", "deploy_node"),
                        ]),
                        ..DriverConfig::default()
                    },
                ),
                (
                    eos,
                    DriverConfig {
                        settings: settings(&[("scheme", "http")]),
                        ..DriverConfig::default()
                    },
                ),
            ],
            node: Some("sim"),
            network: Some("eos"),
        },
        &dir,
        &[("bmc-password", "calvin"), ("switch-password", "arista")],
    )
    .await;
    let all = ["cmp01", "cmp02", "ctl01"];
    for port in &ports[..2] {
        assert_eq!(switchport(&sw, port).await.0, "access", "{port}");
    }

    let prep = run(&e, "prepare_nodes", None).await;
    assert_eq!(prep.result_status, ResultStatus::PartialSuccess, "{prep:?}");
    assert_eq!(prep.successes, names(&all));
    assert_eq!(prep.failures, [LOCKED_OUT]);
    let msg = prep.result_message.as_deref().unwrap();
    assert!(msg.contains("cmp03 (config_port_provisioning)"), "{msg}");
    let s = steps(&store, prep.id).await;
    assert_eq!(actions(&s)[1], "config_port_provisioning");
    assert_eq!(s[1].1, names(&all));
    assert_eq!(s[1].2, [LOCKED_OUT]);
    // Refused credentials: an auth error naming the switch and the account,
    // never the password; the node is not PXE booted on a port that did not
    // reach the provisioning VLAN.
    let refused = node_subtask(&store, prep.id, 1, LOCKED_OUT).await;
    assert_eq!(
        refused.result_reason.as_deref(),
        Some("auth"),
        "{refused:?}"
    );
    let said = refused.result_message.as_deref().unwrap();
    assert!(said.contains("leaf02") && said.contains("admin"), "{said}");
    assert!(!said.contains("arista"), "{said}");
    assert!(!s[2].1.contains(&LOCKED_OUT.to_string()), "{s:?}");
    assert!(
        store.kv_get("sim", "boot/cmp03").await.unwrap().is_none(),
        "cmp03 was PXE booted"
    );
    assert_eq!(switchport(&locked, "Ethernet1").await.0, "access");
    for (name, port) in EOS_NODES {
        assert_eq!(
            switchport(&sw, port).await,
            ("trunk".into(), "100".into()),
            "{name} {port} after prepare_nodes"
        );
        assert_eq!(native_vlan(&sw, port).await, 100, "{name} {port}");
        // The driver remembers each port as it was before provisioning.
        let previous = store
            .kv_get("eos", &format!("port/leaf01/{port}/previous"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no previous configuration of {port}"));
        let previous: Value = serde_json::from_str(&previous).unwrap();
        let was = if port == "Ethernet3" {
            "trunk"
        } else {
            "access"
        };
        assert_eq!(previous["mode"], was, "{port}");
    }

    let dep = run(&e, "deploy_nodes", None).await;
    assert_eq!(dep.result_status, ResultStatus::PartialSuccess, "{dep:?}");
    assert_eq!(dep.failures, ["cmp02", LOCKED_OUT]);
    let msg = dep.result_message.as_deref().unwrap();
    assert!(
        msg.contains("cmp02 (deploy_node)") && msg.contains("cmp03 (apply_node_networking)"),
        "{msg}"
    );
    let s = steps(&store, dep.id).await;
    assert_eq!(
        actions(&s),
        [
            "apply_node_networking",
            "apply_node_storage",
            "apply_node_platform",
            "deploy_node",
            "config_port_production"
        ]
    );
    assert_eq!(s[4].1, names(&["cmp01", "ctl01"]));
    for (name, port) in EOS_NODES {
        let expected = if name == "cmp02" { "100" } else { "100-101" };
        assert_eq!(
            switchport(&sw, port).await,
            ("trunk".into(), expected.into()),
            "{name} {port} after deploy_nodes"
        );
        assert_eq!(native_vlan(&sw, port).await, 100, "{name} {port}");
        let previous = store
            .kv_get("eos", &format!("port/leaf01/{port}/previous"))
            .await
            .unwrap();
        assert_eq!(previous.is_some(), name == "cmp02", "{port}: {previous:?}");
    }
    // Every configuration reached the switch with the design's credential
    // (the guard in front of the eAPI refuses anything else).
    let vlans = sw.eapi(&["show vlan"]).await;
    assert!(vlans["result"][0]["vlans"].get("101").is_some(), "{vlans}");
    e.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------ MAAS

/// The MAAS site's nodes and boot MACs (from the sample); `ctl01` is
/// enlisted in MAAS before the flow, the others enlist when they PXE boot.
const MAAS_NODES: [(&str, &str); 3] = [
    ("ctl01", "52:54:00:00:00:01"),
    ("cmp01", "52:54:00:00:00:05"),
    ("cmp02", "52:54:00:00:00:06"),
];

/// The sample site cut to [`MAAS_NODES`], sim BMCs, no switch ports, with
/// the device names MAAS knows the fake's machines by: the sample's
/// `pxe_nic01` (a hardware-profile alias) and `enp3s0f*` become `eth0`,
/// `eth1`, `eth2`, and control nodes' `datadisk` becomes `sdb` (`bootdisk`
/// the driver maps to the boot disk itself); a valid SSH key.
fn maas_site() -> Vec<Value> {
    let keep: Vec<&str> = MAAS_NODES.iter().map(|n| n.0).collect();
    let mut docs = site(&keep);
    // The sample's key is not valid base64, which MAAS refuses: a real
    // ed25519 public key (its private half was thrown away).
    doc_mut(&mut docs, "Region", "sitename")["data"]["authorized_keys"] = json!([
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAHIvHEfx4HOEpWeK+Lg6n1cTuKZkjozVQfYbwQrxLcH operator@example"
    ]);
    let defaults = &mut doc_mut(&mut docs, "HostProfile", "defaults")["data"];
    defaults["interfaces"]["pxe"]["slaves"] = json!(["eth0"]);
    defaults["interfaces"]["bond0"]["slaves"] = json!(["eth1", "eth2"]);
    let control = &mut doc_mut(&mut docs, "HostProfile", "control")["data"]["storage"];
    let data = control["physical_devices"]
        .as_object_mut()
        .unwrap()
        .remove("datadisk")
        .expect("control nodes' datadisk");
    control["physical_devices"]["sdb"] = data;
    for (name, mac) in MAAS_NODES {
        let node = &mut doc_mut(&mut docs, "BaremetalNode", name)["data"];
        node.as_object_mut().unwrap().remove("interfaces");
        assert_eq!(node["metadata"]["boot_mac"], mac, "{name}");
    }
    docs
}

/// A machine the fake enlists, as MAAS would on its first PXE boot: host
/// name of MAAS's choosing, boot NIC `eth0` with `mac`, `eth1`, `eth2`.
fn new_machine(k: usize, mac: &str) -> drydock_tests::fake_maas::NewMachine {
    let mut m = drydock_tests::fake_maas::NewMachine::new(&format!("enlisted-{k}"), mac);
    m.extra_nics = vec![
        ("eth1".into(), format!("52:54:00:00:{k:02x}:01")),
        ("eth2".into(), format!("52:54:00:00:{k:02x}:02")),
    ];
    m
}

/// (system id, status code) of the fake's machine named `host`.
fn machine_by_host(fake: &drydock_tests::fake_maas::FakeMaas, host: &str) -> Option<(String, u8)> {
    fake.with_state(|st| {
        st.machines
            .values()
            .find(|m| m.hostname == host)
            .map(|m| (m.system_id.clone(), m.status))
    })
}

/// Plays the provisioning network for the fake MAAS: once the sim BMC of a
/// node shows it powered on with a PXE boot override, the node's machine
/// enlists in MAAS (status New) with the node's boot MAC. Returns the nodes
/// enlisted, in order.
fn maas_enlister(
    fake: Arc<drydock_tests::fake_maas::FakeMaas>,
    store: Store,
    nodes: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut pending = nodes;
        let mut seen = Vec::new();
        while !pending.is_empty() && !stop.load(Ordering::Relaxed) {
            let mut left = Vec::new();
            for (node, mac) in pending {
                let boot = store.kv_get("sim", &format!("boot/{node}")).await.unwrap();
                let power = store.kv_get("sim", &format!("power/{node}")).await.unwrap();
                let pxe = boot.is_some_and(|b| b.contains("\"pxe\""));
                if pxe && power.as_deref() == Some("on") {
                    let k = fake.with_state(|st| st.machines.len()) + 10;
                    fake.enlist(new_machine(k, &mac));
                    seen.push(node);
                } else {
                    left.push((node, mac));
                }
            }
            pending = left;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen
    })
}

/// `prepare_site` → `prepare_nodes` → `deploy_nodes` → `destroy_nodes` with
/// the MAAS node driver against the fake MAAS and sim BMCs; machine
/// statuses read from the fake at each stage.
#[tokio::test]
async fn maas_through_the_orchestrator() {
    use drydock_tests::fake_maas::{API_KEY, FakeMaas, status};
    let fake = Arc::new(FakeMaas::start(Duration::from_millis(200)).await);
    // ctl01 is already known to MAAS, under the name MAAS gave it.
    let ctl01 = fake.enlist(new_machine(1, MAAS_NODES[0].1));
    let dir = design_dir(&maas_site());
    let store = drydock_tests::db::sqlite().await;
    let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let maas = rt.load("maas", drydock::bundled::MAAS).await.unwrap();
    let mut maas_secrets = GrantedSecrets::default();
    maas_secrets.insert("maas-api-key", API_KEY);
    let e = engine(
        store.clone(),
        rt,
        Drivers {
            list: vec![
                (sim, DriverConfig::default()),
                (
                    maas,
                    DriverConfig {
                        settings: settings(&[
                            ("url", fake.url().as_str()),
                            ("poll_interval_ms", "50"),
                        ]),
                        secrets: maas_secrets,
                        egress: vec![fake.egress().parse().unwrap()].into(),
                        ..DriverConfig::default()
                    },
                ),
            ],
            node: Some("maas"),
            network: Some("sim"),
        },
        &dir,
        &[("bmc-password", "calvin")],
    )
    .await;
    let all = ["cmp01", "cmp02", "ctl01"];

    let v = run(&e, "verify_site", None).await;
    assert_eq!(v.result_status, ResultStatus::Success, "{v:?}");
    let ps = run(&e, "prepare_site", None).await;
    assert_eq!(
        ps.result_status,
        ResultStatus::Success,
        "{:#?}",
        errors(&store, ps.id).await
    );
    let cidrs: BTreeSet<String> =
        fake.with_state(|st| st.subnets.iter().map(|s| s.cidr.clone()).collect());
    for cidr in ["172.16.0.0/24", "172.16.1.0/24", "172.16.2.0/24"] {
        assert!(cidrs.contains(cidr), "{cidr} not in {cidrs:?}");
    }

    // prepare_nodes: ctl01 is known (named and commissioned, no PXE boot);
    // cmp01 and cmp02 PXE boot through the sim BMCs and enlist.
    let stop = Arc::new(AtomicBool::new(false));
    let enlister = maas_enlister(
        fake.clone(),
        store.clone(),
        MAAS_NODES[1..]
            .iter()
            .map(|(n, m)| (n.to_string(), m.to_string()))
            .collect(),
        stop.clone(),
    );
    let prep = run(&e, "prepare_nodes", None).await;
    stop.store(true, Ordering::Relaxed);
    let enlisted = enlister.await.unwrap();
    assert_eq!(prep.result_status, ResultStatus::Success, "{prep:?}");
    assert_eq!(prep.successes, names(&all));
    let mut enlisted_sorted = enlisted.clone();
    enlisted_sorted.sort();
    assert_eq!(enlisted_sorted, ["cmp01", "cmp02"]);
    let s = steps(&store, prep.id).await;
    assert_eq!(
        actions(&s),
        [
            "identify_node",
            "set_node_boot",
            "power_cycle_node",
            "identify_node",
            "configure_hardware"
        ]
    );
    assert_eq!(s[0].1, ["ctl01"], "only ctl01 was known: {s:?}");
    assert_eq!(s[2].1, ["cmp01", "cmp02"], "PXE booted: {s:?}");
    assert_eq!(s[3].1, ["cmp01", "cmp02"], "enlisted: {s:?}");
    assert_eq!(s[4].1, names(&all));
    assert!(
        store.kv_get("sim", "boot/ctl01").await.unwrap().is_none(),
        "a known node is not PXE booted"
    );
    for name in all {
        let (id, st) =
            machine_by_host(&fake, name).unwrap_or_else(|| panic!("no MAAS machine named {name}"));
        assert_eq!(st, status::READY, "{name} after prepare_nodes");
        if name == "ctl01" {
            assert_eq!(id, ctl01);
        }
    }

    // The nodes' shared tags (site01, compute...) are created by parallel
    // apply_node_platform calls racing each other: the driver takes MAAS's
    // "already exists" for done.
    let dep = run(&e, "deploy_nodes", None).await;
    assert_eq!(
        dep.result_status,
        ResultStatus::Success,
        "{:#?}",
        errors(&store, dep.id).await
    );
    for name in all {
        let (id, st) = machine_by_host(&fake, name).unwrap();
        assert_eq!(st, status::DEPLOYED, "{name} after deploy_nodes");
        // The sample's boot action `hello` (compute nodes) reached MAAS as
        // the machine's cloud-init user data, fetching from Drydock.
        let user_data = fake.with_state(|st| st.machines[&id].user_data.clone());
        let user_data = String::from_utf8(user_data.unwrap_or_default()).unwrap();
        if name.starts_with("cmp") {
            assert!(
                user_data.starts_with("#cloud-config"),
                "{name}: {user_data}"
            );
            assert!(
                user_data.contains("/api/v1.0/bootactions/"),
                "{name}: {user_data}"
            );
            assert!(
                user_data.contains(&format!("nodes/{name}/$t")),
                "{name}: {user_data}"
            );
        } else {
            assert!(user_data.is_empty(), "{name}: {user_data}");
        }
        let m = fake.machine(&id).unwrap();
        assert_eq!(m["distro_series"], "jammy", "{name}");
        let kernel = if name == "ctl01" {
            "ga-22.04"
        } else {
            "hwe-22.04"
        };
        assert_eq!(m["hwe_kernel"], kernel, "{name}");
        let tags = m["tag_names"].as_array().unwrap();
        let role = if name == "ctl01" {
            "control"
        } else {
            "compute"
        };
        for tag in [role.to_string(), "site01".into(), format!("{name}_kp")] {
            assert!(tags.contains(&json!(tag)), "{name}: {tag} not in {tags:?}");
        }
    }

    // cmp01's links as the design has them: PXE by DHCP on eth0 (the
    // design's `dhcp`), mgmt static on VLAN 101 over it, private static on
    // VLAN 102 over the bond.
    let (id, _) = machine_by_host(&fake, "cmp01").unwrap();
    let m = fake.machine(&id).unwrap();
    let links: BTreeMap<String, (String, String, Value)> = m["interface_set"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["links"].as_array().unwrap().iter().map(move |l| {
                (
                    l["subnet"]["cidr"].as_str().unwrap().to_owned(),
                    (
                        i["name"].as_str().unwrap().to_owned(),
                        l["mode"].as_str().unwrap().to_owned(),
                        l["ip_address"].clone(),
                    ),
                )
            })
        })
        .collect();
    let link = |i: &str, mode: &str, ip: Value| (i.to_owned(), mode.to_owned(), ip);
    let expected = BTreeMap::from([
        (
            "172.16.0.0/24".to_owned(),
            link("eth0", "dhcp", Value::Null),
        ),
        (
            "172.16.1.0/24".to_owned(),
            link("eth0.101", "static", json!("172.16.1.15")),
        ),
        (
            "172.16.2.0/24".to_owned(),
            link("bond0.102", "static", json!("172.16.2.15")),
        ),
    ]);
    assert_eq!(links, expected);

    let gone = run(
        &e,
        "destroy_nodes",
        Some(json!({"filter_set": [{"node_names": ["cmp01", "cmp02"]}]})),
    )
    .await;
    assert_eq!(gone.result_status, ResultStatus::Success, "{gone:?}");
    assert!(machine_by_host(&fake, "cmp01").is_none());
    assert!(machine_by_host(&fake, "cmp02").is_none());
    assert_eq!(
        machine_by_host(&fake, "ctl01").map(|m| m.1),
        Some(status::DEPLOYED)
    );
    e.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------- per-node TLS trust

/// A BMC with a private CA: the node's `tls_ca_secret` makes it trusted,
/// without it the call fails on the certificate, and `tls_verify: false`
/// turns verification off for that node only.
#[tokio::test]
async fn per_node_tls_trust_for_a_redfish_bmc() {
    let systems: Vec<FakeSystem> = (1..=4).map(|i| FakeSystem::numbered(i, false)).collect();
    let bmc = Sushy::start(SushyConfig {
        systems: systems[..1].to_vec(),
        basic_auth: Some(("admin".into(), "calvin".into())),
        tls: true,
        ..SushyConfig::default()
    });
    let ca = bmc.ca_pem.clone().expect("a private CA");
    // One node at 127.0.0.1 (the certificate's address), over https.
    let design = |oob_extra: Value| {
        let mut docs = redfish_site(&bmc, &systems);
        docs.retain(|d| {
            d["schema"] != "drydock/BaremetalNode/v1" || d["metadata"]["name"] == "cmp01"
        });
        doc_mut(&mut docs, "Network", "oob")["data"]["cidr"] = json!("127.0.0.0/8");
        doc_mut(&mut docs, "HostProfile", "defaults")["data"]["oob"]["scheme"] = json!("https");
        let node = &mut doc_mut(&mut docs, "BaremetalNode", "cmp01")["data"];
        for a in node["addressing"].as_array_mut().unwrap() {
            if a["network"] == "oob" {
                a["address"] = json!("127.0.0.1");
            }
        }
        for (k, v) in oob_extra.as_object().unwrap() {
            node["oob"][k] = v.clone();
        }
        design_dir(&docs)
    };
    let verify = |dir: PathBuf| {
        let ca = ca.clone();
        async move {
            let store = drydock_tests::db::sqlite().await;
            let rt: Arc<Runtime> = Arc::new(drydock_tests::runtime());
            let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
            let redfish = rt.load("redfish", drydock::bundled::REDFISH).await.unwrap();
            let e = engine(
                store.clone(),
                rt,
                Drivers {
                    list: vec![
                        (sim, DriverConfig::default()),
                        (redfish, DriverConfig::default()),
                    ],
                    node: Some("sim"),
                    network: Some("sim"),
                },
                &dir,
                &[("bmc-password", "calvin"), ("bmc-ca", &ca)],
            )
            .await;
            let done = run(&e, "verify_nodes", None).await;
            let errs = errors(&store, done.id).await;
            e.shutdown();
            (done, errs)
        }
    };
    let (trusted, errs) = verify(design(json!({"tls_ca_secret": "bmc-ca"}))).await;
    assert_eq!(trusted.result_status, ResultStatus::Success, "{errs:?}");
    let (untrusted, errs) = verify(design(json!({}))).await;
    assert_eq!(untrusted.result_status, ResultStatus::Failure);
    assert!(
        errs.iter()
            .any(|e| e.contains("CA") || e.contains("certificate")),
        "{errs:?}"
    );
    let (unverified, errs) = verify(design(json!({"tls_verify": "false"}))).await;
    assert_eq!(unverified.result_status, ResultStatus::Success, "{errs:?}");
}
