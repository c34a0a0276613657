//! WIT versions side by side (issue 17): the host serves
//! `drydock:driver@0.1.0` and `@0.2.0`, reads a component's version at load
//! and refuses others naming the served ones; the action suite runs over a
//! 0.1.0 guest (the sim as released, built from a frozen copy of its sources
//! and SDK) and a 0.2.0 guest (the bundled sim); the frozen 0.1.0 sim,
//! signed, installs, activates and runs on this host; 0.2.0's typed sizes
//! and `datagram` capability work as the WIT says.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use drydock::api::{ApiToken, AppState, Auth, Role, router};
use drydock::drivers::{
    Action, CallError, Driver, DriverConfig, DriverErrorKind, DriverLimits, DriverSet, Interface,
    LoadError, Runtime, RuntimeConfig, WitVersion,
};
use drydock::lifecycle::{Lifecycle, LifecycleConfig};
use drydock::model::{
    ActionParams, BootDevice, BootTarget, LogicalVolume, Partition, PhysicalDevice, PortMode,
    PortVlans, SiteNetworks, Storage, SwitchPort, VolumeGroup,
};
use drydock::tasks::{Engine, EngineConfig};
use drydock_tests::packages::{key, sim_package_of};
use drydock_tests::{Call, guests, load, node, runtime};
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tower::ServiceExt;

async fn sim_v0_2(rt: &Runtime) -> Driver {
    rt.load("sim", drydock::bundled::SIM).await.expect("sim")
}

async fn sim_v0_1(rt: &Runtime) -> Driver {
    load(rt, guests::SIM_V0_1).await
}

/// Parameters every action of the suite can use.
fn suite_params() -> ActionParams {
    let switch = drydock::model::Switch {
        name: "leaf1".into(),
        address: "192.0.2.1".into(),
        ..Default::default()
    };
    ActionParams {
        boot: Some(BootTarget {
            device: BootDevice::Pxe,
            persistent: false,
        }),
        site: Some(SiteNetworks::default()),
        image: Some("jammy".into()),
        ssh_keys: vec!["ssh-ed25519 AAAA test".into()],
        vlans: Some(PortVlans {
            mode: PortMode::Access,
            access_vlan: Some(100),
            ..PortVlans::default()
        }),
        switch: Some(switch.clone()),
        switch_port: Some(SwitchPort {
            switch,
            port: "Ethernet1".into(),
            ..Default::default()
        }),
        ..ActionParams::default()
    }
}

