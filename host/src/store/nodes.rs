//! Registered nodes and the secrets they reference by name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DbResult, Result, Store, StoreError, now, with_pool};

/// A registered node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct NodeRecord {
    /// Node (host) name.
    pub name: String,
    /// The node description (JSON).
    #[sqlx(json)]
    pub spec: Value,
    /// The name of the secret holding the node's BMC credential (never the
    /// credential itself).
    pub credential: Option<String>,
    /// Last known power state (e.g. `on`, `off`).
    pub power_state: Option<String>,
    /// Last boot device set (e.g. `pxe`, `disk`).
    pub boot_device: Option<String>,
    /// When the node was first registered.
    pub created: DateTime<Utc>,
    /// Last change.
    pub updated: DateTime<Utc>,
}

/// A stored secret. `Debug` leaves the value out.
#[derive(Clone, sqlx::FromRow)]
pub struct SecretRecord {
    /// The value.
    pub value: String,
    /// What it may be used for (`oob`; see [`crate::secrets::Scope`]).
    pub scope: String,
    /// The node that stored it with `POST /nodes`, the only one it serves.
    pub owner: Option<String>,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("scope", &self.scope)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Node columns, in [`NodeRecord`] order.
macro_rules! node_cols {
    () => {
        "name, spec, credential, power_state, boot_device, created, updated"
    };
}

impl Store {
    /// Registers a node or replaces its description and credential name
    /// (power state and boot device are kept). Returns the stored node.
    pub async fn upsert_node(
        &self,
        name: &str,
        spec: &Value,
        credential: Option<&str>,
    ) -> Result<NodeRecord> {
        let now = now();
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "INSERT INTO nodes (name, spec, credential, created, updated) \
                 VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, \
                 credential = excluded.credential, updated = excluded.updated \
                 RETURNING ",
                node_cols!()
            ))
            .bind(name)
            .bind(sqlx::types::Json(spec))
            .bind(credential)
            .bind(now)
            .fetch_one(pool)
            .await
            .db()?
        }))
    }

    /// One node, if registered.
    pub async fn get_node(&self, name: &str) -> Result<Option<NodeRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                node_cols!(),
                " FROM nodes WHERE name = $1"
            ))
            .bind(name)
            .fetch_optional(pool)
            .await
            .db()?
        }))
    }

    /// The registered nodes among `names` (any order; unknown names are
    /// left out), in as few queries as the bind limits allow.
    pub async fn get_nodes(&self, names: &[String]) -> Result<Vec<NodeRecord>> {
        let mut all = Vec::new();
        for chunk in names.chunks(super::CHUNK) {
            let rows: Vec<NodeRecord> = with_pool!(self, |pool, DB| {
                let mut qb = sqlx::QueryBuilder::<DB>::new(concat!(
                    "SELECT ",
                    node_cols!(),
                    " FROM nodes WHERE name IN ("
                ));
                let mut list = qb.separated(", ");
                for n in chunk {
                    list.push_bind(n.as_str());
                }
                qb.push(")");
                qb.build_query_as().fetch_all(pool).await.db()?
            });
            all.extend(rows);
        }
        Ok(all)
    }

    /// All registered nodes, by name.
    pub async fn list_nodes(&self) -> Result<Vec<NodeRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                node_cols!(),
                " FROM nodes ORDER BY name"
            ))
            .fetch_all(pool)
            .await
            .db()?
        }))
    }

    /// Unregisters a node; returns whether it existed. Its credential
    /// secret is left alone.
    pub async fn delete_node(&self, name: &str) -> Result<bool> {
        let affected = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM nodes WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await
                .db()?
                .rows_affected()
        });
        Ok(affected > 0)
    }

    /// Records a node's last known power state and/or boot device (`None`
    /// leaves that one unchanged).
    ///
    /// Fails with [`StoreError::NotFound`] if the node is not registered.
    pub async fn set_node_state(
        &self,
        name: &str,
        power_state: Option<&str>,
        boot_device: Option<&str>,
    ) -> Result<()> {
        let state = (
            name.to_owned(),
            power_state.map(str::to_owned),
            boot_device.map(str::to_owned),
        );
        if self.set_node_states(&[state]).await? == 0 {
            return Err(StoreError::NotFound(format!("node {name}")));
        }
        Ok(())
    }

    /// Records many nodes' states in one statement per chunk: `(name,
    /// power_state, boot_device)`, `None` leaving that one unchanged. Nodes
    /// that are not registered (any more) are skipped. Returns how many rows
    /// changed.
    pub async fn set_node_states(
        &self,
        states: &[(String, Option<String>, Option<String>)],
    ) -> Result<u64> {
        let now = now();
        if let super::Inner::Postgres(pool) = &self.inner {
            let mut tx = super::batch::begin_keyed(pool).await?;
            let changed = set_node_states_pg(&mut tx, states, now).await?;
            tx.commit().await.db()?;
            return Ok(changed);
        }
        let mut changed = 0;
        for chunk in states.chunks(super::CHUNK) {
            changed += with_pool!(self, |pool, DB| {
                let mut qb = sqlx::QueryBuilder::<DB>::new(
                    "UPDATE nodes SET power_state = COALESCE(v.column2, nodes.power_state), \
                     boot_device = COALESCE(v.column3, nodes.boot_device), updated = ",
                );
                qb.push_bind(now);
                qb.push(" FROM (");
                qb.push_values(chunk, |mut b, (n, p, bd)| {
                    b.push_bind(n.as_str())
                        .push_bind(p.as_deref())
                        .push_bind(bd.as_deref());
                });
                // VALUES columns are column1.. on both Postgres and SQLite.
                qb.push(") AS v WHERE nodes.name = v.column1");
                qb.build().execute(pool).await.db()?.rows_affected()
            });
        }
        Ok(changed)
    }

    /// Stores (or replaces) a secret. The value never appears in errors or
    /// logs.
    pub async fn put_secret(&self, name: &str, value: &str) -> Result<()> {
        let now = now();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO secrets (name, value, created, updated) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                 updated = excluded.updated",
            )
            .bind(name)
            .bind(value)
            .bind(now)
            .execute(pool)
            .await
            .db()?;
        });
        Ok(())
    }

    /// Stores secret `name` for node `owner` (scope `oob`), or replaces its
    /// value when `owner` stored it. Returns `false`, changing nothing, when
    /// the name is taken by a secret `owner` did not store. The value never
    /// appears in errors or logs.
    pub async fn put_node_secret(&self, name: &str, value: &str, owner: &str) -> Result<bool> {
        let now = now();
        let affected = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO secrets (name, value, created, updated, scope, owner) \
                 VALUES ($1, $2, $3, $3, 'oob', $4) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                 updated = excluded.updated WHERE secrets.owner = excluded.owner",
            )
            .bind(name)
            .bind(value)
            .bind(now)
            .bind(owner)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        });
        Ok(affected > 0)
    }

    /// A secret with its scope and owner, if it exists.
    pub async fn get_secret_record(&self, name: &str) -> Result<Option<SecretRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT value, scope, owner FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
                .db()?
        }))
    }

    /// A secret's value, if it exists.
    pub async fn get_secret(&self, name: &str) -> Result<Option<String>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
                .db()?
        }))
    }

    /// Deletes a secret; returns whether it existed.
    pub async fn delete_secret(&self, name: &str) -> Result<bool> {
        let affected = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM secrets WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await
                .db()?
                .rows_affected()
        });
        Ok(affected > 0)
    }

    /// The names of all secrets, sorted.
    pub async fn secret_names(&self) -> Result<Vec<String>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT name FROM secrets ORDER BY name")
                .fetch_all(pool)
                .await
                .db()?
        }))
    }
}

