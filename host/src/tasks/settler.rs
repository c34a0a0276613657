//! The settler: the one place parents complete and orchestrations advance.
//!
//! Other components send it the ids of tasks whose children may all have
//! finished ([`Settle::Parents`]: the writer after each flush, the
//! scheduler's sweeps, a cancel) or orchestrations to move on
//! ([`Settle::Advance`]: a freshly started one). It works through them one
//! at a time, so two advances of the same orchestration never race, and
//! follows up on its own work (a finished step advances its orchestration,
//! a finished orchestration step-parent is settled) from a local queue —
//! never by calling back into another component.

use super::orchestration;
use super::result::Rolling;
use super::shared::Shared;
use crate::store::TaskStatus;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Work for the settler.
pub(super) enum Settle {
    /// Complete each of these whose children have all finished; the sender,
    /// if any, is told once they have been looked at.
    Parents(Vec<Uuid>, Option<oneshot::Sender<()>>),
    /// Move this orchestration on (start its next step or finish it).
    Advance(Uuid),
}

/// One unit of the settler's own queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    Parent(Uuid),
    Advance(Uuid),
}

/// Runs the settler until shutdown.
pub(super) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Settle>) {
    loop {
        let first = tokio::select! {
            s = rx.recv() => s,
            _ = shared.shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            return;
        };
        // Take everything already waiting, without repeats.
        let mut jobs: BTreeSet<Job> = BTreeSet::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(s) = next {
            match s {
                Settle::Parents(ids, ack) => {
                    jobs.extend(ids.into_iter().map(Job::Parent));
                    acks.extend(ack);
                }
                Settle::Advance(id) => {
                    jobs.insert(Job::Advance(id));
                }
            }
            next = rx.try_recv().ok();
        }
        let mut queue: VecDeque<Job> = jobs.into_iter().collect();
        while let Some(job) = queue.pop_front() {
            match job {
                Job::Parent(id) => {
                    if let Some(follow) = complete_parent(&shared, id).await {
                        queue.push_back(follow);
                    }
                }
                Job::Advance(id) => {
                    if let Err(e) = orchestration::advance(&shared, id).await {
                        tracing::warn!(task.id = %id, error = %e, "could not advance the orchestration; will retry");
                    }
                }
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Completes `parent` if all its children have finished, with Drydock's
/// result algebra. An orchestration, or a step of one, is advanced instead
/// (the returned job).
async fn complete_parent(shared: &Shared, parent: Uuid) -> Option<Job> {
    let store = &shared.store;
    let Ok(Some(task)) = store.get_task(parent).await else {
        return None;
    };
    if task.status != TaskStatus::Running {
        return None;
    }
    if orchestration::is_orchestration(&task) {
        return Some(Job::Advance(parent));
    }
    if let Some(orchestrator) = task.parent_id.filter(|_| orchestration::is_step(&task)) {
        // A step's nodes move on one by one: its orchestration decides.
        return Some(Job::Advance(orchestrator));
    }
    match store.has_open_subtasks(parent).await {
        Ok(false) => {}
        Ok(true) => return None,
        Err(e) => {
            tracing::warn!(task.id = %parent, error = %e, "could not check subtasks");
            return None;
        }
    }
    // Streamed: the roll-up keeps node names, not subtask rows.
    let mut rolling = Rolling::default();
    let read = store
        .fold_subtask_outcomes(parent, |id, node, status, result| {
            rolling.add(node, id, status, result)
        })
        .await;
    if let Err(e) = read {
        tracing::warn!(task.id = %parent, error = %e, "could not read subtasks");
        return None;
    }
    let r = rolling.finish();
    let result = r.status;
    // Only the owner settles a task (fenced by owner and epoch).
    let outcome = shared.rolled_up(&task, r);
    match store.finish_tasks(&[outcome]).await {
        Ok(1) => {
            tracing::info!(task.id = %parent, result = result.as_str(), "task finished");
            shared.announce_finished(parent);
            None
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(task.id = %parent, error = %e, "could not complete task");
            None
        }
    }
}
