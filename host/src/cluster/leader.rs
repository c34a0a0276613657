//! Leadership: which instance schedules, under which fencing epoch.
//!
//! Every instance beats its heartbeat and tries to take or renew the leader
//! lease every `renew` interval (the lease and its expiry live in Postgres,
//! timed by the database's clock). The holder schedules; everyone executes.
//! An instance stops acting as leader the moment a renewal fails, and also
//! when it has not renewed for most of the lease length by its own monotonic
//! clock (a paused process cannot know that its lease lapsed, so it assumes
//! so). Writes that only the leader may make are fenced in the database by
//! holder and epoch, so even a leader that missed all of this cannot commit.
//!
//! On Postgres every instance also waits for the leader lock (a
//! session-level advisory lock on a dedicated connection, see
//! [`crate::store::LeaderLockSession`]). The leader holds it; when the
//! leader's process dies its connection drops, the database hands the lock
//! to a waiter at once, and that waiter takes the lease without waiting for
//! it to lapse (only if the holder's lock session is really gone). A leader
//! that hangs with its connection open keeps the lock and is replaced when
//! its lease lapses.

use crate::store::{LeaderLockSession, Store, StoreError};
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often, and how far apart, an instance granted the leader lock tries
/// to take the lease before deciding its holder is alive.
const TAKE_TRIES: usize = 10;
const TAKE_GAP: Duration = Duration::from_millis(25);

/// Lease timing. The defaults give failover in about two seconds.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// How often every instance beats and tries to take or renew the lease.
    pub renew: Duration,
    /// How old a heartbeat makes an instance dead (its work is reclaimed).
    pub dead_after: Duration,
    /// Whether to wait for and hold the leader lock (Postgres advisory
    /// lock; see the module docs).
    pub advisory_lock: bool,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_millis(2000),
            renew: Duration::from_millis(400),
            dead_after: Duration::from_millis(2000),
            advisory_lock: true,
        }
    }
}

/// What an instance knows of the leadership, for health reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderView {
    /// This instance.
    pub instance: String,
    /// Whether this instance leads now.
    pub is_leader: bool,
    /// The leader as last read (possibly lapsed).
    pub leader: Option<String>,
    /// The current fencing epoch.
    pub epoch: i64,
    /// When the lease lapses unless renewed.
    pub lease_expires: Option<DateTime<Utc>>,
    /// Whether the last database round trip worked.
    pub database_ok: bool,
}

#[derive(Debug)]
struct State {
    is_leader: bool,
    epoch: i64,
    renewed_at: Option<Instant>,
    /// Since when this instance leads without a database error in between
    /// (reclaiming others' work waits `dead_after` past it, so instances
    /// that could not beat during an outage get the chance to).
    steady_since: Option<Instant>,
    leader: Option<String>,
    lease_expires: Option<DateTime<Utc>>,
    database_ok: bool,
}

/// One instance's view of the leadership, kept current by [`Leadership::run`].
#[derive(Debug)]
pub struct Leadership {
    me: String,
    cfg: LeaderConfig,
    state: Mutex<State>,
    changed: tokio::sync::Notify,
    /// One tick at a time (the renewal loop and the leader lock both tick).
    ticking: tokio::sync::Mutex<()>,
    /// Cancelled by [`Leadership::resign`]: this instance leaves, and will
    /// not lead again (it still beats until it stops).
    resigned: CancellationToken,
}

impl Leadership {
    /// Not leading yet.
    pub fn new(me: String, cfg: LeaderConfig) -> Leadership {
        Leadership {
            me,
            cfg,
            state: Mutex::new(State {
                is_leader: false,
                epoch: 0,
                renewed_at: None,
                steady_since: None,
                leader: None,
                lease_expires: None,
                database_ok: true,
            }),
            changed: tokio::sync::Notify::new(),
            ticking: tokio::sync::Mutex::new(()),
            resigned: CancellationToken::new(),
        }
    }

    /// This instance's id (the lease holder's name when it leads).
    pub fn instance_id(&self) -> &str {
        &self.me
    }

    /// The lease timing.
    pub fn config(&self) -> &LeaderConfig {
        &self.cfg
    }

    /// Whether this instance may act as leader now.
    pub fn is_leader(&self) -> bool {
        let s = self.state.lock().expect("leadership lock");
        self.is_leader_locked(&s)
    }

    /// Whether this instance has led, without a database error, for at
    /// least `dead_after` (so dead instances can be told from slow ones).
    pub fn may_reclaim(&self) -> bool {
        let s = self.state.lock().expect("leadership lock");
        self.is_leader_locked(&s)
            && s.steady_since
                .is_some_and(|t| t.elapsed() >= self.cfg.dead_after)
    }

