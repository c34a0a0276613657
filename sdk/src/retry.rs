//! [`Backoff`]: retrying an operation with exponential backoff, within the
//! call's deadline.
//!
//! A BMC or an API answering "busy" (`409`, `429`, `503`) or a connection
//! dropped once deserves another try; a wrong password does not. [`Backoff`]
//! retries the errors its predicate picks (by default the retryable kinds:
//! `busy`, `unreachable`, `timeout`), waits 1×, 2×, 4×... the first wait (up
//! to a cap, with jitter from the WASI random source so many nodes do not
//! retry in step) and never starts a wait that would pass the call's
//! deadline: it then returns the last error as it was, so the host sees its
//! real kind (`busy`, `unreachable`) rather than a timeout it did not have.
//!
//! ```no_run
//! # use drydock_sdk::prelude::*;
//! # fn example(ctx: &Ctx) -> Result<()> {
//! use drydock_sdk::retry::Backoff;
//!
//! let state: serde_json::Value = Backoff::new()
//!     .attempts(4)
//!     .only(|e| matches!(e, DriverError::Busy(_)))
//!     .run(ctx, |attempt| {
//!         ctx.debug(format!("attempt {attempt}"));
//!         http::Request::get("https://bmc/redfish/v1/Systems/1")
//!             .send()?
//!             .error_for_status()?
//!             .json()
//!     })?;
//! # let _ = state; Ok(()) }
//! ```

use std::time::Duration;

use crate::{Ctx, DriverError, Result};

/// Called before each retry with the error, the attempt that failed and
/// the wait ahead.
type OnRetry<'p> = Box<dyn Fn(&DriverError, u32, Duration) + 'p>;

/// How to retry: attempts, waits, which errors.
#[must_use = "a backoff does nothing until run"]
pub struct Backoff<'p> {
    attempts: u32,
    first: Duration,
    max: Duration,
    jitter: bool,
    retry_if: Box<dyn Fn(&DriverError) -> bool + 'p>,
    on_retry: Option<OnRetry<'p>>,
}

impl std::fmt::Debug for Backoff<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff")
            .field("attempts", &self.attempts)
            .field("first", &self.first)
            .field("max", &self.max)
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}

impl Default for Backoff<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'p> Backoff<'p> {
    /// 5 attempts, waits of 500 ms doubling up to 8 s with jitter, retrying
    /// [`DriverError::is_retryable`] errors.
    pub fn new() -> Self {
        Backoff {
            attempts: 5,
            first: Duration::from_millis(500),
            max: Duration::from_secs(8),
            jitter: true,
            retry_if: Box::new(DriverError::is_retryable),
            on_retry: None,
        }
    }

    /// Tries at most `attempts` times in all (at least once).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The first wait; each further wait doubles it.
    pub fn first_wait(mut self, wait: Duration) -> Self {
        self.first = wait;
        self
    }

    /// The longest wait between two attempts.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max = wait;
        self
    }

    /// Waits exactly the doubling schedule, without random jitter.
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Retries only the errors `retry_if` picks (instead of every retryable
    /// one).
    pub fn only(mut self, retry_if: impl Fn(&DriverError) -> bool + 'p) -> Self {
        self.retry_if = Box::new(retry_if);
        self
    }

    /// Calls `notice(error, attempt, wait)` before each wait, e.g. to put a
    /// status message on the task.
    pub fn on_retry(mut self, notice: impl Fn(&DriverError, u32, Duration) + 'p) -> Self {
        self.on_retry = Some(Box::new(notice));
        self
    }

    /// Runs `op(attempt)` (attempt 1, 2, ...) until it succeeds, fails with
    /// an error not to retry, runs out of attempts, or the next wait would
    /// pass the call's deadline; returns the last outcome.
    pub fn run<T>(&self, ctx: &Ctx, op: impl FnMut(u32) -> Result<T>) -> Result<T> {
        self.run_with(&mut CallClock(ctx), op)
    }

    /// [`Backoff::run`] on any clock (tests use a fake one).
    pub(crate) fn run_with<T>(
        &self,
        clock: &mut dyn Clock,
        mut op: impl FnMut(u32) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 1;
        loop {
            let error = match op(attempt) {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if attempt >= self.attempts || !(self.retry_if)(&error) {
                return Err(error);
            }
            let wait = self.wait(attempt, clock);
            // Keep the last error when the wait would pass the deadline: it
            // says what went wrong; a timeout would not.
            if wait >= clock.remaining() {
                return Err(error);
            }
            if let Some(notice) = &self.on_retry {
                notice(&error, attempt, wait);
            }
            if !clock.sleep(wait) {
                return Err(error);
            }
            attempt += 1;
        }
    }

    /// The wait after attempt `attempt` (1-based): `first × 2^(attempt-1)`
    /// capped at `max`, then, with jitter, a random point in its upper half.
    fn wait(&self, attempt: u32, clock: &mut dyn Clock) -> Duration {
        let doubled = self
            .first
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.max);
        if !self.jitter || doubled.is_zero() {
            return doubled;
        }
        let half = doubled / 2;
        let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_micros(clock.random() % (span + 1))
    }
}

