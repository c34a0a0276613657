//! How the kit judges and words what it saw: `info`'s sanity, outcomes as
//! text, where two states differ, the expected error kinds.

use super::TestArgs;
use super::report::{Check, fail, pass};
use crate::drivers::{Action, CallError, DriverErrorKind, EgressGrant, Interface};
use anyhow::{Result, bail};
use serde_json::Value;

/// `info` is usable and says what the driver does.
pub(super) fn info_check(info: &crate::drivers::DriverInfo) -> Check {
    let mut bad = Vec::new();
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        bad.push(format!("name `{}` is not [a-z0-9-]{{1,64}}", info.name));
    }
    if !is_semver(&info.version) {
        bad.push(format!("version `{}` is not semantic", info.version));
    }
    if info.vendor.trim().is_empty() {
        bad.push("vendor is empty".into());
    }
    if info.description.trim().is_empty() {
        bad.push("description is empty".into());
    }
    if info.interfaces.is_empty() {
        bad.push("no interface declared".into());
    }
    let oob = info.interfaces.contains(&Interface::Oob);
    if oob && info.oob_types.is_empty() {
        bad.push("an oob driver claims no oob type".into());
    }
    if !oob && (!info.oob_types.is_empty() || info.outbound.node_bmc) {
        bad.push("oob types or node-BMC access without the oob interface".into());
    }
    for host in &info.outbound.hosts {
        if host.parse::<EgressGrant>().is_err() {
            bad.push(format!("outbound host `{host}` is not a host, IP or CIDR"));
        }
    }
    for action in &info.unsafe_to_repeat {
        match action.parse::<Action>() {
            Ok(a) if info.interfaces.contains(&a.interface()) => {}
            _ => bad.push(format!(
                "unsafe-to-repeat `{action}` is not one of its actions"
            )),
        }
    }
    if bad.is_empty() {
        pass(
            "info",
            format!(
                "{} {} by {}: {}",
                info.name,
                info.version,
                info.vendor,
                info.interfaces
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else {
        fail("info", bad.join("; "))
    }
}

/// The first place two states differ, as `path: before -> after`.
pub(super) fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    if a == b {
        return None;
    }
    if let (Some(x), Some(y)) = (a.as_object(), b.as_object()) {
        let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
        for k in keys {
            let (u, v) = (
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            );
            if let Some(d) = difference(u, v, &format!("{path}/{k}")) {
                return Some(d);
            }
        }
    }
    let cut = |v: &Value| {
        let t = v.to_string();
        if t.len() > 120 {
            format!("{}…", &t[..t.floor_char_boundary(120)])
        } else {
            t
        }
    };
    Some(format!("{path}: {} -> {}", cut(a), cut(b)))
}

/// `success`, `unsupported`, `error:<kind>: <message>` or the host's kind.
pub(super) fn outcome(result: &Result<Value, CallError>) -> String {
    match result {
        Ok(_) => "success".into(),
        Err(e) => describe(e),
    }
}

pub(super) fn describe(e: &CallError) -> String {
    match e {
        CallError::Unsupported { .. } => "unsupported".into(),
        CallError::Driver { error, .. } if error.kind == DriverErrorKind::Unsupported => {
            "unsupported".into()
        }
        CallError::Driver { error, .. } => format!(
            "error:{}: {}",
            serde_json::to_value(error.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            error.message
        ),
        other => format!("{}: {other}", other.kind()),
    }
}

pub(super) fn is_unsupported(result: &Result<Value, CallError>) -> bool {
    matches!(result, Err(e) if describe(e) == "unsupported")
}

/// Passes when `result` is a driver error of `kind`.
pub(super) fn expect_kind(
    name: &str,
    probe: Action,
    result: &Result<Value, CallError>,
    kind: DriverErrorKind,
) -> Check {
    match result {
        Err(e) if matches!(e, CallError::Driver { error, .. } if error.kind == kind) => {
            pass(name, format!("{probe}: {}", describe(e)))
        }
        other => fail(
            name,
            format!(
                "{probe}: expected {}, got {}",
                serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                outcome(other)
            ),
        ),
    }
}

/// `MAJOR.MINOR.PATCH` with an optional `-pre` and `+build` (SemVer 2.0).
pub(super) fn is_semver(version: &str) -> bool {
    let core = version.split('+').next().unwrap_or_default();
    let core = core
        .split_once('-')
        .map_or(core, |(c, pre)| if pre.is_empty() { "" } else { c });
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

pub(super) fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Fails a command line that cannot work.
pub(super) fn check_args(args: &TestArgs) -> Result<()> {
    if args.timeout <= 0.0 || args.slow_deadline <= 0.0 {
        bail!("--timeout and --slow-deadline must be positive");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_semantic() {
        for ok in ["0.1.0", "1.20.3", "1.0.0-rc.1", "1.0.0+build.5"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.x.0", ""] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}
