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

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    // Log lines leave out the per-call `driver_call` span (traces keep it):
    // the log layer would format its fields for every call, a sixth of a
    // call's cost, and the lines a call writes carry that context
    // themselves (driver, action, node, task).
    let fmt = fmt.with_filter(tracing_subscriber::filter::filter_fn(|m| {
        !(m.is_span() && m.name() == crate::drivers::runtime::CALL_SPAN)
    }));
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
