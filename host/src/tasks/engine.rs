//! The task engine: scheduler, executor and writer.
//!
//! - **Scheduler**: claims queued top-level tasks, resolves their node
//!   filter and inserts one queued subtask per node (one batched insert). A
//!   task claimed again after a restart keeps the subtasks it has.
//! - **Executor**: claims queued subtasks in batches (never more than it has
//!   room for), runs each driver call under a global limit and a per-BMC
//!   limit, retries retryable failures with backoff inside the action's
//!   deadline, and stops at once when the task is cancelled.
//! - **Writer**: batches driver key-value writes, subtask outcomes and status
//!   messages into the store (outcomes fenced by owner and epoch), then
//!   completes every parent whose subtasks are all finished, with Drydock's
//!   result algebra. Key-value writes are visible to reads on this instance
//!   at once and reach the store before the outcome of the call that made
//!   them; if the process dies first, that call was not recorded either and
//!   is re-run (actions are idempotent).
//!
//! On start, this instance's unfinished work is put back in the queue: driver
//! actions are idempotent by contract, so re-running them is safe.

use super::filter::{NodeFilter, select};
use super::leader::{LeaderConfig, Leadership};
use super::orchestrator::{self, Orchestration, StepAction, StepParams, StepResult};
use super::result::rollup;
use crate::design::{Design, DesignSource, PlatformCatalog};
use crate::drivers::{
    Action, CallError, CallRequest, DriverServices, DriverSet, Runtime,
    services::{BuildData, ServiceError, StatusMessage},
};
use crate::model::{self, ActionParams};
use crate::secrets::Secrets;
use crate::store::{
    ClaimScope, ClaimSpec, NewBuildData, NewMessage, NewTask, NodeRecord, ResultStatus, Store,
    StoreError, TaskOutcome, TaskRecord, TaskStatus,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How far past its deadline a subtask may still be running before the
/// leader fails it: its owner enforces the deadline itself and normally
/// finishes well within this.
pub const OVERDUE_GRACE: Duration = Duration::from_secs(30);

/// How often the leader looks at the waits for boot action reports.
const WAITS_EVERY: Duration = Duration::from_millis(250);

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// This instance's id (owner of the work it claims).
    pub instance_id: String,
    /// Driver calls in flight at once on this instance.
    pub max_concurrency: usize,
    /// Driver calls in flight at once against one BMC address.
    pub per_bmc: usize,
    /// Subtasks claimed per query.
    pub claim_batch: i64,
    /// How often idle loops look for work (they are also woken directly).
    pub poll_interval: Duration,
    /// Attempts per subtask for retryable failures (1 = no retry).
    pub max_attempts: u32,
    /// First retry delay (doubles each time, capped at 10 s).
    pub retry_backoff: Duration,
    /// Per-action time limits overriding Drydock's defaults.
    pub timeouts: BTreeMap<String, Duration>,
    /// Outcomes written per batch at most.
    pub write_batch: usize,
    /// Directory `file:` design references are read from (none: refused).
    pub design_dir: Option<std::path::PathBuf>,
    /// Secrets from the config file (tried before the environment and the
    /// database).
    pub secrets: crate::drivers::GrantedSecrets,
    /// Leader lease timing.
    pub leader: LeaderConfig,
    /// Where deployed nodes reach the boot action API
    /// (`<public url>/api/v1.0/bootactions/`), given to their templates as
    /// `action.report_url` and to their first-boot script.
    pub boot_action_url: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            instance_id: format!("drydock-{}", Uuid::new_v4().simple()),
            max_concurrency: 256,
            per_bmc: 4,
            claim_batch: 256,
            poll_interval: Duration::from_millis(200),
            max_attempts: 3,
            retry_backoff: Duration::from_millis(500),
            timeouts: BTreeMap::new(),
            write_batch: 1000,
            design_dir: None,
            secrets: Default::default(),
            leader: LeaderConfig::default(),
            boot_action_url: "http://127.0.0.1:9000/api/v1.0/bootactions/".into(),
        }
    }
}

/// What a client asks for.
#[derive(Clone, Debug, Default)]
pub struct TaskRequest {
    /// Action name (a driver action such as `power_cycle_node`).
    pub action: String,
    /// Site design reference.
    pub design_ref: Option<String>,
    /// Drydock node filter; `None`/`null` = every node.
    pub node_filter: Option<serde_json::Value>,
    /// Action parameters ([`ActionParams`] as JSON).
    pub params: Option<serde_json::Value>,
    /// Who asks.
    pub created_by: Option<String>,
}

impl TaskRequest {
    /// Checks what can be checked before anything is stored: the action is
    /// known (orchestrator actions need a `design_ref`), the node filter and
    /// the params parse. Returns the task's action name.
    pub fn check(&self) -> Result<&str, EngineError> {
        let name: &str = match Orchestration::parse(&self.action) {
            Some(_) => {
                if self.design_ref.as_deref().unwrap_or("").trim().is_empty() {
                    return Err(EngineError::Invalid(format!(
                        "action `{}` needs a design_ref (file://, http(s):// or deckhand+http://)",
                        self.action
                    )));
                }
                &self.action
            }
            None if self.action == "relabel_nodes" || self.action == "noop" => {
                return Err(EngineError::Invalid(format!(
                    "action `{}` is not supported",
                    self.action
                )));
            }
            None => match self.action.parse::<Action>() {
                Ok(a) => a.name(),
                Err(e) => {
                    return Err(EngineError::Invalid(format!(
                        "{e}; orchestrator actions are validate_design, verify_site, \
                         prepare_site, verify_nodes, prepare_nodes, deploy_nodes, destroy_nodes"
                    )));
                }
            },
        };
        if let Some(f) = &self.node_filter {
            NodeFilter::from_json(f).map_err(EngineError::Invalid)?;
        }
        let params = self.params.clone().unwrap_or(serde_json::json!({}));
        serde_json::from_value::<ActionParams>(params)
            .map_err(|e| EngineError::Invalid(format!("invalid params: {e}")))?;
        Ok(name)
    }
}

/// Engine failures, by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is not acceptable (unknown action, bad filter or params).
    #[error("{0}")]
    Invalid(String),
    /// No such task.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One finished subtask on its way to the store.
struct Finished {
    outcome: TaskOutcome,
    parent: Option<Uuid>,
    node_state: Option<(String, Option<&'static str>, Option<&'static str>)>,
}

enum Write {
    Finished(Finished),
    Message(NewMessage),
    /// A driver key-value write (None deletes), with its sequence number.
    Kv(String, String, Option<String>, u64),
}

/// Driver key-value writes not yet in the store: reads see them, the writer
/// flushes them in batches before the outcomes of the calls that made them.
#[derive(Default)]
struct PendingKv {
    seq: u64,
    entries: HashMap<(String, String), (Option<String>, u64)>,
}

struct Inner {
    store: Store,
    runtime: Arc<Runtime>,
    drivers: Arc<DriverSet>,
    cfg: EngineConfig,
    leadership: Arc<Leadership>,
    wake_scheduler: Notify,
    wake_executor: Notify,
    slots: Arc<Semaphore>,
    bmc_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// In-flight subtasks: id → (parent, cancel token).
    inflight: Mutex<HashMap<Uuid, (Option<Uuid>, CancellationToken)>>,
    writes: mpsc::UnboundedSender<Write>,
    shutdown: CancellationToken,
    /// Ids of top-level tasks as they finish.
    finished: tokio::sync::broadcast::Sender<Uuid>,
    kv_pending: Mutex<PendingKv>,
    designs: DesignSource,
    secrets: Secrets,
    /// The design of each orchestrator task in progress here (parsed once
    /// per task; re-read after a restart).
    task_designs: Mutex<HashMap<Uuid, Arc<Design>>>,
    /// Serialises orchestration steps (see `advance`).
    advance_lock: tokio::sync::Mutex<()>,
}

