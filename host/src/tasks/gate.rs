//! Whether a dispatched subtask's row is stored yet.
//!
//! The scheduler hands a fan-out's share of subtasks to the executor before
//! the one transaction that inserts them commits, so their driver calls run
//! while the rest of a large fan-out is still being copied in
//! ([`super::scheduler`]). Anything such a call writes that names its
//! subtask — its outcome, its status messages, its build data — waits at
//! its [`Gate`] until the insert has committed (an outcome waits apart
//! from its call, so the call slot is free for the next call meanwhile),
//! and is dropped if the insert failed: there is then no row to write to,
//! and the subtask runs again when its task is fanned out again. Only
//! actions no driver calls unsafe to repeat are dispatched this way.
//!
//! Calls of subtasks claimed from the queue, or dispatched after their
//! insert, get a gate that is already open ([`Gate::stored`]).

use tokio::sync::watch;

/// Waits for a subtask's row to be stored. Cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct Gate(watch::Receiver<Option<bool>>);

/// Opens the [`Gate`]s of one insert: [`Keeper::stored`] once it
/// committed; dropped without that, the insert failed and every gate says
/// so.
#[derive(Debug)]
pub(super) struct Keeper(watch::Sender<Option<bool>>);

impl Gate {
    /// A gate for rows not yet stored, and the keeper that opens it.
    pub fn pending() -> (Keeper, Gate) {
        let (tx, rx) = watch::channel(None);
        (Keeper(tx), Gate(rx))
    }

    /// A gate for a row already stored.
    pub fn stored() -> Gate {
        let (_, rx) = watch::channel(Some(true));
        Gate(rx)
    }

    /// Whether the row is stored: waits until the insert has committed
    /// (true) or failed (false).
    pub async fn wait(&self) -> bool {
        let mut rx = self.0.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(state) => state.unwrap_or(false),
            // The keeper is gone without saying (it always says on drop).
            Err(_) => false,
        }
    }

    /// Whether the row is known to be stored.
    pub fn is_open(&self) -> bool {
        *self.0.borrow() == Some(true)
    }

    /// Whether the insert is known to have failed (the call need not run).
    pub fn failed(&self) -> bool {
        *self.0.borrow() == Some(false)
    }
}

impl Keeper {
    /// The insert committed: every gate opens.
    pub fn stored(self) {
        self.0.send_replace(Some(true));
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // Not stored (the insert failed, or the fan-out was abandoned).
        self.0.send_if_modified(|state| {
            if state.is_none() {
                *state = Some(false);
                true
            } else {
                false
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_opens_when_the_rows_are_stored() {
        let (keeper, gate) = Gate::pending();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait().await }
        });
        assert!(!gate.failed());
        assert!(!gate.is_open());
        keeper.stored();
        assert!(waiting.await.unwrap());
        assert!(gate.wait().await);
        assert!(gate.is_open());
        assert!(!gate.failed());
    }

    #[tokio::test]
    async fn a_gate_says_no_when_the_insert_failed() {
        let (keeper, gate) = Gate::pending();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait().await }
        });
        drop(keeper);
        assert!(!waiting.await.unwrap());
        assert!(gate.failed());
        assert!(!gate.is_open());
        assert!(!gate.wait().await);
    }

    #[tokio::test]
    async fn a_stored_gate_is_open() {
        let gate = Gate::stored();
        assert!(gate.wait().await);
        assert!(!gate.failed());
    }
}
