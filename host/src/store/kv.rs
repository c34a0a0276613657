//! Per-driver key-value state, keyed by (driver, key).

use super::{DbResult, Result, Store, now, with_pool};

impl Store {
    /// The value stored under (`driver`, `key`), if any.
    pub async fn kv_get(&self, driver: &str, key: &str) -> Result<Option<String>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT value FROM driver_kv WHERE driver = $1 AND key = $2")
                .bind(driver)
                .bind(key)
                .fetch_optional(pool)
                .await
                .db()?
        }))
    }

    /// The values stored under `keys` of `driver` (keys with no value are
    /// left out): one statement for any number of keys on PostgreSQL
    /// (`= ANY`), a statement per [`super::CHUNK`] keys on SQLite.
    pub async fn kv_get_many(
        &self,
        driver: &str,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        let mut found = std::collections::HashMap::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(found);
        }
        match &self.inner {
            super::Inner::Postgres(pool) => {
                // A primary-key lookup per key, whatever the plan: with
                // `driver = $1 AND key = ANY($2)` the cached generic plan,
                // made while the table was small, matched on `driver` alone
                // and filtered every key of the driver (4.8 ms a batch at
                // 10,000 keys).
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                    "SELECT k.key, (SELECT d.value FROM driver_kv d \
                     WHERE d.driver = $1 AND d.key = k.key) \
                     FROM unnest($2::text[]) AS k (key)",
                )
                .bind(driver)
                .bind(keys)
                .fetch_all(pool)
                .await
                .db()?;
                found.extend(rows.into_iter().filter_map(|(k, v)| Some((k, v?))));
            }
            super::Inner::Sqlite(pool) => {
                for chunk in keys.chunks(super::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "SELECT key, value FROM driver_kv WHERE driver = ",
                    );
                    qb.push_bind(driver).push(" AND key IN (");
                    let mut list = qb.separated(", ");
                    for k in chunk {
                        list.push_bind(k.as_str());
                    }
                    qb.push(")");
                    let rows: Vec<(String, String)> =
                        qb.build_query_as().fetch_all(pool).await.db()?;
                    found.extend(rows);
                }
            }
        }
        Ok(found)
    }

    /// How many keys `driver` holds and their bytes (keys plus values): one
    /// primary-key read of the totals the store's triggers keep with every
    /// write (table `driver_kv_usage`).
    pub async fn kv_usage(&self, driver: &str) -> Result<(u64, u64)> {
        let usage: Option<(i64, i64)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT keys, bytes FROM driver_kv_usage WHERE driver = $1")
                .bind(driver)
                .fetch_optional(pool)
                .await
                .db()?
        });
        let (keys, bytes) = usage.unwrap_or_default();
        Ok((keys.max(0) as u64, bytes.max(0) as u64))
    }

    /// Stores `value` under (`driver`, `key`), replacing any previous value.
    pub async fn kv_set(&self, driver: &str, key: &str, value: &str) -> Result<()> {
        let now = now();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO driver_kv (driver, key, value, updated) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (driver, key) DO UPDATE SET value = excluded.value, \
                 updated = excluded.updated",
            )
            .bind(driver)
            .bind(key)
            .bind(value)
            .bind(now)
            .execute(pool)
            .await
            .db()?;
        });
        Ok(())
    }

    /// Deletes (`driver`, `key`); returns whether it existed.
    pub async fn kv_delete(&self, driver: &str, key: &str) -> Result<bool> {
        let affected = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM driver_kv WHERE driver = $1 AND key = $2")
                .bind(driver)
                .bind(key)
                .execute(pool)
                .await
                .db()?
                .rows_affected()
        });
        Ok(affected > 0)
    }

    /// Applies many writes in one transaction: `(driver, key, Some(value))`
    /// stores, `(driver, key, None)` deletes. A key must appear at most once
    /// (the caller keeps the last write). PostgreSQL: one upsert and one
    /// delete of constant text; SQLite: multi-row statements.
    pub async fn kv_apply(&self, writes: &[(String, String, Option<String>)]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let now = now();
        let plan = KvPlan::new(writes);
        let pool = match &self.inner {
            super::Inner::Postgres(pool) => {
                let mut tx = pool.begin().await.db()?;
                kv_write_pg(&mut tx, &plan, now).await?;
                super::fault::pause_in_tx(super::fault::Point::KvApply);
                tx.commit().await.db()?;
                return Ok(());
            }
            super::Inner::Sqlite(pool) => pool,
        };
        let KvPlan { sets, deletes, .. } = plan;
        // SQLite: one writer at a time, so no usage rows to lock first.
        let mut tx = pool.begin().await.db()?;
        for chunk in sets.chunks(super::CHUNK) {
            let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO driver_kv (driver, key, value, updated) ",
            );
            qb.push_values(chunk, |mut b, (d, k, v)| {
                b.push_bind(d.as_str())
                    .push_bind(k.as_str())
                    .push_bind(v.as_str())
                    .push_bind(now);
            });
            qb.push(
                " ON CONFLICT (driver, key) DO UPDATE SET value = excluded.value, \
                 updated = excluded.updated",
            );
            qb.build().execute(&mut *tx).await.db()?;
        }
        for (driver, key) in deletes {
            sqlx::query("DELETE FROM driver_kv WHERE driver = $1 AND key = $2")
                .bind(driver)
                .bind(key)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        super::fault::pause_in_tx(super::fault::Point::KvApply);
        tx.commit().await.db()?;
        Ok(())
    }
}

