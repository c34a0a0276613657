//! The HTTP client of the Drydock API: one `reqwest::Client` that sends
//! the bearer token with every request, typed calls that read the wire
//! model ([`crate::wire`]), and [`ClientError`], what failed by what the
//! user can do about it.

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;
use uuid::Uuid;

use crate::wire::{
    ActivateBody, Activation, CreateTask, DriverStatus, ErrorBody, EventPage, FleetView,
    Installation, MaintenanceRequest, MaintenanceState, NodeSyncState, NodeView, TaskDict,
};

/// Path prefix of the API.
pub const API_PREFIX: &str = "/api/v1.0";
/// Time limit of one HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed API call, by what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{status}: {message}")]
    Http {
        /// HTTP status.
        status: StatusCode,
        /// The error body's `message` (or the body text, or the reason).
        message: String,
        /// The error body's `retry` flag.
        retry: bool,
    },
    /// The server could not be reached, or did not answer in time.
    #[error("{0}")]
    Connect(String),
    /// The server answered 2xx with something that is not the expected JSON.
    #[error("unexpected response from {url}: {detail}")]
    Decode {
        /// The request URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

impl ClientError {
    /// The exit code for this error: 2 for 401/403 and connection or
    /// protocol failures, 1 for other HTTP errors.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }

    fn exit_status(&self) -> u8 {
        match self {
            ClientError::Http { status, .. }
                if *status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN =>
            {
                2
            }
            ClientError::Http { .. } => 1,
            ClientError::Connect(_) | ClientError::Decode { .. } => 2,
        }
    }

    /// Whether trying again later may help (connection failures, 5xx, or
    /// an error the server marked `retry`).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Http { status, retry, .. } => *retry || status.is_server_error(),
            ClientError::Connect(_) => true,
            ClientError::Decode { .. } => false,
        }
    }

    /// A hint to print after the error, if there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ClientError::Http { status, .. } if *status == StatusCode::UNAUTHORIZED => {
                Some("check --token / DRYDOCK_TOKEN")
            }
            ClientError::Http { status, .. } if *status == StatusCode::FORBIDDEN => {
                Some("the token is not allowed to do this")
            }
            ClientError::Connect(_) => Some("check --url / DRYDOCK_URL and that the server runs"),
            _ => None,
        }
    }
}

