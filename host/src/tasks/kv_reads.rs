//! Driver key-value reads, gathered: the reads that arrive while one batch
//! is at the store go together in the next, one statement per driver
//! ([`crate::store::Store::kv_get_many`]) instead of a round trip each.
//!
//! A sim `power_cycle_node` reads two keys; 256 calls in flight made 512
//! single-row queries, each paying a round trip and the pool's per-query
//! work on the host. Gathered, they cost a few statements. A lone read
//! waits for nothing: it is sent the moment it arrives.
//!
//! Reads see the store as of their statement, exactly as a read of its
//! own would; writes not yet stored are answered before they get here
//! (the writer's overlay, [`super::writer::KvOverlay`]).

use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Reads gathered into one batch at most.
const BATCH: usize = 1024;

/// One key's read, answered on `reply`.
struct Read {
    driver: String,
    key: String,
    reply: oneshot::Sender<Result<Option<String>, Arc<StoreError>>>,
}

/// The handle components read through.
pub(super) struct KvReads {
    tx: mpsc::UnboundedSender<Read>,
    store: Store,
}

impl KvReads {
    /// Starts the gatherer; it stops with `shutdown`.
    pub fn start(store: Store, shutdown: CancellationToken) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store.clone(), rx, shutdown));
        Self { tx, store }
    }

    /// The value under (`driver`, `key`) in the store, read in the next
    /// batch; read alone if the gatherer has stopped (shutdown). A failed
    /// batch gives each of its reads the same error.
    pub async fn get(&self, driver: &str, key: &str) -> Result<Option<String>, Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        let read = Read {
            driver: driver.to_owned(),
            key: key.to_owned(),
            reply,
        };
        if self.tx.send(read).is_ok()
            && let Ok(answer) = answer.await
        {
            return answer;
        }
        self.store.kv_get(driver, key).await.map_err(Arc::new)
    }
}

/// Answers reads in batches until shutdown.
async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Read>, shutdown: CancellationToken) {
    let mut batch: Vec<Read> = Vec::new();
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            return;
        };
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        crate::observe::metrics::kv_read_batch(batch.len());
        answer(&store, &mut batch).await;
    }
}

/// Reads the keys of `batch`, one statement per driver, and answers each.
async fn answer(store: &Store, batch: &mut Vec<Read>) {
    let mut by_driver: HashMap<String, Vec<Read>> = HashMap::new();
    for r in batch.drain(..) {
        by_driver.entry(r.driver.clone()).or_default().push(r);
    }
    for (driver, reads) in by_driver {
        let mut keys: Vec<String> = reads.iter().map(|r| r.key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        match store.kv_get_many(&driver, &keys).await {
            Ok(found) => {
                for r in reads {
                    let _ = r.reply.send(Ok(found.get(&r.key).cloned()));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for r in reads {
                    let _ = r.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