/// A node whose design has storage sizes in Drydock's grammar.
fn storage_node(name: &str, size: &str) -> drydock::model::Node {
    let mut n = node(name, "sim");
    n.labels = [("role".to_string(), "compute".to_string())].into();
    n.storage = Storage {
        physical_devices: vec![PhysicalDevice {
            name: "sda".into(),
            partitions: vec![Partition {
                name: "root".into(),
                size: size.into(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        volume_groups: vec![VolumeGroup {
            name: "vg0".into(),
            logical_volumes: vec![LogicalVolume {
                name: "var".into(),
                size: "99%".into(),
                ..Default::default()
            }],
        }],
        ..Default::default()
    };
    n
}

/// Runs every action on `d`; the results by action.
async fn action_suite(rt: &Runtime, d: &Driver) -> Vec<(Action, Result<Value, CallError>)> {
    let call = Call {
        params: suite_params(),
        ..Call::default()
    };
    let n = storage_node("n1", ">30g");
    let mut out = Vec::new();
    for action in Action::ALL {
        let node = action.is_node_scoped().then_some(&n);
        out.push((*action, call.run(rt, d, *action, node).await));
    }
    out
}

/// The action suite over a 0.1.0 and a 0.2.0 guest: every action the
/// version has succeeds; `relabel_node` (new in 0.2.0) is unsupported on
/// 0.1.0.
#[tokio::test]
async fn the_action_suite_runs_on_every_served_version() {
    let rt = runtime();
    let guests = [
        (WitVersion::V0_1, sim_v0_1(&rt).await),
        (WitVersion::V0_2, sim_v0_2(&rt).await),
    ];
    for (version, d) in &guests {
        assert_eq!(d.wit_version(), *version);
        for (action, result) in action_suite(&rt, d).await {
            let in_version = version.interfaces().contains(&action.interface());
            match (in_version, result) {
                (true, Ok(_)) => {}
                (false, Err(CallError::Unsupported { interface, .. })) => {
                    assert_eq!(interface, Interface::Provisioner)
                }
                (_, r) => panic!("{version} {action}: {r:?}"),
            }
        }
    }
}

#[tokio::test]
async fn the_version_is_read_from_the_component_and_shown() {
    let rt = runtime();
    let old = sim_v0_1(&rt).await;
    assert_eq!(old.wit_version(), WitVersion::V0_1);
    assert_eq!(
        old.worlds(),
        vec!["oob-driver", "node-driver", "network-driver", "full-driver"]
    );
    assert!(!old.exports(Interface::Provisioner));
    let new = sim_v0_2(&rt).await;
    assert_eq!(new.wit_version(), WitVersion::V0_2);
    assert_eq!(
        new.worlds(),
        vec![
            "oob-driver",
            "node-driver",
            "network-driver",
            "provisioner-driver",
            "full-driver"
        ]
    );
    assert!(new.info().interfaces.contains(&Interface::Provisioner));
    // A single-interface 0.2.0 driver built without the SDK.
    assert_eq!(
        load(&rt, guests::OOB_ONLY).await.wit_version(),
        WitVersion::V0_2
    );
    assert_eq!(WitVersion::served_list(), "0.1.0, 0.2.0");
}

#[tokio::test]
async fn an_unsupported_version_is_refused_naming_the_served_ones() {
    let rt = runtime();
    let e = rt
        .load_file(std::path::Path::new(guests::OLD_VERSION))
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::WrongVersion { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("drydock:driver@0.0.1"), "{text}");
    assert!(text.contains("0.1.0, 0.2.0"), "{text}");
}

/// 0.2.0 drivers get sizes parsed once by the host; a size that does not
/// parse fails the call before the driver runs. 0.1.0 drivers get the text.
#[tokio::test]
async fn sizes_are_parsed_on_the_host_for_0_2_drivers() {
    let rt = runtime();
    let call = Call::default();
    let new = sim_v0_2(&rt).await;
    let old = sim_v0_1(&rt).await;
    // Any node-scoped call converts the node first.
    for good in ["30g", ">10gi", "99%", "512MB"] {
        let n = storage_node("n1", good);
        call.run(&rt, &new, Action::PowerOnNode, Some(&n))
            .await
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in ["500k", "1.5g", "10x", "101%"] {
        let n = storage_node("n1", bad);
        match call.run(&rt, &new, Action::PowerOnNode, Some(&n)).await {
            Err(CallError::InvalidRequest { reason, .. }) => {
                assert!(reason.contains(bad), "{bad}: {reason}")
            }
            r => panic!("{bad}: {r:?}"),
        }
        // The 0.1.0 sim receives the design's text and does not read it.
        call.run(&rt, &old, Action::PowerOnNode, Some(&n))
            .await
            .unwrap_or_else(|e| panic!("0.1.0 {bad}: {e}"));
    }
}

const ADMIN: &str = "admin-versions-token";

/// The frozen 0.1.0 sim, signed, installs over the bundled 0.2.0 sim,
/// activates, runs every action through the host's driver set, shows its
/// version in `GET /drivers`, and serves an engine task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_0_1_driver_installs_activates_and_runs_unchanged() {
    let (secret, trusted) = key();
    let store = drydock_tests::db::sqlite().await;
    let runtime = Arc::new(runtime());
    let mut set = DriverSet::new();
    set.add(sim_v0_2(&runtime).await, Arc::new(DriverConfig::default()))
        .unwrap();
    let drivers = Arc::new(set);
    let lifecycle = Lifecycle::new(
        store.clone(),
        runtime.clone(),
        drivers.clone(),
        LifecycleConfig {
            trusted_keys: vec![trusted],
            allow_unsigned: false,
            poll: Duration::from_secs(1),
            ..LifecycleConfig::default()
        },
    );
    let engine = Engine::start(
        store,
        runtime.clone(),
        drivers.clone(),
        EngineConfig::default(),
    )
    .await
    .expect("engine");
    let state = AppState::new(
        engine.clone(),
        Arc::new(Auth::new(vec![ApiToken {
            name: "admin".into(),
            token: ADMIN.into(),
            role: Role::Admin,
        }])),
    )
    .with_lifecycle(lifecycle);
    let app = router(state);
    let send = |method: &str, path: &str, body: Body| {
        let req = Request::builder()
            .method(method)
            .uri(format!("/api/v1.0{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let served = res
                .headers()
                .get(drydock::api::drivers::WIT_VERSIONS_HEADER)
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (status, v, served)
        }
    };

    let old = std::fs::read(guests::SIM_V0_1).unwrap();
    let package = sim_package_of(&old, "0.1.0-released", Some(&secret), 0);
    let (status, body, _) = send("POST", "/drivers", Body::from(package)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body, _) = send(
        "POST",
        "/drivers/sim/activate",
        Body::from(json!({ "version": "0.1.0-released" }).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let installed = drivers.get("sim").expect("sim is loaded");
    assert_eq!(installed.driver.wit_version(), WitVersion::V0_1);

    let (status, list, served) = send("GET", "/drivers", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served.as_deref(), Some("0.1.0, 0.2.0"));
    let sim = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "sim")
        .expect("sim listed");
    assert_eq!(sim["loaded"]["wit"], "0.1.0");
    assert_eq!(sim["active"]["version"], "0.1.0-released");

    for (action, result) in action_suite(&runtime, &installed.driver).await {
        match (action, result) {
            (Action::RelabelNode, Err(CallError::Unsupported { .. })) => {}
            (_, Ok(_)) => {}
            (a, r) => panic!("{a}: {r:?}"),
        }
    }

    // Through the engine: a node registered, powered on by the 0.1.0 sim.
    let (status, body, _) = send(
        "POST",
        "/nodes",
        Body::from(json!({"name": "old-1", "oob": {"type": "sim"}}).to_string()),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let task = drydock_tests::run_to_end(
        &engine,
        drydock::tasks::TaskRequest {
            action: "power_on_node".into(),
            design_ref: None,
            node_filter: Some(json!({"filter_set": [{"node_names": ["old-1"]}]})),
            params: None,
            created_by: None,
        },
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        task.result_status,
        drydock::store::ResultStatus::Success,
        "{task:?}"
    );
}

/// A runtime whose limits are `limits`.
fn runtime_with(limits: DriverLimits) -> Runtime {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-compile-cache");
    let cache = drydock::drivers::CompileCache::open_path(&dir).expect("compile cache dir");
    Runtime::new(
        RuntimeConfig {
            max_concurrent_calls: 4,
            limits,
            ..RuntimeConfig::default()
        },
        Some(cache),
    )
    .expect("driver runtime")
}

/// A UDP peer on loopback answering each datagram with `<datagram>-ok`.
async fn udp_echo() -> u16 {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = peer.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = peer.recv_from(&mut buf).await {
            let answer = [&buf[..n], b"-ok"].concat();
            let _ = peer.send_to(&answer, from).await;
        }
    });
    port
}

fn bmc_node(port: Option<u16>) -> drydock::model::Node {
    let mut n = node("n1", "datagram");
    n.oob.address = Some("127.0.0.1".into());
    n.oob.port = port;
    n
}

fn with_settings(settings: &[(&str, &str)]) -> Call {
    Call {
        config: Arc::new(DriverConfig {
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..DriverConfig::default()
        }),
        ..Call::default()
    }
}

/// `datagram`: an exchange with the node's BMC on its granted port works;
/// another port, or a node without a BMC address, is denied and reported
/// like an HTTP egress denial.
#[tokio::test]
async fn datagrams_reach_the_node_bmc_on_the_granted_port_only() {
    let rt = runtime();
    let d = load(&rt, guests::DATAGRAM).await;
    assert_eq!(d.wit_version(), WitVersion::V0_2);
    let port = udp_echo().await;

    let call = Call::default();
    call.run(&rt, &d, Action::PowerOnNode, Some(&bmc_node(Some(port))))
        .await
        .unwrap();
    assert!(call.statuses().contains(&"answer: ping-ok".to_string()));

    // send/receive: several sends, then the first answer.
    let call = with_settings(&[("count", "3")]);
    call.run(&rt, &d, Action::PowerOffNode, Some(&bmc_node(Some(port))))
        .await
        .unwrap();
    assert!(call.statuses().contains(&"answer: n0-ok".to_string()));

    // Another port of the same BMC.
    let other = port.wrapping_add(1).to_string();
    let call = with_settings(&[("port", &other)]);
    let e = call
        .run(&rt, &d, Action::PowerOnNode, Some(&bmc_node(Some(port))))
        .await
        .unwrap_err();
    let CallError::Driver { error, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(error.kind, DriverErrorKind::Failed);
    assert!(
        error.message.contains("datagram denied"),
        "{}",
        error.message
    );
    let denial = call
        .statuses()
        .into_iter()
        .find(|m| m.starts_with("egress denied: driver datagram may not reach udp://127.0.0.1:"))
        .expect("the denial is a task message");
    assert!(denial.contains(&format!("only port {port}")), "{denial}");

    // A node without a BMC address: nothing may be sent.
    let call = Call::default();
    let mut n = bmc_node(Some(port));
    n.oob.address = None;
    assert!(
        call.run(&rt, &d, Action::PowerOnNode, Some(&n))
            .await
            .is_err()
    );
    assert!(
        call.statuses()
            .iter()
            .any(|m| m.starts_with("egress denied: driver datagram")),
        "{:?}",
        call.statuses()
    );

    // Without a design port the grant is IPMI's 623, not the peer's port.
    let call = with_settings(&[("port", &port.to_string())]);
    assert!(
        call.run(&rt, &d, Action::PowerOnNode, Some(&bmc_node(None)))
            .await
            .is_err()
    );
    assert!(call.statuses().iter().any(|m| m.contains("only port 623")));
}

/// The per-call packet budget and size limit answer `limit` (reported once);
/// a BMC that never answers is a retryable timeout.
#[tokio::test]
async fn datagrams_are_bounded_by_the_packet_budget_size_and_deadline() {
    let rt = runtime_with(DriverLimits {
        datagrams_per_call: 2,
        datagram_bytes: 64,
        ..DriverLimits::default()
    });
    let d = load(&rt, guests::DATAGRAM).await;
    let port = udp_echo().await;

    let call = with_settings(&[("count", "5")]);
    let e = call
        .run(&rt, &d, Action::PowerOffNode, Some(&bmc_node(Some(port))))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("datagrams_per_call"), "{e}");
    let reports = call
        .statuses()
        .into_iter()
        .filter(|m| m.contains("reached its limit datagrams_per_call = 2"))
        .count();
    assert_eq!(reports, 1);

    let call = with_settings(&[("bytes", "65")]);
    let e = call
        .run(&rt, &d, Action::PowerCycleNode, Some(&bmc_node(Some(port))))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("datagram_bytes"), "{e}");

    // A silent BMC: a bound socket nobody answers on.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let call = Call::default();
    let e = call
        .run(
            &rt,
            &d,
            Action::PowerOnNode,
            Some(&bmc_node(Some(silent_port))),
        )
        .await
        .unwrap_err();
    let CallError::Driver { error, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(error.kind, DriverErrorKind::Timeout);
    drop(silent);
}
