//! A Redfish client for BMC drivers: the service root, systems, sessions,
//! resets, the boot override and task monitors, over [`crate::http`].
//!
//! [`Redfish::connect`] reads the node's BMC address, port and credentials
//! from the [`Node`], reads the service root, and authenticates with a
//! Redfish session when the service offers them (basic auth otherwise);
//! [`with_redfish`] always deletes the session it opened. Busy answers
//! (`409`, `429`, `503`) are retried with [`Backoff`] within the call's
//! deadline; same-origin redirects are followed (never to another host: the
//! credentials would go along). Errors name the BMC, never the password or
//! the session token.
//!
//! ```no_run
//! # use drydock_sdk::prelude::*;
//! use drydock_sdk::redfish::{self, Options, ResetType};
//!
//! fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
//!     redfish::with_redfish(ctx, node, &Options::default(), |bmc| {
//!         let system = bmc.system(None)?;
//!         bmc.reset(&system, ResetType::On)?;
//!         bmc.wait_power(&system, PowerState::On, Duration::from_secs(2))
//!     })
//! }
//! ```

use serde_json::{Value, json};

use crate::http::{Method, Request, Response};
use crate::retry::Backoff;
use crate::{BootDevice, BootTarget, Ctx, DriverError, Node, OobFacts, PowerState, Result, http};
use std::time::Duration;

/// The service root path.
pub const SERVICE_ROOT: &str = "/redfish/v1/";
/// Redirects followed per request.
const MAX_REDIRECTS: usize = 5;

/// How to reach and authenticate to the BMC.
#[derive(Clone, Debug)]
pub struct Options {
    /// `https` (default) or `http`.
    pub scheme: String,
    /// Use a Redfish session when the service offers them (default), else
    /// basic auth on every request.
    pub sessions: bool,
    /// Bound on one request (also cut to the call's deadline).
    pub request_timeout: Duration,
    /// Attempts of a request answered busy.
    pub busy_attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scheme: "https".into(),
            sessions: true,
            request_timeout: Duration::from_secs(30),
            busy_attempts: 4,
        }
    }
}

impl Options {
    /// The defaults, with the driver settings `scheme` and `auth`
    /// (`basic` turns sessions off) and the node's oob param `scheme`.
    pub fn from_settings(ctx: &Ctx, node: &Node) -> Result<Self> {
        let mut options = Options::default();
        let scheme = param(node, "scheme").or_else(|| ctx.config("scheme"));
        if let Some(scheme) = scheme {
            let scheme = scheme.trim().to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return Err(DriverError::InvalidInput(format!(
                    "scheme `{scheme}` is not usable: use `https` or `http`"
                )));
            }
            options.scheme = scheme;
        }
        options.sessions = ctx.config("auth").as_deref().map(str::trim) != Some("basic");
        Ok(options)
    }
}

/// The node's oob param `key` (`system_id` also matches `system-id`).
pub fn param(node: &Node, key: &str) -> Option<String> {
    node.oob
        .params
        .iter()
        .find(|(k, _)| k == key || k.replace('-', "_") == key)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A `ComputerSystem.Reset` type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetType {
    /// `On`
    On,
    /// `ForceOff`
    ForceOff,
    /// `GracefulShutdown`
    GracefulShutdown,
    /// `ForceRestart`
    ForceRestart,
    /// `GracefulRestart`
    GracefulRestart,
    /// `PowerCycle`
    PowerCycle,
}

impl ResetType {
    /// The Redfish name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetType::On => "On",
            ResetType::ForceOff => "ForceOff",
            ResetType::GracefulShutdown => "GracefulShutdown",
            ResetType::ForceRestart => "ForceRestart",
            ResetType::GracefulRestart => "GracefulRestart",
            ResetType::PowerCycle => "PowerCycle",
        }
    }
}

/// A computer system: its path and the JSON read.
#[derive(Clone, Debug)]
pub struct System {
    /// Its path, e.g. `/redfish/v1/Systems/1`.
    pub path: String,
    /// Its resource.
    pub json: Value,
}

enum Auth {
    None,
    Basic(String, String),
    Session {
        token: String,
        location: Option<String>,
    },
}

/// A connected Redfish service.
pub struct Redfish<'a> {
    ctx: &'a Ctx,
    options: Options,
    origin: String,
    addr: String,
    root: Value,
    auth: Auth,
}

