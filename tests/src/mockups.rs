//! DMTF's public Redfish mockups (recorded trees of real BMCs, BSD-3, in
//! `tests/mockups/redfish/` with their licence) served read-only by
//! sushy-tools' `sushy-static` on a free loopback port. Killed on drop.

use crate::sushy::{free_port, venv};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every mockup: a rack server, a tower, a bladed chassis, local storage
/// and OEM extensions (the last has no systems at all).
pub const MOCKUPS: [&str; 5] = [
    "public-rackmount1",
    "public-tower",
    "public-bladed",
    "public-localstorage",
    "public-oem-examples",
];

/// The directory of mockup `name`.
pub fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("mockups/redfish")
        .join(name)
}

/// The JSON of resource `path` (e.g. `/redfish/v1/Systems/1`) in mockup
/// `name`, read from its files.
pub fn resource(name: &str, path: &str) -> serde_json::Value {
    let rel = path.trim_start_matches("/redfish/v1").trim_matches('/');
    let file = dir(name).join(rel).join("index.json");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A running `sushy-static`.
pub struct SushyStatic {
    /// Port it listens on (127.0.0.1).
    pub port: u16,
    child: Child,
}

impl Drop for SushyStatic {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SushyStatic {
    /// Serves mockup `name`; returns once it accepts connections.
    pub fn start(name: &str) -> Self {
        let venv = venv();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(venv.join("bin/sushy-static"))
                .args(["--interface", "127.0.0.1", "--port", &port.to_string()])
                .arg("--mockup-files")
                .arg(dir(name))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start sushy-static");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return SushyStatic { port, child };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sushy-static did not start for {name}");
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
