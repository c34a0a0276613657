//! Subtasks this instance runs as it creates them.
//!
//! When the scheduler fans a task out, or an orchestration adds a step's
//! calls, the executor usually has free call slots. The subtasks that fit
//! are inserted already `running` under this instance (owner, epoch,
//! attempt 1: exactly what a claim would have written) and handed to the
//! executor over a channel with their node records, so they cost no claim
//! update and no re-read. The rest are inserted `queued` for any
//! instance's executor to claim; this instance remembers their ids
//! ([`QueuedHere`]) and claims them by primary key as its slots free up,
//! rather than scanning the queue (whose index still holds an entry for
//! every task claimed since the last vacuum, so each scan of a big task's
//! queue walked past all its claimed subtasks).
//!
//! A slot is reserved (a permit of the executor's semaphore) before the
//! insert and travels with the subtask, so the executor never holds more
//! calls than its limit. If the insert fails, dropping the [`Reservation`]
//! frees the slots; nothing was stored. Recovery treats these rows like
//! claimed ones: if this instance dies, the new leader requeues or fails
//! them as it does any running subtask of a dead instance.

use super::shared::Shared;
use crate::store::{NewTask, NodeRecord, TaskRecord, TaskStatus};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

/// A subtask handed to the executor as it was created.
pub(super) struct Dispatched {
    /// The subtask, as stored.
    pub task: TaskRecord,
    /// Its node, when the creator had read it.
    pub node: Option<NodeRecord>,
    /// Its call slot, reserved before the insert.
    pub permit: OwnedSemaphorePermit,
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

/// Call slots reserved for some of the rows about to be inserted; those
/// rows are marked running under this instance.
#[must_use = "dispatch the reserved rows once they are stored"]
pub(super) struct Reservation {
    /// (row index, slot) for each reserved row.
    slots: Vec<(usize, OwnedSemaphorePermit)>,
}

/// Reserves a free call slot for each of `rows` that an executor would
/// claim (a queued subtask), while slots are free, and marks those rows
/// running under this instance. Nothing is reserved once this instance
/// is shutting down.
pub(super) fn reserve(shared: &Shared, rows: &mut [NewTask]) -> Reservation {
    let mut slots = Vec::new();
    if shared.shutdown.is_cancelled() {
        return Reservation { slots };
    }
    for (i, row) in rows.iter_mut().enumerate() {
        if row.parent_id.is_none() || row.status != TaskStatus::Queued {
            continue;
        }
        let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
            break;
        };
        row.status = TaskStatus::Running;
        row.owner = Some(shared.instance_id().to_owned());
        row.epoch = shared.epoch();
        row.attempt = 1;
        slots.push((i, permit));
    }
    Reservation { slots }
}

impl Reservation {
    /// How many rows are reserved.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Hands the reserved rows, now stored, to the executor with their
    /// node records (taken from `nodes` by node name), and remembers the
    /// ids of the rows stored queued for its later claims.
    pub fn dispatch(
        self,
        shared: &Shared,
        rows: &[NewTask],
        nodes: &mut HashMap<String, NodeRecord>,
    ) {
        shared.queued_here.remember(
            rows.iter()
                .filter(|r| r.parent_id.is_some() && r.status == TaskStatus::Queued)
                .map(|r| r.id),
        );
        if self.slots.is_empty() {
            shared.wake_executor.notify_one();
            return;
        }
        let created = chrono::Utc::now();
        let n = self.slots.len() as u64;
        for (i, permit) in self.slots {
            let row = &rows[i];
            let node = row.node_name.as_ref().and_then(|n| nodes.remove(n));
            let task = row.record(created);
            if shared
                .dispatch
                .send(Dispatched { task, node, permit })
                .is_err()
            {
                // The executor has stopped (shutdown): the rows stay
                // running under this instance and are requeued when it
                // starts again.
                return;
            }
        }
        shared.dispatch_stats.created(n);
        shared.wake_executor.notify_one();
    }
}
