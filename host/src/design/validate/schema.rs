//! Ingestion as Drydock's ingesters report it: Drydock's JSON schemas
//! (`DD001`, Deckhand-form documents only, as Drydock checks no schema on
//! the legacy form), document processing errors (`DD000`) and the
//! effective site (host profile chains and hardware profiles resolve).
//!
//! The schemas are Drydock's own files (`schemas/*.yaml`), checked with
//! the part of JSON Schema draft 4 they use (`type`, `properties`,
//! `additionalProperties`, `items`, `enum`, `pattern`, `required`,
//! `oneOf`; `format` is not checked, as Drydock's `Draft4Validator` runs
//! without a format checker). Messages read as Python's `jsonschema`
//! words them.

use super::super::Design;
use super::super::documents::{DocRef, Document, Form, Kind};
use super::{Finding, Level, py_repr};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

const SCHEMA_FILES: [&str; 8] = [
    include_str!("schemas/baremetalNode.yaml"),
    include_str!("schemas/bootaction.yaml"),
    include_str!("schemas/hardwareProfile.yaml"),
    include_str!("schemas/hostProfile.yaml"),
    include_str!("schemas/network.yaml"),
    include_str!("schemas/networkLink.yaml"),
    include_str!("schemas/rack.yaml"),
    include_str!("schemas/region.yaml"),
];

/// Drydock's schemas by document schema (`drydock/Network/v1`).
fn schemas() -> &'static BTreeMap<String, Value> {
    static SCHEMAS: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut out = BTreeMap::new();
        for text in SCHEMA_FILES {
            for de in serde_yaml_ng::Deserializer::from_str(text) {
                // The files are compiled in and parsed by a unit test.
                let Ok(doc) = <Value as serde::Deserialize>::deserialize(de) else {
                    continue;
                };
                if let Some(name) = doc.pointer("/metadata/name").and_then(Value::as_str) {
                    out.insert(name.to_owned(), doc["data"].clone());
                }
            }
        }
        out
    })
}

fn dd001(doc: &Document, message: String) -> Finding {
    Finding {
        rule: "DocumentSchema",
        code: "DD001",
        message: format!("{}:v1 schema validation error: {message}", doc.kind.name()),
        diagnostic: "Invalid input file - see Drydock Troubleshooting Guide for DD001".into(),
        level: Level::Error,
        documents: vec![DocRef::new(doc.kind, &doc.name)],
    }
}

fn dd000(documents: Vec<DocRef>, message: String, unexpected: bool) -> Finding {
    let (prefix, diagnostic) = if unexpected {
        (
            "Unexpected error processing document",
            "Unexpected exception during document processing - see Drydock Troubleshooting Guide for DD000",
        )
    } else {
        (
            "Error processing document",
            "Exception during document processing - see Drydock Troubleshooting Guide for DD000",
        )
    };
    Finding {
        rule: "DocumentProcessing",
        code: "DD000",
        message: format!("{prefix}: {message}"),
        diagnostic: diagnostic.into(),
        level: Level::Error,
        documents,
    }
}

/// `DD001` and `DD000` findings, in document order.
pub(super) fn ingestion(d: &Design) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &d.malformed {
        let mut f = dd000(vec![], m.message.clone(), false);
        f.diagnostic = format!("document #{} of the design: {}", m.index + 1, f.diagnostic);
        out.push(f);
    }
    let unreadable: BTreeMap<&DocRef, &String> = d.unreadable.iter().map(|(r, m)| (r, m)).collect();
    for doc in &d.documents {
        let me = DocRef::new(doc.kind, &doc.name);
        if doc.form == Form::Deckhand
            && let Some(schema) = schemas().get(&doc.kind.schema())
        {
            let mut errors = Vec::new();
            check(schema, &doc.data, &mut errors);
            if !errors.is_empty() {
                out.extend(errors.into_iter().map(|e| dd001(doc, e)));
                continue;
            }
        }
        if let Some(e) = processing_error(doc) {
            out.push(dd000(vec![me], e.0, e.1));
        } else if let Some(m) = unreadable.get(&me)
            // A host profile's inheritance problems are the effective
            // site's; its fields that do not read are ingestion's.
            && (doc.kind != Kind::HostProfile || m.starts_with("HostProfile:"))
        {
            out.push(dd000(vec![me.clone()], (*m).clone(), true));
        }
    }
    out
}

