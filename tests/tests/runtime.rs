//! The driver runtime end to end: the bundled sim driver through every action,
//! hostile guests contained, bad components refused, real HTTP egress.

use drydock::drivers::{
    Action, CallError, DriverConfig, DriverErrorKind, EgressGrant, Interface, LoadError,
};
use drydock::model::{ActionParams, BootDevice, BootTarget, PortMode, PortVlans, SiteNetworks};
use drydock_tests::{Call, HttpPeer, guests, load, node, runtime};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn sim(rt: &drydock::drivers::Runtime) -> drydock::drivers::Driver {
    rt.load("sim", drydock::bundled::SIM)
        .await
        .expect("load sim")
}

fn config(settings: &[(&str, &str)], egress: &[&str]) -> Arc<DriverConfig> {
    Arc::new(DriverConfig {
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        egress: egress
            .iter()
            .map(|g| g.parse::<EgressGrant>().unwrap())
            .collect(),
        ..DriverConfig::default()
    })
}

#[tokio::test]
async fn sim_info_claims_all_three_interfaces() {
    let rt = runtime();
    let d = sim(&rt).await;
    let info = d.info();
    assert_eq!(info.name, "sim");
    assert_eq!(info.oob_types, vec!["sim".to_string()]);
    for iface in [Interface::Oob, Interface::Node, Interface::Network] {
        assert!(info.interfaces.contains(&iface), "{iface} missing");
        assert!(d.exports(iface));
    }
    assert!(d.worlds().contains(&"full-driver"));
}

#[tokio::test]
async fn sim_power_and_boot_state_persist_across_calls() {
    let rt = runtime();
    let d = sim(&rt).await;
    let call = Call::default();
    let n = node("n1", "sim");

    call.run(&rt, &d, Action::PowerOffNode, Some(&n))
        .await
        .unwrap();
    let facts = call
        .run(&rt, &d, Action::InterrogateOob, Some(&n))
        .await
        .unwrap();
    assert_eq!(facts["power_state"], "off");

    call.run(&rt, &d, Action::PowerOnNode, Some(&n))
        .await
        .unwrap();
    let facts = call
        .run(&rt, &d, Action::InterrogateOob, Some(&n))
        .await
        .unwrap();
    assert_eq!(facts["power_state"], "on");

    let mut boot = Call {
        services: call.services.clone(),
        ..Call::default()
    };
    boot.params.boot = Some(BootTarget {
        device: BootDevice::Disk,
        persistent: true,
    });
    boot.run(&rt, &d, Action::SetNodeBoot, Some(&n))
        .await
        .unwrap();
    let facts = call
        .run(&rt, &d, Action::InterrogateOob, Some(&n))
        .await
        .unwrap();
    assert_eq!(
        facts["boot_override"],
        json!({"device": "disk", "persistent": true})
    );

    call.run(&rt, &d, Action::ConfigNodePxe, Some(&n))
        .await
        .unwrap();
    let facts = call
        .run(&rt, &d, Action::InterrogateOob, Some(&n))
        .await
        .unwrap();
    assert_eq!(facts["boot_override"]["device"], "pxe");

    call.run(&rt, &d, Action::PowerOffNode, Some(&n))
        .await
        .unwrap();
    call.run(&rt, &d, Action::PowerCycleNode, Some(&n))
        .await
        .unwrap();
    let facts = call
        .run(&rt, &d, Action::InterrogateOob, Some(&n))
        .await
        .unwrap();
    assert_eq!(facts["power_state"], "on");
    assert_eq!(facts["macs"], json!(["52:54:00:00:00:01"]));

    // Another node's state is its own.
    let other = node("n2", "sim");
    call.run(&rt, &d, Action::PowerOffNode, Some(&other))
        .await
        .unwrap();
    let facts = call
        .run(&rt, &d, Action::InterrogateOob, Some(&n))
        .await
        .unwrap();
    assert_eq!(facts["power_state"], "on");

    // interrogate_oob stores build data for the node.
    assert!(
        call.services
            .build_data()
            .iter()
            .any(|b| b.scope.node.as_deref() == Some("n1"))
    );
}

