//! Logging set-up: one `tracing` subscriber for the whole process.
//!
//! Filtering follows `RUST_LOG` (default `info`); guest log lines arrive with
//! target `driver::<name>`, so `RUST_LOG=driver::sim=debug` shows one driver.
//! With `DRYDOCK_OTLP_ENDPOINT` set, spans are also exported by OTLP (see
//! [`crate::observe::traces`]).
//!
//! Lines are formatted on the thread that logs and written to stderr in
//! batches by a thread of their own ([`batch`]): a driver call's INFO line
//! costs its copy, no write system call and no thread wake-up on the call's
//! path. None is lost: past [`batch::MAX_BUFFERED`] bytes waiting, logging
//! waits for the writer.

pub mod batch;
pub mod clock;
pub mod lines;

use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the writer thread of the log lines: dropping it writes out the
/// lines still queued and ends the thread. Hold it until the process ends.
#[must_use = "dropping it stops writing log lines"]
pub struct LogGuard(#[allow(dead_code)] batch::BatchGuard);

/// Installs the global subscriber, writing to stderr. `json` selects JSON
/// lines instead of human-readable text. Calling it twice is harmless.
pub fn init(json: bool) -> LogGuard {
    init_with(
        json,
        std::env::var(crate::observe::traces::ENDPOINT_ENV)
            .ok()
            .as_deref(),
    )
}

/// [`init`], exporting spans by OTLP to `otlp` (the collector's traces
/// URL) when given.
pub fn init_with(json: bool, otlp: Option<&str>) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = non_blocking(std::io::stderr());
    // Colours only for a person at a terminal (not journald, files, pipes).
    let ansi = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = subscriber(json, ansi, filter, otlp, writer).try_init();
    guard
}

/// A writer for [`subscriber`] whose lines a thread writes to `out` in
/// batches ([`batch`]), and the guard keeping that thread. Lossless: past
/// [`batch::MAX_BUFFERED`] bytes waiting, logging waits.
pub fn non_blocking<W: std::io::Write + Send + 'static>(out: W) -> (batch::BatchWriter, LogGuard) {
    let (writer, guard) = batch::batch_writer(out);
    (writer, LogGuard(guard))
}

/// The subscriber [`init`] installs, with its `filter`, colours if `ansi`,
/// and its lines written to `writer` (benchmarks measure it writing to a
/// file).
///
/// Every layer filters for itself (`filter` is applied to each), so a span
/// no layer records is disabled where it is created: a driver call's
/// [`CALL_SPAN`](crate::drivers::runtime::CALL_SPAN) is made only when
/// traces are exported. Log lines leave it out: the layer would format its
/// fields for every call, and the lines a call writes carry that context
/// themselves (driver, action, node, task).
pub fn subscriber<W>(
    json: bool,
    ansi: bool,
    filter: EnvFilter,
    otlp: Option<&str>,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    let fmt = if json {
        fmt.with_timer(clock::CachedUtc).json().boxed()
    } else {
        fmt.event_format(lines::Lines::default()).boxed()
    };
    let otel_filter = otlp.map(|_| EnvFilter::new(filter.to_string()));
    let not_calls = filter_fn(|m| !(m.is_span() && m.name() == crate::drivers::runtime::CALL_SPAN));
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> =
        vec![fmt.with_filter(filter.and(not_calls)).boxed()];
    let otel = otlp.and_then(|endpoint| match crate::observe::traces::layer(endpoint) {
        Ok(layer) => Some(layer),
        Err(e) => {
            eprintln!("warning: traces are not exported: {e}");
            None
        }
    });
    if let (Some(otel), Some(filter)) = (otel, otel_filter) {
        layers.push(otel.with_filter(filter).boxed());
    }
    tracing_subscriber::registry().with(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::runtime::CALL_SPAN;

    /// Without an exporter no layer records a driver call's span, so none
    /// is made (the call pays for no span); other spans still give log
    /// lines their context. (With an exporter, `tests/traces.rs` finds
    /// the call spans exported.)
    #[test]
    fn call_spans_are_made_only_when_traces_are_exported() {
        let logs = subscriber(false, false, EnvFilter::new("info"), None, std::io::sink);
        tracing::subscriber::with_default(logs, || {
            let call = tracing::info_span!(CALL_SPAN, driver = "sim", action = "power_on_node");
            assert!(call.is_disabled(), "no layer records call spans");
            let task = tracing::info_span!("subtask", task.id = "t-1");
            assert!(!task.is_disabled(), "log lines keep other spans");
            let debug = tracing::debug_span!("below the level");
            assert!(debug.is_disabled());
        });
    }
}
