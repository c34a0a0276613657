//! IPMI test peers, both real RMCP+ servers, one process per test on a
//! free loopback UDP port, killed on drop:
//!
//! - [`IpmiSim`]: OpenIPMI's `ipmi_sim` (Debian `openipmi`) with a lanserv
//!   configuration holding one user, a chassis-control script that keeps
//!   the power and boot device in files (the peer's own view, read by
//!   [`IpmiSim::power`] and [`IpmiSim::boot`]), and optional FRU data.
//! - [`PyghmiBmc`]: pyghmi's fake BMC (`tests/peers/ipmi/pyghmi_bmc.py`),
//!   bound to 127.0.0.1, its state in a JSON file, optionally answering the
//!   first Get Chassis Status requests "node busy".
//!
//! Both are installed by `tests/peers/ipmi/setup.sh` on first use.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use drydock::model::{Credentials, Node, Oob};

/// How long a peer may take to answer its first datagram.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The user both peers accept.
pub const USER: &str = "admin";
/// Its password.
pub const PASSWORD: &str = "password";
/// The GUID `ipmi_sim` reports (its lan.conf `guid`).
pub const SIM_GUID: &str = "a123456789abcdefa123456789abcdef";

/// The repository root.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
}

/// Runs `tests/peers/ipmi/setup.sh` once per test process.
fn install() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let script = repo().join("tests/peers/ipmi/setup.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        repo().join("target/peers/ipmi/venv")
    })
}

/// A fresh scratch directory.
fn scratch(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "drydock-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Prints a peer's log and whether it is still running to stderr: called
/// when a test panics with the peer up, so the failure shows the peer's side.
fn show_log(what: &str, log: &Path, child: &mut Child) {
    let status = match child.try_wait() {
        Ok(Some(status)) => format!("exited: {status}"),
        Ok(None) => "still running".to_string(),
        Err(e) => format!("status unknown: {e}"),
    };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    eprintln!("--- {what} ({status}), its log:\n{text}--- end of {what}'s log");
}

/// A UDP port nothing is bound to right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .expect("bind an ephemeral UDP port")
        .port()
}