    fn is_leader_locked(&self, s: &State) -> bool {
        let margin = self.cfg.renew.min(self.cfg.lease / 4);
        s.is_leader
            && !self.resigned.is_cancelled()
            && s.renewed_at
                .is_some_and(|t| t.elapsed() + margin < self.cfg.lease)
    }

    /// The fencing epoch work is claimed and written under.
    pub fn epoch(&self) -> i64 {
        self.state.lock().expect("leadership lock").epoch
    }

    /// A snapshot for health reports.
    pub fn view(&self) -> LeaderView {
        let s = self.state.lock().expect("leadership lock");
        LeaderView {
            instance: self.me.clone(),
            is_leader: self.is_leader_locked(&s),
            leader: s.leader.clone(),
            epoch: s.epoch,
            lease_expires: s.lease_expires,
            database_ok: s.database_ok,
        }
    }

    /// Resolves when leadership or the epoch changes.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// Stops leading for good, at once: gives the lease up (another
    /// instance takes over without waiting for it to lapse) and, in
    /// [`Leadership::run`], the leader lock. The heartbeat goes on until
    /// `run` stops, then is removed (the instance departs; see
    /// [`Store::depart`]), so the work it still finishes is not taken
    /// from it as a dead instance's.
    pub async fn resign(&self, store: &Store) {
        // At once, whatever a tick in progress does: `is_leader` is false
        // from here, and the leader lock is given up.
        self.resigned.cancel();
        self.changed.notify_waiters();
        // After a tick in progress, which may just have renewed the lease.
        let _one = self.ticking.lock().await;
        if let Err(e) = store.release_lease(&self.me).await {
            tracing::warn!(error = %e, "could not give the leader lease up: it lapses instead");
        }
        let was = {
            let mut s = self.state.lock().expect("leadership lock");
            let was = s.is_leader;
            s.is_leader = false;
            s.steady_since = None;
            was
        };
        if was {
            tracing::info!(instance = %self.me, "this instance resigned the lead");
        }
        self.changed.notify_waiters();
    }

    /// Whether [`Leadership::resign`] was called.
    pub fn resigned(&self) -> bool {
        self.resigned.is_cancelled()
    }

    /// One round: heartbeat, then take or renew the lease.
    pub async fn tick(&self, store: &Store) {
        self.tick_with(store, false).await
    }

    /// One round; `woken` when this instance just got the leader lock (it
    /// may then take the lease from a holder whose lock session is gone).
    async fn tick_with(&self, store: &Store, woken: bool) {
        let _one = self.ticking.lock().await;
        let lease = match store.heartbeat(&self.me).await {
            // Resigned: beats only (the lease was given up).
            Ok(()) if self.resigned.is_cancelled() => Ok(None),
            Ok(()) if woken => {
                store
                    .take_lease_from_departed(&self.me, self.cfg.lease)
                    .await
            }
            Ok(()) => store.acquire_lease(&self.me, self.cfg.lease).await,
            Err(e) => Err(e),
        };
        // Someone else leads: learn who, for health reports.
        let current = match &lease {
            Ok(None) => store.current_lease().await.ok().flatten(),
            _ => None,
        };
        let (was, now) = {
            let mut s = self.state.lock().expect("leadership lock");
            let was = (s.is_leader, s.epoch);
            match lease {
                Ok(Some(l)) => {
                    if !s.is_leader || s.epoch != l.epoch || !s.database_ok {
                        s.steady_since = Some(Instant::now());
                    }
                    s.is_leader = true;
                    s.epoch = l.epoch;
                    s.renewed_at = Some(Instant::now());
                    s.leader = Some(l.holder);
                    s.lease_expires = Some(l.expires);
                    s.database_ok = true;
                }
                Ok(None) => {
                    s.is_leader = false;
                    s.steady_since = None;
                    s.database_ok = true;
                    if let Some(l) = current {
                        s.epoch = l.epoch;
                        s.leader = Some(l.holder);
                        s.lease_expires = Some(l.expires);
                    }
                }
                Err(e @ StoreError::Contended(_)) => {
                    // The lease row is locked by a session that stalls
                    // (ended within the session limits); the database is up.
                    if s.is_leader {
                        tracing::error!(error = %e, "leader lease renewal failed: no longer scheduling");
                    } else {
                        tracing::warn!(error = %e, "the leader lease is locked by another session; retrying");
                    }
                    s.is_leader = false;
                    s.steady_since = None;
                }
                Err(e) => {
                    if s.is_leader {
                        tracing::error!(error = %e, "leader lease renewal failed: no longer scheduling");
                    } else if s.database_ok {
                        tracing::warn!(error = %e, "database unreachable: not executing until it returns");
                    }
                    s.is_leader = false;
                    s.steady_since = None;
                    s.database_ok = false;
                }
            }
            (was, (s.is_leader, s.epoch))
        };
        if now != was {
            if now.0 && !was.0 {
                tracing::info!(instance = %self.me, epoch = now.1, "this instance now leads");
            } else if was.0 && !now.0 {
                tracing::warn!(instance = %self.me, "this instance no longer leads");
            }
            self.changed.notify_waiters();
        }
    }

