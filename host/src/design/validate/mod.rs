//! Drydock's design validation, rule for rule.
//!
//! Validation runs as Drydock's `get_effective_site` does:
//!
//! 1. ingestion ([`schema`]): each Deckhand-form document is checked against
//!    Drydock's JSON schema (`DD001`), then read as Drydock's ingester reads
//!    it (`DD000`: unknown kind or version, a node without addressing, a
//!    value Drydock's object fields refuse);
//! 2. the effective site: every node's host profile chain and hardware
//!    profile must resolve (Drydock's "Error loading effective site");
//! 3. if both succeeded, Drydock's 18 rules in Drydock's order, each with its
//!    code (`DD1001`...) and message levels, and one Info "Validation
//!    successful." per rule that found no error; then this project's own
//!    checks ([`extra`]) for what Drydock accepts here but fails on at
//!    deploy time.
//!
//! Drydock stops after step 1 or 2 when they find errors; so does this.
//! Rules live in [`network`], [`storage`] and [`node`].

mod extra;
mod network;
mod node;
mod schema;
mod storage;

pub use storage::{Size, parse_size};

use super::Design;
use super::documents::{DocRef, HostSpec, Kind};
use serde::Serialize;
use std::collections::BTreeMap;

/// How serious a finding is (Drydock's `MessageLevels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Level {
    /// The design cannot be used.
    Error,
    /// Suspicious but usable.
    Warning,
    /// Information (Drydock's "Validation successful." per passing rule).
    Info,
}

/// A validation rule: Drydock's class name, code and long name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Drydock's class name, e.g. `BootStorageRational`.
    pub name: &'static str,
    /// Drydock's code, e.g. `DD1001` (Drydock gives some codes to two rules).
    pub code: &'static str,
    /// Drydock's long name, the prefix of every message of the rule.
    pub long_name: &'static str,
}

/// One validation message, as Drydock's `ValidationMessage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's name (Drydock's class name, or the name of one of this
    /// project's own checks).
    pub rule: &'static str,
    /// The rule's code: Drydock's `name` field of the message.
    pub code: &'static str,
    /// What is wrong, prefixed with the rule's long name as Drydock does.
    pub message: String,
    /// How to fix it (Drydock's `diagnostic`).
    pub diagnostic: String,
    /// Error, warning or info.
    pub level: Level,
    /// Documents involved.
    pub documents: Vec<DocRef>,
}

impl Finding {
    /// Whether it is an error (Drydock's `error: true`).
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

/// Whether a rule ran and what it concluded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleOutcome {
    /// The rule.
    pub rule: Rule,
    /// It ran (rules do not run when ingestion or the effective site
    /// failed, as in Drydock).
    pub ran: bool,
    /// It ran and found no error.
    pub passed: bool,
}

/// Everything validation found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every message in Drydock's order (errors, warnings and the Info
    /// "Validation successful." of each passing rule).
    pub findings: Vec<Finding>,
    /// Each of Drydock's rules, in Drydock's order.
    pub rules: Vec<RuleOutcome>,
}

impl Report {
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.findings.iter().filter(|f| f.is_error()).count()
    }
}

/// Images the node driver offers and each image's kernels (for
/// `PlatformSelection`). `None` in [`validate`] means no node driver: the
/// rule warns, as Drydock's does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlatformCatalog {
    /// Image → kernels.
    pub images: BTreeMap<String, Vec<String>>,
}

/// Drydock's rules in the order Drydock runs them
/// (`orchestrator/validations/validator.py`).
pub const RULES: [Rule; 18] = [
    rule("BootStorageRational", "DD1001", "Rational Boot Storage"),
    rule("CidrValidity", "DD2006", "CIDR Validity"),
    rule("HugepagesValidity", "DD1008", "Hugepages"),
    rule("IpLocalityCheck", "DD2002", "IP Locality Check"),
    rule("MtuRational", "DD2003", "MTU Rationality"),
    rule(
        "NetworkTrunkingRational",
        "DD2004",
        "Network Trunking Rationalty",
    ),
    rule("NoDuplicateIpsCheck", "DD2005", "Duplicated IP Check"),
    rule("PlatformSelection", "DD3001", "Platform Selection"),
    rule("RationalNetworkBond", "DD1006", "Network Bond Rationality"),
    rule("StoragePartitioning", "DD2002", "Storage Partitioning"),
    rule("StorageSizing", "DD2003", "Storage Sizing"),
    rule("StorageMountpoints", "DD2004", "Storage Mountpoint"),
    rule("UniqueNetworkCheck", "DD1007", "Allowed Network Check"),
    rule("HostnameValidity", "DD3003", "Hostname Validity"),
    rule("IpmiValidity", "DD4001", "Valid IPMI Configuration"),
    rule("LibvirtValidity", "DD4002", "Valid Libvirt Configuration"),
    rule("BootactionDefined", "DD4001", "Bootaction Definition"),
    rule(
        "BootactionPackageListValid",
        "DD4002",
        "Bootaction pkg_list Validation",
    ),
];

