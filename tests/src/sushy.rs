//! The sushy-tools Redfish emulator (OpenStack's Redfish test peer, fake
//! systems driver) as a test peer: one process per test on a free loopback
//! port, with its own state directory, optional basic auth (bcrypt htpasswd)
//! and optional TLS with a private CA made by `rcgen`. Killed on drop.
//!
//! [`Sushy::start`] installs the emulator first (`tests/peers/sushy/setup.sh`,
//! a venv under `target/peers/sushy/`), so a fresh clone needs no manual
//! step.

use drydock::model::{Credentials, Node, Oob};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long the emulator may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One emulated machine.
#[derive(Clone, Debug)]
pub struct FakeSystem {
    /// Its UUID, which is also its Redfish id.
    pub uuid: String,
    /// Its name (`/Systems/<name>` redirects to the UUID).
    pub name: String,
    /// Powered on at start.
    pub power_on: bool,
    /// The MAC of its one NIC.
    pub mac: String,
}

impl FakeSystem {
    /// System number `i` (0..=255): UUID `0000000i-...`, name `node-i`, MAC
    /// `52:54:00:00:00:<i>`.
    pub fn numbered(i: u8, power_on: bool) -> Self {
        Self {
            uuid: format!("{i:08x}-1111-4111-8111-111111111111"),
            name: format!("node-{i}"),
            power_on,
            mac: format!("52:54:00:00:00:{i:02x}"),
        }
    }
}

/// What to start.
#[derive(Clone, Debug, Default)]
pub struct SushyConfig {
    /// The systems it emulates.
    pub systems: Vec<FakeSystem>,
    /// User name and password it requires (basic auth), if any.
    pub basic_auth: Option<(String, String)>,
    /// Serve HTTPS with a certificate for `127.0.0.1` from a fresh private CA.
    pub tls: bool,
    /// Address to listen on (default `127.0.0.1`); `0.0.0.0` lets several
    /// loopback addresses (127.0.0.2, 127.0.0.3...) reach one emulator, as
    /// distinct BMC addresses of a site design.
    pub listen_ip: Option<String>,
}

/// A running emulator.
pub struct Sushy {
    /// Port it listens on (127.0.0.1).
    pub port: u16,
    /// PEM of the private CA that signed its certificate (TLS only).
    pub ca_pem: Option<String>,
    config: SushyConfig,
    child: Child,
    dir: PathBuf,
}

impl Drop for Sushy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The failure shows the emulator's side too.
            let log = std::fs::read_to_string(self.dir.join("sushy.log")).unwrap_or_default();
            eprintln!("--- sushy-emulator's log:\n{log}--- end of sushy-emulator's log");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The repository root.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
}

/// Installs the emulator once per test process; returns the venv.
fn install() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let script = repo().join("tests/peers/sushy/setup.sh");
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
        repo().join("target/peers/sushy/venv")
    })
}

/// The sushy-tools venv (installed on first use): `bin/sushy-emulator`,
/// `bin/sushy-static`.
pub fn venv() -> &'static Path {
    install()
}

/// A fresh scratch directory.
fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "drydock-sushy-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A bcrypt (rounds = 4, so a request costs ~1 ms) htpasswd line.
fn htpasswd_line(venv: &Path, user: &str, password: &str) -> String {
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import bcrypt, sys; \
             print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(rounds=4)).decode())",
            password,
        ])
        .output()
        .expect("run the venv's python");
    assert!(out.status.success(), "bcrypt: {:?}", out);
    format!("{user}:{}", String::from_utf8_lossy(&out.stdout).trim())
}

