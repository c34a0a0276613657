//! The IPMI protocol library (`drydock-ipmi`) natively over UDP against
//! real RMCP+ servers: OpenIPMI's `ipmi_sim` and pyghmi's fake BMC. Every
//! assertion on state reads the peer's own view (ipmi_sim's chassis-control
//! files, pyghmi's state file), not the library's.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use drydock_ipmi::commands::{self, BootDevice, ChassisControl};
use drydock_ipmi::udp::UdpTransport;
use drydock_ipmi::{CipherSuite, Credentials, ErrorKind, Options, Session, SuitePreference};
use drydock_tests::ipmi_sim::{
    FruData, IpmiSim, PASSWORD, PyghmiBmc, SimConfig, USER, free_udp_port,
};

fn credentials(password: &str) -> Credentials {
    Credentials {
        username: USER.into(),
        password: password.into(),
    }
}

fn addr(port: u16) -> SocketAddr {
    (Ipv4Addr::LOCALHOST, port).into()
}

fn open_with(
    port: u16,
    password: &str,
    options: Options,
) -> Result<Session<UdpTransport>, drydock_ipmi::Error> {
    let transport = UdpTransport::connect(addr(port)).expect("UDP socket");
    Session::open(
        transport,
        &format!("127.0.0.1:{port}"),
        &credentials(password),
        options,
    )
}

fn open(port: u16) -> Session<UdpTransport> {
    open_with(port, PASSWORD, Options::default()).expect("open a session")
}

/// Options that give up fast on a silent peer.
fn impatient() -> Options {
    Options {
        timeout: Duration::from_millis(200),
        attempts: 2,
        ..Options::default()
    }
}

/// Polls the peer's view until `check` holds (a power cycle lands after
/// the command returns); panics after 10 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ipmi_sim_session_and_every_command() {
    let fru = FruData {
        manufacturer: "Drydock Labs".into(),
        product: "Test Server 9000".into(),
        serial: "SN-4711".into(),
    };
    let sim = IpmiSim::start(SimConfig {
        fru: Some(fru.clone()),
        ..SimConfig::default()
    });
    let mut s = open(sim.port);
    // ipmi_sim refuses suite 17: the automatic choice falls back to 3.
    assert_eq!(s.suite(), CipherSuite::Suite3);
    assert_eq!(s.privilege(), 4);

    let id = commands::device_id(&mut s).unwrap();
    // The values of the emu file's `mc_add`.
    assert_eq!((id.device_id, id.device_revision), (0, 3));
    assert_eq!(
        (id.firmware.as_str(), id.ipmi_version.as_str()),
        ("9.08", "2.0")
    );
    assert_eq!((id.manufacturer_id, id.product_id), (0x1291, 0x0F02));
    assert!(commands::system_guid(&mut s).unwrap().is_some());

    // Power: the chassis script's file follows every command.
    assert!(!commands::chassis_status(&mut s).unwrap().power_on);
    commands::chassis_control(&mut s, ChassisControl::PowerUp).unwrap();
    assert!(sim.power());
    assert!(commands::chassis_status(&mut s).unwrap().power_on);
    commands::chassis_control(&mut s, ChassisControl::PowerDown).unwrap();
    assert!(!sim.power());
    sim.set_power(true);
    assert!(
        commands::chassis_status(&mut s).unwrap().power_on,
        "reads the node's state"
    );
    commands::chassis_control(&mut s, ChassisControl::PowerCycle).unwrap();
    eventually("the cycle to reach off and on", || {
        let sets = sim.sets();
        let n = sets.len();
        n >= 2 && sets[n - 2] == "power 0" && sets[n - 1] == "power 1"
    });

    // Boot device: ipmi_sim hands PXE, BIOS setup and CD to its script.
    for (device, name) in [
        (BootDevice::Pxe, "pxe"),
        (BootDevice::BiosSetup, "bios"),
        (BootDevice::Cdrom, "cdrom"),
    ] {
        commands::set_boot_flags(&mut s, device, false, false).unwrap();
        assert_eq!(sim.boot(), name);
        assert_eq!(commands::boot_flags(&mut s).unwrap().device, device);
    }

    // FRU: what the emu file loaded, read back in chunks and parsed.
    let (inventory, bytes) = commands::fru_inventory(&mut s)
        .unwrap()
        .expect("FRU present");
    assert_eq!(bytes, fru.encode().len());
    assert_eq!(
        inventory.product_manufacturer.as_deref(),
        Some("Drydock Labs")
    );
    assert_eq!(inventory.product_name.as_deref(), Some("Test Server 9000"));
    assert_eq!(inventory.product_serial.as_deref(), Some("SN-4711"));
    assert_eq!(inventory.board_serial.as_deref(), Some("BOARD-1"));

    s.close().unwrap();
    let err = commands::chassis_status(&mut s).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Failed, "{err}");
}

#[test]
fn ipmi_sim_without_fru_has_no_inventory() {
    let sim = IpmiSim::start(SimConfig::default());
    let mut s = open(sim.port);
    assert_eq!(commands::fru_inventory(&mut s).unwrap(), None);
}

