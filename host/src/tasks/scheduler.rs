//! The scheduler (leader only): claims queued top-level tasks and fans each
//! out — a driver action into one queued subtask per selected node, an
//! orchestrator action into its first step (through [`orchestration`]) —
//! and runs the leader's periodic duties: settling boot action waits and
//! containers whose children finished elsewhere, taking over dead
//! instances' work ([`crate::cluster::recovery`]), and resuming tasks left
//! without subtasks.
//!
//! It never completes a task itself: what may be complete goes to the
//! settler.

use super::bootactions;
use super::dispatch;
use super::engine::EngineError;
use super::filter::{NodeFilter, select};
use super::gate::Gate;
use super::orchestration;
use super::orchestrator::Orchestration;
use super::shared::Shared;
use crate::cluster::recovery;
use crate::drivers::Action;
use crate::model;
use crate::store::{
    ClaimScope, ClaimSpec, NewTask, NodeRecord, StoreError, TaskRecord, TaskStatus,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How often the leader looks at the waits for boot action reports.
const WAITS_EVERY: Duration = Duration::from_millis(250);

/// How often the leader looks for containers whose subtasks all finished
/// elsewhere (what finishes here reaches the settler at once; this catches
/// the rest, and a probe of a 100,000-node task's subtasks costs ~15 ms).
const SETTLED_EVERY: Duration = Duration::from_secs(1);

/// How often the leader resumes top-level tasks left without subtasks.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs the scheduler until shutdown.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut sweep = tokio::time::Instant::now();
    let mut reclaim = tokio::time::Instant::now();
    let mut waits = tokio::time::Instant::now();
    let mut settled = tokio::time::Instant::now();
    let mut recovery = recovery::Recovery::default();
    loop {
        if shared.shutdown.is_cancelled() {
            return;
        }
        // Only the leader schedules; the others wait for a change.
        if !shared.leadership.is_leader() {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = shared.leadership.changed() => {}
                _ = tokio::time::sleep(shared.cfg.poll_interval) => {}
            }
            continue;
        }
        let claimed = shared
            .store
            .claim_tasks(&ClaimSpec {
                scope: ClaimScope::TopLevel,
                owner: shared.instance_id(),
                epoch: shared.epoch(),
                limit: 16,
            })
            .await;
        match claimed {
            Ok(tasks) if !tasks.is_empty() => {
                for t in tasks {
                    if let Err(e) = fan_out(&shared, &t).await {
                        scheduling_failed(&shared, &t, e).await;
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
            bootactions::settle_waits(&shared).await;
        }
        // Settle tasks whose subtasks have all finished (the last one may
        // have run on another instance, which cannot settle what this one
        // owns).
        if settled.elapsed() >= SETTLED_EVERY {
            settled = tokio::time::Instant::now();
            match shared.store.settled_containers(shared.instance_id()).await {
                Ok(ids) => shared.settle(ids),
                Err(e) => tracing::debug!(error = %e, "looking for settled tasks failed"),
            }
        }
        // Adopt the orchestrations at a new epoch; take over the work of
        // dead instances, and fail what a live one holds far past its
        // deadline.
        if reclaim.elapsed() >= shared.leadership.config().renew {
            reclaim = tokio::time::Instant::now();
            if recovery
                .tick(&shared.store, &shared.leadership, &shared.drivers)
                .await
            {
                shared.wake_executor.notify_one();
            }
        }
        // Periodically resume top-level tasks left without subtasks (a
        // leader died between claiming and fanning out).
        if sweep.elapsed() > SWEEP_EVERY {
            sweep = tokio::time::Instant::now();
            sweep_parents(&shared).await;
        }
        if !shared.idle(&shared.wake_scheduler).await {
            return;
        }
    }
}

/// Running top-level tasks this instance owns that have no subtasks
/// (claimed, then the claimer died before fanning out, and this instance
/// adopted them) are fanned out again.
async fn sweep_parents(shared: &Shared) {
    let running = shared
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
        .filter(|t| t.owner.as_deref() == Some(shared.instance_id()))
    {
        if matches!(shared.store.has_subtasks(t.id).await, Ok(false)) {
            tracing::info!(task.id = %t.id, "resuming a task left without subtasks");
            if let Err(e) = fan_out(shared, t).await {
                scheduling_failed(shared, t, e).await;
            }
        }
    }
}

/// What a failed fan-out of `t` leaves: nothing half-done either way (the
/// insert is one transaction). A passing failure is resumed by the sweep
/// (a task left running without subtasks); a fenced one is left to the
/// leader that deposed this instance, which owns the task now; any other
/// fails the task.
async fn scheduling_failed(shared: &Shared, t: &TaskRecord, e: EngineError) {
    match &e {
        EngineError::Store(s) if s.is_retryable() => {
            tracing::warn!(task.id = %t.id, error = %e, "scheduling interrupted; will resume");
        }
        EngineError::Store(StoreError::Fenced(_)) => {
            tracing::warn!(task.id = %t.id, error = %e,
                "scheduling refused: this instance no longer leads; the new leader resumes the task");
        }
        _ => {
            tracing::error!(task.id = %t.id, error = %e, "scheduling failed");
            shared
                .fail_task(t, &format!("scheduling failed: {e}"))
                .await;
        }
    }
}

/// Splits a claimed top-level task into per-node subtasks (or starts its
/// orchestration).
async fn fan_out(shared: &Shared, t: &TaskRecord) -> Result<(), EngineError> {
    let store = &shared.store;
    if t.terminate || store.has_subtasks(t.id).await? {
        // Cancelled before it started, or claimed again after a restart
        // with its subtasks already there: the settler finishes it.
        shared.settle(vec![t.id]);
        return Ok(());
    }
    if let Some(o) = Orchestration::parse(&t.action) {
        return orchestration::start(shared, t, o).await;
    }
    let action: Action = t.action.parse()?;
    let deadline = chrono::Utc::now()
        + chrono::Duration::from_std(shared.timeout(action)).unwrap_or(chrono::Duration::MAX);
    let mut selected: HashMap<String, NodeRecord> = HashMap::new();
    let mut subtasks: Vec<NewTask> = if action.is_node_scoped() {
        let filter = match &t.node_filter {
            Some(f) => NodeFilter::from_json(f)?,
            None => None,
        };
        // A name filter (what Shipyard sends) reads only the nodes it names.
        let records = match filter.as_ref().and_then(NodeFilter::candidates) {
            Some(names) => store.get_nodes(&names).await?,
            None => store.list_nodes().await?,
        };
        let nodes: Vec<model::Node> = records
            .iter()
            // Read in place (no copy of each spec).
            .filter_map(|r| <model::Node as serde::Deserialize>::deserialize(&r.spec).ok())
            .collect();
        let names = select(&nodes, filter.as_ref(), &BTreeMap::new());
        let names = shared.skip_maintenance(t, names).await?;
        if names.is_empty() {
            shared.nothing_to_do(t).await;
            return Ok(());
        }
        // The selected nodes' records go to the calls run here.
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        selected = records
            .into_iter()
            .filter(|r| wanted.contains(r.name.as_str()))
            .map(|r| (r.name.clone(), r))
            .collect();
        names
            .into_iter()
            .map(|n| {
                let mut s = NewTask::subtask(t.id, action.name(), n);
                s.params = t.params.clone();
                s.deadline = Some(deadline);
                s.created_by = t.created_by.clone();
                s.traceparent = t.traceparent.clone();
                s
            })
            .collect()
    } else {
        let mut s = NewTask::new(action.name());
        s.parent_id = Some(t.id);
        s.params = t.params.clone();
        s.deadline = Some(deadline);
        s.created_by = t.created_by.clone();
        s.traceparent = t.traceparent.clone();
        vec![s]
    };
    // Those that fit in free call slots run here without a claim. In a
    // large fan-out of an action safe to repeat, they start before the
    // insert commits (10,000 rows take ~0.1 s): what their calls write
    // waits for it, and if it fails the task's next fan-out runs them
    // again.
    let reserved = dispatch::reserve(shared, &mut subtasks).await;
    let here = reserved.len();
    let early = subtasks.len() >= shared.cfg.early_start_from.max(1);
    // Fenced: a leader deposed while it inserts inserts nothing, so the
    // task it claimed is fanned out once, by the leader that took it over.
    let fence = Some((shared.instance_id(), shared.epoch()));
    let n = if here > 0 && early && safe_to_repeat(shared, action) {
        let (keeper, gate) = Gate::pending();
        reserved.dispatch(shared, &subtasks, &mut selected, gate);
        match store.insert_tasks_fenced(&subtasks, fence).await {
            Ok(n) => {
                keeper.stored();
                n
            }
            Err(e) => {
                tracing::warn!(task.id = %t.id, error = %e, started_here = here,
                    "fan-out insert failed: the results of the calls started for it are dropped");
                // The gate says no: the executor drops the subtasks still
                // waiting for a slot now, not at its next wake.
                drop(keeper);
                shared.wake_executor.notify_one();
                return Err(e.into());
            }
        }
    } else {
        let n = store.insert_tasks_fenced(&subtasks, fence).await?;
        reserved.dispatch(shared, &subtasks, &mut selected, Gate::stored());
        n
    };
    dispatch::stored(shared, &subtasks);
    tracing::info!(task.id = %t.id, action = action.name(), subtasks = n, started_here = here, "task fanned out");
    // A cancel that arrived between the claim and the insert did not reach
    // the new subtasks: cascade it now.
    if store.is_cancel_requested(t.id).await? {
        let by = store
            .get_task(t.id)
            .await?
            .and_then(|t| t.terminated_by)
            .unwrap_or_else(|| "unknown".into());
        store.request_cancel(t.id, &by).await?;
        shared.settle(vec![t.id]);
        return Ok(());
    }
    Ok(())
}

/// Whether no installed driver says `action` is unsafe to repeat (its
/// calls may then start before their rows are stored: a failed insert
/// means they run again).
fn safe_to_repeat(shared: &Shared, action: Action) -> bool {
    !shared.drivers.all().iter().any(|d| {
        d.driver
            .info()
            .unsafe_to_repeat
            .iter()
            .any(|a| a == action.name())
    })
}