/// Sends Get Channel Authentication Capabilities (the first datagram of
/// every lanplus client) until an answer comes back: the peer is serving.
/// False if `child` exits or the start deadline passes.
fn wait_serving(child: &mut Child, address: Ipv4Addr, port: u16) -> bool {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    socket.connect((address, port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let message = drydock_ipmi::packet::encode_request(0x06, 0x38, 0, &[0x8E, 0x04]);
    let probe = drydock_ipmi::packet::encode_v15(&message);
    let deadline = Instant::now() + START_TIMEOUT;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        // A refused send (nothing bound yet) shows up as an error on recv.
        let _ = socket.send(&probe);
        if socket.recv(&mut buf).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A node whose BMC is 127.0.0.1:`port`, oob type `ipmi`, with the peers'
/// credentials.
pub fn ipmi_node(name: &str, port: u16) -> Node {
    Node {
        name: name.into(),
        oob: Oob {
            oob_type: "ipmi".into(),
            address: Some("127.0.0.1".into()),
            port: Some(port),
            credentials: Some(Credentials {
                username: USER.into(),
                password: PASSWORD.into(),
            }),
            ..Oob::default()
        },
        ..Node::default()
    }
}

/// The board and product strings of the FRU data given to `ipmi_sim`.
#[derive(Clone, Debug)]
pub struct FruData {
    /// Manufacturer (board and product).
    pub manufacturer: String,
    /// Product name.
    pub product: String,
    /// Product serial number.
    pub serial: String,
}

impl FruData {
    /// The FRU inventory bytes (common header, board and product info
    /// areas), written from the FRU specification independently of the
    /// driver's parser.
    pub fn encode(&self) -> Vec<u8> {
        fn sum_to_zero(bytes: &[u8]) -> u8 {
            bytes
                .iter()
                .fold(0u8, |a, b| a.wrapping_add(*b))
                .wrapping_neg()
        }
        fn area(fixed: &[u8], fields: &[&str]) -> Vec<u8> {
            let mut a = fixed.to_vec();
            for f in fields {
                a.push(0xC0 | f.len() as u8);
                a.extend_from_slice(f.as_bytes());
            }
            a.push(0xC1);
            while !(a.len() + 1).is_multiple_of(8) {
                a.push(0);
            }
            a[1] = ((a.len() + 1) / 8) as u8;
            let sum = sum_to_zero(&a);
            a.push(sum);
            a
        }
        let m = self.manufacturer.as_str();
        // Board: version, length, language, 3-byte manufacturing date.
        let board = area(
            &[1, 0, 0, 0, 0, 0],
            &[m, "drydock board", "BOARD-1", "PN-1", ""],
        );
        // Product: version, length, language.
        let product = area(
            &[1, 0, 0],
            &[m, &self.product, "MODEL-1", "1.0", &self.serial, "", ""],
        );
        let mut header = vec![1, 0, 0, 1, 1 + (board.len() / 8) as u8, 0, 0];
        header.push(sum_to_zero(&header));
        [header, board, product].concat()
    }
}

/// What to start `ipmi_sim` with.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    /// FRU data for FRU device 0, if any.
    pub fru: Option<FruData>,
    /// Powered on at start.
    pub power_on: bool,
    /// Loopback address to listen on (default 127.0.0.1): distinct BMC
    /// addresses of a site design.
    pub address: Option<Ipv4Addr>,
    /// UDP port (default: a free one).
    pub port: Option<u16>,
}

/// A running `ipmi_sim`.
pub struct IpmiSim {
    /// Its UDP port.
    pub port: u16,
    /// Its address.
    pub address: Ipv4Addr,
    child: Child,
    dir: PathBuf,
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        if std::thread::panicking() {
            show_log("ipmi_sim", &self.dir.join("sim.log"), &mut self.child);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The chassis-control script: `script <mc> get power boot` prints
/// `power:<0|1>` and `boot:<dev>`; `script <mc> set power 1 boot pxe ...`
/// stores them, one file each beside the script, and logs every set. A
/// soft shutdown (`set shutdown 1`) powers off at once (no OS to ask),
/// unless `ignore-shutdown` exists (an OS that does not shut down).
const CHASSIS_SCRIPT: &str = r#"#!/bin/sh
dir=$(dirname "$0")
shift
op=$1
shift
case $op in
get)
    for p in "$@"; do
        case $p in
        power) echo "power:$(cat "$dir/power")" ;;
        boot) echo "boot:$(cat "$dir/boot")" ;;
        *) echo "Invalid parameter: $p"; exit 1 ;;
        esac
    done ;;
set)
    echo "$*" >> "$dir/sets"
    while [ -n "$1" ]; do
        case $1 in
        power) echo "$2" > "$dir/power" ;;
        shutdown) [ -f "$dir/ignore-shutdown" ] || echo 0 > "$dir/power" ;;
        boot) echo "$2" > "$dir/boot" ;;
        reset) ;;
        identify) shift ;;
        *) echo "Invalid parameter: $1"; exit 1 ;;
        esac
        shift 2
    done ;;
*) echo "Unknown operation: $op"; exit 1 ;;
esac
"#;

impl IpmiSim {
    /// Installs (if needed) and starts `ipmi_sim`; returns once it answers.
    /// Panics with its log if it does not start.
    pub fn start(config: SimConfig) -> Self {
        install();
        let dir = scratch("ipmi-sim");
        let script = dir.join("chassis");
        std::fs::write(&script, CHASSIS_SCRIPT).expect("chassis script");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod chassis script");
        }
        std::fs::write(
            dir.join("power"),
            if config.power_on { "1\n" } else { "0\n" },
        )
        .expect("power file");
        std::fs::write(dir.join("boot"), "default\n").expect("boot file");
        let mut emu = String::from(
            "mc_setbmc 0x20\n\
             mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n",
        );
        if let Some(fru) = &config.fru {
            let bytes = fru.encode();
            let hex: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
            emu.push_str(&format!(
                "mc_add_fru_data 0x20 0 {:#x} data {}\n",
                bytes.len(),
                hex.join(" ")
            ));
        }
        emu.push_str("mc_enable 0x20\n");
        std::fs::write(dir.join("sim.emu"), emu).expect("emu file");
        std::fs::create_dir_all(dir.join("state")).expect("state dir");

