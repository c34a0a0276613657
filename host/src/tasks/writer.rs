//! The writer: the one component that writes the results of driver calls.
//!
//! It batches driver key-value writes, subtask outcomes (fenced by owner and
//! epoch), node states and status messages into the store (one transaction
//! per batch on PostgreSQL), then hands the parents it touched to the
//! settler — it never completes a parent itself.
//! Key-value writes are visible to reads on this instance at once (through
//! [`KvOverlay`]) and reach the store before the outcome of the call that
//! made them; if the process dies first, that call was not recorded either
//! and is re-run (actions are idempotent).

use super::shared::Shared;
use crate::drivers::services::KvUsage;
use crate::store::{NewMessage, Results, TaskOutcome};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// One finished subtask on its way to the store.
pub(super) struct Finished {
    pub outcome: TaskOutcome,
    pub parent: Option<Uuid>,
    /// The node's power state and boot device after the call, if it says.
    pub node_state: Option<(String, Option<&'static str>, Option<&'static str>)>,
}

/// What the writer is asked to write.
pub(super) enum Write {
    Finished(Finished),
    Message(NewMessage),
    /// A driver key-value write (None deletes), with its sequence number.
    Kv(String, String, Option<String>, u64),
    /// A driver's key-value usage, stored plus pending, read between two
    /// flushes, when no write is both (see [`KvOverlay`]); `None` if the
    /// store could not be read.
    Usage(String, oneshot::Sender<Option<KvUsage>>),
    /// Told once everything queued before it is in the store (a drain's
    /// last writes).
    Flush(oneshot::Sender<()>),
}

/// Driver key-value writes not yet in the store: reads see them, the writer
/// flushes them in batches before the outcomes of the calls that made them.
///
/// A driver's usage is what is stored plus what is pending here. Only the
/// writer moves writes from here to the store, so it answers usage reads
/// itself, between flushes ([`Write::Usage`]): no write is then counted both
/// pending and stored. Counted twice, a driver's last keys were refused at
/// its `kv_keys` limit (a 10,000-node task with `kv_keys = 10000`).
#[derive(Default)]
pub(super) struct KvOverlay {
    inner: Mutex<PendingKv>,
}

#[derive(Default)]
struct PendingKv {
    seq: u64,
    entries: HashMap<(String, String), (Option<String>, u64)>,
}

impl KvOverlay {
    /// Records a write (None deletes) and queues it for the store.
    /// Waits while the writer's queue is full, so a driver writing faster
    /// than the database drains is slowed down instead of growing memory.
    pub async fn write(
        &self,
        writes: &mpsc::Sender<Write>,
        driver: &str,
        key: &str,
        value: Option<&str>,
    ) {
        let seq = {
            let mut pending = self.inner.lock().expect("kv lock");
            pending.seq += 1;
            let seq = pending.seq;
            let k = (driver.to_owned(), key.to_owned());
            pending.entries.insert(k, (value.map(str::to_owned), seq));
            seq
        };
        let _ = writes
            .send(Write::Kv(
                driver.to_owned(),
                key.to_owned(),
                value.map(str::to_owned),
                seq,
            ))
            .await;
    }

