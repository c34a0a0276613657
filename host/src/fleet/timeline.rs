//! Node timelines: every driver call, state change, drift and maintenance
//! event, recorded without waiting (a bounded queue in front of one batching
//! writer) and bounded in the store by age and count per node.

use crate::store::{NewNodeEvent, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Events that may wait for the writer; past it, new ones are dropped (and
/// counted) rather than slowing driver calls down.
const QUEUE: usize = 16_384;

/// Events written per statement batch at most.
const BATCH: usize = 1000;

/// How long the writer gathers events after the first of a batch before it
/// writes them (unless the batch fills, or someone waits for a flush):
/// a 10,000-node task records about 20,000 events in a second, which
/// without it went out as ~220 statements and commits of ~90 rows, each
/// commit a WAL flush. Nothing waits on a timeline write but a flush.
const LINGER: Duration = Duration::from_millis(50);

/// The longest error or message text a timeline entry keeps.
pub const MAX_MESSAGE: usize = 512;

enum Msg {
    Event(NewNodeEvent),
    Flush(oneshot::Sender<()>),
}

/// Where node events go. Cheap to share (`Arc`).
pub struct Timeline {
    tx: mpsc::Sender<Msg>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline").finish_non_exhaustive()
    }
}

impl Timeline {
    /// Starts the timeline's writer on `store`; it stops on `stop` (after
    /// writing what is queued).
    pub fn start(store: Store, stop: CancellationToken) -> Arc<Timeline> {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(store, rx, stop));
        Arc::new(Timeline {
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues an event (never waits; a full queue drops it and counts it).
    pub fn record(&self, event: NewNodeEvent) {
        if self.tx.try_send(Msg::Event(event)).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "node timeline queue full: events dropped");
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every event recorded before this call is stored (or the
    /// writer stopped).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Msg>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiters = Vec::new();
    loop {
        let first = tokio::select! {
            m = rx.recv() => m,
            _ = stop.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some(first) = first else { return };
        let until = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Event(e) => batch.push(e),
                Msg::Flush(w) => waiters.push(w),
            }
            if batch.len() >= BATCH {
                break;
            }
            next = match rx.try_recv() {
                Ok(m) => Some(m),
                // Nothing queued: wait for more until the linger ends,
                // unless a flush is awaited or the writer is stopping.
                Err(_) if waiters.is_empty() && !stop.is_cancelled() => tokio::select! {
                    m = rx.recv() => m,
                    _ = tokio::time::sleep_until(until) => None,
                    _ = stop.cancelled() => None,
                },
                Err(_) => None,
            };
        }
        if !batch.is_empty() {
            let mut tries = 0;
            while let Err(e) = store.add_node_events(&batch).await {
                tries += 1;
                if !e.is_retryable() || tries >= 5 {
                    tracing::warn!(error = %e, events = batch.len(), "node events not stored");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
            batch.clear();
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// `text` made fit for a timeline: each of `secrets` (a node's BMC
/// password, user name...) replaced by `***`, URL user info and
/// authorization header values masked, bounded to [`MAX_MESSAGE`] bytes.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s, "***");
    }
    // scheme://user:pass@host -> scheme://***@host
    let mut masked = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("://") {
        masked.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            masked.push_str("***");
            rest = &rest[at..];
        }
    }
    masked.push_str(rest);
    let mut out = masked;
    for header in ["authorization:", "x-auth-token:", "password="] {
        let lower = out.to_ascii_lowercase();
        if let Some(i) = lower.find(header) {
            let mut start = i + header.len();
            while out[start..].starts_with(' ') {
                start += 1;
            }
            let end = out[start..]
                .find([',', '"', '\n'])
                .map_or(out.len(), |e| start + e);
            out.replace_range(start..end, "***");
        }
    }
    if out.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redaction_masks_secrets_urls_and_headers() {
        let r = redact(
            "login to https://root:calvin@10.0.0.1/redfish failed: calvin refused",
            &["calvin"],
        );
        assert!(!r.contains("calvin"), "{r}");
        assert!(r.contains("https://***@10.0.0.1/redfish"), "{r}");
        let r = redact("sent X-Auth-Token: abc123def, got 401", &[]);
        assert!(!r.contains("abc123def"), "{r}");
        let r = redact(&"é".repeat(600), &[]);
        assert!(r.len() <= super::MAX_MESSAGE + '…'.len_utf8());
    }
}
