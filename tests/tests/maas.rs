//! The bundled MAAS driver through the real runtime against the fake MAAS
//! region (`drydock_tests::fake_maas`): every node action, its idempotence,
//! failure paths (401, 409, 503 then success, stuck commissioning), and a
//! whole node lifecycle.

use drydock::drivers::{
    Action, CallError, CallRequest, DriverConfig, DriverErrorKind, EgressGrant, GrantedSecrets,
    MemoryServices, Runtime,
};
use drydock::model::{
    ActionParams, Address, Filesystem, Interface, IpRange, LogicalVolume, Network, NetworkLink,
    Node, Oob, Partition, PhysicalDevice, Platform, Repository, Route, SiteNetworks, Storage,
    VolumeGroup,
};
use drydock_tests::fake_maas::{self, FakeMaas, NewMachine, status};
use drydock_tests::runtime;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A fake region, the bundled driver configured for it, and the services
/// its calls share.
struct Env {
    fake: FakeMaas,
    rt: Runtime,
    driver: drydock::drivers::Driver,
    config: Arc<DriverConfig>,
    services: Arc<MemoryServices>,
}

const MAC0: &str = "52:54:00:00:00:01";

impl Env {
    async fn new() -> Self {
        Self::with(Duration::from_millis(150), &[]).await
    }

    async fn with(step: Duration, settings: &[(&str, &str)]) -> Self {
        let fake = FakeMaas::start(step).await;
        let rt = runtime();
        let driver = rt
            .load("maas", drydock::bundled::MAAS)
            .await
            .expect("load maas");
        let mut all: BTreeMap<String, String> =
            [("url", fake.url()), ("poll_interval_ms", "25".to_string())]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let mut secrets = GrantedSecrets::default();
        secrets.insert("maas-api-key", fake_maas::API_KEY);
        for (k, v) in settings {
            match k.strip_prefix("secret:") {
                Some(name) => secrets.insert(name, *v),
                None => {
                    all.insert(k.to_string(), v.to_string());
                }
            }
        }
        let config = Arc::new(DriverConfig {
            settings: all,
            secrets,
            egress: vec![fake.egress().parse::<EgressGrant>().unwrap()].into(),
            ..DriverConfig::default()
        });
        Env {
            fake,
            rt,
            driver,
            config,
            services: Arc::new(MemoryServices::new()),
        }
    }

    async fn call(
        &self,
        action: Action,
        node: Option<&Node>,
        params: &ActionParams,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        self.rt
            .call(
                &self.driver,
                CallRequest {
                    action,
                    node,
                    params,
                    config: self.config.clone(),
                    services: self.services.clone(),
                    timeout: Some(timeout),
                    task: Some("maas-test".into()),
                },
            )
            .await
    }

    async fn run(&self, action: Action, node: Option<&Node>) -> Result<Value, CallError> {
        self.call(action, node, &params(), Duration::from_secs(20))
            .await
    }

    async fn ok(&self, action: Action, node: Option<&Node>) -> Value {
        self.run(action, node)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"))
    }

    /// Request lines that change something, from request `from` on.
    fn writes_since(&self, from: usize) -> Vec<String> {
        self.fake.lines()[from..]
            .iter()
            .filter(|l| !l.starts_with("GET "))
            .cloned()
            .collect()
    }

    /// Enlists a machine with three NICs (MACs unique to it) and identifies
    /// it as node `name`.
    async fn enlisted(&self, name: &str) -> (Node, String) {
        let k = self.fake.with_state(|st| st.machines.len()) + 1;
        let mac = format!("52:54:00:00:00:{k:02x}");
        let mut new = NewMachine::new(&format!("enlisted-{k}"), &mac);
        new.extra_nics = vec![
            ("eth1".into(), format!("52:54:00:00:{k:02x}:01")),
            ("eth2".into(), format!("52:54:00:00:{k:02x}:02")),
        ];
        let id = self.fake.enlist(new);
        let mut n = node(name);
        n.boot_mac = Some(mac);
        self.ok(Action::IdentifyNode, Some(&n)).await;
        (n, id)
    }

    fn status_of(&self, id: &str) -> u8 {
        self.fake.with_state(|st| st.machines[id].status)
    }

    fn set_status(&self, id: &str, status: u8) {
        self.fake
            .with_state(|st| st.machines.get_mut(id).unwrap().status = status);
    }
}

fn params() -> ActionParams {
    ActionParams {
        site: Some(site()),
        ..ActionParams::default()
    }
}

fn driver_error(result: Result<Value, CallError>) -> drydock::drivers::DriverError {
    match result {
        Err(CallError::Driver { error, .. }) => error,
        other => panic!("expected a driver error, got {other:?}"),
    }
}

fn site() -> SiteNetworks {
    let route = |subnet: &str, gateway: &str, metric| Route {
        subnet: subnet.into(),
        gateway: gateway.into(),
        metric,
    };
    let range = |kind: &str, start: &str, end: &str| IpRange {
        kind: kind.into(),
        start: start.into(),
        end: end.into(),
    };
    SiteNetworks {
        links: vec![
            NetworkLink {
                name: "pxe-link".into(),
                mtu: 1500,
                native_network: Some("pxe".into()),
                allowed_networks: vec!["pxe".into()],
                ..NetworkLink::default()
            },
            NetworkLink {
                name: "data-link".into(),
                mtu: 9000,
                bonding_mode: Some("802.3ad".into()),
                trunk_mode: Some("802.1q".into()),
                native_network: None,
                allowed_networks: vec!["mgmt".into(), "storage".into()],
            },
        ],
        networks: vec![
            Network {
                name: "pxe".into(),
                cidr: "10.0.0.0/24".into(),
                vlan: None,
                mtu: 1500,
                routes: vec![route("0.0.0.0/0", "10.0.0.1", 10)],
                ranges: vec![
                    range("reserved", "10.0.0.1", "10.0.0.10"),
                    range("dhcp", "10.0.0.100", "10.0.0.200"),
                    range("static", "10.0.0.11", "10.0.0.99"),
                ],
                dns_servers: vec!["10.0.0.2".into()],
                dns_domain: None,
            },
            Network {
                name: "mgmt".into(),
                cidr: "10.1.0.0/24".into(),
                vlan: Some(100),
                mtu: 9000,
                routes: vec![route("10.2.0.0/24", "10.1.0.254", 100)],
                ..Network::default()
            },
            Network {
                name: "storage".into(),
                cidr: "10.2.0.0/24".into(),
                vlan: Some(200),
                mtu: 9000,
                ..Network::default()
            },
        ],
    }
}