/// The [`ClientError`] for an error response: the `message` of a Drydock
/// error body, else the body text, else the status's reason.
pub fn http_error(status: StatusCode, body: &[u8]) -> ClientError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .map(|e| e.message.clone())
        .or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (!text.is_empty()).then(|| truncate(text, 500))
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let retry = parsed.as_ref().is_some_and(|e| e.retry);
    ClientError::Http {
        status,
        message,
        retry,
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The API base (`…/api/v1.0`, no trailing slash) for a server URL.
pub fn api_base(url: &str) -> Result<String> {
    let parsed =
        reqwest::Url::parse(url.trim()).with_context(|| format!("--url `{url}` is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("--url `{url}` must be http:// or https://");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        bail!("--url must not contain user information; use --token / DRYDOCK_TOKEN");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        bail!("--url `{url}` must not have a query or fragment");
    }
    let text = parsed.as_str().trim_end_matches('/');
    if text.ends_with(API_PREFIX) {
        Ok(text.to_owned())
    } else {
        Ok(format!("{text}{API_PREFIX}"))
    }
}

/// A client of the Drydock API: one `reqwest::Client` (30 s timeout) that
/// sends the bearer token with every request.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client of the server at `url` (with or without `/api/v1.0`).
    pub fn new(url: &str, token: &str) -> Result<Self> {
        let base = api_base(url)?;
        let mut auth = header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow!("the token contains characters not allowed in an HTTP header"))?;
        auth.set_sensitive(true);
        let mut headers = header::HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("drydock-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, base })
    }

    /// The API base URL (`…/api/v1.0`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request; returns the JSON body (`null` when empty) of a 2xx
    /// answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        self.send(method, path, query, body).await
    }

    /// Sends one request with an optional JSON body; reads a 2xx answer's
    /// JSON (`null` when empty) as `T`.
    async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        tracing::debug!(%method, %url, "API request");
        let mut req = self.http.request(method, &url);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| transport_error(&url, e))?;
        decode(url, resp).await
    }

    /// `POST /drivers`: uploads a driver component; returns the installation.
    pub async fn upload_driver(&self, bytes: Vec<u8>) -> Result<Installation, ClientError> {
        let url = format!("{}/drivers", self.base);
        let resp = self
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, "application/wasm")
            .body(bytes)
            .send()
            .await
            .map_err(|e| transport_error(&url, e))?;
        decode(url, resp).await
    }

    /// `GET /drivers`: every driver.
    pub async fn list_drivers(&self) -> Result<Vec<DriverStatus>, ClientError> {
        self.send::<(), _>(Method::GET, "/drivers", &[], None).await
    }

    /// `GET /drivers/{name}`: one driver.
    pub async fn get_driver(&self, name: &str) -> Result<DriverStatus, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/drivers/{name}"), &[], None)
            .await
    }

    /// `POST /drivers/{name}/activate`.
    pub async fn activate_driver(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Activation, ClientError> {
        let body = ActivateBody {
            version: version.to_owned(),
        };
        self.send(
            Method::POST,
            &format!("/drivers/{name}/activate"),
            &[],
            Some(&body),
        )
        .await
    }

    /// `POST /drivers/{name}/rollback`.
    pub async fn rollback_driver(&self, name: &str) -> Result<Activation, ClientError> {
        self.send::<(), _>(
            Method::POST,
            &format!("/drivers/{name}/rollback"),
            &[],
            None,
        )
        .await
    }

    /// `POST /tasks`: creates a task; returns the task dict.
    pub async fn create_task(&self, body: &CreateTask) -> Result<TaskDict, ClientError> {
        self.send(Method::POST, "/tasks", &[], Some(body)).await
    }

    /// `GET /tasks?top_level=true[&limit=N]`: the top-level task dicts (the
    /// API lists subtasks too unless asked not to, as Drydock's does).
    pub async fn list_tasks(&self, limit: Option<u32>) -> Result<Vec<TaskDict>, ClientError> {
        let mut query: Vec<(&str, String)> = vec![("top_level", "true".to_owned())];
        query.extend(limit.map(|n| ("limit", n.to_string())));
        self.send::<(), _>(Method::GET, "/tasks", &query, None)
            .await
    }

    /// `GET /tasks/{id}`: one task dict.
    pub async fn get_task(&self, id: Uuid) -> Result<TaskDict, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/tasks/{id}"), &[], None)
            .await
    }

    /// `GET /tasks/{id}?layers=2`: the task and its subtasks, keyed by id
    /// (see [`super::render::Layers`]).
    pub async fn task_layers(&self, id: Uuid) -> Result<Value, ClientError> {
        let query = [("layers", "2".to_owned())];
        self.send::<(), _>(Method::GET, &format!("/tasks/{id}"), &query, None)
            .await
    }

    /// `POST /tasks/{id}/cancel`: the task dict.
    pub async fn cancel_task(&self, id: Uuid) -> Result<TaskDict, ClientError> {
        self.send::<(), _>(Method::POST, &format!("/tasks/{id}/cancel"), &[], None)
            .await
    }

    /// `POST /nodes`: registers a node (a [`crate::wire::NodeRegistration`]
    /// as JSON, possibly from a file); returns the node.
    pub async fn add_node(&self, body: &Value) -> Result<NodeView, ClientError> {
        self.send(Method::POST, "/nodes", &[], Some(body)).await
    }

    /// `GET /nodes`: the nodes.
    pub async fn list_nodes(&self) -> Result<Vec<NodeView>, ClientError> {
        self.send::<(), _>(Method::GET, "/nodes", &[], None).await
    }

    /// `GET /nodes/{node}/events?limit=N[&before=SEQ]`: a page of a node's
    /// timeline, newest first. `node` must be a valid node name (it goes
    /// into the path as is).
    pub async fn node_events(
        &self,
        node: &str,
        limit: i64,
        before: Option<i64>,
    ) -> Result<EventPage, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(before.map(|b| ("before", b.to_string())));
        self.send::<(), _>(Method::GET, &format!("/nodes/{node}/events"), &query, None)
            .await
    }

    /// `GET /nodes/{node}/sync`: a node's synced state.
    pub async fn node_sync(&self, node: &str) -> Result<NodeSyncState, ClientError> {
        self.send::<(), _>(Method::GET, &format!("/nodes/{node}/sync"), &[], None)
            .await
    }

    /// `POST /nodes/{node}/maintenance`: puts a node in maintenance.
    pub async fn set_maintenance(
        &self,
        node: &str,
        reason: &str,
    ) -> Result<MaintenanceState, ClientError> {
        let body = MaintenanceRequest {
            reason: reason.to_owned(),
        };
        self.send(
            Method::POST,
            &format!("/nodes/{node}/maintenance"),
            &[],
            Some(&body),
        )
        .await
    }

    /// `DELETE /nodes/{node}/maintenance`: takes a node out of maintenance.
    pub async fn clear_maintenance(&self, node: &str) -> Result<MaintenanceState, ClientError> {
        self.send::<(), _>(
            Method::DELETE,
            &format!("/nodes/{node}/maintenance"),
            &[],
            None,
        )
        .await
    }

    /// `GET /fleet`: the fleet's sync figures.
    pub async fn fleet(&self) -> Result<FleetView, ClientError> {
        self.send::<(), _>(Method::GET, "/fleet", &[], None).await
    }
}

/// Reads an answer: an error for a non-2xx status, else its JSON (`null`
/// when empty) as `T`.
async fn decode<T: DeserializeOwned>(
    url: String,
    resp: reqwest::Response,
) -> Result<T, ClientError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| transport_error(&url, e))?;
    if !status.is_success() {
        return Err(http_error(status, &bytes));
    }
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        &bytes
    };
    serde_json::from_slice(text).map_err(|e| ClientError::Decode {
        url,
        detail: format!("not the expected JSON ({e})"),
    })
}

/// Describes a transport failure (without repeating reqwest's URL text).
fn transport_error(url: &str, e: reqwest::Error) -> ClientError {
    if e.is_timeout() {
        return ClientError::Connect(format!(
            "request to {url} timed out after {} s",
            REQUEST_TIMEOUT.as_secs()
        ));
    }
    let connect = e.is_connect();
    let e = e.without_url();
    let mut chain = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    if connect {
        let cause = chain.last().cloned().unwrap_or_default();
        ClientError::Connect(format!("cannot connect to {url}: {cause}"))
    } else {
        ClientError::Connect(format!("request to {url} failed: {}", chain.join(": ")))
    }
}
