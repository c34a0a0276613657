//! What each driver's key-value store holds, shared by every call that
//! writes to it, so the `kv_keys` and `kv_bytes` quotas hold for the driver
//! however many of its calls run at once.
//!
//! A call used to read its driver's usage at its first write and count its
//! own writes from there: two calls running side by side each saw room for
//! `kv_keys` keys, and together stored twice that (the hostile bench's
//! `kv*` row, with the fleet sync's interrogation running beside the task's).
//! The ledger is one count per driver for everything that writes through the
//! same services (one per engine; one per [`super::MemoryServices`]): a
//! write reserves its change under the ledger's lock before it is made, so
//! no two writes can both take the last key.
//!
//! Another instance's writes reach the ledger when it reads the store again:
//! an entry older than its refresh interval is read afresh before the next
//! write (usage as stored, plus this instance's writes not yet stored, plus
//! the reservations still being made).

use super::limits::{DriverLimits, Limit};
use super::services::KvUsage;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How one write changes a driver's usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KvDelta {
    /// Keys added (1), removed (-1) or neither (0).
    pub keys: i64,
    /// Bytes added (negative: freed).
    pub bytes: i64,
}

/// One driver's count.
#[derive(Debug)]
struct Entry {
    keys: i64,
    bytes: i64,
    /// Reserved by writes not yet handed to the services.
    reserved: KvDelta,
    read_at: Instant,
    /// Changes made to the count (a read that saw none of them may be
    /// taken as it is).
    changes: u64,
}

/// What a read of the store started from: [`KvLedger::load`] takes the read
/// as it is only if the count did not change meanwhile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadToken(Option<u64>);

/// Per-driver key-value usage, shared by concurrent calls.
#[derive(Debug)]
pub struct KvLedger {
    refresh: Duration,
    drivers: Mutex<HashMap<String, Entry>>,
}

impl Default for KvLedger {
    fn default() -> Self {
        Self::sole_writer()
    }
}

impl KvLedger {
    /// A ledger whose entries are read from the store again once older than
    /// `refresh` (other writers, such as other instances, exist).
    pub fn new(refresh: Duration) -> Self {
        Self {
            refresh,
            drivers: Mutex::new(HashMap::new()),
        }
    }

    /// A ledger for a store only it writes to (read once per driver).
    pub fn sole_writer() -> Self {
        Self::new(Duration::MAX)
    }

    /// `Some` when `driver`'s usage must be read before its next write:
    /// read it, then hand the read and this token to [`Self::load`].
    pub(crate) fn needs_read(&self, driver: &str) -> Option<ReadToken> {
        let drivers = self.drivers.lock().expect("kv ledger lock");
        match drivers.get(driver) {
            None => Some(ReadToken(None)),
            Some(e) if e.read_at.elapsed() >= self.refresh => Some(ReadToken(Some(e.changes))),
            Some(_) => None,
        }
    }

    /// Takes `read` (what the services say `driver` holds, never less than
    /// the truth) as the count, plus what writes under way have reserved.
    /// If writes were made here while the store was read, the read may have
    /// missed them: the count then only grows (never lower than it is).
    pub(crate) fn load(&self, driver: &str, token: ReadToken, read: KvUsage) {
        let mut drivers = self.drivers.lock().expect("kv ledger lock");
        let keys = i64::try_from(read.keys).unwrap_or(i64::MAX);
        let bytes = i64::try_from(read.bytes).unwrap_or(i64::MAX);
        let now = Instant::now();
        match drivers.get_mut(driver) {
            None => {
                drivers.insert(
                    driver.to_owned(),
                    Entry {
                        keys,
                        bytes,
                        reserved: KvDelta::default(),
                        read_at: now,
                        changes: 0,
                    },
                );
            }
            Some(e) => {
                let keys = keys.saturating_add(e.reserved.keys.max(0));
                let bytes = bytes.saturating_add(e.reserved.bytes.max(0));
                if token.0 == Some(e.changes) {
                    (e.keys, e.bytes) = (keys, bytes);
                } else {
                    (e.keys, e.bytes) = (e.keys.max(keys), e.bytes.max(bytes));
                }
                e.read_at = now;
                e.changes += 1;
            }
        }
    }

    /// Reserves `delta` for a write about to be made, unless it would take
    /// `driver` past `kv_keys` or `kv_bytes` (a write that adds no key, or
    /// no bytes, is never refused for that limit). Call [`Self::settle`]
    /// once the write is made, [`Self::undo`] if it fails.
    pub(crate) fn reserve(
        &self,
        driver: &str,
        delta: KvDelta,
        limits: &DriverLimits,
    ) -> Result<(), Limit> {
        let mut drivers = self.drivers.lock().expect("kv ledger lock");
        let e = drivers.entry(driver.to_owned()).or_insert_with(|| Entry {
            keys: 0,
            bytes: 0,
            reserved: KvDelta::default(),
            read_at: Instant::now(),
            changes: 0,
        });
        let keys = e.keys.saturating_add(delta.keys);
        let bytes = e.bytes.saturating_add(delta.bytes);
        if delta.keys > 0 && keys > i64::try_from(limits.kv_keys).unwrap_or(i64::MAX) {
            return Err(Limit::KvKeys);
        }
        if delta.bytes > 0 && bytes > i64::try_from(limits.kv_bytes).unwrap_or(i64::MAX) {
            return Err(Limit::KvBytes);
        }
        e.keys = keys;
        e.bytes = bytes;
        e.reserved.keys += delta.keys;
        e.reserved.bytes += delta.bytes;
        e.changes += 1;
        Ok(())
    }

