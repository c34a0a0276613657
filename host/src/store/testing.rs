//! Helpers for tests that need a scratch PostgreSQL database (not part of
//! the API).

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{DbResult, Result, Store, StoreError, redact_url};

/// Checks a database name is a plain identifier (`[a-z0-9_]`).
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Invalid(format!("bad database name {name:?}")));
    }
    Ok(())
}

async fn admin(admin_url: &str) -> Result<PgConnection> {
    PgConnection::connect(admin_url)
        .await
        .map_err(|e| StoreError::Connect {
            url: redact_url(admin_url),
            reason: e.to_string(),
        })
}

/// `admin_url` with its database replaced by `name`.
pub fn database_url(admin_url: &str, name: &str) -> String {
    let auth_start = admin_url.find("://").map_or(0, |i| i + 3);
    let rest = &admin_url[auth_start..];
    let host_end = rest
        .find(['/', '?'])
        .map_or(admin_url.len(), |i| auth_start + i);
    let query = admin_url[host_end..]
        .find('?')
        .map_or("", |i| &admin_url[host_end + i..]);
    format!("{}/{name}{query}", &admin_url[..host_end])
}

/// Creates database `name` through `admin_url` (a connection to an
/// existing database, e.g. `postgres`) and returns its URL.
pub async fn create_pg_database(admin_url: &str, name: &str) -> Result<String> {
    check_name(name)?;
    let mut conn = admin(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .db()?;
    let _ = conn.close().await;
    Ok(database_url(admin_url, name))
}

/// Drops database `name` (if it exists), disconnecting its users.
pub async fn drop_pg_database(admin_url: &str, name: &str) -> Result<()> {
    check_name(name)?;
    let mut conn = admin(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .db()?;
    let _ = conn.close().await;
    Ok(())
}

/// Most rows of each view [`pg_activity_report`] prints.
const REPORT_ROWS: i64 = 200;

/// What the sessions on the database at `url` are doing, for a test that
/// timed out waiting: every other session of that database from
/// `pg_stat_activity` (who it is, its state and wait, the sessions blocking
/// it, how long its transaction has been open, its last statement), then
/// its locks from `pg_locks`, ungranted first. Connects afresh, so it
/// answers even when the pools under test are stuck.
pub async fn pg_activity_report(url: &str) -> Result<String> {
    use std::fmt::Write as _;
    type Activity = (
        i32,
        String,
        Option<i32>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        String,
    );
    type LockRow = (
        i32,
        String,
        String,
        bool,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let mut conn = admin(url).await?;
    let activity: Vec<Activity> = sqlx::query_as(
        "SELECT a.pid, COALESCE(a.application_name, ''), a.client_port, a.state, \
             a.wait_event_type, a.wait_event, pg_blocking_pids(a.pid)::text, \
             (clock_timestamp() - a.xact_start)::text, \
             (clock_timestamp() - a.state_change)::text, \
             left(regexp_replace(COALESCE(a.query, ''), '\\s+', ' ', 'g'), 400) \
         FROM pg_stat_activity a \
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() \
         ORDER BY a.xact_start NULLS LAST, a.pid LIMIT $1",
    )
    .bind(REPORT_ROWS)
    .fetch_all(&mut conn)
    .await
    .db()?;
    let locks: Vec<LockRow> = sqlx::query_as(
        "SELECT l.pid, l.locktype, l.mode, l.granted, c.relname::text, \
             CASE WHEN l.page IS NULL THEN NULL ELSE '(' || l.page || ',' || l.tuple || ')' END, \
             l.transactionid::text, l.virtualxid \
         FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation \
         WHERE l.pid IN (SELECT pid FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()) \
             AND NOT (l.locktype = 'virtualxid' AND l.granted) \
             AND NOT (l.locktype = 'relation' AND l.mode = 'AccessShareLock' AND l.granted) \
         ORDER BY l.granted, l.pid, l.locktype, c.relname LIMIT $1",
    )
    .bind(REPORT_ROWS)
    .fetch_all(&mut conn)
    .await
    .db()?;
    let _ = conn.close().await;
    let mut out = String::from(
        "pg_stat_activity (pid app port state wait blocked_by xact_age state_age query):\n",
    );
    for (pid, app, port, state, wtype, wevent, blocked_by, xact_age, state_age, query) in activity {
        let _ = writeln!(
            out,
            "  {pid} {app:?} {} {} {}:{} blocked_by={blocked_by} xact={} state={} | {query}",
            port.map_or("-".into(), |p| p.to_string()),
            state.as_deref().unwrap_or("-"),
            wtype.as_deref().unwrap_or("-"),
            wevent.as_deref().unwrap_or("-"),
            xact_age.as_deref().unwrap_or("-"),
            state_age.as_deref().unwrap_or("-"),
        );
    }
    out.push_str("pg_locks (pid type mode granted relation tuple xid vxid; granted relation AccessShare and own vxid omitted):\n");
    for (pid, kind, mode, granted, rel, tuple, xid, vxid) in locks {
        let _ = writeln!(
            out,
            "  {pid} {kind} {mode} {} {} {} {} {}",
            if granted { "granted" } else { "WAITING" },
            rel.as_deref().unwrap_or("-"),
            tuple.as_deref().unwrap_or("-"),
            xid.as_deref().unwrap_or("-"),
            vxid.as_deref().unwrap_or("-"),
        );
    }
    Ok(out)
}

/// Connections taken from a store's pool and held until dropped.
pub struct Held(#[allow(dead_code)] Vec<sqlx::pool::PoolConnection<sqlx::Postgres>>);

/// Takes every connection `store`'s PostgreSQL pool will give (until one
/// waits past the pool's acquire timeout) and holds them: the pool is then
/// saturated. Nothing on SQLite.
pub async fn hold_all(store: &Store) -> Held {
    let mut held = Vec::new();
    if let super::Inner::Postgres(pool) = &store.inner {
        while let Ok(c) = pool.acquire().await {
            held.push(c);
        }
    }
    Held(held)
}