/// A private CA and a certificate for 127.0.0.1 / localhost signed by it:
/// (CA PEM, certificate PEM, key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Drydock test BMC CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
        .expect("self-signed CA");
    let key = KeyPair::generate().expect("BMC key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "bmc.test");
    let cert = params.signed_by(&key, &ca).expect("BMC certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

impl Sushy {
    /// Installs (if needed) and starts the emulator; returns once it
    /// accepts connections. Panics with its log if it does not start.
    pub fn start(config: SushyConfig) -> Self {
        let venv = install();
        let dir = scratch();
        let mut lines = vec![
            format!(
                "SUSHY_EMULATOR_LISTEN_IP = '{}'",
                config.listen_ip.as_deref().unwrap_or("127.0.0.1")
            ),
            "SUSHY_EMULATOR_FAKE_DRIVER = True".to_string(),
            format!(
                "SUSHY_EMULATOR_STATE_DIR = '{}'",
                dir.join("state").display()
            ),
        ];
        let systems: Vec<String> = config
            .systems
            .iter()
            .map(|s| {
                format!(
                    "{{'uuid': '{}', 'name': '{}', 'power_state': '{}', \
                     'nics': [{{'mac': '{}', 'ip': '192.0.2.10'}}]}}",
                    s.uuid,
                    s.name,
                    if s.power_on { "On" } else { "Off" },
                    s.mac
                )
            })
            .collect();
        lines.push(format!(
            "SUSHY_EMULATOR_FAKE_SYSTEMS = [{}]",
            systems.join(", ")
        ));
        if let Some((user, password)) = &config.basic_auth {
            let file = dir.join("htpasswd");
            std::fs::write(&file, htpasswd_line(venv, user, password) + "\n").expect("htpasswd");
            lines.push(format!("SUSHY_EMULATOR_AUTH_FILE = '{}'", file.display()));
        }
        let mut ca_pem = None;
        if config.tls {
            let (ca, cert, key) = certificates();
            std::fs::write(dir.join("bmc.crt"), cert).expect("cert");
            std::fs::write(dir.join("bmc.key"), key).expect("key");
            lines.push(format!(
                "SUSHY_EMULATOR_SSL_CERT = '{}'",
                dir.join("bmc.crt").display()
            ));
            lines.push(format!(
                "SUSHY_EMULATOR_SSL_KEY = '{}'",
                dir.join("bmc.key").display()
            ));
            ca_pem = Some(ca);
        }

        // A free port can be taken between the check and the bind: retry.
        for _ in 0..3 {
            let port = free_port();
            let conf = dir.join("sushy.conf");
            let mut text = lines.join("\n");
            text.push_str(&format!("\nSUSHY_EMULATOR_LISTEN_PORT = {port}\n"));
            std::fs::write(&conf, text).expect("sushy config");
            let log = std::fs::File::create(dir.join("sushy.log")).expect("log file");
            let mut child = Command::new(venv.join("bin/sushy-emulator"))
                .arg("--config")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start sushy-emulator");
            if wait_ready(&mut child, port) {
                if !config.tls {
                    warm_up(port, config.basic_auth.as_ref());
                }
                return Sushy {
                    port,
                    ca_pem,
                    config,
                    child,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("sushy.log")).unwrap_or_default();
            if !log.contains("Address already in use") {
                let _ = std::fs::remove_dir_all(&dir);
                panic!("sushy-emulator did not start:\n{log}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("sushy-emulator could not get a free port");
    }

    /// A node whose BMC is this emulator: oob type `redfish`, address
    /// 127.0.0.1 and the port, `scheme` param `http`/`https`, the
    /// emulator's credentials if it requires some, and `system_id` if given.
    pub fn node(&self, name: &str, system_id: Option<&str>) -> Node {
        let mut params = std::collections::BTreeMap::new();
        params.insert(
            "scheme".to_string(),
            if self.config.tls { "https" } else { "http" }.to_string(),
        );
        if let Some(id) = system_id {
            params.insert("system_id".to_string(), id.to_string());
        }
        Node {
            name: name.into(),
            oob: Oob {
                oob_type: "redfish".into(),
                address: Some("127.0.0.1".into()),
                port: Some(self.port),
                credentials: self.config.basic_auth.as_ref().map(|(username, password)| {
                    Credentials {
                        username: username.clone(),
                        password: password.clone(),
                    }
                }),
                params,
                ..Oob::default()
            },
            ..Node::default()
        }
    }
}

impl Sushy {
    /// The emulator's view of system `id` (`GET /redfish/v1/Systems/<id>`,
    /// with its credentials if it requires some), read directly rather than
    /// through a driver.
    pub async fn system(&self, id: &str) -> serde_json::Value {
        let mut client = reqwest::Client::builder();
        if let Some(ca) = &self.ca_pem {
            client = client.add_root_certificate(
                reqwest::Certificate::from_pem(ca.as_bytes()).expect("the emulator's CA"),
            );
        }
        let scheme = if self.config.tls { "https" } else { "http" };
        let mut request = client.build().expect("HTTP client").get(format!(
            "{scheme}://127.0.0.1:{}/redfish/v1/Systems/{id}",
            self.port
        ));
        if let Some((user, password)) = &self.config.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        let answer = request.send().await.expect("GET the system");
        assert!(answer.status().is_success(), "system {id}: {answer:?}");
        answer.json().await.expect("system JSON")
    }
}

/// Reads the systems collection once, over plain HTTP, before the test's
/// own requests. sushy-tools sets its systems store up on the first
/// request that needs it, switching a new SQLite file to WAL mode; two
/// requests arriving at once both try, and one fails with HTTP 500
/// "database is locked" (seen with two concurrent driver calls). After
/// one request has set it up, concurrent requests are served. Failures
/// here are ignored: the test's own requests report what is wrong.
fn warm_up(port: u16, basic_auth: Option<&(String, String)>) {
    use base64::Engine as _;
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(START_TIMEOUT));
    let auth = basic_auth
        .map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Authorization: Basic {token}\r\n")
        })
        .unwrap_or_default();
    let request = format!(
        "GET /redfish/v1/Systems HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

/// Polls a TCP connect until it succeeds (true), the process exits or the
/// start deadline passes (false).
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let addr = (Ipv4Addr::LOCALHOST, port).into();
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
