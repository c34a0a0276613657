//! [`Bmc`]: one call's conversation with a node's Redfish service: where it
//! is, how to authenticate (a Redfish session or basic auth), same-origin
//! redirects, bounded retries of busy answers, and errors that name the BMC.
//!
//! It never logs or returns the password or the session token.
//!
//! # Sessions
//!
//! With `session_reuse` (the default), one session per BMC is kept in the
//! driver's key-value store (`session/<host:port>`: token, URI, account,
//! driver version, last use) and reused by every call until `session_ttl_s`
//! after its last use. A call that finds none takes the login turn
//! (`session-login/<host:port>`, written then read back after a settle
//! time, so concurrent calls agree on one taker) while the others wait for
//! the session it stores: 50 calls at once open one session, not 50, and
//! never fill the BMC's session table. A kept session is logged out when it
//! has expired, when it belongs to another driver version (a driver swap)
//! or account, and when a call runs with `session_reuse = false` (which
//! opens one session per call and deletes it, whatever the outcome). A
//! kept session the BMC no longer accepts (401) is dropped and the call
//! runs once more on a new one.

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
                Some(kept) => {
                    self.auth = kept;
                    self.kept = true;
                    return Ok(());
                }
                // Our turn to log in: the new session is kept at the end.
                None => {
                    let opened = self.open_session(username, password);
                    if !matches!(opened, Ok(Some(_))) {
                        self.ctx.kv_delete(&self.login_key())?;
                    }
                    if let Some(session) = opened? {
                        self.keep(&session, username, password)?;
                        self.auth = session;
                        self.kept = true;
                        return Ok(());
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
        let timeout = self
            .settings
            .request_timeout
            .min(self.ctx.deadline_remaining())
            .max(Duration::from_millis(1));
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

/// How long a call waits for another call's login before logging in itself.
const LOGIN_WAIT: Duration = Duration::from_secs(20);
/// A login turn older than this was abandoned (its call died).
const LOGIN_STALE_MS: u64 = 30_000;
/// How long a call waits after taking the login turn before reading it
/// back (longer than any other call's read-then-write of the turn).
const SETTLE: Duration = Duration::from_millis(25);
/// How often a waiting call looks for the kept session.
const WAIT_STEP: Duration = Duration::from_millis(20);

/// Milliseconds since the Unix epoch (the guest's wall clock).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A short fingerprint of an account (never the password itself).
fn account_tag(username: &str, password: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in username.bytes().chain([0]).chain(password.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

impl Bmc<'_> {
    /// How long a kept session is reused after its last use, ms (read from
    /// the call's settings, so a change applies to sessions kept already).
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.settings.session_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Where this BMC's kept session lives.
    fn session_key(&self) -> String {
        format!("session/{}", self.addr)
    }

    /// Where the turn to log in to this BMC lives.
    fn login_key(&self) -> String {
        format!("session-login/{}", self.addr)
    }

    /// The kept session if it is usable by this call; an unusable one
    /// (expired, another driver version or account) is logged out and
    /// forgotten.
    fn usable_kept(&self, tag: &str) -> Result<Option<Auth>> {
        let Some(kept) = self.ctx.kv_get_json::<Value>(&self.session_key())? else {
            return Ok(None);
        };
        let token = kept["token"].as_str().unwrap_or_default().to_string();
        let location = kept["location"].as_str().map(str::to_string);
        let why = if kept["version"].as_str() != Some(env!("CARGO_PKG_VERSION")) {
            Some("it was opened by another driver version")
        } else if kept["account"].as_str() != Some(tag) {
            Some("the node's credentials changed")
        } else if kept["used_ms"].as_u64().unwrap_or(0) + self.ttl_ms() <= now_ms() {
            Some("it expired")
        } else {
            None
        };
        let session = Auth::Session { token, location };
        match why {
            None => Ok(Some(session)),
            Some(why) => {
                self.ctx.debug(format!(
                    "logging out the kept session of BMC {}: {why}",
                    self.addr
                ));
                self.ctx.kv_delete(&self.session_key())?;
                self.delete_session(&session);
                Ok(None)
            }
        }
    }

    /// The kept session, or `None` when this call has the turn to log in
    /// (it then stores the session it opens). Waits while another call
    /// logs in, at most [`LOGIN_WAIT`].
    fn kept_or_turn(&self, username: &str, password: &str) -> Result<Option<Auth>> {
        let tag = account_tag(username, password);
        // Unique per call: std seeds `RandomState` from wasi:random.
        let me = {
            use std::hash::BuildHasher;
            let random = std::collections::hash_map::RandomState::new().hash_one(now_ms());
            format!("{random:016x}")
        };
        let until = now_ms() + u64::try_from(LOGIN_WAIT.as_millis()).unwrap_or(u64::MAX);
        loop {
            if let Some(session) = self.usable_kept(&tag)? {
                return Ok(Some(session));
            }
            let turn = self.ctx.kv_get_json::<Value>(&self.login_key())?;
            let taken = turn.as_ref().is_some_and(|t| {
                t["by"].as_str() != Some(me.as_str())
                    && t["at_ms"].as_u64().unwrap_or(0) + LOGIN_STALE_MS > now_ms()
            });
            if !taken || now_ms() > until {
                self.ctx
                    .kv_set_json(&self.login_key(), &json!({ "by": me, "at_ms": now_ms() }))?;
                let _ = self.ctx.sleep(SETTLE);
                let turn = self.ctx.kv_get_json::<Value>(&self.login_key())?;
                if turn.is_some_and(|t| t["by"].as_str() == Some(me.as_str())) {
                    return Ok(None);
                }
                continue;
            }
            if self.ctx.sleep(WAIT_STEP).is_err() {
                return Err(DriverError::Timeout(format!(
                    "waited for another call's login to BMC {} past the deadline",
                    self.addr
                )));
            }
        }
    }

    /// Stores `session` as this BMC's kept session and ends the login turn.
    fn keep(&self, session: &Auth, username: &str, password: &str) -> Result<()> {
        let Auth::Session { token, location } = session else {
            return Ok(());
        };
        self.ctx.kv_set_json(
            &self.session_key(),
            &json!({
                "token": token,
                "location": location,
                "account": account_tag(username, password),
                "version": env!("CARGO_PKG_VERSION"),
                "used_ms": now_ms(),
            }),
        )?;
        self.ctx.kv_delete(&self.login_key())
    }

    /// Records a use of the kept session, which pushes its expiry back
    /// (only once half its lifetime has passed, to spare the store a write
    /// per call). A session
    /// this call opened that lost the race to another is deleted instead.
    fn touch_kept(&mut self) -> Result<()> {
        let Auth::Session { token, .. } = &self.auth else {
            return Ok(());
        };
        let Some(mut kept) = self.ctx.kv_get_json::<Value>(&self.session_key())? else {
            return Ok(());
        };
        if kept["token"].as_str() != Some(token.as_str()) {
            self.logout();
            return Ok(());
        }
        if kept["used_ms"].as_u64().unwrap_or(0) + self.ttl_ms() / 2 < now_ms() {
            kept["used_ms"] = json!(now_ms());
            self.ctx.kv_set_json(&self.session_key(), &kept)?;
        }
        Ok(())
    }

    /// Forgets the kept session if it is still the one this call used (a
    /// concurrent call may have replaced it already).
    fn forget_kept(&self) -> Result<()> {
        let Auth::Session { token, .. } = &self.auth else {
            return Ok(());
        };
        let kept = self.ctx.kv_get_json::<Value>(&self.session_key())?;
        if kept.is_some_and(|k| k["token"].as_str() == Some(token.as_str())) {
            self.ctx.kv_delete(&self.session_key())?;
        }
        Ok(())
    }

    /// Logs out and forgets the kept session, if any (a call without
    /// `session_reuse`).
    fn drop_kept(&self) -> Result<()> {
        let Some(kept) = self.ctx.kv_get_json::<Value>(&self.session_key())? else {
            return Ok(());
        };
        self.ctx.kv_delete(&self.session_key())?;
        self.delete_session(&Auth::Session {
            token: kept["token"].as_str().unwrap_or_default().to_string(),
            location: kept["location"].as_str().map(str::to_string),
        });
        Ok(())
    }

    /// Deletes `session` on the BMC with its own token (best effort).
    fn delete_session(&self, session: &Auth) {
        let Auth::Session {
            token,
            location: Some(location),
        } = session
        else {
            return;
        };
        let request = Request::new(Method::Delete, format!("{}{location}", self.origin))
            .header("accept", "application/json")
            .header("x-auth-token", token)
            .timeout(
                self.settings
                    .request_timeout
                    .min(self.ctx.deadline_remaining())
                    .max(Duration::from_millis(1)),
            );
        match request.send() {
            Ok(r) if r.status < 300 || r.status == 401 || r.status == 404 => {}
            Ok(r) => self.ctx.warn(format!(
                "BMC {} answered HTTP {} to a session logout",
                self.addr, r.status
            )),
            Err(e) => self.ctx.warn(format!(
                "could not log out a session on BMC {}: {}",
                self.addr,
                e.message()
            )),
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
