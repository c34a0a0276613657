//! Drydock's validation, rule by rule: every one of Drydock's 18 rules
//! passes on a design in Drydock's documented shape (`examples/airship-
//! site.yaml`) with Drydock's Info "Validation successful.", and fails on a
//! change of it with Drydock's code, level and message; schema (`DD001`)
//! and ingestion (`DD000`) errors as Drydock reports them, which stop the
//! rules as in Drydock; this project's own checks (`DDX...`) for what
//! Drydock's deploy would fail on.

use drydock::design::validate::{Level, RULES, Report, validate_report};
use drydock::design::{Design, PlatformCatalog};
use serde_json::{Value, json};
use std::path::Path;

fn examples(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(file);
    std::fs::read_to_string(path).expect("example design")
}

/// The Airship-shaped example as documents, for mutation.
fn documents() -> Vec<Value> {
    let text = examples("airship-site.yaml");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect()
}

fn doc_mut<'a>(docs: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    let schema = format!("drydock/{kind}/v1");
    docs.iter_mut()
        .find(|d| d["schema"] == schema.as_str() && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The bundled sim driver's images and kernels (`drivers/sim`).
fn sim_catalog() -> PlatformCatalog {
    let mut c = PlatformCatalog::default();
    for (image, version) in [
        ("xenial", "16.04"),
        ("bionic", "18.04"),
        ("focal", "20.04"),
        ("jammy", "22.04"),
        ("noble", "24.04"),
    ] {
        c.images.insert(
            image.into(),
            ["ga", "hwe", "hwe"]
                .iter()
                .zip(["", "", "-edge"])
                .map(|(k, edge)| format!("{k}-{version}{edge}"))
                .collect(),
        );
    }
    c
}

fn report_of(docs: &[Value]) -> Report {
    let design = Design::parse(&to_yaml(docs)).unwrap();
    validate_report(&design, Some(&sim_catalog()))
}

/// Validates the example after `mutate` and asserts a message of `rule`
/// with `code` and `level` whose message starts with `message`.
fn expect(
    rule: &str,
    code: &str,
    level: Level,
    message: &str,
    mutate: impl FnOnce(&mut Vec<Value>),
) {
    let mut docs = documents();
    mutate(&mut docs);
    let report = report_of(&docs);
    let found = report
        .findings
        .iter()
        .find(|f| f.message.starts_with(message));
    let f = found.unwrap_or_else(|| panic!("no message `{message}` in {:#?}", report.findings));
    assert_eq!((f.rule, f.code, f.level), (rule, code, level), "{f:#?}");
    if let Some(outcome) = report.rules.iter().find(|o| o.rule.name == rule) {
        assert!(outcome.ran);
        assert_eq!(outcome.passed, level != Level::Error, "{outcome:?}");
    }
}

fn error(rule: &str, code: &str, message: &str, mutate: impl FnOnce(&mut Vec<Value>)) {
    expect(rule, code, Level::Error, message, mutate)
}

#[test]
fn the_documented_design_passes_every_rule_with_drydocks_info() {
    let report = report_of(&documents());
    let not_info: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.level != Level::Info)
        .collect();
    assert!(not_info.is_empty(), "{not_info:#?}");
    assert_eq!(report.rules.len(), 18);
    for (outcome, rule) in report.rules.iter().zip(RULES) {
        assert_eq!(outcome.rule, rule);
        assert!(outcome.ran && outcome.passed, "{outcome:?}");
    }
    // One Info per rule, in Drydock's order, named by Drydock's codes.
    let infos: Vec<(&str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.code, f.message.as_str()))
        .collect();
    assert_eq!(
        infos[0],
        ("DD1001", "Rational Boot Storage: Validation successful.")
    );
    assert_eq!(
        infos[1],
        ("DD2006", "CIDR Validity: Validation successful.")
    );
    assert_eq!(
        infos[17],
        (
            "DD4002",
            "Bootaction pkg_list Validation: Validation successful."
        )
    );
    assert_eq!(infos.len(), 18);
}

