//! Captures what a driver logs during the kit's calls: guest log lines are
//! `tracing` events with target `driver::<name>`; a subscriber scoped to the
//! kit's futures keeps their text so the kit can look for secrets in it.

use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Guest log lines seen so far.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    /// A dispatcher that records every `driver::*` event into these logs.
    pub fn dispatch(&self) -> tracing::Dispatch {
        let subscriber = tracing_subscriber::registry().with(Recorder(self.clone()));
        tracing::Dispatch::new(subscriber)
    }

    /// The lines recorded so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

struct Recorder(Logs);

impl<S: Subscriber> Layer<S> for Recorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target().starts_with("driver::")
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if !event.metadata().target().starts_with("driver::") {
            return;
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        if let Ok(mut lines) = (self.0).0.lock() {
            lines.push(text.0);
        }
    }
}

/// Every field of an event, as `name=value` pairs.
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={value} ", field.name());
    }
}