/// Key-value writes sorted for applying: rows in one order, so two writers
/// lock them in the same order.
pub(super) struct KvPlan<'a> {
    /// The drivers written, sorted, each once.
    drivers: Vec<&'a str>,
    /// `(driver, key, value)` to store, sorted.
    sets: Vec<(&'a String, &'a String, &'a String)>,
    /// `(driver, key)` to delete, sorted.
    deletes: Vec<(&'a String, &'a String)>,
}

impl<'a> KvPlan<'a> {
    /// Sorts `writes` (`None` deletes; a key at most once).
    pub(super) fn new(writes: &'a [(String, String, Option<String>)]) -> Self {
        let mut sets: Vec<_> = writes
            .iter()
            .filter_map(|(d, k, v)| v.as_ref().map(|v| (d, k, v)))
            .collect();
        sets.sort_unstable();
        let mut deletes: Vec<_> = writes
            .iter()
            .filter(|(_, _, v)| v.is_none())
            .map(|(d, k, _)| (d, k))
            .collect();
        deletes.sort_unstable();
        let mut drivers: Vec<&str> = writes.iter().map(|(d, _, _)| d.as_str()).collect();
        drivers.sort_unstable();
        drivers.dedup();
        KvPlan {
            drivers,
            sets,
            deletes,
        }
    }
}

/// [`Store::kv_apply`] on PostgreSQL, in the caller's transaction: the
/// usage rows of the drivers written locked in order, then one upsert and
/// one delete, each of constant text (columns bound as arrays and
/// `UNNEST`ed), so the usage triggers fire once per statement and the
/// server plans each statement once per connection.
pub(super) async fn kv_write_pg(
    tx: &mut sqlx::PgConnection,
    plan: &KvPlan<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let KvPlan {
        drivers,
        sets,
        deletes,
    } = plan;
    if drivers.len() > 1 {
        // Every write adjusts its driver's usage row (a trigger): lock those
        // rows first, in order, or two writers touching the same drivers in
        // another order could deadlock.
        sqlx::query(
            "SELECT driver FROM driver_kv_usage WHERE driver = ANY($1) \
             ORDER BY driver FOR UPDATE",
        )
        .bind(drivers)
        .execute(&mut *tx)
        .await
        .db()?;
    }
    if !sets.is_empty() {
        let (drivers, (keys, values)): (Vec<&str>, (Vec<&str>, Vec<&str>)) = sets
            .iter()
            .map(|(d, k, v)| (d.as_str(), (k.as_str(), v.as_str())))
            .unzip();
        sqlx::query(
            "INSERT INTO driver_kv (driver, key, value, updated) \
             SELECT v.driver, v.key, v.value, $4 \
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS v (driver, key, value) \
             ON CONFLICT (driver, key) DO UPDATE SET value = excluded.value, \
             updated = excluded.updated",
        )
        .bind(&drivers)
        .bind(&keys)
        .bind(&values)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db()?;
    }
    if !deletes.is_empty() {
        let (drivers, keys): (Vec<&str>, Vec<&str>) = deletes
            .iter()
            .map(|(d, k)| (d.as_str(), k.as_str()))
            .unzip();
        // Each key found by primary key, as `set_node_states` finds nodes.
        sqlx::query(
            "DELETE FROM driver_kv d USING UNNEST($1::text[], $2::text[]) AS v (driver, key) \
             WHERE d.driver = v.driver AND d.key = v.key",
        )
        .bind(&drivers)
        .bind(&keys)
        .execute(&mut *tx)
        .await
        .db()?;
    }
    Ok(())
}
