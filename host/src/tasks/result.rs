//! Drydock's result algebra: per-node outcomes roll up into a parent's
//! status, successes and failures.

use crate::store::{ResultStatus, TaskRecord, TaskStatus};
use uuid::Uuid;

/// The rolled-up result of a parent task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollup {
    /// success / partial_success / failure.
    pub status: ResultStatus,
    /// Nodes that succeeded (sorted).
    pub successes: Vec<String>,
    /// Nodes that failed (sorted).
    pub failures: Vec<String>,
    /// Subtasks with a failure.
    pub error_count: i64,
    /// A one-line summary.
    pub message: String,
}

/// Combines two result statuses: success on top of failure gives
/// partial_success (Drydock's rule).
pub fn combine(a: ResultStatus, b: ResultStatus) -> ResultStatus {
    use ResultStatus::*;
    match (a, b) {
        (Incomplete, x) | (x, Incomplete) => x,
        (Success, Success) => Success,
        (Failure, Failure) => Failure,
        _ => PartialSuccess,
    }
}

/// Rolls up finished subtasks. A subtask counts as a success of its node
/// when its result is success; anything else (failure, cancelled, never
/// run) is a failure of its node.
pub fn rollup(subtasks: &[TaskRecord]) -> Rollup {
    let mut r = Rolling::default();
    for t in subtasks {
        r.add(t.node_name.as_deref(), t.id, t.status, t.result_status);
    }
    r.finish()
}

/// A roll-up fed one subtask at a time ([`rollup`] without holding the
/// subtasks: what it keeps is the node names the result lists).
#[derive(Default)]
pub struct Rolling {
    successes: Vec<String>,
    failures: Vec<String>,
    status: Option<ResultStatus>,
    subtasks: usize,
}

impl Rolling {
    /// Adds one finished subtask: its node (its id when it has none), its
    /// status and result.
    pub fn add(&mut self, node: Option<&str>, id: Uuid, status: TaskStatus, result: ResultStatus) {
        let name = node.map_or_else(|| id.to_string(), str::to_owned);
        let s = match (status, result) {
            (TaskStatus::Complete, ResultStatus::Success) => ResultStatus::Success,
            (_, ResultStatus::PartialSuccess) => ResultStatus::PartialSuccess,
            _ => ResultStatus::Failure,
        };
        match s {
            ResultStatus::Success => self.successes.push(name),
            _ => self.failures.push(name),
        }
        self.status = Some(combine(self.status.unwrap_or(ResultStatus::Incomplete), s));
        self.subtasks += 1;
    }

    /// The roll-up of what was added.
    pub fn finish(self) -> Rollup {
        let Rolling {
            mut successes,
            mut failures,
            status,
            subtasks,
        } = self;
        let status = status.unwrap_or(ResultStatus::Failure);
        successes.sort();
        failures.sort();
        let message = match status {
            ResultStatus::Success => format!("{} of {} succeeded", successes.len(), subtasks),
            _ if subtasks == 0 => "no work was done".to_owned(),
            _ => format!(
                "{} of {} succeeded, {} failed",
                successes.len(),
                subtasks,
                failures.len()
            ),
        };
        Rollup {
            status,
            error_count: failures.len() as i64,
            successes,
            failures,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewTask;

    fn sub(node: &str, status: TaskStatus, result: ResultStatus) -> TaskRecord {
        let t = NewTask::subtask(uuid::Uuid::new_v4(), "power_on_node", node);
        TaskRecord {
            id: t.id,
            parent_id: t.parent_id,
            action: t.action,
            design_ref: None,
            node_filter: None,
            node_name: t.node_name,
            params: serde_json::json!({}),
            status,
            result_status: result,
            result_message: None,
            result_reason: None,
            successes: vec![],
            failures: vec![],
            error_count: 0,
            retry: 0,
            max_attempts: 0,
            created: chrono::Utc::now(),
            created_by: None,
            updated: chrono::Utc::now(),
            terminated: None,
            terminated_by: None,
            terminate: false,
            owner: None,
            attempt: 0,
            deadline: None,
            epoch: 0,
            traceparent: None,
        }
    }

    #[test]
    fn algebra() {
        use ResultStatus::*;
        assert_eq!(combine(Success, Failure), PartialSuccess);
        assert_eq!(combine(Incomplete, Failure), Failure);
        assert_eq!(combine(Success, Success), Success);
        assert_eq!(combine(PartialSuccess, Success), PartialSuccess);
    }

    #[test]
    fn rollups() {
        use ResultStatus::*;
        let ok = rollup(&[
            sub("b", TaskStatus::Complete, Success),
            sub("a", TaskStatus::Complete, Success),
        ]);
        assert_eq!(ok.status, Success);
        assert_eq!(ok.successes, vec!["a", "b"]);
        let mixed = rollup(&[
            sub("a", TaskStatus::Complete, Success),
            sub("b", TaskStatus::Complete, Failure),
            sub("c", TaskStatus::Terminated, Failure),
        ]);
        assert_eq!(mixed.status, PartialSuccess);
        assert_eq!(mixed.failures, vec!["b", "c"]);
        assert_eq!(mixed.error_count, 2);
        assert_eq!(rollup(&[]).status, Failure);
        assert_eq!(
            rollup(&[sub("a", TaskStatus::Complete, Failure)]).status,
            Failure
        );
    }
}