/// Connects to `node`'s BMC, runs `f`, and deletes the session it opened,
/// whatever `f` answered.
pub fn with_redfish<T>(
    ctx: &Ctx,
    node: &Node,
    options: &Options,
    f: impl FnOnce(&Redfish) -> Result<T>,
) -> Result<T> {
    let bmc = Redfish::connect(ctx, node, options)?;
    let result = f(&bmc);
    bmc.logout();
    result
}

impl<'a> Redfish<'a> {
    /// Reads the service root and authenticates with the node's credentials.
    pub fn connect(ctx: &'a Ctx, node: &Node, options: &Options) -> Result<Self> {
        let host = node.oob.address.as_deref().map(str::trim).unwrap_or("");
        if host.is_empty() {
            return Err(DriverError::InvalidInput(format!(
                "node {} has no BMC address (oob.address)",
                node.name
            )));
        }
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let default_port = if options.scheme == "https" { 443 } else { 80 };
        let addr = format!("{host}:{}", node.oob.port.unwrap_or(default_port));
        let mut bmc = Redfish {
            ctx,
            options: options.clone(),
            origin: format!("{}://{addr}", options.scheme),
            addr,
            root: Value::Null,
            auth: Auth::None,
        };
        bmc.root = match bmc.get(SERVICE_ROOT) {
            Ok(root) => root,
            Err(DriverError::Auth(_)) => Value::Null,
            Err(e) => return Err(e),
        };
        if let Some(c) = &node.oob.credentials {
            bmc.auth = bmc.login(&c.username, &c.password)?;
        }
        Ok(bmc)
    }

    /// The service root (`Null` if it needs credentials).
    pub fn service_root(&self) -> &Value {
        &self.root
    }

