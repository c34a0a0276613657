//! A Redfish SessionService in front of the sushy-tools emulator. **This is
//! a fake layer**: sushy-tools 2.2.0 has no sessions and never answers busy,
//! so this gateway adds, from the DMTF Redfish specification (DSP0266 §13.3,
//! "Session management") and the vendor behaviour the driver's quirks
//! describe, what the real emulator lacks; everything else is forwarded to
//! the real emulator unchanged.
//!
//! - `GET /redfish/v1/` needs no credentials and gains `SessionService` and
//!   `Links.Sessions`.
//! - `POST /redfish/v1/SessionService/Sessions` with `{UserName, Password}`
//!   answers 201 with `X-Auth-Token` and `Location`, 401 for wrong
//!   credentials, or iDRAC's `RAC0218` (HTTP 400) when the session table is
//!   full ([`GatewayConfig::max_sessions`]).
//! - `DELETE` of a session's URI with a valid token ends it (204).
//! - Every other request needs a valid `X-Auth-Token` or basic auth with the
//!   right credentials (401 otherwise), may be answered busy by an injected
//!   [`BusyFault`] (503 or 409 with a Redfish error body and `Retry-After`),
//!   and is otherwise forwarded to the emulator, redirects rewritten to the
//!   gateway.
//!
//! The gateway records how each request authenticated ([`Seen`]) and counts
//! sessions created and deleted, so tests can check the driver always logs
//! out.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use drydock::model::{Credentials, Node};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Where sessions live.
const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";

/// What the gateway accepts.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The one account: user name and password.
    pub user: String,
    /// Its password.
    pub password: String,
    /// Open sessions allowed at once; a login beyond them is refused as
    /// iDRAC refuses it (HTTP 400, `RAC0218`).
    pub max_sessions: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            user: "root".into(),
            password: "calvin-pw".into(),
            max_sessions: 8,
        }
    }
}

/// Answer the next `times` requests whose method is `method` and whose path
/// contains `path` with `status` (503 or 409) instead of forwarding them.
#[derive(Clone, Debug)]
pub struct BusyFault {
    /// Method to match.
    pub method: Method,
    /// Substring of the path to match.
    pub path: String,
    /// Status to answer.
    pub status: u16,
    /// Requests left to refuse.
    pub times: usize,
}

/// How one request authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthSeen {
    /// No credentials.
    None,
    /// HTTP basic auth.
    Basic,
    /// A session token.
    Token,
}

/// One request the gateway received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Method.
    pub method: Method,
    /// Path.
    pub path: String,
    /// How it authenticated.
    pub auth: AuthSeen,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct Sessions {
    /// token → session id.
    open: BTreeMap<String, String>,
    next_id: u64,
    created: usize,
    deleted: usize,
    /// The most sessions open at once.
    peak: usize,
    /// Logins refused because the table was full (`RAC0218`).
    refused: usize,
    /// Sessions the BMC itself ended ([`SessionGateway::end_all_sessions`]).
    ended: usize,
}

