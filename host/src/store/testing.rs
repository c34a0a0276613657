//! Helpers for tests that need a scratch PostgreSQL database (not part of
//! the API).

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{DbResult, Result, StoreError, redact_url};

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
