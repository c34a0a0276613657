//! Test-only fault injection: pausing this process inside an open write
//! transaction, as a SIGSTOP, a swap-out or a network stall would.
//!
//! `DRYDOCK_FAULT_PAUSE_IN_TX=<point>` (read once, the first time a point
//! is reached) makes the process stop itself with SIGSTOP the first time it
//! reaches `<point>` with its transaction's writes made but not committed,
//! so it holds their row locks until a SIGCONT. The high-availability tests
//! use it to prove that such an instance stalls nobody for longer than the
//! session limits. Points:
//!
//! - `finish_tasks`: in [`Store::finish_tasks`](super::Store::finish_tasks)
//!   and [`Store::write_results`](super::Store::write_results) (the engine
//!   writer's flush), once at least one outcome row changed.
//! - `kv_apply`: in [`Store::kv_apply`](super::Store::kv_apply) and
//!   [`Store::write_results`](super::Store::write_results), after the
//!   driver key-value writes.
//! - `reclaim_dead`: in [`Store::reclaim_dead`](super::Store::reclaim_dead)
//!   (the leader's periodic takeover of dead instances' work), holding the
//!   lease row locked.
//!
//! For tests only: never set it in production. Unset (or any other value),
//! it does nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable naming the point.
const PAUSE_IN_TX: &str = "DRYDOCK_FAULT_PAUSE_IN_TX";

/// Where a write transaction may be paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Point {
    /// In `finish_tasks`, after the outcome updates.
    FinishTasks,
    /// In `kv_apply`, after the key-value writes.
    KvApply,
    /// In `reclaim_dead`, after its updates (the lease row locked).
    ReclaimDead,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::FinishTasks => "finish_tasks",
            Point::KvApply => "kv_apply",
            Point::ReclaimDead => "reclaim_dead",
        }
    }
}

/// The configured point, read once.
fn configured() -> Option<Point> {
    static POINT: OnceLock<Option<Point>> = OnceLock::new();
    *POINT.get_or_init(|| {
        let v = std::env::var(PAUSE_IN_TX).ok()?;
        [Point::FinishTasks, Point::KvApply, Point::ReclaimDead]
            .into_iter()
            .find(|p| p.name() == v)
    })
}

/// Stops this process (SIGSTOP) if `point` is the configured one and it
/// has not fired yet; returns once the process is continued.
pub(crate) fn pause_in_tx(point: Point) {
    static FIRED: AtomicBool = AtomicBool::new(false);
    if configured() != Some(point) || FIRED.swap(true, Ordering::SeqCst) {
        return;
    }
    tracing::warn!(
        point = point.name(),
        "fault injection: stopping inside a transaction"
    );
    // `kill` from outside: std has no raise(), and the whole process stops
    // either way. Blocks this thread until the process is continued.
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &std::process::id().to_string()])
        .status();
    if let Err(e) = stopped {
        tracing::error!(error = %e, "fault injection: could not stop the process");
    }
}