const fn rule(name: &'static str, code: &'static str, long_name: &'static str) -> Rule {
    Rule {
        name,
        code,
        long_name,
    }
}

/// The rule named `name` (Drydock's class name).
pub fn drydock_rule(name: &str) -> Option<Rule> {
    RULES.iter().copied().find(|r| r.name == name)
}

/// Collects one rule's messages.
struct Out {
    rule: Rule,
    findings: Vec<Finding>,
}

impl Out {
    fn new(rule: Rule) -> Out {
        Out {
            rule,
            findings: Vec::new(),
        }
    }

    fn push(&mut self, level: Level, msg: String, docs: Vec<DocRef>, diagnostic: &str) {
        self.findings.push(Finding {
            rule: self.rule.name,
            code: self.rule.code,
            message: format!("{}: {msg}", self.rule.long_name),
            diagnostic: diagnostic.to_owned(),
            level,
            documents: docs,
        });
    }

    fn error(&mut self, msg: String, docs: Vec<DocRef>, diagnostic: &str) {
        self.push(Level::Error, msg, docs, diagnostic);
    }

    fn warn(&mut self, msg: String, docs: Vec<DocRef>, diagnostic: &str) {
        self.push(Level::Warning, msg, docs, diagnostic);
    }

    fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }
}

fn node_ref(name: &str) -> DocRef {
    DocRef::new(Kind::BaremetalNode, name)
}

/// Nodes in document order (Drydock reports in the order it ingested).
fn nodes_in_order(d: &Design) -> Vec<(&String, &HostSpec)> {
    let mut seen = std::collections::BTreeSet::new();
    d.documents
        .iter()
        .filter(|doc| doc.kind == Kind::BaremetalNode)
        .filter_map(|doc| d.nodes.get_key_value(&doc.name))
        .filter(|(n, _)| seen.insert(n.as_str()))
        .collect()
}

type RuleFn = fn(&Design, Option<&PlatformCatalog>, &mut Out);

fn rule_fn(name: &str) -> RuleFn {
    match name {
        "BootStorageRational" => |d, _, o| storage::boot_storage_rational(d, o),
        "CidrValidity" => |d, _, o| network::cidr_validity(d, o),
        "HugepagesValidity" => |d, _, o| node::hugepages_validity(d, o),
        "IpLocalityCheck" => |d, _, o| network::ip_locality_check(d, o),
        "MtuRational" => |d, _, o| network::mtu_rational(d, o),
        "NetworkTrunkingRational" => |d, _, o| network::network_trunking_rational(d, o),
        "NoDuplicateIpsCheck" => |d, _, o| network::no_duplicate_ips_check(d, o),
        "PlatformSelection" => node::platform_selection,
        "RationalNetworkBond" => |d, _, o| network::rational_network_bond(d, o),
        "StoragePartitioning" => |d, _, o| storage::storage_partitioning(d, o),
        "StorageSizing" => |d, _, o| storage::storage_sizing(d, o),
        "StorageMountpoints" => |d, _, o| storage::storage_mountpoints(d, o),
        "UniqueNetworkCheck" => |d, _, o| network::unique_network_check(d, o),
        "HostnameValidity" => |d, _, o| node::hostname_validity(d, o),
        "IpmiValidity" => |d, _, o| node::ipmi_validity(d, o),
        "LibvirtValidity" => |d, _, o| node::libvirt_validity(d, o),
        "BootactionDefined" => |d, _, o| node::bootaction_defined(d, o),
        "BootactionPackageListValid" => |d, _, o| node::bootaction_package_list_valid(d, o),
        _ => |_, _, _| {},
    }
}

/// Validates `d` as Drydock does; `catalog` is what the node driver offers
/// (`None`: no node driver). See the module documentation for the order.
pub fn validate_report(d: &Design, catalog: Option<&PlatformCatalog>) -> Report {
    let mut report = Report {
        findings: schema::ingestion(d),
        rules: Vec::new(),
    };
    if report.error_count() == 0 {
        report.findings.extend(schema::effective_site(d));
    }
    let proceed = report.error_count() == 0;
    for rule in RULES {
        if !proceed {
            report.rules.push(RuleOutcome {
                rule,
                ran: false,
                passed: false,
            });
            continue;
        }
        let mut out = Out::new(rule);
        rule_fn(rule.name)(d, catalog, &mut out);
        let passed = !out.has_errors();
        if passed {
            out.push(Level::Info, "Validation successful.".into(), vec![], "");
        }
        report.findings.append(&mut out.findings);
        report.rules.push(RuleOutcome {
            rule,
            ran: true,
            passed,
        });
    }
    if proceed {
        report.findings.extend(extra::checks(d));
    }
    report
}

/// Every message of [`validate_report`].
pub fn validate(d: &Design, catalog: Option<&PlatformCatalog>) -> Vec<Finding> {
    validate_report(d, catalog).findings
}

/// Python's `repr` of a JSON value, for messages that quote Drydock's
/// (`'x' is not of type 'string'`).
pub(crate) fn py_repr(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py_str(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}
