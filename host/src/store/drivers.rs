//! Installed driver versions (content-addressed by SHA-256) and which
//! version of each driver is active. Every instance polls
//! [`Store::active_drivers`] and swaps in what changed.

use super::{DateTime, DbResult, Result, Store, StoreError, Utc, now, with_pool};

/// A driver version to store.
#[derive(Clone, Debug)]
pub struct NewDriverVersion {
    /// Driver name.
    pub name: String,
    /// Version.
    pub version: String,
    /// SHA-256 of `bytes`, hex.
    pub sha256: String,
    /// The component file.
    pub bytes: Vec<u8>,
    /// The manifest, JSON.
    pub manifest: String,
    /// The vendor whose trusted key signed it (None: unsigned, development).
    pub signer: Option<String>,
    /// Who installed it.
    pub installed_by: Option<String>,
}

/// A stored driver version (without its bytes).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DriverVersionRecord {
    /// Driver name.
    pub name: String,
    /// Version.
    pub version: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// The manifest, JSON.
    pub manifest: String,
    /// Signer, if signed.
    pub signer: Option<String>,
    /// When installed.
    pub installed: DateTime<Utc>,
    /// Who installed it.
    pub installed_by: Option<String>,
}

/// The active version of one driver.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ActiveDriver {
    /// Driver name.
    pub name: String,
    /// Active version.
    pub version: String,
    /// Its SHA-256.
    pub sha256: String,
    /// The version active before (what rollback returns to).
    pub previous: Option<String>,
    /// Grows with every activation.
    pub generation: i64,
    /// When it changed.
    pub changed: DateTime<Utc>,
    /// Why it changed (e.g. an automatic rollback's reason).
    pub message: Option<String>,
    /// Whether instances watch this version's first calls and roll it back
    /// past the error threshold (an operator's activation; not a rollback).
    pub watched: bool,
}

/// The columns of [`DriverVersionRecord`], as a literal for `concat!`.
macro_rules! version_columns {
    () => {
        "SELECT name, version, sha256, size, manifest, signer, installed, installed_by \
         FROM driver_versions "
    };
}