fn fs(mountpoint: &str, fstype: &str) -> Option<Filesystem> {
    Some(Filesystem {
        mountpoint: Some(mountpoint.into()),
        fstype: fstype.into(),
        mount_options: None,
    })
}

fn node(name: &str) -> Node {
    let part = |name: &str, size: &str| Partition {
        name: name.into(),
        size: size.into(),
        ..Partition::default()
    };
    let lv = |name: &str, size: &str, mp: &str| LogicalVolume {
        name: name.into(),
        size: size.into(),
        filesystem: fs(mp, "ext4"),
    };
    Node {
        name: name.into(),
        oob: Oob {
            oob_type: "ipmi".into(),
            address: Some("10.23.0.5".into()),
            ..Oob::default()
        },
        boot_mac: Some(MAC0.into()),
        domain: Some("site.example".into()),
        interfaces: vec![
            Interface {
                name: "pxe".into(),
                device_link: Some("pxe-link".into()),
                slaves: vec!["eth0".into()],
                networks: vec!["pxe".into()],
                addresses: vec![Address {
                    network: "pxe".into(),
                    address: None,
                }],
                ..Interface::default()
            },
            Interface {
                name: "bond0".into(),
                device_link: Some("data-link".into()),
                slaves: vec!["eth1".into(), "eth2".into()],
                networks: vec!["mgmt".into(), "storage".into()],
                addresses: vec![
                    Address {
                        network: "mgmt".into(),
                        address: Some("10.1.0.20".into()),
                    },
                    Address {
                        network: "storage".into(),
                        address: Some("10.2.0.20".into()),
                    },
                ],
                ..Interface::default()
            },
        ],
        platform: Platform {
            image: Some("jammy".into()),
            kernel: Some("hwe-22.04".into()),
            kernel_params: [("console", "ttyS0,115200"), ("nomodeset", "")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        storage: Storage {
            layout: None,
            physical_devices: vec![
                PhysicalDevice {
                    name: "sda".into(),
                    partition_table: Some("gpt".into()),
                    volume_group: None,
                    partitions: vec![
                        Partition {
                            bootable: true,
                            filesystem: fs("/boot", "ext4"),
                            ..part("boot", "1g")
                        },
                        Partition {
                            filesystem: fs("/", "ext4"),
                            ..part("root", "20g")
                        },
                        Partition {
                            volume_group: Some("data".into()),
                            ..part("pv", ">100g")
                        },
                        Partition {
                            filesystem: fs("/srv", "xfs"),
                            ..part("srv", "5%")
                        },
                    ],
                },
                PhysicalDevice {
                    name: "sdb".into(),
                    volume_group: Some("data".into()),
                    ..PhysicalDevice::default()
                },
            ],
            volume_groups: vec![VolumeGroup {
                name: "data".into(),
                logical_volumes: vec![
                    lv("log", "10g", "/var/log"),
                    lv("var", "50%", "/var"),
                    lv("images", ">1g", "/var/lib/images"),
                ],
            }],
        },
        tags: vec!["compute".into(), "rack1".into()],
        ..Node::default()
    }
}

#[tokio::test]
async fn validate_node_services_checks_version_key_images_and_racks() {
    let env = Env::new().await;
    env.ok(Action::ValidateNodeServices, None).await;
    let lines = env.fake.lines();
    for want in [
        "GET /MAAS/api/2.0/version/",
        "GET /MAAS/api/2.0/users/?op=whoami",
        "GET /MAAS/api/2.0/boot-resources/",
        "GET /MAAS/api/2.0/rackcontrollers/",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want} not in {lines:?}");
    }

    // A rack whose TFTP died is not healthy.
    env.fake.with_state(|st| {
        st.racks[0].services.insert("tftp".into(), "dead".into());
    });
    let e = driver_error(env.run(Action::ValidateNodeServices, None).await);
    assert_eq!(e.kind, DriverErrorKind::Failed);
    assert!(e.message.contains("rack-1: tftp dead"), "{}", e.message);
    env.fake.with_state(|st| {
        st.racks[0].services.insert("tftp".into(), "running".into());
    });

    // No images: still importing is retryable; none at all is not.
    env.fake.with_state(|st| {
        st.boot_resources.clear();
        st.importing = true;
    });
    let e = driver_error(env.run(Action::ValidateNodeServices, None).await);
    assert_eq!(e.kind, DriverErrorKind::Busy, "{}", e.message);
    env.fake.with_state(|st| st.importing = false);
    let e = driver_error(env.run(Action::ValidateNodeServices, None).await);
    assert_eq!(e.kind, DriverErrorKind::Failed);
    assert!(e.message.contains("no boot images"), "{}", e.message);
}

#[tokio::test]
async fn requests_are_signed_with_oauth_plaintext_and_a_wrong_key_is_auth() {
    let env = Env::new().await;
    env.ok(Action::AvailableImages, None).await;
    assert!(env.fake.requests().iter().all(|r| r.status == 200));

    let bad = Env::with(
        Duration::from_millis(10),
        &[("secret:maas-api-key", "fakeconsumer:faketoken:wrongsecret")],
    )
    .await;
    let e = driver_error(bad.run(Action::ValidateNodeServices, None).await);
    assert_eq!(e.kind, DriverErrorKind::Auth);
    assert!(e.message.contains("HTTP 401"), "{}", e.message);
    assert!(e.message.contains("Invalid signature"), "{}", e.message);
    assert!(
        e.message
            .contains("answered HTTP 401 to GET users/?op=whoami"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("wrongsecret"), "{}", e.message);

    let malformed = Env::with(
        Duration::from_millis(10),
        &[("secret:maas-api-key", "just-a-token")],
    )
    .await;
    let e = driver_error(malformed.run(Action::AvailableImages, None).await);
    assert_eq!(e.kind, DriverErrorKind::InvalidInput);
    assert!(e.message.contains("`maas-api-key`"), "{}", e.message);
    assert!(!e.message.contains("just-a-token"), "{}", e.message);

    // The secret's name is a setting; an ungranted secret is named.
    let renamed = Env::with(
        Duration::from_millis(10),
        &[
            ("api_key_secret", "region-1-key"),
            ("secret:region-1-key", fake_maas::API_KEY),
        ],
    )
    .await;
    renamed.ok(Action::ValidateNodeServices, None).await;
    let missing = Env::with(Duration::from_millis(10), &[("api_key_secret", "nope")]).await;
    let e = driver_error(missing.run(Action::AvailableImages, None).await);
    assert_eq!(e.kind, DriverErrorKind::InvalidInput);
    assert!(e.message.contains("secret `nope`"), "{}", e.message);
}

#[tokio::test]
async fn injected_401_is_auth_and_not_retried() {
    let env = Env::new().await;
    env.fake.fail_next(Some("boot-resources"), 401, 1);
    let e = driver_error(env.run(Action::AvailableImages, None).await);
    assert_eq!(e.kind, DriverErrorKind::Auth);
    assert!(!e.kind.is_retryable());
    assert_eq!(
        env.fake
            .lines()
            .iter()
            .filter(|l| l.contains("boot-resources"))
            .count(),
        1
    );
}

#[tokio::test]
async fn busy_409_is_retryable_busy() {
    let env = Env::new().await;
    env.fake
        .fail_next(Some("POST /MAAS/api/2.0/sshkeys/"), 409, 1);
    let mut p = params();
    p.ssh_keys = vec![
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f a@b"
            .into(),
    ];
    let e = driver_error(
        env.call(
            Action::ConfigureUserCredentials,
            None,
            &p,
            Duration::from_secs(10),
        )
        .await,
    );
    assert_eq!(e.kind, DriverErrorKind::Busy);
    assert!(e.kind.is_retryable());
    assert!(e.message.contains("409"), "{}", e.message);
}

#[tokio::test]
async fn three_503s_then_success_is_retried_within_the_call() {
    let env = Env::new().await;
    env.fake
        .fail_next(Some("GET /MAAS/api/2.0/boot-resources/"), 503, 3);
    let images = env.ok(Action::AvailableImages, None).await;
    assert_eq!(images, json!(["jammy", "noble"]));
    let statuses: Vec<u16> = env.fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 503, 200]);

    // A region that keeps failing: bounded retries, then busy.
    env.fake.fail_next(None, 503, 1000);
    let e = driver_error(env.run(Action::AvailableImages, None).await);
    assert_eq!(e.kind, DriverErrorKind::Busy);
    let failed = env
        .fake
        .requests()
        .iter()
        .filter(|r| r.status == 503)
        .count();
    assert_eq!(failed, 3 + 6, "six attempts per request");
}

