//! The kept session of a BMC and the turn to log in to it, in one key of
//! the driver's key-value store, `session/<host:port>`, which holds either
//! the kept session (token, URI, account, driver version, last use) or a
//! login turn (who holds it, until when). Every write of the key is a
//! compare-and-swap (`kv-compare-and-swap`) against what the writer read,
//! so a call acts only on what the key still holds:
//!
//! - a usable session is reused;
//! - a turn still running makes the call wait (polling the key) until the
//!   session it brings, or until the turn ends;
//! - nothing, a turn that ran out, or an unusable session (expired, another
//!   driver version or account) is swapped for this call's turn: the one
//!   call whose swap lands logs the unusable session out and logs in; the
//!   others' swaps fail and they read the key again.
//!
//! The turn's holder stores its new session by swapping its own turn for
//! it. A turn lasts until the holder's deadline, at most [`TURN`], and
//! the holder's login requests end with its turn, so no other call takes
//! a turn over while its holder may still log in: two calls never log in
//! at once for one BMC on one Drydock instance (the host's swap is atomic
//! per instance). Should a turn be taken over anyway (the wall clock
//! jumped), the late holder's swap fails and it logs its session out after
//! its call instead of keeping it.

use super::{Auth, Bmc};
use drydock_sdk::http::{Method, Request};
use drydock_sdk::prelude::*;
use serde_json::{Value, json};

/// The longest a login turn lasts (or the holder's deadline, if sooner);
/// the holder's login requests are cut at its end.
const TURN: Duration = Duration::from_secs(60);
/// How often a waiting call reads the key again.
const WAIT_STEP: Duration = Duration::from_millis(20);

