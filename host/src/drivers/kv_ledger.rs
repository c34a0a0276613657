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
//! write ([`KvLedger::refresh`]): usage as the services report it, plus the
//! reservations of writes not yet handed to them. That sum is exact only if
//! no write is in both: one the services already count whose reservation is
//! not yet settled. So each driver has a gate: writes and deletes hold it
//! shared from the moment they hand the change to the services until their
//! reservation is settled ([`KvLedger::write`], [`KvLedger::delete`]); a
//! read of usage holds it alone. Without the gate a read landing in that
//! window counted the write twice, and a driver at its exact `kv_keys`
//! limit was refused its last key (one 100,000-node bench run in about
//! thirteen).

use super::limits::{DriverLimits, Limit};
use super::services::KvUsage;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

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
    /// Reserved by writes not yet settled.
    reserved: KvDelta,
    read_at: Instant,
}

impl Entry {
    fn empty() -> Self {
        Self {
            keys: 0,
            bytes: 0,
            reserved: KvDelta::default(),
            read_at: Instant::now(),
        }
    }
}

/// Per-driver key-value usage, shared by concurrent calls.
#[derive(Debug)]
pub struct KvLedger {
    refresh: Duration,
    drivers: Mutex<HashMap<String, Entry>>,
    /// Per driver: held shared by writes between handing the change to the
    /// services and settling it, alone by a read of usage.
    gates: Mutex<HashMap<String, Arc<RwLock<()>>>>,
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
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// A ledger for a store only it writes to (read once per driver).
    pub fn sole_writer() -> Self {
        Self::new(Duration::MAX)
    }

    fn gate(&self, driver: &str) -> Arc<RwLock<()>> {
        let mut gates = self.gates.lock().expect("kv ledger gates");
        gates.entry(driver.to_owned()).or_default().clone()
    }

    /// Whether `driver`'s usage must be read before its next write (never
    /// read, or read longer than the refresh interval ago).
    fn needs_read(&self, driver: &str) -> bool {
        let drivers = self.drivers.lock().expect("kv ledger lock");
        drivers
            .get(driver)
            .is_none_or(|e| e.read_at.elapsed() >= self.refresh)
    }

    /// Reads `driver`'s usage with `read` (what the services hold, never
    /// less than the truth) if the count is missing or stale, and takes it,
    /// plus what writes not yet handed to the services have reserved, as
    /// the count. No write is between the services and its settlement
    /// meanwhile (the gate), so none is counted twice or missed.
    pub(crate) async fn refresh<E, F>(&self, driver: &str, read: F) -> Result<(), E>
    where
        F: Future<Output = Result<KvUsage, E>>,
    {
        if !self.needs_read(driver) {
            return Ok(());
        }
        let gate = self.gate(driver);
        let _alone = gate.write().await;
        // Another call may have read it while this one waited.
        if !self.needs_read(driver) {
            return Ok(());
        }
        let read = read.await?;
        let keys = i64::try_from(read.keys).unwrap_or(i64::MAX);
        let bytes = i64::try_from(read.bytes).unwrap_or(i64::MAX);
        let mut drivers = self.drivers.lock().expect("kv ledger lock");
        let e = drivers
            .entry(driver.to_owned())
            .or_insert_with(Entry::empty);
        e.keys = keys.saturating_add(e.reserved.keys.max(0));
        e.bytes = bytes.saturating_add(e.reserved.bytes.max(0));
        e.read_at = Instant::now();
        Ok(())
    }

    /// Makes a write that changes `driver`'s usage by `delta`: reserves it
    /// (refused with the limit it would pass: `kv_keys` or `kv_bytes`),
    /// then runs `write` and settles the reservation (gives it back if the
    /// write fails), all within the driver's gate.
    pub(crate) async fn write<E>(
        &self,
        driver: &str,
        delta: KvDelta,
        limits: &DriverLimits,
        write: impl Future<Output = Result<(), E>>,
    ) -> Result<Result<(), E>, Limit> {
        self.reserve(driver, delta, limits)?;
        let gate = self.gate(driver);
        let _shared = gate.read().await;
        let made = write.await;
        match &made {
            Ok(()) => self.settle(driver, delta),
            Err(_) => self.undo(driver, delta),
        }
        Ok(made)
    }

    /// Makes a delete that frees `freed` (None: the key did not exist),
    /// within the driver's gate.
    pub(crate) async fn delete<E>(
        &self,
        driver: &str,
        freed: Option<KvDelta>,
        delete: impl Future<Output = Result<(), E>>,
    ) -> Result<(), E> {
        let gate = self.gate(driver);
        let _shared = gate.read().await;
        delete.await?;
        if let Some(freed) = freed {
            self.release(driver, freed);
        }
        Ok(())
    }

    /// Reserves `delta` for a write about to be made, unless it would take
    /// `driver` past `kv_keys` or `kv_bytes` (a write that adds no key, or
    /// no bytes, is never refused for that limit).
    fn reserve(&self, driver: &str, delta: KvDelta, limits: &DriverLimits) -> Result<(), Limit> {
        let mut drivers = self.drivers.lock().expect("kv ledger lock");
        let e = drivers
            .entry(driver.to_owned())
            .or_insert_with(Entry::empty);
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
        Ok(())
    }

    /// Applies `f` to `driver`'s count, if it has one.
    fn with_entry(&self, driver: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.drivers.lock().expect("kv ledger lock").get_mut(driver) {
            f(e);
        }
    }

    /// A reserved write was made (the services count it from now on).
    fn settle(&self, driver: &str, delta: KvDelta) {
        self.with_entry(driver, |e| {
            e.reserved.keys -= delta.keys;
            e.reserved.bytes -= delta.bytes;
        });
    }

