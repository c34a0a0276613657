//! Finished tasks served from memory: `GET /tasks/{id}` (the plain form
//! Shipyard polls) for a task that is complete or terminated is kept as its
//! serialised JSON bytes, with the [`TaskVersion`] they were built from.
//!
//! A finished task changes rarely (a late message, a cancel note) and only
//! through its row or its messages, so one query reading its version (one
//! primary-key read and one index probe) decides whether the bytes still
//! hold; a late message, on this instance or another, changes the version
//! and so rebuilds the entry. Running tasks are never cached. The cache is
//! bounded by total bytes.

use axum::body::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use uuid::Uuid;

use crate::store::TaskVersion;

/// Total bytes of cached task dicts at most.
const CAPACITY_BYTES: u64 = 32 * 1024 * 1024;

/// Roughly how many entries that holds (quick_cache sizes its shards by it).
const ESTIMATED_ENTRIES: usize = 16_384;

/// A cached dict: the version it was built from and its bytes.
#[derive(Clone)]
struct Entry {
    version: TaskVersion,
    bytes: Bytes,
}

/// An entry weighs its bytes (and a little for the key and version).
#[derive(Clone)]
struct ByBytes;

impl Weighter<Uuid, Entry> for ByBytes {
    fn weight(&self, _key: &Uuid, e: &Entry) -> u64 {
        e.bytes.len() as u64 + 64
    }
}

/// The cache of finished tasks' dicts (shared by the API's handlers).
pub struct FinishedTasks {
    cache: Cache<Uuid, Entry, ByBytes>,
}

impl std::fmt::Debug for FinishedTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinishedTasks")
            .field("entries", &self.cache.len())
            .field("bytes", &self.cache.weight())
            .finish()
    }
}

impl Default for FinishedTasks {
    fn default() -> Self {
        FinishedTasks {
            cache: Cache::with_weighter(ESTIMATED_ENTRIES, CAPACITY_BYTES, ByBytes),
        }
    }
}

impl FinishedTasks {
    /// The bytes cached for task `id` if they were built from `version`.
    pub fn get(&self, id: Uuid, version: &TaskVersion) -> Option<Bytes> {
        let hit = self
            .cache
            .get(&id)
            .filter(|e| e.version == *version)
            .map(|e| e.bytes);
        crate::observe::metrics::task_cache(hit.is_some());
        hit
    }

    /// Keeps `bytes` as task `id`'s dict at `version`, if the task has
    /// finished (a running task's dict changes with every subtask).
    pub fn put(&self, id: Uuid, version: TaskVersion, bytes: Bytes) {
        if version.status.is_terminal() {
            self.cache.insert(id, Entry { version, bytes });
        }
    }

    /// How many dicts are cached.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::store::TaskStatus;

    fn version(status: TaskStatus, last_message: Option<i64>) -> TaskVersion {
        TaskVersion {
            status,
            updated: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            last_message,
        }
    }

    #[test]
    fn only_finished_tasks_are_kept_and_only_at_their_version() {
        let cache = FinishedTasks::default();
        let id = Uuid::now_v7();
        cache.put(id, version(TaskStatus::Running, None), Bytes::from("{}"));
        assert!(cache.is_empty(), "a running task is never cached");

        let done = version(TaskStatus::Complete, Some(7));
        cache.put(id, done, Bytes::from("{\"a\":1}"));
        assert_eq!(cache.get(id, &done).as_deref(), Some(&b"{\"a\":1}"[..]));
        // A late message changes the version: the bytes no longer hold.
        assert_eq!(cache.get(id, &version(TaskStatus::Complete, Some(8))), None);
        assert_eq!(cache.get(Uuid::now_v7(), &done), None);
    }

    #[test]
    fn the_cache_is_bounded_by_bytes() {
        let cache = FinishedTasks::default();
        let big = Bytes::from(vec![b'x'; 1024 * 1024]);
        for _ in 0..100 {
            cache.put(
                Uuid::now_v7(),
                version(TaskStatus::Complete, None),
                big.clone(),
            );
        }
        assert!(cache.cache.weight() <= CAPACITY_BYTES, "{cache:?}");
        assert!(cache.len() < 100);
    }
}
