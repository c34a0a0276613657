//! Per-action latency of the bundled IPMI driver against OpenIPMI's
//! `ipmi_sim`, through the host (wasm component, the host's datagram
//! capability, one RMCP+ session per call), beside a baseline from the same
//! run: the same IPMI exchanges made natively by the `drydock-ipmi` library
//! over a std UDP socket. The difference is what the sandbox and the host
//! add per action; the power cycle includes ipmi_sim's own ~1 s off time.
//!
//! `cargo bench -p drydock-tests --bench ipmi` (add `--profile dev` to reuse
//! a test build; the driver component is a release build either way).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock::drivers::{Action, DriverConfig};
use drydock::model::{BootDevice, BootTarget};
use drydock_ipmi::commands::{self, BootDevice as IpmiBoot, ChassisControl};
use drydock_ipmi::udp::UdpTransport;
use drydock_ipmi::{Credentials, Options, Session};
use drydock_tests::Call;
use drydock_tests::ipmi_sim::{FruData, IpmiSim, PASSWORD, SimConfig, USER, ipmi_node};

/// Runs of each action (the power cycle: a few, it waits for ipmi_sim).
const RUNS: usize = 30;
const CYCLE_RUNS: usize = 3;

fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.9))
}

/// The native baseline: one session doing what the driver's action does.
struct Native {
    peer: SocketAddr,
}

impl Native {
    fn session(&self) -> Session<UdpTransport> {
        let t = UdpTransport::connect(self.peer).expect("UDP");
        let c = Credentials {
            username: USER.into(),
            password: PASSWORD.into(),
        };
        Session::open(t, "ipmi_sim", &c, Options::default()).expect("session")
    }

    fn wait_power(s: &mut Session<UdpTransport>, on: bool) {
        while commands::chassis_status(s).unwrap().power_on != on {
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn run(&self, action: Action) {
        let mut s = self.session();
        match action {
            Action::ValidateOobServices => {}
            Action::InterrogateOob => {
                commands::device_id(&mut s).unwrap();
                commands::system_guid(&mut s).unwrap();
                commands::chassis_status(&mut s).unwrap();
                commands::boot_flags(&mut s).unwrap();
                commands::fru_inventory(&mut s).unwrap();
            }
            Action::ConfigNodePxe => {
                let efi = commands::boot_flags(&mut s).unwrap().efi;
                commands::set_boot_flags(&mut s, IpmiBoot::Pxe, false, efi).unwrap();
            }
            Action::PowerOnNode | Action::PowerOffNode => {
                let on = action == Action::PowerOnNode;
                if commands::chassis_status(&mut s).unwrap().power_on != on {
                    let c = if on {
                        ChassisControl::PowerUp
                    } else {
                        ChassisControl::PowerDown
                    };
                    commands::chassis_control(&mut s, c).unwrap();
                    Self::wait_power(&mut s, on);
                }
            }
            Action::PowerCycleNode => {
                commands::chassis_status(&mut s).unwrap();
                commands::chassis_control(&mut s, ChassisControl::PowerCycle).unwrap();
                Self::wait_power(&mut s, true);
            }
            other => unreachable!("{other}"),
        }
        s.close().unwrap();
    }
}

#[tokio::main]
async fn main() {
    let sim = IpmiSim::start(SimConfig {
        fru: Some(FruData {
            manufacturer: "Drydock Labs".into(),
            product: "Bench Server".into(),
            serial: "SN-1".into(),
        }),
        ..SimConfig::default()
    });
    let rt = drydock_tests::runtime();
    let d = rt
        .load("ipmi", drydock::bundled::IPMI)
        .await
        .expect("load the ipmi driver");
    let node = ipmi_node("bench", sim.port);
    let mut call = Call {
        config: Arc::new(DriverConfig {
            settings: [("poll_interval_ms".to_string(), "250".to_string())].into(),
            ..DriverConfig::default()
        }),
        timeout: Some(Duration::from_secs(60)),
        ..Call::default()
    };
    call.params.boot = Some(BootTarget {
        device: BootDevice::Pxe,
        persistent: false,
    });
    let native = Arc::new(Native {
        peer: (Ipv4Addr::LOCALHOST, sim.port).into(),
    });

    println!(
        "IPMI per-action latency against ipmi_sim, {} component bytes",
        drydock::bundled::IPMI.len()
    );
    println!(
        "{:<36} {:>11} {:>11} {:>13} {:>13}",
        "action", "host p50 ms", "host p90 ms", "native p50 ms", "native p90 ms"
    );
    // (label, action, state to put the node in before each run)
    let cases: [(&str, Action, Option<bool>, usize); 7] = [
        (
            "validate_oob_services",
            Action::ValidateOobServices,
            None,
            RUNS,
        ),
        (
            "interrogate_oob (with FRU)",
            Action::InterrogateOob,
            None,
            RUNS,
        ),
        ("config_node_pxe", Action::ConfigNodePxe, None, RUNS),
        (
            "power_on_node (already on)",
            Action::PowerOnNode,
            Some(true),
            RUNS,
        ),
        (
            "power_off_node (on -> off)",
            Action::PowerOffNode,
            Some(true),
            RUNS,
        ),
        (
            "power_on_node (off -> on)",
            Action::PowerOnNode,
            Some(false),
            RUNS,
        ),
        (
            "power_cycle_node (sim ~1 s off)",
            Action::PowerCycleNode,
            Some(true),
            CYCLE_RUNS,
        ),
    ];
    for (label, action, before, runs) in cases {
        let mut host = Vec::new();
        let mut base = Vec::new();
        for _ in 0..runs {
            if let Some(on) = before {
                sim.set_power(on);
            }
            let t = Instant::now();
            call.run(&rt, &d, action, Some(&node))
                .await
                .unwrap_or_else(|e| panic!("{action}: {e}"));
            host.push(t.elapsed().as_secs_f64() * 1e3);

            if let Some(on) = before {
                sim.set_power(on);
            }
            let n = native.clone();
            let t = Instant::now();
            tokio::task::spawn_blocking(move || n.run(action))
                .await
                .unwrap();
            base.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (h50, h90) = stats(host);
        let (n50, n90) = stats(base);
        println!("{label:<36} {h50:>11.2} {h90:>11.2} {n50:>13.2} {n90:>13.2}");
    }
}
