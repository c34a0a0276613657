//! What the engine's components share: the store, the drivers, the
//! settings, the channels that join the components, and a few helpers every
//! component needs (the fencing epoch, status messages, failing a task).
//!
//! Nothing here decides anything: each decision belongs to one component
//! (`scheduler`, `executor`, `writer`, `settler`, `bootactions`).

use super::dispatch::{BacklogCount, DispatchStats, Dispatched, QueuedHere};
use super::engine::{EngineConfig, EngineError};
use super::executor::{BmcLimits, Inflight};
use super::kv_reads::KvReads;
use super::orchestrator::{self, StepAction};
use super::settler::Settle;
use super::writer::{KvOverlay, Write};
use crate::cluster::Leadership;
use crate::design::{Design, DesignSource};
use crate::drivers::{Action, DriverSet, Runtime};
use crate::secrets::Secrets;
use crate::store::{
    NewBuildData, NewMessage, ResultStatus, Store, StoreError, TaskOutcome, TaskRecord,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// State and channels shared by the engine's components.
pub(super) struct Shared {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub drivers: Arc<DriverSet>,
    pub cfg: EngineConfig,
    pub leadership: Arc<Leadership>,
    pub designs: DesignSource,
    pub secrets: Secrets,
    /// Wakes the scheduler (new task, boot action report).
    pub wake_scheduler: Notify,
    /// Wakes the executor (new subtasks, free slots).
    pub wake_executor: Notify,
    /// Everything stops (the components return).
    pub shutdown: CancellationToken,
    /// This instance is leaving ([`super::drain`]): it takes no new work
    /// and hands back what it has not started.
    pub draining: CancellationToken,
    /// Cancelled by the executor once it has stopped taking work (every
    /// call it took is then in [`Inflight`]), so a drain's wait for the
    /// calls in flight misses none.
    pub executor_parked: CancellationToken,
    /// Cuts every driver call in flight here (a child of `shutdown`); a
    /// call cut by it is left running under this instance, for requeue.
    pub calls: CancellationToken,
    /// Ids of tasks as they finish (for waiters).
    pub finished: broadcast::Sender<Uuid>,
    /// To the writer (bounded: senders wait while the database is slow).
    pub writes: mpsc::Sender<Write>,
    /// To the settler.
    pub settle: mpsc::UnboundedSender<Settle>,
    /// Driver calls in flight here (owned by the executor).
    pub inflight: Inflight,
    /// The executor's call slots (`max_concurrency`): taken by the
    /// executor's claims and by subtasks reserved as they are created
    /// ([`super::dispatch`]).
    pub slots: Arc<Semaphore>,
    /// Subtasks created already running here, to the executor.
    pub dispatch: mpsc::UnboundedSender<Dispatched>,
    /// How subtasks reached the executor here.
    pub dispatch_stats: DispatchStats,
    /// How many subtasks created running here wait for a call slot.
    pub backlog: BacklogCount,
    /// Ids of subtasks created queued here, which the executor claims by id.
    pub queued_here: QueuedHere,
    /// Per-BMC limits, shared by subtasks and probes (the fleet's sync).
    pub bmcs: Arc<BmcLimits>,
    /// Node timelines (driver calls and the state changes they make).
    pub timeline: Arc<crate::fleet::Timeline>,
    /// This instance's sync counters (kept here so the API can read them).
    pub fleet_stats: Arc<crate::fleet::FleetStats>,
    /// Key-value writes not yet in the store (owned by the writer).
    pub kv: KvOverlay,
    /// Key-value reads of the store, gathered into batches.
    pub kv_reads: KvReads,
    /// Each driver's key-value usage, shared by its calls here (read from
    /// the store again every second for other instances' writes).
    pub kv_ledger: Arc<crate::drivers::kv_ledger::KvLedger>,
    /// The design of each orchestrator task in progress here (parsed once
    /// per task; re-read after a restart).
    pub task_designs: Mutex<HashMap<Uuid, Arc<Design>>>,
    /// The leadership's loop (beats, the lease, the leader lock): awaited
    /// by a drain, whose end it ends (true: the heartbeat was removed).
    pub leader_task: Mutex<Option<tokio::task::JoinHandle<bool>>>,
}

impl Shared {
    /// The fencing epoch this instance claims and writes under.
    pub fn epoch(&self) -> i64 {
        self.leadership.epoch()
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.cfg.instance_id
    }

    /// A driver action's time limit (configured, or Drydock's default).
    pub fn timeout(&self, action: Action) -> Duration {
        self.cfg
            .timeouts
            .get(action.name())
            .copied()
            .unwrap_or_else(|| action.default_timeout())
    }

    /// A step's time limit: its driver action's, or for the wait for boot
    /// action reports `timeouts.boot_action_report` (Drydock's 15 minutes).
    pub fn step_timeout(&self, action: StepAction) -> Duration {
        match action {
            StepAction::Driver(a) => self.timeout(a),
            StepAction::BootActionReport => self
                .cfg
                .timeouts
                .get(orchestrator::BOOT_ACTION_REPORT)
                .copied()
                .unwrap_or(Duration::from_secs(15 * 60)),
        }
    }

    /// A cancel token for one driver call: cut by a cancel of its task, by
    /// the end of a drain, or by shutdown.
    pub fn call_token(&self) -> CancellationToken {
        self.calls.child_token()
    }

    /// Waits for a wake-up or the poll interval; false once shutting down.
    pub async fn idle(&self, wake: &Notify) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = wake.notified() => true,
            _ = tokio::time::sleep(self.cfg.poll_interval) => true,
        }
    }

    /// Queues a status message for task `task` (about `node`, or the task),
    /// waiting while the writer's queue is full.
    pub async fn message(&self, task: Uuid, node: Option<&str>, message: String, error: bool) {
        let (context_type, context) = match node {
            Some(n) => ("node", n.to_owned()),
            None => ("task", task.to_string()),
        };
        let _ = self
            .writes
            .send(Write::Message(NewMessage {
                task_id: task,
                message,
                error,
                context_type: context_type.into(),
                context,
                extra: None,
            }))
            .await;
    }

    /// Stores build data, then keeps the node's newest within the per-node
    /// limits.
    pub async fn store_build_data(&self, data: &NewBuildData) -> Result<(), StoreError> {
        self.store.add_build_data(data).await?;
        let limits = self.runtime.limits();
        self.store
            .prune_build_data(
                &data.node_name,
                limits.build_data_per_node,
                limits.build_data_bytes_per_node,
            )
            .await?;
        Ok(())
    }

    /// Tells waiters that task `id` finished.
    pub fn announce_finished(&self, id: Uuid) {
        crate::observe::traces::task_finished(id);
        let _ = self.finished.send(id);
    }

    /// Asks the settler to look at `parents` (complete those whose children
    /// have all finished, advance orchestrations).
    pub fn settle(&self, parents: Vec<Uuid>) {
        if !parents.is_empty() {
            let _ = self.settle.send(Settle::Parents(parents, None));
        }
    }

    /// Ends top-level task `t` as failed with `reason` (fenced by owner and
    /// epoch), with the reason in its messages.
    pub async fn fail_task(&self, t: &TaskRecord, reason: &str) {
        let mut outcome = TaskOutcome::complete(
            t.id,
            self.instance_id(),
            self.epoch(),
            ResultStatus::Failure,
        );
        outcome.result_message = Some(reason.to_owned());
        outcome.result_reason = Some(reason.to_owned());
        outcome.error_count = 1;
        let msg = NewMessage {
            task_id: t.id,
            message: reason.to_owned(),
            error: true,
            context_type: "task".into(),
            context: t.id.to_string(),
            extra: None,
        };
        if let Err(e) = self.store.add_messages(&[msg]).await {
            tracing::warn!(task.id = %t.id, error = %e, "could not record a task message");
        }
        match self.store.finish_tasks(&[outcome]).await {
            Ok(_) => self.announce_finished(t.id),
            Err(e) => tracing::error!(task.id = %t.id, error = %e, "could not fail the task"),
        }
    }

    /// `names` without the nodes in maintenance (issue 20's fleet hook:
    /// tasks skip them), each skipped one noted on task `t`.
    pub async fn skip_maintenance(
        &self,
        t: &TaskRecord,
        names: impl IntoIterator<Item = String>,
    ) -> Result<Vec<String>, StoreError> {
        let maintenance = self.store.nodes_in_maintenance().await?;
        let mut kept = Vec::new();
        for n in names {
            match maintenance.get(&n) {
                Some(why) => {
                    let text = format!(
                        "node {n} skipped: it is in maintenance: {why}; clear it with \
                         `drydock fleet maintenance clear {n}` (DELETE /api/v1.0/nodes/{n}/maintenance)"
                    );
                    self.message(t.id, Some(&n), text, false).await;
                }
                None => kept.push(n),
            }
        }
        Ok(kept)
    }

    /// Completes `t` successfully with nothing done, as Drydock does when a
    /// node filter selects no node: "No nodes in scope, no work to do."
    pub async fn nothing_to_do(&self, t: &TaskRecord) {
        const NOTHING: &str = "No nodes in scope, no work to do.";
        let mut outcome = TaskOutcome::complete(
            t.id,
            self.instance_id(),
            self.epoch(),
            ResultStatus::Success,
        );
        outcome.result_message = Some(NOTHING.into());
        let msg = NewMessage {
            task_id: t.id,
            message: NOTHING.into(),
            error: false,
            context_type: "NA".into(),
            context: "NA".into(),
            extra: None,
        };
        if let Err(e) = self.store.add_messages(&[msg]).await {
            tracing::warn!(task.id = %t.id, error = %e, "could not record a task message");
        }
        match self.store.finish_tasks(&[outcome]).await {
            Ok(_) => {
                tracing::info!(task.id = %t.id, action = %t.action, "the node filter selects no node: nothing to do");
                self.announce_finished(t.id);
            }
            Err(e) => tracing::error!(task.id = %t.id, error = %e, "could not complete the task"),
        }
    }

    /// The fenced outcome completing container `t` with roll-up `r`
    /// (terminated, naming who cancelled, when a cancel was requested).
    pub fn rolled_up(&self, t: &TaskRecord, r: super::result::Rollup) -> TaskOutcome {
        let (status, message) = if t.terminate {
            (
                crate::store::TaskStatus::Terminated,
                format!(
                    "cancelled by {}: {}",
                    t.terminated_by.as_deref().unwrap_or("?"),
                    r.message
                ),
            )
        } else {
            (crate::store::TaskStatus::Complete, r.message)
        };
        TaskOutcome {
            id: t.id,
            owner: self.instance_id().to_owned(),
            epoch: self.epoch(),
            status,
            result_status: r.status,
            result_message: Some(message),
            result_reason: None,
            successes: r.successes,
            failures: r.failures,
            error_count: r.error_count,
            retry: t.retry,
            terminated_by: t.terminated_by.clone(),
        }
    }

    /// The design of orchestrator task `t`, parsed once per task.
    pub async fn task_design(&self, t: &TaskRecord) -> Result<Arc<Design>, EngineError> {
        if let Some(d) = self.task_designs.lock().expect("designs").get(&t.id) {
            return Ok(d.clone());
        }
        let r = t
            .design_ref
            .as_deref()
            .ok_or_else(|| EngineError::Invalid("the task has no design_ref".into()))?;
        let d = self
            .designs
            .load(r)
            .await
            .map_err(|e| EngineError::Design(e.to_string()))?;
        self.task_designs
            .lock()
            .expect("designs")
            .insert(t.id, d.clone());
        Ok(d)
    }

    /// Forgets the parsed design of a finished orchestrator task.
    pub fn forget_design(&self, id: Uuid) {
        self.task_designs.lock().expect("designs").remove(&id);
    }
}
