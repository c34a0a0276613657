//! Subtasks this instance runs as it creates them.
//!
//! When the scheduler fans a task out, or an orchestration adds a step's
//! calls, this instance takes its share of the new subtasks (all of them
//! when it is the only live instance; an even share in a cluster, so the
//! others have work to claim). Its share is inserted already `running`
//! under this instance (owner, epoch, attempt 1: exactly what a claim
//! would have written) and handed to the executor over a channel with
//! their node records, so they cost no claim update and no re-read. Those
//! that fit in free call slots start at once; the rest wait in the
//! executor's backlog, in memory, bounded by `EngineConfig::backlog` (`backlog` under `[limits]`), and
//! start as slots free up. Everything else is inserted `queued` for any
//! instance's executor to claim; this instance remembers their ids
//! ([`QueuedHere`]) and claims them by primary key as its slots free up,
//! rather than scanning the queue (whose index still holds an entry for
//! every task claimed since the last vacuum, so each scan of a big task's
//! queue walked past all its claimed subtasks).
//!
//! A slot (a permit of the executor's semaphore) or a backlog place is
//! reserved before the insert and travels with the subtask, so the
//! executor never holds more calls, nor more waiting subtasks, than its
//! limits. Rows may be handed over before their insert commits, so their
//! calls start while a large fan-out is still being copied in: each then
//! carries a [`Gate`] that holds back what its call writes until the insert
//! has committed (see [`super::gate`]). If the insert fails, their gates say
//! so (their results are dropped, and waiting ones never start); dropping a
//! [`Reservation`] that was never handed over frees its slots and places. Recovery treats these rows like claimed ones: if
//! this instance dies, the new leader requeues or fails them as it does
//! any running subtask of a dead instance, and a restart of this instance
//! requeues them. A cancel reaches a waiting subtask as it reaches a
//! running call: each is registered with the executor's in-flight calls
//! when it is handed over ([`super::executor::Inflight`]).

use super::gate::Gate;
use super::shared::Shared;
use crate::store::{NewTask, NodeRecord, TaskRecord, TaskStatus};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A subtask handed to the executor as it was created.
pub(super) struct Dispatched {
    /// The subtask, as stored.
    pub task: TaskRecord,
    /// Its node, when the creator had read it.
    pub node: Option<NodeRecord>,
    /// Its call slot, reserved before the insert; `None` for a subtask
    /// that waits in the backlog for a slot.
    pub permit: Option<OwnedSemaphorePermit>,
    /// Cuts its call (a cancel); registered with the in-flight calls.
    pub cancel: CancellationToken,
    /// Whether its row is stored yet (handed over before the insert
    /// committed).
    pub gate: Gate,
}

/// How many dispatched subtasks wait for a call slot (the executor's
/// backlog), against its bound.
#[derive(Default)]
pub(super) struct BacklogCount(AtomicUsize);

impl BacklogCount {
    /// Takes up to `n` places below `bound`; returns how many it took.
    fn take(&self, n: usize, bound: usize) -> usize {
        let mut taken = 0;
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                taken = n.min(bound.saturating_sub(now));
                Some(now + taken)
            });
        taken
    }

    /// Gives `n` places back (a waiting subtask started, or was never
    /// stored).
    pub fn release(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::AcqRel);
    }

    /// How many subtasks wait.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// How subtasks reached the executor on this instance: dispatched as they
/// were created, or claimed from the queue.
#[derive(Default)]
pub(super) struct DispatchStats {
    /// Subtasks dispatched as they were created.
    pub dispatched: AtomicU64,
    /// Subtasks claimed from the queue.
    pub claimed: AtomicU64,
}

impl DispatchStats {
    /// Counts `n` subtasks started as they were created (here and in the
    /// `drydock_subtasks_started_total` metric).
    pub fn created(&self, n: u64) {
        self.dispatched.fetch_add(n, Ordering::Relaxed);
        crate::observe::metrics::subtasks_started("created", n);
    }

    /// Counts `n` subtasks claimed from the queue.
    pub fn claimed(&self, n: u64) {
        self.claimed.fetch_add(n, Ordering::Relaxed);
        crate::observe::metrics::subtasks_started("claimed", n);
    }

    /// (dispatched, claimed) so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.dispatched.load(Ordering::Relaxed),
            self.claimed.load(Ordering::Relaxed),
        )
    }
}

/// Ids remembered at most: past this, further queued subtasks are found
/// by scanning the queue (16 bytes each: 16 MiB).
const REMEMBERED_AT_MOST: usize = 1 << 20;

/// Ids of subtasks created queued on this instance, oldest first: its
/// executor claims these by id ([`crate::store::Store::claim_ids`]) before
/// it scans the queue. Losing them (a restart) loses nothing: the rows
/// are in the queue for any claimer.
#[derive(Default)]
pub(super) struct QueuedHere {
    ids: Mutex<VecDeque<Uuid>>,
}

impl QueuedHere {
    fn remember(&self, ids: impl Iterator<Item = Uuid>) {
        let mut queue = self.ids.lock().expect("queued ids lock");
        for id in ids {
            if queue.len() >= REMEMBERED_AT_MOST {
                return;
            }
            queue.push_back(id);
        }
    }

