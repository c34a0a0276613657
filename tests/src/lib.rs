//! Shared helpers for Drydock's integration tests: guest fixtures (built by
//! `build.rs` from `tests/guests/`), a recording HTTP peer, node builders.
//!
//! Each test gets its own runtime and services; nothing here is a mock of
//! Drydock itself.

pub mod fake_maas;

use drydock::drivers::{
    Action, CallError, CallRequest, Driver, DriverConfig, MemoryServices, Runtime, RuntimeConfig,
};
use drydock::model::{ActionParams, Node, Oob};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub mod fake_promenade;
pub mod fake_switches;
pub mod ipmi_sim;
pub mod keystone;
pub mod mockups;
pub mod packages;
pub mod redfish_sessions;
pub mod stores;
pub mod sushy;

/// Guest components built from `tests/guests/`.
pub mod guests {
    /// Infinite loop in `power_on_node`.
    pub const LOOP: &str = env!("GUEST_LOOP");
    /// Allocates 1 GiB in `power_on_node`.
    pub const MEMBOMB: &str = env!("GUEST_MEMBOMB");
    /// Panics in `power_on_node`.
    pub const TRAP: &str = env!("GUEST_TRAP");
    /// HTTP probe built with the SDK (GET/POST to config `url`).
    pub const HTTP: &str = env!("GUEST_HTTP");
    /// The same probe declaring node-BMC access (`bmc-probe`).
    pub const BMC_PROBE: &str = env!("GUEST_BMC_PROBE");
    /// A single-interface (oob-driver world) driver built without the SDK.
    pub const OOB_ONLY: &str = env!("GUEST_OOB_ONLY");
    /// A wasi:cli command, not a driver.
    pub const OTHER_WORLD: &str = env!("GUEST_OTHER_WORLD");
    /// Floods the host service its `attack` setting names (see
    /// `tests/guests/guest-hostile`).
    pub const HOSTILE: &str = env!("GUEST_HOSTILE");
    /// A driver built against drydock:driver@0.0.1.
    pub const OLD_VERSION: &str = env!("GUEST_OLD_VERSION");
    /// The sim driver as released for drydock:driver@0.1.0, built from a
    /// frozen copy of its sources and SDK (`tests/guests/guest-sim-v0-1`).
    pub const SIM_V0_1: &str = env!("GUEST_SIM_V0_1");
    /// Exchanges UDP datagrams with the node's BMC (WIT 0.2.0 `datagram`):
    /// see `tests/guests/guest-datagram`.
    pub const DATAGRAM: &str = env!("GUEST_DATAGRAM");
}

/// Polls `check` every 10 ms until it holds, failing the test (naming
/// `what`) after 30 s. For states no event announces (rows a sync or a
/// drain writes, an answer that changes); await the event where there is
/// one.
pub async fn until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A runtime with small limits suited to tests, sharing one compile cache
/// (under `target/`) across tests so each component compiles once per run.
pub fn runtime() -> Runtime {
    runtime_with(RuntimeConfig {
        max_concurrent_calls: 16,
        ..RuntimeConfig::default()
    })
}

/// A runtime with `config`, sharing [`runtime`]'s compile cache.
pub fn runtime_with(config: RuntimeConfig) -> Runtime {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-compile-cache");
    let cache = drydock::drivers::CompileCache::open_path(&dir).expect("compile cache dir");
    Runtime::new(config, Some(cache)).expect("driver runtime")
}

/// An engine over `store` with the bundled sim driver (default settings)
/// at a per-driver `limits`, and at most `calls` driver calls in flight.
pub async fn sim_engine(
    store: drydock::store::Store,
    limits: drydock::drivers::DriverLimits,
    calls: u32,
    cfg: drydock::tasks::EngineConfig,
) -> drydock::tasks::Engine {
    let rt = Arc::new(runtime_with(RuntimeConfig {
        max_concurrent_calls: calls,
        limits,
        ..RuntimeConfig::default()
    }));
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut set = drydock::drivers::DriverSet::new();
    set.add(sim, Arc::new(drydock::drivers::DriverConfig::default()))
        .unwrap();
    drydock::tasks::Engine::start(store, rt, Arc::new(set), cfg)
        .await
        .unwrap()
}

/// An engine over `store` with the bundled sim driver configured by
/// `settings` (its `[drivers.sim.settings]`), on [`runtime`].
pub async fn sim_engine_set(
    store: drydock::store::Store,
    settings: &[(&str, &str)],
    cfg: drydock::tasks::EngineConfig,
) -> drydock::tasks::Engine {
    let rt = Arc::new(runtime());
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut set = drydock::drivers::DriverSet::new();
    let config = drydock::drivers::DriverConfig {
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..drydock::drivers::DriverConfig::default()
    };
    set.add(sim, Arc::new(config)).unwrap();
    drydock::tasks::Engine::start(store, rt, Arc::new(set), cfg)
        .await
        .unwrap()
}

/// Calls `power_on_node` on `node` through whichever version of the driver
/// serving it `drivers` holds now (looked up per call, as the engine does);
/// returns the result and that version's SHA-256.
pub async fn power_on_current(
    rt: &Runtime,
    drivers: &drydock::drivers::DriverSet,
    node: &Node,
    services: Arc<dyn drydock::drivers::DriverServices>,
) -> (Result<serde_json::Value, CallError>, String) {
    let installed = drivers
        .for_action(Action::PowerOnNode, Some(node))
        .expect("a driver serves oob for the node");
    let params = ActionParams::default();
    let r = rt
        .call(
            &installed.driver,
            CallRequest {
                action: Action::PowerOnNode,
                node: Some(node),
                params: &params,
                config: installed.config.clone(),
                services,
                timeout: None,
                task: None,
            },
        )
        .await;
    (r, installed.driver.sha256().to_owned())
}

