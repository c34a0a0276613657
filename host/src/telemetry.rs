//! Logging set-up: one `tracing` subscriber for the whole process.
//!
//! Filtering follows `RUST_LOG` (default `info`); guest log lines arrive with
//! target `driver::<name>`, so `RUST_LOG=driver::sim=debug` shows one driver.
//! With `DRYDOCK_OTLP_ENDPOINT` set, spans are also exported by OTLP (see
//! [`crate::observe::traces`]).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber, writing to stderr. `json` selects JSON
/// lines instead of human-readable text. Calling it twice is harmless.
pub fn init(json: bool) {
    init_with(
        json,
        std::env::var(crate::observe::traces::ENDPOINT_ENV)
            .ok()
            .as_deref(),
    );
}

/// [`init`], exporting spans by OTLP to `otlp` (the collector's traces
/// URL) when given.
pub fn init_with(json: bool, otlp: Option<&str>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let otel = otlp.and_then(|endpoint| match crate::observe::traces::layer(endpoint) {
        Ok(layer) => Some(layer),
        Err(e) => {
            eprintln!("warning: traces are not exported: {e}");
            None
        }
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(fmt)
        .try_init();
}
