//! Logging set-up: one `tracing` subscriber for the whole process.
//!
//! Filtering follows `RUST_LOG` (default `info`); guest log lines arrive with
//! target `driver::<name>`, so `RUST_LOG=driver::sim=debug` shows one driver.
//! With `DRYDOCK_OTLP_ENDPOINT` set, spans are also exported by OTLP (see
//! [`crate::observe::traces`]).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
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
    let _ = subscriber(json, filter, otlp, std::io::stderr).try_init();
}

/// The subscriber [`init`] installs, with its `filter` and its lines
/// written to `writer` (benchmarks measure it writing to a file).
pub fn subscriber<W>(
    json: bool,
    filter: EnvFilter,
    otlp: Option<&str>,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
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
    tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(fmt)
}
