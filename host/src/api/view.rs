//! Records turned into the wire model ([`crate::wire`]): pure conversions,
//! no I/O.
//!
//! - Task dict ([`TaskDict`], Drydock's `Task.to_dict()`); `status` is
//!   `terminating` while a cancelled task winds down.
//! - Result ([`TaskResult`], Drydock's `TaskStatus`): `errorCount` counts
//!   the task's own error messages (Drydock's meaning); `links` holds
//!   `detail_logs`, the task's build data, only when the service's
//!   `public_url` is known (Drydock's links are absolute).
//! - Build data ([`BuildData`]), with Drydock's names.
//! - Node dict ([`NodeView`]): Drydock's `GET /nodes` fields from what the
//!   drivers reported, then the node's description; it never holds a
//!   credential, only the name of the secret holding one.
//! - A node's timeline entries ([`NodeEvent`]) and sync state
//!   ([`NodeSync`]).
//!
//! Timestamps are RFC 3339 in UTC with microseconds.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::PREFIX;
use crate::store::{
    BuildDataRecord, MessageRecord, NodeEventRecord, NodeRecord, NodeSyncRecord, TaskRecord,
};
pub use crate::wire::timestamp;
use crate::wire::{
    BuildData, Link, NodeEvent, NodeSync, NodeView, StatusDetails, TaskDict, TaskMessage,
    TaskResult,
};

/// The most status messages shown in one task's `messageList` (the latest).
pub const MAX_MESSAGES: usize = 1000;

/// A task's URL path.
pub fn task_href(id: Uuid) -> String {
    format!("{PREFIX}/tasks/{id}")
}

/// A node's URL path.
pub fn node_href(name: &str) -> String {
    format!("{PREFIX}/nodes/{name}")
}

/// One status message.
pub fn message_view(m: &MessageRecord) -> TaskMessage {
    TaskMessage {
        message: m.message.clone(),
        error: m.error,
        context_type: m.context_type.clone(),
        context: m.context.clone(),
        ts: timestamp(&m.ts),
        extra: m.extra.clone().unwrap_or_else(|| json!({})),
    }
}

/// A task's `messageList`: its last [`MAX_MESSAGES`] messages, preceded by a
/// note saying how many were left out, if any.
fn message_list(t: &TaskRecord, messages: &[MessageRecord]) -> Vec<TaskMessage> {
    let cut = messages.len().saturating_sub(MAX_MESSAGES);
    let kept = &messages[cut..];
    let mut list = Vec::with_capacity(kept.len() + 1);
    if cut > 0 {
        list.push(TaskMessage {
            message: format!("{cut} earlier messages omitted; the latest {MAX_MESSAGES} follow"),
            error: false,
            context_type: "task".into(),
            context: t.id.to_string(),
            ts: timestamp(&kept[0].ts),
            extra: json!({"omitted": cut}),
        });
    }
    list.extend(kept.iter().map(message_view));
    list
}

/// Drydock's `errorCount`: the task's error messages.
pub fn error_count(messages: &[MessageRecord]) -> usize {
    messages.iter().filter(|m| m.error).count()
}

/// A task's result (Drydock's `TaskStatus.to_dict()`), with the task's own
/// messages (`messages` in `seq` order). `base` is the service's public URL.
pub fn result_view(t: &TaskRecord, messages: &[MessageRecord], base: Option<&str>) -> TaskResult {
    let links = base
        .map(|b| Link {
            rel: "detail_logs".into(),
            href: format!("{}{}/builddata", b.trim_end_matches('/'), task_href(t.id)),
        })
        .into_iter()
        .collect();
    TaskResult {
        kind: "Status".into(),
        api_version: "v1.0".into(),
        metadata: Map::new(),
        status: t.result_status.as_str().into(),
        message: t.result_message.clone(),
        reason: t.result_reason.clone(),
        successes: t.successes.clone(),
        failures: t.failures.clone(),
        links,
        details: StatusDetails {
            error_count: error_count(messages) as u64,
            message_list: message_list(t, messages),
        },
    }
}

/// The status shown: Drydock's `terminating` while a cancel winds down.
pub fn status(t: &TaskRecord) -> &'static str {
    if t.terminate && !t.status.is_terminal() {
        "terminating"
    } else {
        t.status.as_str()
    }
}

