//! The executor: runs the subtasks created already running here
//! ([`super::dispatch`]), claims queued subtasks in batches (never more
//! than it has room for), and runs each one's driver call ([`super::call`]) under the
//! instance-wide limit and a per-BMC limit; cuts calls whose task was
//! cancelled, here or through another instance.

use super::call;
use super::dispatch::Dispatched;
use super::gate::Gate;
use super::shared::Shared;
use crate::store::{ClaimScope, ClaimSpec, NodeRecord, TaskRecord};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// One subtask in [`Inflight`].
struct Entry {
    parent: Option<Uuid>,
    cancel: CancellationToken,
    /// Its call runs; false while it waits in the backlog.
    started: bool,
}

/// The subtasks this instance runs: their driver calls in flight, and
/// those waiting in the backlog for a call slot.
#[derive(Default)]
pub(super) struct Inflight {
    calls: Mutex<HashMap<Uuid, Entry>>,
    /// Told whenever an entry leaves (see [`Inflight::idle`]).
    left: tokio::sync::Notify,
}

impl Inflight {
    /// How many calls are in flight (not counting the backlog).
    pub fn len(&self) -> usize {
        let calls = self.calls.lock().expect("inflight lock");
        calls.values().filter(|e| e.started).count()
    }

    /// Registers subtask `id`: its call starts now (`started`) or waits.
    pub fn insert(&self, id: Uuid, parent: Option<Uuid>, cancel: CancellationToken, started: bool) {
        self.calls.lock().expect("inflight lock").insert(
            id,
            Entry {
                parent,
                cancel,
                started,
            },
        );
    }

    fn start(&self, id: &Uuid) {
        if let Some(e) = self.calls.lock().expect("inflight lock").get_mut(id) {
            e.started = true;
        }
    }

    fn remove(&self, id: &Uuid) {
        self.calls.lock().expect("inflight lock").remove(id);
        self.left.notify_waiters();
    }

    /// Resolves once no call is in flight here (the backlog not counted).
    pub async fn idle(&self) {
        loop {
            let left = self.left.notified();
            tokio::pin!(left);
            // Registered before the count is read: a call that ends in
            // between still wakes this wait.
            left.as_mut().enable();
            if self.len() == 0 {
                return;
            }
            left.await;
        }
    }

    /// Forgets subtasks the executor will never start (a drain hands them
    /// back); those handed over with a slot counted as in flight, so
    /// [`Inflight::idle`] is told.
    fn forget(&self, ids: &[Uuid]) {
        let mut calls = self.calls.lock().expect("inflight lock");
        for id in ids {
            calls.remove(id);
        }
        drop(calls);
        self.left.notify_waiters();
    }

    /// Cuts the calls of `id` itself and of subtasks of any of `parents`;
    /// returns how many were cut.
    pub fn cut(&self, id: Uuid, parents: &HashSet<Uuid>) -> usize {
        let calls = self.calls.lock().expect("inflight lock");
        let mut n = 0;
        for (sub, e) in calls.iter() {
            if *sub == id || e.parent.is_some_and(|p| parents.contains(&p)) {
                e.cancel.cancel();
                n += 1;
            }
        }
        n
    }

    /// The ids whose cancel to watch for: each running call, and the
    /// parents of waiting subtasks (a cancel marks the whole tree, so one
    /// id stands for a parent's whole backlog).
    fn snapshot(&self) -> Vec<Uuid> {
        let calls = self.calls.lock().expect("inflight lock");
        let mut ids: HashSet<Uuid> = HashSet::new();
        for (id, e) in calls.iter() {
            match (e.started, e.parent) {
                (false, Some(parent)) => ids.insert(parent),
                _ => ids.insert(*id),
            };
        }
        ids.into_iter().collect()
    }