/// What Drydock's ingester refuses in a schema-valid document: `(message,
/// unexpected)` where `unexpected` is Drydock's "Unexpected error" wording.
fn processing_error(doc: &Document) -> Option<(String, bool)> {
    let data = &doc.data;
    match doc.kind {
        Kind::BaremetalNode => {
            let empty = data
                .get("addressing")
                .is_none_or(|a| a.as_array().is_none_or(Vec::is_empty));
            empty.then(|| {
                (
                    "BaremetalNode needs at least 1 assigned address".into(),
                    false,
                )
            })
        }
        Kind::NetworkLink => {
            let enum_field = |ptr: &str, allowed: &[&str]| {
                data.pointer(ptr)
                    .filter(|v| !v.is_null())
                    .and_then(|v| match v.as_str() {
                        Some(s) if allowed.contains(&s) => None,
                        Some(s) => Some(s.to_owned()),
                        None => Some(v.to_string()),
                    })
            };
            enum_field(
                "/bonding/mode",
                &["disabled", "802.3ad", "balance-rr", "active-backup"],
            )
            .or_else(|| enum_field("/trunking/mode", &["disabled", "802.1q"]))
            .map(|v| (format!("Field value {v} is invalid"), true))
        }
        Kind::HardwareProfile => data
            .get("hugepages")
            .and_then(Value::as_object)
            .and_then(|pools| {
                pools.values().find_map(|p| {
                    serde_json::from_value::<super::super::documents::Hugepages>(p.clone())
                        .ok()?
                        .count_value()
                        .err()
                })
            })
            .map(|m| (m, true)),
        _ => None,
    }
}

/// The effective site: each node's host profile chain and hardware profile
/// (Drydock's `compile_applied_model`, which stops the validation when it
/// fails).
pub(super) fn effective_site(d: &Design) -> Vec<Finding> {
    let raw: BTreeMap<&str, &Value> = d
        .documents
        .iter()
        .filter(|doc| doc.kind == Kind::HostProfile)
        .map(|doc| (doc.name.as_str(), &doc.data))
        .collect();
    let mut out = Vec::new();
    let mut fail_on = |node: &str, doc: DocRef, message: String| {
        out.push(Finding {
            rule: "EffectiveSite",
            code: "DD000",
            message: format!("Error loading effective site: {message}"),
            diagnostic: format!("BaremetalNode {node}"),
            level: Level::Error,
            documents: vec![doc],
        });
    };
    // Inheritance the resolver refused (a cycle, a missing parent, a chain
    // past the depth or count limits), each once, naming its chain.
    let broken_profiles: BTreeMap<&str, &String> = d
        .unreadable
        .iter()
        .filter(|(r, m)| r.schema.contains("/HostProfile/") && !m.starts_with("HostProfile:"))
        .map(|(r, m)| (r.name.as_str(), m))
        .collect();
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    for (name, spec) in super::nodes_in_order(d) {
        let raw_node = d
            .documents
            .iter()
            .find(|doc| doc.kind == Kind::BaremetalNode && &doc.name == name);
        let mut parent = raw_node
            .and_then(|doc| doc.data.get("host_profile"))
            .and_then(Value::as_str);
        let mut chain: Vec<&str> = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut broken = false;
        while let Some(p) = parent {
            if let Some(m) = broken_profiles.get(p) {
                // Walk no further: the resolver bounded this chain already.
                if reported.insert(p) {
                    fail_on(name, DocRef::new(Kind::HostProfile, p), (*m).clone());
                }
                broken = true;
                break;
            }
            if !seen.insert(p) {
                chain.push(p);
                fail_on(
                    name,
                    DocRef::new(Kind::BaremetalNode, name),
                    format!("HostProfile inheritance cycle: {}", chain.join(" -> ")),
                );
                broken = true;
                break;
            }
            chain.push(p);
            match raw.get(p) {
                Some(data) => parent = data.get("host_profile").and_then(Value::as_str),
                None => {
                    fail_on(
                        name,
                        DocRef::new(Kind::BaremetalNode, name),
                        format!("HostProfile {p} not found in design state"),
                    );
                    broken = true;
                    break;
                }
            }
        }
        if broken {
            continue;
        }
        match &spec.hardware_profile {
            None => fail_on(
                name,
                DocRef::new(Kind::BaremetalNode, name),
                "Hardware profile not set".into(),
            ),
            Some(hw) if !d.hardware.contains_key(hw) => fail_on(
                name,
                DocRef::new(Kind::BaremetalNode, name),
                format!("HardwareProfile {hw} not found in design state"),
            ),
            Some(_) => {}
        }
    }
    out
}