/// Time and randomness as [`Backoff`] sees them.
pub(crate) trait Clock {
    /// Time left before the deadline.
    fn remaining(&self) -> Duration;
    /// Sleeps; false if the deadline would pass first.
    fn sleep(&mut self, wait: Duration) -> bool;
    /// A random number for jitter.
    fn random(&mut self) -> u64;
}

/// The call's deadline, the host's sleep and the WASI random source.
struct CallClock<'a>(&'a Ctx);

impl Clock for CallClock<'_> {
    fn remaining(&self) -> Duration {
        self.0.deadline_remaining()
    }
    fn sleep(&mut self, wait: Duration) -> bool {
        self.0.sleep(wait).is_ok()
    }
    fn random(&mut self) -> u64 {
        crate::random::u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A clock whose time passes only when slept; records the waits.
    struct FakeClock {
        left: Duration,
        waits: Vec<Duration>,
    }

    impl Clock for FakeClock {
        fn remaining(&self) -> Duration {
            self.left
        }
        fn sleep(&mut self, wait: Duration) -> bool {
            self.waits.push(wait);
            match self.left.checked_sub(wait) {
                Some(left) => {
                    self.left = left;
                    true
                }
                None => false,
            }
        }
        fn random(&mut self) -> u64 {
            u64::MAX / 3
        }
    }

    fn clock(secs: u64) -> FakeClock {
        FakeClock {
            left: Duration::from_secs(secs),
            waits: Vec::new(),
        }
    }

    #[test]
    fn retries_busy_until_success_with_doubling_waits() {
        let mut c = clock(100);
        let calls = RefCell::new(0);
        let out = Backoff::new()
            .without_jitter()
            .first_wait(Duration::from_secs(1))
            .run_with(&mut c, |attempt| {
                *calls.borrow_mut() += 1;
                if attempt < 4 {
                    Err(DriverError::Busy("busy".into()))
                } else {
                    Ok(attempt)
                }
            });
        assert_eq!(out, Ok(4));
        assert_eq!(
            c.waits,
            [1, 2, 4].map(Duration::from_secs).to_vec(),
            "1, 2, 4 s"
        );
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let mut c = clock(100);
        let out: Result<()> =
            Backoff::new().run_with(&mut c, |_| Err(DriverError::Auth("wrong password".into())));
        assert_eq!(out, Err(DriverError::Auth("wrong password".into())));
        assert!(c.waits.is_empty());
    }

    #[test]
    fn gives_up_with_the_last_error_before_the_deadline() {
        // 3.5 s left: waits of 1 and 2 s fit, the 4 s one would not.
        let mut c = FakeClock {
            left: Duration::from_millis(3500),
            waits: Vec::new(),
        };
        let out: Result<()> = Backoff::new()
            .without_jitter()
            .attempts(10)
            .first_wait(Duration::from_secs(1))
            .run_with(&mut c, |n| {
                Err(DriverError::Unreachable(format!("down {n}")))
            });
        assert_eq!(out, Err(DriverError::Unreachable("down 3".into())));
        assert_eq!(c.waits, [1, 2].map(Duration::from_secs).to_vec());
    }

    #[test]
    fn attempts_and_predicate_bound_the_retries() {
        let mut c = clock(100);
        let out: Result<()> = Backoff::new()
            .attempts(3)
            .only(|e| matches!(e, DriverError::Busy(_)))
            .run_with(&mut c, |_| Err(DriverError::Busy("busy".into())));
        assert!(out.is_err());
        assert_eq!(c.waits.len(), 2, "3 attempts, 2 waits");
        let mut c = clock(100);
        let out: Result<()> = Backoff::new()
            .only(|e| matches!(e, DriverError::Busy(_)))
            .run_with(&mut c, |_| Err(DriverError::Timeout("slow".into())));
        assert_eq!(out, Err(DriverError::Timeout("slow".into())));
        assert!(c.waits.is_empty(), "timeouts not picked");
    }

    #[test]
    fn waits_are_capped_and_jittered_within_their_upper_half() {
        let mut c = clock(1000);
        let b = Backoff::new()
            .first_wait(Duration::from_secs(1))
            .max_wait(Duration::from_secs(5));
        for attempt in 1..10 {
            let nominal = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(5));
            let w = b.wait(attempt, &mut c);
            assert!(w >= nominal / 2 && w <= nominal, "{attempt}: {w:?}");
        }
    }

    #[test]
    fn notices_see_each_retry() {
        let mut c = clock(100);
        let seen = RefCell::new(Vec::new());
        let _ = Backoff::new()
            .without_jitter()
            .attempts(3)
            .on_retry(|e, n, w| seen.borrow_mut().push((e.message().to_string(), n, w)))
            .run_with(&mut c, |n| -> Result<()> {
                Err(DriverError::Busy(format!("b{n}")))
            });
        assert_eq!(
            seen.into_inner(),
            vec![
                ("b1".to_string(), 1, Duration::from_millis(500)),
                ("b2".to_string(), 2, Duration::from_secs(1))
            ]
        );
    }
}
