//! [`Bmc`]: one call's conversation with a node's Redfish service: where it
//! is, how to authenticate (a Redfish session or basic auth), same-origin
//! redirects, bounded retries of busy answers, and errors that name the BMC.
//!
//! It never logs or returns the password or the session token.
//!
//! # Sessions
//!
//! With `session_reuse` (the default), one session per BMC is kept in the
//! driver's key-value store and reused by every call until `session_ttl_s`
//! after its last use. A call that finds none takes the turn to log in by
//! a compare-and-swap of the same key, while the others wait for the
//! session it stores ([`session`]): 50 calls at once open one session, not
//! 50, and never fill the BMC's session table. A kept session is logged
//! out when it has expired, when it belongs to another driver version (a
//! driver swap) or account, and when a call runs with `session_reuse =
//! false` (which opens one session per call and deletes it, whatever the
//! outcome). A kept session the BMC no longer accepts (401) is dropped and
//! the call runs once more on a new one.

mod session;

use drydock_sdk::http::{Method, Request, Response};
use drydock_sdk::prelude::*;
use drydock_sdk::retry::Backoff;
use serde_json::{Value, json};

use crate::quirks::{self, Quirks};
use crate::settings::{AuthMode, Settings};

/// The service root, served without authentication.
const ROOT: &str = "/redfish/v1/";
/// Where sessions live when the service root does not say.
const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";
/// Redirects followed per request.
const MAX_REDIRECTS: usize = 5;

/// How requests authenticate.
enum Auth {
    /// No credentials configured.
    None,
    /// HTTP basic auth.
    Basic { username: String, password: String },
    /// A Redfish session: its token and the URI that deletes it.
    Session {
        token: String,
        location: Option<String>,
    },
}

/// A connected, authenticated Redfish service.
pub struct Bmc<'a> {
    /// The call.
    pub ctx: &'a Ctx,
    /// The call's settings.
    pub settings: Settings,
    /// The node's name, for messages.
    pub node: &'a str,
    /// `host:port`, for messages.
    pub addr: String,
    /// The vendor's quirks.
    pub quirks: &'static Quirks,
    /// The service root (`Null` if the BMC refused it without credentials).
    pub root: Value,
    /// `scheme://host:port`.
    origin: String,
    /// The account name, for messages.
    username: Option<String>,
    auth: Auth,
    /// Whether `auth` is the kept session (not to be deleted at the end).
    kept: bool,
    /// While this call holds the login turn: when the turn ends (ms since
    /// the epoch); requests are cut then.
    turn_until_ms: Option<u64>,
}

/// Connects to `node`'s BMC, runs `f`, and closes the session it opened
/// whether `f` succeeded or not.
pub fn with_bmc<T>(ctx: &Ctx, node: &Node, f: impl Fn(&Bmc) -> Result<T>) -> Result<T> {
    let mut bmc = Bmc::connect(ctx, node)?;
    let mut result = f(&bmc);
    if bmc.kept
        && matches!(result, Err(DriverError::Auth(_)))
        && let Some(c) = &node.oob.credentials
    {
        // The BMC ended the kept session (timeout, reboot): a new one.
        bmc.notice(format!(
            "BMC {} no longer accepts the kept session: logging in again",
            bmc.addr
        ));
        bmc.forget_kept()?;
        bmc.auth = Auth::None;
        bmc.kept = false;
        bmc.login(&c.username, &c.password)?;
        result = f(&bmc);
    }
    bmc.finish();
    result
}

impl<'a> Bmc<'a> {
    /// Reads the service root, picks the quirks and authenticates.
    fn connect(ctx: &'a Ctx, node: &'a Node) -> Result<Self> {
        let settings = Settings::load(ctx, node)?;
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
        let port = node
            .oob
            .port
            .unwrap_or(if settings.scheme == "https" { 443 } else { 80 });
        let addr = format!("{host}:{port}");
        let mut bmc = Bmc {
            ctx,
            origin: format!("{}://{addr}", settings.scheme),
            addr,
            settings,
            node: &node.name,
            quirks: &quirks::GENERIC,
            root: Value::Null,
            username: node.oob.credentials.as_ref().map(|c| c.username.clone()),
            auth: Auth::None,
            kept: false,
            turn_until_ms: None,
        };
        bmc.root = match bmc.get(ROOT) {
            Ok((_, root)) => root,
            Err(DriverError::Auth(_)) => Value::Null,
            Err(e) => return Err(e),
        };
        bmc.quirks = quirks::detect(
            bmc.settings.vendor.as_deref(),
            &node.oob.oob_type,
            &bmc.root,
        )?;
        if let Some(c) = &node.oob.credentials {
            bmc.login(&c.username, &c.password)?;
        }
        ctx.debug(format!(
            "BMC {} of {}: quirks {}, {}",
            bmc.addr,
            node.name,
            bmc.quirks.name,
            match bmc.auth {
                Auth::None => "no credentials",
                Auth::Basic { .. } => "basic auth",
                Auth::Session { .. } => "session",
            }
        ));
        Ok(bmc)
    }