    /// Cuts the subtasks among `ids`, and the waiting subtasks of parents
    /// among `ids`.
    fn cut_ids(&self, ids: &[Uuid]) {
        let ids: HashSet<&Uuid> = ids.iter().collect();
        let calls = self.calls.lock().expect("inflight lock");
        for (id, e) in calls.iter() {
            if ids.contains(id) || (!e.started && e.parent.is_some_and(|p| ids.contains(&p))) {
                e.cancel.cancel();
            }
        }
    }
}

/// Per-BMC concurrency limits, keyed by BMC address.
pub(super) struct BmcLimits {
    per_bmc: usize,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl BmcLimits {
    /// `per_bmc` calls at once per BMC.
    pub fn new(per_bmc: usize) -> Self {
        Self {
            per_bmc,
            limits: Mutex::new(HashMap::new()),
        }
    }

    /// The limit for BMC `key`.
    pub fn get(&self, key: &str) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().expect("bmc limits lock");
        limits
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_bmc)))
            .clone()
    }
}

/// Runs the executor until shutdown: subtasks handed over as they were
/// created ([`super::dispatch`]) first, then claims from the queue.
pub(super) async fn run(shared: Arc<Shared>, mut dispatched: mpsc::UnboundedReceiver<Dispatched>) {
    let slots = shared.slots.clone();
    let bmcs = shared.bmcs.clone();
    tokio::spawn(cancel_watch(shared.clone()));
    // Created running here, waiting for a slot, oldest first.
    let mut backlog: VecDeque<Dispatched> = VecDeque::new();
    loop {
        if shared.shutdown.is_cancelled() {
            return;
        }
        if shared.draining.is_cancelled() {
            return hand_back(&shared, backlog, dispatched).await;
        }
        // Created already running here: with a slot, they start now.
        while let Ok(d) = dispatched.try_recv() {
            match d.permit {
                Some(permit) => start(&shared, &bmcs, d.task, d.node, permit, d.cancel, d.gate),
                None => backlog.push_back(d),
            }
        }
        // Then those waiting, as slots free up; those whose rows were never
        // stored (the insert failed) are dropped unstarted.
        while let Some(d) = backlog.pop_front_if(|d| d.gate.failed()) {
            shared.backlog.release(1);
            shared.inflight.remove(&d.task.id);
        }
        while !backlog.is_empty() {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                break;
            };
            let Some(d) = backlog.pop_front() else {
                break;
            };
            shared.backlog.release(1);
            if d.gate.failed() {
                shared.inflight.remove(&d.task.id);
                continue;
            }
            start(&shared, &bmcs, d.task, d.node, permit, d.cancel, d.gate);
        }
        if !backlog.is_empty() {
            // No slot is free: the next call to end wakes this loop.
            if !shared.idle(&shared.wake_executor).await {
                return;
            }
            continue;
        }
        // Claim in batches: each claim is a transaction, so wait until a
        // quarter of the capacity is free (or nothing runs) rather than
        // claiming a task or two every time a call ends.
        let room = slots.available_permits() as i64;
        let capacity = shared.cfg.max_concurrency as i64;
        let threshold = (capacity / 4).clamp(1, shared.cfg.claim_batch.max(1));
        if room >= threshold || (room > 0 && room == capacity) {
            let limit = room.min(shared.cfg.claim_batch);
            // Subtasks created queued here first, by id; then the queue.
            let mine = shared.queued_here.take(usize::try_from(limit).unwrap_or(0));
            let by_id = !mine.is_empty();
            let claimed = if by_id {
                shared
                    .store
                    .claim_ids(&mine, shared.instance_id(), shared.epoch())
                    .await
            } else {
                shared
                    .store
                    .claim_tasks(&ClaimSpec {
                        scope: ClaimScope::Subtasks,
                        owner: shared.instance_id(),
                        epoch: shared.epoch(),
                        limit,
                    })
                    .await
            };
            match claimed {
                Ok(tasks) if !tasks.is_empty() => {
                    shared.dispatch_stats.claimed(tasks.len() as u64);
                    // One query for the batch's nodes.
                    let names: Vec<String> =
                        tasks.iter().filter_map(|t| t.node_name.clone()).collect();
                    let mut nodes: HashMap<String, NodeRecord> =
                        match shared.store.get_nodes(&names).await {
                            Ok(rows) => rows.into_iter().map(|r| (r.name.clone(), r)).collect(),
                            Err(e) => {
                                tracing::warn!(error = %e, "prefetching nodes failed");
                                HashMap::new()
                            }
                        };
                    for t in tasks {
                        let record = t.node_name.as_ref().and_then(|n| nodes.remove(n));
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let cancel = shared.call_token();
                        shared
                            .inflight
                            .insert(t.id, t.parent_id, cancel.clone(), true);
                        start(&shared, &bmcs, t, record, permit, cancel, Gate::stored());
                    }
                    continue;
                }
                // Another instance took those (or they were cancelled):
                // there may be more remembered.
                Ok(_) if by_id => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "claiming subtasks failed; retrying"),
            }
        }
        if !shared.idle(&shared.wake_executor).await {
            return;
        }
    }
}

