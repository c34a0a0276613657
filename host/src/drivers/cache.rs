//! The on-disk compile cache: native code for a component, keyed by the
//! component's SHA-256 and the engine's compatibility hash, in a directory
//! opened once as a capability.
//!
//! Only files this host wrote are ever deserialized: the cache directory must
//! be private to Drydock (it is created, or set, mode 0700). Each entry
//! starts with the SHA-256 of the component it was compiled from and the
//! SHA-256 of the compiled code; an entry whose header does not match the
//! component asked for, or whose code does not match its digest (a file
//! truncated, corrupted, or copied over another entry), is discarded and
//! the component compiled again.

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use wasmtime::Engine;
use wasmtime::component::Component;

/// First bytes of every entry (format version 1).
const MAGIC: &[u8] = b"drydock-cwasm-1\n";

/// A compile cache in one directory.
pub struct CompileCache {
    dir: Dir,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileCache").finish_non_exhaustive()
    }
}

impl CompileCache {
    /// Uses `dir` (already opened) as the cache.
    pub fn new(dir: Dir) -> Self {
        Self { dir }
    }

    /// Opens (creating it, mode 0700) the cache directory at `path`.
    pub fn open_path(path: &std::path::Path) -> std::io::Result<Self> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        }
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Self { dir })
    }

    fn key(engine: &Engine, sha256: &str) -> String {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        format!("{sha256}-{:016x}.cwasm", h.finish())
    }

    /// The cached compilation of the component with this hash, if any.
    pub fn get(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let key = Self::key(engine, sha256);
        let file = self.dir.read(&key).ok()?;
        let Some(bytes) = verified(&file, sha256) else {
            tracing::warn!(file = %key, "discarding a compile cache entry that does not match its component");
            let _ = self.dir.remove_file(&key);
            return None;
        };
        // SAFETY: the file was written by `put` below from
        // `Component::serialize` of a component this host compiled from
        // verified bytes, under a key that includes the engine's
        // compatibility hash, in a directory private to this host; its header
        // names this component and its code matches the digest written
        // with it.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, bytes) };
        match component {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(file = %key, error = %e, "discarding unusable compile cache entry");
                let _ = self.dir.remove_file(&key);
                None
            }
        }
    }

    /// Stores a compiled component (best effort: failures are logged).
    pub fn put(&self, engine: &Engine, sha256: &str, component: &Component) {
        let key = Self::key(engine, sha256);
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = format!("{key}.tmp-{}-{seq}", std::process::id());
        let result = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|bytes| {
                let component = hex::decode(sha256).map_err(std::io::Error::other)?;
                let mut f = self.dir.create(&tmp)?;
                f.write_all(MAGIC)?;
                f.write_all(&component)?;
                f.write_all(&Sha256::digest(&bytes))?;
                f.write_all(&bytes)?;
                f.sync_all()?;
                self.dir.rename(&tmp, &self.dir, &key)
            });
        if let Err(e) = result {
            let _ = self.dir.remove_file(&tmp);
            tracing::warn!(file = %key, error = %e, "could not write compile cache entry");
        }
    }
}

/// The compiled code of an entry, if its header names the component
/// `sha256` (hex) and the code matches the digest in the header.
fn verified<'a>(file: &'a [u8], sha256: &str) -> Option<&'a [u8]> {
    let rest = file.strip_prefix(MAGIC)?;
    let (component, rest) = rest.split_at_checked(32)?;
    let (digest, code) = rest.split_at_checked(32)?;
    if hex::encode(component) != sha256 || Sha256::digest(code).as_slice() != digest {
        return None;
    }
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(component: &str, code: &[u8]) -> Vec<u8> {
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&hex::decode(component).unwrap());
        f.extend_from_slice(&Sha256::digest(code));
        f.extend_from_slice(code);
        f
    }

    #[test]
    fn entries_are_checked_against_the_component_and_their_digest() {
        let a = hex::encode(Sha256::digest(b"component a"));
        let b = hex::encode(Sha256::digest(b"component b"));
        let file = entry(&a, b"native code");
        assert_eq!(verified(&file, &a), Some(&b"native code"[..]));
        // Another component's entry copied under this name.
        assert_eq!(verified(&file, &b), None);
        // Code changed after it was written.
        let mut tampered = file.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(verified(&tampered, &a), None);
        // Truncated, or an entry of the old format (raw code).
        assert_eq!(verified(&file[..40], &a), None);
        assert_eq!(verified(b"native code", &a), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("drydock-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        CompileCache::open_path(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(mode & 0o777, 0o700);
    }
}