struct Shared {
    config: GatewayConfig,
    upstream: String,
    client: reqwest::Client,
    sessions: Mutex<Sessions>,
    faults: Mutex<Vec<BusyFault>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running gateway; stops on drop.
pub struct SessionGateway {
    /// Port it listens on (127.0.0.1, plain HTTP).
    pub port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SessionGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SessionGateway {
    /// Starts a gateway in front of the emulator at `127.0.0.1:upstream_port`
    /// (plain HTTP, no authentication of its own).
    pub async fn start(upstream_port: u16, config: GatewayConfig) -> Self {
        let shared = Arc::new(Shared {
            config,
            upstream: format!("http://127.0.0.1:{upstream_port}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            sessions: Mutex::new(Sessions::default()),
            faults: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the session gateway");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SessionGateway {
            port: addr.port(),
            shared,
            task,
        }
    }

    /// A node whose BMC is this gateway: oob type `redfish`, plain HTTP,
    /// the gateway's account.
    pub fn node(&self, name: &str) -> Node {
        let mut node = crate::node(name, "redfish");
        node.oob.address = Some("127.0.0.1".into());
        node.oob.port = Some(self.port);
        node.oob.params.insert("scheme".into(), "http".into());
        node.oob.credentials = Some(Credentials {
            username: self.shared.config.user.clone(),
            password: self.shared.config.password.clone(),
        });
        node
    }

    /// Adds a busy fault.
    pub fn fail(&self, fault: BusyFault) {
        self.shared.faults.lock().unwrap().push(fault);
    }

    /// Sessions open right now.
    pub fn open_sessions(&self) -> usize {
        self.shared.sessions.lock().unwrap().open.len()
    }

    /// The most sessions open at once so far, and the logins refused
    /// because the session table was full.
    pub fn peak_and_refused(&self) -> (usize, usize) {
        let s = self.shared.sessions.lock().unwrap();
        (s.peak, s.refused)
    }

    /// Ends every open session on the BMC's side, as a BMC does when a
    /// session times out or the BMC restarts; their tokens get 401 from now.
    pub fn end_all_sessions(&self) {
        let mut s = self.shared.sessions.lock().unwrap();
        s.ended += s.open.len();
        s.open.clear();
    }

    /// Sessions ended by [`SessionGateway::end_all_sessions`].
    pub fn ended_by_bmc(&self) -> usize {
        self.shared.sessions.lock().unwrap().ended
    }

    /// Sessions created and deleted so far.
    pub fn session_counts(&self) -> (usize, usize) {
        let s = self.shared.sessions.lock().unwrap();
        (s.created, s.deleted)
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_seen(&self) {
        self.shared.seen.lock().unwrap().clear();
    }
}

/// A Redfish error body.
fn redfish_error(status: StatusCode, id: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": id,
            "message": message,
            "@Message.ExtendedInfo": [{ "MessageId": id, "Message": message }],
        }
    });
    (status, axum::Json(body)).into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let auth = authenticate(&shared, &headers);
    let response = route(&shared, &method, &uri, &path, &headers, auth, body).await;
    shared.seen.lock().unwrap().push(Seen {
        method,
        path,
        auth: auth.map_or(AuthSeen::None, |a| a),
        status: response.status().as_u16(),
    });
    response
}

/// How the request authenticates: `None` if it carries nothing, `Some` of
/// the kind when the credentials are valid; invalid credentials count as
/// none.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Option<AuthSeen> {
    if let Some(token) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        return shared
            .sessions
            .lock()
            .unwrap()
            .open
            .contains_key(token)
            .then_some(AuthSeen::Token);
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())?;
    let expected = format!("{}:{}", shared.config.user, shared.config.password);
    (basic == expected).then_some(AuthSeen::Basic)
}

async fn route(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    path: &str,
    headers: &HeaderMap,
    auth: Option<AuthSeen>,
    body: Bytes,
) -> Response {
    if path == "/redfish/v1" && method == Method::GET {
        return service_root(shared).await;
    }
    if path == SESSIONS && method == Method::POST {
        return login(shared, &body);
    }
    if auth.is_none() {
        return redfish_error(
            StatusCode::UNAUTHORIZED,
            "Base.1.8.NoValidSession",
            "There is no valid session established with the implementation.",
        );
    }
    if let Some(id) = path.strip_prefix(&format!("{SESSIONS}/"))
        && method == Method::DELETE
    {
        return logout(shared, id);
    }
    if path == "/redfish/v1/SessionService" {
        return axum::Json(json!({
            "@odata.id": "/redfish/v1/SessionService",
            "Id": "SessionService",
            "ServiceEnabled": true,
            "Sessions": { "@odata.id": SESSIONS },
        }))
        .into_response();
    }
    if let Some(status) = take_fault(shared, method, path) {
        let mut response = if status == 409 {
            redfish_error(
                StatusCode::CONFLICT,
                "Base.1.8.ResourceInUse",
                "The change to the requested resource failed because the resource is in use or in transition.",
            )
        } else {
            redfish_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Base.1.8.ServiceTemporarilyUnavailable",
                "The service is temporarily unavailable.  Retry in 1 seconds.",
            )
        };
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    forward(shared, method, uri, headers, body).await
}

