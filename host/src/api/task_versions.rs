//! `GET /tasks/{id}`'s version reads, gathered: the reads that arrive while
//! the store answers others go together in the next statement
//! ([`Store::task_versions`]) instead of a round trip each.
//!
//! Every `GET /tasks/{id}` reads its task's [`TaskVersion`] first (a
//! finished task is then served from [`super::task_cache`]). Clients such
//! as Shipyard poll the same few tasks, so at thousands of reads a second
//! most of the host's and PostgreSQL's work was the round trips themselves
//! (kernel network and scheduling: over half of the host's CPU at 5,000
//! reads/s). Gathered, the reads arriving during one statement share the
//! next.
//!
//! A read is never answered from a statement that began before it was
//! asked: a batch is taken from the waiting reads only when its statement
//! starts. A lone read waits for nothing: it is sent the moment it arrives.
//! At most [`IN_FLIGHT`] statements run at once (half of the API's read
//! pool, which the other read routes share); reads arriving while they all
//! run wait for the next free one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::store::{Store, StoreError, TaskVersion};

/// Statements reading versions at once, at most.
pub const IN_FLIGHT: usize = 4;
/// Reads one statement answers at most.
pub const BATCH: usize = 1024;

/// What a batch of reads is answered from: the store, or a test's fake.
pub trait VersionSource: Clone + Send + Sync + 'static {
    /// The versions of the tasks among `ids` that exist.
    fn versions(
        &self,
        ids: Vec<Uuid>,
    ) -> impl Future<Output = Result<HashMap<Uuid, TaskVersion>, StoreError>> + Send;
}

impl VersionSource for Store {
    async fn versions(&self, ids: Vec<Uuid>) -> Result<HashMap<Uuid, TaskVersion>, StoreError> {
        self.task_versions(&ids).await
    }
}

/// One waiting read, answered on `reply`.
struct Waiting {
    id: Uuid,
    reply: oneshot::Sender<Result<Option<TaskVersion>, StoreError>>,
}

/// The reads not yet sent, and how many statements are running.
#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    running: usize,
}

/// The gatherer `GET /tasks/{id}` reads versions through. Cheap to clone.
pub struct TaskVersions<S: VersionSource = Store> {
    source: S,
    queue: Arc<Mutex<Queue>>,
}

impl<S: VersionSource> Clone for TaskVersions<S> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            queue: self.queue.clone(),
        }
    }
}

impl<S: VersionSource> std::fmt::Debug for TaskVersions<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskVersions").finish_non_exhaustive()
    }
}

impl<S: VersionSource> TaskVersions<S> {
    /// Reads gathered from `source`.
    pub fn new(source: S) -> Self {
        Self {
            source,
            queue: Arc::default(),
        }
    }

    /// Task `id`'s version (`None`: no such task), read by a statement that
    /// starts after this call. A failed statement gives each of its reads
    /// the same error. Must be called within a tokio runtime.
    ///
    /// A read that finds a statement free sends it itself, with the reads
    /// waiting then (so a lone read is not handed to another task); the
    /// reads that arrive meanwhile are sent by a task spawned when it
    /// finishes. If that read's caller goes away mid-statement, the reads
    /// it carried are read again, each alone.
    pub async fn get(&self, id: Uuid) -> Result<Option<TaskVersion>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let batch = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.waiting.push(Waiting { id, reply });
            (q.running < IN_FLIGHT).then(|| {
                q.running += 1;
                take(&mut q)
            })
        };
        if let Some(batch) = batch {
            let turn = Turn(self);
            answer_batch(&self.source, batch).await;
            drop(turn);
        }
        match answer.await {
            Ok(version) => version,
            Err(_) => {
                let found = self.source.versions(vec![id]).await?;
                Ok(found.get(&id).copied())
            }
        }
    }

    /// Sends the waiting reads, batch after batch, until none wait.
    async fn serve(self, mut batch: Vec<Waiting>) {
        loop {
            answer_batch(&self.source, batch).await;
            match self.next() {
                Some(next) => batch = next,
                None => return,
            }
        }
    }

    /// The next batch for a statement that has finished, or `None` (and
    /// one statement fewer running) when no read waits.
    fn next(&self) -> Option<Vec<Waiting>> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.waiting.is_empty() {
            q.running -= 1;
            return None;
        }
        Some(take(&mut q))
    }
}

