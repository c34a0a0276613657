//! A real Arista switch model to test the `eos` driver against: fake-switches
//! 1.5.0 answering eAPI over HTTP on 127.0.0.1, one process per switch.
//!
//! [`FakeSwitch::start`] installs the peer first (`tests/peers/fake-switches/
//! setup.sh`, idempotent), starts `launch.py` on a free port, waits until the
//! port accepts connections (bounded) and kills the process on drop.
//!
//! The model only knows trunk ports with native VLAN 1; `launch.py` extends
//! it with access ports and native VLANs (a fake layer written from EOS's
//! manual, see its doc string) unless the switch is started with
//! [`FakeSwitch::start_plain`].

use drydock::model::{Credentials, Switch};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a switch may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Runs `setup.sh` once per test process; panics with its output on failure.
fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let setup = repo().join("tests/peers/fake-switches/setup.sh");
        let out = Command::new("bash")
            .arg(&setup)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", setup.display()));
        assert!(
            out.status.success(),
            "{} failed: {}",
            setup.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// One running fake Arista switch.
pub struct FakeSwitch {
    /// Its name (also the switch's host name).
    pub name: String,
    /// The HTTP port its eAPI listens on (127.0.0.1).
    pub port: u16,
    credentials: Option<Credentials>,
    /// Every eAPI request the switch logged (Python's repr of the JSON).
    log: Arc<Mutex<Vec<String>>>,
    child: Child,
}

impl Drop for FakeSwitch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FakeSwitch {
    /// Starts switch `name` with the interfaces `ports` (empty: the model's
    /// `Ethernet1` and `Ethernet2`), without authentication.
    pub fn start(name: &str, ports: &[&str]) -> Self {
        Self::start_with(name, ports, None, false)
    }

    /// Starts switch `name` as fake-switches models it, without the access
    /// port and native VLAN extension: those commands fail with the model's
    /// own eAPI errors.
    pub fn start_plain(name: &str, ports: &[&str]) -> Self {
        Self::start_with(name, ports, None, true)
    }

    /// Starts a switch whose eAPI demands HTTP basic auth with `username` and
    /// `password`.
    pub fn start_with_auth(name: &str, ports: &[&str], username: &str, password: &str) -> Self {
        let credentials = Credentials {
            username: username.into(),
            password: password.into(),
        };
        Self::start_with(name, ports, Some(credentials), false)
    }

    fn start_with(
        name: &str,
        ports: &[&str],
        credentials: Option<Credentials>,
        plain: bool,
    ) -> Self {
        install();
        let root = repo();
        let auth = credentials
            .as_ref()
            .map(|c| format!("{}:{}", c.username, c.password))
            .unwrap_or_default();
        let mut child = Command::new(root.join("target/peers/fake-switches/bin/python"))
            .arg(root.join("tests/peers/fake-switches/launch.py"))
            .args(["127.0.0.1", "0", name, &ports.join(","), &auth])
            .args(plain.then_some("plain"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the fake switch");
        // `launch.py` prints `ready <port>` once listening; read it on a
        // thread so a hung start cannot block past the deadline.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let requests = log.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let line = lines.next().and_then(Result::ok);
            let _ = tx.send(line);
            // Keep draining so the child never blocks on a full pipe.
            for line in lines.map_while(Result::ok) {
                if let Some(request) = line.strip_prefix("eapi ") {
                    requests.lock().unwrap().push(request.to_string());
                }
            }
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(line)) => line,
            other => {
                let _ = child.kill();
                panic!("fake switch {name} did not start: {other:?}");
            }
        };
        let port: u16 = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected launcher output `{line}`"));
        let switch = FakeSwitch {
            name: name.into(),
            port,
            credentials,
            log,
            child,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "fake switch {name} never accepted connections on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        switch
    }

    /// The switch as a site design names it, with its credentials.
    pub fn switch(&self) -> Switch {
        Switch {
            name: self.name.clone(),
            address: "127.0.0.1".into(),
            port: Some(self.port),
            account: None,
            credential: None,
            credentials: self.credentials.clone(),
        }
    }

    /// The egress grant a driver needs to reach this switch.
    pub fn grant(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `cmds` through eAPI directly (not through the driver), to set a
    /// port up or to read it back; returns the whole JSON-RPC answer.
    pub async fn eapi(&self, cmds: &[&str]) -> Value {
        self.eapi_with_id(cmds, "test").await
    }

    async fn eapi_with_id(&self, cmds: &[&str], id: &str) -> Value {
        let body = json!({
            "jsonrpc": "2.0",
            "method": "runCmds",
            "params": { "version": 1, "cmds": cmds, "format": "json" },
            "id": id,
        });
        let mut request = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/command-api", self.port))
            .json(&body);
        if let Some(c) = &self.credentials {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        request
            .send()
            .await
            .expect("eAPI request")
            .json()
            .await
            .expect("eAPI answer")
    }

    /// Every eAPI request the switch received so far, oldest first (the
    /// driver's and [`FakeSwitch::eapi`]'s). Waits (bounded) until a marker
    /// request sent now shows in the log, so nothing earlier is missing.
    pub async fn requests(&self) -> Vec<String> {
        static MARKS: AtomicU64 = AtomicU64::new(0);
        let mark = format!("marker-{}", MARKS.fetch_add(1, Ordering::Relaxed));
        self.eapi_with_id(&["show vlan 1"], &mark).await;
        let started = Instant::now();
        loop {
            let log = self.log.lock().unwrap().clone();
            if let Some(at) = log.iter().position(|r| r.contains(&mark)) {
                return log[..at].to_vec();
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "switch {} never logged request {mark}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `switchportInfo` of `port` as the switch reports it.
    pub async fn switchport(&self, port: &str) -> Value {
        let cmd = format!("show interfaces {port} switchport");
        let answer = self.eapi(&[&cmd]).await;
        answer["result"][0]["switchports"][port]["switchportInfo"].clone()
    }
}