#[test]
fn boot_storage_rational() {
    error(
        "BootStorageRational",
        "DD1001",
        "Rational Boot Storage: Root volume must be > 20GB on BaremetalNode controller01",
        |d| {
            doc_mut(d, "HostProfile", "defaults")["data"]["storage"]["physical_devices"]["primary_boot"]
                ["partitions"][0]["size"] = json!("10g");
        },
    );
    error(
        "BootStorageRational",
        "DD1001",
        "Rational Boot Storage: Boot volume must be > 1GB on BaremetalNode controller01",
        |d| {
            doc_mut(d, "HostProfile", "defaults")["data"]["storage"]["physical_devices"]["primary_boot"]
                ["partitions"][1]["size"] = json!("500m");
        },
    );
    // No partition named root (a node without storage included).
    error(
        "BootStorageRational",
        "DD1001",
        "Rational Boot Storage: Root volume has to be set",
        |d| {
            doc_mut(d, "HostProfile", "defaults")["data"]
                .as_object_mut()
                .unwrap()
                .remove("storage");
        },
    );
}

#[test]
fn cidr_validity() {
    error(
        "CidrValidity",
        "DD2006",
        "CIDR Validity: The provided CIDR 172.16.1.5/24 has host bits set",
        |d| {
            doc_mut(d, "Network", "mgmt")["data"]["cidr"] = json!("172.16.1.5/24");
        },
    );
}

#[test]
fn hugepages_validity() {
    error(
        "HugepagesValidity",
        "DD1008",
        "Hugepages: Invalid hugepages kernel configuration",
        |d| {
            doc_mut(d, "BaremetalNode", "compute01")["data"]["platform"]["kernel_params"]
                .as_object_mut()
                .unwrap()
                .remove("hugepagesz");
        },
    );
}

#[test]
fn ip_locality_check() {
    error(
        "IpLocalityCheck",
        "DD2002",
        "IP Locality Check: The IP Address 10.9.9.9 is not within the defined CIDR: 172.16.1.0/24 of mgmt .",
        |d| {
            doc_mut(d, "BaremetalNode", "compute01")["data"]["addressing"][1]["address"] =
                json!("10.9.9.9");
        },
    );
    error(
        "IpLocalityCheck",
        "DD2002",
        "IP Locality Check: The gateway IP Address 10.0.0.1 is not within the defined CIDR: 172.16.1.0/24 of mgmt.",
        |d| {
            doc_mut(d, "Network", "mgmt")["data"]["routes"][0]["gateway"] = json!("10.0.0.1");
        },
    );
    error(
        "IpLocalityCheck",
        "DD2002",
        "IP Locality Check: nosuch is not a valid network.",
        |d| {
            doc_mut(d, "BaremetalNode", "compute01")["data"]["addressing"][1]["network"] =
                json!("nosuch");
        },
    );
}

#[test]
fn mtu_rational() {
    error(
        "MtuRational",
        "DD2003",
        "MTU Rationality: MTU must be between 1280 and 65536, value is 70000",
        |d| {
            doc_mut(d, "NetworkLink", "gp")["data"]["mtu"] = json!(70000);
        },
    );
    error(
        "MtuRational",
        "DD2003",
        "MTU Rationality: MTU must be <= the parent Network Link; for Network mgmt",
        |d| {
            doc_mut(d, "Network", "mgmt")["data"]["mtu"] = json!(9200);
        },
    );
}

#[test]
fn network_trunking_rational() {
    error(
        "NetworkTrunkingRational",
        "DD2004",
        "Network Trunking Rationalty: If there is more than 1 allowed network,trunking mode must be enabled",
        |d| {
            doc_mut(d, "NetworkLink", "pxe")["data"]["allowed_networks"] = json!(["pxe", "oob"]);
        },
    );
    error(
        "NetworkTrunkingRational",
        "DD2004",
        "Network Trunking Rationalty: Trunking mode is disabled, a trunking default_network must be defined",
        |d| {
            doc_mut(d, "NetworkLink", "pxe")["data"]["trunking"] = json!({"mode": "disabled"});
        },
    );
    error(
        "NetworkTrunkingRational",
        "DD2004",
        "Network Trunking Rationalty: Network link native network has a defined VLAN tag.",
        |d| {
            doc_mut(d, "Network", "pxe")["data"]["vlan"] = json!("100");
        },
    );
}