    /// Takes up to `n` of the oldest ids.
    pub fn take(&self, n: usize) -> Vec<Uuid> {
        let mut queue = self.ids.lock().expect("queued ids lock");
        let n = n.min(queue.len());
        queue.drain(..n).collect()
    }
}

/// Call slots and backlog places reserved for some of the rows about to
/// be inserted; those rows are marked running under this instance.
#[must_use = "dispatch the reserved rows once they are stored"]
pub(super) struct Reservation<'a> {
    /// (row index, slot) for each reserved row; no slot for a row that
    /// waits in the backlog.
    slots: Vec<(usize, Option<OwnedSemaphorePermit>)>,
    /// Backlog places held until the rows are handed over.
    waiting: usize,
    backlog: &'a BacklogCount,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        // Not handed over (the insert failed): nothing waits.
        self.backlog.release(self.waiting);
    }
}

/// Reserves this instance's share of `rows` that an executor would claim
/// (queued subtasks): a free call slot for each while slots are free, then
/// a backlog place for each while the backlog has room; marks those rows
/// running under this instance. Its share is all of them when it is the
/// only live instance, else an even share. Nothing is reserved once this
/// instance is draining or shutting down, nor when it runs no calls at all
/// (`max_concurrency = 0`: it schedules only).
pub(super) async fn reserve<'a>(shared: &'a Shared, rows: &mut [NewTask]) -> Reservation<'a> {
    let mut reservation = Reservation {
        slots: Vec::new(),
        waiting: 0,
        backlog: &shared.backlog,
    };
    if shared.draining.is_cancelled() || shared.cfg.max_concurrency == 0 {
        return reservation;
    }
    let candidates = rows.iter().filter(|r| claimable(r)).count();
    let share = match candidates {
        0 => return reservation,
        // One is its own share whatever the count (an orchestration step
        // moving on node by node): no query.
        1 => 1,
        n => n.div_ceil(live_instances(shared).await),
    };
    let free = shared.slots.available_permits().min(share);
    reservation.waiting = shared.backlog.take(share - free, shared.cfg.backlog);
    let mut permits = free;
    let mut waiting = reservation.waiting;
    for (i, row) in rows.iter_mut().enumerate() {
        if !claimable(row) {
            continue;
        }
        let permit = if permits > 0 {
            match shared.slots.clone().try_acquire_owned() {
                Ok(p) => {
                    permits -= 1;
                    Some(p)
                }
                // Taken meanwhile (a claim): this row waits instead.
                Err(_) => {
                    permits = 0;
                    None
                }
            }
        } else {
            None
        };
        if permit.is_none() {
            if waiting == 0 {
                break;
            }
            waiting -= 1;
        }
        row.status = TaskStatus::Running;
        row.owner = Some(shared.instance_id().to_owned());
        row.epoch = shared.epoch();
        row.attempt = 1;
        reservation.slots.push((i, permit));
    }
    // Places taken but not used (slots taken meanwhile used them up).
    shared.backlog.release(waiting);
    reservation.waiting -= waiting;
    reservation
}

/// Once `rows` are stored: remembers the ids of those stored queued, for
/// this instance's executor to claim by id, and wakes the executor.
pub(super) fn stored(shared: &Shared, rows: &[NewTask]) {
    shared
        .queued_here
        .remember(rows.iter().filter(|r| claimable(r)).map(|r| r.id));
    shared.wake_executor.notify_one();
}

/// Whether `row` is a subtask an executor would claim (queued).
fn claimable(row: &NewTask) -> bool {
    row.parent_id.is_some() && row.status == TaskStatus::Queued
}

/// How many instances share new work: those with a fresh heartbeat (at
/// least this one; SQLite runs one).
async fn live_instances(shared: &Shared) -> usize {
    match shared
        .store
        .live_instances(shared.leadership.config().dead_after)
        .await
    {
        Ok(live) => live.len().max(1),
        Err(e) => {
            tracing::debug!(error = %e, "counting live instances failed; taking a lone share");
            1
        }
    }
}

impl Reservation<'_> {
    /// How many rows are reserved.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Hands the reserved rows to the executor with their node records
    /// (taken from `nodes` by node name); `gate` says when their rows are
    /// stored ([`Gate::stored`] if they already are).
    pub fn dispatch(
        mut self,
        shared: &Shared,
        rows: &[NewTask],
        nodes: &mut HashMap<String, NodeRecord>,
        gate: Gate,
    ) {
        // The executor owns the backlog places from here.
        self.waiting = 0;
        if self.slots.is_empty() {
            return;
        }
        let created = chrono::Utc::now();
        let n = self.slots.len() as u64;
        for (i, permit) in std::mem::take(&mut self.slots) {
            let row = &rows[i];
            let node = row.node_name.as_ref().and_then(|n| nodes.remove(n));
            let task = row.record(created);
            let cancel = shared.call_token();
            shared
                .inflight
                .insert(task.id, task.parent_id, cancel.clone(), permit.is_some());
            if shared
                .dispatch
                .send(Dispatched {
                    task,
                    node,
                    permit,
                    cancel,
                    gate: gate.clone(),
                })
                .is_err()
            {
                // The executor has stopped (shutdown): the rows stay
                // running under this instance and are requeued when it
                // starts again (the backlog's count no longer matters).
                return;
            }
        }
        shared.dispatch_stats.created(n);
        shared.wake_executor.notify_one();
    }
}
