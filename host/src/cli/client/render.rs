//! What the client prints: a task's progress and summary from a `layers`
//! answer, tables (through comfy-table), and JSON.

use anyhow::{Context, Result};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

use crate::wire::{TaskDict, TaskMessage};

/// How many messages `task show` prints.
const SHOW_MESSAGES: usize = 5;
/// How many error messages are printed per failed node.
const MESSAGES_PER_NODE: usize = 5;

/// Reads a task dict (leniently: missing fields take their defaults).
pub fn task_from_value(v: &Value) -> Result<TaskDict> {
    serde_json::from_value(v.clone())
        .context("the server sent a task that is not a Drydock task dict")
}

/// What a task worked on: its node, else its id.
fn label(t: &TaskDict) -> String {
    t.node_name.clone().unwrap_or_else(|| t.task_id.clone())
}

/// `Some` of a non-empty text.
fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Prints any wire value as pretty JSON.
pub fn print_json<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A task with its subtasks, from `GET /tasks/{id}?layers=2`
/// (`{"init_task_id": id, "<id>": task, "<subtask id>": subtask, ...}`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layers {
    /// The task asked for, as sent (for `--json`).
    pub raw: Value,
    /// The task asked for.
    pub task: TaskDict,
    /// Its subtasks present in the response (in `subtask_id_list` order,
    /// then any other task naming it as parent).
    pub subtasks: Vec<TaskDict>,
    /// How many subtasks it has (those listed but absent count as unfinished).
    pub total: usize,
}

impl Layers {
    /// Reads a layers response. A plain task dict (a server ignoring
    /// `layers`) is accepted as a task whose subtasks are all absent.
    pub fn from_value(v: &Value) -> Result<Layers> {
        let obj = v
            .as_object()
            .context("the server sent a task layers response that is not an object")?;
        let Some(init) = obj.get("init_task_id") else {
            let task = task_from_value(v)?;
            let total = task.subtask_id_list.len();
            return Ok(Layers {
                raw: v.clone(),
                task,
                subtasks: Vec::new(),
                total,
            });
        };
        let init = init
            .as_str()
            .context("init_task_id of the layers response is not a string")?;
        let raw = obj
            .get(init)
            .with_context(|| format!("the layers response lacks the task {init}"))?
            .clone();
        let task = task_from_value(&raw)?;
        let mut seen = BTreeSet::new();
        let mut subtasks = Vec::new();
        for id in &task.subtask_id_list {
            if seen.insert(id.clone())
                && let Some(s) = obj.get(id)
            {
                subtasks.push(task_from_value(s)?);
            }
        }
        for (key, s) in obj {
            if key == "init_task_id" || key == init || seen.contains(key) || !s.is_object() {
                continue;
            }
            let s = task_from_value(s)?;
            if s.parent_task_id.as_deref() == Some(init) {
                seen.insert(key.clone());
                subtasks.push(s);
            }
        }
        let total = seen.len();
        Ok(Layers {
            raw,
            task,
            subtasks,
            total,
        })
    }
}

/// How far a task has got, computed from its [`Layers`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The task's status.
    pub status: String,
    /// The task's result status.
    pub result: String,
    /// Number of subtasks.
    pub total: u64,
    /// Number of finished subtasks (all of them once the task has ended).
    pub finished: u64,
    /// Nodes (or subtasks) that succeeded, sorted.
    pub succeeded: Vec<String>,
    /// Nodes (or subtasks) that failed, sorted.
    pub failed: Vec<String>,
    /// Whether the task has ended.
    pub done: bool,
}

/// The nodes a finished subtask succeeded and failed on.
fn outcome(s: &TaskDict) -> (Vec<String>, Vec<String>) {
    let r = &s.result;
    if !r.successes.is_empty() || !r.failures.is_empty() {
        return (r.successes.clone(), r.failures.clone());
    }
    if s.succeeded() {
        (vec![label(s)], Vec::new())
    } else {
        (Vec::new(), vec![label(s)])
    }
}

impl Progress {
    /// Counts finished subtasks and the nodes that succeeded or failed (also
    /// those the task's own result names).
    pub fn of(l: &Layers) -> Progress {
        let mut ok = BTreeSet::new();
        let mut bad = BTreeSet::new();
        let mut finished = 0u64;
        for s in l.subtasks.iter().filter(|s| s.is_finished()) {
            finished += 1;
            let (a, b) = outcome(s);
            ok.extend(a);
            bad.extend(b);
        }
        ok.extend(l.task.result.successes.iter().cloned());
        bad.extend(l.task.result.failures.iter().cloned());
        let done = l.task.is_finished();
        let total = l.total as u64;
        Progress {
            status: l.task.status.clone(),
            result: l.task.result.status.clone(),
            total,
            finished: if done { total } else { finished.min(total) },
            succeeded: ok.into_iter().collect(),
            failed: bad.into_iter().collect(),
            done,
        }
    }

