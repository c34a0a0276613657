//! The eAPI client: one JSON-RPC `runCmds` request per batch of CLI commands.
//!
//! Transport, HTTP and eAPI failures become [`DriverError`]s that name the
//! switch; an eAPI error also names the command that failed (the error's
//! `data` array holds one entry per command run, the last one failed) and the
//! switch's own message. Credentials travel only in the `Authorization`
//! header and never appear in a message or a log line.

use drydock_sdk::prelude::*;
use drydock_sdk::retry::Backoff;
use serde_json::{Value, json};

/// Attempts of a request the switch answers busy (HTTP 409, 429, 503).
const BUSY_ATTEMPTS: u32 = 4;

/// One switch, reached over eAPI at `<scheme>://<address>[:<port>]/command-api`.
pub struct Eapi<'a> {
    ctx: &'a Ctx,
    switch: &'a SwitchInfo,
    url: String,
    timeout: Duration,
}

impl<'a> Eapi<'a> {
    /// Reads the driver settings `scheme` (`https` by default, or `http`)
    /// and `request_timeout_s` (30 by default) and addresses `switch`.
    pub fn new(ctx: &'a Ctx, switch: &'a SwitchInfo) -> Result<Self> {
        let scheme = ctx
            .config("scheme")
            .unwrap_or_else(|| "https".into())
            .trim()
            .to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(DriverError::InvalidInput(format!(
                "driver setting `scheme` = `{scheme}` is invalid: expected `https` or `http`"
            )));
        }
        let timeout = Duration::from_secs(ctx.config_or("request_timeout_s", 30u64)?);
        let address = switch.address.trim();
        if address.is_empty() {
            return Err(DriverError::InvalidInput(format!(
                "switch {} has no management address",
                switch.name
            )));
        }
        // A bare IPv6 literal needs brackets in a URL.
        let host = if address.contains(':') && !address.starts_with('[') {
            format!("[{address}]")
        } else {
            address.to_string()
        };
        let url = match switch.port {
            Some(port) => format!("{scheme}://{host}:{port}/command-api"),
            None => format!("{scheme}://{host}/command-api"),
        };
        Ok(Self {
            ctx,
            switch,
            url,
            timeout,
        })
    }

    /// `switch <name> (<address>[:<port>])`, for messages.
    pub fn who(&self) -> String {
        match self.switch.port {
            Some(port) => format!(
                "switch {} ({}:{port})",
                self.switch.name, self.switch.address
            ),
            None => format!("switch {} ({})", self.switch.name, self.switch.address),
        }
    }

    /// Runs `cmds` in one `runCmds` request (JSON format) and returns one
    /// result per command. The switch stops at the first failing command.
    /// A busy answer (the switch ran nothing) is retried with backoff
    /// within the call's deadline.
    pub fn run(&self, cmds: &[String]) -> Result<Vec<Value>> {
        Backoff::new()
            .attempts(BUSY_ATTEMPTS)
            .only(|e| matches!(e, DriverError::Busy(_)))
            .on_retry(|e, _, wait| {
                self.ctx.debug(format!(
                    "{}; retrying in {} ms",
                    e.message(),
                    wait.as_millis()
                ))
            })
            .run(self.ctx, |_| self.run_once(cmds))
    }

    fn run_once(&self, cmds: &[String]) -> Result<Vec<Value>> {
        let body = json!({
            "jsonrpc": "2.0",
            "method": "runCmds",
            "params": { "version": 1, "cmds": cmds, "format": "json" },
            "id": "drydock",
        });
        let mut request = http::Request::post(&self.url)
            .timeout(self.timeout)
            .json(&body)?;
        if let Some(c) = &self.switch.credentials {
            request = request.basic_auth(&c.username, &c.password);
        }
        let response = request.send().map_err(|e| self.context(e))?;
        match response.status {
            401 | 403 => {
                let user = match &self.switch.credentials {
                    Some(c) => format!("the credentials of user `{}`", c.username),
                    None => "the request without credentials".to_string(),
                };
                return Err(DriverError::Auth(format!(
                    "{} refused {user} (HTTP {})",
                    self.who(),
                    response.status
                )));
            }
            status if status >= 400 => {
                let error = http::status_error(&self.who(), status)
                    .unwrap_or_else(|| DriverError::Failed(format!("HTTP {status}")));
                return Err(with_message(
                    error.clone(),
                    format!("{} running {}", error.message(), quote(cmds)),
                ));
            }
            _ => {}
        }
        let answer: Value = response.json().map_err(|e| self.context(e))?;
        if let Some(error) = answer.get("error") {
            return Err(self.command_error(cmds, error));
        }
        match answer.get("result").and_then(Value::as_array) {
            Some(results) if results.len() == cmds.len() => Ok(results.clone()),
            _ => Err(DriverError::Failed(format!(
                "{} answered runCmds without one result per command",
                self.who()
            ))),
        }
    }

    /// The driver error for an eAPI JSON-RPC `error` object.
    fn command_error(&self, cmds: &[String], error: &Value) -> DriverError {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        let data = error.get("data").and_then(Value::as_array);
        let said: Vec<&str> = data
            .and_then(|d| d.last())
            .and_then(|last| last.get("errors"))
            .and_then(Value::as_array)
            .map(|errors| errors.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let message = if said.is_empty() {
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string()
        } else {
            said.join("; ")
        };
        let failed = data
            .filter(|d| !d.is_empty())
            .map(|d| d.len() - 1)
            .and_then(|i| Some((i, cmds.get(i)?)));
        DriverError::Failed(match failed {
            Some((i, cmd)) => format!(
                "{} rejected command {} of {} `{cmd}`: {message} (eAPI error {code})",
                self.who(),
                i + 1,
                cmds.len()
            ),
            None => format!("{} answered eAPI error {code}: {message}", self.who()),
        })
    }

    /// `error` with its message prefixed by the switch's name (the SDK's
    /// messages name only the address).
    fn context(&self, error: DriverError) -> DriverError {
        let message = format!("{}: {}", self.who(), error.message());
        with_message(error, message)
    }
}

/// `error` of the same kind with `message`.
fn with_message(error: DriverError, message: String) -> DriverError {
    match error {
        DriverError::Unreachable(_) => DriverError::Unreachable(message),
        DriverError::Busy(_) => DriverError::Busy(message),
        DriverError::Timeout(_) => DriverError::Timeout(message),
        DriverError::Unsupported(_) => DriverError::Unsupported(message),
        DriverError::Auth(_) => DriverError::Auth(message),
        DriverError::InvalidInput(_) => DriverError::InvalidInput(message),
        DriverError::Failed(_) => DriverError::Failed(message),
    }
}

/// The commands as `` `a`, `b` `` for messages.
fn quote(cmds: &[String]) -> String {
    cmds.iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
