//! Logging set-up: one `tracing` subscriber for the whole process.
//!
//! Filtering follows `RUST_LOG` (default `info`); guest log lines arrive with
//! target `driver::<name>`, so `RUST_LOG=driver::sim=debug` shows one driver.
//! With `DRYDOCK_OTLP_ENDPOINT` set, spans are also exported by OTLP (see
//! [`crate::observe::traces`]).
//!
//! Lines are formatted on the thread that logs and written to stderr by a
//! thread of their own ([`non_blocking`]): a driver call's INFO line costs
//! no write system call on the call's path. None is lost: past
//! [`QUEUED_LINES`] queued, logging waits for the writer.

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Lines queued for the writer thread before logging waits for it.
pub const QUEUED_LINES: usize = 128_000;

/// Keeps the writer thread of the log lines: dropping it writes out the
/// lines still queued and ends the thread. Hold it until the process ends.
#[must_use = "dropping it stops writing log lines"]
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

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
    let _ = subscriber(json, filter, otlp, writer).try_init();
    guard
}

/// A writer for [`subscriber`] handing each formatted line to a thread
/// that writes it to `out`, and the guard keeping that thread. Lossless:
/// past [`QUEUED_LINES`] lines queued, logging waits.
pub fn non_blocking<W: std::io::Write + Send + 'static>(out: W) -> (NonBlocking, LogGuard) {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("drydock-log")
        .finish(out);
    (writer, LogGuard(guard))
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
