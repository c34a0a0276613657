//! The task engine's façade: starting the engine's components and what
//! the API asks of it (submit, cancel, wait, read designs).
//!
//! The components, each owning its part and joined by channels (no
//! component calls back into the one that called it):
//!
//! - **scheduler** (leader only): claims queued top-level tasks, fans driver
//!   actions out into per-node subtasks, starts orchestrations, runs the
//!   leader's sweeps and recovery;
//! - **executor**: claims subtasks and runs their driver calls (`call`)
//!   under the instance-wide and per-BMC limits, with retries inside the
//!   action's deadline; cuts cancelled calls;
//! - **writer**: batches outcomes, node states, messages and driver
//!   key-value writes into the store (outcomes fenced by owner and epoch),
//!   then sends the parents it touched to the settler;
//! - **settler**: the one place parents complete (Drydock's result algebra,
//!   `result`) and orchestrations advance (`orchestration`);
//! - **bootactions**: hands boot actions out and settles the waits for
//!   their reports.
//!
//! ```text
//!  API ──submit──▶ store ◀──claim── scheduler ──Advance──▶ settler
//!                    ▲  ◀──claim── executor ──Write──▶ writer ──Parents──┘
//!                    └──────────────────────────────────────┘
//! ```
//!
//! On start, this instance's unfinished work is put back in the queue:
//! driver actions are idempotent by contract, so re-running them is safe.

use super::filter::{FilterError, NodeFilter};
use super::orchestrator::Orchestration;
use super::settler::Settle;
use super::shared::Shared;
use super::{executor, orchestration, scheduler, settler, writer};
use crate::cluster::{LeaderConfig, Leadership};
use crate::design::{Design, DesignSource, PlatformCatalog};
use crate::drivers::action::UnknownAction;
use crate::drivers::{Action, DriverSet, Runtime};
use crate::model::ActionParams;
use crate::secrets::Secrets;
use crate::store::{NewTask, Store, StoreError, TaskRecord};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use crate::cluster::recovery::OVERDUE_GRACE;

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
    /// Subtasks created running on this instance that may wait in memory
    /// for a call slot (its backlog): each holds its task and node record
    /// (a few KiB). Past it, new subtasks are created queued and claimed.
    pub backlog: usize,
    /// Fan-outs of at least this many subtasks start this instance's share
    /// of calls before the insert of their rows commits (actions safe to
    /// repeat only; see `tasks::gate`): the insert of 10,000 rows takes
    /// about 0.1 s, time the calls can use. Smaller ones insert first (1,000
    /// rows take about 10 ms: measured, an early start gained nothing
    /// there), so their failed insert never costs a second call.
    pub early_start_from: usize,
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
    /// Writes (outcomes, messages, key-value changes) that may wait for the
    /// writer at once; past it, senders wait.
    pub write_queue: usize,
    /// How often a driver's key-value usage is read from the store again
    /// before its next write (other instances' writes reach the quota
    /// count then; this instance's are counted as they are made).
    pub kv_usage_refresh: Duration,
    /// Directory `file:` design references are read from (none: refused).
    pub design_dir: Option<std::path::PathBuf>,
    /// Where designs and boot-action assets may be fetched from.
    pub design_sources: crate::design::DesignSources,
    /// What one design may cost.
    pub design_limits: crate::design::DesignLimits,
    /// The token `deckhand+`/`promenade+` references are fetched with
    /// (Keystone's service token, when configured).
    pub service_token: Option<ServiceTokenSource>,
    /// Secrets from the config file (tried before the environment and the
    /// database).
    pub secrets: crate::drivers::GrantedSecrets,
    /// The scopes of config and environment secrets (see
    /// [`crate::secrets`]); undeclared names are node credentials.
    pub secret_scopes: crate::secrets::ScopeTable,
    /// The special addresses a node's BMC or switch may still have.
    pub node_addresses: crate::node_address::NodeAddressPolicy,
    /// Leader lease timing.
    pub leader: LeaderConfig,
    /// How long prepare_nodes waits for a node to enlist with the
    /// bootstrapper after its PXE boot (retrying `identify_node`); Drydock
    /// waits about ten minutes.
    pub enlist_timeout: Duration,
    /// Where deployed nodes reach the boot action API
    /// (`<public url>/api/v1.0/bootactions/`), given to their templates as
    /// `action.report_url` and to their first-boot script.
    pub boot_action_url: String,
    /// The URL clients reach this service at (`public_url`), when
    /// configured: task results link to their build data under it.
    pub public_url: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            instance_id: format!("drydock-{}", Uuid::new_v4().simple()),
            max_concurrency: 256,
            per_bmc: 4,
            claim_batch: 256,
            backlog: 16_384,
            early_start_from: 4096,
            poll_interval: Duration::from_millis(200),
            max_attempts: 3,
            retry_backoff: Duration::from_millis(500),
            timeouts: BTreeMap::new(),
            write_batch: 1000,
            write_queue: 4096,
            kv_usage_refresh: Duration::from_secs(1),
            design_dir: None,
            design_sources: Default::default(),
            design_limits: Default::default(),
            service_token: None,
            secrets: Default::default(),
            secret_scopes: Default::default(),
            node_addresses: Default::default(),
            leader: LeaderConfig::default(),
            enlist_timeout: Duration::from_secs(600),
            boot_action_url: "http://127.0.0.1:9000/api/v1.0/bootactions/".into(),
            public_url: None,
        }
    }
}

