//! The settings of one call: the operator's driver settings (see the crate
//! docs) and the node's oob parameters, which win where both exist.

use drydock_ipmi::{CipherSuite, Privilege, SuitePreference};
use drydock_sdk::prelude::*;

/// IPMI's UDP port.
pub const DEFAULT_PORT: u16 = 623;

/// Everything configurable, parsed and checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Cipher suites to propose.
    pub suites: SuitePreference,
    /// Session privilege.
    pub privilege: Privilege,
    /// Wait for each answer.
    pub timeout: Duration,
    /// Sends of a request before the BMC counts as not answering.
    pub attempts: u32,
    /// Retries of a busy completion code.
    pub busy_retries: u32,
    /// Interval between power state reads.
    pub poll_interval: Duration,
    /// Soft shutdown (ACPI) before a hard power off.
    pub graceful: bool,
    /// How long to wait for a soft shutdown.
    pub graceful_timeout: Duration,
    /// Power-cycle with Chassis Control "power cycle" (else off, then on).
    pub cycle_command: bool,
}

impl Settings {
    /// Reads the settings for a call on `node`.
    pub fn load(ctx: &Ctx, node: &Node) -> Result<Self> {
        let param = |key: &str| {
            node.oob
                .params
                .iter()
                .find(|(k, _)| k == key || k.replace('-', "_") == key)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let setting =
            |key: &str| param(key).or_else(|| ctx.config(key).map(|v| v.trim().to_string()));
        let suites = match setting("cipher_suite").as_deref() {
            None | Some("auto") => SuitePreference::Auto,
            Some(id) => match id.parse().ok().and_then(CipherSuite::from_id) {
                Some(suite) => SuitePreference::Only(suite),
                None => {
                    return Err(DriverError::InvalidInput(format!(
                        "cipher_suite `{id}` for node {} is not usable: use auto, 17 or 3",
                        node.name
                    )));
                }
            },
        };
        let privilege = match setting("privilege") {
            None => Privilege::Administrator,
            Some(name) => Privilege::parse(&name).ok_or_else(|| {
                DriverError::InvalidInput(format!(
                    "privilege `{name}` for node {} is not usable: use administrator, operator or user",
                    node.name
                ))
            })?,
        };
        let cycle_command = match ctx.config("cycle").as_deref().map(str::trim) {
            None | Some("cycle") => true,
            Some("off-on") => false,
            Some(other) => {
                return Err(DriverError::InvalidInput(format!(
                    "driver setting `cycle` = `{other}` is invalid: use cycle or off-on"
                )));
            }
        };
        let attempts: u32 = ctx.config_or("attempts", 3)?;
        Ok(Settings {
            suites,
            privilege,
            timeout: Duration::from_millis(ctx.config_or("timeout_ms", 1000)?),
            attempts: attempts.clamp(1, 10),
            busy_retries: ctx.config_or::<u32>("busy_retries", 3)?.min(10),
            poll_interval: Duration::from_millis(ctx.config_or("poll_interval_ms", 1000)?),
            graceful: ctx.config_or("graceful", false)?,
            graceful_timeout: Duration::from_secs(ctx.config_or("graceful_timeout_s", 60)?),
            cycle_command,
        })
    }
}