#[test]
fn no_duplicate_ips_check() {
    error(
        "NoDuplicateIpsCheck",
        "DD2005",
        "Duplicated IP Check: Duplicate IP Address Found: 172.16.1.21 ",
        |d| {
            doc_mut(d, "BaremetalNode", "compute02")["data"]["addressing"][1]["address"] =
                json!("172.16.1.21");
        },
    );
}

#[test]
fn platform_selection() {
    error(
        "PlatformSelection",
        "DD3001",
        "Platform Selection: Platform Validation: invalid image trusty",
        |d| {
            doc_mut(d, "HostProfile", "defaults")["data"]["platform"]["image"] = json!("trusty");
        },
    );
    error(
        "PlatformSelection",
        "DD3001",
        "Platform Selection: Platform Validation: invalid kernel hwe-99",
        |d| {
            doc_mut(d, "BaremetalNode", "compute01")["data"]["platform"]["kernel"] =
                json!("hwe-99");
        },
    );
    // Without a node driver the rule warns, as Drydock's.
    let design = Design::parse(&examples("airship-site.yaml")).unwrap();
    let report = validate_report(&design, None);
    let w = report.findings.iter().find(|f| f.code == "DD3001").unwrap();
    assert_eq!(w.level, Level::Warning, "{w:?}");
}

#[test]
fn rational_network_bond() {
    // Drydock's defaults: up and down delays 200 ms, below a 300 ms mon_rate.
    error(
        "RationalNetworkBond",
        "DD1006",
        "Network Bond Rationality: Up delay 200 is less than mon rate 300",
        |d| {
            doc_mut(d, "NetworkLink", "gp")["data"]["bonding"]["mon_rate"] = json!(300);
        },
    );
    error(
        "RationalNetworkBond",
        "DD1006",
        "Network Bond Rationality: Down delay 50 is less than mon rate 100",
        |d| {
            doc_mut(d, "NetworkLink", "gp")["data"]["bonding"]["down_delay"] = json!(50);
        },
    );
}

#[test]
fn storage_partitioning() {
    error(
        "StoragePartitioning",
        "DD2002",
        "Storage Partitioning: Either a volume group OR partitions must be defined for each storage device.",
        |d| {
            doc_mut(d, "HostProfile", "defaults")["data"]["storage"]["physical_devices"]["sdc"] =
                json!({"labels": {"role": "spare"}});
        },
    );
    error(
        "StoragePartitioning",
        "DD2002",
        "Storage Partitioning: Volume group spare_vg not assigned any physical volumes",
        |d| {
            doc_mut(d, "HostProfile", "defaults")["data"]["storage"]["volume_groups"]["spare_vg"] =
                json!({"logical_volumes": []});
        },
    );
}

#[test]
fn storage_sizing() {
    error(
        "StorageSizing",
        "DD2003",
        "Storage Sizing: Cumulative partition sizes on device primary_boot is greater than 99%.",
        |d| {
            let parts = &mut doc_mut(d, "HostProfile", "defaults")["data"]["storage"]["physical_devices"]
                ["primary_boot"]["partitions"];
            parts.as_array_mut().unwrap().extend([
                json!({"name": "var", "size": "60%", "filesystem": {"mountpoint": "/var"}}),
                json!({"name": "srv", "size": "50%", "filesystem": {"mountpoint": "/srv"}}),
            ]);
        },
    );
    error(
        "StorageSizing",
        "DD2003",
        "Storage Sizing: Cumulative logical volume size is greater than 99% in volume group log_vg",
        |d| {
            doc_mut(d, "HostProfile", "defaults")["data"]["storage"]["volume_groups"]["log_vg"]["logical_volumes"]
                [0]["size"] = json!("100%");
        },
    );
}

#[test]
fn storage_mountpoints() {
    error(
        "StorageMountpoints",
        "DD2004",
        "Storage Mountpoint: Mountpoint \"/boot\" already exists",
        |d| {
            doc_mut(d, "HostProfile", "defaults")["data"]["storage"]["volume_groups"]["log_vg"]["logical_volumes"]
                [0]["filesystem"]["mountpoint"] = json!("/boot");
        },
    );
}

