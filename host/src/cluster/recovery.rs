//! Recovery (leader only): the driver calls dead instances had in flight
//! are requeued — or failed, where the driver says the action is unsafe to
//! repeat — and their orchestrations adopted; subtasks a live instance
//! holds far past their deadline are failed. Every change is fenced on the
//! lease in the store.

use super::leader::Leadership;
use crate::drivers::DriverSet;
use crate::store::{Reclaimed, Store};
use std::time::Duration;

/// How far past its deadline a subtask may still be running before the
/// leader fails it: its owner enforces the deadline itself and normally
/// finishes well within this.
pub const OVERDUE_GRACE: Duration = Duration::from_secs(30);

/// Takes over the work of dead instances; true when anything was requeued,
/// failed or adopted (the executor has new work).
pub async fn reclaim(store: &Store, leadership: &Leadership, drivers: &DriverSet) -> bool {
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
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::debug!(error = %e, "reclaiming dead instances' work failed");
            false
        }
    }
}

/// Fails driver subtasks still running [`OVERDUE_GRACE`] past their
/// deadline (their owner is alive, or it would have been reclaimed, but
/// stuck); their steps then settle as usual.
pub async fn expire_overdue(store: &Store, leadership: &Leadership) {
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
