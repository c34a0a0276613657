//! Logging set-up: one `tracing` subscriber for the whole process.
//!
//! Filtering follows `RUST_LOG` (default `info`); guest log lines arrive with
//! target `driver::<name>`, so `RUST_LOG=driver::sim=debug` shows one driver.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber, writing to stderr. `json` selects JSON
/// lines instead of human-readable text. Calling it twice is harmless.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
