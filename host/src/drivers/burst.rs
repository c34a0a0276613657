//! Memory given back after a burst of calls.
//!
//! Calls allocate their stores, instances and host state on the heap; after
//! a burst of many calls at once the allocator keeps the freed memory (glibc
//! returns only the top of each arena, and a burst spreads over the
//! arenas of every worker thread). [`BurstWatch`] notices the runtime going
//! idle after at least [`BURST`] calls were in flight, and the runtime then
//! has the allocator give its free pages back ([`give_back`], glibc's
//! `malloc_trim`), on a blocking thread. Steady traffic never idles and is
//! never trimmed; it keeps what it uses.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Calls in flight at once from which the runtime trims the allocator when
/// it next goes idle.
pub(crate) const BURST: usize = 32;

/// The most calls in flight since the runtime last went idle.
#[derive(Debug, Default)]
pub(crate) struct BurstWatch {
    peak: AtomicUsize,
}

impl BurstWatch {
    /// A call started with `in_flight` calls (itself included) running.
    pub(crate) fn started(&self, in_flight: usize) {
        self.peak.fetch_max(in_flight, Ordering::Relaxed);
    }

    /// A call ended leaving `in_flight` running: whether that ended a burst
    /// (none left, and at least [`BURST`] at once since the last idle). One
    /// caller gets `true` per burst.
    pub(crate) fn ended(&self, in_flight: usize) -> bool {
        in_flight == 0 && self.peak.swap(0, Ordering::Relaxed) >= BURST
    }
}

/// Gives the allocator's free memory back to the kernel (glibc's
/// `malloc_trim(0)`: free pages anywhere in its arenas, not only their
/// tops). Takes milliseconds after a large burst: call it off the async
/// workers.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn give_back() {
    // SAFETY: malloc_trim only returns pages the allocator holds free; it
    // touches no memory in use and may run concurrently with allocations.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return memory on their own.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn give_back() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_ends_once_when_the_runtime_goes_idle() {
        let w = BurstWatch::default();
        for n in 1..=BURST {
            w.started(n);
        }
        assert!(!w.ended(BURST - 1), "calls are still running");
        assert!(w.ended(0));
        assert!(!w.ended(0), "one trim per burst");
        // Fewer calls at once than a burst: no trim.
        w.started(BURST - 1);
        assert!(!w.ended(0));
    }
}
