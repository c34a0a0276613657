//! Drydock's result algebra: per-node outcomes roll up into a parent's
//! status, successes and failures.

use crate::store::{ResultStatus, TaskRecord, TaskStatus};

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
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    let mut status = ResultStatus::Incomplete;
    for t in subtasks {
        let name = t.node_name.clone().unwrap_or_else(|| t.id.to_string());
        let s = match (t.status, t.result_status) {
            (TaskStatus::Complete, ResultStatus::Success) => ResultStatus::Success,
            (_, ResultStatus::PartialSuccess) => ResultStatus::PartialSuccess,
            _ => ResultStatus::Failure,
        };
        match s {
            ResultStatus::Success => successes.push(name),
            _ => failures.push(name),
        }
        status = combine(status, s);
    }
    if subtasks.is_empty() {
        status = ResultStatus::Failure;
    }
    successes.sort();
    failures.sort();
    let message = match status {
        ResultStatus::Success => format!("{} of {} succeeded", successes.len(), subtasks.len()),
        _ if subtasks.is_empty() => "no work was done".to_owned(),
        _ => format!(
            "{} of {} succeeded, {} failed",
            successes.len(),
            subtasks.len(),
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
