//! Persistence: tasks, task status messages, build data, registered nodes,
//! secrets and driver key-value state, on PostgreSQL or SQLite.
//!
//! This is the only module that names `sqlx`: everything else talks to a
//! [`Store`] through plain Rust types ([`TaskRecord`], [`NodeRecord`], ...)
//! and gets a [`StoreError`] back.
//!
//! # Backends
//!
//! [`Store::connect`] picks the backend from the URL: `postgres://...` (or
//! `postgresql://...`) uses a PostgreSQL pool, `sqlite://PATH` or
//! `sqlite:PATH` a SQLite file (created if missing, WAL journal, 5 s busy
//! timeout, foreign keys on). Every PostgreSQL session is bounded in time
//! ([`SessionLimits`]: lock waits, idling in a transaction, statements), so
//! a paused instance's open transaction cannot stall the others. Each backend has its own embedded migration
//! folder (`host/migrations/postgres`, `host/migrations/sqlite`); the two
//! schemas are kept equivalent, and the SQL below is shared wherever both
//! dialects accept it (`$N` placeholders, `RETURNING`, `ON CONFLICT`,
//! `UPDATE ... FROM`, recursive CTEs).
//!
//! Timestamps are taken from the host clock (not the database's) and
//! truncated to microseconds, PostgreSQL's precision; on SQLite they are
//! RFC 3339 text in UTC, which sorts in time order.
//!
//! # Tasks and fencing
//!
//! Queued tasks are claimed with [`Store::claim_tasks`] (on PostgreSQL
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers never get the same
//! task). A claim records the claimer (`owner`) and its fencing `epoch`;
//! [`Store::finish_tasks`] only changes a row whose owner, epoch and
//! `running` status still match, so a deposed instance changes nothing.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

mod batch;
pub mod bootactions;
mod drivers;
mod fault;
mod fleet;
mod health;
mod kv;
mod leader_lock;
mod lease;
mod nodes;
mod reads;
mod records;
mod results;
mod session;
mod stats;
mod tasks;
#[doc(hidden)]
pub mod testing;

pub use bootactions::{BootActionRecord, NewBootAction};
pub use chrono::{DateTime, Utc};
pub use drivers::{ActiveDriver, DriverVersionRecord, NewDriverVersion};
pub use fleet::{ClaimedSync, NewNodeEvent, NodeEventRecord, NodeSyncRecord, SyncUpdate};
pub use health::SyncBrief;
pub use leader_lock::{LOCK_WAIT, LeaderLockSession};
pub use lease::{Lease, Reclaimed};
pub use nodes::{NodeRecord, SecretRecord};
pub use reads::{READ_ACQUIRE_TIMEOUT, READ_CONNECTIONS};
pub use records::{BuildDataRecord, MessageRecord, NewBuildData, NewMessage, TaskVersion};
pub use results::Results;
pub use session::{MIGRATION_TIMEOUT, SessionLimits};
pub use stats::TaskCount;
pub use tasks::{
    ClaimScope, ClaimSpec, NewTask, ResultStatus, TaskFilter, TaskOutcome, TaskPatch, TaskRecord,
    TaskStatus, TreeRows,
};
pub use uuid::Uuid;

/// Migrations for PostgreSQL, embedded at build time.
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
/// Migrations for SQLite, embedded at build time.
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Maximum connections in a PostgreSQL pool.
const PG_MAX_CONNECTIONS: u32 = 20;
/// Maximum connections in a SQLite pool (writers are serialised anyway).
const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// How long a query waits for a pooled connection before the database is
/// reported [`StoreError::Unavailable`].
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Store::connect`] waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLite's busy timeout (how long a writer waits for the write lock).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows per multi-row statement in batched writes (well under both
/// backends' bind-parameter limits).
pub(crate) const CHUNK: usize = 500;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL (`postgres://` URLs).
    Postgres,
    /// SQLite (`sqlite:` URLs).
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// Errors from the store. Messages never contain a URL's password nor a
/// secret's value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The URL is not understood, or the first connection failed.
    #[error("cannot connect to database {url}: {reason}")]
    Connect {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// Why the connection failed.
        reason: String,
    },
    /// Running the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// The named object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness constraint was violated (e.g. a task id already used).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller asked for something the store refuses (e.g. finishing a
    /// task with a non-terminal status).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The database could not be reached (connection lost or refused, pool
    /// exhausted or closed). Usually worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database gave the statement up and rolled its transaction back,
    /// nothing written: it waited for a lock past `lock_timeout` (another
    /// session held it too long), ran past `statement_timeout`, its session
    /// was ended for idling in a transaction, or it lost a deadlock or
    /// serialization conflict (see [`SessionLimits`]). Worth retrying (a
    /// fenced write retried by a deposed instance is then refused).
    #[error("database contended: {0}")]
    Contended(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
    /// A write only the leader may make was refused: the writer does not
    /// hold the leader lease at its epoch (it was deposed).
    #[error("fenced: {0}")]
    Fenced(String),
}

