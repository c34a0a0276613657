//! Boot actions handed to nodes: one row per boot action per node per
//! deployment, with the SHA-256 of the node's key (never the key) and the
//! outcome the node reported (`incomplete` until then).

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{DateTime, DbResult, Result, Store, Utc, Uuid, now, with_pool};

/// A boot action's outcome on a node.
pub const INCOMPLETE: &str = "incomplete";
/// Reported success.
pub const SUCCESS: &str = "success";
/// Reported failure.
pub const FAILURE: &str = "failure";

/// The SHA-256 (hex) of a node's key, as stored (keys are hex; case and
/// surrounding blanks do not matter).
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.trim().to_ascii_lowercase().as_bytes()))
}

/// A fresh node key: 32 random bytes, hex.
pub fn new_key() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    hex::encode(bytes)
}

/// A boot action to record.
#[derive(Clone, Debug)]
pub struct NewBootAction {
    /// Its id (what the node reports to).
    pub action_id: String,
    /// The deploy_nodes task.
    pub task_id: Uuid,
    /// The node.
    pub node_name: String,
    /// The `BootAction` document.
    pub name: String,
    /// Whether the node reports its outcome.
    pub signaling: bool,
    /// SHA-256 (hex) of the node's key.
    pub key_hash: String,
    /// The design the deployment used.
    pub design_ref: String,
}

/// A stored boot action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BootActionRecord {
    /// Its id.
    pub action_id: String,
    /// The deploy_nodes task.
    pub task_id: Uuid,
    /// The node.
    pub node_name: String,
    /// The `BootAction` document.
    pub name: String,
    /// Whether the node reports its outcome.
    pub signaling: bool,
    /// `incomplete`, `success` or `failure`.
    pub status: String,
    /// SHA-256 (hex) of the node's key (never shown).
    #[serde(skip)]
    pub key_hash: String,
    /// The design the deployment used.
    pub design_ref: String,
    /// When it was handed out.
    pub created: DateTime<Utc>,
    /// When it last changed.
    pub updated: DateTime<Utc>,
}

const COLS: &str = "action_id, task_id, node_name, name, signaling, status, key_hash, \
                    design_ref, created, updated";

impl Store {
    /// Records boot actions (all in one transaction).
    pub async fn insert_boot_actions(&self, actions: &[NewBootAction]) -> Result<()> {
        let now = now();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await.db()?;
            for a in actions {
                sqlx::query(
                    "INSERT INTO boot_actions (action_id, task_id, node_name, name, signaling, \
                     status, key_hash, design_ref, created, updated) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                )
                .bind(&a.action_id)
                .bind(a.task_id)
                .bind(&a.node_name)
                .bind(&a.name)
                .bind(a.signaling)
                .bind(INCOMPLETE)
                .bind(&a.key_hash)
                .bind(&a.design_ref)
                .bind(now)
                .execute(&mut *tx)
                .await
                .db()?;
            }
            tx.commit().await.db()?;
        });
        Ok(())
    }

    /// The boot actions of `node`'s latest deployment (empty if none).
    pub async fn boot_actions_for_node(&self, node: &str) -> Result<Vec<BootActionRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM boot_actions WHERE node_name = $1 AND task_id = \
                 (SELECT task_id FROM boot_actions WHERE node_name = $1 \
                  ORDER BY created DESC LIMIT 1) ORDER BY name"
            )))
            .bind(node)
            .fetch_all(pool)
            .await
            .db()?
        }))
    }

    /// The boot actions handed out by task `task` (every node), by node and
    /// name.
    pub async fn boot_actions_for_task(&self, task: Uuid) -> Result<Vec<BootActionRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM boot_actions WHERE task_id = $1 ORDER BY node_name, name"
            )))
            .bind(task)
            .fetch_all(pool)
            .await
            .db()?
        }))
    }

    /// One boot action by id.
    pub async fn boot_action(&self, action_id: &str) -> Result<Option<BootActionRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM boot_actions WHERE action_id = $1"
            )))
            .bind(action_id)
            .fetch_optional(pool)
            .await
            .db()?
        }))
    }

    /// Sets the final status of a boot action still `incomplete`; false if
    /// it was final already (or does not exist).
    pub async fn finish_boot_action(&self, action_id: &str, status: &str) -> Result<bool> {
        let now = now();
        let n = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE boot_actions SET status = $2, updated = $3 \
                 WHERE action_id = $1 AND status = $4",
            )
            .bind(action_id)
            .bind(status)
            .bind(now)
            .bind(INCOMPLETE)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        });
        Ok(n == 1)
    }
}
