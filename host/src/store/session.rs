//! Time bounds on every PostgreSQL session the host opens.
//!
//! An instance can stop in the middle of a transaction — paused (SIGSTOP),
//! swapped out, cut off by the network — with row locks held. Postgres
//! never ends such a session by itself, so without bounds the survivors'
//! writes, the new leader's reclaim and even its lease renewal would queue
//! behind those locks for ever. Leases and fencing exist for exactly this
//! instance, so nothing it holds may block the others for longer than the
//! lease:
//!
//! - `idle_in_transaction_session_timeout` = the lease: the server ends a
//!   session that sits in an open transaction that long, releasing its
//!   locks; the transaction is rolled back, and its instance's late
//!   retry is then refused by fencing.
//! - `lock_timeout` = half the lease: a statement waits at most that long
//!   for a lock, so a leader whose own lease-holding transaction waits
//!   still renews its lease in time; the caller retries.
//! - `statement_timeout` = 30 leases, at least a minute: a backstop for
//!   statements that run away (no statement of the host has a reason to run
//!   that long).
//!
//! Healthy transactions are a few milliseconds between statements, so a
//! healthy instance never trips these. A statement stopped by one of them
//! fails with [`StoreError::Contended`](super::StoreError::Contended),
//! which callers retry. The limits are startup options of each connection
//! (no extra round trip). Migrations get longer lock and statement limits
//! ([`MIGRATION_TIMEOUT`]): they may wait for another instance's migration
//! and build indexes on large tables.

use std::time::Duration;

/// Lock and statement limit for the connection that runs the migrations.
pub const MIGRATION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The smallest `statement_timeout` [`SessionLimits::for_lease`] gives.
const MIN_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-session limits set on every PostgreSQL connection (SQLite ignores
/// them: it serves one instance and has its own busy timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// `lock_timeout`: the longest one statement waits for a lock.
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: the longest a session may sit
    /// in an open transaction between statements before the server ends it.
    pub idle_in_transaction: Duration,
    /// `statement_timeout`: the longest one statement may run.
    pub statement_timeout: Duration,
}

impl SessionLimits {
    /// Limits for a cluster whose leader lease lasts `lease`: idle in a
    /// transaction at most the lease, a lock wait at most half of it, a
    /// statement at most 30 leases (and no less than a minute).
    pub fn for_lease(lease: Duration) -> SessionLimits {
        let lease = lease.max(Duration::from_millis(2));
        SessionLimits {
            lock_timeout: lease / 2,
            idle_in_transaction: lease,
            statement_timeout: lease.saturating_mul(30).max(MIN_STATEMENT_TIMEOUT),
        }
    }

    /// The startup options (`-c name=value`, in milliseconds, at least 1: 0
    /// would mean no limit).
    pub(crate) fn options(&self) -> [(&'static str, String); 3] {
        [
            ("lock_timeout", ms(self.lock_timeout)),
            (
                "idle_in_transaction_session_timeout",
                ms(self.idle_in_transaction),
            ),
            ("statement_timeout", ms(self.statement_timeout)),
        ]
    }

    /// The same limits with lock and statement limits of
    /// [`MIGRATION_TIMEOUT`] (or these, if longer), for the migrations.
    pub fn for_migrations(&self) -> SessionLimits {
        SessionLimits {
            lock_timeout: self.lock_timeout.max(MIGRATION_TIMEOUT),
            idle_in_transaction: self.idle_in_transaction,
            statement_timeout: self.statement_timeout.max(MIGRATION_TIMEOUT),
        }
    }
}

impl Default for SessionLimits {
    /// The limits for the default lease (2 s): 1 s lock waits, 2 s idle in
    /// a transaction, 60 s statements.
    fn default() -> Self {
        SessionLimits::for_lease(Duration::from_millis(2000))
    }
}

/// A duration as Postgres milliseconds, at least 1.
fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis().clamp(1, i32::MAX as u128))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn limits_follow_the_lease() {
        let l = SessionLimits::for_lease(Duration::from_millis(2000));
        assert_eq!(l, SessionLimits::default());
        assert_eq!(
            l.options(),
            [
                ("lock_timeout", "1000ms".to_string()),
                ("idle_in_transaction_session_timeout", "2000ms".into()),
                ("statement_timeout", "60000ms".into()),
            ]
        );
        let long = SessionLimits::for_lease(Duration::from_secs(10));
        assert_eq!(long.statement_timeout, Duration::from_secs(300));
        assert_eq!(long.idle_in_transaction, Duration::from_secs(10));
        // Never 0 (no limit at all), never past what Postgres accepts.
        let zero = SessionLimits::for_lease(Duration::ZERO);
        assert!(zero.options().iter().all(|(_, v)| v != "0ms"));
        let huge = SessionLimits::for_lease(Duration::from_secs(u64::MAX / 64));
        assert_eq!(huge.options()[0].1, format!("{}ms", i32::MAX));
        let m = l.for_migrations();
        assert_eq!(m.lock_timeout, MIGRATION_TIMEOUT);
        assert_eq!(m.idle_in_transaction, l.idle_in_transaction);
    }
}