impl StoreError {
    /// Whether the same call may succeed if made again:
    /// [`StoreError::Unavailable`] and [`StoreError::Contended`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Contended(_))
    }
}

/// Shorthand for the store's results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection pool to the Drydock database. Cloning is cheap (the pool is
/// shared).
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Inner,
}

/// The backend-specific pool.
#[derive(Clone)]
pub(crate) enum Inner {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Runs `$body` with `$pool` bound to the backend's pool and (optionally)
/// `$db` a type alias for the backend's `sqlx::Database`; the body is
/// compiled once per backend, so it must only use SQL and types both accept.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.inner {
            $crate::store::Inner::Postgres($pool) => $body,
            $crate::store::Inner::Sqlite($pool) => $body,
        }
    };
    ($store:expr, |$pool:ident, $db:ident| $body:expr) => {
        match &$store.inner {
            $crate::store::Inner::Postgres($pool) => {
                type $db = sqlx::Postgres;
                $body
            }
            $crate::store::Inner::Sqlite($pool) => {
                type $db = sqlx::Sqlite;
                $body
            }
        }
    };
}
pub(crate) use with_pool;

impl Store {
    /// Connects to `url` and brings the schema up to date, with the
    /// default [`SessionLimits`] (those of the default 2 s lease).
    ///
    /// `postgres://user:pass@host:port/db` gives a PostgreSQL pool (up to 20
    /// connections); `sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:` a
    /// SQLite pool. The first connection is made (and the migrations run)
    /// before this returns, so a wrong URL or an unreachable server fails
    /// here with [`StoreError::Connect`].
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, SessionLimits::default()).await
    }

    /// [`Store::connect`] with `limits` on every PostgreSQL session (the
    /// migrations' session gets [`SessionLimits::for_migrations`]'s longer
    /// lock and statement limits).
    pub async fn connect_with(url: &str, limits: SessionLimits) -> Result<Store> {
        let redacted = redact_url(url);
        let connect_err = |reason: String| StoreError::Connect {
            url: redacted.clone(),
            reason: scrub(url, &reason),
        };
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "postgres" | "postgresql" => {
                let options =
                    PgConnectOptions::from_str(url).map_err(|e| connect_err(e.to_string()))?;
                let migrating = options.clone().options(limits.for_migrations().options());
                let options = options.options(limits.options());
                let mut conn =
                    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&migrating))
                        .await
                        .map_err(|_| connect_err("timed out".into()))?
                        .map_err(|e| connect_err(e.to_string()))?;
                PG_MIGRATOR
                    .run(&mut conn)
                    .await
                    .map_err(|e| StoreError::Migrate(scrub(url, &e.to_string())))?;
                let _ = conn.close().await;
                // No ping before every acquisition (a round trip per
                // query): a connection the server dropped fails its next
                // statement as `Unavailable`, which every caller retries
                // or reports, and sqlx then discards it.
                let pool = PgPoolOptions::new()
                    .max_connections(PG_MAX_CONNECTIONS)
                    .test_before_acquire(false)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy_with(options);
                tracing::debug!(url = %redacted, "connected to postgres");
                Ok(Store {
                    inner: Inner::Postgres(pool),
                })
            }
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| connect_err(e.to_string()))?
                    .create_if_missing(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true);
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                let (options, pool_options) = if in_memory {
                    // One connection keeps the in-memory database alive and
                    // avoids shared-cache table locks.
                    (
                        options,
                        SqlitePoolOptions::new()
                            .max_connections(1)
                            .min_connections(1)
                            .idle_timeout(None)
                            .max_lifetime(None),
                    )
                } else {
                    (
                        options
                            .journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Normal),
                        SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS),
                    )
                };
                let pool_options = pool_options.acquire_timeout(ACQUIRE_TIMEOUT);
                let pool = if in_memory {
                    pool_options
                        .connect_with(options)
                        .await
                        .map_err(|e| connect_err(e.to_string()))?
                } else {
                    // Open (and create) the file once to report errors here.
                    let conn = SqliteConnection::connect_with(&options)
                        .await
                        .map_err(|e| connect_err(e.to_string()))?;
                    let _ = conn.close().await;
                    pool_options.connect_lazy_with(options)
                };
                SQLITE_MIGRATOR
                    .run(&pool)
                    .await
                    .map_err(|e| StoreError::Migrate(e.to_string()))?;
                tracing::debug!(url = %redacted, "opened sqlite database");
                Ok(Store {
                    inner: Inner::Sqlite(pool),
                })
            }
            _ => Err(connect_err(
                "unsupported URL scheme (expected postgres:// or sqlite:)".into(),
            )),
        }
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Postgres(_) => Backend::Postgres,
            Inner::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Checks the database answers (`SELECT 1`; writes nothing).
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await.db()?;
        });
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    /// Other clones of this store become unusable ([`StoreError::Unavailable`]).
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// The current time, truncated to microseconds (PostgreSQL's precision) so
/// a value reads back as written on both backends.
pub(crate) fn now() -> DateTime<Utc> {
    trunc(Utc::now())
}