    /// Chooses session or basic auth per the settings and the service.
    fn login(&mut self, username: &str, password: &str) -> Result<()> {
        let basic = Auth::Basic {
            username: username.into(),
            password: password.into(),
        };
        let offers_sessions = self.root.get("SessionService").is_some()
            || self.root["Links"].get("Sessions").is_some();
        let sessions = match self.settings.auth {
            AuthMode::Basic => false,
            AuthMode::Auto => offers_sessions,
            AuthMode::Session => true,
        };
        if sessions && self.settings.session_reuse {
            match self.kept_or_turn(username, password)? {
                session::Found::Kept(kept) => {
                    self.auth = kept;
                    self.kept = true;
                    return Ok(());
                }
                // Our turn to log in: the new session is kept in its place.
                session::Found::Turn {
                    turn,
                    until_ms,
                    replaced,
                } => {
                    if let Some(old) = replaced {
                        self.delete_session(&old);
                    }
                    self.turn_until_ms = Some(until_ms);
                    let opened = self.open_session(username, password);
                    self.turn_until_ms = None;
                    match opened {
                        Ok(Some(session)) => {
                            self.kept = self.keep(&turn, &session, username, password)?;
                            self.auth = session;
                            return Ok(());
                        }
                        Ok(None) => self.end_turn(&turn)?,
                        Err(e) => {
                            self.end_turn(&turn)?;
                            return Err(e);
                        }
                    }
                }
            }
        } else if sessions {
            self.drop_kept()?;
        }
        self.auth = match self.settings.auth {
            AuthMode::Basic => basic,
            AuthMode::Auto if !offers_sessions => basic,
            mode => match self.open_session(username, password)? {
                Some(session) => session,
                None if mode == AuthMode::Auto => basic,
                None => {
                    return Err(DriverError::Unsupported(format!(
                        "BMC {} offers no Redfish sessions; set the driver setting `auth` to `basic` or `auto`",
                        self.addr
                    )));
                }
            },
        };
        Ok(())
    }

    /// Creates a session. `Ok(None)` when the service has no sessions (or,
    /// with the quirk, when its session table is full).
    fn open_session(&self, username: &str, password: &str) -> Result<Option<Auth>> {
        let path = self.root["Links"]["Sessions"]["@odata.id"]
            .as_str()
            .unwrap_or(SESSIONS)
            .to_string();
        let body = json!({ "UserName": username, "Password": password });
        let (path, response) = self.exchange(Method::Post, &path, Some(&body))?;
        match response.status {
            200..=299 => {}
            404 | 405 | 501 => return Ok(None),
            400 | 409 | 429 | 503 if self.quirks.session_fallback_to_basic => {
                self.notice(format!(
                    "BMC {} refused a new session (HTTP {}{}): using basic auth",
                    self.addr,
                    response.status,
                    redfish_message(&response)
                ));
                return Ok(None);
            }
            _ => return Err(self.status_error(Method::Post, &path, &response)),
        }
        let Some(token) = response.header("x-auth-token") else {
            self.ctx.warn(format!(
                "BMC {} created a session without an X-Auth-Token: using basic auth",
                self.addr
            ));
            return Ok(None);
        };
        let location = response
            .header("location")
            .map(str::to_string)
            .or_else(|| {
                let body: Value = response.json().ok()?;
                body["@odata.id"].as_str().map(str::to_string)
            })
            .and_then(|l| self.same_origin(&l).ok());
        Ok(Some(Auth::Session {
            token: token.to_string(),
            location,
        }))
    }

    /// Ends the call's use of the BMC: a kept session stays (its expiry
    /// pushed back), any other session is deleted.
    fn finish(&mut self) {
        if self.kept {
            if let Err(e) = self.touch_kept() {
                self.ctx.warn(format!(
                    "could not keep the session of BMC {}: {}",
                    self.addr,
                    e.message()
                ));
            }
            return;
        }
        self.logout();
    }