#[test]
fn sessions_are_closed_so_the_bmc_never_runs_out() {
    // ipmi_sim's session table is finite: sessions held open run out...
    let sim = IpmiSim::start(SimConfig::default());
    let mut held = Vec::new();
    let err = loop {
        match open_with(sim.port, PASSWORD, impatient()) {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
        assert!(held.len() < 100, "ipmi_sim has a session limit");
    };
    assert_eq!(err.kind, ErrorKind::Busy, "{err}");
    let limit = held.len();
    // ...and dropping a session closes it: all of them are free again.
    drop(held);
    // More sessions in a row than the table holds only work if each
    // Close Session frees its slot.
    for _ in 0..limit + 5 {
        let mut s = open(sim.port);
        commands::chassis_status(&mut s).unwrap();
        s.close().unwrap();
    }
}

#[test]
fn refused_credentials_are_auth_errors() {
    let sim = IpmiSim::start(SimConfig::default());
    let err = open_with(sim.port, "wrong", Options::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(
        !err.message.contains("wrong"),
        "no secret in messages: {err}"
    );
    // An unknown user: ipmi_sim answers RAKP 2 with "unauthorized name".
    let transport = UdpTransport::connect(addr(sim.port)).unwrap();
    let nobody = Credentials {
        username: "nobody".into(),
        password: PASSWORD.into(),
    };
    let err = Session::open(transport, "sim", &nobody, Options::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("unauthorized name"), "{err}");
    // Too long for IPMI 2.0: refused before any datagram.
    let long = Credentials {
        username: USER.into(),
        password: "x".repeat(21),
    };
    let transport = UdpTransport::connect(addr(sim.port)).unwrap();
    let err = Session::open(transport, "sim", &long, Options::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
}

#[test]
fn suite_17_only_is_unsupported_by_ipmi_sim() {
    let sim = IpmiSim::start(SimConfig::default());
    let options = Options {
        suites: SuitePreference::Only(CipherSuite::Suite17),
        ..Options::default()
    };
    let err = open_with(sim.port, PASSWORD, options).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
    assert!(
        err.message.contains("invalid authentication algorithm"),
        "{err}"
    );
}

#[test]
fn no_answer_is_unreachable() {
    // Nothing bound: the kernel refuses (ICMP port unreachable) at once.
    let port = free_udp_port();
    let started = Instant::now();
    let err = open_with(port, PASSWORD, Options::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refusal is immediate"
    );

    // Bound but silent: every attempt times out.
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let err = open_with(port, PASSWORD, impatient()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
    assert!(err.message.contains("does not answer"), "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "two attempts of 200 ms"
    );
    // Both attempts reached the socket.
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let mut seen = 0;
    while silent.recv(&mut buf).is_ok() {
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn pyghmi_power_and_boot() {
    let bmc = PyghmiBmc::start(0);
    let mut s = open(bmc.port);
    // pyghmi answers every proposal with suite 3's algorithms.
    assert_eq!(s.suite(), CipherSuite::Suite3);
    assert_eq!(bmc.state()["power"], "off");
    commands::chassis_control(&mut s, ChassisControl::PowerUp).unwrap();
    assert_eq!(bmc.state()["power"], "on");
    assert!(commands::chassis_status(&mut s).unwrap().power_on);
    commands::chassis_control(&mut s, ChassisControl::PowerDown).unwrap();
    assert_eq!(bmc.state()["power"], "off");
    for (device, name) in [
        (BootDevice::Pxe, "network"),
        (BootDevice::Disk, "hd"),
        (BootDevice::BiosSetup, "setup"),
    ] {
        commands::set_boot_flags(&mut s, device, true, false).unwrap();
        assert_eq!(bmc.state()["boot"], name);
        let flags = commands::boot_flags(&mut s).unwrap();
        assert_eq!((flags.valid, flags.device), (true, device));
    }
    // pyghmi has no FRU.
    assert_eq!(commands::fru_inventory(&mut s).unwrap(), None);
    let err = open_with(bmc.port, "wrong", Options::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
}

#[test]
fn busy_completion_codes_are_retried_then_reported_busy() {
    // Two busy answers, then a real one: retried with 50 + 100 ms backoff.
    let bmc = PyghmiBmc::start(2);
    let options = Options {
        busy_backoff: Duration::from_millis(50),
        ..Options::default()
    };
    let mut s = open_with(bmc.port, PASSWORD, options.clone()).unwrap();
    let before = s.datagrams_sent();
    assert!(!commands::chassis_status(&mut s).unwrap().power_on);
    assert_eq!(s.datagrams_sent() - before, 3);

    // More busy answers than retries: `Busy`, which Drydock retries later.
    let bmc = PyghmiBmc::start(10);
    let mut s = open_with(bmc.port, PASSWORD, options).unwrap();
    let err = commands::chassis_status(&mut s).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Busy, "{err}");
    assert!(err.message.contains("node busy"), "{err}");
}
