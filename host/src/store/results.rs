//! One flush of the engine's writer, stored together: driver key-value
//! writes, status messages, subtask outcomes and node states.
//!
//! On PostgreSQL they go in one transaction (one commit instead of one per
//! kind), in the order the writer promises: key-value writes and messages
//! before the outcomes of the calls that made them. On SQLite (one writer
//! at a time, the embedded default) each kind is written as its own call
//! would write it, in the same order.

use super::kv::{KvPlan, kv_write_pg};
use super::{DbResult, NewMessage, Result, Store, StoreError, TaskOutcome, now};

/// What one flush writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Results<'a> {
    /// Driver key-value writes: `(driver, key, Some(value))` stores,
    /// `(driver, key, None)` deletes; a key at most once.
    pub kv: &'a [(String, String, Option<String>)],
    /// Status messages, stored in this order.
    pub messages: &'a [NewMessage],
    /// Subtask outcomes, fenced as [`Store::finish_tasks`] fences them.
    pub outcomes: &'a [TaskOutcome],
    /// `(node, power_state, boot_device)`, as [`Store::set_node_states`]
    /// takes them.
    pub node_states: &'a [(String, Option<String>, Option<String>)],
}

impl Store {
    /// Stores one flush of results: everything or nothing on PostgreSQL
    /// (one transaction); on SQLite each kind in its own transaction, in
    /// the order of [`Results`]' fields. Returns how many outcomes changed
    /// a task (the others were fenced off: their work was reassigned).
    ///
    /// Fails with [`StoreError::Invalid`] (writing nothing) if an outcome's
    /// status is not complete or terminated.
    pub async fn write_results(&self, r: &Results<'_>) -> Result<u64> {
        if let Some(bad) = r.outcomes.iter().find(|o| !o.status.is_terminal()) {
            return Err(StoreError::Invalid(format!(
                "task {} cannot finish with status {}",
                bad.id, bad.status
            )));
        }
        let pool = match &self.inner {
            super::Inner::Postgres(pool) => pool,
            super::Inner::Sqlite(_) => {
                self.kv_apply(r.kv).await?;
                self.add_messages(r.messages).await?;
                let changed = self.finish_tasks(r.outcomes).await?;
                self.set_node_states(r.node_states).await?;
                return Ok(changed);
            }
        };
        let now = now();
        // Every statement below finds its rows by key.
        let mut tx = super::batch::begin_keyed(pool).await?;
        if !r.kv.is_empty() {
            kv_write_pg(&mut tx, &KvPlan::new(r.kv), now).await?;
            super::fault::pause_in_tx(super::fault::Point::KvApply);
        }
        if !r.messages.is_empty() {
            super::records::add_messages_pg(&mut tx, r.messages, now).await?;
        }
        let mut changed = 0;
        if !r.outcomes.is_empty() {
            changed = super::batch::finish_tasks_in(&mut tx, r.outcomes, now).await?;
            if changed > 0 {
                super::fault::pause_in_tx(super::fault::Point::FinishTasks);
            }
        }
        if !r.node_states.is_empty() {
            super::nodes::set_node_states_pg(&mut tx, r.node_states, now).await?;
        }
        tx.commit().await.db()?;
        Ok(changed)
    }
}
