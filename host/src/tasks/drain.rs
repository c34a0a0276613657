//! The drain: how an instance leaves the cluster cleanly (SIGTERM, Ctrl-C,
//! `Server::shutdown`) without its work waiting for it to look dead.
//!
//! In order:
//! 1. It takes no new work: the executor claims nothing more and hands the
//!    subtasks it took but has not started back to the queue at once; it
//!    resigns the lead (the lease and the leader lock are given up, so
//!    another instance schedules while this one finishes). It still beats:
//!    what it finishes is not taken from it as a dead instance's.
//! 2. The driver calls in flight finish within the grace; those still
//!    running then are cut (left running under this instance).
//! 3. The writer stores every result queued (outcomes, messages, driver
//!    key-value writes), and the node timeline its events.
//! 4. The driver subtasks it still holds (cut calls, subtasks handed to it
//!    as it resigned) go back to the queue. Its top-level tasks stay
//!    running (a poller never sees one go back to queued): the new leader
//!    adopts them at once (`cluster::recovery`).
//! 5. Everything stops; the heartbeat is removed (the instance departs).
//!
//! Nothing is lost or run twice beyond the calls cut at the end of the
//! grace (run again elsewhere, as after a crash: actions are idempotent).
//! If the database is unreachable, the steps that need it give up after
//! their bound and the work is reclaimed as a dead instance's.

use super::orchestrator::WAITS;
use super::shared::Shared;
use super::writer::Write;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long cut calls may take to end.
const CUT_WAIT: Duration = Duration::from_secs(5);
/// How long the last results may take to reach the store.
const FLUSH_WAIT: Duration = Duration::from_secs(30);
/// How long the leadership may take to resign, and to stop (removing the
/// heartbeat).
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What a drain did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Driver calls in flight when it began.
    pub in_flight: usize,
    /// Calls still running at the end of the grace, cut (to run again
    /// elsewhere).
    pub cut: usize,
    /// Whether every queued result reached the store.
    pub flushed: bool,
    /// Subtasks this instance still held at the end, put back in the queue.
    pub requeued: u64,
    /// Whether this instance's heartbeat was removed (the leadership
    /// stopped in time and the store took the change).
    pub departed: bool,
}

/// Drains the engine (see the module docs); `grace` bounds step 2.
pub(super) async fn drain(shared: &Shared, grace: Duration) -> Drained {
    let began = Instant::now();
    let in_flight = shared.inflight.len();
    tracing::info!(
        in_flight,
        backlog = shared.backlog.get(),
        grace_ms = grace.as_millis() as u64,
        "draining: taking no new work"
    );
    shared.draining.cancel();
    shared.wake_executor.notify_one();
    if tokio::time::timeout(STOP_WAIT, shared.leadership.resign(&shared.store))
        .await
        .is_err()
    {
        tracing::warn!("draining: the leader lease was not given up in time: it lapses instead");
    }

    // Once the executor takes nothing more, every call it started is
    // counted in flight.
    let calls_end = async {
        shared.executor_parked.cancelled().await;
        shared.inflight.idle().await;
    };
    let mut cut = 0;
    if tokio::time::timeout(grace, calls_end).await.is_err() {
        cut = shared.inflight.len();
        tracing::warn!(
            cut,
            "draining: calls still running at the end of the grace are cut, to run again elsewhere"
        );
        shared.calls.cancel();
        if tokio::time::timeout(CUT_WAIT, shared.inflight.idle())
            .await
            .is_err()
        {
            tracing::warn!("draining: cut calls did not end in time");
        }
    }

    let flushed = flush(shared).await;
    if tokio::time::timeout(FLUSH_WAIT, shared.timeline.flush())
        .await
        .is_err()
    {
        tracing::warn!("draining: node timeline events not stored in time");
    }

    let requeued = match shared
        .store
        .requeue_calls(shared.instance_id(), WAITS)
        .await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "draining: could not requeue what this instance holds: it is reclaimed after leader.dead_after_ms");
            0
        }
    };

    shared.shutdown.cancel();
    let leader = shared.leader_task.lock().expect("leader task lock").take();
    let departed = match leader {
        Some(task) => matches!(tokio::time::timeout(STOP_WAIT, task).await, Ok(Ok(true))),
        None => false,
    };
    let drained = Drained {
        in_flight,
        cut,
        flushed,
        requeued,
        departed,
    };
    tracing::info!(
        in_flight,
        cut,
        flushed,
        requeued,
        departed,
        elapsed_ms = began.elapsed().as_millis() as u64,
        "drained"
    );
    drained
}

/// Waits until every write queued so far is in the store (bounded).
async fn flush(shared: &Shared) -> bool {
    let (done, stored) = oneshot::channel();
    let flushed = async {
        shared.writes.send(Write::Flush(done)).await.ok()?;
        stored.await.ok()
    };
    match tokio::time::timeout(FLUSH_WAIT, flushed).await {
        Ok(Some(())) => true,
        _ => {
            tracing::warn!("draining: results not stored in time; their calls run again elsewhere");
            false
        }
    }
}
