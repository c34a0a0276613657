//! Secrets and addresses (issue 13, item 3): a node's credential resolves
//! only node-credential secrets of the right scope (never a driver's, never
//! another node's), `POST /nodes` never overwrites a secret it did not
//! create, and a node's BMC or switch address is one ordinary host unless
//! the operator allows more — checked on registration and where the address
//! is used (design nodes become node records the same way).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use drydock::api::{ApiToken, AppState, Auth, Role, router};
use drydock::drivers::{DriverConfig, DriverSet, GrantedSecrets};
use drydock::node_address::NodeAddressPolicy;
use drydock::secrets::{Scope, ScopeTable};
use drydock::store::Store;
use drydock::tasks::{Engine, EngineConfig, TaskRequest};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const OPERATOR: &str = "operator-token-0123456789";
const MAAS_KEY: &str = "maas-key-V4lue";

struct Harness {
    engine: Engine,
    store: Store,
    router: axum::Router,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.engine.shutdown();
    }
}

/// An engine on the sim driver with config secrets `bmc-password` (no
/// declaration: a node credential), `maas-api-key` (granted to driver
/// `maas`) and `switch-only` (declared `switch`), and an API over it.
async fn start(node_addresses: NodeAddressPolicy) -> Harness {
    let store = drydock_tests::db::sqlite().await;
    let rt = drydock_tests::runtime();
    let sim = rt.load("sim", drydock::bundled::SIM).await.unwrap();
    let mut drivers = DriverSet::new();
    drivers.add(sim, Arc::new(DriverConfig::default())).unwrap();
    drivers.set_network_driver(Some("sim".into()));
    let mut secrets = GrantedSecrets::default();
    secrets.insert("bmc-password", "calvin");
    secrets.insert("maas-api-key", MAAS_KEY);
    secrets.insert("switch-only", "arista");
    let explicit: BTreeMap<String, Vec<Scope>> =
        [("switch-only".to_owned(), vec![Scope::Switch])].into();
    let maas_grants = ["maas-api-key".to_owned()];
    let engine = Engine::start(
        store.clone(),
        Arc::new(rt),
        Arc::new(drivers),
        EngineConfig {
            poll_interval: Duration::from_millis(50),
            retry_backoff: Duration::from_millis(10),
            secrets,
            secret_scopes: ScopeTable::from_config(&explicit, [("maas", &maas_grants[..])]),
            node_addresses,
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    let auth = Auth::new(vec![ApiToken {
        name: "operator".into(),
        token: OPERATOR.into(),
        role: Role::Operator,
    }]);
    let router = router(AppState::new(engine.clone(), Arc::new(auth)));
    Harness {
        engine,
        store,
        router,
    }
}

impl Harness {
    async fn register(&self, body: Value) -> (StatusCode, String) {
        let req = Request::post("/api/v1.0/nodes")
            .header("authorization", format!("Bearer {OPERATOR}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Runs `power_on_node` on `node`; `Ok` or the failure's messages.
    async fn power_on(&self, node: &str) -> Result<(), String> {
        self.run(node, "power_on_node", None).await
    }

    /// Runs `action` on `node` with `params`; `Ok` or the failure's
    /// messages.
    async fn run(&self, node: &str, action: &str, params: Option<Value>) -> Result<(), String> {
        let t = drydock_tests::run_to_end(
            &self.engine,
            TaskRequest {
                action: action.into(),
                node_filter: Some(json!({"filter_set": [{"node_names": [node]}]})),
                params,
                ..TaskRequest::default()
            },
            Duration::from_secs(60),
        )
        .await;
        if t.failures.is_empty() && !t.successes.is_empty() {
            return Ok(());
        }
        let mut ids = self.store.subtask_ids(t.id).await.unwrap();
        ids.push(t.id);
        let msgs = self.store.messages_for_tasks(&ids).await.unwrap();
        Err(msgs
            .iter()
            .map(|m| m.message.as_str())
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

fn node(name: &str, oob: Value) -> Value {
    let mut oob = oob;
    oob["type"] = json!("sim");
    json!({"name": name, "oob": oob, "boot_mac": "52:54:00:00:00:01"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_nodes_never_overwrites_a_secret_it_did_not_create() {
    let h = start(NodeAddressPolicy::default()).await;
    let creds = |p: &str| json!({"username": "root", "password": p});

    // A config secret.
    let mut body = node("n1", json!({"credential": "bmc-password"}));
    body["credentials"] = creds("stolen-1");
    let (status, text) = h.register(body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("bmc-password"), "{text}");
    assert!(h.store.get_secret("bmc-password").await.unwrap().is_none());

    // Another node's.
    let mut a = node("a", json!({"address": "10.0.0.5"}));
    a["credentials"] = creds("a-pa55");
    assert_eq!(h.register(a.clone()).await.0, StatusCode::CREATED);
    let mut b = node("b", json!({"credential": "node-a-oob"}));
    b["credentials"] = creds("stolen-2");
    let (status, text) = h.register(b).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(
        !text.contains("a-pa55") && !text.contains("stolen"),
        "{text}"
    );
    let stored = h.store.get_secret("node-a-oob").await.unwrap().unwrap();
    assert!(stored.contains("a-pa55"), "node b replaced node a's secret");

    // The node that stored it may replace it.
    a["credentials"] = creds("a-rotated");
    assert_eq!(h.register(a).await.0, StatusCode::CREATED);
    let stored = h.store.get_secret("node-a-oob").await.unwrap().unwrap();
    assert!(stored.contains("a-rotated"));
    // A secret stored before scopes existed (no owner) is not taken over.
    h.store.put_secret("legacy", "old").await.unwrap();
    let mut c = node("c", json!({"credential": "legacy"}));
    c["credentials"] = creds("new");
    assert_eq!(h.register(c).await.0, StatusCode::CONFLICT);
    assert_eq!(h.store.get_secret("legacy").await.unwrap().unwrap(), "old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_credential_resolves_only_node_secrets_of_its_scope() {
    let h = start(NodeAddressPolicy::default()).await;
    let register = |name: &'static str, oob: Value| {
        let h = &h;
        async move {
            let (status, text) = h.register(node(name, oob)).await;
            assert_eq!(status, StatusCode::CREATED, "{name}: {text}");
        }
    };
    register(
        "ok",
        json!({"address": "10.0.0.1", "credential": "bmc-password", "account": "root"}),
    )
    .await;
    register(
        "thief",
        json!({"address": "203.0.113.9", "credential": "maas-api-key", "account": "x"}),
    )
    .await;
    register(
        "wrong-scope",
        json!({"address": "10.0.0.3", "credential": "switch-only", "account": "x"}),
    )
    .await;
    let mut a = node("a", json!({"address": "10.0.0.4"}));
    a["credentials"] = json!({"username": "root", "password": "a-pa55"});
    assert_eq!(h.register(a).await.0, StatusCode::CREATED);
    register(
        "borrower",
        json!({"address": "203.0.113.10", "credential": "node-a-oob"}),
    )
    .await;

    h.power_on("ok").await.expect("a node credential serves");
    h.power_on("a")
        .await
        .expect("the node's own stored secret serves");

    let e = h.power_on("thief").await.unwrap_err();
    assert!(
        e.contains("maas-api-key") && e.contains("driver:maas"),
        "{e}"
    );
    assert!(!e.contains(MAAS_KEY), "{e}");
    let e = h.power_on("wrong-scope").await.unwrap_err();
    assert!(e.contains("may not be used for oob"), "{e}");
    let e = h.power_on("borrower").await.unwrap_err();
    assert!(e.contains("stored for node `a`"), "{e}");
    assert!(!e.contains("a-pa55"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_bmc_and_switch_addresses_are_refused_unless_allowed() {
    let h = start(NodeAddressPolicy::default()).await;
    for (address, needle) in [
        ("127.0.0.1", "loopback"),
        ("0.0.0.0/0", "CIDR"),
        ("*.example.net", "wildcard"),
        ("169.254.169.254", "cloud metadata"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
    ] {
        let (status, text) = h.register(node("n", json!({"address": address}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{address}: {text}");
        assert!(text.contains(needle), "{address}: {text}");
    }
    let mut body = node("n", json!({"address": "10.0.0.9"}));
    body["interfaces"] = json!([{"name": "pxe", "switch_port": {
        "switch": {"name": "leaf01", "address": "10.0.0.0/8"}, "port": "Ethernet1"}}]);
    let (status, text) = h.register(body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(
        text.contains("switch leaf01") && text.contains("CIDR"),
        "{text}"
    );

    // Where the address is used: a node record written as design nodes
    // are (straight to the store) is refused when its task runs.
    let spec = node("d1", json!({"address": "169.254.169.254"}));
    h.store.upsert_node("d1", &spec, None).await.unwrap();
    let e = h.power_on("d1").await.unwrap_err();
    assert!(e.contains("cloud metadata"), "{e}");

    // A switch named in a task's parameters is checked the same way.
    let (status, _) = h.register(node("p", json!({"address": "10.0.0.9"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let port = |address: &str| {
        json!({"switch_port": {"switch": {"name": "evil", "address": address},
                                "port": "Ethernet1"}})
    };
    h.run("p", "interrogate_port", Some(port("10.0.0.200")))
        .await
        .expect("an ordinary switch address");
    let e = h
        .run("p", "interrogate_port", Some(port("0.0.0.0/0")))
        .await
        .unwrap_err();
    assert!(e.contains("switch evil") && e.contains("CIDR"), "{e}");

    // An operator-allowed range passes, both ways.
    let h = start(NodeAddressPolicy::allowing(&["127.0.0.0/8"]).unwrap()).await;
    let (status, text) = h.register(node("n", json!({"address": "127.0.0.1"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    h.power_on("n").await.expect("an allowed loopback BMC");
    let (status, _) = h
        .register(node("m", json!({"address": "169.254.169.254"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
