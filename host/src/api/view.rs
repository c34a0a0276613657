//! Drydock's JSON shapes, built from store records by pure functions.
//!
//! - Task dict: `{"kind": "Task", "apiVersion": "v1.0", "task_id", "action",
//!   "parent_task_id", "subtask_id_list", "status", "node_filter",
//!   "design_ref", "result", "created", "created_by", "updated",
//!   "terminated", "terminated_by", "terminate", "retry", "node_name"?}`.
//! - Result (Drydock's `TaskStatus`): `{"kind": "Status", "apiVersion":
//!   "v1.0", "metadata": {}, "status", "message", "reason", "successes",
//!   "failures", "links", "details": {"errorCount", "messageList"}}`.
//! - Build data, with Drydock's names: `{"node_name", "task_id",
//!   "collected_date", "generator", "data_format", "data_element"}`.
//! - Node dict: `{"kind": "Node", "apiVersion": "v1.0", "name", <spec>,
//!   "power_state", "boot_device", "created", "updated"}`; it never holds a
//!   credential, only the name of the secret holding one.
//!
//! Timestamps are RFC 3339 in UTC with microseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::PREFIX;
use crate::store::{BuildDataRecord, MessageRecord, NodeRecord, ResultStatus, TaskRecord};

/// The most status messages shown in one task's `messageList` (the latest).
pub const MAX_MESSAGES: usize = 1000;

/// A timestamp as the API shows it.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A task's URL path.
pub fn task_href(id: Uuid) -> String {
    format!("{PREFIX}/tasks/{id}")
}

/// A node's URL path.
pub fn node_href(name: &str) -> String {
    format!("{PREFIX}/nodes/{name}")
}

/// One status message.
pub fn message_dict(m: &MessageRecord) -> Value {
    json!({
        "message": m.message,
        "error": m.error,
        "context_type": m.context_type,
        "context": m.context,
        "ts": timestamp(&m.ts),
        "extra": m.extra.clone().unwrap_or_else(|| json!({})),
    })
}

/// A task's `messageList`: its last [`MAX_MESSAGES`] messages, preceded by a
/// note saying how many were left out, if any.
fn message_list(t: &TaskRecord, messages: &[MessageRecord]) -> Vec<Value> {
    let cut = messages.len().saturating_sub(MAX_MESSAGES);
    let kept = &messages[cut..];
    let mut list = Vec::with_capacity(kept.len() + 1);
    if cut > 0 {
        list.push(json!({
            "message": format!("{cut} earlier messages omitted; the latest {MAX_MESSAGES} follow"),
            "error": false,
            "context_type": "task",
            "context": t.id.to_string(),
            "ts": timestamp(&kept[0].ts),
            "extra": {"omitted": cut},
        }));
    }
    list.extend(kept.iter().map(message_dict));
    list
}

/// A task's result (Drydock's `TaskStatus.to_dict()`), with the task's own
/// messages (`messages` in `seq` order).
pub fn result_dict(t: &TaskRecord, messages: &[MessageRecord]) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1.0",
        "metadata": {},
        "status": t.result_status.as_str(),
        "message": t.result_message,
        "reason": t.result_reason,
        "successes": t.successes,
        "failures": t.failures,
        "links": [{"rel": "detail_logs", "href": format!("{}/builddata", task_href(t.id))}],
        "details": {
            "errorCount": t.error_count,
            "messageList": message_list(t, messages),
        },
    })
}

/// A task dict (Drydock's `Task.to_dict()`).
pub fn task_dict(t: &TaskRecord, subtask_ids: &[Uuid], messages: &[MessageRecord]) -> Value {
    let mut v = json!({
        "kind": "Task",
        "apiVersion": "v1.0",
        "task_id": t.id.to_string(),
        "action": t.action,
        "parent_task_id": t.parent_id.map(|p| p.to_string()),
        "subtask_id_list": subtask_ids.iter().map(Uuid::to_string).collect::<Vec<_>>(),
        "status": t.status.as_str(),
        "node_filter": t.node_filter,
        "design_ref": t.design_ref,
        "result": result_dict(t, messages),
        "created": timestamp(&t.created),
        "created_by": t.created_by,
        "updated": timestamp(&t.updated),
        "terminated": t.terminated.as_ref().map(timestamp),
        "terminated_by": t.terminated_by,
        "terminate": t.terminate,
        "retry": t.retry,
    });
    if let Some(node) = &t.node_name {
        v["node_name"] = json!(node);
    }
    v
}

/// Whether a task belongs in `subtask_errors`: it reported errors or failed.
pub fn has_errors(t: &TaskRecord) -> bool {
    t.error_count > 0 || t.result_status == ResultStatus::Failure
}

/// One build data item (Drydock's `BuildData.to_dict()`, plus `id`).
pub fn build_data_dict(b: &BuildDataRecord) -> Value {
    json!({
        "id": b.id,
        "node_name": b.node_name,
        "task_id": b.task_id.map(|t| t.to_string()),
        "collected_date": timestamp(&b.collected),
        "generator": b.generator,
        "data_format": b.format,
        "data_element": b.content,
    })
}

/// Keys that could carry a credential and are dropped from node output
/// whatever the stored spec holds.
const SECRET_KEYS: &[&str] = &["credentials", "password"];

/// A node dict.
pub fn node_dict(n: &NodeRecord) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("Node"));
    m.insert("apiVersion".into(), json!("v1.0"));
    m.insert("name".into(), json!(n.name));
    if let Value::Object(spec) = &n.spec {
        for (k, v) in spec {
            if k != "name" && !SECRET_KEYS.contains(&k.as_str()) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(Value::Object(oob)) = m.get_mut("oob") {
        for k in SECRET_KEYS {
            oob.remove(*k);
        }
        if let Some(c) = &n.credential {
            oob.insert("credential".into(), json!(c));
        }
    }
    m.insert("power_state".into(), json!(n.power_state));
    m.insert("boot_device".into(), json!(n.boot_device));
    m.insert("created".into(), json!(timestamp(&n.created)));
    m.insert("updated".into(), json!(timestamp(&n.updated)));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TaskStatus;

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
        let v = task_dict(&t, &[sub], &[msg(&t, 1)]);
        assert_eq!(v["kind"], "Task");
        assert_eq!(v["task_id"], t.id.to_string());
        assert_eq!(v["subtask_id_list"][0], sub.to_string());
        assert_eq!(v["node_name"], "n1");
        assert_eq!(v["result"]["status"], "success");
        assert_eq!(v["result"]["details"]["messageList"][0]["message"], "m1");
        assert_eq!(v["result"]["details"]["messageList"][0]["extra"], json!({}));
        assert!(v["created"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            v["result"]["links"][0]["href"],
            format!("/api/v1.0/tasks/{}/builddata", t.id)
        );
    }

    #[test]
    fn message_list_is_capped_with_a_note() {
        let t = task();
        let msgs: Vec<_> = (0..MAX_MESSAGES as i64 + 5).map(|i| msg(&t, i)).collect();
        let v = result_dict(&t, &msgs);
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
}