#[tokio::test]
async fn create_network_template_builds_the_site_once() {
    let env = Env::new().await;
    env.ok(Action::CreateNetworkTemplate, None).await;
    env.fake.with_state(|st| {
        let fabric = |name: &str| *st.fabrics.iter().find(|(_, n)| *n == name).unwrap().0;
        let (pxe, data) = (fabric("pxe-link"), fabric("data-link"));
        let vlan = |f: i64, vid: i64| {
            st.vlans
                .iter()
                .find(|v| v.fabric == f && v.vid == vid)
                .unwrap()
        };
        assert_eq!(vlan(data, 0).mtu, 9000);
        assert_eq!(vlan(data, 100).mtu, 9000);
        assert_eq!(vlan(data, 100).name, "mgmt");
        assert_eq!(vlan(data, 200).mtu, 9000);
        assert!(vlan(pxe, 0).dhcp_on);
        assert_eq!(vlan(pxe, 0).primary_rack.as_deref(), Some("rack01"));
        assert!(!vlan(data, 100).dhcp_on);
        let subnet = |cidr: &str| st.subnets.iter().find(|s| s.cidr == cidr).unwrap();
        assert_eq!(subnet("10.0.0.0/24").vlan, vlan(pxe, 0).id);
        assert_eq!(
            subnet("10.0.0.0/24").gateway_ip.as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(subnet("10.0.0.0/24").dns_servers, vec!["10.0.0.2"]);
        assert_eq!(subnet("10.1.0.0/24").vlan, vlan(data, 100).id);
        assert_eq!(subnet("10.2.0.0/24").vlan, vlan(data, 200).id);
        let ranges: Vec<(&str, &str)> = st
            .ipranges
            .iter()
            .map(|r| (r.kind.as_str(), r.start.as_str()))
            .collect();
        assert_eq!(
            ranges,
            vec![("reserved", "10.0.0.1"), ("dynamic", "10.0.0.100")]
        );
        assert_eq!(st.static_routes.len(), 1);
        let r = &st.static_routes[0];
        assert_eq!(
            (r.source, r.destination),
            (subnet("10.1.0.0/24").id, subnet("10.2.0.0/24").id)
        );
        assert_eq!((r.gateway_ip.as_str(), r.metric), ("10.1.0.254", 100));
    });

    // Again: nothing to change.
    let before = env.fake.lines().len();
    env.ok(Action::CreateNetworkTemplate, None).await;
    assert_eq!(env.writes_since(before), Vec::<String>::new());

    // A changed MTU and a new route are applied, nothing else.
    let mut p = params();
    let s = p.site.as_mut().unwrap();
    s.links[1].mtu = 9100;
    s.networks[1].routes[0].metric = 50;
    let before = env.fake.lines().len();
    env.call(
        Action::CreateNetworkTemplate,
        None,
        &p,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let writes = env.writes_since(before);
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(
        writes[0].starts_with("PUT /MAAS/api/2.0/fabrics/"),
        "{writes:?}"
    );
    assert!(
        writes[1].starts_with("PUT /MAAS/api/2.0/static-routes/"),
        "{writes:?}"
    );
}

#[tokio::test]
async fn ssh_keys_and_repositories_are_added_once() {
    let env = Env::new().await;
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops@site";
    let mut p = params();
    p.ssh_keys = vec![key.into()];
    p.repositories = vec![Repository {
        name: "docker".into(),
        url: "https://download.docker.com/linux/ubuntu".into(),
        distributions: vec!["jammy".into()],
        components: vec!["stable".into()],
        gpg_key: Some(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\nxyz\n-----END PGP PUBLIC KEY BLOCK-----".into(),
        ),
    }];
    let t = Duration::from_secs(10);
    for _ in 0..2 {
        env.call(Action::ConfigureUserCredentials, None, &p, t)
            .await
            .unwrap();
        env.call(Action::ConfigureNodeProvisioner, None, &p, t)
            .await
            .unwrap();
    }
    let writes = env.writes_since(0);
    assert_eq!(
        writes,
        vec![
            "POST /MAAS/api/2.0/sshkeys/",
            "POST /MAAS/api/2.0/package-repositories/"
        ]
    );
    env.fake.with_state(|st| {
        assert_eq!(st.sshkeys.len(), 1);
        let r = &st.repositories[0];
        assert_eq!(
            (r.distributions.clone(), r.components.clone()),
            (vec!["jammy".into()], vec!["stable".into()])
        );
        assert!(r.key.contains("PGP"));
    });

    // A changed repository is updated in place.
    p.repositories[0].components = vec!["stable".into(), "test".into()];
    env.call(Action::ConfigureNodeProvisioner, None, &p, t)
        .await
        .unwrap();
    assert!(
        env.writes_since(0)
            .last()
            .unwrap()
            .starts_with("PUT /MAAS/api/2.0/package-repositories/")
    );
    env.fake
        .with_state(|st| assert_eq!(st.repositories[0].components, vec!["stable", "test"]));

    // MAAS refuses a malformed key: invalid input, with MAAS's words.
    p.ssh_keys = vec!["not a key".into()];
    let e = driver_error(
        env.call(Action::ConfigureUserCredentials, None, &p, t)
            .await,
    );
    assert_eq!(e.kind, DriverErrorKind::InvalidInput);
    assert!(
        e.message.contains("Invalid SSH public key"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn identify_node_by_hostname_bmc_or_mac_and_names_it() {
    let env = Env::new().await;
    let n = node("node-a");

    // Not enlisted yet: retryable, naming what was looked for.
    let e = driver_error(env.run(Action::IdentifyNode, Some(&n)).await);
    assert_eq!(e.kind, DriverErrorKind::Busy);
    assert!(
        e.message.contains("10.23.0.5") && e.message.contains(MAC0),
        "{}",
        e.message
    );

    // By boot MAC: renamed and moved to the node's domain.
    let id = env.fake.enlist(NewMachine::new("quiet-cat", MAC0));
    let got = env.ok(Action::IdentifyNode, Some(&n)).await;
    assert_eq!(got, json!({"id": id, "status": "New"}));
    let m = env.fake.machine(&id).unwrap();
    assert_eq!(m["hostname"], "node-a");
    assert_eq!(m["domain"]["name"], "site.example");
    assert_eq!(m["fqdn"], "node-a.site.example");

    // Again: found by name, nothing changes.
    let before = env.fake.lines().len();
    env.ok(Action::IdentifyNode, Some(&n)).await;
    assert_eq!(env.writes_since(before), Vec::<String>::new());

    // By BMC address (power parameters), on a fresh driver store.
    let mut bmc = NewMachine::new("brave-dog", "52:54:00:00:00:99");
    bmc.bmc = Some("10.23.0.6:623".into());
    let id_b = env.fake.enlist(bmc);
    let mut b = node("node-b");
    b.oob.address = Some("10.23.0.6".into());
    b.boot_mac = None;
    let got = env.ok(Action::IdentifyNode, Some(&b)).await;
    assert_eq!(got["id"], id_b);
    assert!(
        env.fake
            .lines()
            .iter()
            .any(|l| l.ends_with("machines/?op=power_parameters"))
    );
    assert_eq!(env.fake.machine(&id_b).unwrap()["hostname"], "node-b");
}

#[tokio::test]
async fn configure_hardware_commissions_to_ready_and_stores_details() {
    let env = Env::new().await;
    let (n, id) = env.enlisted("node-a").await;
    env.ok(Action::ConfigureHardware, Some(&n)).await;
    assert_eq!(env.status_of(&id), status::READY);
    let data = env.services.build_data();
    let lshw = data
        .iter()
        .find(|d| d.generator == "lshw")
        .expect("lshw build data");
    assert!(lshw.content.contains("Fake Server"), "{}", lshw.content);
    assert!(data.iter().any(|d| d.generator == "lldp"));
    let messages: Vec<String> = env
        .services
        .messages()
        .into_iter()
        .map(|m| m.message)
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("Commissioning")),
        "{messages:?}"
    );

    // Ready already: no second commissioning, no second copy of the details.
    env.ok(Action::ConfigureHardware, Some(&n)).await;
    assert_eq!(
        env.fake.with_state(|st| st.machines[&id].ops["commission"]),
        1
    );
    assert_eq!(env.services.build_data().len(), 2);

    // A failed commissioning is recommissioned, and its details stored.
    env.set_status(&id, status::FAILED_COMMISSIONING);
    env.ok(Action::ConfigureHardware, Some(&n)).await;
    assert_eq!(
        env.fake.with_state(|st| st.machines[&id].ops["commission"]),
        2
    );
    assert_eq!(env.services.build_data().len(), 4);
}

#[tokio::test]
async fn commissioning_failure_and_stuck_commissioning_carry_the_reason() {
    let env = Env::new().await;
    let (n, id) = env.enlisted("node-a").await;
    env.fake.with_state(|st| {
        st.machines.get_mut(&id).unwrap().fail_commissioning =
            Some("Failed to run 00-maas-01-lshw: exit status 1".into());
    });
    let e = driver_error(env.run(Action::ConfigureHardware, Some(&n)).await);
    assert_eq!(e.kind, DriverErrorKind::Failed);
    assert!(e.message.contains("Failed commissioning"), "{}", e.message);
    assert!(
        e.message.contains("00-maas-01-lshw: exit status 1"),
        "{}",
        e.message
    );

    env.fake.with_state(|st| {
        let m = st.machines.get_mut(&id).unwrap();
        m.fail_commissioning = None;
        m.stuck_commissioning = Some("Running 50-maas-01-commissioning (waiting for node)".into());
    });
    let e = driver_error(
        env.call(
            Action::ConfigureHardware,
            Some(&n),
            &params(),
            Duration::from_secs(2),
        )
        .await,
    );
    assert_eq!(e.kind, DriverErrorKind::Timeout, "{}", e.message);
    assert!(e.message.contains("still Commissioning"), "{}", e.message);
    assert!(e.message.contains("waiting for node"), "{}", e.message);
    assert_eq!(env.status_of(&id), status::COMMISSIONING);

    // Still commissioning on the retry: the driver waits, it does not
    // commission again.
    let e = driver_error(
        env.call(
            Action::ConfigureHardware,
            Some(&n),
            &params(),
            Duration::from_secs(1),
        )
        .await,
    );
    assert_eq!(e.kind, DriverErrorKind::Timeout);
    assert_eq!(
        env.fake.with_state(|st| st.machines[&id].ops["commission"]),
        2
    );
}

/// A node enlisted, identified, commissioned, on a site with networks.
async fn ready(env: &Env, name: &str) -> (Node, String) {
    env.ok(Action::CreateNetworkTemplate, None).await;
    let (n, id) = env.enlisted(name).await;
    env.ok(Action::ConfigureHardware, Some(&n)).await;
    (n, id)
}

#[tokio::test]
async fn apply_node_networking_builds_bonds_vlans_and_links() {
    let env = Env::new().await;
    let (n, id) = ready(&env, "node-a").await;
    env.ok(Action::ApplyNodeNetworking, Some(&n)).await;
    let m = env.fake.machine(&id).unwrap();
    let ifaces = m["interface_set"].as_array().unwrap();
    let by_name = |name: &str| {
        ifaces
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {ifaces:#?}"))
    };
    let bond = by_name("bond0");
    assert_eq!(bond["type"], "bond");
    assert_eq!(bond["parents"], json!(["eth1", "eth2"]));
    assert_eq!(bond["params"]["bond_mode"], "802.3ad");
    assert_eq!(bond["params"]["mtu"], 9000);
    assert_eq!(bond["vlan"]["fabric"], "data-link");
    assert_eq!(bond["vlan"]["vid"], 0);
    let links = |name: &str| -> Vec<(String, String, Value)> {
        by_name(name)["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["mode"].as_str().unwrap().to_string(),
                    l["subnet"]["cidr"].as_str().unwrap().to_string(),
                    l["ip_address"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        links("eth0"),
        vec![("dhcp".into(), "10.0.0.0/24".into(), Value::Null)]
    );
    assert_eq!(
        links("bond0.100"),
        vec![("static".into(), "10.1.0.0/24".into(), json!("10.1.0.20"))]
    );
    assert_eq!(
        links("bond0.200"),
        vec![("static".into(), "10.2.0.0/24".into(), json!("10.2.0.20"))]
    );
    assert_eq!(by_name("eth0")["vlan"]["fabric"], "pxe-link");

    // Again: nothing changes.
    let before = env.fake.lines().len();
    env.ok(Action::ApplyNodeNetworking, Some(&n)).await;
    assert_eq!(env.writes_since(before), Vec::<String>::new());

    // A link the design does not have is removed.
    env.fake.with_state(|st| {
        let storage = st
            .subnets
            .iter()
            .find(|s| s.cidr == "10.2.0.0/24")
            .unwrap()
            .id;
        let m = st.machines.get_mut(&id).unwrap();
        let eth0 = m.interfaces.iter_mut().find(|i| i.name == "eth0").unwrap();
        eth0.links.push(fake_maas::state::Link {
            id: 9999,
            mode: "auto".into(),
            subnet: storage,
            ip: None,
        });
    });
    env.ok(Action::ApplyNodeNetworking, Some(&n)).await;
    let m = env.fake.machine(&id).unwrap();
    let eth0 = m["interface_set"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .unwrap()
        .clone();
    let modes: Vec<(&str, &str)> = eth0["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let cidr = l["subnet"]["cidr"].as_str().unwrap();
            (l["mode"].as_str().unwrap(), cidr)
        })
        .collect();
    assert_eq!(modes, vec![("dhcp", "10.0.0.0/24")]);

    // A changed address replaces the link.
    let mut moved = n.clone();
    moved.interfaces[1].addresses[0].address = Some("10.1.0.21".into());
    env.ok(Action::ApplyNodeNetworking, Some(&moved)).await;
    let m = env.fake.machine(&id).unwrap();
    let vlan100 = m["interface_set"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "bond0.100")
        .unwrap()
        .clone();
    assert_eq!(vlan100["links"].as_array().unwrap().len(), 1);
    assert_eq!(vlan100["links"][0]["ip_address"], "10.1.0.21");

    // An interface the machine does not have.
    let mut bad = n.clone();
    bad.interfaces[0].slaves = vec!["eth9".into()];
    let e = driver_error(env.run(Action::ApplyNodeNetworking, Some(&bad)).await);
    assert_eq!(e.kind, DriverErrorKind::InvalidInput);
    assert!(e.message.contains("eth9"), "{}", e.message);
}

#[tokio::test]
async fn apply_node_storage_lays_out_partitions_volume_groups_and_volumes() {
    let env = Env::new().await;
    let (n, id) = ready(&env, "node-a").await;
    env.ok(Action::ApplyNodeStorage, Some(&n)).await;
    let layout = |env: &Env| {
        let m = env.fake.machine(&id).unwrap();
        let mut out = Vec::new();
        for bd in m["blockdevice_set"].as_array().unwrap() {
            for p in bd["partitions"].as_array().unwrap() {
                out.push((
                    bd["name"].as_str().unwrap().to_string(),
                    p["size"].as_u64().unwrap(),
                    p["filesystem"]["mount_point"].clone(),
                    p["used_for"].clone(),
                ));
            }
            if bd["type"] == "virtual" {
                out.push((
                    bd["name"].as_str().unwrap().to_string(),
                    bd["size"].as_u64().unwrap(),
                    bd["filesystem"]["mount_point"].clone(),
                    Value::Null,
                ));
            }
        }
        (out, m["boot_disk"]["name"].clone())
    };
    let (parts, boot) = layout(&env);
    assert_eq!(boot, "sda");
    let gb = 1_000_000_000u64;
    let align = |b: u64| b / (4 << 20) * (4 << 20);
    let sda = 500 * gb;
    let names: Vec<(&str, Value)> = parts
        .iter()
        .map(|(d, _, mp, _)| (d.as_str(), mp.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("sda", json!("/boot")),
            ("sda", json!("/")),
            ("sda", Value::Null),
            ("sda", json!("/srv")),
            ("data-log", json!("/var/log")),
            ("data-var", json!("/var")),
            ("data-images", json!("/var/lib/images")),
        ]
    );
    assert_eq!(parts[0].1, align(gb));
    assert_eq!(parts[1].1, align(20 * gb));
    assert_eq!(parts[3].1, align(sda / 20));
    assert_eq!(parts[2].3, "LVM volume");
    // The growing partition took what the fixed ones left.
    let used: u64 = parts[..4].iter().map(|p| p.1).sum();
    assert!(
        sda - used < 20 << 20,
        "{} bytes left unused on sda",
        sda - used
    );
    // Volume group: the grown partition plus all of sdb.
    let vg = env
        .fake
        .with_state(|st| st.machines[&id].volume_groups[0].clone());
    assert_eq!(vg.size, parts[2].1 + 1000 * gb);
    assert_eq!(parts[4].1, align(10 * gb));
    assert_eq!(parts[5].1, align(vg.size / 2));
    assert!(vg.size - parts[4].1 - parts[5].1 - parts[6].1 < 4 << 20);

    // Applying again gives the same layout.
    env.ok(Action::ApplyNodeStorage, Some(&n)).await;
    let (again, _) = layout(&env);
    let sizes = |v: &[(String, u64, Value, Value)]| {
        v.iter().map(|p| (p.0.clone(), p.1)).collect::<Vec<_>>()
    };
    assert_eq!(sizes(&again), sizes(&parts));

    // A size that does not fit, and one that does not parse.
    let mut big = n.clone();
    big.storage.physical_devices[0].partitions[1].size = "900g".into();
    let e = driver_error(env.run(Action::ApplyNodeStorage, Some(&big)).await);
    assert_eq!(e.kind, DriverErrorKind::InvalidInput);
    assert!(e.message.contains("does not fit on sda"), "{}", e.message);
    // Sizes are parsed on the host (WIT 0.2.0): the call fails before MAAS.
    big.storage.physical_devices[0].partitions[1].size = "20 parsecs".into();
    match env.run(Action::ApplyNodeStorage, Some(&big)).await {
        Err(CallError::InvalidRequest { reason, .. }) => {
            assert!(reason.contains("20 parsecs"), "{reason}")
        }
        other => panic!("expected an invalid request, got {other:?}"),
    }

    // Only a layout: MAAS's own.
    let mut lvm = n.clone();
    lvm.storage = Storage {
        layout: Some("lvm".into()),
        ..Storage::default()
    };
    env.ok(Action::ApplyNodeStorage, Some(&lvm)).await;
    let vgs = env
        .fake
        .with_state(|st| st.machines[&id].volume_groups.clone());
    assert_eq!(vgs.len(), 1);
    assert_eq!(vgs[0].name, "vgroot");
}

#[tokio::test]
async fn apply_node_platform_sets_kernel_options_and_tags() {
    let env = Env::new().await;
    let (n, id) = ready(&env, "node-a").await;
    env.ok(Action::ApplyNodePlatform, Some(&n)).await;
    let m = env.fake.machine(&id).unwrap();
    assert_eq!(m["tag_names"], json!(["compute", "node-a_kp", "rack1"]));
    let kp = env
        .fake
        .with_state(|st| st.tags["node-a_kp"].kernel_opts.clone());
    assert_eq!(kp, "console=ttyS0,115200 nomodeset");

    let before = env.fake.lines().len();
    env.ok(Action::ApplyNodePlatform, Some(&n)).await;
    assert_eq!(env.writes_since(before), Vec::<String>::new());

    let mut changed = n.clone();
    changed
        .platform
        .kernel_params
        .insert("hugepages".into(), "64".into());
    env.ok(Action::ApplyNodePlatform, Some(&changed)).await;
    let kp = env
        .fake
        .with_state(|st| st.tags["node-a_kp"].kernel_opts.clone());
    assert_eq!(kp, "console=ttyS0,115200 hugepages=64 nomodeset");
}

#[tokio::test]
async fn deploy_node_allocates_and_deploys_with_image_kernel_and_user_data() {
    let env = Env::new().await;
    let (n, id) = ready(&env, "node-a").await;
    let mut p = params();
    p.user_data = Some("#cloud-config\nruncmd: [echo hi]\n".into());
    env.call(Action::DeployNode, Some(&n), &p, Duration::from_secs(20))
        .await
        .unwrap();
    let m = env.fake.with_state(|st| st.machines[&id].clone());
    assert_eq!(m.status, status::DEPLOYED);
    assert_eq!(m.distro_series, "jammy");
    assert_eq!(m.hwe_kernel.as_deref(), Some("hwe-22.04"));
    assert_eq!(
        m.user_data.as_deref(),
        Some(&b"#cloud-config\nruncmd: [echo hi]\n"[..])
    );
    assert_eq!(m.owner.as_deref(), Some("admin"));
    let deploy = env
        .fake
        .requests()
        .into_iter()
        .find(|r| r.line.ends_with("?op=deploy"))
        .unwrap();
    let sent = deploy
        .params
        .iter()
        .find(|(k, _)| k == "user_data")
        .unwrap();
    assert_eq!(sent.1, "I2Nsb3VkLWNvbmZpZwpydW5jbWQ6IFtlY2hvIGhpXQo=");

    // Deployed already: nothing to do.
    let before = env.fake.lines().len();
    env.ok(Action::DeployNode, Some(&n)).await;
    assert_eq!(env.writes_since(before), Vec::<String>::new());

    // MAAS refuses a kernel it does not have: invalid input.
    let (mut other, _) = env.enlisted("node-b").await;
    env.ok(Action::ConfigureHardware, Some(&other)).await;
    other.platform.kernel = Some("hwe-99.04".into());
    let e = driver_error(env.run(Action::DeployNode, Some(&other)).await);
    assert_eq!(e.kind, DriverErrorKind::InvalidInput);
    assert!(e.message.contains("hwe-99.04"), "{}", e.message);
}

#[tokio::test]
async fn deployment_failure_carries_the_reason() {
    let env = Env::new().await;
    let (n, id) = ready(&env, "node-a").await;
    env.fake.with_state(|st| {
        st.machines.get_mut(&id).unwrap().fail_deployment =
            Some("Installation failed (curtin: disk sda not found)".into());
    });
    let e = driver_error(env.run(Action::DeployNode, Some(&n)).await);
    assert_eq!(e.kind, DriverErrorKind::Failed);
    assert!(e.message.contains("Failed deployment"), "{}", e.message);
    assert!(
        e.message.contains("curtin: disk sda not found"),
        "{}",
        e.message
    );

    // Drydock retries deploy_node: from Failed deployment it deploys again.
    env.fake
        .with_state(|st| st.machines.get_mut(&id).unwrap().fail_deployment = None);
    env.ok(Action::DeployNode, Some(&n)).await;
    assert_eq!(env.status_of(&id), status::DEPLOYED);
}

#[tokio::test]
async fn destroy_node_releases_with_erase_and_deletes() {
    let env = Env::new().await;
    let (n, id) = ready(&env, "node-a").await;
    env.ok(Action::DeployNode, Some(&n)).await;
    env.ok(Action::DestroyNode, Some(&n)).await;
    assert!(env.fake.machine(&id).is_none());
    let release = env
        .fake
        .requests()
        .into_iter()
        .find(|r| r.line.ends_with("?op=release"))
        .unwrap();
    let get = |k: &str| {
        release
            .params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("erase").as_deref(), Some("true"));
    assert_eq!(get("quick_erase").as_deref(), Some("true"));
    assert!(
        env.fake
            .lines()
            .iter()
            .any(|l| l == &format!("DELETE /MAAS/api/2.0/machines/{id}/"))
    );

    // Gone already: success, nothing sent but lookups.
    let before = env.fake.lines().len();
    env.ok(Action::DestroyNode, Some(&n)).await;
    assert_eq!(env.writes_since(before), Vec::<String>::new());
}

#[tokio::test]
async fn interrogate_node_and_image_catalogue() {
    let env = Env::new().await;
    let n = node("node-a");
    let none = env.ok(Action::InterrogateNode, Some(&n)).await;
    assert_eq!(none["identity"], Value::Null);
    let (n, id) = env.enlisted("node-a").await;
    let got = env.ok(Action::InterrogateNode, Some(&n)).await;
    assert_eq!(got["identity"], json!({"id": id, "status": "New"}));
    assert_eq!(got["raw"]["hostname"], "node-a");
    assert_eq!(got["raw"]["interface_set"].as_array().unwrap().len(), 3);

    assert_eq!(
        env.ok(Action::AvailableImages, None).await,
        json!(["jammy", "noble"])
    );
    let mut p = params();
    p.image = Some("jammy".into());
    let kernels = env
        .call(Action::AvailableKernels, None, &p, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(kernels, json!(["ga-22.04", "hwe-22.04"]));
    p.image = Some("bionic".into());
    let e = driver_error(
        env.call(Action::AvailableKernels, None, &p, Duration::from_secs(5))
            .await,
    );
    assert_eq!(e.kind, DriverErrorKind::InvalidInput);
}

#[tokio::test]
async fn site_wide_no_ops_succeed() {
    let env = Env::new().await;
    let n = node("node-a");
    env.ok(Action::CreateStorageTemplate, None).await;
    env.ok(Action::CreateBootMedia, Some(&n)).await;
    env.ok(Action::PrepareHardwareConfig, Some(&n)).await;
    assert!(env.fake.lines().is_empty());
}

#[tokio::test]
async fn a_node_from_enlistment_to_deletion() {
    let env = Env::new().await;
    env.ok(Action::ValidateNodeServices, None).await;
    env.ok(Action::CreateNetworkTemplate, None).await;
    let mut new = NewMachine::new("enlisted-7", MAC0);
    new.extra_nics = vec![
        ("eth1".into(), "52:54:00:00:01:01".into()),
        ("eth2".into(), "52:54:00:00:01:02".into()),
    ];
    let id = env.fake.enlist(new);
    let n = node("node-a");
    let start = std::time::Instant::now();
    for action in [
        Action::IdentifyNode,
        Action::ConfigureHardware,
        Action::ApplyNodeNetworking,
        Action::ApplyNodeStorage,
        Action::ApplyNodePlatform,
        Action::DeployNode,
    ] {
        env.ok(action, Some(&n)).await;
    }
    let m = env.fake.machine(&id).unwrap();
    assert_eq!(m["status_name"], "Deployed");
    assert_eq!(m["hostname"], "node-a");
    assert_eq!(m["distro_series"], "jammy");
    assert!(
        m["tag_names"]
            .as_array()
            .unwrap()
            .contains(&json!("node-a_kp"))
    );
    // Networking and storage are left alone on a deployed node.
    let before = env.fake.lines().len();
    env.ok(Action::ApplyNodeNetworking, Some(&n)).await;
    env.ok(Action::ApplyNodeStorage, Some(&n)).await;
    assert_eq!(env.writes_since(before), Vec::<String>::new());
    env.ok(Action::DestroyNode, Some(&n)).await;
    assert!(env.fake.machine(&id).is_none());
    eprintln!(
        "lifecycle: {} requests in {:?}",
        env.fake.lines().len(),
        start.elapsed()
    );

    // No message carries the key's secret.
    for m in env.services.messages() {
        assert!(!m.message.contains("fakesecret"), "{}", m.message);
    }
}

/// Sends one raw HTTP/1.1 request to the fake and returns the whole answer.
async fn raw(fake: &FakeMaas, head: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(fake.addr).await.unwrap();
    let head = format!(
        "{head}\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        fake.addr,
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body).await.unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).await.unwrap();
    answer
}

fn oauth(timestamp: u64, secret: &str) -> String {
    format!(
        "authorization: OAuth realm=\"\", oauth_nonce=\"n1\", oauth_timestamp=\"{timestamp}\", \
         oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", \
         oauth_consumer_key=\"fakeconsumer\", oauth_token=\"faketoken\", \
         oauth_signature=\"%26{secret}\""
    )
}

/// The fake reads bodies the way python-libmaas sends them: every
/// multipart part base64-encoded.
#[tokio::test]
async fn fake_accepts_libmaas_base64_multipart() {
    let fake = FakeMaas::start(Duration::from_millis(10)).await;
    let body = fake_maas::libmaas_multipart("xyzzy", &[("name", "fabric-from-libmaas")]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let head = format!(
        "POST /MAAS/api/2.0/fabrics/ HTTP/1.1\r\n{}\r\n\
         content-type: multipart/form-data; boundary=xyzzy",
        oauth(now, "fakesecret")
    );
    let answer = raw(&fake, &head, &body).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("fabric-from-libmaas"), "{answer}");
    let r = fake.requests().pop().unwrap();
    assert!(r.base64_parts);
    assert!(fake.with_state(|st| st.fabrics.values().any(|f| f == "fabric-from-libmaas")));
}

/// The fake refuses what MAAS refuses: no OAuth header, a stale timestamp,
/// a wrong signature; `version/` needs no key.
#[tokio::test]
async fn fake_checks_oauth_like_maas() {
    let fake = FakeMaas::start(Duration::from_millis(10)).await;
    let get = "GET /MAAS/api/2.0/machines/ HTTP/1.1";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let answer = raw(&fake, get, b"").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let answer = raw(
        &fake,
        &format!("{get}\r\n{}", oauth(now - 3600, "fakesecret")),
        b"",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 401") && answer.contains("Expired timestamp"),
        "{answer}"
    );
    let answer = raw(&fake, &format!("{get}\r\n{}", oauth(now, "nope")), b"").await;
    assert!(
        answer.starts_with("HTTP/1.1 401") && answer.contains("Invalid signature"),
        "{answer}"
    );
    let answer = raw(
        &fake,
        &format!("{get}\r\n{}", oauth(now, "fakesecret")),
        b"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = raw(&fake, "GET /MAAS/api/2.0/version/ HTTP/1.1", b"").await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("2.9.2"),
        "{answer}"
    );
}

/// Drydock's `bonding: disabled` and a link that is not an 802.1q trunk: a
/// plain interface, the network untagged on the link's fabric.
#[tokio::test]
async fn untrunked_link_is_untagged_and_disabled_bonding_is_no_bond() {
    let env = Env::new().await;
    let mut p = params();
    let s = p.site.as_mut().unwrap();
    s.links.push(NetworkLink {
        name: "ops-link".into(),
        mtu: 1500,
        bonding_mode: Some("disabled".into()),
        trunk_mode: None,
        native_network: None,
        allowed_networks: vec!["ops".into()],
    });
    s.networks.push(Network {
        name: "ops".into(),
        cidr: "10.3.0.0/24".into(),
        vlan: Some(300),
        mtu: 1500,
        ..Network::default()
    });
    let t = Duration::from_secs(20);
    env.call(Action::CreateNetworkTemplate, None, &p, t)
        .await
        .unwrap();
    let (mut n, id) = env.enlisted("node-a").await;
    env.ok(Action::ConfigureHardware, Some(&n)).await;
    n.interfaces = vec![Interface {
        name: "ops".into(),
        device_link: Some("ops-link".into()),
        slaves: vec!["eth1".into()],
        networks: vec!["ops".into()],
        addresses: vec![Address {
            network: "ops".into(),
            address: Some("10.3.0.9".into()),
        }],
        ..Interface::default()
    }];
    env.call(Action::ApplyNodeNetworking, Some(&n), &p, t)
        .await
        .unwrap();
    env.fake.with_state(|st| {
        let ops_fabric = *st.fabrics.iter().find(|(_, n)| *n == "ops-link").unwrap().0;
        assert!(
            !st.vlans.iter().any(|v| v.vid == 300),
            "no VLAN 300 on an access link"
        );
        let subnet = st.subnets.iter().find(|s| s.cidr == "10.3.0.0/24").unwrap();
        let vlan = st.vlans.iter().find(|v| v.id == subnet.vlan).unwrap();
        assert_eq!((vlan.fabric, vlan.vid), (ops_fabric, 0));
        let m = &st.machines[&id];
        assert!(!m.interfaces.iter().any(|i| i.kind != "physical"));
        let eth1 = m.interfaces.iter().find(|i| i.name == "eth1").unwrap();
        assert_eq!(eth1.links.len(), 1);
        assert_eq!(eth1.links[0].ip.as_deref(), Some("10.3.0.9"));
    });
}
