//! The settings of one call: the operator's driver settings (see the crate
//! docs) and the node's oob parameters, which win where both exist.

use drydock_sdk::prelude::*;

/// How to authenticate to the BMC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// A Redfish session where the BMC offers them, else basic auth.
    Auto,
    /// A Redfish session, or fail.
    Session,
    /// HTTP basic auth on every request.
    Basic,
}

/// Everything configurable, parsed and checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `http` or `https`.
    pub scheme: String,
    /// The system to manage, if set.
    pub system_id: Option<String>,
    /// Authentication.
    pub auth: AuthMode,
    /// Cycle with `ForceRestart`/`PowerCycle` where allowed (else off, on).
    pub cycle_with_reset: bool,
    /// Try `GracefulShutdown` before `ForceOff`.
    pub graceful: bool,
    /// How long to wait for a graceful shutdown.
    pub graceful_timeout: Duration,
    /// Interval between `PowerState` reads.
    pub poll_interval: Duration,
    /// Bound on one HTTP request.
    pub request_timeout: Duration,
    /// Retries of a busy answer.
    pub busy_retries: u32,
    /// Quirks forced by the operator.
    pub vendor: Option<String>,
    /// Keep a session per BMC in the key-value store and reuse it across
    /// calls (default true); `false` opens one per call and deletes it.
    pub session_reuse: bool,
    /// How long a kept session is reused after its last use, seconds
    /// (default 300; keep it under the BMC's `SessionTimeout`).
    pub session_ttl: Duration,
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
        let scheme = param("scheme")
            .or_else(|| ctx.config("scheme"))
            .unwrap_or_else(|| "https".into())
            .to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(DriverError::InvalidInput(format!(
                "scheme `{scheme}` for node {} is not usable: use `https` or `http`",
                node.name
            )));
        }
        let auth = match ctx.config("auth").as_deref().map(str::trim) {
            None | Some("auto") => AuthMode::Auto,
            Some("session") => AuthMode::Session,
            Some("basic") => AuthMode::Basic,
            Some(other) => {
                return Err(DriverError::InvalidInput(format!(
                    "driver setting `auth` = `{other}` is invalid: use auto, session or basic"
                )));
            }
        };
        let cycle_with_reset = match ctx.config("cycle").as_deref().map(str::trim) {
            None | Some("restart") => true,
            Some("off-on") => false,
            Some(other) => {
                return Err(DriverError::InvalidInput(format!(
                    "driver setting `cycle` = `{other}` is invalid: use restart or off-on"
                )));
            }
        };
        Ok(Settings {
            cycle_with_reset,
            scheme,
            system_id: param("system_id").or_else(|| ctx.config("system_id")),
            auth,
            graceful: ctx.config_or("graceful", true)?,
            graceful_timeout: Duration::from_secs(ctx.config_or("graceful_timeout_s", 60)?),
            poll_interval: Duration::from_millis(ctx.config_or("poll_interval_ms", 2000)?),
            request_timeout: Duration::from_secs(ctx.config_or("request_timeout_s", 30)?),
            busy_retries: ctx.config_or("busy_retries", 3)?,
            vendor: ctx.config("vendor").map(|v| v.trim().to_ascii_lowercase()),
            session_reuse: ctx.config_or("session_reuse", true)?,
            session_ttl: Duration::from_secs(ctx.config_or("session_ttl_s", 300)?),
        })
    }
}