/// The task engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts an engine: requeues this instance's unfinished work and spawns
    /// the scheduler, executor and writer. They stop on [`Engine::shutdown`].
    pub async fn start(
        store: Store,
        runtime: Arc<Runtime>,
        drivers: Arc<DriverSet>,
        cfg: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let designs = DesignSource::new(cfg.design_dir.as_deref())
            .map_err(|e| EngineError::Invalid(format!("design directory: {e}")))?;
        let secrets = Secrets::standard(cfg.secrets.clone(), store.clone());
        // Lead (or learn who leads) before taking any work.
        let leadership = Arc::new(Leadership::new(cfg.instance_id.clone(), cfg.leader.clone()));
        leadership.tick(&store).await;
        let requeued = store.requeue_owned(&cfg.instance_id).await?;
        if requeued > 0 {
            tracing::warn!(
                instance = %cfg.instance_id,
                requeued,
                "resuming work left unfinished by a previous run of this instance"
            );
        }
        let inner = Arc::new(Inner {
            slots: Arc::new(Semaphore::new(cfg.max_concurrency)),
            store,
            runtime,
            drivers,
            leadership: leadership.clone(),
            cfg,
            wake_scheduler: Notify::new(),
            wake_executor: Notify::new(),
            bmc_limits: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            writes: tx,
            shutdown: CancellationToken::new(),
            finished: tokio::sync::broadcast::channel(1024).0,
            kv_pending: Mutex::new(PendingKv::default()),
            designs,
            secrets,
            task_designs: Mutex::new(HashMap::new()),
            advance_lock: tokio::sync::Mutex::new(()),
        });
        let engine = Engine { inner };
        {
            let (l, store, stop) = (
                engine.inner.leadership.clone(),
                engine.inner.store.clone(),
                engine.inner.shutdown.clone(),
            );
            tokio::spawn(async move { l.run(store, stop).await });
        }
        tokio::spawn(engine.clone().cancel_watch());
        tokio::spawn(engine.clone().scheduler());
        tokio::spawn(engine.clone().executor());
        tokio::spawn(engine.clone().writer(rx));
        Ok(engine)
    }

    /// Stops claiming work and cuts in-flight calls (they are requeued on
    /// the next start).
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The fencing epoch this instance claims and writes under.
    fn epoch(&self) -> i64 {
        self.inner.leadership.epoch()
    }

    /// Who leads, as this instance knows it.
    pub fn leadership(&self) -> &Leadership {
        &self.inner.leadership
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.inner.cfg.instance_id
    }

    /// Where deployed nodes reach the boot action API.
    pub fn boot_action_url(&self) -> &str {
        &self.inner.cfg.boot_action_url
    }

    /// Asks the scheduler to look at its work now (e.g. a boot action
    /// reported).
    pub fn wake_scheduler(&self) {
        self.inner.wake_scheduler.notify_one();
    }

    /// The loaded drivers.
    pub fn drivers(&self) -> &DriverSet {
        &self.inner.drivers
    }

    /// Driver calls in flight on this instance.
    pub fn inflight(&self) -> usize {
        self.inner.inflight.lock().expect("inflight lock").len()
    }

    /// Waits until task `id` is complete or terminated, at most `within`.
    /// Returns the task as it is then (possibly still running).
    pub async fn wait_finished(
        &self,
        id: Uuid,
        within: Duration,
    ) -> Result<TaskRecord, EngineError> {
        let mut events = self.inner.finished.subscribe();
        let until = tokio::time::Instant::now() + within;
        loop {
            let task = self
                .inner
                .store
                .get_task(id)
                .await?
                .ok_or_else(|| EngineError::NotFound(format!("task {id} not found")))?;
            if task.status.is_terminal() {
                return Ok(task);
            }
            // Wake on any finish event (ours or another's, or a lagged
            // channel), or re-check every second for work finished elsewhere.
            let next = tokio::time::Instant::now() + Duration::from_secs(1);
            match tokio::time::timeout_at(next.min(until), events.recv()).await {
                _ if tokio::time::Instant::now() >= until => return Ok(task),
                _ => continue,
            }
        }
    }

    /// Validates and queues a task.
    pub async fn submit(&self, req: TaskRequest) -> Result<TaskRecord, EngineError> {
        let name = req.check()?.to_owned();
        let params = req.params.clone().unwrap_or(serde_json::json!({}));
        let mut task = NewTask::new(name.as_str());
        task.design_ref = req.design_ref.clone();
        task.node_filter = req.node_filter.filter(|f| !f.is_null());
        task.params = params;
        task.created_by = req.created_by;
        let record = self.inner.store.insert_task(&task).await?;
        tracing::info!(task.id = %record.id, action = %name, "task queued");
        self.inner.wake_scheduler.notify_one();
        Ok(record)
    }

    /// Cancels a task: nothing new is scheduled, queued subtasks end
    /// terminated, in-flight driver calls are cut; the task ends terminated.
    pub async fn cancel(&self, id: Uuid, by: &str) -> Result<TaskRecord, EngineError> {
        let task = self
            .inner
            .store
            .request_cancel(id, by)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("task {id} not found")))?;
        // An orchestrator task's driver calls are its steps' subtasks.
        let mut parents: HashSet<Uuid> = self
            .inner
            .store
            .subtask_ids(id)
            .await?
            .into_iter()
            .collect();
        parents.insert(id);
        let tokens: Vec<CancellationToken> = {
            let inflight = self.inner.inflight.lock().expect("inflight lock");
            inflight
                .iter()
                .filter(|(sub, (parent, _))| {
                    **sub == id || parent.is_some_and(|p| parents.contains(&p))
                })
                .map(|(_, (_, t))| t.clone())
                .collect()
        };
        for t in &tokens {
            t.cancel();
        }
        tracing::info!(task.id = %id, by, cut = tokens.len(), "task cancel requested");
        if tokens.is_empty() {
            // Nothing in flight here: settle the steps and the task now.
            let steps: Vec<Uuid> = parents.iter().copied().filter(|p| *p != id).collect();
            self.complete_parents(&steps).await;
            self.complete_parents(&[id]).await;
        }
        Ok(self.inner.store.get_task(id).await?.unwrap_or(task))
    }

    fn timeout(&self, action: Action) -> Duration {
        self.inner
            .cfg
            .timeouts
            .get(action.name())
            .copied()
            .unwrap_or_else(|| action.default_timeout())
    }

    /// A step's time limit: its driver action's, or for the wait for boot
    /// action reports `timeouts.boot_action_report` (Drydock's 15 minutes).
    fn step_timeout(&self, action: StepAction) -> Duration {
        match action {
            StepAction::Driver(a) => self.timeout(a),
            StepAction::BootActionReport => self
                .inner
                .cfg
                .timeouts
                .get(orchestrator::BOOT_ACTION_REPORT)
                .copied()
                .unwrap_or(Duration::from_secs(15 * 60)),
        }
    }

    async fn idle(&self, wake: &Notify) -> bool {
        tokio::select! {
            _ = self.inner.shutdown.cancelled() => false,
            _ = wake.notified() => true,
            _ = tokio::time::sleep(self.inner.cfg.poll_interval) => true,
        }
    }

    // ---------------------------------------------------------------- scheduler

    async fn scheduler(self) {
        let mut sweep = tokio::time::Instant::now();
        let mut reclaim = tokio::time::Instant::now();
        let mut waits = tokio::time::Instant::now();
        loop {
            if self.inner.shutdown.is_cancelled() {
                return;
            }
            // Only the leader schedules; the others wait for a change.
            if !self.inner.leadership.is_leader() {
                tokio::select! {
                    _ = self.inner.shutdown.cancelled() => return,
                    _ = self.inner.leadership.changed() => {}
                    _ = tokio::time::sleep(self.inner.cfg.poll_interval) => {}
                }
                continue;
            }
            let claimed = self
                .inner
                .store
                .claim_tasks(&ClaimSpec {
                    scope: ClaimScope::TopLevel,
                    owner: &self.inner.cfg.instance_id,
                    epoch: self.epoch(),
                    limit: 16,
                })
                .await;
            match claimed {
                Ok(tasks) if !tasks.is_empty() => {
                    for t in tasks {
                        if let Err(e) = self.decompose(&t).await {
                            tracing::error!(task.id = %t.id, error = %e, "scheduling failed");
                            self.fail_task(&t, &format!("scheduling failed: {e}")).await;
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "claiming tasks failed; retrying"),
            }
            // Settle the waits for boot action reports nodes have sent.
            if waits.elapsed() >= WAITS_EVERY {
                waits = tokio::time::Instant::now();
                self.settle_boot_action_waits().await;
            }
            // Settle tasks whose subtasks have all finished (the last one
            // may have run on another instance, which cannot settle what
            // this one owns).
            match self
                .inner
                .store
                .settled_containers(self.instance_id())
                .await
            {
                Ok(ids) if !ids.is_empty() => self.complete_parents(&ids).await,
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "looking for settled tasks failed"),
            }
            // Take over the work of dead instances, and fail what a live
            // one holds far past its deadline.
            if self.inner.leadership.may_reclaim()
                && reclaim.elapsed() >= self.inner.leadership.config().renew
            {
                reclaim = tokio::time::Instant::now();
                self.reclaim().await;
                self.expire_overdue().await;
            }
            // Periodically resume top-level tasks left without subtasks (a
            // leader died between claiming and fanning out).
            if sweep.elapsed() > Duration::from_secs(5) {
                sweep = tokio::time::Instant::now();
                self.sweep_parents().await;
            }
            if !self.idle(&self.inner.wake_scheduler).await {
                return;
            }
        }
    }

    /// Running top-level tasks this instance owns that have no subtasks
    /// (claimed, then the claimer died before fanning out, and this
    /// instance adopted them) are fanned out again.
    async fn sweep_parents(&self) {
        let running = self
            .inner
            .store
            .list_tasks(&crate::store::TaskFilter {
                parent: Some(None),
                status: Some(TaskStatus::Running),
                limit: 1000,
                offset: 0,
            })
            .await;
        let Ok(tasks) = running else {
            return;
        };
        for t in tasks
            .iter()
            .filter(|t| t.owner.as_deref() == Some(self.instance_id()))
        {
            if matches!(self.inner.store.subtask_ids(t.id).await, Ok(ids) if ids.is_empty()) {
                tracing::info!(task.id = %t.id, "resuming a task left without subtasks");
                if let Err(e) = self.decompose(t).await {
                    self.fail_task(t, &format!("scheduling failed: {e}")).await;
                }
            }
        }
    }

    /// Requeues (or fails, where unsafe to repeat) the driver calls dead
    /// instances had in flight, and adopts their orchestrations.
    async fn reclaim(&self) {
        let unsafe_actions: Vec<String> = self
            .inner
            .drivers
            .all()
            .iter()
            .flat_map(|d| d.driver.info().unsafe_to_repeat.iter().cloned())
            .collect();
        let dead_after = self.inner.leadership.config().dead_after;
        match self
            .inner
            .store
            .reclaim_dead(
                self.instance_id(),
                self.epoch(),
                dead_after,
                &unsafe_actions,
            )
            .await
        {
            Ok(r) if r != crate::store::Reclaimed::default() => {
                tracing::warn!(
                    requeued = r.requeued,
                    failed = r.failed,
                    adopted = r.adopted,
                    "took over the work of dead instances"
                );
                self.inner.wake_executor.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "reclaiming dead instances' work failed"),
        }
    }

    /// Fails driver subtasks still running [`OVERDUE_GRACE`] past their
    /// deadline (their owner is alive, or it would have been reclaimed, but
    /// stuck); their steps then settle as usual.
    async fn expire_overdue(&self) {
        match self
            .inner
            .store
            .expire_overdue(self.instance_id(), self.epoch(), OVERDUE_GRACE)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                expired = n,
                "failed subtasks still running past their deadline"
            ),
            Err(e) => tracing::debug!(error = %e, "expiring overdue subtasks failed"),
        }
    }

    async fn fail_task(&self, t: &TaskRecord, reason: &str) {
        let mut outcome = TaskOutcome::complete(
            t.id,
            &self.inner.cfg.instance_id,
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
        if let Err(e) = self.inner.store.add_messages(&[msg]).await {
            tracing::warn!(task.id = %t.id, error = %e, "could not record a task message");
        }
        match self.inner.store.finish_tasks(&[outcome]).await {
            Ok(_) => {
                let _ = self.inner.finished.send(t.id);
            }
            Err(e) => tracing::error!(task.id = %t.id, error = %e, "could not fail the task"),
        }
    }

    /// Splits a claimed top-level task into per-node subtasks.
    async fn decompose(&self, t: &TaskRecord) -> Result<(), EngineError> {
        let store = &self.inner.store;
        if !store.subtask_ids(t.id).await?.is_empty() {
            // Claimed again after a restart: its subtasks are already there.
            self.complete_parents(&[t.id]).await;
            return Ok(());
        }
        if t.terminate {
            self.complete_parents(&[t.id]).await;
            return Ok(());
        }
        if let Some(o) = Orchestration::parse(&t.action) {
            return self.start_orchestration(t, o).await;
        }
        let action: Action =
            t.action
                .parse()
                .map_err(|e: crate::drivers::action::UnknownAction| {
                    EngineError::Invalid(e.to_string())
                })?;
        let deadline = chrono::Utc::now()
            + chrono::Duration::from_std(self.timeout(action)).unwrap_or(chrono::Duration::MAX);
        let subtasks: Vec<NewTask> = if action.is_node_scoped() {
            let filter = match &t.node_filter {
                Some(f) => NodeFilter::from_json(f).map_err(EngineError::Invalid)?,
                None => None,
            };
            let nodes: Vec<model::Node> = store
                .list_nodes()
                .await?
                .into_iter()
                .filter_map(|r| serde_json::from_value(r.spec).ok())
                .collect();
            let names = select(&nodes, filter.as_ref(), &BTreeMap::new());
            if names.is_empty() {
                self.fail_task(t, "the node filter selects no registered node")
                    .await;
                return Ok(());
            }
            names
                .into_iter()
                .map(|n| {
                    let mut s = NewTask::subtask(t.id, action.name(), n);
                    s.params = t.params.clone();
                    s.deadline = Some(deadline);
                    s.created_by = t.created_by.clone();
                    s
                })
                .collect()
        } else {
            let mut s = NewTask::new(action.name());
            s.parent_id = Some(t.id);
            s.params = t.params.clone();
            s.deadline = Some(deadline);
            s.created_by = t.created_by.clone();
            vec![s]
        };
        let n = store.insert_tasks(&subtasks).await?;
        tracing::info!(task.id = %t.id, action = action.name(), subtasks = n, "task fanned out");
        // A cancel that arrived between the claim and the insert did not
        // reach the new subtasks: cascade it now.
        if store.is_cancel_requested(t.id).await? {
            let by = store
                .get_task(t.id)
                .await?
                .and_then(|t| t.terminated_by)
                .unwrap_or_else(|| "unknown".into());
            store.request_cancel(t.id, &by).await?;
            self.complete_parents(&[t.id]).await;
            return Ok(());
        }
        self.inner.wake_executor.notify_one();
        Ok(())
    }

    // ----------------------------------------------------------------- executor

    async fn executor(self) {
        loop {
            if self.inner.shutdown.is_cancelled() {
                return;
            }
            // Claim in batches: each claim is a transaction, so wait until a
            // quarter of the capacity is free (or nothing runs) rather than
            // claiming a task or two every time a call ends.
            let room = self.inner.slots.available_permits() as i64;
            let capacity = self.inner.cfg.max_concurrency as i64;
            let threshold = (capacity / 4).clamp(1, self.inner.cfg.claim_batch.max(1));
            if room >= threshold || (room > 0 && room == capacity) {
                let claimed = self
                    .inner
                    .store
                    .claim_tasks(&ClaimSpec {
                        scope: ClaimScope::Subtasks,
                        owner: &self.inner.cfg.instance_id,
                        epoch: self.epoch(),
                        limit: room.min(self.inner.cfg.claim_batch),
                    })
                    .await;
                match claimed {
                    Ok(tasks) if !tasks.is_empty() => {
                        // One query for the batch's nodes.
                        let names: Vec<String> =
                            tasks.iter().filter_map(|t| t.node_name.clone()).collect();
                        let mut nodes: HashMap<String, NodeRecord> =
                            match self.inner.store.get_nodes(&names).await {
                                Ok(rows) => rows.into_iter().map(|r| (r.name.clone(), r)).collect(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "prefetching nodes failed");
                                    HashMap::new()
                                }
                            };
                        for t in tasks {
                            let record = t.node_name.as_ref().and_then(|n| nodes.remove(n));
                            let Ok(permit) = self.inner.slots.clone().acquire_owned().await else {
                                return;
                            };
                            let token = self.inner.shutdown.child_token();
                            self.inner
                                .inflight
                                .lock()
                                .expect("inflight lock")
                                .insert(t.id, (t.parent_id, token.clone()));
                            let engine = self.clone();
                            tokio::spawn(async move {
                                let id = t.id;
                                engine.run_subtask(t, token, record).await;
                                engine
                                    .inner
                                    .inflight
                                    .lock()
                                    .expect("inflight lock")
                                    .remove(&id);
                                drop(permit);
                                engine.inner.wake_executor.notify_one();
                            });
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "claiming subtasks failed; retrying"),
                }
            }
            if !self.idle(&self.inner.wake_executor).await {
                return;
            }
        }
    }

    /// Cuts in-flight calls whose task was cancelled through another
    /// instance (this one sees only the `terminate` flag in the database).
    async fn cancel_watch(self) {
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.inner.cfg.poll_interval.max(Duration::from_millis(250))) => {}
            }
            let watched: Vec<(Uuid, Option<Uuid>)> = {
                let inflight = self.inner.inflight.lock().expect("inflight lock");
                inflight
                    .iter()
                    .map(|(id, (parent, _))| (*id, *parent))
                    .collect()
            };
            if watched.is_empty() {
                continue;
            }
            let ids: Vec<Uuid> = watched.iter().map(|(id, _)| *id).collect();
            let Ok(cancelled) = self.inner.store.terminate_requested(&ids).await else {
                continue;
            };
            if cancelled.is_empty() {
                continue;
            }
            let inflight = self.inner.inflight.lock().expect("inflight lock");
            for id in &cancelled {
                if let Some((_, token)) = inflight.get(id) {
                    token.cancel();
                }
            }
        }
    }

    fn bmc_limit(&self, key: &str) -> Arc<Semaphore> {
        let mut limits = self.inner.bmc_limits.lock().expect("bmc limits lock");
        limits
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.cfg.per_bmc)))
            .clone()
    }

    fn message(&self, task: Uuid, node: Option<&str>, message: String, error: bool) {
        let (context_type, context) = match node {
            Some(n) => ("node", n.to_owned()),
            None => ("task", task.to_string()),
        };
        let _ = self.inner.writes.send(Write::Message(NewMessage {
            task_id: task,
            message,
            error,
            context_type: context_type.into(),
            context,
            extra: None,
        }));
    }

    /// Loads a node (unless prefetched) and resolves its BMC credentials
    /// from the secrets store.
    async fn load_node(
        &self,
        name: &str,
        prefetched: Option<NodeRecord>,
        network: bool,
    ) -> Result<model::Node, String> {
        let store = &self.inner.store;
        let record = match prefetched {
            Some(r) => r,
            None => store
                .get_node(name)
                .await
                .map_err(|e| format!("reading node {name}: {e}"))?
                .ok_or_else(|| format!("node {name} is not registered"))?,
        };
        let mut node: model::Node = serde_json::from_value(record.spec)
            .map_err(|e| format!("node {name} has an unusable description: {e}"))?;
        let secrets = &self.inner.secrets;
        if let Some(secret) = record
            .credential
            .as_deref()
            .or(node.oob.credential.as_deref())
        {
            let creds = secrets
                .credentials(secret, node.oob.account.as_deref())
                .await
                .map_err(|e| format!("node {name}'s BMC credential: {e}"))?;
            node.oob.credentials = Some(creds);
        }
        if network {
            for iface in &mut node.interfaces {
                let Some(port) = iface.switch_port.as_mut() else {
                    continue;
                };
                if let Some(secret) = port.switch.credential.clone() {
                    let creds = secrets
                        .credentials(&secret, port.switch.account.as_deref())
                        .await
                        .map_err(|e| format!("switch {}'s credential: {e}", port.switch.name))?;
                    port.switch.credentials = Some(creds);
                }
            }
        }
        Ok(node)
    }

    /// TLS trust for a node's BMC from its oob parameters:
    /// `tls_ca_secret = <secret holding PEM CA certificates>` trusts those
    /// CAs (besides the public roots); `tls_verify = "false"` turns
    /// verification off for this node (logged on every connection). `None`
    /// keeps the driver's settings.
    async fn node_tls(
        &self,
        n: &model::Node,
    ) -> Result<Option<crate::drivers::TlsSettings>, String> {
        if n.oob.params.get("tls_verify").map(String::as_str) == Some("false") {
            return Ok(Some(crate::drivers::TlsSettings::insecure_skip_verify()));
        }
        let Some(secret) = n.oob.params.get("tls_ca_secret") else {
            return Ok(None);
        };
        let pem = self
            .inner
            .secrets
            .get(secret)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "node {}: TLS CA secret `{secret}` is in no secrets source",
                    n.name
                )
            })?;
        crate::drivers::TlsSettings::with_extra_roots(pem.as_bytes())
            .map(Some)
            .map_err(|e| format!("node {}: TLS CA secret `{secret}`: {e}", n.name))
    }

    /// [`Engine::load_node`], waiting out a database outage (the node and
    /// its secrets are read from it) until the subtask's deadline.
    async fn load_node_patiently(
        &self,
        name: &str,
        prefetched: Option<NodeRecord>,
        network: bool,
        t: &TaskRecord,
        cancel: &CancellationToken,
    ) -> Result<model::Node, String> {
        let mut prefetched = prefetched;
        loop {
            let r = self.load_node(name, prefetched.take(), network).await;
            let down = r.is_err() && self.inner.store.ping().await.is_err();
            let left = t
                .deadline
                .map(|d| (d - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(60));
            if !down || left < Duration::from_secs(1) || cancel.is_cancelled() {
                return r;
            }
            tracing::debug!(
                node = name,
                "database unavailable: waiting to read the node"
            );
            tokio::select! {
                _ = cancel.cancelled() => return r,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn run_subtask(
        &self,
        t: TaskRecord,
        cancel: CancellationToken,
        prefetched: Option<NodeRecord>,
    ) {
        let started = std::time::Instant::now();
        let owner = self.inner.cfg.instance_id.clone();
        let epoch = t.epoch;
        let node_name = t.node_name.clone();
        let mut outcome = TaskOutcome::complete(t.id, &owner, epoch, ResultStatus::Failure);
        let finish = |mut outcome: TaskOutcome, state| {
            if let Some(n) = &node_name {
                match outcome.result_status {
                    ResultStatus::Success => outcome.successes = vec![n.clone()],
                    _ => outcome.failures = vec![n.clone()],
                }
            }
            let _ = self.inner.writes.send(Write::Finished(Finished {
                outcome,
                parent: t.parent_id,
                node_state: state,
            }));
        };
        let action: Action = match t.action.parse() {
            Ok(a) => a,
            Err(e) => {
                outcome.result_message = Some(format!("{e}"));
                return finish(outcome, None);
            }
        };
        let params: ActionParams = match serde_json::from_value(t.params.clone()) {
            Ok(p) => p,
            Err(e) => {
                outcome.result_message = Some(format!("invalid params: {e}"));
                return finish(outcome, None);
            }
        };
        let node = match &node_name {
            Some(n) => match self
                .load_node_patiently(
                    n,
                    prefetched,
                    action.interface() == crate::drivers::Interface::Network,
                    &t,
                    &cancel,
                )
                .await
            {
                Ok(node) => Some(node),
                Err(e) => {
                    self.message(t.id, Some(n), e.clone(), true);
                    outcome.result_message = Some(e);
                    outcome.error_count = 1;
                    return finish(outcome, None);
                }
            },
            None => None,
        };
        let mut installed = match self.inner.drivers.for_action(action, node.as_ref()) {
            Ok(i) => i.clone(),
            Err(e) => {
                self.message(t.id, node_name.as_deref(), e.clone(), true);
                outcome.result_message = Some(e);
                outcome.error_count = 1;
                return finish(outcome, None);
            }
        };
        // A node may carry its own TLS trust for its BMC (oob calls).
        if action.interface() == crate::drivers::Interface::Oob
            && let Some(n) = &node
        {
            match self.node_tls(n).await {
                Ok(Some(tls)) => {
                    let mut config = (*installed.config).clone();
                    config.tls = tls;
                    installed.config = Arc::new(config);
                }
                Ok(None) => {}
                Err(e) => {
                    self.message(t.id, node_name.as_deref(), e.clone(), true);
                    outcome.result_message = Some(e);
                    outcome.error_count = 1;
                    return finish(outcome, None);
                }
            }
        }
        let bmc_key = node
            .as_ref()
            .map(|n| n.oob.address.clone().unwrap_or_else(|| n.name.clone()))
            .unwrap_or_default();
        let bmc = self.bmc_limit(&bmc_key);
        let deadline = t
            .deadline
            .map(|d| (d - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or_else(|| self.timeout(action));
        let end = tokio::time::Instant::now() + deadline;
        let services: Arc<dyn DriverServices> = Arc::new(EngineServices {
            engine: self.clone(),
            task: t.id,
        });
        // Orchestrator steps set their own attempts (Drydock retries those
        // steps on any failure that is not permanent by nature).
        let (max_attempts, retry_any) = if t.retry > 0 {
            (t.retry as u32, true)
        } else {
            (self.inner.cfg.max_attempts, false)
        };
        let calls = port_calls(action, node.as_ref(), &params);
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let call = async {
                let _bmc = bmc.acquire().await;
                let mut last = Ok(serde_json::Value::Null);
                for params in &calls {
                    let left = end.saturating_duration_since(tokio::time::Instant::now());
                    last = self
                        .inner
                        .runtime
                        .call(
                            &installed.driver,
                            CallRequest {
                                action,
                                node: node.as_ref(),
                                params,
                                config: installed.config.clone(),
                                services: services.clone(),
                                timeout: Some(left.max(Duration::from_millis(1))),
                                task: Some(t.id.to_string()),
                            },
                        )
                        .await;
                    if last.is_err() {
                        break;
                    }
                }
                last
            };
            let r = tokio::select! {
                _ = cancel.cancelled() => break Err(None),
                r = call => r,
            };
            match r {
                Ok(v) => break Ok(v),
                Err(e) => {
                    let left = end.saturating_duration_since(tokio::time::Instant::now());
                    let backoff = (self.inner.cfg.retry_backoff * 2u32.saturating_pow(attempt - 1))
                        .min(Duration::from_secs(10));
                    let again = e.is_retryable() || (retry_any && !is_permanent(&e));
                    // The host's own services (the database) being down is
                    // not the driver's failure: wait for them, deadline
                    // permitting, however many attempts that takes.
                    let ours = matches!(e, CallError::ServicesUnavailable { .. });
                    let backoff = if ours {
                        backoff.min(Duration::from_secs(1))
                    } else {
                        backoff
                    };
                    if again && (attempt < max_attempts || ours) && left > backoff {
                        self.message(
                            t.id,
                            node_name.as_deref(),
                            format!("attempt {attempt} failed, retrying in {backoff:?}: {e}"),
                            false,
                        );
                        tokio::select! {
                            _ = cancel.cancelled() => break Err(None),
                            _ = tokio::time::sleep(backoff) => continue,
                        }
                    }
                    break Err(Some(e));
                }
            }
        };
        let mut state = None;
        match result {
            Ok(value) => {
                outcome.result_status = ResultStatus::Success;
                outcome.result_message = Some(format!("{} succeeded", action.name()));
                if let Some(n) = &node_name {
                    state = node_state(action, &params, &value).map(|(p, b)| (n.clone(), p, b));
                    if let (Action::InterrogateOob | Action::InterrogateNode, Some(n)) =
                        (action, &node_name)
                    {
                        let data = NewBuildData {
                            node_name: n.clone(),
                            task_id: Some(t.id),
                            generator: action.name().into(),
                            format: "application/json".into(),
                            content: value.to_string(),
                        };
                        if let Err(e) = self.inner.store.add_build_data(&data).await {
                            tracing::warn!(node = %n, error = %e, "could not store build data");
                        }
                    }
                }
            }
            Err(None) if self.inner.shutdown.is_cancelled() => {
                // The engine is stopping, not the task: leave the subtask
                // running; the next start of this instance requeues it.
                tracing::debug!(task.id = %t.id, "driver call cut by shutdown; left for requeue");
                return;
            }
            Err(None) => {
                outcome.status = TaskStatus::Terminated;
                outcome.result_message = Some("cancelled".into());
                outcome.terminated_by = t.terminated_by.clone();
                self.message(t.id, node_name.as_deref(), "cancelled".into(), true);
            }
            Err(Some(e)) => {
                let text = e.to_string();
                outcome.result_message = Some(text.clone());
                outcome.result_reason = Some(reason(&e));
                outcome.error_count = 1;
                self.message(t.id, node_name.as_deref(), text, true);
            }
        }
        tracing::debug!(task.id = %t.id, node = node_name.as_deref().unwrap_or("-"), action = action.name(),
            attempts = attempt, elapsed_ms = started.elapsed().as_millis() as u64, "subtask finished");
        finish(outcome, state);
    }

    // ------------------------------------------------------------------- writer

    async fn writer(self, mut rx: mpsc::UnboundedReceiver<Write>) {
        let mut finished: Vec<Finished> = Vec::new();
        let mut messages: Vec<NewMessage> = Vec::new();
        let mut kv: Vec<(String, String, Option<String>, u64)> = Vec::new();
        loop {
            let first = tokio::select! {
                w = rx.recv() => w,
                _ = self.inner.shutdown.cancelled() => None,
            };
            let Some(first) = first else {
                return;
            };
            let mut next = Some(first);
            // Gather what is already waiting, up to a batch.
            while let Some(w) = next {
                match w {
                    Write::Finished(f) => finished.push(f),
                    Write::Message(m) => messages.push(m),
                    Write::Kv(d, k, v, seq) => kv.push((d, k, v, seq)),
                }
                next = if finished.len() + messages.len() < self.inner.cfg.write_batch {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            self.flush_kv(&mut kv).await;
            self.flush(&mut finished, &mut messages).await;
        }
    }

    /// Writes pending key-value changes (last write per key wins) in one
    /// transaction, then forgets those the store now holds.
    async fn flush_kv(&self, kv: &mut Vec<(String, String, Option<String>, u64)>) {
        if kv.is_empty() {
            return;
        }
        let mut last: HashMap<(String, String), (Option<String>, u64)> = HashMap::new();
        for (d, k, v, seq) in kv.drain(..) {
            last.insert((d, k), (v, seq));
        }
        let writes: Vec<(String, String, Option<String>)> = last
            .iter()
            .map(|((d, k), (v, _))| (d.clone(), k.clone(), v.clone()))
            .collect();
        loop {
            match self.inner.store.kv_apply(&writes).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "writing driver key-value state failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        let mut pending = self.inner.kv_pending.lock().expect("kv lock");
        for (key, (_, seq)) in last {
            if pending.entries.get(&key).is_some_and(|(_, s)| *s == seq) {
                pending.entries.remove(&key);
            }
        }
    }

    fn kv_write(&self, driver: &str, key: &str, value: Option<&str>) {
        let mut pending = self.inner.kv_pending.lock().expect("kv lock");
        pending.seq += 1;
        let seq = pending.seq;
        let k = (driver.to_owned(), key.to_owned());
        pending.entries.insert(k, (value.map(str::to_owned), seq));
        drop(pending);
        let _ = self.inner.writes.send(Write::Kv(
            driver.to_owned(),
            key.to_owned(),
            value.map(str::to_owned),
            seq,
        ));
    }

    fn kv_pending(&self, driver: &str, key: &str) -> Option<Option<String>> {
        let pending = self.inner.kv_pending.lock().expect("kv lock");
        pending
            .entries
            .get(&(driver.to_owned(), key.to_owned()))
            .map(|(v, _)| v.clone())
    }

    async fn flush(&self, finished: &mut Vec<Finished>, messages: &mut Vec<NewMessage>) {
        let store = &self.inner.store;
        // Messages first, so a completed task has all its messages.
        while !messages.is_empty() {
            match store.add_messages(messages).await {
                Ok(_) => messages.clear(),
                Err(e) => {
                    tracing::warn!(error = %e, "writing task messages failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        if finished.is_empty() {
            return;
        }
        let outcomes: Vec<TaskOutcome> = finished.iter().map(|f| f.outcome.clone()).collect();
        loop {
            match store.finish_tasks(&outcomes).await {
                Ok(n) => {
                    if (n as usize) < outcomes.len() {
                        tracing::warn!(
                            written = n,
                            expected = outcomes.len(),
                            "some outcomes were not written: their work was reassigned"
                        );
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "writing task outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        let states: Vec<(String, Option<String>, Option<String>)> = finished
            .iter()
            .filter_map(|f| f.node_state.as_ref())
            .map(|(n, p, b)| (n.clone(), p.map(str::to_owned), b.map(str::to_owned)))
            .collect();
        if let Err(e) = store.set_node_states(&states).await {
            tracing::warn!(error = %e, nodes = states.len(), "could not record node states");
        }
        let parents: Vec<Uuid> = finished
            .iter()
            .filter_map(|f| f.parent)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        finished.clear();
        self.complete_parents(&parents).await;
        self.inner.wake_executor.notify_one();
    }

    /// Completes each parent whose subtasks have all finished.
    async fn complete_parents(&self, parents: &[Uuid]) {
        let store = &self.inner.store;
        for &parent in parents {
            let counts = match store.count_subtasks_by_status(parent).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(task.id = %parent, error = %e, "could not check subtasks");
                    continue;
                }
            };
            if counts.iter().any(|(s, _, n)| !s.is_terminal() && *n > 0) {
                continue;
            }
            let Ok(Some(task)) = store.get_task(parent).await else {
                continue;
            };
            if task.status != TaskStatus::Running {
                continue;
            }
            if Orchestration::parse(&task.action).is_some() {
                self.advance(parent, true).await;
                continue;
            }
            let subs = match store.subtasks(parent).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(task.id = %parent, error = %e, "could not read subtasks");
                    continue;
                }
            };
            let r = rollup(&subs);
            let (status, message) = if task.terminate {
                (
                    TaskStatus::Terminated,
                    format!(
                        "cancelled by {}: {}",
                        task.terminated_by.as_deref().unwrap_or("?"),
                        r.message
                    ),
                )
            } else {
                (TaskStatus::Complete, r.message.clone())
            };
            // Only the owner settles a task (fenced by owner and epoch).
            let outcome = TaskOutcome {
                id: parent,
                owner: self.instance_id().to_owned(),
                epoch: self.epoch(),
                status,
                result_status: r.status,
                result_message: Some(message),
                result_reason: None,
                successes: r.successes,
                failures: r.failures,
                error_count: r.error_count,
                terminated_by: task.terminated_by.clone(),
            };
            match store.finish_tasks(&[outcome]).await {
                Ok(1) => {
                    tracing::info!(task.id = %parent, result = r.status.as_str(), "task finished");
                    let _ = self.inner.finished.send(parent);
                    if let Some(orchestrator) = task.parent_id {
                        // A step finished: the orchestrator goes on.
                        self.advance(orchestrator, false).await;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(task.id = %parent, error = %e, "could not complete task"),
            }
        }
    }

    // ------------------------------------------------------------- orchestrator

    /// Fetches and parses a design (through the content cache).
    pub async fn load_design(
        &self,
        design_ref: &str,
    ) -> Result<Arc<Design>, crate::design::SourceError> {
        self.inner.designs.load(design_ref).await
    }

    /// Reads a reference as design references are read (boot action
    /// asset locations).
    pub async fn fetch_reference(&self, reference: &str) -> Result<Vec<u8>, String> {
        self.inner
            .designs
            .fetch_bytes(reference)
            .await
            .map_err(|e| e.to_string())
    }

    /// Images and kernels the node driver offers, for the platform rule.
    /// `None` (rule skipped) without a node driver or when it fails.
    pub async fn platform_catalog(&self) -> Option<PlatformCatalog> {
        let installed = self
            .inner
            .drivers
            .for_action(Action::AvailableImages, None)
            .ok()?
            .clone();
        let services: Arc<dyn DriverServices> = Arc::new(crate::drivers::MemoryServices::new());
        let call = |action, params: ActionParams| {
            let installed = installed.clone();
            let services = services.clone();
            async move {
                self.inner
                    .runtime
                    .call(
                        &installed.driver,
                        CallRequest {
                            action,
                            node: None,
                            params: &params,
                            config: installed.config.clone(),
                            services,
                            timeout: Some(Duration::from_secs(60)),
                            task: None,
                        },
                    )
                    .await
            }
        };
        let strings = |v: serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let images = match call(Action::AvailableImages, ActionParams::default()).await {
            Ok(v) => strings(v),
            Err(e) => {
                tracing::warn!(error = %e, "the node driver did not list its images; platform rule skipped");
                return None;
            }
        };
        let mut catalog = PlatformCatalog::default();
        for image in images {
            let params = ActionParams {
                image: Some(image.clone()),
                ..ActionParams::default()
            };
            let kernels = call(Action::AvailableKernels, params)
                .await
                .map(strings)
                .unwrap_or_default();
            catalog.images.insert(image, kernels);
        }
        Some(catalog)
    }

    /// The design of orchestrator task `t`, parsed once per task.
    async fn task_design(&self, t: &TaskRecord) -> Result<Arc<Design>, String> {
        if let Some(d) = self.inner.task_designs.lock().expect("designs").get(&t.id) {
            return Ok(d.clone());
        }
        let r = t
            .design_ref
            .as_deref()
            .ok_or("the task has no design_ref")?;
        let d = self
            .inner
            .designs
            .load(r)
            .await
            .map_err(|e| e.to_string())?;
        self.inner
            .task_designs
            .lock()
            .expect("designs")
            .insert(t.id, d.clone());
        Ok(d)
    }

    /// The design nodes task `t` selects.
    fn selected(
        t: &TaskRecord,
        design: &Design,
        nodes: &[model::Node],
    ) -> Result<BTreeSet<String>, String> {
        let filter = match &t.node_filter {
            Some(f) => NodeFilter::from_json(f)?,
            None => None,
        };
        Ok(select(nodes, filter.as_ref(), &design.rack_labels())
            .into_iter()
            .collect())
    }

    /// Ingests and validates the design of a newly claimed orchestrator
    /// task, records the design's nodes, and starts its first step.
    async fn start_orchestration(
        &self,
        t: &TaskRecord,
        o: Orchestration,
    ) -> Result<(), EngineError> {
        let store = &self.inner.store;
        let design = match self.task_design(t).await {
            Ok(d) => d,
            Err(e) => {
                self.fail_task(t, &e).await;
                return Ok(());
            }
        };
        let catalog = self.platform_catalog().await;
        let findings = crate::design::validate::validate(&design, catalog.as_ref());
        let errors = findings.iter().filter(|f| f.is_error()).count();
        let messages: Vec<NewMessage> = findings
            .iter()
            .map(|f| NewMessage {
                task_id: t.id,
                message: f.message.clone(),
                error: f.is_error(),
                context_type: "design".into(),
                context: f.rule.into(),
                extra: Some(
                    serde_json::json!({"rule": f.rule, "level": f.level, "documents": f.documents}),
                ),
            })
            .collect();
        store.add_messages(&messages).await?;
        if errors > 0 {
            self.fail_task(
                t,
                &format!("the site design has {errors} error(s); see the task's messages or POST /validatedesign"),
            )
            .await;
            return Ok(());
        }
        if o == Orchestration::ValidateDesign {
            let mut outcome = TaskOutcome::complete(
                t.id,
                self.instance_id(),
                self.epoch(),
                ResultStatus::Success,
            );
            outcome.result_message = Some(format!(
                "the site design is valid ({} warning(s))",
                findings.len()
            ));
            store.finish_tasks(&[outcome]).await?;
            let _ = self.inner.finished.send(t.id);
            return Ok(());
        }
        let nodes = design.model_nodes();
        let selected = match Self::selected(t, &design, &nodes) {
            Ok(s) => s,
            Err(e) => {
                self.fail_task(t, &e).await;
                return Ok(());
            }
        };
        if o.is_node_scoped() {
            if selected.is_empty() {
                self.fail_task(t, "the node filter selects no node of the site design")
                    .await;
                return Ok(());
            }
            for node in nodes.iter().filter(|n| selected.contains(&n.name)) {
                let spec = serde_json::to_value(node)
                    .map_err(|e| EngineError::Invalid(format!("node {}: {e}", node.name)))?;
                store
                    .upsert_node(&node.name, &spec, node.oob.credential.as_deref())
                    .await?;
            }
        }
        tracing::info!(task.id = %t.id, action = %t.action, nodes = selected.len(), "orchestration started");
        self.advance(t.id, false).await;
        Ok(())
    }

    /// Moves orchestrator task `id` on: once every step so far is finished,
    /// starts the next step that has nodes to act on, or completes the task
    /// with the rolled-up result. `settle` first completes steps whose
    /// subtasks are all finished (after a restart).
    fn advance(&self, id: Uuid, settle: bool) -> futures_boxed::BoxFuture<'_, ()> {
        Box::pin(async move {
            if settle {
                // Steps whose subtasks have all finished are completed first
                // (completing one advances the orchestration by itself).
                match self.inner.store.subtasks(id).await {
                    Ok(steps) => {
                        let open: Vec<Uuid> = steps
                            .iter()
                            .filter(|s| !s.status.is_terminal())
                            .map(|s| s.id)
                            .collect();
                        if !open.is_empty() {
                            self.complete_parents(&open).await;
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(task.id = %id, error = %e, "could not read the steps");
                        return;
                    }
                }
            }
            // One advance at a time: two could both see the last step
            // finished and both start the next.
            let guard = self.inner.advance_lock.lock().await;
            let r = self.try_advance(id).await;
            drop(guard);
            if let Err(e) = r {
                tracing::warn!(task.id = %id, error = %e, "could not advance the orchestration; will retry");
            }
        })
    }

    async fn try_advance(&self, id: Uuid) -> Result<(), EngineError> {
        let store = &self.inner.store;
        let Some(t) = store.get_task(id).await? else {
            return Ok(());
        };
        let Some(o) = Orchestration::parse(&t.action) else {
            return Ok(());
        };
        if t.status != TaskStatus::Running {
            return Ok(());
        }
        let steps = store.subtasks(id).await?;
        let open: Vec<Uuid> = steps
            .iter()
            .filter(|s| !s.status.is_terminal())
            .map(|s| s.id)
            .collect();
        if !open.is_empty() {
            return Ok(());
        }
        let plan = orchestrator::plan(o);
        if t.terminate {
            return self.finish_orchestration(&t, o, &plan, &steps, None).await;
        }
        let design = match self.task_design(&t).await {
            Ok(d) => d,
            Err(e) => {
                self.fail_task(&t, &e).await;
                return Ok(());
            }
        };
        let all = design.model_nodes();
        let selected: BTreeSet<String> = if o.is_node_scoped() {
            Self::selected(&t, &design, &all).map_err(EngineError::Invalid)?
        } else {
            [SITE.to_owned()].into()
        };
        let nodes: HashMap<String, model::Node> =
            all.into_iter().map(|n| (n.name.clone(), n)).collect();
        let rows: HashMap<usize, &TaskRecord> = steps
            .iter()
            .filter_map(|s| s.params["step"].as_u64().map(|i| (i as usize, s)))
            .collect();
        let mut results: BTreeMap<usize, StepResult> = BTreeMap::new();
        for (i, step) in plan.iter().enumerate() {
            if let Some(row) = rows.get(&i) {
                results.insert(i, step_result(row));
                continue;
            }
            let targets = step.targets.resolve(&selected, &results);
            let signaled: BTreeSet<String> = if step.only == orchestrator::Only::WithBootActions {
                store
                    .boot_actions_for_task(t.id)
                    .await?
                    .into_iter()
                    .filter(|b| b.signaling)
                    .map(|b| b.node_name)
                    .collect()
            } else {
                BTreeSet::new()
            };
            let (eligible, pass): (BTreeSet<String>, BTreeSet<String>) =
                targets.into_iter().partition(|n| match step.only {
                    orchestrator::Only::WithBootActions => signaled.contains(n),
                    only => nodes.get(n).is_none_or(|node| only.includes(node)),
                });
            if eligible.is_empty() {
                results.insert(
                    i,
                    StepResult {
                        successes: pass,
                        failures: BTreeSet::new(),
                    },
                );
                continue;
            }
            return self.create_step(&t, i, step, &design, eligible, pass).await;
        }
        self.finish_orchestration(&t, o, &plan, &steps, Some((&selected, &results)))
            .await
    }

    async fn create_step(
        &self,
        t: &TaskRecord,
        index: usize,
        step: &orchestrator::Step,
        design: &Design,
        eligible: BTreeSet<String>,
        pass: BTreeSet<String>,
    ) -> Result<(), EngineError> {
        let params = match step.params {
            StepParams::None => serde_json::json!({}),
            StepParams::Site => serde_json::json!({ "site": design.site_networks() }),
            StepParams::SshKeys => serde_json::json!({ "ssh_keys": design.ssh_keys() }),
            StepParams::Repositories => {
                serde_json::json!({ "repositories": design.repositories() })
            }
            StepParams::PxeBoot => serde_json::json!({ "boot": orchestrator::pxe_once() }),
            StepParams::BootActions => serde_json::json!({}),
        };
        let per_node: BTreeMap<String, serde_json::Value> = match step.params {
            StepParams::BootActions => self.hand_out_boot_actions(t, design, &eligible).await?,
            _ => BTreeMap::new(),
        };
        let action = step.action;
        let deadline = chrono::Utc::now()
            + chrono::Duration::from_std(self.step_timeout(action))
                .unwrap_or(chrono::Duration::MAX);
        let mut parent = NewTask::new(action.name());
        parent.parent_id = Some(t.id);
        parent.status = TaskStatus::Running;
        parent.owner = Some(self.instance_id().to_owned());
        parent.epoch = self.epoch();
        parent.design_ref = t.design_ref.clone();
        parent.created_by = t.created_by.clone();
        parent.deadline = Some(deadline);
        parent.params =
            serde_json::json!({ "step": index, "passthrough": pass, "probe": step.probe });
        let sub = |node: Option<&String>| {
            let mut s = match node {
                Some(n) => NewTask::subtask(parent.id, action.name(), n.clone()),
                None => NewTask {
                    parent_id: Some(parent.id),
                    ..NewTask::new(action.name())
                },
            };
            s.params = node
                .and_then(|n| per_node.get(n))
                .cloned()
                .unwrap_or_else(|| params.clone());
            if action == StepAction::BootActionReport {
                // No executor runs a wait: the leader settles it.
                s.params = serde_json::json!({ "task": t.id });
                s.status = TaskStatus::Running;
                s.owner = Some(self.instance_id().to_owned());
                s.epoch = self.epoch();
            }
            s.deadline = Some(deadline);
            s.retry = step.attempts;
            s.created_by = t.created_by.clone();
            s
        };
        let mut rows = vec![parent.clone()];
        if action.is_node_scoped() {
            rows.extend(eligible.iter().map(|n| sub(Some(n))));
        } else {
            rows.push(sub(None));
        }
        self.inner
            .store
            .insert_tasks_fenced(&rows, Some((self.instance_id(), self.epoch())))
            .await?;
        let who = if action.is_node_scoped() {
            format!("{} node(s)", eligible.len())
        } else {
            "the site".to_owned()
        };
        self.message(
            t.id,
            None,
            format!("step {}: {} on {who}", index + 1, action.name()),
            false,
        );
        tracing::info!(task.id = %t.id, step = index, action = action.name(), targets = eligible.len(), "orchestration step started");
        self.inner.wake_executor.notify_one();
        Ok(())
    }

    /// Records the boot actions the design gives each of `nodes`, with a
    /// fresh key per node, and returns each such node's `deploy_node`
    /// parameters: cloud-init user data that installs the packages of its
    /// `pkg_list` assets, fetches its files and units from the boot action
    /// API with the key, and enables the units.
    async fn hand_out_boot_actions(
        &self,
        t: &TaskRecord,
        design: &Design,
        nodes: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, serde_json::Value>, EngineError> {
        use crate::design::bootaction::{ActionContext, AssetType, render};
        let actions = match design.boot_actions() {
            Ok(a) => a,
            Err(e) => {
                // Validation refuses such a design before any step; say so
                // anyway rather than deploy without them silently.
                self.message(
                    t.id,
                    None,
                    format!("boot actions not handed out: {e}"),
                    true,
                );
                return Ok(BTreeMap::new());
            }
        };
        if actions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let targets: Vec<_> = actions
            .iter()
            .zip(design.boot_action_nodes(&actions))
            .collect();
        let design_ref = t.design_ref.clone().unwrap_or_default();
        let url = self.inner.cfg.boot_action_url.clone();
        let fetch = |r: String| async move { self.fetch_reference(&r).await };
        let mut records = Vec::new();
        let mut out = BTreeMap::new();
        for node in nodes {
            let mine: Vec<_> = targets
                .iter()
                .filter(|(_, n)| n.contains(node))
                .map(|(a, _)| *a)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let key = crate::store::bootactions::new_key();
            let context = design.template_node(node);
            let mut packages = BTreeSet::new();
            let mut units = BTreeSet::new();
            for a in &mine {
                let action_id = Uuid::new_v4().simple().to_string();
                let ctx = ActionContext {
                    action_id: action_id.clone(),
                    action_key: key.clone(),
                    report_url: url.clone(),
                    design_ref: design_ref.clone(),
                };
                match render(a, Some(AssetType::PkgList), &context, &ctx, &fetch).await {
                    Ok(lists) => {
                        for (name, version) in lists.into_iter().flat_map(|l| l.packages) {
                            packages.insert(match version {
                                Some(v) => format!("{name}={v}"),
                                None => name,
                            });
                        }
                    }
                    Err(e) => self.message(t.id, Some(node), e.to_string(), true),
                }
                units.extend(
                    a.assets
                        .iter()
                        .filter(|x| x.asset_type == AssetType::Unit)
                        .filter_map(|x| x.path.as_deref())
                        .filter_map(|p| p.rsplit('/').next())
                        .map(str::to_owned),
                );
                records.push(crate::store::NewBootAction {
                    action_id,
                    task_id: t.id,
                    node_name: node.clone(),
                    name: a.name.clone(),
                    signaling: a.signaling,
                    key_hash: crate::store::bootactions::key_hash(&key),
                    design_ref: design_ref.clone(),
                });
            }
            let user_data = first_boot_user_data(&url, node, &key, &units, &packages);
            out.insert(node.clone(), serde_json::json!({ "user_data": user_data }));
        }
        self.inner.store.insert_boot_actions(&records).await?;
        let n = out.len();
        self.message(
            t.id,
            None,
            format!("boot actions handed out to {n} node(s)"),
            false,
        );
        Ok(out)
    }

    /// Settles the waits for boot action reports (leader only): a node's
    /// wait succeeds once every signaling boot action it received reported
    /// success, fails at the first reported failure, and fails at its
    /// deadline naming the boot actions that never reported.
    async fn settle_boot_action_waits(&self) {
        use crate::store::bootactions::{FAILURE, SUCCESS};
        let store = &self.inner.store;
        let waits = match store
            .running_with_action(orchestrator::BOOT_ACTION_REPORT)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(error = %e, "reading the boot action waits failed");
                return;
            }
        };
        let mut reports: HashMap<Uuid, Vec<crate::store::BootActionRecord>> = HashMap::new();
        let mut parents = Vec::new();
        for w in waits {
            let Some(task) = w.params["task"]
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
            else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(e) = reports.entry(task) {
                match store.boot_actions_for_task(task).await {
                    Ok(r) => {
                        e.insert(r);
                    }
                    Err(_) => continue,
                }
            }
            let mine: Vec<&crate::store::BootActionRecord> = reports[&task]
                .iter()
                .filter(|b| b.signaling && Some(&b.node_name) == w.node_name.as_ref())
                .collect();
            let names = |status: &str| -> Vec<&str> {
                mine.iter()
                    .filter(|b| b.status == status)
                    .map(|b| b.name.as_str())
                    .collect()
            };
            let failed = names(FAILURE);
            let pending: Vec<&str> = mine
                .iter()
                .filter(|b| b.status != SUCCESS && b.status != FAILURE)
                .map(|b| b.name.as_str())
                .collect();
            let overdue = w.deadline.is_some_and(|d| d < chrono::Utc::now());
            let mut status = TaskStatus::Complete;
            let (result, message) = if w.terminate {
                status = TaskStatus::Terminated;
                (ResultStatus::Failure, "cancelled".to_owned())
            } else if !failed.is_empty() {
                (
                    ResultStatus::Failure,
                    format!("boot action(s) {} reported failure", failed.join(", ")),
                )
            } else if pending.is_empty() {
                (
                    ResultStatus::Success,
                    format!(
                        "boot action(s) {} reported success",
                        names(SUCCESS).join(", ")
                    ),
                )
            } else if overdue {
                (
                    ResultStatus::Failure,
                    format!(
                        "no final report from boot action(s) {} by the deadline",
                        pending.join(", ")
                    ),
                )
            } else {
                continue;
            };
            match store
                .settle_wait(
                    &w,
                    self.instance_id(),
                    self.epoch(),
                    (status, result),
                    &message,
                )
                .await
            {
                Ok(true) => {
                    let error = result != ResultStatus::Success;
                    self.message(w.id, w.node_name.as_deref(), message, error);
                    parents.extend(w.parent_id);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(task.id = %w.id, error = %e, "could not settle a boot action wait")
                }
            }
        }
        if !parents.is_empty() {
            parents.sort();
            parents.dedup();
            self.complete_parents(&parents).await;
        }
    }

    async fn finish_orchestration(
        &self,
        t: &TaskRecord,
        o: Orchestration,
        plan: &[orchestrator::Step],
        steps: &[TaskRecord],
        done: Option<(&BTreeSet<String>, &BTreeMap<usize, StepResult>)>,
    ) -> Result<(), EngineError> {
        let errors: i64 = steps
            .iter()
            .filter(|s| !s.params["probe"].as_bool().unwrap_or(false))
            .map(|s| s.error_count)
            .sum();
        let mut outcome = TaskOutcome::complete(
            t.id,
            self.instance_id(),
            self.epoch(),
            ResultStatus::Failure,
        );
        outcome.error_count = errors;
        match done {
            None => {
                outcome.status = TaskStatus::Terminated;
                outcome.terminated_by = t.terminated_by.clone();
                outcome.result_message = Some(format!(
                    "cancelled by {}",
                    t.terminated_by.as_deref().unwrap_or("?")
                ));
            }
            Some((selected, results)) => {
                let last = plan
                    .len()
                    .checked_sub(1)
                    .and_then(|i| results.get(&i))
                    .cloned()
                    .unwrap_or_default();
                let successes: Vec<String> =
                    selected.intersection(&last.successes).cloned().collect();
                let failed: Vec<String> = selected.difference(&last.successes).cloned().collect();
                // Where each failed node dropped out.
                let why: Vec<String> = failed
                    .iter()
                    .map(|n| {
                        let at = plan.iter().enumerate().find(|(i, s)| {
                            !s.probe && results.get(i).is_some_and(|r| r.failures.contains(n))
                        });
                        match at {
                            Some((_, s)) => format!("{n} ({})", s.action.name()),
                            None => n.clone(),
                        }
                    })
                    .collect();
                outcome.result_status = match (successes.is_empty(), failed.is_empty()) {
                    (_, true) => ResultStatus::Success,
                    (true, false) => ResultStatus::Failure,
                    (false, false) => ResultStatus::PartialSuccess,
                };
                outcome.result_message = Some(if o.is_node_scoped() {
                    if failed.is_empty() {
                        format!("{}: all {} node(s) succeeded", t.action, successes.len())
                    } else {
                        format!(
                            "{}: {} of {} node(s) succeeded; failed: {}",
                            t.action,
                            successes.len(),
                            selected.len(),
                            why.join(", ")
                        )
                    }
                } else if failed.is_empty() {
                    format!("{} succeeded", t.action)
                } else {
                    let step = plan
                        .iter()
                        .enumerate()
                        .find(|(i, _)| results.get(i).is_some_and(|r| !r.failures.is_empty()))
                        .map(|(_, s)| s.action.name())
                        .unwrap_or("a step");
                    format!("{} failed at {step}", t.action)
                });
                if o.is_node_scoped() {
                    outcome.successes = successes;
                    outcome.failures = failed;
                }
            }
        }
        if self.inner.store.finish_tasks(&[outcome.clone()]).await? == 1 {
            tracing::info!(task.id = %t.id, result = outcome.result_status.as_str(), "orchestration finished");
            let _ = self.inner.finished.send(t.id);
            self.inner
                .task_designs
                .lock()
                .expect("designs")
                .remove(&t.id);
        }
        Ok(())
    }
}

/// Whether a failure will not go away by retrying (bad credentials, an
/// unsupported action, invalid input, a broken driver).
fn is_permanent(e: &CallError) -> bool {
    use crate::drivers::DriverErrorKind::*;
    match e {
        CallError::Driver { error, .. } => matches!(error.kind, Auth | Unsupported | InvalidInput),
        CallError::Deadline { .. } => false,
        _ => true,
    }
}

/// The driver calls one subtask makes: one per switch port for a port
/// action on a node whose ports come from the design (each with that port's
/// target VLANs), else the single call.
fn port_calls(
    action: Action,
    node: Option<&model::Node>,
    params: &ActionParams,
) -> Vec<ActionParams> {
    let target = |p: &model::SwitchPort| match action {
        Action::ConfigPortProvisioning => p.provisioning.clone(),
        Action::ConfigPortProduction => p.production.clone(),
        _ => None,
    };
    let portwise = matches!(
        action,
        Action::ConfigPortProvisioning | Action::ConfigPortProduction | Action::InterrogatePort
    );
    if !portwise || params.switch_port.is_some() {
        return vec![params.clone()];
    }
    let ports: Vec<ActionParams> = node
        .into_iter()
        .flat_map(|n| n.interfaces.iter().filter_map(|i| i.switch_port.as_ref()))
        .map(|p| ActionParams {
            switch_port: Some(p.clone()),
            vlans: params.vlans.clone().or_else(|| target(p)),
            ..params.clone()
        })
        .collect();
    if ports.is_empty() {
        vec![params.clone()]
    } else {
        ports
    }
}

/// The pseudo-node name site-wide steps report under.
const SITE: &str = "site";

/// What a finished step left: its successes plus the nodes it passed
/// through, its failures (a site step succeeds or fails as [`SITE`]).
fn step_result(row: &TaskRecord) -> StepResult {
    let mut r = StepResult {
        successes: row.successes.iter().cloned().collect(),
        failures: row.failures.iter().cloned().collect(),
    };
    if let Some(pass) = row.params["passthrough"].as_array() {
        r.successes
            .extend(pass.iter().filter_map(|n| n.as_str().map(str::to_owned)));
    }
    if !row
        .action
        .parse::<Action>()
        .is_ok_and(Action::is_node_scoped)
    {
        if row.result_status == ResultStatus::Success {
            r.successes.insert(SITE.to_owned());
        } else {
            r.failures.insert(SITE.to_owned());
        }
    }
    r
}

mod futures_boxed {
    /// A boxed, sendable future (the orchestrator and parent completion
    /// call each other).
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

/// A short machine-readable reason for a failed call: the driver's error
/// kind (`timeout`, `busy`, `auth`, ...) or the host's (`timeout` for a cut
/// call, `trap`, `memory_limit`, ...).
fn reason(e: &CallError) -> String {
    match e {
        CallError::Driver { error, .. } => serde_json::to_value(error.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "driver".into()),
        CallError::Deadline { .. } => "timeout".into(),
        other => other.kind().into(),
    }
}

/// The power state and boot device an action leaves a node in.
fn node_state(
    action: Action,
    params: &ActionParams,
    value: &serde_json::Value,
) -> Option<(Option<&'static str>, Option<&'static str>)> {
    use crate::model::BootDevice;
    let device = |d: BootDevice| match d {
        BootDevice::Pxe => "pxe",
        BootDevice::Disk => "disk",
        BootDevice::Cdrom => "cdrom",
        BootDevice::BiosSetup => "bios_setup",
    };
    match action {
        Action::PowerOnNode | Action::PowerCycleNode => Some((Some("on"), None)),
        Action::PowerOffNode => Some((Some("off"), None)),
        Action::ConfigNodePxe => Some((None, Some("pxe"))),
        Action::SetNodeBoot => Some((None, Some(device(params.boot.unwrap_or_default().device)))),
        Action::InterrogateOob => {
            let power = match value["power_state"].as_str() {
                Some("on") => Some("on"),
                Some("off") => Some("off"),
                _ => None,
            };
            Some((power, None))
        }
        _ => None,
    }
}

/// Driver services backed by the store, with status messages going through
/// the engine's batched writer.
struct EngineServices {
    engine: Engine,
    task: Uuid,
}

fn svc(e: StoreError) -> ServiceError {
    ServiceError(e.to_string())
}

#[async_trait]
impl DriverServices for EngineServices {
    async fn kv_get(&self, driver: &str, key: &str) -> Result<Option<String>, ServiceError> {
        if let Some(v) = self.engine.kv_pending(driver, key) {
            return Ok(v);
        }
        self.engine
            .inner
            .store
            .kv_get(driver, key)
            .await
            .map_err(svc)
    }

    async fn kv_set(&self, driver: &str, key: &str, value: &str) -> Result<(), ServiceError> {
        self.engine.kv_write(driver, key, Some(value));
        Ok(())
    }

    async fn kv_delete(&self, driver: &str, key: &str) -> Result<(), ServiceError> {
        self.engine.kv_write(driver, key, None);
        Ok(())
    }

    async fn status(&self, m: StatusMessage) -> Result<(), ServiceError> {
        self.engine
            .message(self.task, m.scope.node.as_deref(), m.message, m.is_error);
        Ok(())
    }

    async fn build_data(&self, d: BuildData) -> Result<(), ServiceError> {
        let Some(node) = d.scope.node.clone() else {
            return Ok(());
        };
        let data = NewBuildData {
            node_name: node,
            task_id: Some(self.task),
            generator: d.generator,
            format: d.format,
            content: d.content,
        };
        self.engine
            .inner
            .store
            .add_build_data(&data)
            .await
            .map(|_| ())
            .map_err(svc)
    }
}

/// Cloud-init user data for a node's first boot: install `packages`, fetch
/// the node's files and units from the boot action API at `url` with `key`
/// (unpacked at `/`), then enable and start `units`.
pub fn first_boot_user_data(
    url: &str,
    node: &str,
    key: &str,
    units: &BTreeSet<String>,
    packages: &BTreeSet<String>,
) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r#"'\''"#));
    let mut script = format!(
        "set -e; u={}; k={}; for t in files units; do \
         curl -fsS --retry 5 -H \"X-Bootaction-Key: $k\" \"${{u}}nodes/{node}/$t\" | tar -xzf - -C /; \
         done; systemctl daemon-reload",
        quote(url),
        quote(key)
    );
    if !units.is_empty() {
        let names: Vec<String> = units.iter().map(|u| quote(u)).collect();
        script.push_str(&format!("; systemctl enable --now {}", names.join(" ")));
    }
    let mut doc = serde_json::json!({ "runcmd": [["/bin/sh", "-c", script]] });
    if !packages.is_empty() {
        doc["packages"] = serde_json::json!(packages);
    }
    let yaml = serde_yaml_ng::to_string(&doc).unwrap_or_default();
    format!("#cloud-config\n{yaml}")
}
