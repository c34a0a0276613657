//! What the BMC health view reads, for every node at once: its sync state
//! in brief, and the newest failure in its timeline (an out-of-band driver
//! call or a sync that failed). The timeline itself is written by
//! [`crate::fleet`] and the task engine ([`super::fleet`] stores it).

use sqlx::QueryBuilder;

use super::{DbResult, NodeEventRecord, Result, Store, with_pool};

/// A node's sync state in brief.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SyncBrief {
    /// The node.
    pub node_name: String,
    /// Its BMC's health as of the last sync (`ok`, `unreachable`, ...).
    pub observed_health: Option<String>,
    /// Syncs failed in a row.
    pub failures: i64,
}

impl Store {
    /// Every node's sync state in brief, by node name.
    pub async fn sync_briefs(&self) -> Result<Vec<SyncBrief>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT node_name, observed_health, failures FROM node_sync ORDER BY node_name",
            )
            .fetch_all(pool)
            .await
            .db()?
        }))
    }

    /// Each node's newest failure: a failed sync, or a failed driver call
    /// of one of `actions` (the out-of-band ones, for BMC health). Nodes
    /// without one are left out.
    pub async fn newest_failures(&self, actions: &[&str]) -> Result<Vec<NodeEventRecord>> {
        Ok(with_pool!(self, |pool, DB| {
            let mut qb = QueryBuilder::<DB>::new(
                "SELECT seq, node_name, ts, kind, action, outcome, duration_ms, message, task_id \
                 FROM node_events WHERE seq IN (SELECT MAX(seq) FROM node_events \
                 WHERE outcome = 'failure' AND (kind = 'sync'",
            );
            if !actions.is_empty() {
                qb.push(" OR (kind = 'driver_call' AND action IN (");
                let mut list = qb.separated(", ");
                for a in actions {
                    list.push_bind(*a);
                }
                qb.push("))");
            }
            qb.push(") GROUP BY node_name) ORDER BY node_name");
            qb.build_query_as().fetch_all(pool).await.db()?
        }))
    }
}
