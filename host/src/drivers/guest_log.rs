//! Guest log lines as `tracing` events with target `driver::<name>`.
//!
//! `tracing` targets are static, so each (driver name, level) pair gets one
//! callsite, created on first use and kept for the life of the process. Names
//! are validated when a driver loads (short, `[a-z0-9-]`), so the set is small.
//! A loaded driver holds its [`Sites`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use tracing::callsite::{Callsite, DefaultCallsite, Identifier};
use tracing::field::{FieldSet, Value};
use tracing::metadata::Kind;
use tracing::{Level, Metadata};

const FIELDS: &[&str] = &["message", "action", "node", "task.id"];

/// The name of every guest log event (the log format writes these lines
/// by a path of its own: `crate::telemetry::lines`).
pub const EVENT: &str = "guest log";

fn level_index(level: Level) -> usize {
    match level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        _ => 4,
    }
}

/// The log callsites of one driver, one per level, each made on its first
/// line. A loaded driver keeps its own ([`sites`]), so a line finds its
/// callsite without a lock or a lookup.
pub struct Sites {
    /// `driver::<name>`.
    target: &'static str,
    by_level: [OnceLock<&'static DefaultCallsite>; 5],
}

impl std::fmt::Debug for Sites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sites")
            .field("target", &self.target)
            .finish()
    }
}

/// The callsites of `driver`: one set per driver name for the life of the
/// process (a driver loaded again, or upgraded, gets the same set).
pub fn sites(driver: &str) -> &'static Sites {
    static SITES: OnceLock<Mutex<HashMap<String, &'static Sites>>> = OnceLock::new();
    let mut all = SITES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(sites) = all.get(driver) {
        return sites;
    }
    let sites: &'static Sites = Box::leak(Box::new(Sites {
        target: Box::leak(format!("driver::{driver}").into_boxed_str()),
        by_level: Default::default(),
    }));
    all.insert(driver.to_owned(), sites);
    sites
}

/// One set per driver name: equal when they are the same driver's.
impl PartialEq for Sites {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
    }
}

impl Eq for Sites {}

impl Sites {
    fn callsite(&self, level: Level) -> &'static DefaultCallsite {
        self.by_level[level_index(level)].get_or_init(|| {
            let late: &'static LateCallsite = Box::leak(Box::new(LateCallsite(OnceLock::new())));
            let meta: &'static Metadata<'static> = Box::leak(Box::new(Metadata::new(
                EVENT,
                self.target,
                level,
                None,
                None,
                None,
                FieldSet::new(FIELDS, Identifier(late)),
                Kind::EVENT,
            )));
            let site: &'static DefaultCallsite = Box::leak(Box::new(DefaultCallsite::new(meta)));
            let _ = late.0.set(site);
            site
        })
    }
}

/// A callsite whose metadata is set right after it is leaked (the metadata
/// must name its own callsite).
struct LateCallsite(OnceLock<&'static DefaultCallsite>);

impl Callsite for LateCallsite {
    fn set_interest(&self, interest: tracing::subscriber::Interest) {
        if let Some(site) = self.0.get() {
            site.set_interest(interest);
        }
    }
    fn metadata(&self) -> &Metadata<'_> {
        self.0.get().expect("callsite set at creation").metadata()
    }
}

/// Where a guest log line goes when it would be recorded.
#[derive(Clone, Copy)]
pub struct Recorder(&'static DefaultCallsite);

/// The recorder for a line at `level` of the driver whose callsites are
/// `sites`, if such a line would be recorded (checked before the line is
/// copied or escaped).
pub fn recorder(sites: &Sites, level: Level) -> Option<Recorder> {
    if !tracing::level_enabled!(level) {
        return None;
    }
    let site = sites.callsite(level);
    if site.register().is_never() {
        return None;
    }
    tracing::dispatcher::get_default(|d| d.enabled(site.metadata())).then_some(Recorder(site))
}

impl Recorder {
    /// Emits one guest log line as a `tracing` event with target
    /// `driver::<driver>`, fields `action`, `node` and `task.id` (the
    /// context a log line gives without the call's span).
    pub fn emit(self, action: &str, node: Option<&str>, task: Option<&str>, message: &str) {
        let meta = self.0.metadata();
        let fields = meta.fields();
        let mut iter = fields.iter();
        let (Some(f_msg), Some(f_action), Some(f_node), Some(f_task)) =
            (iter.next(), iter.next(), iter.next(), iter.next())
        else {
            return;
        };
        let node = node.unwrap_or("-");
        let task = task.unwrap_or("-");
        let values: [(&tracing::field::Field, Option<&dyn Value>); 4] = [
            (&f_msg, Some(&message as &dyn Value)),
            (&f_action, Some(&action as &dyn Value)),
            (&f_node, Some(&node as &dyn Value)),
            (&f_task, Some(&task as &dyn Value)),
        ];
        tracing::Event::dispatch(meta, &fields.value_set(&values));
    }
}