    /// A reserved write failed: gives its reservation back.
    fn undo(&self, driver: &str, delta: KvDelta) {
        self.with_entry(driver, |e| {
            e.keys -= delta.keys;
            e.bytes -= delta.bytes;
            e.reserved.keys -= delta.keys;
            e.reserved.bytes -= delta.bytes;
        });
    }

    /// A delete was made: frees what it held.
    fn release(&self, driver: &str, delta: KvDelta) {
        self.with_entry(driver, |e| {
            e.keys = (e.keys + delta.keys).max(0);
            e.bytes = (e.bytes + delta.bytes).max(0);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::convert::Infallible;

    fn limits(keys: u64, bytes: u64) -> DriverLimits {
        DriverLimits {
            kv_keys: keys,
            kv_bytes: bytes,
            ..DriverLimits::default()
        }
    }

    const NEW: KvDelta = KvDelta { keys: 1, bytes: 10 };

    fn usage(keys: u64, bytes: u64) -> std::future::Ready<Result<KvUsage, Infallible>> {
        std::future::ready(Ok(KvUsage { keys, bytes }))
    }

    async fn load(l: &KvLedger, keys: u64, bytes: u64) {
        l.refresh("d", usage(keys, bytes)).await.unwrap();
    }

    #[tokio::test]
    async fn reservations_share_one_count() {
        let l = KvLedger::sole_writer();
        load(&l, 1, 10).await;
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

    #[tokio::test]
    async fn bytes_are_a_limit_too() {
        let l = KvLedger::sole_writer();
        load(&l, 0, 0).await;
        let lim = limits(100, 25);
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvBytes));
        // Shrinking a value is never refused.
        let smaller = KvDelta { keys: 0, bytes: -5 };
        assert_eq!(l.reserve("d", smaller, &lim), Ok(()));
    }

    #[tokio::test]
    async fn a_fresh_read_keeps_writes_under_way() {
        let l = KvLedger::new(Duration::ZERO);
        load(&l, 0, 0).await;
        let lim = limits(2, 1_000);
        // Reserved, not yet made when the store is read again (another
        // instance wrote one key meanwhile).
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        load(&l, 1, 10).await;
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvKeys));
        l.settle("d", NEW);
        // Once settled, the next read counts it (the services hold it).
        load(&l, 2, 20).await;
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvKeys));
        // Another instance deleted both: the read is taken as it is.
        load(&l, 0, 0).await;
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        // A sole writer reads once.
        let sole = KvLedger::sole_writer();
        sole.refresh("d", usage(0, 0)).await.unwrap();
        let again = sole.refresh("d", async { panic!("read again") }).await;
        assert_eq!(again, Ok::<(), Infallible>(()));
    }

    /// A write the services already hold, whose reservation is not yet
    /// settled (its call is still waiting, say on the writer's queue), and
    /// a read of usage at that moment: the read waits for the settlement,
    /// so the write is counted once. Without the gate the read counted it
    /// as stored and as reserved, and the driver's last key was refused.
    #[tokio::test]
    async fn a_read_waits_for_writes_the_services_hold_but_have_not_settled() {
        let l = KvLedger::new(Duration::ZERO);
        load(&l, 0, 0).await;
        let lim = limits(2, 1_000);
        let stored = std::sync::atomic::AtomicU64::new(0);
        let (made, wait_made) = tokio::sync::oneshot::channel::<()>();
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        let write = l.write("d", NEW, &lim, async {
            // Visible to the services at once; the call returns later.
            stored.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            made.send(()).unwrap();
            finished.await.unwrap();
            Ok::<(), Infallible>(())
        });
        let reader = async {
            wait_made.await.unwrap();
            let read = async {
                let keys = stored.load(std::sync::atomic::Ordering::SeqCst);
                Ok::<_, Infallible>(KvUsage {
                    keys,
                    bytes: keys * 10,
                })
            };
            let mut refresh = std::pin::pin!(l.refresh("d", read));
            // The write is between the services and its settlement: the
            // read must not run yet.
            assert!((&mut refresh).now_or_never().is_none(), "read ran early");
            finish.send(()).unwrap();
            refresh.await.unwrap();
        };
        let (written, ()) = tokio::join!(write, reader);
        assert_eq!(written, Ok(Ok(())));
        // One key stored, one left.
        assert_eq!(l.reserve("d", NEW, &lim), Ok(()));
        assert_eq!(l.reserve("d", NEW, &lim), Err(Limit::KvKeys));
    }

    /// A failed write gives its room back; a delete frees what it held
    /// once it is made (a failed one frees nothing).
    #[tokio::test]
    async fn failed_writes_and_deletes() {
        let l = KvLedger::sole_writer();
        load(&l, 1, 10).await;
        let lim = limits(2, 1_000);
        let failed = l.write("d", NEW, &lim, async { Err("down") }).await;
        assert_eq!(failed, Ok(Err("down")));
        let freed = KvDelta {
            keys: -1,
            bytes: -10,
        };
        assert_eq!(
            l.delete("d", Some(freed), async { Err("down") }).await,
            Err("down")
        );
        assert_eq!(
            l.write("d", NEW, &lim, async { Ok::<(), ()>(()) }).await,
            Ok(Ok(()))
        );
        assert_eq!(
            l.write("d", NEW, &lim, async { Ok::<(), ()>(()) }).await,
            Err(Limit::KvKeys)
        );
        assert_eq!(
            l.delete("d", Some(freed), async { Ok::<(), ()>(()) }).await,
            Ok(())
        );
        assert_eq!(
            l.write("d", NEW, &lim, async { Ok::<(), ()>(()) }).await,
            Ok(Ok(()))
        );
    }
}
