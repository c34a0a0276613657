//! Recovery (leader only): the driver calls dead instances had in flight
//! are requeued — or failed, where the driver says the action is unsafe to
//! repeat — and their orchestrations adopted; subtasks a live instance
//! holds far past their deadline are failed. Every change is fenced on the
//! lease in the store.

use super::leader::Leadership;
use crate::drivers::DriverSet;
use crate::store::{Reclaimed, Store};
use std::time::{Duration, Instant};

/// How far past its deadline a subtask may still be running before the
/// leader fails it: its owner enforces the deadline itself and normally
/// finishes well within this.
pub const OVERDUE_GRACE: Duration = Duration::from_secs(30);

/// How often the leader runs the full reclaim even when no instance is
/// newly dead: it catches work whose owner never left a heartbeat row.
pub const FULL_RECLAIM_EVERY: Duration = Duration::from_secs(10);

/// How often the leader looks for subtasks overdue by [`OVERDUE_GRACE`]
/// (a small part of the grace, so none runs much longer than that).
pub const OVERDUE_EVERY: Duration = Duration::from_secs(5);

/// The leader's recovery duties, paced so that a tick with nothing to do
/// reads no task: each tick reads only the `instances` table, and the full
/// reclaim (which walks the running tasks) runs when an instance has died,
/// when this instance starts leading at a new epoch (to adopt its
/// predecessor's orchestrations), and every [`FULL_RECLAIM_EVERY`]; the
/// overdue check runs every [`OVERDUE_EVERY`].
#[derive(Debug, Default)]
pub struct Recovery {
    /// The epoch at which this instance last adopted the orchestrations.
    adopted_at_epoch: Option<i64>,
    /// The epoch of the last full reclaim that succeeded.
    reclaimed_at_epoch: Option<i64>,
    /// When it ran.
    last_reclaim: Option<Instant>,
    /// When the overdue check last ran.
    last_overdue: Option<Instant>,
}

impl Recovery {
    /// One round of the leader's recovery duties (see [`Recovery`]); true
    /// when work was requeued, failed or adopted (the executor has new
    /// work). At a new epoch it adopts the orchestrations at once (their
    /// former owner can no longer write them); the rest waits until
    /// [`Leadership::may_reclaim`].
    pub async fn tick(
        &mut self,
        store: &Store,
        leadership: &Leadership,
        drivers: &DriverSet,
    ) -> bool {
        let epoch = leadership.epoch();
        let mut changed = false;
        if self.adopted_at_epoch != Some(epoch) {
            match store
                .adopt_containers(leadership.instance_id(), epoch)
                .await
            {
                Ok(n) => {
                    self.adopted_at_epoch = Some(epoch);
                    if n > 0 {
                        tracing::info!(adopted = n, epoch, "adopted the running orchestrations");
                        changed = true;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "adopting orchestrations failed"),
            }
        }
        if !leadership.may_reclaim() {
            return changed;
        }
        let mut due = self.reclaimed_at_epoch != Some(epoch)
            || self
                .last_reclaim
                .is_none_or(|t| t.elapsed() >= FULL_RECLAIM_EVERY);
        if !due {
            let dead_after = leadership.config().dead_after;
            due = match store
                .dead_instances(leadership.instance_id(), dead_after)
                .await
            {
                Ok(dead) => dead,
                Err(e) => {
                    tracing::debug!(error = %e, "reading instance heartbeats failed");
                    false
                }
            };
        }
        if due && let Some(moved) = reclaim(store, leadership, drivers).await {
            self.reclaimed_at_epoch = Some(epoch);
            self.last_reclaim = Some(Instant::now());
            changed |= moved;
        }
        if self
            .last_overdue
            .is_none_or(|t| t.elapsed() >= OVERDUE_EVERY)
        {
            self.last_overdue = Some(Instant::now());
            expire_overdue(store, leadership).await;
        }
        changed
    }
}

/// Takes over the work of dead instances and forgets them: whether anything
/// was requeued, failed or adopted; `None` if the store refused.
async fn reclaim(store: &Store, leadership: &Leadership, drivers: &DriverSet) -> Option<bool> {
    let unsafe_actions: Vec<String> = drivers
        .all()
        .iter()
        .flat_map(|d| d.driver.info().unsafe_to_repeat.iter().cloned())
        .collect();
    let dead_after = leadership.config().dead_after;
    match store
        .reclaim_dead(
            leadership.instance_id(),
            leadership.epoch(),
            dead_after,
            &unsafe_actions,
            crate::tasks::orchestrator::WAITS,
        )
        .await
    {
        Ok(r) if r != Reclaimed::default() => {
            tracing::warn!(
                requeued = r.requeued,
                failed = r.failed,
                adopted = r.adopted,
                "took over the work of dead instances"
            );
            Some(true)
        }
        Ok(_) => Some(false),
        Err(e) => {
            tracing::debug!(error = %e, "reclaiming dead instances' work failed");
            None
        }
    }
}

/// Fails driver subtasks still running [`OVERDUE_GRACE`] past their
/// deadline (their owner is alive, or it would have been reclaimed, but
/// stuck); their steps then settle as usual.
async fn expire_overdue(store: &Store, leadership: &Leadership) {
    match store
        .expire_overdue(leadership.instance_id(), leadership.epoch(), OVERDUE_GRACE)
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