async fn service_root(shared: &Shared) -> Response {
    let upstream = shared
        .client
        .get(format!("{}/redfish/v1/", shared.upstream))
        .send()
        .await;
    let mut root: Value = match upstream {
        Ok(r) => r.json().await.unwrap_or_else(|_| json!({})),
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    root["SessionService"] = json!({ "@odata.id": "/redfish/v1/SessionService" });
    root["Links"]["Sessions"] = json!({ "@odata.id": SESSIONS });
    axum::Json(root).into_response()
}

fn login(shared: &Shared, body: &[u8]) -> Response {
    let creds: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (Some(user), Some(password)) = (creds["UserName"].as_str(), creds["Password"].as_str())
    else {
        return redfish_error(
            StatusCode::BAD_REQUEST,
            "Base.1.8.PropertyMissing",
            "The property UserName or Password is a required property.",
        );
    };
    if user != shared.config.user || password != shared.config.password {
        return redfish_error(
            StatusCode::UNAUTHORIZED,
            "Base.1.8.InsufficientPrivilege",
            "Invalid user name or password.",
        );
    }
    let mut sessions = shared.sessions.lock().unwrap();
    if sessions.open.len() >= shared.config.max_sessions {
        sessions.refused += 1;
        return redfish_error(
            StatusCode::BAD_REQUEST,
            "IDRAC.2.8.RAC0218",
            "The maximum number of user sessions is reached.",
        );
    }
    sessions.next_id += 1;
    sessions.created += 1;
    let id = sessions.next_id.to_string();
    let token = format!("token-{id}-{:x}", rand_bits());
    sessions.open.insert(token.clone(), id.clone());
    sessions.peak = sessions.peak.max(sessions.open.len());
    let location = format!("{SESSIONS}/{id}");
    let mut response = (
        StatusCode::CREATED,
        axum::Json(json!({
            "@odata.id": location,
            "Id": id,
            "UserName": user,
        })),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert("x-auth-token", HeaderValue::from_str(&token).unwrap());
    headers.insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
    response
}

fn logout(shared: &Shared, id: &str) -> Response {
    let mut sessions = shared.sessions.lock().unwrap();
    let Some(token) = sessions
        .open
        .iter()
        .find(|(_, v)| v.as_str() == id)
        .map(|(t, _)| t.clone())
    else {
        return redfish_error(
            StatusCode::NOT_FOUND,
            "Base.1.8.ResourceMissingAtURI",
            "The resource at the URI was not found.",
        );
    };
    sessions.open.remove(&token);
    sessions.deleted += 1;
    StatusCode::NO_CONTENT.into_response()
}

/// Takes one use of the first fault matching the request, if any.
fn take_fault(shared: &Shared, method: &Method, path: &str) -> Option<u16> {
    let mut faults = shared.faults.lock().unwrap();
    let fault = faults
        .iter_mut()
        .find(|f| f.times > 0 && f.method == method && path.contains(&f.path))?;
    fault.times -= 1;
    Some(fault.status)
}

/// Forwards the request to the emulator; redirects point back here.
async fn forward(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let target = format!(
        "{}{}",
        shared.upstream,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut request = shared.client.request(method.clone(), target).body(body);
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let upstream = match request.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = upstream.status();
    let mut out = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::LOCATION] {
        if let Some(v) = upstream.headers().get(&name) {
            let v = v.to_str().unwrap_or_default();
            let v = v.strip_prefix(&shared.upstream).unwrap_or(v);
            if let Ok(v) = HeaderValue::from_str(v) {
                out.insert(name, v);
            }
        }
    }
    let body = upstream.bytes().await.unwrap_or_default();
    (status, out, body).into_response()
}

/// Bits for token uniqueness (not a secret: the gateway is a test peer).
fn rand_bits() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
