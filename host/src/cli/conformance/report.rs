//! The conformance report: one serde shape, printed as text or JSON, and
//! embeddable in a signed driver package (`drydock driver sign
//! --conformance`).

use serde::{Deserialize, Serialize};

/// The custom section of a driver package holding its conformance report.
pub const SECTION: &str = "drydock-conformance";

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The driver keeps this part of the contract.
    Pass,
    /// It does not; `detail` says how.
    Fail,
    /// Not run here; `detail` says why.
    Skip,
}

/// One part of the contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked, e.g. `wrong-password-is-auth`.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// What was seen.
    pub detail: String,
}

/// One action run twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRun {
    /// Drydock's name of the action.
    pub action: String,
    /// `success`, `unsupported`, or `error:<kind>` (first run).
    pub first: String,
    /// The same for the second run (absent when not run again).
    pub second: Option<String>,
    /// Whether the state read after each run was the same (absent when the
    /// action is not implemented).
    pub same_state: Option<bool>,
    /// What differed between the two states, when they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<String>,
    /// Milliseconds of the first run.
    pub ms: u64,
}

/// What the kit found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Version of the kit's contract checks.
    pub kit: u32,
    /// Driver name.
    pub driver: String,
    /// Driver version.
    pub version: String,
    /// SHA-256 of the component tested.
    pub sha256: String,
    /// Whether only actions that change nothing were run.
    pub read_only: bool,
    /// The endpoint the driver was pointed at (`host:port`), if any.
    pub endpoint: Option<String>,
    /// True when no check failed.
    pub passed: bool,
    /// Every check.
    pub checks: Vec<Check>,
    /// Every action run.
    pub actions: Vec<ActionRun>,
    /// How long the kit took, milliseconds.
    pub duration_ms: u64,
}

impl Report {
    /// The report as text: one line per check, then one per action.
    pub fn text(&self) -> String {
        let mut out = format!(
            "conformance of {} {} (sha256 {}){}{}\n",
            self.driver,
            self.version,
            &self.sha256[..self.sha256.len().min(12)],
            if self.read_only { ", read-only" } else { "" },
            self.endpoint
                .as_deref()
                .map(|e| format!(", against {e}"))
                .unwrap_or_default()
        );
        for c in &self.checks {
            let tag = match c.status {
                Status::Pass => "PASS",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            out.push_str(&format!("  {tag}  {:<34} {}\n", c.name, c.detail));
        }
        out.push_str("  actions (run twice):\n");
        for a in &self.actions {
            out.push_str(&format!(
                "    {:<28} {:<22} {}{}\n",
                a.action,
                match &a.second {
                    Some(second) if *second != a.first => format!("{} then {second}", a.first),
                    _ => a.first.clone(),
                },
                match (a.same_state, &a.difference) {
                    (Some(true), _) => "same state".to_owned(),
                    (Some(false), Some(d)) => format!("STATE DIFFERS: {d}"),
                    (Some(false), None) => "STATE DIFFERS".to_owned(),
                    (None, _) => String::new(),
                },
                if a.ms > 0 {
                    format!(" ({} ms)", a.ms)
                } else {
                    String::new()
                }
            ));
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        out.push_str(&format!(
            "{}: {} checks, {failed} failed, {} actions, {:.1} s\n",
            if self.passed { "PASSED" } else { "FAILED" },
            self.checks.len(),
            self.actions.len(),
            self.duration_ms as f64 / 1000.0
        ));
        out
    }
}

/// A passing check.
pub fn pass(name: &str, detail: impl Into<String>) -> Check {
    check(name, Status::Pass, detail)
}

/// A failing check.
pub fn fail(name: &str, detail: impl Into<String>) -> Check {
    check(name, Status::Fail, detail)
}

/// A skipped check.
pub fn skip(name: &str, detail: impl Into<String>) -> Check {
    check(name, Status::Skip, detail)
}

fn check(name: &str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_owned(),
        status,
        detail: detail.into(),
    }
}