/// The node addresses the tests' engines accept besides ordinary ones: the
/// protocol peers (sushy-tools, fake-switches, the fake MAAS) listen on
/// loopback, which a production config refuses for BMCs and switches
/// (`[node_addresses] allow`).
pub fn loopback_peers() -> drydock::node_address::NodeAddressPolicy {
    drydock::node_address::NodeAddressPolicy::allowing(&["127.0.0.0/8"]).expect("a CIDR")
}

/// Loads a guest fixture by path.
pub async fn load(rt: &Runtime, path: &str) -> Driver {
    rt.load_file(std::path::Path::new(path))
        .await
        .unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

/// A node with the given oob type and no BMC address.
pub fn node(name: &str, oob_type: &str) -> Node {
    Node {
        name: name.into(),
        oob: Oob {
            oob_type: oob_type.into(),
            ..Oob::default()
        },
        boot_mac: Some("52:54:00:00:00:01".into()),
        ..Node::default()
    }
}

/// Submits `req` to `engine` and returns the task once it has ended (at
/// most `within`; panics past it or if the engine refuses the task).
pub async fn run_to_end(
    engine: &drydock::tasks::Engine,
    req: drydock::tasks::TaskRequest,
    within: Duration,
) -> drydock::store::TaskRecord {
    let t = engine.submit(req).await.expect("task accepted");
    engine
        .wait_finished(t.id, within)
        .await
        .expect("task ended in time")
}

/// Everything one call needs besides the driver and the action.
pub struct Call {
    /// Operator configuration and grants.
    pub config: Arc<DriverConfig>,
    /// In-memory services (inspect key-value, messages, build data).
    pub services: Arc<MemoryServices>,
    /// Parameters.
    pub params: ActionParams,
    /// Time limit.
    pub timeout: Option<Duration>,
}

impl Default for Call {
    fn default() -> Self {
        Self {
            config: Arc::new(DriverConfig::default()),
            services: Arc::new(MemoryServices::new()),
            params: ActionParams::default(),
            timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl Call {
    /// The status messages the driver attached so far, oldest first.
    pub fn statuses(&self) -> Vec<String> {
        self.services
            .messages()
            .into_iter()
            .map(|m| m.message)
            .collect()
    }

    /// Runs `action` on `node`.
    pub async fn run(
        &self,
        rt: &Runtime,
        driver: &Driver,
        action: Action,
        node: Option<&Node>,
    ) -> Result<serde_json::Value, CallError> {
        rt.call(
            driver,
            CallRequest {
                action,
                node,
                params: &self.params,
                config: self.config.clone(),
                services: self.services.clone(),
                timeout: self.timeout,
                task: Some("test-task".into()),
            },
        )
        .await
    }
}

/// One request an [`HttpPeer`] received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Request line, e.g. `POST /x HTTP/1.1`.
    pub request_line: String,
    /// Header lines.
    pub headers: Vec<String>,
    /// Body.
    pub body: String,
}

/// A real HTTP/1.1 server on 127.0.0.1 answering every request with
/// `200 {"ok":true}` and recording what it got.
pub struct HttpPeer {
    /// Port it listens on.
    pub port: u16,
    /// Requests received so far.
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpPeer {
    /// Starts the peer on an ephemeral port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let rec = rec.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.lines();
                    let request_line = lines.next().unwrap_or_default().to_owned();
                    let headers: Vec<String> = lines.map(str::to_owned).collect();
                    let len = headers
                        .iter()
                        .find_map(|h| {
                            let (k, v) = h.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    let mut body = buf[head_end + 4..].to_vec();
                    while body.len() < len {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                    rec.lock().unwrap().push(Received {
                        request_line,
                        headers,
                        body: String::from_utf8_lossy(&body).to_string(),
                    });
                    let reply = "{\"ok\":true}";
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self {
            port,
            received,
            task,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A fresh, empty directory under the temp directory (the caller removes
/// it).
pub fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(db::unique(prefix));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Scratch databases for tests: a fresh SQLite file or a fresh Postgres
/// database (127.0.0.1:5432, user `postgres`; override with
/// `DRYDOCK_TEST_PG`). Postgres being down fails the test, it never skips.
pub mod db {
    use drydock::store::Store;

    /// The Postgres admin URL tests use.
    pub fn pg_admin_url() -> String {
        std::env::var("DRYDOCK_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    /// A unique name for a scratch database or file.
    pub fn unique(prefix: &str) -> String {
        format!(
            "{prefix}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        )
    }

    /// A store on a fresh SQLite file in the temp directory.
    pub async fn sqlite() -> Store {
        let path = std::env::temp_dir().join(format!("{}.db", unique("drydock_test")));
        Store::connect(&format!("sqlite:{}", path.display()))
            .await
            .expect("sqlite store")
    }

    /// A store on a fresh Postgres database, and the database's name (pass
    /// it to [`drop_postgres`] at the end).
    pub async fn postgres() -> (Store, String) {
        let name = unique("drydock_test");
        let url = drydock::store::testing::create_pg_database(&pg_admin_url(), &name)
            .await
            .unwrap_or_else(|e| {
                panic!("Postgres is needed for this test ({}): {e}", pg_admin_url())
            });
        (Store::connect(&url).await.expect("postgres store"), name)
    }

    /// Drops a database made by [`postgres`] (best effort).
    pub async fn drop_postgres(name: &str) {
        let _ = drydock::store::testing::drop_pg_database(&pg_admin_url(), name).await;
    }
}