/// Where authenticated design references get their token (a wrapper so
/// [`EngineConfig`] stays `Debug`).
#[derive(Clone)]
pub struct ServiceTokenSource(pub Arc<dyn crate::design::AuthToken>);

impl std::fmt::Debug for ServiceTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceTokenSource(..)")
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
            None if self.action == "noop" => {
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
                         prepare_site, verify_nodes, prepare_nodes, deploy_nodes, destroy_nodes, \
                         relabel_nodes"
                    )));
                }
            },
        };
        if let Some(f) = &self.node_filter {
            NodeFilter::from_json(f)?;
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
    /// The task's site design could not be read or parsed.
    #[error("{0}")]
    Design(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FilterError> for EngineError {
    /// A node filter that does not parse is a bad request.
    fn from(e: FilterError) -> Self {
        EngineError::Invalid(e.to_string())
    }
}

impl From<UnknownAction> for EngineError {
    /// An action no driver interface names is a bad request.
    fn from(e: UnknownAction) -> Self {
        EngineError::Invalid(e.to_string())
    }
}

/// The task engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(super) shared: Arc<Shared>,
}

impl Engine {
    /// Starts an engine: requeues this instance's unfinished work and spawns
    /// its components. They stop on [`Engine::shutdown`].
    pub async fn start(
        store: Store,
        runtime: Arc<Runtime>,
        drivers: Arc<DriverSet>,
        cfg: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let (writes, writes_rx) = mpsc::channel(cfg.write_queue.max(1));
        let (settle, settle_rx) = mpsc::unbounded_channel();
        let designs = DesignSource::new(
            cfg.design_dir.as_deref(),
            &cfg.design_sources,
            cfg.design_limits.clone(),
        )
        .map_err(|e| EngineError::Invalid(format!("design sources: {e}")))?;
        let designs = match &cfg.service_token {
            Some(ServiceTokenSource(t)) => designs.with_token(t.clone()),
            None => designs,
        };
        let secrets = Secrets::standard(
            cfg.secrets.clone(),
            cfg.secret_scopes.clone(),
            store.clone(),
        );
        // Lead (or learn who leads) before taking any work.
        let kv_usage_refresh = cfg.kv_usage_refresh;
        let leadership = Arc::new(Leadership::new(cfg.instance_id.clone(), cfg.leader.clone()));
        leadership.tick(&store).await;
        let requeued = store
            .requeue_owned(&cfg.instance_id, super::orchestrator::WAITS)
            .await?;
        if requeued > 0 {
            tracing::warn!(
                instance = %cfg.instance_id,
                requeued,
                "resuming work left unfinished by a previous run of this instance"
            );
        }
        let shutdown = tokio_util::sync::CancellationToken::new();
        let bmcs = Arc::new(super::executor::BmcLimits::new(cfg.per_bmc));
        let timeline = crate::fleet::Timeline::start(store.clone(), shutdown.clone());
        let (dispatch, dispatch_rx) = tokio::sync::mpsc::unbounded_channel();
        let slots = Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrency));
        let kv_reads = super::kv_reads::KvReads::start(store.clone(), shutdown.clone());
        let shared = Arc::new(Shared {
            store,
            runtime,
            drivers,
            leadership: leadership.clone(),
            cfg,
            designs,
            secrets,
            wake_scheduler: Default::default(),
            wake_executor: Default::default(),
            shutdown: shutdown.clone(),
            draining: Default::default(),
            executor_parked: Default::default(),
            calls: shutdown.child_token(),
            finished: tokio::sync::broadcast::channel(1024).0,
            writes,
            settle,
            inflight: Default::default(),
            slots,
            dispatch,
            dispatch_stats: Default::default(),
            backlog: Default::default(),
            queued_here: Default::default(),
            bmcs,
            timeline,
            fleet_stats: Default::default(),
            kv: Default::default(),
            kv_reads,
            kv_ledger: Arc::new(crate::drivers::kv_ledger::KvLedger::new(kv_usage_refresh)),
            task_designs: Mutex::default(),
            leader_task: Mutex::default(),
        });
        {
            let (store, stop) = (shared.store.clone(), shared.shutdown.clone());
            let task = tokio::spawn(async move { leadership.run(store, stop).await });
            *shared.leader_task.lock().expect("leader task lock") = Some(task);
        }
        tokio::spawn(scheduler::run(shared.clone()));
        tokio::spawn(executor::run(shared.clone(), dispatch_rx));
        tokio::spawn(writer::run(shared.clone(), writes_rx));
        tokio::spawn(settler::run(shared.clone(), settle_rx));
        Ok(Engine { shared })
    }

    /// Stops at once: claims nothing more and cuts in-flight calls (they
    /// are requeued on the next start, or by the leader once this instance
    /// looks dead). [`Engine::drain`] is the clean way to leave.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Leaves cleanly (see [`super::drain`]): takes no new work, hands back
    /// what it has not started, resigns the lead, lets calls in flight
    /// finish within `grace` (then cuts and requeues them), stores every
    /// result, and removes its heartbeat; then stops as
    /// [`Engine::shutdown`] does.
    pub async fn drain(&self, grace: Duration) -> super::drain::Drained {
        super::drain::drain(&self.shared, grace).await
    }

    /// Whether a drain has begun ([`Engine::drain`]): the instance is
    /// leaving, and `GET /health` says so.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.is_cancelled()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Node timelines (see [`crate::fleet`]).
    pub fn timeline(&self) -> &Arc<crate::fleet::Timeline> {
        &self.shared.timeline
    }

    /// This instance's fleet sync counters.
    pub fn fleet_stats(&self) -> &Arc<crate::fleet::FleetStats> {
        &self.shared.fleet_stats
    }

    /// Resolves when the engine is shut down.
    pub async fn stopped(&self) {
        self.shared.shutdown.cancelled().await
    }

    /// The secrets sources.
    pub fn secrets(&self) -> &Secrets {
        &self.shared.secrets
    }

    /// The special addresses a node's BMC or switch may still have.
    pub fn node_addresses(&self) -> &crate::node_address::NodeAddressPolicy {
        &self.shared.cfg.node_addresses
    }

    /// Who leads, as this instance knows it.
    pub fn leadership(&self) -> &Leadership {
        &self.shared.leadership
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        self.shared.instance_id()
    }

    /// The URL clients reach this service at, when configured.
    pub fn public_url(&self) -> Option<&str> {
        self.shared.cfg.public_url.as_deref()
    }

    /// Where deployed nodes reach the boot action API.
    pub fn boot_action_url(&self) -> &str {
        &self.shared.cfg.boot_action_url
    }

    /// Asks the scheduler to look at its work now (e.g. a boot action
    /// reported).
    pub fn wake_scheduler(&self) {
        self.shared.wake_scheduler.notify_one();
    }

    /// The loaded drivers.
    pub fn drivers(&self) -> &DriverSet {
        &self.shared.drivers
    }

    /// Writes waiting in the writer's queue, and driver key-value writes
    /// not yet in the store (both bounded by `EngineConfig::write_queue`
    /// plus the writes of calls waiting to queue).
    pub fn writes_waiting(&self) -> (usize, usize) {
        let w = &self.shared.writes;
        (w.max_capacity() - w.capacity(), self.shared.kv.len())
    }

    /// How many subtasks this instance has started so far: (created
    /// already running here and handed over in memory, claimed from the
    /// queue).
    pub fn subtasks_started(&self) -> (u64, u64) {
        self.shared.dispatch_stats.get()
    }

    /// Driver calls in flight on this instance.
    pub fn inflight(&self) -> usize {
        self.shared.inflight.len()
    }

    /// Subtasks created running on this instance that wait for a call slot
    /// (its backlog, at most `EngineConfig::backlog`).
    pub fn backlog(&self) -> usize {
        self.shared.backlog.get()
    }

    /// Waits until task `id` is complete or terminated, at most `within`.
    /// Returns the task as it is then (possibly still running).
    pub async fn wait_finished(
        &self,
        id: Uuid,
        within: Duration,
    ) -> Result<TaskRecord, EngineError> {
        let mut events = self.shared.finished.subscribe();
        let until = tokio::time::Instant::now() + within;
        loop {
            let task = self
                .shared
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
        // The task's span, stored so its steps and calls join its trace.
        task.traceparent = crate::observe::traces::task_submitted(task.id, &name);
        let record = (self.shared.store.insert_task(&task).await)
            .inspect_err(|_| crate::observe::traces::task_finished(task.id))?;
        tracing::info!(task.id = %record.id, action = %name, "task queued");
        self.shared.wake_scheduler.notify_one();
        Ok(record)
    }

    /// Cancels a task: nothing new is scheduled, queued subtasks end
    /// terminated, in-flight driver calls are cut; the task ends terminated.
    pub async fn cancel(&self, id: Uuid, by: &str) -> Result<TaskRecord, EngineError> {
        let store = &self.shared.store;
        let task = store
            .request_cancel(id, by)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("task {id} not found")))?;
        // An orchestrator task's driver calls are its steps' subtasks.
        let mut parents: HashSet<Uuid> = store.subtask_ids(id).await?.into_iter().collect();
        parents.insert(id);
        let cut = self.shared.inflight.cut(id, &parents);
        tracing::info!(task.id = %id, by, cut, "task cancel requested");
        if cut == 0 {
            // Nothing in flight here: settle the steps, then the task, now.
            let steps: Vec<Uuid> = parents.iter().copied().filter(|p| *p != id).collect();
            for batch in [steps, vec![id]] {
                let (done, wait) = oneshot::channel();
                if self
                    .shared
                    .settle
                    .send(Settle::Parents(batch, Some(done)))
                    .is_ok()
                {
                    let _ = wait.await;
                }
            }
        }
        Ok(store.get_task(id).await?.unwrap_or(task))
    }

    /// Fetches and parses a design (through the content cache).
    pub async fn load_design(
        &self,
        design_ref: &str,
    ) -> Result<Arc<Design>, crate::design::SourceError> {
        self.shared.designs.load(design_ref).await
    }

    /// Validates `design` (fetched from `design_ref`) off the async workers
    /// within the design time budget.
    pub async fn validate_design(
        &self,
        design_ref: &str,
        design: &Arc<Design>,
        catalog: Option<PlatformCatalog>,
    ) -> Result<Vec<crate::design::Finding>, crate::design::SourceError> {
        self.shared
            .designs
            .validate(design_ref, design.clone(), catalog)
            .await
    }

    /// What one design may cost (boot-action templates included).
    pub fn design_limits(&self) -> &crate::design::DesignLimits {
        self.shared.designs.limits()
    }

    /// Reads a reference as design references are read (boot action
    /// asset locations).
    pub async fn fetch_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<u8>, crate::design::SourceError> {
        self.shared.designs.fetch_bytes(reference).await
    }

    /// Images and kernels the node driver offers, for the platform rule.
    /// `None` (rule skipped) without a node driver or when it fails.
    pub async fn platform_catalog(&self) -> Option<PlatformCatalog> {
        orchestration::platform_catalog(&self.shared).await
    }
}