/// A task dict (Drydock's `Task.to_dict()`). `base` is the service's public
/// URL.
pub fn task_view(
    t: &TaskRecord,
    subtask_ids: &[Uuid],
    messages: &[MessageRecord],
    base: Option<&str>,
) -> TaskDict {
    TaskDict {
        kind: "Task".into(),
        api_version: "v1".into(),
        task_id: t.id.to_string(),
        action: t.action.clone(),
        parent_task_id: t.parent_id.map(|p| p.to_string()),
        subtask_id_list: subtask_ids.iter().map(Uuid::to_string).collect(),
        status: status(t).into(),
        node_filter: t.node_filter.clone(),
        design_ref: t.design_ref.clone(),
        result: result_view(t, messages, base),
        created: timestamp(&t.created),
        created_by: t.created_by.clone(),
        updated: timestamp(&t.updated),
        terminated: t.terminated.as_ref().map(timestamp),
        terminated_by: t.terminated_by.clone(),
        terminate: t.terminate,
        retry: t.retry,
        node_name: t.node_name.clone(),
        build_data: None,
        subtask_errors: None,
    }
}

/// Whether a task belongs in `subtask_errors`: as in Drydock, its
/// `errorCount` is above 0.
pub fn has_errors(messages: &[MessageRecord]) -> bool {
    error_count(messages) > 0
}

/// One build data item (Drydock's `BuildData.to_dict()`, plus `id`).
pub fn build_data_view(b: &BuildDataRecord) -> BuildData {
    BuildData {
        id: b.id,
        node_name: b.node_name.clone(),
        task_id: b.task_id.map(|t| t.to_string()),
        collected_date: timestamp(&b.collected),
        generator: b.generator.clone(),
        data_format: b.format.clone(),
        data_element: b.content.clone(),
    }
}

/// Keys that could carry a credential and are dropped from node output
/// whatever the stored spec holds.
const SECRET_KEYS: &[&str] = &["credentials", "password"];

/// What the drivers reported about a node, for Drydock's `GET /nodes`
/// fields: the latest `interrogate_node` result (the bootstrapper's view,
/// e.g. a MAAS machine) and `interrogate_oob` result (the BMC's view).
#[derive(Debug, Default, Clone)]
pub struct NodeFacts {
    /// `interrogate_node`'s JSON (`{"identity": {"id", "status"}, "raw"}`).
    pub node: Option<Value>,
    /// `interrogate_oob`'s JSON (`{"power_state", "macs", ..., "raw"}`).
    pub oob: Option<Value>,
}

impl NodeFacts {
    /// The facts in a node's latest build data.
    pub fn from_build_data(items: &[BuildDataRecord]) -> NodeFacts {
        let parse = |g: &str| {
            items
                .iter()
                .filter(|b| b.generator == g)
                .max_by_key(|b| (b.collected, b.id))
                .and_then(|b| serde_json::from_str::<Value>(&b.content).ok())
        };
        NodeFacts {
            node: parse("interrogate_node"),
            oob: parse("interrogate_oob"),
        }
    }
}

/// A node view with nothing known from the drivers.
pub fn node_view(n: &NodeRecord) -> NodeView {
    node_view_with(n, &NodeFacts::default())
}