/// [`Store::set_node_states`] on PostgreSQL, in the caller's transaction,
/// begun by [`super::batch::begin_keyed`] so that each node is found by
/// primary key (otherwise the planner hashed every node for each batch: 25
/// ms per 500 states at 100,000 nodes). One statement of constant text for
/// any number of nodes.
pub(super) async fn set_node_states_pg(
    conn: &mut sqlx::PgConnection,
    states: &[(String, Option<String>, Option<String>)],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    let mut names = Vec::with_capacity(states.len());
    let mut powers = Vec::with_capacity(states.len());
    let mut boots = Vec::with_capacity(states.len());
    for (n, p, b) in states {
        names.push(n.as_str());
        powers.push(p.as_deref());
        boots.push(b.as_deref());
    }
    Ok(sqlx::query(
        "UPDATE nodes SET power_state = COALESCE(v.power, nodes.power_state), \
         boot_device = COALESCE(v.boot, nodes.boot_device), updated = $4 \
         FROM UNNEST($1::text[], $2::text[], $3::text[]) AS v (name, power, boot) \
         WHERE nodes.name = v.name",
    )
    .bind(&names)
    .bind(&powers)
    .bind(&boots)
    .bind(now)
    .execute(conn)
    .await
    .db()?
    .rows_affected())
}