    /// `host:port` of the BMC, for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn login(&self, username: &str, password: &str) -> Result<Auth> {
        let basic = Auth::Basic(username.into(), password.into());
        let sessions = self.root["Links"]["Sessions"]["@odata.id"].as_str();
        let Some(path) = sessions.filter(|_| self.options.sessions) else {
            return Ok(basic);
        };
        let body = json!({ "UserName": username, "Password": password });
        let response = self.request(Method::Post, path, Some(&body))?;
        let Some(token) = response.header("x-auth-token") else {
            return Ok(basic);
        };
        let location = response.header("location").map(str::to_string);
        Ok(Auth::Session {
            token: token.to_string(),
            location: location.and_then(|l| self.same_origin(&l).ok()),
        })
    }

    /// Deletes the session, if one was opened (best effort).
    pub fn logout(self) {
        if let Auth::Session {
            location: Some(location),
            ..
        } = &self.auth
            && let Err(e) = self.exchange(Method::Delete, location, None)
        {
            self.ctx.warn(format!(
                "could not delete the session on BMC {}: {}",
                self.addr,
                e.message()
            ));
        }
    }

    /// GETs `path` as JSON.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.request(Method::Get, path, None)?.json()
    }

    /// POSTs `body` to `path`; the response (e.g. a task monitor in
    /// `Location`).
    pub fn post(&self, path: &str, body: &Value) -> Result<Response> {
        self.request(Method::Post, path, Some(body))
    }

    /// PATCHes `path` with `body`.
    pub fn patch(&self, path: &str, body: &Value) -> Result<Response> {
        self.request(Method::Patch, path, Some(body))
    }

    /// The members of the `Systems` collection (their paths).
    pub fn systems(&self) -> Result<Vec<String>> {
        let collection = self.root["Systems"]["@odata.id"]
            .as_str()
            .unwrap_or("/redfish/v1/Systems");
        Ok(members(&self.get(collection)?))
    }

    /// The system with `id` (its id or path), else the only one.
    pub fn system(&self, id: Option<&str>) -> Result<System> {
        let systems = self.systems()?;
        let last = |p: &str| {
            p.trim_end_matches('/')
                .rsplit('/')
                .next()
                .map(str::to_string)
        };
        let path = match (id, systems.as_slice()) {
            (Some(id), _) => systems
                .iter()
                .find(|p| last(p).as_deref() == Some(id) || *p == id)
                .cloned()
                .ok_or_else(|| {
                    DriverError::InvalidInput(format!("BMC {} has no system `{id}`", self.addr))
                })?,
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(DriverError::InvalidInput(format!(
                    "BMC {} manages {} systems: set the node's oob param `system_id`",
                    self.addr,
                    systems.len()
                )));
            }
        };
        let json = self.get(&path)?;
        Ok(System { path, json })
    }

    /// Reads the system's power state again.
    pub fn power_state(&self, system: &System) -> Result<PowerState> {
        Ok(power_state(&self.get(&system.path)?))
    }

    /// `ComputerSystem.Reset` with `reset`; waits for the task when the BMC
    /// answers with a task monitor.
    pub fn reset(&self, system: &System, reset: ResetType) -> Result<()> {
        let action = &system.json["Actions"]["#ComputerSystem.Reset"];
        let target = action["target"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/Actions/ComputerSystem.Reset", system.path));
        let allowed = &action["ResetType@Redfish.AllowableValues"];
        if let Some(list) = allowed.as_array()
            && !list.iter().any(|v| v == reset.as_str())
        {
            return Err(DriverError::Unsupported(format!(
                "BMC {} does not offer reset type {}",
                self.addr,
                reset.as_str()
            )));
        }
        let response = self.post(&target, &json!({ "ResetType": reset.as_str() }))?;
        self.follow_task(&response)
    }

    /// Polls the power state every `interval` until it is `want`.
    pub fn wait_power(&self, system: &System, want: PowerState, interval: Duration) -> Result<()> {
        let what = format!("BMC {} to report power {want:?}", self.addr);
        self.ctx.poll_until(interval, &what, || {
            Ok((self.power_state(system)? == want).then_some(()))
        })
    }

    /// Sets the boot override (`Once` or `Continuous`).
    pub fn set_boot(&self, system: &System, target: BootTarget) -> Result<()> {
        let device = match target.device {
            BootDevice::Pxe => "Pxe",
            BootDevice::Disk => "Hdd",
            BootDevice::Cdrom => "Cd",
            BootDevice::BiosSetup => "BiosSetup",
        };
        let enabled = if target.persistent {
            "Continuous"
        } else {
            "Once"
        };
        let boot =
            json!({ "BootSourceOverrideTarget": device, "BootSourceOverrideEnabled": enabled });
        let response = self.patch(&system.path, &json!({ "Boot": boot }))?;
        self.follow_task(&response)
    }

    /// Waits for the task a `202 Accepted` names (its `Location`, a task
    /// monitor), if any; fails if the task ends in `Exception` or `Killed`.
    pub fn follow_task(&self, response: &Response) -> Result<()> {
        match (response.status, response.header("location")) {
            (202, Some(monitor)) => self.wait_task(&self.same_origin(monitor)?).map(drop),
            _ => Ok(()),
        }
    }

    /// Polls a task monitor every second until the task ends; its last
    /// representation.
    pub fn wait_task(&self, monitor: &str) -> Result<Value> {
        let what = format!("task {monitor} on BMC {}", self.addr);
        self.ctx.poll_until(Duration::from_secs(1), &what, || {
            let response = self.request(Method::Get, monitor, None)?;
            let task: Value = response.json().unwrap_or(Value::Null);
            match (response.status, task["TaskState"].as_str()) {
                (202, _) | (_, Some("New" | "Starting" | "Running" | "Pending")) => Ok(None),
                (_, Some(state @ ("Exception" | "Killed" | "Cancelled"))) => Err(
                    DriverError::Failed(format!("{what} ended {state}{}", messages(&task))),
                ),
                _ => Ok(Some(task)),
            }
        })
    }

    /// One request, following same-origin redirects, retrying busy answers;
    /// an error status is an error.
    fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        Backoff::new()
            .attempts(self.options.busy_attempts)
            .first_wait(Duration::from_secs(1))
            .only(|e| matches!(e, DriverError::Busy(_)))
            .on_retry(|e, _, wait| {
                self.ctx.warn(format!(
                    "{}; retrying in {} ms",
                    e.message(),
                    wait.as_millis()
                ))
            })
            .run(self.ctx, |_| {
                let response = self.exchange(method, path, body)?;
                match http::status_error(&format!("BMC {}", self.addr), response.status) {
                    Some(e) => Err(with_detail(e, &response)),
                    None => Ok(response),
                }
            })
    }

    fn exchange(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        let mut path = path.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = Request::new(method, format!("{}{path}", self.origin))
                .header("accept", "application/json")
                .header("odata-version", "4.0")
                .timeout(self.options.request_timeout);
            request = match &self.auth {
                Auth::None => request,
                Auth::Basic(user, password) => request.basic_auth(user, password),
                Auth::Session { token, .. } => request.header("x-auth-token", token),
            };
            if let Some(body) = body {
                request = request.json(body)?;
            }
            let response = request.send()?;
            if !matches!(response.status, 301 | 302 | 307 | 308) {
                return Ok(response);
            }
            let location = response.header("location").unwrap_or_default();
            path = self.same_origin(location)?;
        }
        Err(DriverError::Failed(format!(
            "BMC {} redirected more than {MAX_REDIRECTS} times",
            self.addr
        )))
    }

    /// The path of `location` if it points at this BMC.
    fn same_origin(&self, location: &str) -> Result<String> {
        if location.starts_with('/') {
            return Ok(location.to_string());
        }
        match location.strip_prefix(&self.origin) {
            Some(path) if path.is_empty() || path.starts_with('/') => {
                Ok(format!("/{}", path.trim_start_matches('/')))
            }
            _ => Err(DriverError::Failed(format!(
                "BMC {} pointed elsewhere (`{}`); not followed",
                self.addr,
                location.split('?').next().unwrap_or_default()
            ))),
        }
    }
}

