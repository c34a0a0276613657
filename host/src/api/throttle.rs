//! Slowing down token guessing: a peer (by IP address) that presented
//! `max_failures` bad tokens within `window_s` seconds is answered 429 Too
//! Many Requests, with `Retry-After`, for `block_s` seconds, before any
//! token it sends is looked at (so a guesser cannot make this service flood
//! Keystone either). Requests without a token do not count; a good token
//! does not clear the count. At most `max_peers` peers are tracked (when
//! full, those whose window and block are over go first, then the oldest).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// `[auth_throttle]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Bad tokens a peer may present within the window (default 10; 0
    /// turns the throttle off).
    pub max_failures: u32,
    /// The window, in seconds (default 60).
    pub window_s: u64,
    /// How long a peer past the limit is refused, in seconds (default 60).
    pub block_s: u64,
    /// Most peers tracked (default 10,000).
    pub max_peers: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window_s: 60,
            block_s: 60,
            max_peers: 10_000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Peer {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

/// Bad-token counts per peer.
#[derive(Debug)]
pub struct Throttle {
    cfg: ThrottleConfig,
    peers: Mutex<HashMap<IpAddr, Peer>>,
}

impl Throttle {
    /// A throttle with `cfg`.
    pub fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle {
            cfg,
            peers: Mutex::new(HashMap::new()),
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.cfg.window_s)
    }

    /// How long `peer` must still wait, if it is refused now.
    pub fn blocked(&self, peer: IpAddr) -> Option<Duration> {
        self.blocked_at(peer, Instant::now())
    }

    fn blocked_at(&self, peer: IpAddr, now: Instant) -> Option<Duration> {
        if self.cfg.max_failures == 0 {
            return None;
        }
        let peers = self.peers.lock().expect("throttle lock");
        let until = peers.get(&peer)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a bad token from `peer`.
    pub fn failed(&self, peer: IpAddr) {
        self.failed_at(peer, Instant::now());
    }

    fn failed_at(&self, peer: IpAddr, now: Instant) {
        if self.cfg.max_failures == 0 {
            return;
        }
        let window = self.window();
        let block = Duration::from_secs(self.cfg.block_s);
        let mut peers = self.peers.lock().expect("throttle lock");
        if peers.len() >= self.cfg.max_peers.max(1) && !peers.contains_key(&peer) {
            peers.retain(|_, p| {
                p.window_start + window > now || p.blocked_until.is_some_and(|u| u > now)
            });
            while peers.len() >= self.cfg.max_peers.max(1) {
                let Some(oldest) = peers
                    .iter()
                    .min_by_key(|(_, p)| p.window_start)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                peers.remove(&oldest);
            }
        }
        let p = peers.entry(peer).or_insert(Peer {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if p.window_start + window <= now {
            p.window_start = now;
            p.failures = 0;
        }
        p.failures = p.failures.saturating_add(1);
        if p.failures >= self.cfg.max_failures {
            p.blocked_until = Some(now + block);
            p.window_start = now;
            p.failures = 0;
        }
    }

    /// How many peers are tracked.
    pub fn tracked(&self) -> usize {
        self.peers.lock().expect("throttle lock").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn throttle(max_peers: usize) -> Throttle {
        Throttle::new(ThrottleConfig {
            max_failures: 3,
            window_s: 10,
            block_s: 30,
            max_peers,
        })
    }

    #[test]
    fn blocks_after_the_limit_until_the_block_ends() {
        let t = throttle(100);
        let t0 = Instant::now();
        for _ in 0..2 {
            t.failed_at(ip(1), t0);
        }
        assert_eq!(t.blocked_at(ip(1), t0), None);
        t.failed_at(ip(1), t0);
        assert_eq!(t.blocked_at(ip(1), t0), Some(Duration::from_secs(30)));
        assert_eq!(
            t.blocked_at(ip(1), t0 + Duration::from_secs(20)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(t.blocked_at(ip(1), t0 + Duration::from_secs(30)), None);
        // Another peer is not affected.
        assert_eq!(t.blocked_at(ip(2), t0), None);
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = throttle(100);
        let t0 = Instant::now();
        t.failed_at(ip(1), t0);
        t.failed_at(ip(1), t0 + Duration::from_secs(5));
        t.failed_at(ip(1), t0 + Duration::from_secs(11));
        assert_eq!(t.blocked_at(ip(1), t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn peers_tracked_are_bounded() {
        let t = throttle(2);
        let t0 = Instant::now();
        t.failed_at(ip(1), t0);
        t.failed_at(ip(2), t0 + Duration::from_secs(1));
        t.failed_at(ip(3), t0 + Duration::from_secs(2));
        assert_eq!(t.tracked(), 2);
        // The oldest went.
        let peers = t.peers.lock().unwrap();
        assert!(!peers.contains_key(&ip(1)));
    }

    #[test]
    fn zero_turns_it_off() {
        let t = Throttle::new(ThrottleConfig {
            max_failures: 0,
            ..ThrottleConfig::default()
        });
        for _ in 0..100 {
            t.failed(ip(1));
        }
        assert_eq!(t.blocked(ip(1)), None);
        assert_eq!(t.tracked(), 0);
    }
}
