//! The on-disk compile cache: native code for a component, keyed by the
//! component's SHA-256 and the engine's compatibility hash, in a directory
//! opened once as a capability.
//!
//! Only files this host wrote are ever deserialized: the cache directory must
//! be private to Drydock (it is created mode 0700).

use cap_std::fs::Dir;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use wasmtime::Engine;
use wasmtime::component::Component;

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
        let bytes = self.dir.read(&key).ok()?;
        // SAFETY: the file was written by `put` below from
        // `Component::serialize` of a component this host compiled from
        // verified bytes, under a key that includes the engine's
        // compatibility hash; the directory is private to this host.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &bytes) };
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
                let mut f = self.dir.create(&tmp)?;
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
