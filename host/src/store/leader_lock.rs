//! The leader lock (Postgres): a session-level advisory lock held on a
//! dedicated connection, so that a leader whose process dies is replaced as
//! soon as the database sees its connection drop — not when its lease lapses.
//!
//! Every instance opens one [`LeaderLockSession`] named after itself
//! (`application_name = drydock-leader:<instance>`) and waits for the lock.
//! The lock only wakes a waiter; it decides nothing by itself. Leadership is
//! still the lease and its fencing epoch ([`Store::acquire_lease`]): the
//! instance the lock wakes calls [`Store::take_lease_from_departed`], which
//! takes the lease only if it is free, lapsed, or held by an instance with
//! no leader-lock session left (its process or its database connection is
//! gone). A leader that hangs with its connection open keeps the lock, and
//! is replaced when its lease lapses, as before.
//!
//! SQLite serves one instance and has no such lock.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use std::time::Duration;

use super::{DbResult, Inner, Lease, Result, Store, StoreError};

/// The advisory lock key (any constant; "drydock\0" read as an integer).
const LOCK_KEY: i64 = 0x6472_7964_6f63_6b00;

/// How long one wait for the lock lasts before it is asked again (so a
/// waiter notices a dead database connection and shutdown).
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The `application_name` of `instance`'s leader-lock session (Postgres
/// keeps at most 63 bytes of it; the same truncation is applied in SQL).
fn session_name(instance: &str) -> String {
    let mut name = format!("drydock-leader:{instance}");
    if name.len() > 63 {
        let mut end = 63;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// One instance's dedicated leader-lock connection.
pub struct LeaderLockSession {
    conn: PgConnection,
    held: bool,
}

impl std::fmt::Debug for LeaderLockSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLockSession")
            .field("held", &self.held)
            .finish()
    }
}

impl LeaderLockSession {
    /// Waits up to [`LOCK_WAIT`] for the lock: true once this session holds
    /// it, false if the wait timed out.
    pub async fn wait(&mut self) -> Result<bool> {
        if self.held {
            return Ok(true);
        }
        match sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(LOCK_KEY)
            .execute(&mut self.conn)
            .await
            .db()
        {
            Ok(_) => {
                self.held = true;
                Ok(true)
            }
            // lock_timeout: nobody released it in time.
            Err(StoreError::Contended(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether this session holds the lock.
    pub fn held(&self) -> bool {
        self.held
    }

    /// Gives the lock up (keeping the session), so a waiting instance gets
    /// it: done by a lock holder that does not lead.
    pub async fn release(&mut self) -> Result<()> {
        if self.held {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(LOCK_KEY)
                .execute(&mut self.conn)
                .await
                .db()?;
            self.held = false;
        }
        Ok(())
    }

    /// A round trip on the session: an error means the session (and with
    /// it the lock) is gone.
    pub async fn ping(&mut self) -> Result<()> {
        self.conn.ping().await.db()
    }

    /// Closes the session (the database releases the lock).
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

impl Store {
    /// Opens `instance`'s leader-lock session, or `None` on SQLite.
    pub async fn leader_lock_session(&self, instance: &str) -> Result<Option<LeaderLockSession>> {
        let Inner::Postgres(pool) = &self.inner else {
            return Ok(None);
        };
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let options: PgConnectOptions = (*pool.connect_options())
            .clone()
            .application_name(&session_name(instance))
            // Later settings win over the pool's session limits: the wait
            // is bounded by its own timeout, and nothing else runs here.
            .options([
                ("lock_timeout", ms(LOCK_WAIT)),
                ("statement_timeout", ms(LOCK_WAIT * 2)),
            ]);
        let conn = tokio::time::timeout(LOCK_WAIT, options.connect())
            .await
            .map_err(|_| StoreError::Unavailable("leader lock session: connect timed out".into()))?
            .db()?;
        Ok(Some(LeaderLockSession { conn, held: false }))
    }

    /// Takes the lease for `me` if it is free, lapsed, held by `me`, or held
    /// by an instance that has no leader-lock session any more; `None` if
    /// a live instance holds it. Called by the instance the leader lock
    /// woke (the lease's epoch grows as in [`Store::acquire_lease`]).
    pub async fn take_lease_from_departed(
        &self,
        me: &str,
        length: Duration,
    ) -> Result<Option<Lease>> {
        let Inner::Postgres(pool) = &self.inner else {
            return self.acquire_lease(me, length).await;
        };
        let row: Option<(String, i64, super::DateTime<super::Utc>)> = sqlx::query_as(
            "INSERT INTO leader_lease (id, holder, epoch, expires) \
             VALUES (1, $1, 1, clock_timestamp() + make_interval(secs => $2::float8 / 1000)) \
             ON CONFLICT (id) DO UPDATE SET \
                 holder = $1, \
                 epoch = CASE WHEN leader_lease.holder = $1 \
                              AND leader_lease.expires > clock_timestamp() \
                         THEN leader_lease.epoch ELSE leader_lease.epoch + 1 END, \
                 expires = clock_timestamp() + make_interval(secs => $2::float8 / 1000) \
             WHERE leader_lease.holder = $1 OR leader_lease.expires <= clock_timestamp() \
                OR NOT EXISTS (SELECT 1 FROM pg_stat_activity \
                               WHERE datname = current_database() \
                                 AND application_name = \
                                     left('drydock-leader:' || leader_lease.holder, 63)) \
             RETURNING holder, epoch, expires",
        )
        .bind(me)
        .bind(length.as_millis() as f64)
        .fetch_optional(pool)
        .await
        .db()?;
        Ok(row.map(|(holder, epoch, expires)| Lease {
            holder,
            epoch,
            expires,
        }))
    }
}

#[cfg(test)]
mod unit {
    use super::session_name;

    #[test]
    fn session_names_fit_postgres() {
        assert_eq!(session_name("a"), "drydock-leader:a");
        let long = "é".repeat(40);
        let name = session_name(&long);
        assert!(name.len() <= 63);
        assert!(name.starts_with("drydock-leader:é"));
    }
}