#[tokio::test]
async fn sim_runs_every_action_of_every_interface() {
    let rt = runtime();
    let d = sim(&rt).await;
    let call = Call {
        params: ActionParams {
            site: Some(SiteNetworks::default()),
            ssh_keys: vec!["ssh-ed25519 AAAA test".into()],
            image: Some("jammy".into()),
            vlans: Some(PortVlans {
                mode: PortMode::Access,
                access_vlan: Some(100),
                ..PortVlans::default()
            }),
            switch: Some(drydock::model::Switch {
                name: "leaf1".into(),
                address: "192.0.2.1".into(),
                ..Default::default()
            }),
            switch_port: Some(drydock::model::SwitchPort {
                switch: drydock::model::Switch {
                    name: "leaf1".into(),
                    address: "192.0.2.1".into(),
                    ..Default::default()
                },
                port: "Ethernet1".into(),
                ..Default::default()
            }),
            ..ActionParams::default()
        },
        ..Call::default()
    };
    let n = node("n1", "sim");
    for action in Action::ALL {
        let result = call.run(&rt, &d, *action, Some(&n)).await;
        assert!(result.is_ok(), "{action}: {result:?}");
    }
    // The node went through the provisioning state machine.
    let identity = call
        .run(&rt, &d, Action::InterrogateNode, Some(&n))
        .await
        .unwrap();
    assert!(identity.is_object());
    let images = call
        .run(&rt, &d, Action::AvailableImages, None)
        .await
        .unwrap();
    assert!(images.as_array().unwrap().contains(&json!("jammy")));
    let kernels = call
        .run(&rt, &d, Action::AvailableKernels, None)
        .await
        .unwrap();
    assert!(!kernels.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn sim_port_configuration_round_trips() {
    let rt = runtime();
    let d = sim(&rt).await;
    let mut call = Call::default();
    let port = drydock::model::SwitchPort {
        switch: drydock::model::Switch {
            name: "leaf1".into(),
            address: "192.0.2.1".into(),
            ..Default::default()
        },
        port: "Ethernet7".into(),
        ..Default::default()
    };
    call.params.switch_port = Some(port);
    call.params.vlans = Some(PortVlans {
        mode: PortMode::Trunk,
        native_vlan: Some(10),
        allowed_vlans: vec![10, 20, 30],
        ..PortVlans::default()
    });
    let n = node("n1", "sim");
    call.run(&rt, &d, Action::ConfigPortProduction, Some(&n))
        .await
        .unwrap();
    let port = call
        .run(&rt, &d, Action::InterrogatePort, Some(&n))
        .await
        .unwrap();
    assert_eq!(port["mode"], "trunk");
    assert_eq!(port["native_vlan"], 10);
    assert_eq!(port["allowed_vlans"], json!([10, 20, 30]));
}

#[tokio::test]
async fn sim_failures_are_deterministic_and_typed() {
    let rt = runtime();
    let d = sim(&rt).await;
    let call = Call {
        config: config(
            &[("fail_nodes", "bad-1,bad-2"), ("fail_kind", "retryable")],
            &[],
        ),
        ..Call::default()
    };
    let err = call
        .run(&rt, &d, Action::PowerOnNode, Some(&node("bad-2", "sim")))
        .await
        .unwrap_err();
    match &err {
        CallError::Driver { error, .. } => {
            assert_eq!(error.kind, DriverErrorKind::Busy);
            assert!(error.message.contains("bad-2"), "{}", error.message);
        }
        other => panic!("expected a driver error, got {other:?}"),
    }
    assert!(err.is_retryable());
    call.run(&rt, &d, Action::PowerOnNode, Some(&node("good", "sim")))
        .await
        .unwrap();

    // fail_rate with a seed: the same nodes fail every time.
    let rate = Call {
        config: config(&[("fail_rate", "0.5"), ("seed", "7")], &[]),
        ..Call::default()
    };
    let mut first = Vec::new();
    for i in 0..40 {
        let n = node(&format!("n{i}"), "sim");
        first.push(
            rate.run(&rt, &d, Action::PowerOffNode, Some(&n))
                .await
                .is_err(),
        );
    }
    let failed = first.iter().filter(|f| **f).count();
    assert!(
        (8..=32).contains(&failed),
        "{failed} of 40 failed at rate 0.5"
    );
    for (i, was) in first.iter().enumerate() {
        let n = node(&format!("n{i}"), "sim");
        let now = rate
            .run(&rt, &d, Action::PowerOffNode, Some(&n))
            .await
            .is_err();
        assert_eq!(now, *was, "node n{i} changed outcome");
    }

    let bad = Call {
        config: config(&[("fail_rate", "lots")], &[]),
        ..Call::default()
    };
    let err = bad
        .run(&rt, &d, Action::PowerOnNode, Some(&node("n", "sim")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("fail_rate"), "{err}");
}

#[tokio::test]
async fn sim_delay_longer_than_the_deadline_times_out() {
    let rt = runtime();
    let d = sim(&rt).await;
    let call = Call {
        config: config(&[("delay_ms", "5000")], &[]),
        timeout: Some(Duration::from_millis(300)),
        ..Call::default()
    };
    let err = call
        .run(&rt, &d, Action::PowerCycleNode, Some(&node("n", "sim")))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    match err {
        CallError::Driver { error, .. } => assert_eq!(error.kind, DriverErrorKind::Timeout),
        CallError::Deadline { .. } => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn infinite_loop_is_stopped_at_the_deadline_and_the_host_keeps_serving() {
    let rt = runtime();
    let looping = load(&rt, guests::LOOP).await;
    let call = Call {
        timeout: Some(Duration::from_millis(500)),
        ..Call::default()
    };
    let started = Instant::now();
    let err = call
        .run(&rt, &looping, Action::PowerOnNode, Some(&node("n", "x")))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Deadline { .. }), "{err:?}");
    assert!(err.to_string().contains("deadline"), "{err}");
    // It was stopped, not left running: the call returned.
    assert!(started.elapsed() < Duration::from_secs(20));
    // The host still serves other drivers, and the same one again.
    let d = sim(&rt).await;
    Call::default()
        .run(&rt, &d, Action::PowerOnNode, Some(&node("n", "sim")))
        .await
        .unwrap();
    let again = call
        .run(&rt, &looping, Action::PowerOnNode, Some(&node("n", "x")))
        .await
        .unwrap_err();
    assert!(matches!(again, CallError::Deadline { .. }));
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let rt = runtime();
    let bomb = load(&rt, guests::MEMBOMB).await;
    let call = Call::default();
    let err = call
        .run(&rt, &bomb, Action::PowerOnNode, Some(&node("n", "x")))
        .await
        .unwrap_err();
    match &err {
        CallError::MemoryLimit {
            limit, requested, ..
        } => {
            assert_eq!(*limit, 64 << 20);
            assert!(*requested > *limit);
        }
        other => panic!("expected a memory-limit error, got {other:?}"),
    }
    assert!(err.to_string().contains("memory limit"), "{err}");
}

#[tokio::test]
async fn trap_becomes_a_driver_crash_carrying_the_panic() {
    let rt = runtime();
    let trap = load(&rt, guests::TRAP).await;
    let err = Call::default()
        .run(&rt, &trap, Action::PowerOnNode, Some(&node("n", "x")))
        .await
        .unwrap_err();
    match &err {
        CallError::Trap { trap, .. } => {
            assert!(trap.contains("guest-trap deliberate panic"), "{trap}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(!err.is_retryable());
}

async fn http_call(
    url: &str,
    egress: &[&str],
    action: Action,
) -> (Result<serde_json::Value, CallError>, Call) {
    let rt = runtime();
    let probe = load(&rt, guests::HTTP).await;
    let call = Call {
        config: config(&[("url", url)], egress),
        ..Call::default()
    };
    let r = call
        .run(&rt, &probe, action, Some(&node("n", "http-probe")))
        .await;
    (r, call)
}

fn assert_denied(r: &Result<serde_json::Value, CallError>, call: &Call) {
    match r {
        Err(CallError::Driver { error, .. }) => {
            assert!(error.message.contains("denied"), "{}", error.message)
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    let msgs = call.services.messages();
    assert!(
        msgs.iter()
            .any(|m| m.is_error && m.message.contains("egress denied")),
        "no denial status message in {msgs:?}"
    );
}

#[tokio::test]
async fn sdk_driver_makes_a_real_http_call_to_a_granted_server() {
    let peer = HttpPeer::start().await;
    let url = format!("http://127.0.0.1:{}/probe", peer.port);
    let grant = format!("127.0.0.1:{}", peer.port);
    let (r, _) = http_call(&url, &[&grant], Action::InterrogateOob).await;
    let v = r.expect("granted call");
    assert_eq!(v["raw"]["status"], 200);
    assert_eq!(v["raw"]["body"], "{\"ok\":true}");
    let (r, _) = http_call(&url, &[&grant], Action::PowerOnNode).await;
    r.expect("granted POST");
    let got = peer.requests();
    assert_eq!(got.len(), 2);
    assert!(
        got[0].request_line.starts_with("GET /probe"),
        "{:?}",
        got[0]
    );
    assert!(
        got[1].request_line.starts_with("POST /probe"),
        "{:?}",
        got[1]
    );
    assert_eq!(got[1].body, "{\"node\":\"n\"}");
}

#[tokio::test]
async fn a_granted_secret_reaches_the_driver_call_and_nothing_else() {
    let peer = HttpPeer::start().await;
    let url = format!("http://127.0.0.1:{}/probe", peer.port);
    let grant = format!("127.0.0.1:{}", peer.port);
    let rt = runtime();
    let probe = load(&rt, guests::HTTP).await;
    let settings = [("url", url.as_str()), ("token_secret", "api-token")];
    let mut granted = (*config(&settings, &[&grant])).clone();
    granted.secrets.insert("api-token", "s3cr3t-value");
    assert!(
        !format!("{granted:?}").contains("s3cr3t-value"),
        "Debug leaks the secret"
    );
    let call = Call {
        config: Arc::new(granted),
        ..Call::default()
    };
    let n = node("n", "http-probe");
    call.run(&rt, &probe, Action::PowerOffNode, Some(&n))
        .await
        .expect("call with a granted secret");
    let got = peer.requests();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization: Bearer s3cr3t-value")),
        "{:?}",
        got[0].headers
    );

    // Not granted: the driver sees nothing.
    let call = Call {
        config: config(&settings, &[&grant]),
        ..Call::default()
    };
    match call.run(&rt, &probe, Action::PowerOffNode, Some(&n)).await {
        Err(CallError::Driver { error, .. }) => {
            assert!(error.message.contains("not granted"), "{}", error.message)
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert_eq!(peer.requests().len(), 1, "no request without the secret");
}

#[tokio::test]
async fn http_to_a_host_not_granted_is_denied() {
    let peer = HttpPeer::start().await;
    let url = format!("http://127.0.0.1:{}/probe", peer.port);
    // Granted a different port only.
    let (r, call) = http_call(&url, &["127.0.0.1:1"], Action::InterrogateOob).await;
    assert_denied(&r, &call);
    assert!(peer.requests().is_empty(), "the request reached the server");
}

#[tokio::test]
async fn http_to_the_metadata_address_is_denied() {
    let (r, call) = http_call(
        "http://169.254.169.254/latest/meta-data/",
        &["*.example.com"],
        Action::InterrogateOob,
    )
    .await;
    assert_denied(&r, &call);
}

#[tokio::test]
async fn granted_name_resolving_to_loopback_is_denied() {
    let peer = HttpPeer::start().await;
    let url = format!("http://localhost:{}/probe", peer.port);
    let (r, call) = http_call(&url, &["localhost"], Action::InterrogateOob).await;
    assert_denied(&r, &call);
    assert!(
        call.services
            .messages()
            .iter()
            .any(|m| m.message.contains("loopback")),
        "{:?}",
        call.services.messages()
    );
    assert!(peer.requests().is_empty());
}

#[tokio::test]
async fn oob_calls_may_reach_the_nodes_own_bmc_only() {
    let peer = HttpPeer::start().await;
    let rt = runtime();
    let probe = load(&rt, guests::BMC_PROBE).await;
    assert!(probe.info().outbound.node_bmc);
    let mut n = node("n", "bmc-probe");
    n.oob.address = Some("127.0.0.1".into());
    n.oob.port = Some(peer.port);
    // No driver grant at all: the node's BMC is reachable on an oob call...
    let call = Call {
        config: config(
            &[("url", &format!("http://127.0.0.1:{}/redfish/v1", peer.port))],
            &[],
        ),
        ..Call::default()
    };
    call.run(&rt, &probe, Action::InterrogateOob, Some(&n))
        .await
        .unwrap();
    // ...but not another port on the same machine.
    let other = Call {
        config: config(
            &[("url", &format!("http://127.0.0.1:{}/", peer.port + 1))],
            &[],
        ),
        ..Call::default()
    };
    let r = other
        .run(&rt, &probe, Action::InterrogateOob, Some(&n))
        .await;
    assert_denied(&r, &other);
    assert_eq!(peer.requests().len(), 1);
}

#[tokio::test]
async fn a_driver_declaring_no_node_bmc_access_gets_no_bmc_grant() {
    let peer = HttpPeer::start().await;
    let rt = runtime();
    let probe = load(&rt, guests::HTTP).await;
    assert!(!probe.info().outbound.node_bmc);
    let mut n = node("n", "http-probe");
    n.oob.address = Some("127.0.0.1".into());
    n.oob.port = Some(peer.port);
    // The same call that reaches the BMC for `bmc-probe` (above) is denied.
    let call = Call {
        config: config(
            &[("url", &format!("http://127.0.0.1:{}/redfish/v1", peer.port))],
            &[],
        ),
        ..Call::default()
    };
    let r = call
        .run(&rt, &probe, Action::InterrogateOob, Some(&n))
        .await;
    assert_denied(&r, &call);
    assert!(peer.requests().is_empty(), "the request reached the BMC");
}

#[tokio::test]
async fn single_interface_component_loads_and_answers() {
    let rt = runtime();
    let d = load(&rt, guests::OOB_ONLY).await;
    assert_eq!(d.info().interfaces, vec![Interface::Oob]);
    assert!(d.exports(Interface::Oob) && !d.exports(Interface::Node));
    assert_eq!(d.worlds(), vec!["oob-driver"]);
    let call = Call::default();
    call.run(&rt, &d, Action::PowerOnNode, Some(&node("n", "oob-only")))
        .await
        .unwrap();
    let err = call
        .run(&rt, &d, Action::DeployNode, Some(&node("n", "oob-only")))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Unsupported { .. }), "{err:?}");
}

#[tokio::test]
async fn bad_components_are_refused_with_clear_errors() {
    let rt = runtime();
    // A core module.
    let core = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    let e = rt.load("core.wasm", &core).await.unwrap_err();
    assert!(matches!(e, LoadError::CoreModule(_)), "{e}");
    assert!(e.to_string().contains("not a component"), "{e}");
    // Garbage.
    let e = rt
        .load("junk.wasm", b"this is not wasm at all")
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::NotWasm(_)), "{e}");
    // A truncated component.
    let sim = drydock::bundled::SIM;
    let e = rt
        .load("cut.wasm", &sim[..sim.len() / 2])
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::Compile { .. }), "{e}");
    // A component of another world.
    let e = rt
        .load_file(std::path::Path::new(guests::OTHER_WORLD))
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::NotADriver { .. }), "{e}");
    assert!(e.to_string().contains("drydock:driver/metadata"), "{e}");
    assert!(e.to_string().contains("0.1.0, 0.2.0"), "{e}");
    // A driver built against another WIT version.
    let e = rt
        .load_file(std::path::Path::new(guests::OLD_VERSION))
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::WrongVersion { .. }), "{e}");
    assert!(e.to_string().contains("0.0.1"), "{e}");
}

#[tokio::test]
async fn node_actions_need_a_node_and_params_are_checked() {
    let rt = runtime();
    let d = sim(&rt).await;
    let err = Call::default()
        .run(&rt, &d, Action::PowerOnNode, None)
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidRequest { .. }), "{err:?}");
    let err = Call::default()
        .run(&rt, &d, Action::CreateNetworkTemplate, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("params.site"), "{err}");
}

#[tokio::test]
async fn compile_cache_hits_on_second_load() {
    let dir = tempdir();
    let cache = drydock::drivers::CompileCache::open_path(&dir).unwrap();
    let rt = drydock::drivers::Runtime::new(Default::default(), Some(cache)).unwrap();
    let (_, sha, cached) = rt.compile("sim", drydock::bundled::SIM).await.unwrap();
    assert!(!cached);
    let (_, sha2, cached) = rt.compile("sim", drydock::bundled::SIM).await.unwrap();
    assert!(cached);
    assert_eq!(sha, sha2);
    // A corrupt cache entry is discarded, not trusted.
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(entry.unwrap().path(), b"corrupt").unwrap();
    }
    let (_, _, cached) = rt.compile("sim", drydock::bundled::SIM).await.unwrap();
    assert!(!cached);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "drydock-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}