    /// Applies `f` to `driver`'s count, if it has one.
    fn with_entry(&self, driver: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.drivers.lock().expect("kv ledger lock").get_mut(driver) {
            f(e);
            e.changes += 1;
        }
    }

    /// A reserved write was made (the services count it from now on).
    pub(crate) fn settle(&self, driver: &str, delta: KvDelta) {
        self.with_entry(driver, |e| {
            e.reserved.keys -= delta.keys;
            e.reserved.bytes -= delta.bytes;
        });
    }

    /// A reserved write failed: gives its reservation back.
    pub(crate) fn undo(&self, driver: &str, delta: KvDelta) {
        self.with_entry(driver, |e| {
            e.keys -= delta.keys;
            e.bytes -= delta.bytes;
            e.reserved.keys -= delta.keys;
            e.reserved.bytes -= delta.bytes;
        });
    }

    /// A delete was made: frees what it held.
    pub(crate) fn release(&self, driver: &str, delta: KvDelta) {
        self.with_entry(driver, |e| {
            e.keys = (e.keys + delta.keys).max(0);
            e.bytes = (e.bytes + delta.bytes).max(0);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(keys: u64, bytes: u64) -> DriverLimits {
        DriverLimits {
            kv_keys: keys,
            kv_bytes: bytes,
            ..DriverLimits::default()
        }
    }

    const NEW: KvDelta = KvDelta { keys: 1, bytes: 10 };

    #[test]
    fn reservations_share_one_count() {
        let l = KvLedger::sole_writer();
        let t = l.needs_read("d").unwrap();
        l.load("d", t, KvUsage { keys: 1, bytes: 10 });
        let lim = limits(3, 1_000);
        // Two writers reserve side by side: only the room left is given.
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvKeys));
        // A rewrite adds no key: never refused for keys.
        let same = KvDelta { keys: 0, bytes: 0 };
        assert_eq!(l.reserve("d", same, &lim), Ok(()));
        // Another driver has its own count.
        assert_eq!(l.reserve("e", NEW, &lim), Ok(()));
        // A failed write gives its room back; a delete frees room.
        l.undo("d", NEW);
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        l.release(
            "d",
            KvDelta {
                keys: -1,
                bytes: -10,
            },
        );
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvKeys));
    }

    #[test]
    fn bytes_are_a_limit_too() {
        let l = KvLedger::sole_writer();
        let t = l.needs_read("d").unwrap();
        l.load("d", t, KvUsage { keys: 0, bytes: 0 });
        let lim = limits(100, 25);
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvBytes));
        // Shrinking a value is never refused.
        let smaller = KvDelta { keys: 0, bytes: -5 };
        assert_eq!(l.reserve("d", smaller, &lim), Ok(()));
    }

    #[test]
    fn a_fresh_read_keeps_writes_under_way() {
        let l = KvLedger::new(Duration::ZERO);
        let t = l.needs_read("d").expect("never read");
        l.load("d", t, KvUsage { keys: 0, bytes: 0 });
        let lim = limits(2, 1_000);
        // Reserved, not yet made when the store is read again (another
        // instance wrote one key meanwhile).
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        let t = l.needs_read("d").expect("stale at once");
        l.load("d", t, KvUsage { keys: 1, bytes: 10 });
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvKeys));
        l.settle("d", NEW);
        // Once settled, the next read counts it (the services hold it).
        let t = l.needs_read("d").unwrap();
        l.load("d", t, KvUsage { keys: 2, bytes: 20 });
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvKeys));
        // Another instance deleted both: a read that saw no change here is
        // taken as it is.
        let t = l.needs_read("d").unwrap();
        l.load("d", t, KvUsage { keys: 0, bytes: 0 });
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        let sole = KvLedger::sole_writer();
        let t = sole.needs_read("d").unwrap();
        sole.load("d", t, KvUsage::default());
        assert!(sole.needs_read("d").is_none());
    }

    /// Two calls find no count and both read the store; one writes before
    /// the other's (older) read lands: that read must not lose the write.
    #[test]
    fn a_read_older_than_a_write_never_lowers_the_count() {
        let l = KvLedger::sole_writer();
        let lim = limits(2, 1_000);
        let first = l.needs_read("d").unwrap();
        let second = l.needs_read("d").unwrap();
        l.load("d", first, KvUsage::default());
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        l.settle("d", NEW);
        // The second read started before that write: it saw nothing.
        l.load("d", second, KvUsage::default());
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvKeys));
    }
}