/// A statement sent by a read's caller: when it ends (or its caller goes
/// away), the reads that arrived meanwhile go to a spawned task.
struct Turn<'a, S: VersionSource>(&'a TaskVersions<S>);

impl<S: VersionSource> Drop for Turn<'_, S> {
    fn drop(&mut self) {
        if let Some(batch) = self.0.next() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(self.0.clone().serve(batch));
                }
                // No runtime (it is shutting down): nothing can wait on
                // these reads any more.
                Err(_) => {
                    let mut q = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
                    q.running -= 1;
                }
            }
        }
    }
}

/// Reads the versions of `batch`'s ids in one statement and answers each.
async fn answer_batch<S: VersionSource>(source: &S, batch: Vec<Waiting>) {
    crate::observe::metrics::task_version_batch(batch.len());
    let mut ids: Vec<Uuid> = batch.iter().map(|w| w.id).collect();
    ids.sort_unstable();
    ids.dedup();
    match source.versions(ids).await {
        Ok(found) => {
            for w in batch {
                let _ = w.reply.send(Ok(found.get(&w.id).copied()));
            }
        }
        Err(e) => {
            for w in batch {
                let _ = w.reply.send(Err(e.clone()));
            }
        }
    }
}

/// The oldest waiting reads, [`BATCH`] at most.
fn take(q: &mut Queue) -> Vec<Waiting> {
    let n = q.waiting.len().min(BATCH);
    q.waiting.drain(..n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TaskStatus;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::{Semaphore, mpsc};

    /// A fake store: every task exists at version `updated = epoch + id's
    /// first byte`; each statement reports its ids on `asked` and waits
    /// for a permit of `gate`.
    #[derive(Clone)]
    struct Fake {
        asked: mpsc::UnboundedSender<Vec<Uuid>>,
        gate: Arc<Semaphore>,
        statements: Arc<AtomicUsize>,
        fail: bool,
    }

    fn version_of(id: Uuid) -> TaskVersion {
        TaskVersion {
            status: TaskStatus::Complete,
            updated: chrono::DateTime::from_timestamp(i64::from(id.as_bytes()[0]), 0).unwrap(),
            last_message: Some(i64::from(id.as_bytes()[15])),
        }
    }

    impl VersionSource for Fake {
        async fn versions(&self, ids: Vec<Uuid>) -> Result<HashMap<Uuid, TaskVersion>, StoreError> {
            self.statements.fetch_add(1, Ordering::SeqCst);
            let _ = self.asked.send(ids.clone());
            self.gate.acquire().await.unwrap().forget();
            if self.fail {
                return Err(StoreError::Unavailable("pool timed out".into()));
            }
            // The odd ids do not exist.
            Ok(ids
                .into_iter()
                .filter(|id| id.as_bytes()[15] % 2 == 0)
                .map(|id| (id, version_of(id)))
                .collect())
        }
    }

    fn fake(fail: bool) -> (Fake, mpsc::UnboundedReceiver<Vec<Uuid>>) {
        let (asked, rx) = mpsc::unbounded_channel();
        let f = Fake {
            asked,
            gate: Arc::new(Semaphore::new(0)),
            statements: Arc::default(),
            fail,
        };
        (f, rx)
    }

    fn id(n: u8) -> Uuid {
        let mut b = [0u8; 16];
        b[0] = n;
        b[15] = n;
        Uuid::from_bytes(b)
    }

    #[tokio::test]
    async fn a_lone_read_is_sent_at_once_and_answered() {
        let (f, mut asked) = fake(false);
        f.gate.add_permits(10);
        let versions = TaskVersions::new(f.clone());
        assert_eq!(versions.get(id(2)).await.unwrap(), Some(version_of(id(2))));
        assert_eq!(versions.get(id(3)).await.unwrap(), None);
        assert_eq!(asked.recv().await.unwrap(), vec![id(2)]);
        assert_eq!(asked.recv().await.unwrap(), vec![id(3)]);
        assert_eq!(versions.queue.lock().unwrap().running, 0);
    }

    #[tokio::test]
    async fn reads_arriving_while_statements_run_share_the_next() {
        let (f, mut asked) = fake(false);
        let versions = TaskVersions::new(f.clone());
        // IN_FLIGHT statements start, one read each, and are held.
        let mut first = Vec::new();
        for n in 0..IN_FLIGHT as u8 {
            let v = versions.clone();
            first.push(tokio::spawn(async move { v.get(id(n)).await }));
            assert_eq!(asked.recv().await.unwrap(), vec![id(n)]);
        }
        // 200 more reads (40 distinct ids) arrive while all of them run.
        let mut later = Vec::new();
        for k in 0..200u32 {
            let v = versions.clone();
            let n = 100 + (k % 40) as u8;
            later.push((n, tokio::spawn(async move { v.get(id(n)).await })));
        }
        while versions.queue.lock().unwrap().waiting.len() < 200 {
            tokio::task::yield_now().await;
        }
        // None of them went to a statement that had already begun.
        assert_eq!(f.statements.load(Ordering::SeqCst), IN_FLIGHT);
        f.gate.add_permits(1_000);
        for (n, h) in first.into_iter().enumerate() {
            assert_eq!(
                h.await.unwrap().unwrap(),
                (n % 2 == 0).then(|| version_of(id(n as u8)))
            );
        }
        for (n, h) in later {
            assert_eq!(
                h.await.unwrap().unwrap(),
                (n % 2 == 0).then(|| version_of(id(n)))
            );
        }
        // The first statement to finish took all 200 waiting reads: one
        // statement for them (its 40 distinct ids, once each).
        let mut next = Vec::new();
        while let Ok(ids) = asked.try_recv() {
            next.push(ids);
        }
        assert_eq!(next.len(), 1, "{next:?}");
        assert_eq!(next[0].len(), 40);
        assert_eq!(f.statements.load(Ordering::SeqCst), IN_FLIGHT + 1);
        assert_eq!(versions.queue.lock().unwrap().running, 0);
    }

    #[tokio::test]
    async fn a_failed_statement_fails_each_of_its_reads_and_the_next_is_read_again() {
        let (f, _asked) = fake(true);
        f.gate.add_permits(10);
        let versions = TaskVersions::new(f.clone());
        let a = versions.clone();
        let (x, y) = tokio::join!(a.get(id(2)), versions.get(id(4)));
        assert!(matches!(x, Err(StoreError::Unavailable(_))), "{x:?}");
        assert!(matches!(y, Err(StoreError::Unavailable(_))), "{y:?}");
        let before = f.statements.load(Ordering::SeqCst);
        assert!(versions.get(id(2)).await.is_err());
        assert_eq!(f.statements.load(Ordering::SeqCst), before + 1);
    }

    #[tokio::test]
    async fn callers_that_go_away_strand_no_other_read() {
        let (f, mut asked) = fake(false);
        let versions = TaskVersions::new(f.clone());
        // IN_FLIGHT reads send their statements and are held; one more
        // read waits behind them, and one rides in a statement's batch.
        let mut senders = Vec::new();
        for n in 0..IN_FLIGHT as u8 {
            let v = versions.clone();
            senders.push(tokio::spawn(async move { v.get(id(2 * n)).await }));
            asked.recv().await.unwrap();
        }
        let v = versions.clone();
        let behind = tokio::spawn(async move { v.get(id(100)).await });
        while versions.queue.lock().unwrap().waiting.is_empty() {
            tokio::task::yield_now().await;
        }
        // Every caller that sent a statement goes away mid-statement.
        for h in senders {
            h.abort();
            assert!(h.await.unwrap_err().is_cancelled());
        }
        f.gate.add_permits(100);
        let behind = tokio::time::timeout(std::time::Duration::from_secs(10), behind)
            .await
            .expect("the read behind them was stranded");
        assert_eq!(behind.unwrap().unwrap(), Some(version_of(id(100))));
        assert_eq!(asked.recv().await.unwrap(), vec![id(100)]);
        assert_eq!(versions.get(id(4)).await.unwrap(), Some(version_of(id(4))));
        assert_eq!(versions.queue.lock().unwrap().running, 0);
    }
}