#[test]
fn unique_network_check() {
    error(
        "UniqueNetworkCheck",
        "DD1007",
        "Allowed Network Check: Allowed network mgmt duplicated on NetworkLink pxe and NetworkLink gp",
        |d| {
            doc_mut(d, "NetworkLink", "pxe")["data"]["allowed_networks"] = json!(["pxe", "mgmt"]);
        },
    );
    error(
        "UniqueNetworkCheck",
        "DD1007",
        "Allowed Network Check: Interface bond0 attached to network pxe not allowed on interface link",
        |d| {
            doc_mut(d, "HostProfile", "k8-node")["data"]["interfaces"]["bond0"]["networks"] =
                json!(["mgmt", "pxe"]);
        },
    );
    error(
        "UniqueNetworkCheck",
        "DD1007",
        "Allowed Network Check: Interface pxe connected to undefined network link nosuch.",
        |d| {
            doc_mut(d, "HostProfile", "k8-node")["data"]["interfaces"]["pxe"]["device_link"] =
                json!("nosuch");
        },
    );
}

#[test]
fn hostname_validity() {
    error(
        "HostnameValidity",
        "DD3003",
        "Hostname Validity: FQDN compute_01.mgmt.sitename.example.com is invalid - label 'compute_01' is invalid.",
        |d| {
            doc_mut(d, "BaremetalNode", "compute01")["metadata"]["name"] = json!("compute_01");
        },
    );
    let long = "a".repeat(63);
    error(
        "HostnameValidity",
        "DD3003",
        "Hostname Validity: FQDN ",
        |d| {
            doc_mut(d, "Network", "mgmt")["data"]["dns"]["domain"] =
                json!([long.as_str(); 4].join("."));
        },
    );
}

#[test]
fn ipmi_validity() {
    let ipmi = |d: &mut Vec<Value>| {
        doc_mut(d, "HostProfile", "defaults")["data"]["oob"]["type"] = json!("ipmi");
    };
    // The example's oob settings satisfy the rule on an ipmi node.
    let mut docs = documents();
    ipmi(&mut docs);
    let report = report_of(&docs);
    assert!(
        report
            .rules
            .iter()
            .any(|o| o.rule.name == "IpmiValidity" && o.passed)
    );
    error(
        "IpmiValidity",
        "DD4001",
        "Valid IPMI Configuration: OOB parameter account for IPMI node controller01 missing.",
        |d| {
            ipmi(d);
            doc_mut(d, "HostProfile", "defaults")["data"]["oob"]
                .as_object_mut()
                .unwrap()
                .remove("account");
        },
    );
    error(
        "IpmiValidity",
        "DD4001",
        "Valid IPMI Configuration: OOB address missing for IPMI node compute02.",
        |d| {
            ipmi(d);
            doc_mut(d, "BaremetalNode", "compute02")["data"]["addressing"][3]["address"] =
                json!("dhcp");
        },
    );
}