    /// The progress bar's message, e.g. `2 succeeded, 1 failed (running)`.
    pub fn message(&self) -> String {
        format!(
            "{} succeeded, {} failed ({})",
            self.succeeded.len(),
            self.failed.len(),
            self.status
        )
    }

    /// One line for a non-terminal, e.g.
    /// `running: 3/10 subtasks finished, 2 succeeded, 1 failed`.
    pub fn line(&self) -> String {
        format!(
            "{}: {}/{} subtasks finished, {} succeeded, {} failed",
            self.status,
            self.finished,
            self.total,
            self.succeeded.len(),
            self.failed.len()
        )
    }
}

/// A node (or subtask) that failed, with its error messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    /// Node name (or subtask id).
    pub node: String,
    /// The subtask's result message, then its error messages (deduplicated,
    /// the last few).
    pub messages: Vec<String>,
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    let s = s.trim();
    if !s.is_empty() && !v.iter().any(|m| m == s) {
        v.push(s.to_owned());
    }
}

fn keep_last(mut v: Vec<String>, n: usize) -> Vec<String> {
    if v.len() > n {
        v.drain(..v.len() - n);
    }
    v
}

/// The failed nodes of a task: each failed finished subtask's node with its
/// result message and error messages, then any node only the task's own
/// result lists as failed (with the task's error messages about it).
pub fn failures(l: &Layers) -> Vec<Failure> {
    let mut out: Vec<Failure> = Vec::new();
    for s in l.subtasks.iter().filter(|s| s.is_finished()) {
        let (_, bad) = outcome(s);
        if bad.is_empty() {
            continue;
        }
        let mut messages = Vec::new();
        if let Some(m) = &s.result.message {
            push_unique(&mut messages, m);
        }
        for m in s.result.details.message_list.iter().filter(|m| m.error) {
            push_unique(&mut messages, &m.message);
        }
        let messages = keep_last(messages, MESSAGES_PER_NODE);
        for node in bad {
            if !out.iter().any(|f| f.node == node) {
                out.push(Failure {
                    node,
                    messages: messages.clone(),
                });
            }
        }
    }
    for node in &l.task.result.failures {
        if out.iter().any(|f| &f.node == node) {
            continue;
        }
        let mut messages = Vec::new();
        for m in l.task.result.details.message_list.iter() {
            if m.error && m.context == *node {
                push_unique(&mut messages, &m.message);
            }
        }
        out.push(Failure {
            node: node.clone(),
            messages: keep_last(messages, MESSAGES_PER_NODE),
        });
    }
    out
}

/// `2024-05-01T12:00:00.123456Z` as `2024-05-01 12:00:00`; anything else as is.
fn short_time(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => ts.to_owned(),
    }
}

fn or_dash(s: Option<&str>) -> &str {
    match s {
        Some(s) if !s.is_empty() => s,
        _ => "-",
    }
}

/// The result as one phrase: `failure: reason text` or `success`.
fn result_phrase(t: &TaskDict) -> String {
    let status = or_dash(Some(&t.result.status));
    match t.result.message.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => format!("{status}: {m}"),
        None => status.to_owned(),
    }
}

fn format_failures(out: &mut String, f: &[Failure]) {
    if f.is_empty() {
        return;
    }
    out.push_str("failed nodes:\n");
    for f in f {
        match f.messages.split_first() {
            None => out.push_str(&format!("  {}\n", f.node)),
            Some((first, rest)) => {
                out.push_str(&format!("  {}: {first}\n", f.node));
                for m in rest {
                    out.push_str(&format!("    {m}\n"));
                }
            }
        }
    }
}