impl Store {
    /// Stores a driver version. Storing the same (name, version, sha256)
    /// again is a no-op; another file under a stored (name, version) is a
    /// conflict.
    pub async fn driver_version_insert(&self, v: &NewDriverVersion) -> Result<bool> {
        let now = now();
        let inserted = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO driver_versions (name, version, sha256, bytes, size, manifest, \
                 signer, installed, installed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (name, version) DO NOTHING",
            )
            .bind(&v.name)
            .bind(&v.version)
            .bind(&v.sha256)
            .bind(&v.bytes)
            .bind(v.bytes.len() as i64)
            .bind(&v.manifest)
            .bind(&v.signer)
            .bind(now)
            .bind(&v.installed_by)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        });
        if inserted == 1 {
            return Ok(true);
        }
        match self.driver_version(&v.name, &v.version).await? {
            Some(existing) if existing.sha256 == v.sha256 => Ok(false),
            _ => Err(StoreError::Conflict(format!(
                "driver {} version {} is already installed with other content",
                v.name, v.version
            ))),
        }
    }

    /// Stored versions of `name` (every driver's with None), oldest first.
    pub async fn driver_versions(&self, name: Option<&str>) -> Result<Vec<DriverVersionRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                version_columns!(),
                "WHERE (CAST($1 AS TEXT) IS NULL OR name = $1) ORDER BY name, installed, version"
            ))
            .bind(name)
            .fetch_all(pool)
            .await
            .db()?
        }))
    }

    /// One stored version.
    pub async fn driver_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<DriverVersionRecord>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                version_columns!(),
                "WHERE name = $1 AND version = $2"
            ))
            .bind(name)
            .bind(version)
            .fetch_optional(pool)
            .await
            .db()?
        }))
    }

    /// The component file of a stored version, by its SHA-256.
    pub async fn driver_bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT bytes FROM driver_versions WHERE sha256 = $1 LIMIT 1")
                .bind(sha256)
                .fetch_optional(pool)
                .await
                .db()?
        }))
    }

    /// The active version of every driver that has one.
    pub async fn active_drivers(&self) -> Result<Vec<ActiveDriver>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, version, sha256, previous, generation, changed, message, watched \
                 FROM active_drivers ORDER BY name",
            )
            .fetch_all(pool)
            .await
            .db()?
        }))
    }

    /// Makes `version` the active version of `name` (the one active before
    /// becomes `previous`); `watched` asks instances to watch its first
    /// calls. NotFound when the version is not stored.
    pub async fn driver_activate(
        &self,
        name: &str,
        version: &str,
        message: Option<&str>,
        watched: bool,
    ) -> Result<ActiveDriver> {
        let Some(v) = self.driver_version(name, version).await? else {
            return Err(StoreError::NotFound(format!(
                "driver {name} version {version}"
            )));
        };
        let now = now();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await.db()?;
            let current: Option<(String, i64)> =
                sqlx::query_as("SELECT version, generation FROM active_drivers WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await
                    .db()?;
            let (previous, generation) = match current {
                Some((cur, g)) if cur == version => (None::<String>, g + 1),
                Some((cur, g)) => (Some(cur), g + 1),
                None => (None, 1),
            };
            sqlx::query(
                "INSERT INTO active_drivers (name, version, sha256, previous, generation, \
                 changed, message, watched) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version, \
                 sha256 = excluded.sha256, \
                 previous = COALESCE(excluded.previous, active_drivers.previous), \
                 generation = excluded.generation, changed = excluded.changed, \
                 message = excluded.message, watched = excluded.watched",
            )
            .bind(name)
            .bind(version)
            .bind(&v.sha256)
            .bind(previous)
            .bind(generation)
            .bind(now)
            .bind(message)
            .bind(watched)
            .execute(&mut *tx)
            .await
            .db()?;
            tx.commit().await.db()?;
        });
        self.active_drivers()
            .await?
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| StoreError::NotFound(format!("active driver {name}")))
    }

    /// Rolls `name` back to its previous version (which becomes the active
    /// one's previous in turn), unwatched, only if it is still at
    /// `generation`: of several instances rolling back one bad activation,
    /// one wins and the others change nothing (`Ok(None)`).
    pub async fn driver_rollback_if(
        &self,
        name: &str,
        generation: i64,
        message: &str,
    ) -> Result<Option<ActiveDriver>> {
        let now = now();
        let n = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE active_drivers SET version = previous, previous = version, \
                 sha256 = (SELECT v.sha256 FROM driver_versions v \
                           WHERE v.name = active_drivers.name AND v.version = active_drivers.previous), \
                 generation = generation + 1, changed = $3, message = $4, watched = FALSE \
                 WHERE name = $1 AND generation = $2 AND previous IS NOT NULL \
                 AND EXISTS (SELECT 1 FROM driver_versions v \
                             WHERE v.name = active_drivers.name AND v.version = active_drivers.previous)",
            )
            .bind(name)
            .bind(generation)
            .bind(now)
            .bind(message)
            .execute(pool)
            .await
            .db()?
            .rows_affected()
        });
        if n == 0 {
            return Ok(None);
        }
        Ok(self
            .active_drivers()
            .await?
            .into_iter()
            .find(|a| a.name == name))
    }

    /// Deletes a stored version; refused (Invalid) while it is active.
    pub async fn driver_version_delete(&self, name: &str, version: &str) -> Result<()> {
        let active = self
            .active_drivers()
            .await?
            .into_iter()
            .any(|a| a.name == name && a.version == version);
        if active {
            return Err(StoreError::Invalid(format!(
                "driver {name} version {version} is active: activate another version first"
            )));
        }
        let n = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM driver_versions WHERE name = $1 AND version = $2")
                .bind(name)
                .bind(version)
                .execute(pool)
                .await
                .db()?
                .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "driver {name} version {version}"
            )));
        }
        Ok(())
    }
}
