//! A store for API reads: its own small PostgreSQL pool with a short
//! acquire timeout, so a burst of reads can neither take the connections
//! the engine writes through nor queue for long. A read that finds the pool
//! full answers [`StoreError::Unavailable`] at once (the API's 503 with
//! `Retry-After`).

use super::{Inner, Store};
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

/// Connections in the API's read pool.
pub const READ_CONNECTIONS: u32 = 8;
/// How long an API read waits for one of them.
pub const READ_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(250);

impl Store {
    /// A store over the same database for reads, with its own pool of
    /// `connections` (PostgreSQL) that waits at most `acquire` for one.
    /// On SQLite, this store itself (one file, its own small pool).
    /// Connections open when first used.
    pub fn reader(&self, connections: u32, acquire: Duration) -> Store {
        match &self.inner {
            Inner::Postgres(pool) => {
                let options = (*pool.connect_options()).clone();
                let pool = PgPoolOptions::new()
                    .max_connections(connections.max(1))
                    .test_before_acquire(false)
                    .acquire_timeout(acquire)
                    .connect_lazy_with(options);
                Store {
                    inner: Inner::Postgres(pool),
                }
            }
            Inner::Sqlite(_) => self.clone(),
        }
    }
}