/// A node view: Drydock's fields (filled from `facts` first, then from
/// what the host knows: the node's description and last power state), then
/// the node's description.
pub fn node_view_with(n: &NodeRecord, facts: &NodeFacts) -> NodeView {
    let raw = facts
        .node
        .as_ref()
        .map(|v| &v["raw"])
        .filter(|r| r.is_object());
    let from_raw = |k: &str| raw.map(|r| r[k].clone()).filter(|v| !v.is_null());
    let boot_iface = raw.map(|r| &r["boot_interface"]).filter(|b| b.is_object());
    let spec_field = |k: &str| n.spec.get(k).filter(|v| !v.is_null()).cloned();
    let mut spec = Map::new();
    if let Value::Object(s) = &n.spec {
        for (k, v) in s {
            if !NodeView::OWN_FIELDS.contains(&k.as_str()) && !SECRET_KEYS.contains(&k.as_str()) {
                spec.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(Value::Object(oob)) = spec.get_mut("oob") {
        for k in SECRET_KEYS {
            oob.remove(*k);
        }
        if let Some(c) = &n.credential {
            oob.insert("credential".into(), json!(c));
        }
    }
    NodeView {
        hostname: from_raw("hostname").unwrap_or_else(|| json!(n.name)),
        memory: from_raw("memory").unwrap_or(Value::Null),
        cpu_count: from_raw("cpu_count").unwrap_or(Value::Null),
        status_name: facts
            .node
            .as_ref()
            .and_then(|v| v["identity"]["status"].as_str())
            .map(|s| json!(s))
            .or_else(|| from_raw("status_name"))
            .unwrap_or(Value::Null),
        boot_mac: boot_iface
            .and_then(|b| b["mac_address"].as_str())
            .map(|s| json!(s))
            .or_else(|| spec_field("boot_mac"))
            .unwrap_or(Value::Null),
        power_state: from_raw("power_state")
            .or_else(|| n.power_state.as_ref().map(|p| json!(p)))
            .or_else(|| facts.oob.as_ref().map(|o| o["power_state"].clone()))
            .unwrap_or(Value::Null),
        power_address: raw
            .and_then(|r| r["power_parameters"]["power_address"].as_str())
            .map(|s| json!(s))
            .or_else(|| n.spec.get("oob").and_then(|o| o.get("address")).cloned())
            .unwrap_or(Value::Null),
        boot_ip: boot_iface
            .and_then(|b| b["links"].as_array())
            .and_then(|links| links.iter().find_map(|l| l["ip_address"].as_str()))
            .map(|s| json!(s))
            .unwrap_or(Value::Null),
        kind: "Node".into(),
        api_version: "v1.0".into(),
        name: n.name.clone(),
        spec,
        boot_device: n.boot_device.clone(),
        created: timestamp(&n.created),
        updated: timestamp(&n.updated),
    }
}

/// One timeline entry (its message was redacted when it was recorded).
pub fn node_event_view(e: &NodeEventRecord) -> NodeEvent {
    NodeEvent {
        seq: e.seq,
        node_name: e.node_name.clone(),
        ts: timestamp(&e.ts),
        kind: e.kind.clone(),
        action: e.action.clone(),
        outcome: e.outcome.clone(),
        duration_ms: e.duration_ms,
        message: e.message.clone(),
        task_id: e.task_id.map(|t| t.to_string()),
    }
}

/// A node's sync state.
pub fn node_sync_view(s: &NodeSyncRecord) -> NodeSync {
    let ts = |t: &Option<chrono::DateTime<chrono::Utc>>| t.as_ref().map(timestamp);
    NodeSync {
        node_name: s.node_name.clone(),
        observed_power: s.observed_power.clone(),
        observed_health: s.observed_health.clone(),
        observed_at: ts(&s.observed_at),
        last_error: s.last_error.clone(),
        failures: s.failures,
        drift: s.drift,
        maintenance: s.maintenance.clone(),
        maintenance_reason: s.maintenance_reason.clone(),
        maintenance_since: ts(&s.maintenance_since),
        due: ts(&s.due),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ResultStatus, TaskStatus};
    use chrono::Utc;

    fn task_dict(t: &TaskRecord, s: &[Uuid], m: &[MessageRecord], base: Option<&str>) -> Value {
        serde_json::to_value(task_view(t, s, m, base)).unwrap()
    }

    fn result_dict(t: &TaskRecord, m: &[MessageRecord], base: Option<&str>) -> Value {
        serde_json::to_value(result_view(t, m, base)).unwrap()
    }

    fn node_dict(n: &NodeRecord) -> Value {
        serde_json::to_value(node_view(n)).unwrap()
    }

    fn node_dict_with(n: &NodeRecord, f: &NodeFacts) -> Value {
        serde_json::to_value(node_view_with(n, f)).unwrap()
    }

    fn task() -> TaskRecord {
        let now = Utc::now();
        TaskRecord {
            id: Uuid::new_v4(),
            parent_id: None,
            action: "power_on_node".into(),
            design_ref: None,
            node_filter: None,
            node_name: Some("n1".into()),
            params: json!({}),
            status: TaskStatus::Complete,
            result_status: ResultStatus::Success,
            result_message: Some("ok".into()),
            result_reason: None,
            successes: vec!["n1".into()],
            failures: vec![],
            error_count: 0,
            retry: 0,
            max_attempts: 0,
            created: now,
            created_by: Some("op".into()),
            updated: now,
            terminated: None,
            terminated_by: None,
            terminate: false,
            owner: None,
            attempt: 1,
            deadline: None,
            epoch: 0,
            traceparent: None,
        }
    }

    fn msg(t: &TaskRecord, seq: i64) -> MessageRecord {
        MessageRecord {
            seq,
            task_id: t.id,
            message: format!("m{seq}"),
            error: false,
            context_type: "node".into(),
            context: "n1".into(),
            ts: Utc::now(),
            extra: None,
        }
    }

    #[test]
    fn task_dict_shape() {
        let t = task();
        let sub = Uuid::new_v4();
        let mut m = msg(&t, 1);
        m.error = true;
        let v = task_dict(&t, &[sub], &[m, msg(&t, 2)], None);
        assert_eq!(v["kind"], "Task");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["status"], "complete");
        assert_eq!(v["result"]["details"]["errorCount"], 1);
        assert_eq!(v["task_id"], t.id.to_string());
        assert_eq!(v["subtask_id_list"][0], sub.to_string());
        assert_eq!(v["node_name"], "n1");
        assert_eq!(v["result"]["status"], "success");
        assert_eq!(v["result"]["details"]["messageList"][0]["message"], "m1");
        assert_eq!(v["result"]["details"]["messageList"][0]["extra"], json!({}));
        assert!(v["created"].as_str().unwrap().ends_with('Z'));
        // Links only when absolute.
        assert_eq!(v["result"]["links"], json!([]));
        let v = task_dict(&t, &[sub], &[], Some("https://drydock.example:9000/"));
        assert_eq!(
            v["result"]["links"],
            json!([{"rel": "detail_logs",
                "href": format!("https://drydock.example:9000/api/v1.0/tasks/{}/builddata", t.id)}])
        );
    }

    #[test]
    fn a_cancelled_running_task_is_terminating() {
        let mut t = task();
        t.status = TaskStatus::Running;
        t.terminate = true;
        assert_eq!(task_dict(&t, &[], &[], None)["status"], "terminating");
        t.status = TaskStatus::Terminated;
        assert_eq!(task_dict(&t, &[], &[], None)["status"], "terminated");
    }

    #[test]
    fn message_list_is_capped_with_a_note() {
        let t = task();
        let msgs: Vec<_> = (0..MAX_MESSAGES as i64 + 5).map(|i| msg(&t, i)).collect();
        let v = result_dict(&t, &msgs, None);
        let list = v["details"]["messageList"].as_array().unwrap();
        assert_eq!(list.len(), MAX_MESSAGES + 1);
        assert_eq!(list[0]["extra"]["omitted"], 5);
        assert_eq!(list[1]["message"], "m5");
    }

    #[test]
    fn node_dict_drops_secrets() {
        let now = Utc::now();
        let n = NodeRecord {
            name: "n1".into(),
            spec: json!({"name": "n1", "password": "x1", "oob": {"type": "sim",
                "credentials": {"password": "x2"}}}),
            credential: Some("node-n1-oob".into()),
            power_state: None,
            boot_device: None,
            created: now,
            updated: now,
        };
        let v = node_dict(&n).to_string();
        assert!(!v.contains("x1") && !v.contains("x2"));
        assert!(v.contains("node-n1-oob"));
    }

    #[test]
    fn node_dict_has_drydocks_fields_from_the_drivers() {
        let now = Utc::now();
        let n = NodeRecord {
            name: "n1".into(),
            spec: json!({"name": "n1", "boot_mac": null, "oob": {"type": "ipmi",
                "address": "10.0.0.5"}}),
            credential: None,
            power_state: Some("off".into()),
            boot_device: None,
            created: now,
            updated: now,
        };
        let bare = node_dict(&n);
        assert_eq!(bare["hostname"], "n1");
        assert_eq!(bare["power_state"], "off");
        assert_eq!(bare["power_address"], "10.0.0.5");
        assert_eq!(bare["status_name"], Value::Null);
        let machine = json!({"identity": {"id": "abc123", "status": "Deployed"}, "raw": {
            "hostname": "n1", "memory": 65536, "cpu_count": 32, "status_name": "Deployed",
            "power_state": "on",
            "boot_interface": {"mac_address": "52:54:00:aa:bb:cc",
                "links": [{"mode": "static", "ip_address": "10.0.1.5"}]}}});
        let bd = |g: &str, v: &Value| BuildDataRecord {
            id: 1,
            node_name: "n1".into(),
            task_id: None,
            generator: g.into(),
            format: "application/json".into(),
            content: v.to_string(),
            collected: now,
        };
        let facts = NodeFacts::from_build_data(&[bd("interrogate_node", &machine)]);
        let v = node_dict_with(&n, &facts);
        assert_eq!(v["memory"], 65536);
        assert_eq!(v["cpu_count"], 32);
        assert_eq!(v["status_name"], "Deployed");
        assert_eq!(v["boot_mac"], "52:54:00:aa:bb:cc");
        assert_eq!(v["power_state"], "on");
        assert_eq!(v["boot_ip"], "10.0.1.5");
        assert_eq!(v["oob"]["type"], "ipmi");
    }
}