/// The drain's part here: claims nothing more, starts nothing more, and
/// hands the subtasks created running here that have not started back to
/// the queue (for any instance to claim at once) — those waiting now and
/// any still handed over until shutdown. Calls in flight run on.
async fn hand_back(
    shared: &Shared,
    backlog: VecDeque<Dispatched>,
    mut dispatched: mpsc::UnboundedReceiver<Dispatched>,
) {
    shared.executor_parked.cancel();
    let mut waiting: Vec<Dispatched> = backlog.into();
    loop {
        while let Ok(d) = dispatched.try_recv() {
            waiting.push(d);
        }
        if !waiting.is_empty() {
            // Those without a slot held a backlog place.
            shared
                .backlog
                .release(waiting.iter().filter(|d| d.permit.is_none()).count());
            let ids: Vec<Uuid> = waiting.drain(..).map(|d| d.task.id).collect();
            shared.inflight.forget(&ids);
            match shared.store.requeue_ids(shared.instance_id(), &ids).await {
                Ok(n) => tracing::info!(
                    handed_back = n,
                    "draining: subtasks not started here went back to the queue"
                ),
                // The drain's last step requeues whatever this instance
                // still holds.
                Err(e) => tracing::warn!(error = %e, "draining: handing subtasks back failed"),
            }
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            d = dispatched.recv() => match d {
                Some(d) => waiting.push(d),
                None => return shared.shutdown.cancelled().await,
            },
        }
    }
}

/// Runs subtask `t` (running under this instance, registered in
/// [`Inflight`] with `token`) in its call slot; `gate` says when its row
/// is stored.
fn start(
    shared: &Arc<Shared>,
    bmcs: &Arc<BmcLimits>,
    t: TaskRecord,
    record: Option<NodeRecord>,
    permit: OwnedSemaphorePermit,
    token: CancellationToken,
    gate: Gate,
) {
    shared.inflight.start(&t.id);
    let (shared, bmcs) = (shared.clone(), bmcs.clone());
    let span = crate::observe::traces::subtask_span(&t);
    tokio::spawn(async move {
        let id = t.id;
        call::run(&shared, &bmcs, t, token, record, gate)
            .instrument(span)
            .await;
        shared.inflight.remove(&id);
        drop(permit);
        shared.wake_executor.notify_one();
    });
}

/// Cuts in-flight calls whose task was cancelled through another instance
/// (this one sees only the `terminate` flag in the database).
async fn cancel_watch(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(shared.cfg.poll_interval.max(Duration::from_millis(250))) => {}
        }
        let ids = shared.inflight.snapshot();
        if ids.is_empty() {
            continue;
        }
        let Ok(cancelled) = shared.store.terminate_requested(&ids).await else {
            continue;
        };
        if !cancelled.is_empty() {
            shared.inflight.cut_ids(&cancelled);
        }
    }
}
