//! The conformance kit (`drydock driver test`) against every bundled driver
//! and the Redfish-variant example, each against its real protocol peer:
//! sushy-tools' Redfish emulator (redfish, the example), fake-switches'
//! Arista eAPI (eos), the fake MAAS (maas), nothing (sim); and, read-only,
//! the Redfish drivers against DMTF's recorded BMC trees served by
//! `sushy-static`. Each test prints the report (the findings) and asserts
//! the kit passed with the device checks actually run.

use drydock::cli::conformance::report::{Report, Status};
use drydock::cli::conformance::{TestArgs, test};
use drydock_tests::fake_maas::{self, FakeMaas, NewMachine};
use drydock_tests::fake_switches::FakeSwitch;
use drydock_tests::mockups::SushyStatic;
use drydock_tests::sushy::{FakeSystem, Sushy, SushyConfig};
use std::path::PathBuf;
use std::time::Duration;

/// The kit's arguments for `file`, everything else at its default.
fn args(file: &str) -> TestArgs {
    TestArgs {
        file: PathBuf::from(file),
        endpoint: None,
        user: None,
        password: None,
        secret: Vec::new(),
        config: Vec::new(),
        node: None,
        site: None,
        port: "Ethernet1".into(),
        read_only: false,
        skip: Vec::new(),
        timeout: 120.0,
        slow_deadline: 4.0,
        json: false,
        output: None,
        secret_values: Vec::new(),
    }
}

/// Runs the kit, prints its report and checks it passed with `ran` checks
/// run (not skipped).
async fn passes(args: TestArgs, ran: &[&str]) -> Report {
    let report = test(&args).await.expect("the kit runs");
    print!("{}", report.text());
    assert!(report.passed, "{}", report.text());
    for name in ran {
        let check = report
            .checks
            .iter()
            .find(|c| c.name == *name)
            .unwrap_or_else(|| panic!("no check {name}"));
        assert_eq!(check.status, Status::Pass, "{name}: {}", check.detail);
    }
    report
}

/// Every check that needs a device.
const DEVICE_CHECKS: [&str; 6] = [
    "wrong-credentials-are-auth",
    "down-device-is-unreachable",
    "stalled-device-is-timeout",
    "busy-answers-are-retried",
    "no-secret-in-output",
    "no-undeclared-egress",
];

fn sushy() -> Sushy {
    Sushy::start(SushyConfig {
        systems: vec![FakeSystem::numbered(1, false)],
        basic_auth: Some(("admin".into(), "calvin-pw".into())),
        ..SushyConfig::default()
    })
}

fn bmc_args(file: &str, bmc: &Sushy) -> TestArgs {
    let mut a = args(file);
    a.endpoint = Some(format!("127.0.0.1:{}", bmc.port));
    a.user = Some("admin".into());
    a.password = Some("calvin-pw".into());
    a.config = vec![
        "scheme=http".into(),
        "poll_interval_ms=300".into(),
        "graceful=false".into(),
    ];
    a
}

#[tokio::test]
async fn the_sim_driver_keeps_the_contract() {
    let mut a = args("bundled:sim");
    a.password = Some("sim-secret-pw".into());
    a.user = Some("root".into());
    let report = passes(a, &["info", "actions-idempotent", "no-secret-in-output"]).await;
    assert_eq!(
        report.actions.len(),
        drydock::drivers::Action::ALL.len(),
        "every action of its four interfaces"
    );
    assert!(report.actions.iter().all(|r| r.same_state == Some(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redfish_driver_keeps_the_contract_against_sushy() {
    let bmc = sushy();
    let report = passes(
        bmc_args("bundled:redfish", &bmc),
        &[&["info", "actions-idempotent"][..], &DEVICE_CHECKS].concat(),
    )
    .await;
    assert_eq!(report.actions.len(), 7, "every oob action");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redfish_variant_example_keeps_the_contract_against_sushy() {
    let source = include_str!("../../examples/redfish-variant/src/lib.rs");
    assert!(
        source.lines().count() < 150,
        "the example stays under 150 lines"
    );
    let bmc = sushy();
    passes(
        bmc_args(env!("EXAMPLE_REDFISH_VARIANT"), &bmc),
        &[&["info", "actions-idempotent"][..], &DEVICE_CHECKS].concat(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eos_driver_keeps_the_contract_against_fake_switches() {
    let switch = FakeSwitch::start_with_auth("leaf1", &["Ethernet1"], "admin", "arista-pw");
    let mut a = args("bundled:eos");
    a.endpoint = Some(switch.grant());
    a.user = Some("admin".into());
    a.password = Some("arista-pw".into());
    a.config = vec!["scheme=http".into()];
    passes(
        a,
        &[&["info", "actions-idempotent"][..], &DEVICE_CHECKS].concat(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maas_driver_keeps_the_contract_against_the_fake_maas() {
    let maas = FakeMaas::start(Duration::from_millis(50)).await;
    let mac = "52:54:00:00:00:01";
    maas.enlist(NewMachine::new("enlisted-1", mac));
    let mut a = args("bundled:maas");
    a.endpoint = Some(maas.egress());
    a.config = vec![
        "url=http://{endpoint}/MAAS".into(),
        "poll_interval_ms=25".into(),
    ];
    a.secret_values = vec![("maas-api-key".into(), fake_maas::API_KEY.into())];
    a.node = Some(
        serde_json::json!({
            "name": "cmp01",
            "boot_mac": mac,
            "platform": {"image": "noble"},
            "interfaces": [{
                "name": "pxe", "device_link": "pxe-link", "slaves": ["eth0"],
                "networks": ["pxe"], "addresses": [{"network": "pxe"}], "mac": mac,
            }],
        })
        .to_string(),
    );
    a.site = Some(
        serde_json::json!({
            "links": [{"name": "pxe-link", "mtu": 1500, "native_network": "pxe",
                       "allowed_networks": ["pxe"]}],
            "networks": [{"name": "pxe", "cidr": "10.0.0.0/24", "mtu": 1500,
                          "ranges": [{"type": "dhcp", "start": "10.0.0.100", "end": "10.0.0.200"}]}],
        })
        .to_string(),
    );
    passes(
        a,
        &[&["info", "actions-idempotent"][..], &DEVICE_CHECKS].concat(),
    )
    .await;
}

/// The read path of both Redfish drivers against a recorded rack server,
/// read-only, without credentials (the recording needs none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_drivers_pass_read_only_against_a_recorded_rack_server() {
    let tree = SushyStatic::start("public-rackmount1");
    for file in ["bundled:redfish", env!("EXAMPLE_REDFISH_VARIANT")] {
        let mut a = args(file);
        a.endpoint = Some(tree.endpoint());
        a.read_only = true;
        a.config = vec!["scheme=http".into()];
        let report = passes(
            a,
            &[
                "actions-idempotent",
                "down-device-is-unreachable",
                "stalled-device-is-timeout",
                "busy-answers-are-retried",
            ],
        )
        .await;
        let ran: Vec<&str> = report.actions.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(ran, ["validate_oob_services", "interrogate_oob"]);
    }
}
