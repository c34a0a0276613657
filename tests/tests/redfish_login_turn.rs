//! Issue 20: the Redfish driver's login turn is a real compare-and-swap
//! (`kv-compare-and-swap`), not a handshake that relies on timing.
//!
//! Two calls at once against one BMC (the real sushy-tools emulator behind
//! [`drydock_tests::redfish_sessions`], the fake SessionService layer) over
//! a key-value store that makes one read stale: the first read of the run
//! answers what the key held when it came, but only once another call has
//! written that key and read it again (at most [`HOLD_AT_MOST`]) — a call
//! that read, was descheduled, and acts on what it read. A turn taken by
//! writing and reading back after a settle time cannot survive that (the
//! slow call finds no session and no turn, takes the turn and logs in a
//! second time); a compare-and-swap against what the call read fails, and
//! the call uses the session the other one kept. The test asserts one
//! login and one session open at most: it fails with two logins.

use async_trait::async_trait;
use drydock::drivers::services::{BuildData, ServiceError, StatusMessage};
use drydock::drivers::{
    Action, CallRequest, DriverConfig, DriverServices, KvUsage, MemoryServices,
};
use drydock::model::ActionParams;
use drydock_tests::redfish_sessions::{GatewayConfig, SessionGateway};
use drydock_tests::sushy::{FakeSystem, Sushy, SushyConfig};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The longest the stale read waits for another call's write and read.
/// It bounds the test's time if the staging fails; the assertion that it
/// did not (`overtaken`) keeps the test honest.
const HOLD_AT_MOST: Duration = Duration::from_secs(10);

/// Where the held read stands.
#[derive(Default)]
struct Held {
    /// The key of the held read, once it came.
    key: Option<String>,
    /// Another call wrote the key after the held read came.
    written: bool,
    /// ... and read it after that: the held read may answer.
    released: bool,
}

/// [`MemoryServices`] whose first read is held, as described in the module
/// documentation. While it is held its caller is blocked, so the writes
/// and reads of its key meanwhile come from another call.
#[derive(Default)]
struct StaleFirstRead {
    inner: MemoryServices,
    held: Mutex<Held>,
    released: Notify,
}

impl StaleFirstRead {
    /// Whether the held read was overtaken by another call's write and
    /// read (the interleaving was staged).
    fn overtaken(&self) -> bool {
        self.held.lock().unwrap().released
    }

    async fn hold(&self) {
        let until = tokio::time::Instant::now() + HOLD_AT_MOST;
        loop {
            let released = self.released.notified();
            if self.held.lock().unwrap().released {
                return;
            }
            if tokio::time::timeout_at(until, released).await.is_err() {
                return;
            }
        }
    }

    fn wrote(&self, key: &str) {
        let mut held = self.held.lock().unwrap();
        if held.key.as_deref() == Some(key) {
            held.written = true;
        }
    }
}

#[async_trait]
impl DriverServices for StaleFirstRead {
    async fn kv_get(&self, driver: &str, key: &str) -> Result<Option<String>, ServiceError> {
        let value = DriverServices::kv_get(&self.inner, driver, key).await;
        let (first, release) = {
            let mut held = self.held.lock().unwrap();
            match &held.key {
                None => {
                    held.key = Some(key.to_owned());
                    (true, false)
                }
                Some(k) if k == key && held.written && !held.released => {
                    held.released = true;
                    (false, true)
                }
                Some(_) => (false, false),
            }
        };
        if release {
            self.released.notify_waiters();
        }
        if first {
            self.hold().await;
        }
        value
    }

    async fn kv_usage(&self, driver: &str) -> Result<KvUsage, ServiceError> {
        DriverServices::kv_usage(&self.inner, driver).await
    }

    async fn kv_set(&self, driver: &str, key: &str, value: &str) -> Result<(), ServiceError> {
        DriverServices::kv_set(&self.inner, driver, key, value).await?;
        self.wrote(key);
        Ok(())
    }

    async fn kv_delete(&self, driver: &str, key: &str) -> Result<(), ServiceError> {
        DriverServices::kv_delete(&self.inner, driver, key).await?;
        self.wrote(key);
        Ok(())
    }

    async fn status(&self, message: StatusMessage) -> Result<(), ServiceError> {
        DriverServices::status(&self.inner, message).await
    }

    async fn build_data(&self, data: BuildData) -> Result<(), ServiceError> {
        DriverServices::build_data(&self.inner, data).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_calls_at_once_log_in_once_even_when_one_acts_on_a_stale_read() {
    let bmc = Sushy::start(SushyConfig {
        systems: vec![FakeSystem::numbered(1, false)],
        ..SushyConfig::default()
    });
    let gw = SessionGateway::start(bmc.port, GatewayConfig::default()).await;
    let rt = Arc::new(drydock_tests::runtime());
    let d = rt
        .load("redfish", drydock::bundled::REDFISH)
        .await
        .expect("load the bundled redfish driver");
    let node = Arc::new(gw.node("n1"));
    let services = Arc::new(StaleFirstRead::default());
    let config = Arc::new(DriverConfig {
        settings: BTreeMap::from([("poll_interval_ms".to_string(), "250".to_string())]),
        ..DriverConfig::default()
    });
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let (rt, d, node, services, config) = (
            rt.clone(),
            d.clone(),
            node.clone(),
            services.clone(),
            config.clone(),
        );
        calls.spawn(async move {
            let params = ActionParams::default();
            rt.call(
                &d,
                CallRequest {
                    action: Action::InterrogateOob,
                    node: Some(&node),
                    params: &params,
                    config,
                    services,
                    timeout: Some(Duration::from_secs(60)),
                    task: Some("test-task".into()),
                },
            )
            .await
        });
    }
    while let Some(r) = calls.join_next().await {
        let v = r.unwrap().unwrap_or_else(|e| panic!("a call failed: {e}"));
        assert_eq!(v["power_state"], "off");
    }
    let overtaken = services.overtaken();
    println!(
        "two calls: sessions created/deleted {:?}, peak open {}, stale read staged {overtaken}",
        gw.session_counts(),
        gw.peak_and_refused().0
    );
    assert_eq!(
        gw.session_counts(),
        (1, 0),
        "one login, and no session opened only to be logged out"
    );
    assert_eq!(gw.peak_and_refused().0, 1, "two sessions were open at once");
    assert_eq!(gw.open_sessions(), 1, "the one session is kept");
    assert!(
        overtaken,
        "the stale read was not staged: the test proves nothing"
    );
}