    /// Ticks every `renew` (and waits for the leader lock) until
    /// `shutdown`, then gives the lease and the lock up. The lock is given
    /// up as soon as this instance resigns; a resigned instance's
    /// heartbeat is removed when it stops: returns whether it was.
    pub async fn run(&self, store: Store, shutdown: CancellationToken) -> bool {
        let renewals = async {
            loop {
                self.tick(&store).await;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.cfg.renew) => {}
                }
            }
        };
        let lock_stop = CancellationToken::new();
        let lock = async {
            if let Some(session) = self.hold_leader_lock(&store, &lock_stop).await {
                session.close().await;
            }
        };
        let stop_lock = async {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = self.resigned.cancelled() => {}
            }
            lock_stop.cancel();
        };
        tokio::join!(renewals, lock, stop_lock);
        if let Err(e) = store.release_lease(&self.me).await {
            tracing::debug!(error = %e, "could not release the leader lease");
        }
        if !self.resigned.is_cancelled() {
            return false;
        }
        match store.depart(&self.me).await {
            Ok(()) => {
                tracing::info!(instance = %self.me, "departed: heartbeat removed");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not remove this instance's heartbeat: it is taken for dead after leader.dead_after_ms");
                false
            }
        }
    }

    /// Waits for the leader lock, ticks at once when it is granted, keeps
    /// it while leading and gives it back when not; reconnects when its
    /// session is lost. Returns the session at shutdown (None on SQLite or
    /// when it was lost).
    async fn hold_leader_lock(
        &self,
        store: &Store,
        shutdown: &CancellationToken,
    ) -> Option<LeaderLockSession> {
        if !self.cfg.advisory_lock {
            return None;
        }
        let mut session: Option<LeaderLockSession> = None;
        while !shutdown.is_cancelled() {
            let s = match session.as_mut() {
                Some(s) => s,
                None => match store.leader_lock_session(&self.me).await {
                    Ok(Some(s)) => session.insert(s),
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::debug!(error = %e, "leader lock session: cannot connect");
                        tokio::select! {
                            _ = shutdown.cancelled() => return None,
                            _ = tokio::time::sleep(self.cfg.renew) => continue,
                        }
                    }
                },
            };
            let step = if s.held() {
                // Holding: keep it while leading, check the session lives.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.cfg.renew) => {}
                }
                match s.ping().await {
                    Ok(()) if self.is_leader() => Ok(()),
                    // Not the leader (a live leader holds the lease): let a
                    // waiter — the leader among them — have the lock, and
                    // queue again after a pause.
                    Ok(()) => match s.release().await {
                        Ok(()) => {
                            tokio::select! {
                                _ = shutdown.cancelled() => break,
                                _ = tokio::time::sleep(self.cfg.renew) => Ok(()),
                            }
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            } else {
                let waited = tokio::select! {
                    // A wait cut short leaves the session mid-statement:
                    // drop it (the database ends it).
                    _ = shutdown.cancelled() => return None,
                    r = s.wait() => r,
                };
                match waited {
                    Ok(true) => {
                        tracing::debug!(instance = %self.me, "leader lock granted");
                        // The database releases a dying session's locks just
                        // before it leaves pg_stat_activity: look again a
                        // few times before deciding the holder lives.
                        for _ in 0..TAKE_TRIES {
                            self.tick_with(store, true).await;
                            if self.is_leader() {
                                break;
                            }
                            tokio::select! {
                                _ = shutdown.cancelled() => break,
                                _ = tokio::time::sleep(TAKE_GAP) => {}
                            }
                        }
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = step {
                tracing::debug!(error = %e, "leader lock session lost; reconnecting");
                if let Some(s) = session.take() {
                    s.close().await;
                }
            }
        }
        session
    }
}
