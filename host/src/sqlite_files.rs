//! The SQLite database's files: readable by this user only, one instance
//! at a time.
//!
//! The database holds BMC passwords and node keys, so before the store
//! opens it the file is created (or tightened) to mode 0600, and its
//! directory — `data_dir` or a custom `database_url` path — is created with
//! mode 0700. SQLite gives its `-wal` and `-shm` files the database file's
//! mode. An existing directory that other users can enter or list is
//! tightened when it is `data_dir` (Drydock's own) and otherwise refused:
//! changing a shared directory's mode is the operator's call.

use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The file path of a `sqlite:` URL; `None` for other databases and for
/// in-memory SQLite.
pub fn database_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.contains(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// For a SQLite `database_url`: makes the database's directory (0700) and
/// file (0600), then takes an exclusive lock beside the file, refusing to
/// start when another instance holds it. Returns the lock (held while the
/// server runs); `None` for other databases.
pub fn prepare(database_url: &str, data_dir: &Path) -> Result<Option<File>> {
    let Some(path) = database_path(database_url) else {
        return Ok(None);
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    private_dir(&dir, same_dir(&dir, data_dir))?;
    private_file(&path)?;
    for suffix in ["-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let p = PathBuf::from(p);
        if p.exists() {
            private_file(&p)?;
        }
    }
    let mut lock_path = path.clone().into_os_string();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = options()
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another drydock instance is using the SQLite database {}: SQLite serves a \
             single instance; to run several, point them all at one Postgres (database_url)",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", lock_path.display()))
        }
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Create-or-open, write, never truncate, mode 0600 when created.
fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// Creates `path` with mode 0600, or makes an existing one 0600.
fn private_file(path: &Path) -> Result<()> {
    options()
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} mode 0600", path.display()))?;
    }
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700. An existing one open
/// to other users is tightened when `ours`, refused otherwise.
fn private_dir(dir: &Path, ours: bool) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            if !ours {
                bail!(
                    "the SQLite database's directory {} is open to other users (mode {mode:o}): \
                     make it 0700 (chmod 700) or give the database a directory of its own",
                    dir.display()
                );
            }
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "data directory was open to other users: making it 0700");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} mode 0700", dir.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_files() {
        assert_eq!(
            database_path("sqlite:.drydock/drydock.db"),
            Some(PathBuf::from(".drydock/drydock.db"))
        );
        assert_eq!(
            database_path("sqlite:///var/lib/d.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/d.db"))
        );
        assert_eq!(database_path("sqlite::memory:"), None);
        assert_eq!(database_path("postgres://x/y"), None);
    }
}