/// Milliseconds since the Unix epoch (the guest's wall clock).
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A short fingerprint of an account (never the password itself).
fn account_tag(username: &str, password: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in username.bytes().chain([0]).chain(password.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// What a call found in the key.
pub(super) enum Found {
    /// A usable kept session.
    Kept(Auth),
    /// This call's turn to log in: the turn as stored (to swap for the
    /// session), when it ends (ms), and the unusable session it replaced
    /// (to log out first).
    Turn {
        turn: String,
        until_ms: u64,
        replaced: Option<Auth>,
    },
}

/// The session a stored value describes.
fn session_of(kept: &Value) -> Auth {
    Auth::Session {
        token: kept["token"].as_str().unwrap_or_default().to_string(),
        location: kept["location"].as_str().map(str::to_string),
    }
}

impl Bmc<'_> {
    /// How long a kept session is reused after its last use, ms (read from
    /// the call's settings, so a change applies to sessions kept already).
    fn ttl_ms(&self) -> u64 {
        millis(self.settings.session_ttl)
    }

    /// Where this BMC's kept session (or login turn) lives.
    fn session_key(&self) -> String {
        format!("session/{}", self.addr)
    }

    /// Swaps the key from `from` (as read) to `to`; whether it landed.
    fn swap(&self, from: Option<&str>, to: Option<&str>) -> Result<bool> {
        self.ctx.kv_compare_and_swap(&self.session_key(), from, to)
    }

    /// Why a stored session is not usable by this call, if it is not.
    fn unusable(&self, kept: &Value, tag: &str) -> Option<&'static str> {
        if kept["version"].as_str() != Some(env!("CARGO_PKG_VERSION")) {
            Some("it was opened by another driver version")
        } else if kept["account"].as_str() != Some(tag) {
            Some("the node's credentials changed")
        } else if kept["used_ms"].as_u64().unwrap_or(0) + self.ttl_ms() <= now_ms() {
            Some("it expired")
        } else {
            None
        }
    }

    /// The kept session, or this call's turn to log in (it then stores the
    /// session it opens with [`Bmc::keep`]). Waits while another call
    /// holds the turn, as long as this call's deadline allows.
    pub(super) fn kept_or_turn(&self, username: &str, password: &str) -> Result<Found> {
        let tag = account_tag(username, password);
        // Unique per call: std seeds `RandomState` from wasi:random.
        let me = {
            use std::hash::BuildHasher;
            let random = std::collections::hash_map::RandomState::new().hash_one(now_ms());
            format!("{random:016x}")
        };
        loop {
            let raw = self.ctx.kv_get(&self.session_key());
            let stored = raw
                .as_deref()
                .map(|r| serde_json::from_str::<Value>(r).unwrap_or(Value::Null));
            let mut replaced = None;
            match &stored {
                Some(s) if s["turn"]["until_ms"].as_u64().unwrap_or(0) > now_ms() => {
                    // Another call is logging in: wait for its session.
                    if self.ctx.sleep(WAIT_STEP).is_err() {
                        return Err(DriverError::Timeout(format!(
                            "waited for another call's login to BMC {} past the deadline",
                            self.addr
                        )));
                    }
                    continue;
                }
                // A turn that ran out: taken over below.
                Some(s) if s.get("turn").is_some() => {}
                Some(s) => match self.unusable(s, &tag) {
                    None => return Ok(Found::Kept(session_of(s))),
                    Some(why) => {
                        self.ctx.debug(format!(
                            "logging out the kept session of BMC {}: {why}",
                            self.addr
                        ));
                        replaced = Some(session_of(s));
                    }
                },
                None => {}
            }
            let until_ms = now_ms() + millis(TURN.min(self.ctx.deadline_remaining()));
            let turn = json!({ "turn": { "by": me, "until_ms": until_ms } }).to_string();
            if self.swap(raw.as_deref(), Some(&turn))? {
                return Ok(Found::Turn {
                    turn,
                    until_ms,
                    replaced,
                });
            }
            // Another call's write landed first: read the key again.
        }
    }

    /// Stores `session` in place of this call's `turn`. `false` when the
    /// turn was taken over meanwhile (the session is then not kept, and
    /// is logged out after the call).
    pub(super) fn keep(
        &self,
        turn: &str,
        session: &Auth,
        username: &str,
        password: &str,
    ) -> Result<bool> {
        let Auth::Session { token, location } = session else {
            return Ok(false);
        };
        let kept = json!({
            "token": token,
            "location": location,
            "account": account_tag(username, password),
            "version": env!("CARGO_PKG_VERSION"),
            "used_ms": now_ms(),
        })
        .to_string();
        let landed = self.swap(Some(turn), Some(&kept))?;
        if !landed {
            self.ctx.warn(format!(
                "the login turn for BMC {} ran out before its login ended: \
                 this call's session is logged out after it",
                self.addr
            ));
        }
        Ok(landed)
    }

    /// Gives `turn` back without a session (the login failed or the BMC
    /// offers none).
    pub(super) fn end_turn(&self, turn: &str) -> Result<()> {
        self.swap(Some(turn), None).map(drop)
    }

    /// Records a use of the kept session, which pushes its expiry back
    /// (only once half its lifetime has passed, to spare the store a write
    /// per call). A session that is no longer the kept one (another call
    /// replaced it) is logged out instead.
    pub(super) fn touch_kept(&mut self) -> Result<()> {
        let Auth::Session { token, .. } = &self.auth else {
            return Ok(());
        };
        let raw = self.ctx.kv_get(&self.session_key());
        let Some(mut kept) = raw
            .as_deref()
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
        else {
            return Ok(());
        };
        if kept["token"].as_str() != Some(token.as_str()) {
            self.logout();
            return Ok(());
        }
        if kept["used_ms"].as_u64().unwrap_or(0) + self.ttl_ms() / 2 < now_ms() {
            kept["used_ms"] = json!(now_ms());
            // A failed swap: another call touched or replaced it meanwhile.
            self.swap(raw.as_deref(), Some(&kept.to_string()))?;
        }
        Ok(())
    }

    /// Forgets the kept session if it is still the one this call used (a
    /// concurrent call may have replaced it already).
    pub(super) fn forget_kept(&self) -> Result<()> {
        let Auth::Session { token, .. } = &self.auth else {
            return Ok(());
        };
        let raw = self.ctx.kv_get(&self.session_key());
        let ours = raw
            .as_deref()
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
            .is_some_and(|k| k["token"].as_str() == Some(token.as_str()));
        if ours {
            self.swap(raw.as_deref(), None)?;
        }
        Ok(())
    }

    /// Logs out and forgets the kept session, if any (a call without
    /// `session_reuse`). A login turn is left to its holder.
    pub(super) fn drop_kept(&self) -> Result<()> {
        let raw = self.ctx.kv_get(&self.session_key());
        let Some(kept) = raw
            .as_deref()
            .map(|r| serde_json::from_str::<Value>(r).unwrap_or(Value::Null))
        else {
            return Ok(());
        };
        if kept.get("turn").is_some() {
            return Ok(());
        }
        if self.swap(raw.as_deref(), None)? {
            self.delete_session(&session_of(&kept));
        }
        Ok(())
    }

    /// Deletes `session` on the BMC with its own token (best effort).
    pub(super) fn delete_session(&self, session: &Auth) {
        let Auth::Session {
            token,
            location: Some(location),
        } = session
        else {
            return;
        };
        let request = Request::new(Method::Delete, format!("{}{location}", self.origin))
            .header("accept", "application/json")
            .header("x-auth-token", token)
            .timeout(
                self.settings
                    .request_timeout
                    .min(self.ctx.deadline_remaining())
                    .max(Duration::from_millis(1)),
            );
        match request.send() {
            Ok(r) if r.status < 300 || r.status == 401 || r.status == 404 => {}
            Ok(r) => self.ctx.warn(format!(
                "BMC {} answered HTTP {} to a session logout",
                self.addr, r.status
            )),
            Err(e) => self.ctx.warn(format!(
                "could not log out a session on BMC {}: {}",
                self.addr,
                e.message()
            )),
        }
    }
}