    /// Deletes the session, if one was opened (best effort).
    fn logout(&mut self) {
        let Auth::Session { location, .. } = &self.auth else {
            return;
        };
        let Some(location) = location.clone() else {
            self.ctx.warn(format!(
                "BMC {} gave no session URI; the session expires on its own",
                self.addr
            ));
            return;
        };
        if let Err(e) = self.exchange(Method::Delete, &location, None) {
            self.ctx.warn(format!(
                "could not delete the session on BMC {}: {}",
                self.addr,
                e.message()
            ));
        }
        self.auth = Auth::None;
    }

    /// GETs `path`; returns the path that answered (after redirects) and the
    /// JSON body.
    pub fn get(&self, path: &str) -> Result<(String, Value)> {
        self.retrying(|| {
            let (path, response) = self.checked(Method::Get, path, None)?;
            Ok((path, response.json()?))
        })
    }

    /// GETs `path`; `Ok(None)` if the BMC answers 404.
    pub fn get_if_exists(&self, path: &str) -> Result<Option<(String, Value)>> {
        self.retrying(|| {
            let (path, response) = self.exchange(Method::Get, path, None)?;
            if response.status == 404 {
                return Ok(None);
            }
            self.check(Method::Get, &path, &response)?;
            Ok(Some((path, response.json()?)))
        })
    }

    /// POSTs `body` to `path`.
    pub fn post(&self, path: &str, body: &Value) -> Result<()> {
        self.retrying(|| self.checked(Method::Post, path, Some(body)).map(drop))
    }

    /// PATCHes `path` with `body`.
    pub fn patch(&self, path: &str, body: &Value) -> Result<()> {
        self.retrying(|| self.checked(Method::Patch, path, Some(body)).map(drop))
    }

    /// Runs `f` again after 1, 2, 4... s while it fails with `busy`,
    /// up to `busy_retries` times and while the deadline allows (the SDK's
    /// [`Backoff`]).
    fn retrying<T>(&self, f: impl Fn() -> Result<T>) -> Result<T> {
        Backoff::new()
            .attempts(self.settings.busy_retries.saturating_add(1))
            .first_wait(Duration::from_secs(1))
            .max_wait(Duration::from_secs(32))
            .without_jitter()
            .only(|e| matches!(e, DriverError::Busy(_)))
            .on_retry(|e, _, wait| {
                self.notice(format!("{}; retrying in {} s", e.message(), wait.as_secs()))
            })
            .run(self.ctx, |_| f())
    }

    /// Something the operator should see on the task: a warning in the log
    /// and a status message.
    fn notice(&self, message: String) {
        self.ctx.warn(&message);
        self.ctx.status(&message, false);
    }