        let address = config.address.unwrap_or(Ipv4Addr::LOCALHOST);
        for _ in 0..3 {
            let port = config.port.unwrap_or_else(free_udp_port);
            let conf = format!(
                "name \"drydock\"\n\
                 set_working_mc 0x20\n\
                 startlan 1\n\
                 \x20 addr {address} {port}\n\
                 \x20 priv_limit admin\n\
                 \x20 allowed_auths_callback none md2 md5 straight\n\
                 \x20 allowed_auths_user none md2 md5 straight\n\
                 \x20 allowed_auths_operator none md2 md5 straight\n\
                 \x20 allowed_auths_admin none md2 md5 straight\n\
                 \x20 guid {SIM_GUID}\n\
                 endlan\n\
                 chassis_control \"{} 0x20\"\n\
                 user 2 true \"{USER}\" \"{PASSWORD}\" admin 10 none md2 md5 straight\n",
                script.display(),
            );
            std::fs::write(dir.join("lan.conf"), conf).expect("lan.conf");
            let log = std::fs::File::create(dir.join("sim.log")).expect("log file");
            let mut child = Command::new("ipmi_sim")
                .arg("-c")
                .arg(dir.join("lan.conf"))
                .arg("-f")
                .arg(dir.join("sim.emu"))
                .arg("-s")
                .arg(dir.join("state"))
                .arg("-n")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start ipmi_sim");
            if wait_serving(&mut child, address, port) {
                return IpmiSim {
                    port,
                    address,
                    child,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.join("sim.log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        panic!("ipmi_sim did not start:\n{log}");
    }

    /// The power state the chassis script holds: true for on.
    pub fn power(&self) -> bool {
        std::fs::read_to_string(self.dir.join("power"))
            .expect("power file")
            .trim()
            == "1"
    }

    /// Sets the power state the chassis script reports (a node that
    /// changed state on its own).
    pub fn set_power(&self, on: bool) {
        std::fs::write(self.dir.join("power"), if on { "1\n" } else { "0\n" }).expect("power");
    }

    /// From now on the node ignores soft shutdowns (a hung OS).
    pub fn ignore_shutdown(&self) {
        std::fs::write(self.dir.join("ignore-shutdown"), "").expect("ignore-shutdown file");
    }

    /// The boot device the chassis script was last given (`pxe`, `cdrom`,
    /// `bios`, `default`...).
    pub fn boot(&self) -> String {
        std::fs::read_to_string(self.dir.join("boot"))
            .expect("boot file")
            .trim()
            .to_string()
    }

    /// Every `set` the chassis script received, in order.
    pub fn sets(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("sets"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A running pyghmi fake BMC.
pub struct PyghmiBmc {
    /// Its UDP port on 127.0.0.1.
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Drop for PyghmiBmc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            show_log(
                "pyghmi's fake BMC",
                &self.dir.join("bmc.log"),
                &mut self.child,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl PyghmiBmc {
    /// Starts the fake BMC; its first `busy` Get Chassis Status requests
    /// are answered "node busy".
    pub fn start(busy: u32) -> Self {
        let venv = install();
        let dir = scratch("pyghmi");
        let log = std::fs::File::create(dir.join("bmc.log")).expect("log file");
        // Port 0: the fake binds a port the kernel picks and prints it, so
        // no other socket can take the port between choosing and binding.
        let mut child = Command::new(venv.join("bin/python"))
            .arg(repo().join("tests/peers/ipmi/pyghmi_bmc.py"))
            .arg("0")
            .arg(USER)
            .arg(PASSWORD)
            .arg(dir.join("state.json"))
            .arg(busy.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start pyghmi's fake BMC");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse::<u16>().ok());
        // Busy answers are only for Get Chassis Status: the probe is
        // answered normally.
        if let Some(port) = port
            && wait_serving(&mut child, Ipv4Addr::LOCALHOST, port)
        {
            return PyghmiBmc { port, child, dir };
        }
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(dir.join("bmc.log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        panic!("pyghmi's fake BMC did not start (stdout {line:?}):\n{log}");
    }

    /// The fake's state: `{"power": "on"|"off", "boot": "network"|...}`.
    pub fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.join("state.json")).expect("state file");
        serde_json::from_str(&text).expect("state JSON")
    }
}