// ------------------------------------------------------------- JSON schema

fn regex(pattern: &str) -> Option<regex::Regex> {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, Option<regex::Regex>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(pattern.to_owned())
        .or_insert_with(|| regex::Regex::new(pattern).ok())
        .clone()
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// Checks `inst` against `schema`, adding each error's message.
pub(super) fn check(schema: &Value, inst: &Value, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        return;
    };
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| is_type(inst, t)) {
            let names: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
            errors.push(format!(
                "{} is not of type {}",
                py_repr(inst),
                names.join(", ")
            ));
        }
    }
    if let Some(obj) = inst.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(props) = props {
            for (k, sub) in props {
                if let Some(v) = obj.get(k) {
                    check(sub, v, errors);
                }
            }
        }
        let extras: BTreeSet<&String> = obj
            .keys()
            .filter(|k| props.is_none_or(|p| !p.contains_key(*k)))
            .collect();
        match s.get("additionalProperties") {
            Some(Value::Bool(false)) if !extras.is_empty() => {
                let names: Vec<String> = extras
                    .iter()
                    .map(|e| py_repr(&Value::from(e.as_str())))
                    .collect();
                let verb = if names.len() == 1 { "was" } else { "were" };
                errors.push(format!(
                    "Additional properties are not allowed ({} {verb} unexpected)",
                    names.join(", ")
                ));
            }
            Some(sub @ Value::Object(_)) => {
                for k in extras {
                    check(sub, &obj[k], errors);
                }
            }
            _ => {}
        }
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for r in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    errors.push(format!(
                        "{} is a required property",
                        py_repr(&Value::from(r))
                    ));
                }
            }
        }
    }
    if let (Some(items), Some(list)) = (s.get("items"), inst.as_array()) {
        for v in list {
            check(items, v, errors);
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(inst)
    {
        errors.push(format!(
            "{} is not one of {}",
            py_repr(inst),
            py_repr(&Value::Array(options.clone()))
        ));
    }
    if let (Some(pattern), Some(text)) = (s.get("pattern").and_then(Value::as_str), inst.as_str())
        && regex(pattern).is_some_and(|re| !re.is_match(text))
    {
        errors.push(format!(
            "{} does not match {}",
            py_repr(inst),
            py_repr(&Value::from(pattern))
        ));
    }
    if let Some(options) = s.get("oneOf").and_then(Value::as_array) {
        let valid = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                check(o, inst, &mut e);
                e.is_empty()
            })
            .count();
        if valid == 0 {
            errors.push(format!(
                "{} is not valid under any of the given schemas",
                py_repr(inst)
            ));
        } else if valid > 1 {
            errors.push(format!(
                "{} is valid under each of {}",
                py_repr(inst),
                py_repr(&Value::Array(options.clone()))
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_but_host_profile_chains_has_drydocks_schema() {
        for kind in Kind::ALL {
            assert!(schemas().contains_key(&kind.schema()), "{kind:?}");
        }
    }

    #[test]
    fn messages_read_as_pythons_jsonschema() {
        let network = &schemas()["drydock/Network/v1"];
        let mut e = Vec::new();
        check(
            network,
            &json!({"cidr": "10.0.0.0/24", "vlan": 102, "colour": "red"}),
            &mut e,
        );
        assert_eq!(
            e,
            [
                "102 is not of type 'string'",
                "Additional properties are not allowed ('colour' was unexpected)"
            ]
        );
        let ba = &schemas()["drydock/BootAction/v1"];
        let mut e = Vec::new();
        check(
            ba,
            &json!({"assets": [{"type": "file", "path": "etc/x", "permissions": "rw"}]}),
            &mut e,
        );
        assert_eq!(
            e,
            [
                "'etc/x' does not match '^/.+'",
                "'rw' does not match '\\\\d{3}'"
            ]
        );
    }
}