/// The human summary of a task (`task show`): action, status, result, nodes,
/// failures with their messages, and the last few messages of the task and
/// its subtasks.
pub fn format_summary(l: &Layers) -> String {
    let t = &l.task;
    let p = Progress::of(l);
    let mut rows: Vec<(&str, String)> = vec![
        ("task", t.task_id.clone()),
        ("action", t.action.clone()),
        ("status", t.status.clone()),
        ("result", result_phrase(t)),
    ];
    if let Some(r) = t.result.reason.as_deref().filter(|r| !r.is_empty()) {
        rows.push(("reason", r.to_owned()));
    }
    if let Some(d) = &t.design_ref {
        rows.push(("design", d.clone()));
    }
    let created = non_empty(&t.created);
    let updated = non_empty(&t.updated);
    let when_by = |ts: &Option<String>, by: &Option<String>| {
        let mut s = or_dash(ts.as_deref()).to_owned();
        if let Some(ts) = ts {
            s = short_time(ts);
        }
        if let Some(by) = by.as_deref().filter(|b| !b.is_empty()) {
            s.push_str(&format!(" by {by}"));
        }
        s
    };
    rows.push(("created", when_by(&created, &t.created_by)));
    if updated.is_some() {
        rows.push(("updated", when_by(&updated, &None)));
    }
    if t.terminated.is_some() || t.terminated_by.is_some() {
        rows.push(("terminated", when_by(&t.terminated, &t.terminated_by)));
    }
    rows.push(("subtasks", format!("{} ({} finished)", p.total, p.finished)));
    rows.push(("succeeded", list_or_none(&p.succeeded)));
    rows.push(("failed", list_or_none(&p.failed)));

    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &rows {
        out.push_str(&format!("{k:<width$}  {v}\n"));
    }
    format_failures(&mut out, &failures(l));

    let mut messages: Vec<&TaskMessage> = t.result.details.message_list.iter().collect();
    for s in &l.subtasks {
        messages.extend(s.result.details.message_list.iter());
    }
    messages.sort_by(|a, b| a.ts.cmp(&b.ts));
    if !messages.is_empty() {
        let n = messages.len();
        let shown = &messages[n.saturating_sub(SHOW_MESSAGES)..];
        if shown.len() < n {
            out.push_str(&format!("messages (last {} of {n}):\n", shown.len()));
        } else {
            out.push_str("messages:\n");
        }
        for m in shown {
            let level = if m.error { "error" } else { "info " };
            let ts = short_time(&m.ts);
            let ctx = Some(m.context.as_str())
                .filter(|c| !c.is_empty())
                .map(|c| format!("{c}: "))
                .unwrap_or_default();
            out.push_str(&format!("  {ts} {level} {ctx}{}\n", m.message));
        }
    }
    out
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_owned()
    } else {
        v.join(", ")
    }
}

/// What `watch` prints when the task has ended: its result, the counts, and
/// each failed node with its error messages.
pub fn format_report(l: &Layers) -> String {
    let t = &l.task;
    let p = Progress::of(l);
    let mut out = format!(
        "task {} {}: {}\n{} succeeded, {} failed\n",
        t.task_id,
        or_dash(Some(&t.status)),
        result_phrase(t),
        p.succeeded.len(),
        p.failed.len()
    );
    format_failures(&mut out, &failures(l));
    out
}

/// Left-aligned columns separated by two spaces, no borders (the last
/// column unpadded, no trailing blanks), through comfy-table.
pub fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().copied());
    for row in rows {
        table.add_row(row.iter().take(headers.len()));
    }
    let last = headers.len().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i < last { 2 } else { 0 }));
        column.set_cell_alignment(CellAlignment::Left);
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The `task list` table: id, action, status, result, created.
pub fn format_task_table(tasks: &[TaskDict]) -> String {
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.task_id.clone(),
                t.action.clone(),
                t.status.clone(),
                or_dash(Some(&t.result.status)).to_owned(),
                non_empty(&t.created)
                    .map(|c| short_time(&c))
                    .unwrap_or("-".into()),
            ]
        })
        .collect();
    format_table(&["ID", "ACTION", "STATUS", "RESULT", "CREATED"], &rows)
}

/// A node dict's field as text (`-` when absent or null).
fn node_field(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return "-".into(),
        }
    }
    match cur {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        // A boot override object: show its device.
        Value::Object(o) if o.contains_key("device") => node_field(cur, &["device"]),
        other => other.to_string(),
    }
}

/// The `node list` table: name, oob type, address, power, boot, tags.
/// (`nodes` as JSON: a [`crate::wire::NodeView`]'s description is
/// free-form).
pub fn format_node_table(nodes: &[Value]) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let mut address = node_field(n, &["oob", "address"]);
            if let Some(port) = n.pointer("/oob/port").filter(|p| !p.is_null()) {
                address = format!("{address}:{port}");
            }
            let tags = n
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .map(|t| {
                            t.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| t.to_string())
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            vec![
                node_field(n, &["name"]),
                node_field(n, &["oob", "type"]),
                address,
                node_field(n, &["power_state"]),
                node_field(n, &["boot_device"]),
                list_or_none(&tags),
            ]
        })
        .collect();
    format_table(&["NAME", "OOB", "ADDRESS", "POWER", "BOOT", "TAGS"], &rows)
}