/// The `@odata.id` of each member of a collection.
pub fn members(collection: &Value) -> Vec<String> {
    collection["Members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["@odata.id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `PowerState` as the WIT enum (transitional states are `unknown`).
pub fn power_state(system: &Value) -> PowerState {
    match system["PowerState"].as_str() {
        Some("On") => PowerState::On,
        Some("Off") => PowerState::Off,
        _ => PowerState::Unknown,
    }
}

/// The boot override a system reports, if one is set.
pub fn boot_override(system: &Value) -> Option<BootTarget> {
    let boot = &system["Boot"];
    let persistent = match boot["BootSourceOverrideEnabled"].as_str()? {
        "Once" => false,
        "Continuous" => true,
        _ => return None,
    };
    let device = match boot["BootSourceOverrideTarget"].as_str()? {
        "Pxe" => BootDevice::Pxe,
        "Hdd" => BootDevice::Disk,
        "Cd" => BootDevice::Cdrom,
        "BiosSetup" => BootDevice::BiosSetup,
        _ => return None,
    };
    Some(BootTarget { device, persistent })
}

/// The typed facts of a system resource (`macs` left empty).
pub fn facts(system: &Value) -> OobFacts {
    let text = |key: &str| {
        system[key]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    OobFacts {
        power: power_state(system),
        boot_override: boot_override(system),
        manufacturer: text("Manufacturer"),
        model: text("Model"),
        serial: text("SerialNumber"),
        bios_version: text("BiosVersion"),
        macs: Vec::new(),
    }
}

/// The Redfish `@Message.ExtendedInfo` / task `Messages` of a body, as
/// `: message; message`.
fn messages(body: &Value) -> String {
    let list = body["error"]["@Message.ExtendedInfo"]
        .as_array()
        .or(body["Messages"].as_array());
    let texts: Vec<&str> = list
        .into_iter()
        .flatten()
        .filter_map(|m| m["Message"].as_str())
        .take(3)
        .collect();
    if texts.is_empty() {
        String::new()
    } else {
        format!(": {}", texts.join("; "))
    }
}

/// `error` with the BMC's own explanation appended.
fn with_detail(error: DriverError, response: &Response) -> DriverError {
    let detail = messages(&response.json().unwrap_or(Value::Null));
    let text = format!("{}{detail}", error.message());
    match error {
        DriverError::Auth(_) => DriverError::Auth(text),
        DriverError::Busy(_) => DriverError::Busy(text),
        _ if response.status == 501 => DriverError::Unsupported(text),
        _ => DriverError::Failed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_read_as_facts() {
        let system = json!({
            "PowerState": "On", "Manufacturer": " Contoso ", "Model": "3500", "SerialNumber": "",
            "Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Pxe"}
        });
        let facts = facts(&system);
        assert_eq!(facts.power, PowerState::On);
        assert_eq!(facts.manufacturer.as_deref(), Some("Contoso"));
        assert_eq!(facts.serial, None);
        assert_eq!(
            facts.boot_override,
            Some(BootTarget {
                device: BootDevice::Pxe,
                persistent: false
            })
        );
        let off = json!({"PowerState": "PoweringOn", "Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "Pxe"}});
        assert_eq!(power_state(&off), PowerState::Unknown);
        assert_eq!(boot_override(&off), None);
    }

    #[test]
    fn collections_list_their_members_and_messages_read() {
        let c = json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}, {"x": 1}]});
        assert_eq!(members(&c), vec!["/redfish/v1/Systems/1".to_string()]);
        let e = json!({"error": {"@Message.ExtendedInfo": [{"Message": "Busy now."}]}});
        assert_eq!(messages(&e), ": Busy now.");
        assert_eq!(messages(&Value::Null), "");
    }
}
