//! New tasks as PostgreSQL `COPY ... FROM STDIN (FORMAT csv)` data: a
//! fan-out of any size is one statement of constant text, streamed, with no
//! bind parameters and no limit on rows per statement.
//!
//! Every non-null field is quoted (quotes doubled), so no value can end a
//! row or the data early (`\.` inside quotes is data); null is an unquoted
//! empty field.

use chrono::{DateTime, SecondsFormat, Utc};

use super::NewTask;

/// The statement the rows of [`rows`] feed, columns in their order.
pub(super) const STATEMENT: &str = "COPY tasks (id, parent_id, action, design_ref, node_filter, \
     node_name, params, status, created, created_by, updated, deadline, owner, epoch, attempt, \
     max_attempts, traceparent) FROM STDIN WITH (FORMAT csv)";

/// Rows built and sent per `CopyData` message (about 0.5 MB).
pub(super) const ROWS_PER_SEND: usize = 2_000;

/// `tasks` as CSV rows for [`STATEMENT`], all created (and updated) at
/// `now`.
pub(super) fn rows(tasks: &[NewTask], now: DateTime<Utc>) -> Vec<u8> {
    let now = timestamp(now);
    let mut out = String::with_capacity(tasks.len() * 256);
    for t in tasks {
        let id = t.id.to_string();
        let parent = t.parent_id.map(|p| p.to_string());
        let filter = t.node_filter_json().map(|j| j.0.to_string());
        let params = t.params_json().0.to_string();
        let deadline = t.deadline.map(|d| timestamp(super::trunc(d)));
        let (epoch, attempt, max_attempts) = (
            t.epoch.to_string(),
            t.attempt.to_string(),
            t.max_attempts.to_string(),
        );
        let fields: [Option<&str>; 17] = [
            Some(&id),
            parent.as_deref(),
            Some(&t.action),
            t.design_ref.as_deref(),
            filter.as_deref(),
            t.node_name.as_deref(),
            Some(&params),
            Some(t.status.as_str()),
            Some(&now),
            t.created_by.as_deref(),
            Some(&now),
            deadline.as_deref(),
            t.owner.as_deref(),
            Some(&epoch),
            Some(&attempt),
            Some(&max_attempts),
            t.traceparent.as_deref(),
        ];
        for (i, field) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(value) = field {
                quoted(&mut out, value);
            }
        }
        out.push('\n');
    }
    out.into_bytes()
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_is_quoted_and_nulls_are_empty() {
        let mut t = NewTask::subtask(uuid::Uuid::nil(), "deploy_node", "n\"1,\n\\.");
        t.params = json!({"a": "x\"y"});
        let now = DateTime::parse_from_rfc3339("2026-12-06T17:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let text = String::from_utf8(rows(&[t.clone()], now)).unwrap();
        let expected = format!(
            "\"{}\",\"{}\",\"deploy_node\",,,\"n\"\"1,\n\\.\",\"{{\"\"a\"\":\"\"x\\\"\"y\"\"}}\",\
             \"queued\",\"2026-12-06T17:00:00.123456Z\",,\"2026-12-06T17:00:00.123456Z\",,,\
             \"0\",\"0\",\"{}\",\n",
            t.id,
            uuid::Uuid::nil(),
            t.max_attempts
        );
        assert_eq!(text, expected);
    }
}
