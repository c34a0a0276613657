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

    /// Applies many writes in one transaction, in order: `(driver, key,
    /// Some(value))` stores, `(driver, key, None)` deletes.
    pub async fn kv_apply(&self, writes: &[(String, String, Option<String>)]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let now = now();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await.db()?;
            for (driver, key, value) in writes {
                match value {
                    Some(value) => sqlx::query(
                        "INSERT INTO driver_kv (driver, key, value, updated) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (driver, key) DO UPDATE SET value = excluded.value, \
                         updated = excluded.updated",
                    )
                    .bind(driver)
                    .bind(key)
                    .bind(value)
                    .bind(now),
                    None => sqlx::query("DELETE FROM driver_kv WHERE driver = $1 AND key = $2")
                        .bind(driver)
                        .bind(key),
                }
                .execute(&mut *tx)
                .await
                .db()?;
            }
            tx.commit().await.db()?;
        });
        Ok(())
    }
}
