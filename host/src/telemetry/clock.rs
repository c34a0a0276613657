//! The log lines' timestamp, as tracing-subscriber's default prints it
//! (`2026-12-06T11:53:40.123456Z`, UTC), formatted faster: each thread
//! keeps the text of the current second and only writes the microseconds
//! per line. Formatting the whole date and time for every line cost about
//! half a microsecond, a third of what logging a driver call's line costs.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// UTC timestamps with microseconds, the date and time text cached per
/// second and thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct CachedUtc;

thread_local! {
    /// The second last formatted on this thread, and its text.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for CachedUtc {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        let micros = now.subsec_micros();
        SECOND.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.0 != secs {
                let text = chrono::DateTime::from_timestamp(secs as i64, 0)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                    .unwrap_or_default();
                *cell = (secs, text);
            }
            w.write_str(&cell.1)?;
            // ".123456Z" without the formatting machinery.
            let mut frac = *b".000000Z";
            let mut m = micros;
            for d in frac[1..7].iter_mut().rev() {
                *d = b'0' + (m % 10) as u8;
                m /= 10;
            }
            w.write_str(std::str::from_utf8(&frac).unwrap_or(".000000Z"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_what_the_default_timer_prints() {
        let mut ours = String::new();
        CachedUtc.format_time(&mut Writer::new(&mut ours)).unwrap();
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut theirs))
            .unwrap();
        // Same shape and the same second (or the next one).
        assert_eq!(ours.len(), "2026-12-06T11:53:40.123456Z".len(), "{ours}");
        assert_eq!(ours.len(), theirs.len(), "{ours} vs {theirs}");
        assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
        let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
        let apart = parse(&theirs) - parse(&ours);
        assert!(apart.num_milliseconds().abs() < 1_000, "{ours} vs {theirs}");
        // Within one second the cached text is reused: the next line's
        // timestamp is not earlier.
        let mut next = String::new();
        CachedUtc.format_time(&mut Writer::new(&mut next)).unwrap();
        assert!(parse(&next) >= parse(&ours), "{ours} then {next}");
    }
}
