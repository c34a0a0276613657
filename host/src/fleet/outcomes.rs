//! The sync's outcome writer: what each read decided reaches the store in
//! batches, one statement (PostgreSQL) or one transaction (SQLite) per
//! batch, and the timeline entries of the rows written follow.
//!
//! No outcome waits for a batch to fill: the writer takes what is queued,
//! writes it, and meanwhile the next outcomes queue, so batches grow with
//! the load (a round's reads finish in bursts) and a quiet fleet writes
//! each outcome at once.

use super::Timeline;
use super::sync::{Decision, FleetStats};
use crate::store::{Store, SyncUpdate};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Outcomes written per batch at most.
const BATCH: usize = 500;

/// Tries of a batch whose write fails with a retryable error.
const TRIES: u32 = 5;

/// Where sync outcomes go; the writer stops when every clone is dropped,
/// after writing what was queued.
#[derive(Clone)]
pub struct Outcomes {
    tx: mpsc::Sender<Decision>,
}

impl Outcomes {
    /// Starts the writer for `owner`'s claims, with room for `queue`
    /// outcomes (a sender waits while it is full).
    pub fn start(
        store: Store,
        timeline: Arc<Timeline>,
        stats: Arc<FleetStats>,
        owner: String,
        queue: usize,
    ) -> Outcomes {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(write_loop(store, timeline, stats, owner, rx));
        Outcomes { tx }
    }

    /// Queues one sync's outcome (waits while the queue is full).
    pub async fn send(&self, d: Decision) {
        let _ = self.tx.send(d).await;
    }
}

async fn write_loop(
    store: Store,
    timeline: Arc<Timeline>,
    stats: Arc<FleetStats>,
    owner: String,
    mut rx: mpsc::Receiver<Decision>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        write(&store, &timeline, &stats, &owner, batch).await;
    }
}

/// Writes `decisions`, then records the timeline entries of the rows
/// written; a row not written was taken over by another instance or put in
/// operator maintenance meanwhile.
async fn write(
    store: &Store,
    timeline: &Timeline,
    stats: &FleetStats,
    owner: &str,
    decisions: Vec<Decision>,
) {
    // One row per node: a later outcome for a node replaces an earlier one
    // (possible only when a claim lapsed and the node was claimed again).
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(decisions.len());
    for (i, d) in decisions.iter().enumerate() {
        last.insert(d.update.node_name.as_str(), i);
    }
    let keep: HashSet<usize> = last.into_values().collect();
    let updates: Vec<SyncUpdate> = decisions
        .iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, d)| d.update.clone())
        .collect();
    let started = Instant::now();
    let mut tries = 0;
    let written = loop {
        tries += 1;
        match store.finish_syncs_written(owner, &updates).await {
            Ok(w) => break w,
            Err(e) if e.is_retryable() && tries < TRIES => {
                tracing::debug!(error = %e, "writing sync outcomes: retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
            }
            Err(e) => {
                // Their claims lapse and the nodes are read again.
                tracing::warn!(error = %e, syncs = updates.len(), "sync outcomes not stored");
                break Vec::new();
            }
        }
    };
    FleetStats::add(&stats.write_batches, 1);
    FleetStats::add(&stats.write_ms, super::sync::ms(started.elapsed()));
    let written: HashSet<String> = written.into_iter().collect();
    for (i, d) in decisions.into_iter().enumerate() {
        if keep.contains(&i) && written.contains(&d.update.node_name) {
            for e in d.events {
                timeline.record(e);
            }
        }
    }
}
