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

use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Lease timing. The defaults give failover in about two seconds.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// How often every instance beats and tries to take or renew the lease.
    pub renew: Duration,
    /// How old a heartbeat makes an instance dead (its work is reclaimed).
    pub dead_after: Duration,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_millis(2000),
            renew: Duration::from_millis(400),
            dead_after: Duration::from_millis(2000),
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

    /// One round: heartbeat, then take or renew the lease.
    pub async fn tick(&self, store: &Store) {
        let lease = match store.heartbeat(&self.me).await {
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

    /// Ticks every `renew` until `shutdown`, then gives the lease up.
    pub async fn run(&self, store: Store, shutdown: CancellationToken) {
        loop {
            self.tick(&store).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.cfg.renew) => {}
            }
        }
        if let Err(e) = store.release_lease(&self.me).await {
            tracing::debug!(error = %e, "could not release the leader lease");
        }
    }
}
