//! The text format of log lines: tracing-subscriber's default (`Full`),
//! with guest log lines written by a path of their own.
//!
//! A driver's INFO line is the one line written per driver call in steady
//! state (one per power action), so its cost is a call's cost. The default
//! formatter writes every field through `Debug` and its general visitor,
//! and paints each name with an (empty, when colours are off) ANSI style:
//! about half of what logging added to a power action. Guest lines have a
//! fixed shape (message, `action`, `node`, `task.id`, all text, the message
//! already free of control characters: see `drivers::sandbox::log_line`),
//! so they are written directly, byte for byte as the default writes them.
//! With colours on, or for any other event, the default formatter runs.

use crate::drivers::GUEST_LOG_EVENT;
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::clock::CachedUtc;

/// The text event format (see the module documentation).
pub struct Lines {
    default: Format<Full, CachedUtc>,
}

impl Default for Lines {
    fn default() -> Self {
        Self {
            default: tracing_subscriber::fmt::format().with_timer(CachedUtc),
        }
    }
}

/// The level as the default format prints it (right-aligned to five).
fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        _ => "ERROR",
    }
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if writer.has_ansi_escapes() || meta.name() != GUEST_LOG_EVENT {
            return self.default.format_event(ctx, writer, event);
        }
        if CachedUtc.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(level(meta.level()))?;
        writer.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = GuestFields {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// Writes a guest line's fields as the default visitor does: the message
/// as it is, then ` name="value"` for each text field.
struct GuestFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl GuestFields<'_, '_> {
    fn pad(&mut self) -> fmt::Result {
        if std::mem::take(&mut self.first) {
            Ok(())
        } else {
            self.writer.write_char(' ')
        }
    }
}

/// Text that `Debug` prints unchanged between its quotes.
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

impl Visit for GuestFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = self.pad().and_then(|()| match field.name() {
            // Control characters were escaped when the line came in.
            "message" => self.writer.write_str(value),
            name if plain(value) => {
                self.writer.write_str(name)?;
                self.writer.write_str("=\"")?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            }
            name => write!(self.writer, "{name}={value:?}"),
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = self.pad().and_then(|()| match field.name() {
            "message" => write!(self.writer, "{value:?}"),
            name => write!(self.writer, "{name}={value:?}"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Logs one guest line (and a host line) inside a span, formatted by
    /// `Lines` or by the default format; returns the text without the
    /// timestamps.
    fn logged(fast: bool, node: &str) -> String {
        let buf = Buf::default();
        let sink = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || sink.clone());
        let subscriber = if fast {
            tracing_subscriber::registry().with(layer.event_format(Lines::default()).boxed())
        } else {
            tracing_subscriber::registry().with(layer.with_timer(CachedUtc).boxed())
        };
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("subtask", task.id = "t-1", n = 3);
            let _entered = span.enter();
            let recorder =
                crate::drivers::guest_log_recorder(crate::drivers::log_sites("sim"), Level::INFO)
                    .expect("INFO is recorded");
            recorder.emit("power_on_node", Some(node), None, "n1 powered on (soft)");
            tracing::info!(action = "x", "a host line");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
            .collect::<Vec<_>>()
            .join("\n")
    }

    use tracing_subscriber::Layer as _;

    #[test]
    fn guest_lines_are_written_as_the_default_format_writes_them() {
        for node in ["n1", "rack \"7\" \\ bay", "nœud-é"] {
            let fast = logged(true, node);
            assert_eq!(fast, logged(false, node), "node {node:?}");
            assert!(
                fast.starts_with(
                    " INFO subtask{task.id=\"t-1\" n=3}: driver::sim: n1 powered on (soft) \
                     action=\"power_on_node\" node="
                ),
                "{fast}"
            );
            assert!(fast.ends_with("a host line action=\"x\""), "{fast}");
        }
    }
}