    /// How many writes are not yet in the store.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("kv lock").entries.len()
    }

    /// Keys and bytes of `driver`'s writes not yet in the store (each
    /// counted as a new key).
    pub fn usage(&self, driver: &str) -> KvUsage {
        let pending = self.inner.lock().expect("kv lock");
        let mut usage = KvUsage::default();
        for ((d, k), (v, _)) in &pending.entries {
            if let (true, Some(v)) = (d == driver, v) {
                usage.keys += 1;
                usage.bytes += (k.len() + v.len()) as u64;
            }
        }
        usage
    }

    /// `driver`'s writes not yet in the store (None: a delete).
    fn pending_of(&self, driver: &str) -> Vec<(String, Option<String>)> {
        let pending = self.inner.lock().expect("kv lock");
        pending
            .entries
            .iter()
            .filter(|((d, _), _)| d == driver)
            .map(|((_, k), (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// A write not yet in the store: `Some(None)` for a pending delete.
    pub fn pending(&self, driver: &str, key: &str) -> Option<Option<String>> {
        let pending = self.inner.lock().expect("kv lock");
        pending
            .entries
            .get(&(driver.to_owned(), key.to_owned()))
            .map(|(v, _)| v.clone())
    }

    /// Forgets writes the store now holds (unless overwritten since).
    fn written(&self, last: HashMap<(String, String), (Option<String>, u64)>) {
        let mut pending = self.inner.lock().expect("kv lock");
        for (key, (_, seq)) in last {
            if pending.entries.get(&key).is_some_and(|(_, s)| *s == seq) {
                pending.entries.remove(&key);
            }
        }
    }
}

/// Runs the writer until shutdown.
pub(super) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Write>) {
    let mut finished: Vec<Finished> = Vec::new();
    let mut messages: Vec<NewMessage> = Vec::new();
    let mut kv: Vec<(String, String, Option<String>, u64)> = Vec::new();
    let mut asks: Vec<(String, oneshot::Sender<Option<KvUsage>>)> = Vec::new();
    let mut flushed: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let first = tokio::select! {
            w = rx.recv() => w,
            _ = shared.shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            return;
        };
        let mut next = Some(first);
        // Gather what is already waiting, up to a batch.
        while let Some(w) = next {
            match w {
                Write::Finished(f) => finished.push(f),
                Write::Message(m) => messages.push(m),
                Write::Kv(d, k, v, seq) => kv.push((d, k, v, seq)),
                Write::Usage(d, reply) => asks.push((d, reply)),
                Write::Flush(done) => flushed.push(done),
            }
            // Key-value writes count too: a batch (and so what is held while
            // the database is slow) never passes `write_batch`.
            next = if finished.len() + messages.len() + kv.len() < shared.cfg.write_batch {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        crate::observe::metrics::writer_batch(finished.len() + messages.len() + kv.len());
        flush(&shared, &mut kv, &mut finished, &mut messages).await;
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
        // One read per driver, however many calls asked.
        let mut answers: HashMap<String, Option<KvUsage>> = HashMap::new();
        for (driver, reply) in asks.drain(..) {
            let read = match answers.get(&driver) {
                Some(read) => *read,
                None => {
                    let read = usage(&shared, &driver).await;
                    if let Err(e) = &read {
                        tracing::warn!(error = %e, driver, "reading key-value usage failed");
                    }
                    let read = read.ok();
                    answers.insert(driver, read);
                    read
                }
            };
            let _ = reply.send(read);
        }
    }
}

/// `driver`'s key-value usage: stored plus pending. Called by the writer
/// between flushes, so no write is in both. A pending write is counted by
/// what it changes in the store: a rewrite of a stored key adds no key (its
/// bytes by the difference), a delete of one frees it. Counted as a new key,
/// each pending rewrite took one of the driver's keys until the next read.
async fn usage(shared: &Shared, driver: &str) -> crate::store::Result<KvUsage> {
    let pending = shared.kv.pending_of(driver);
    let keys: Vec<String> = pending.iter().map(|(k, _)| k.clone()).collect();
    let before = shared.store.kv_get_many(driver, &keys).await?;
    let stored = shared.store.kv_usage(driver).await?;
    Ok(with_pending(stored, &pending, &before))
}

/// Usage `stored` (keys, bytes) changed by `pending` writes (None: a
/// delete), each against what its key holds in the store (`before`).
fn with_pending(
    stored: (u64, u64),
    pending: &[(String, Option<String>)],
    before: &HashMap<String, String>,
) -> KvUsage {
    let (mut keys, mut bytes) = (stored.0 as i64, stored.1 as i64);
    for (k, v) in pending {
        let size = |v: &String| (k.len() + v.len()) as i64;
        let old = before.get(k).map(size);
        let new = v.as_ref().map(size);
        keys += i64::from(new.is_some()) - i64::from(old.is_some());
        bytes += new.unwrap_or(0) - old.unwrap_or(0);
    }
    KvUsage {
        keys: keys.max(0) as u64,
        bytes: bytes.max(0) as u64,
    }
}

/// Writes one batch: key-value changes (last write per key wins), messages,
/// outcomes and node states, in one transaction on PostgreSQL
/// ([`Store::write_results`](crate::store::Store::write_results)); then
/// forgets the key-value writes the store now holds and hands the touched
/// parents to the settler.
async fn flush(
    shared: &Shared,
    kv: &mut Vec<(String, String, Option<String>, u64)>,
    finished: &mut Vec<Finished>,
    messages: &mut Vec<NewMessage>,
) {
    if kv.is_empty() && finished.is_empty() && messages.is_empty() {
        return;
    }
    let mut last: HashMap<(String, String), (Option<String>, u64)> = HashMap::new();
    for (d, k, v, seq) in kv.drain(..) {
        last.insert((d, k), (v, seq));
    }
    let writes: Vec<(String, String, Option<String>)> = last
        .iter()
        .map(|((d, k), (v, _))| (d.clone(), k.clone(), v.clone()))
        .collect();
    let outcomes: Vec<TaskOutcome> = finished.iter().map(|f| f.outcome.clone()).collect();
    let states: Vec<(String, Option<String>, Option<String>)> = finished
        .iter()
        .filter_map(|f| f.node_state.as_ref())
        .map(|(n, p, b)| (n.clone(), p.map(str::to_owned), b.map(str::to_owned)))
        .collect();
    let results = Results {
        kv: &writes,
        messages,
        outcomes: &outcomes,
        node_states: &states,
    };
    loop {
        match shared.store.write_results(&results).await {
            Ok(n) => {
                fenced_off(n, outcomes.len());
                break;
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "writing task results failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                // Not a passing failure: each kind on its own, so what can
                // be written is.
                tracing::warn!(error = %e, "writing task results together failed; writing each kind alone");
                flush_apart(shared, &writes, messages, &outcomes, &states).await;
                break;
            }
        }
    }
    shared.kv.written(last);
    messages.clear();
    let parents: Vec<Uuid> = finished
        .iter()
        .filter_map(|f| f.parent)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    finished.clear();
    shared.settle(parents);
    shared.wake_executor.notify_one();
}

/// Logs outcomes a flush did not write: fenced off, their work reassigned.
fn fenced_off(written: u64, expected: usize) {
    if (written as usize) < expected {
        tracing::warn!(
            written,
            expected,
            "some outcomes were not written: their work was reassigned"
        );
    }
}

/// [`flush`]'s writes one kind at a time, each retried as it needs: key-value
/// changes, messages and outcomes until written; node states while the
/// failure is passing (a lock held by a stalled session is released within
/// the session limits).
async fn flush_apart(
    shared: &Shared,
    writes: &[(String, String, Option<String>)],
    messages: &[NewMessage],
    outcomes: &[TaskOutcome],
    states: &[(String, Option<String>, Option<String>)],
) {
    let store = &shared.store;
    while let Err(e) = store.kv_apply(writes).await {
        tracing::warn!(error = %e, "writing driver key-value state failed; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Messages before outcomes, so a completed task has all its messages.
    while let Err(e) = store.add_messages(messages).await {
        tracing::warn!(error = %e, "writing task messages failed; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    loop {
        match store.finish_tasks(outcomes).await {
            Ok(n) => {
                fenced_off(n, outcomes.len());
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "writing task outcomes failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    while let Err(e) = store.set_node_states(states).await {
        if !e.is_retryable() {
            tracing::warn!(error = %e, nodes = states.len(), "could not record node states");
            break;
        }
        tracing::warn!(error = %e, "writing node states failed; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pending writes change the stored usage by what they change in the
    /// store: a rewrite adds no key, a delete of a stored key frees it.
    #[test]
    fn pending_writes_count_against_what_is_stored() {
        let before: HashMap<String, String> = [("ab", "123"), ("cd", "4")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // Stored: ab=123 (5 bytes), cd=4 (3), plus one key not pending (10).
        let stored = (3, 18);
        let write = |k: &str, v: Option<&str>| (k.to_owned(), v.map(str::to_owned));
        let at = |pending: &[(String, Option<String>)]| {
            let u = with_pending(stored, pending, &before);
            (u.keys, u.bytes)
        };
        assert_eq!(at(&[]), (3, 18));
        // A rewrite: no new key, the bytes by the difference.
        assert_eq!(at(&[write("ab", Some("1"))]), (3, 16));
        // A new key.
        assert_eq!(at(&[write("ef", Some("567"))]), (4, 23));
        // A delete of a stored key frees it; of an absent one, nothing.
        assert_eq!(at(&[write("cd", None)]), (2, 15));
        assert_eq!(at(&[write("zz", None)]), (3, 18));
        assert_eq!(
            at(&[
                write("ab", Some("12345")),
                write("cd", None),
                write("ef", Some("x"))
            ]),
            (3, 20)
        );
    }
}
