//! The automatic rollback's state of a driver's active version, as `GET
//! /drivers` shows it ([`AutoRollback`]): read from the stored activation,
//! not from any one instance's watch.

use crate::store::ActiveDriver;
use crate::wire::{AutoRollback, RollbackState};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// What an automatic rollback's reason starts with (inside the activation
/// message `rolled back from A to B (<reason>)`); an operator's rollback
/// has no such reason.
pub const REASON_PREFIX: &str = "automatic rollback: ";

/// `active`'s automatic rollback at `now`, for watches of `watch_calls`
/// first calls allowed `max_error_ratio` failures, started within `window`
/// of the activation.
pub fn state(
    active: &ActiveDriver,
    watch_calls: u64,
    max_error_ratio: f64,
    window: Duration,
    now: DateTime<Utc>,
) -> AutoRollback {
    let until = chrono::Duration::from_std(window)
        .ok()
        .and_then(|w| active.changed.checked_add_signed(w))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let automatic = format!("({REASON_PREFIX}");
    let state = if active.watched && active.previous.is_some() && watch_calls > 0 && now < until {
        RollbackState::Armed
    } else if active
        .message
        .as_deref()
        .is_some_and(|m| m.contains(&automatic))
    {
        RollbackState::RolledBack
    } else {
        RollbackState::Off
    };
    AutoRollback {
        state,
        watch_calls,
        max_error_ratio,
        watch_until: (state == RollbackState::Armed).then(|| crate::wire::timestamp(&until)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(watched: bool, message: Option<&str>, changed: DateTime<Utc>) -> ActiveDriver {
        ActiveDriver {
            name: "sim".into(),
            version: "2.0.0".into(),
            sha256: "00".into(),
            previous: Some("1.0.0".into()),
            generation: 2,
            changed,
            message: message.map(str::to_owned),
            watched,
        }
    }

    #[test]
    fn armed_within_the_window_then_off_and_rolled_back_by_its_message() {
        let now = Utc::now();
        let window = Duration::from_secs(900);
        let fresh = active(true, None, now);
        let s = state(&fresh, 20, 0.5, window, now);
        assert_eq!(s.state, RollbackState::Armed);
        assert!(s.watch_until.is_some());
        // Watching disabled, or past the window: off.
        assert_eq!(state(&fresh, 0, 0.5, window, now).state, RollbackState::Off);
        let later = now + chrono::Duration::seconds(901);
        assert_eq!(
            state(&fresh, 20, 0.5, window, later).state,
            RollbackState::Off
        );
        // An automatic rollback's activation, and an operator's.
        let auto = format!(
            "rolled back from 2.0.0 to 1.0.0 ({REASON_PREFIX}20 of the first 20 calls failed)"
        );
        let s = state(&active(false, Some(&auto), now), 20, 0.5, window, now);
        assert_eq!((s.state, s.watch_until), (RollbackState::RolledBack, None));
        let manual = active(false, Some("rolled back from 2.0.0 to 1.0.0"), now);
        assert_eq!(
            state(&manual, 20, 0.5, window, now).state,
            RollbackState::Off
        );
    }
}
