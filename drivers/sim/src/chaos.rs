//! Delays and simulated failures, read from the driver's settings at the
//! start of every action ([`begin`]).
//!
//! A failure decision is a pure function of (`seed`, subject, action): the
//! same inputs always fail the same way, so tests can predict them.

use std::time::Duration;

use drydock_sdk::{Ctx, DriverError, Result};

use crate::fnv1a;

/// Every action of the three interfaces, by its Drydock name (as the host
/// and operators name it: `config_port_provisioning` for the WIT's
/// `config-port-provisioning`).
pub const ACTIONS: &[&str] = &[
    "validate_oob_services",
    "config_node_pxe",
    "set_node_boot",
    "power_off_node",
    "power_on_node",
    "power_cycle_node",
    "interrogate_oob",
    "validate_node_services",
    "create_network_template",
    "create_storage_template",
    "create_boot_media",
    "configure_user_credentials",
    "configure_node_provisioner",
    "prepare_hardware_config",
    "identify_node",
    "configure_hardware",
    "interrogate_node",
    "apply_node_networking",
    "apply_node_storage",
    "apply_node_platform",
    "deploy_node",
    "destroy_node",
    "available_images",
    "available_kernels",
    "validate_network_services",
    "interrogate_port",
    "config_port_provisioning",
    "config_port_production",
];

/// Starts `action` on `subject` (a node name, a switch name for
/// `validate_network_services`, `""` for site-wide actions): validates the
/// settings, waits the configured delay, then fails if the settings say so.
pub fn begin(ctx: &Ctx, action: &str, subject: &str) -> Result<()> {
    let settings = Settings::read(ctx)?;
    if ctx.config("count_calls").as_deref() == Some("true") {
        // How often each action ran on each subject (tests of re-runs).
        let key = format!("calls/{action}/{subject}");
        let n: u64 = ctx.kv_get(&key).and_then(|v| v.parse().ok()).unwrap_or(0);
        ctx.kv_set(&key, &(n + 1).to_string())?;
    }
    hold(ctx, action, subject)?;
    let delay = settings.delay_ms(ctx, action)?;
    if delay > 0 {
        ctx.sleep(Duration::from_millis(delay)).map_err(|_| {
            DriverError::Timeout(format!(
                "simulated {delay} ms delay of {action}{} would pass the call's deadline",
                on(subject)
            ))
        })?;
    }
    if let Some(cause) = settings.failure(action, subject) {
        let message = format!("simulated failure of {action}{} ({cause})", on(subject));
        ctx.warn(&message);
        return Err(match settings.retryable {
            true => DriverError::Busy(message),
            false => DriverError::Failed(message),
        });
    }
    drydock_sdk::debug!(ctx, "{action}{}", on(subject));
    Ok(())
}

/// Holds `action` on the `hold_nodes` (when it is the `hold_action`) until
/// the key-value store has the `hold_until` key — e.g. another node's
/// `calls/deploy_node/<node>` with `count_calls` — or the call's deadline
/// passes (then `timeout`). Lets tests order calls across nodes without
/// timing.
fn hold(ctx: &Ctx, action: &str, subject: &str) -> Result<()> {
    if ctx.config("hold_action").as_deref() != Some(action) {
        return Ok(());
    }
    let nodes = ctx.config("hold_nodes").unwrap_or_default();
    if !nodes.split(',').any(|n| n.trim() == subject) {
        return Ok(());
    }
    let Some(until) = ctx.config("hold_until") else {
        return Ok(());
    };
    while ctx.kv_get(&until).is_none() {
        ctx.sleep(Duration::from_millis(50)).map_err(|_| {
            DriverError::Timeout(format!(
                "{action}{} held until `{until}`, which never came",
                on(subject)
            ))
        })?;
    }
    Ok(())
}

/// ` on node <subject>`, or nothing for a site-wide action.
fn on(subject: &str) -> String {
    match subject {
        "" => String::new(),
        name => format!(" on {name}"),
    }
}

/// The failure settings.
#[derive(Debug, Default, PartialEq)]
pub struct Settings {
    /// `fail_rate`.
    pub fail_rate: f64,
    /// `fail_actions`; `None` for all.
    pub fail_actions: Option<Vec<String>>,
    /// `fail_nodes`.
    pub fail_nodes: Vec<String>,
    /// `fail_kind` is `retryable`.
    pub retryable: bool,
    /// `seed`.
    pub seed: u64,
}

impl Settings {
    /// Reads and validates the settings; [`DriverError::InvalidInput`] naming
    /// the key of a bad value.
    pub fn read(ctx: &Ctx) -> Result<Self> {
        let fail_rate = ctx.config_or("fail_rate", 0.0)?;
        if !(0.0..=1.0).contains(&fail_rate) {
            return Err(DriverError::InvalidInput(format!(
                "driver setting `fail_rate` = `{fail_rate}` is invalid: not between 0.0 and 1.0"
            )));
        }
        let fail_actions = ctx.config("fail_actions").map(|v| list(&v));
        if let Some(unknown) = fail_actions
            .iter()
            .flatten()
            .find(|a| !ACTIONS.contains(&a.as_str()))
        {
            return Err(DriverError::InvalidInput(format!(
                "driver setting `fail_actions` names an unknown action `{unknown}`"
            )));
        }
        let retryable = match ctx.config("fail_kind").as_deref().map(str::trim) {
            None | Some("permanent") => false,
            Some("retryable") => true,
            Some(other) => {
                return Err(DriverError::InvalidInput(format!(
                    "driver setting `fail_kind` = `{other}` is invalid: expected `retryable` or `permanent`"
                )));
            }
        };
        Ok(Settings {
            fail_rate,
            fail_actions,
            fail_nodes: ctx
                .config("fail_nodes")
                .map(|v| list(&v))
                .unwrap_or_default(),
            retryable,
            seed: ctx.config_or("seed", 0)?,
        })
    }

    /// `delay_ms.<action>`, else `delay_ms`, else 0.
    fn delay_ms(&self, ctx: &Ctx, action: &str) -> Result<u64> {
        match ctx.config_parse(&format!("delay_ms.{action}"))? {
            Some(ms) => Ok(ms),
            None => ctx.config_or("delay_ms", 0),
        }
    }

    /// Why `action` on `subject` fails, if it does.
    pub fn failure(&self, action: &str, subject: &str) -> Option<&'static str> {
        let applies = match &self.fail_actions {
            None => true,
            Some(actions) => actions.iter().any(|a| a == action),
        };
        if applies && !subject.is_empty() && self.fail_nodes.iter().any(|n| n == subject) {
            return Some("node listed in fail_nodes");
        }
        (applies && self.fail_rate > 0.0 && draw(self.seed, subject, action) < self.fail_rate)
            .then_some("fail_rate")
    }
}

/// A number in `[0, 1)` fixed by (`seed`, `subject`, `action`).
pub fn draw(seed: u64, subject: &str, action: &str) -> f64 {
    let hash = fnv1a(&[&seed.to_le_bytes(), subject.as_bytes(), action.as_bytes()]);
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// A comma list, trimmed, empty items dropped.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}