/// Truncates a timestamp to microseconds.
pub(crate) fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// Converts sqlx results into store results.
pub(crate) trait DbResult<T> {
    /// Maps the error with [`map_err`].
    fn db(self) -> Result<T>;
}

impl<T> DbResult<T> for std::result::Result<T, sqlx::Error> {
    fn db(self) -> Result<T> {
        self.map_err(map_err)
    }
}

/// Classifies a sqlx error.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if db.is_unique_violation() {
                StoreError::Conflict(db.message().to_string())
            } else if matches!(
                code.as_str(),
                // lock_not_available, query_canceled,
                // idle_in_transaction_session_timeout, deadlock_detected,
                // serialization_failure
                "55P03" | "57014" | "25P03" | "40P01" | "40001"
            ) {
                StoreError::Contended(format!("{} ({code})", db.message()))
            } else if code.starts_with("08")
                || code == "57P01"
                || code == "57P02"
                || code == "57P03"
            {
                // PostgreSQL connection exceptions and server shutdown.
                StoreError::Unavailable(db.message().to_string())
            } else {
                StoreError::Database(db.message().to_string())
            }
        }
        sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
        other => StoreError::Database(other.to_string()),
    }
}

/// Parses a text column into an enum, reporting a corrupt value.
pub(crate) fn parse_col<T: FromStr>(column: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| StoreError::Database(format!("unexpected value {value:?} in column {column}")))
}

/// Returns `url` with the password (userinfo after `:`, and any `password=`
/// query parameter) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(range) = userinfo_password(url) {
        out.replace_range(range, "***");
    }
    // `?password=...` / `&password=...`
    let mut search_from = 0;
    while let Some(pos) = out[search_from..].find("password=") {
        let start = search_from + pos + "password=".len();
        let preceded_ok = matches!(
            out[..search_from + pos].chars().last(),
            Some('?') | Some('&') | Some(' ') | None
        );
        let end = out[start..]
            .find(['&', '#', ' '])
            .map_or(out.len(), |e| start + e);
        if preceded_ok && end > start {
            out.replace_range(start..end, "***");
            search_from = start + 3;
        } else {
            search_from = start;
        }
    }
    out
}

/// The byte range of the password in a URL's `user:password@` part.
fn userinfo_password(url: &str) -> Option<std::ops::Range<usize>> {
    let auth_start = url.find("://")? + 3;
    let rest = &url[auth_start..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..auth_end].rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some(auth_start + colon + 1..auth_start + at)
}

/// Removes the URL's password from an error message, in case a driver
/// echoed it.
fn scrub(url: &str, message: &str) -> String {
    let mut out = message.replace(url, &redact_url(url));
    for secret in url_passwords(url) {
        if secret.len() >= 3 {
            out = out.replace(&secret, "***");
        }
    }
    out
}

/// The passwords a URL carries (userinfo and `password=` parameter).
fn url_passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(range) = userinfo_password(url) {
        found.push(url[range].to_string());
    }
    for part in url.split(['?', '&']) {
        if let Some(p) = part.strip_prefix("password=") {
            found.push(p.split('#').next().unwrap_or_default().to_string());
        }
    }
    found
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn redacts_userinfo_password() {
        assert_eq!(
            redact_url("postgres://drydock:s3cret@db:5432/drydock"),
            "postgres://drydock:***@db:5432/drydock"
        );
        assert_eq!(
            redact_url("postgres://drydock@db/drydock"),
            "postgres://drydock@db/drydock"
        );
        assert_eq!(
            redact_url("postgres://u:p%40ss@db/x?sslmode=disable&password=two"),
            "postgres://u:***@db/x?sslmode=disable&password=***"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/d.db"),
            "sqlite:///var/lib/d.db"
        );
    }

    #[test]
    fn scrub_removes_password() {
        let url = "postgres://u:hunter2@db/x";
        assert_eq!(
            scrub(url, "bad hunter2 and postgres://u:hunter2@db/x"),
            "bad *** and postgres://u:***@db/x"
        );
    }
}