#[test]
fn libvirt_validity() {
    let libvirt = |d: &mut Vec<Value>, uri: Option<&str>| {
        let oob = &mut doc_mut(d, "HostProfile", "defaults")["data"]["oob"];
        oob["type"] = json!("libvirt");
        if let Some(uri) = uri {
            oob["libvirt_uri"] = json!(uri);
        }
    };
    let mut docs = documents();
    libvirt(&mut docs, Some("qemu+ssh://virsh@hv1/system"));
    assert!(
        report_of(&docs)
            .rules
            .iter()
            .any(|o| o.rule.name == "LibvirtValidity" && o.passed)
    );
    error(
        "LibvirtValidity",
        "DD4002",
        "Valid Libvirt Configuration: OOB parameter libvirt_uri missing for node controller01.",
        |d| {
            libvirt(d, None);
        },
    );
    error(
        "LibvirtValidity",
        "DD4002",
        "Valid Libvirt Configuration: OOB parameter libvirt_uri has invalid scheme.",
        |d| {
            libvirt(d, Some("qemu+tcp://hv1/system"));
        },
    );
    error(
        "LibvirtValidity",
        "DD4002",
        "Valid Libvirt Configuration: libvirt-based node requries defined boot MAC address.",
        |d| {
            libvirt(d, Some("qemu+ssh://virsh@hv1/system"));
            doc_mut(d, "BaremetalNode", "compute02")["data"]["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("boot_mac");
        },
    );
}

#[test]
fn bootaction_defined() {
    // A warning, not an error: the rule still passes.
    expect(
        "BootactionDefined",
        "DD4001",
        Level::Warning,
        "Bootaction Definition: Node controller01 is not in scope for any bootactions.",
        |d| {
            doc_mut(d, "BootAction", "helloworld")["data"]["node_filter"] = json!({
                "filter_set_type": "union",
                "filter_set": [{"filter_type": "union", "node_names": ["compute01", "compute02"]}],
            });
        },
    );
}

#[test]
fn bootaction_package_list_valid() {
    error(
        "BootactionPackageListValid",
        "DD4002",
        "Bootaction pkg_list Validation: Version specifier 1.0 is not a valid format.",
        |d| {
            doc_mut(d, "BootAction", "helloworld")["data"]["assets"][1]["data"]["2ping"] =
                json!("1.0");
        },
    );
    error(
        "BootactionPackageListValid",
        "DD4002",
        "Bootaction pkg_list Validation: Bootaction has asset of type 'pkg_list' but no valid package data",
        |d| {
            doc_mut(d, "BootAction", "helloworld")["data"]["assets"][1]["data"] = json!({});
        },
    );
}

/// Schema and ingestion errors stop the rules, as in Drydock.
fn stopped(message: &str, code: &str, mutate: impl FnOnce(&mut Vec<Value>)) {
    let mut docs = documents();
    mutate(&mut docs);
    let report = report_of(&docs);
    let f = report
        .findings
        .iter()
        .find(|f| f.message == message)
        .unwrap_or_else(|| panic!("no `{message}` in {:#?}", report.findings));
    assert_eq!((f.code, f.level), (code, Level::Error));
    assert!(
        report.rules.iter().all(|o| !o.ran),
        "rules ran after {message}"
    );
    assert!(!report.findings.iter().any(|f| f.level == Level::Info));
}

#[test]
fn schema_errors_as_drydock_reports_them() {
    stopped(
        "Network:v1 schema validation error: Additional properties are not allowed ('colour' was unexpected)",
        "DD001",
        |d| {
            doc_mut(d, "Network", "mgmt")["data"]["colour"] = json!("red");
        },
    );
    stopped(
        "Network:v1 schema validation error: 101 is not of type 'string'",
        "DD001",
        |d| {
            doc_mut(d, "Network", "private")["data"]["vlan"] = json!(101);
        },
    );
    // Drydock's documentation removes an inherited interface with a null
    // value; its schema refuses that (`'!bond0': {}` is what works).
    stopped(
        "HostProfile:v1 schema validation error: None is not of type 'object'",
        "DD001",
        |d| {
            doc_mut(d, "HostProfile", "k8-node")["data"]["interfaces"]["bond0"] = Value::Null;
        },
    );
    stopped(
        "BaremetalNode:v1 schema validation error: Additional properties are not allowed ('rack' was unexpected)",
        "DD001",
        |d| {
            doc_mut(d, "BaremetalNode", "compute01")["data"]["rack"] = json!("rack2");
        },
    );
    stopped(
        "BootAction:v1 schema validation error: 'rot13' is not one of ['base64_encode', 'template', 'base64_decode', 'utf8_encode', 'utf8_decode']",
        "DD001",
        |d| {
            doc_mut(d, "BootAction", "helloworld")["data"]["assets"][0]["data_pipeline"] =
                json!(["rot13"]);
        },
    );
    stopped(
        "BootAction:v1 schema validation error: '../etc/passwd' does not match '^/.+'",
        "DD001",
        |d| {
            doc_mut(d, "BootAction", "helloworld")["data"]["assets"][0]["path"] =
                json!("../etc/passwd");
        },
    );
}

#[test]
fn ingestion_errors_as_drydock_reports_them() {
    stopped(
        "Error processing document: Invalid document - Kind Network and Version v2",
        "DD000",
        |d| {
            doc_mut(d, "Network", "mgmt")["schema"] = json!("drydock/Network/v2");
        },
    );
    stopped(
        "Error processing document: Invalid document - Kind Widget and Version v1",
        "DD000",
        |d| {
            d.push(json!({"schema": "drydock/Widget/v1", "metadata": {"name": "w"}, "data": {}}));
        },
    );
    stopped(
        "Error processing document: BaremetalNode needs at least 1 assigned address",
        "DD000",
        |d| {
            doc_mut(d, "BaremetalNode", "compute02")["data"]
                .as_object_mut()
                .unwrap()
                .remove("addressing");
        },
    );
    stopped(
        "Unexpected error processing document: Field value balance-xor is invalid",
        "DD000",
        |d| {
            doc_mut(d, "NetworkLink", "gp")["data"]["bonding"]["mode"] = json!("balance-xor");
        },
    );
    stopped(
        "Error loading effective site: Hardware profile not set",
        "DD000",
        |d| {
            doc_mut(d, "HostProfile", "k8-node")["data"]
                .as_object_mut()
                .unwrap()
                .remove("hardware_profile");
        },
    );
    stopped(
        "Error loading effective site: HardwareProfile Nosuch not found in design state",
        "DD000",
        |d| {
            doc_mut(d, "HostProfile", "k8-node")["data"]["hardware_profile"] = json!("Nosuch");
        },
    );
    stopped(
        "Error loading effective site: HostProfile nosuch not found in design state",
        "DD000",
        |d| {
            doc_mut(d, "BaremetalNode", "compute01")["data"]["host_profile"] = json!("nosuch");
        },
    );
}

#[test]
fn legacy_documents_are_not_schema_checked_as_in_drydock() {
    let legacy: Vec<Value> = documents()
        .into_iter()
        .map(|mut d| {
            let kind = d["schema"].as_str().unwrap().split('/').nth(1).unwrap().to_owned();
            let mut out = json!({"apiVersion": "drydock/v1", "kind": kind, "metadata": d["metadata"].take(), "spec": d["data"].take()});
            if kind == "Network" && out["metadata"]["name"] == "mgmt" {
                out["spec"]["colour"] = json!("red");
            }
            out
        })
        .collect();
    let report = report_of(&legacy);
    assert_eq!(report.error_count(), 0, "{:#?}", report.findings);
}

#[test]
fn own_checks_only_where_drydock_would_fail_at_deploy() {
    error(
        "NetworkRanges",
        "DDX003",
        "Network Ranges: Network pxe: range 172.16.0.5-172.16.9.254 is outside 172.16.0.0/24",
        |d| {
            doc_mut(d, "Network", "pxe")["data"]["ranges"][0]["end"] = json!("172.16.9.254");
        },
    );
    error(
        "DesignReferences",
        "DDX002",
        "Design References: NetworkLink gp refers to Network storage_rack3, which is not defined",
        |d| {
            let allowed = &mut doc_mut(d, "NetworkLink", "gp")["data"]["allowed_networks"];
            allowed.as_array_mut().unwrap().push(json!("storage_rack3"));
        },
    );
    error(
        "BondOptions",
        "DDX004",
        "Bond Options: NetworkLink gp: 802.3ad hash layer9 is unknown",
        |d| {
            doc_mut(d, "NetworkLink", "gp")["data"]["bonding"]["hash"] = json!("layer9");
        },
    );
    error(
        "StorageLayout",
        "DDX005",
        "Storage Layout: logical volume log_lv in log_vg: size `12q`",
        |d| {
            doc_mut(d, "HostProfile", "defaults")["data"]["storage"]["volume_groups"]["log_vg"]["logical_volumes"]
                [0]["size"] = json!("12q");
        },
    );
    error(
        "BootactionAssets",
        "DDX006",
        "Bootaction Assets: boot action helloworld: asset 1: template",
        |d| {
            let a = &mut doc_mut(d, "BootAction", "helloworld")["data"]["assets"][0];
            a["data"] = json!("{{ node.hostname ");
            a["data_pipeline"] = json!(["template"]);
        },
    );
    // Drydock logs an unresolvable reference and passes the text on.
    expect(
        "KernelParamReferences",
        "DDX007",
        Level::Warning,
        "Kernel Parameter References: Error resolving parameter reference on node compute01: CPU set nosuch not found.",
        |d| {
            doc_mut(d, "BaremetalNode", "compute01")["data"]["platform"]["kernel_params"]["isolcpus"] =
                json!("hardwareprofile:cpuset.nosuch");
        },
    );
}