    /// One request with redirects, failing on an error status.
    fn checked(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(String, Response)> {
        let (path, response) = self.exchange(method, path, body)?;
        self.check(method, &path, &response)?;
        Ok((path, response))
    }

    /// One request, following same-origin redirects; any status is `Ok`.
    fn exchange(
        &self,
        mut method: Method,
        path: &str,
        mut body: Option<&Value>,
    ) -> Result<(String, Response)> {
        let mut path = path.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let response = self.send(method, &path, body)?;
            if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
                return Ok((path, response));
            }
            let location = response.header("location").ok_or_else(|| {
                DriverError::Failed(format!(
                    "BMC {} redirected {} {path} without a Location",
                    self.addr,
                    method_name(method)
                ))
            })?;
            path = self.same_origin(location)?;
            if response.status == 303 {
                method = Method::Get;
                body = None;
            }
        }
        Err(DriverError::Failed(format!(
            "BMC {} redirected more than {MAX_REDIRECTS} times from {path}",
            self.addr
        )))
    }

    /// Sends one request with the call's authentication.
    fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        let mut timeout = self
            .settings
            .request_timeout
            .min(self.ctx.deadline_remaining());
        if let Some(until) = self.turn_until_ms {
            // A login ends with its turn (see `session`).
            let left = until.saturating_sub(session::now_ms());
            if left == 0 {
                return Err(DriverError::Timeout(format!(
                    "the login turn for BMC {} ran out",
                    self.addr
                )));
            }
            timeout = timeout.min(Duration::from_millis(left));
        }
        let timeout = timeout.max(Duration::from_millis(1));
        let mut request = Request::new(method, format!("{}{path}", self.origin))
            .header("accept", "application/json")
            .header("odata-version", "4.0")
            .timeout(timeout);
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, password),
            Auth::Session { token, .. } => request.header("x-auth-token", token),
        };
        if let Some(body) = body {
            request = request.json(body)?;
        }
        request.send().map_err(|e| match e {
            DriverError::Unreachable(m) => DriverError::Unreachable(format!(
                "BMC of node {} is unreachable: {m}",
                self.node
            )),
            DriverError::Timeout(m) => DriverError::Timeout(format!(
                "BMC of node {} did not answer in time: {m}",
                self.node
            )),
            DriverError::Failed(m) if m.contains("TLS") => DriverError::Failed(format!(
                "{m}; if the BMC's certificate comes from a private CA, add that CA to the driver's TLS roots"
            )),
            other => other,
        })
    }

    /// The path of a same-origin `location`; see [`same_origin`].
    fn same_origin(&self, location: &str) -> Result<String> {
        same_origin(&self.settings.scheme, &self.addr, location)
    }

    /// `Ok` below 400, else the error the status means.
    fn check(&self, method: Method, path: &str, response: &Response) -> Result<()> {
        if response.status < 400 {
            return Ok(());
        }
        Err(self.status_error(method, path, response))
    }

    /// The error an HTTP status from the BMC means.
    fn status_error(&self, method: Method, path: &str, response: &Response) -> DriverError {
        let status = response.status;
        let what = format!("HTTP {status} to {} {path}", method_name(method));
        let detail = redfish_message(response);
        match status {
            401 | 403 => DriverError::Auth(match &self.username {
                Some(user) => format!(
                    "BMC {} of node {} refused the credentials of user `{user}` ({what}{detail})",
                    self.addr, self.node
                ),
                None => format!(
                    "BMC {} of node {} needs credentials and the node has none ({what})",
                    self.addr, self.node
                ),
            }),
            409 | 429 | 503 => {
                DriverError::Busy(format!("BMC {} is busy ({what}{detail})", self.addr))
            }
            501 => DriverError::Unsupported(format!(
                "BMC {} does not implement this ({what}{detail})",
                self.addr
            )),
            _ => DriverError::Failed(format!("BMC {} answered {what}{detail}", self.addr)),
        }
    }
}

/// The path of `location` (absolute or relative) if it points at the BMC
/// itself (`scheme` and `addr` = `host:port`); redirects elsewhere are not
/// followed, since the credentials would go along.
fn same_origin(scheme: &str, addr: &str, location: &str) -> Result<String> {
    if location.starts_with('/') {
        return Ok(location.to_string());
    }
    if let Some((their_scheme, rest)) = location.split_once("://") {
        let end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let default_port = if their_scheme.eq_ignore_ascii_case("https") {
            ":443"
        } else {
            ":80"
        };
        let same = their_scheme.eq_ignore_ascii_case(scheme)
            && (authority.eq_ignore_ascii_case(addr)
                || format!("{authority}{default_port}").eq_ignore_ascii_case(addr));
        if same {
            return Ok(if path.is_empty() {
                "/".into()
            } else {
                path.into()
            });
        }
        return Err(DriverError::Failed(format!(
            "BMC {addr} redirected to another host ({their_scheme}://{authority}); not followed"
        )));
    }
    Err(DriverError::Failed(format!(
        "BMC {addr} answered with an unusable Location `{location}`"
    )))
}

/// `: <message>` from a Redfish error body, or nothing.
fn redfish_message(response: &Response) -> String {
    let Ok(body) = response.json::<Value>() else {
        return String::new();
    };
    let error = &body["error"];
    error["@Message.ExtendedInfo"][0]["Message"]
        .as_str()
        .or_else(|| error["message"].as_str())
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_redirects_are_followed() {
        let ok = |loc| same_origin("https", "10.0.0.5:443", loc);
        assert_eq!(
            ok("/redfish/v1/Systems/1").unwrap(),
            "/redfish/v1/Systems/1"
        );
        assert_eq!(ok("https://10.0.0.5/redfish/v1/").unwrap(), "/redfish/v1/");
        assert_eq!(ok("https://10.0.0.5:443").unwrap(), "/");
        for bad in ["https://evil.example/x", "http://10.0.0.5/x", "x/y"] {
            assert!(matches!(ok(bad), Err(DriverError::Failed(_))), "{bad}");
        }
    }
}
