//! `drydock task ...` and `drydock node ...`: the REST client of a Drydock API
//! server (Airship Drydock's `/api/v1.0`).
//!
//! - `task create ACTION [--node N]... [--tag T]... [--filter JSON]
//!   [--params JSON] [--design-ref REF] [--wait]`, `task show ID`,
//!   `task list [--limit N]`, `task cancel ID`, `task watch ID`.
//! - `node add NAME --oob-type T ...` (or `node add --file FILE.json`),
//!   `node list`.
//!
//! Every command takes `--url` (`DRYDOCK_URL`), `--token` (`DRYDOCK_TOKEN`)
//! and `--json` (print the server's JSON instead of a table or summary).
//!
//! Exit codes: 0 when the operation succeeded; 1 when it failed (an HTTP
//! error other than 401/403, or a watched task that did not end in
//! `success`); 2 for usage errors, connection failures and 401/403.
//!
//! The token is sent only in the `Authorization` header (marked sensitive),
//! is hidden from `--help` and `Debug`, and is never printed. A node's BMC
//! password is read from `DRYDOCK_OOB_PASSWORD` only, never from a flag.
//!
//! The pure parts (node-filter building, request bodies, the progress of a
//! task from a `?layers=2` response, summaries and tables) are plain
//! functions with unit tests; [`run_task`] and [`run_node`] run a parsed
//! command and are what `drydock` (and end-to-end tests) call.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::{Method, StatusCode, header};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use uuid::Uuid;

/// The server used when neither `--url` nor `DRYDOCK_URL` is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9000";
/// Path prefix of the API.
pub const API_PREFIX: &str = "/api/v1.0";
/// Time limit of one HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many consecutive transient errors `watch` tolerates before giving up.
const WATCH_RETRIES: u32 = 5;
/// How many messages `task show` prints.
const SHOW_MESSAGES: usize = 5;
/// How many error messages are printed per failed node.
const MESSAGES_PER_NODE: usize = 5;

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// Connection and output options shared by `task` and `node` (accepted before
/// or after the subcommand).
#[derive(Clone, Args)]
#[command(next_help_heading = "Server options")]
pub struct ConnArgs {
    /// Base URL of the Drydock API server (`/api/v1.0` is appended).
    #[arg(long, env = "DRYDOCK_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// API token, sent as `Authorization: Bearer` (prefer the DRYDOCK_TOKEN
    /// variable: arguments are visible to other users of the machine).
    /// Required.
    #[arg(long, env = "DRYDOCK_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of a table or summary.
    #[arg(long, global = true)]
    pub json: bool,
}

impl fmt::Debug for ConnArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnArgs")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("json", &self.json)
            .finish()
    }
}

impl ConnArgs {
    /// The HTTP client for these options; fails (a usage error) without a
    /// token or with an unusable URL.
    pub fn client(&self) -> Result<Client> {
        let token = self
            .token
            .as_deref()
            .filter(|t| !t.is_empty())
            .context("no API token: pass --token or set DRYDOCK_TOKEN")?;
        Client::new(&self.url, token)
    }
}

/// `drydock task ...`: create, inspect, cancel and watch tasks.
#[derive(Debug, Args)]
pub struct TaskCommand {
    /// Connection and output options.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The task command.
    #[command(subcommand)]
    pub command: TaskAction,
}

/// The `task` subcommands.
#[derive(Debug, Subcommand)]
pub enum TaskAction {
    /// Create a task; print its id.
    Create(CreateTaskArgs),
    /// Show a task: action, status, result, nodes, last messages.
    Show {
        /// Task id.
        id: Uuid,
    },
    /// List tasks as a table.
    List {
        /// At most this many tasks.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
    },
    /// Cancel a task.
    Cancel {
        /// Task id.
        id: Uuid,
    },
    /// Follow a task until it ends; exit 0 only if it succeeded.
    Watch {
        /// Task id.
        id: Uuid,
        /// Time between polls, in milliseconds.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
    },
}

/// Arguments of `drydock task create`.
#[derive(Debug, Args)]
pub struct CreateTaskArgs {
    /// The action, by its Drydock name (e.g. `deploy_nodes`, `power_cycle_node`).
    pub action: String,
    /// Only this node (repeatable; nodes named by any `--node`).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Only nodes with this tag (repeatable; nodes with any `--tag`). With
    /// `--node`, nodes must match both.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// A Drydock node filter as JSON (or `@FILE`), instead of `--node`/`--tag`.
    #[arg(long, value_name = "JSON", conflicts_with_all = ["nodes", "tags"])]
    pub filter: Option<String>,
    /// Action parameters as a JSON object (or `@FILE`).
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// Reference to the site design.
    #[arg(long, value_name = "REF")]
    pub design_ref: Option<String>,
    /// Then follow the task like `task watch` (and exit like it).
    #[arg(long)]
    pub wait: bool,
    /// With `--wait`: time between polls, in milliseconds.
    #[arg(long, default_value_t = 500, requires = "wait")]
    pub interval_ms: u64,
}

/// `drydock node ...`: register and list nodes.
#[derive(Debug, Args)]
pub struct NodeCommand {
    /// Connection and output options.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The node command.
    #[command(subcommand)]
    pub command: NodeAction,
}

/// The `node` subcommands.
#[derive(Debug, Subcommand)]
pub enum NodeAction {
    /// Register a node (from flags, or a JSON file with `--file`).
    Add(Box<AddNodeArgs>),
    /// List nodes as a table.
    List,
}

/// Arguments of `drydock node add`. The BMC password is read from the
/// `DRYDOCK_OOB_PASSWORD` variable only.
#[derive(Debug, Args)]
pub struct AddNodeArgs {
    /// Node name.
    #[arg(required_unless_present = "file")]
    pub name: Option<String>,
    /// Send this node JSON file (`-` for stdin) as is, instead of the flags.
    #[arg(long, value_name = "FILE.json", conflicts_with_all = [
        "name", "oob_type", "oob_address", "oob_port", "credential", "boot_mac",
        "tags", "labels", "rack",
    ])]
    pub file: Option<PathBuf>,
    /// Out-of-band (BMC) type, e.g. `redfish`, `ipmi`, `sim`.
    #[arg(long, value_name = "T", required_unless_present = "file")]
    pub oob_type: Option<String>,
    /// BMC address.
    #[arg(long, value_name = "A")]
    pub oob_address: Option<String>,
    /// BMC port.
    #[arg(long, value_name = "P")]
    pub oob_port: Option<u16>,
    /// Name of the secret holding the BMC credentials.
    #[arg(long, value_name = "NAME")]
    pub credential: Option<String>,
    /// PXE boot MAC address.
    #[arg(long, value_name = "M")]
    pub boot_mac: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// A label (repeatable).
    #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Rack name.
    #[arg(long, value_name = "R")]
    pub rack: Option<String>,
    /// BMC user name; sends `credentials` with the password from the
    /// DRYDOCK_OOB_PASSWORD variable (also with `--file`).
    #[arg(long, value_name = "U", env = "DRYDOCK_OOB_USER")]
    pub username: Option<String>,
}

/// Parses `KEY=VALUE` (for `--label`).
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

// ---------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------

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
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (!text.is_empty()).then(|| truncate(text, 500))
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let retry = parsed
        .as_ref()
        .and_then(|v| v.get("retry"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
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
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport_error(&url, e))?;
        if !status.is_success() {
            return Err(http_error(status, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url,
            detail: format!("not JSON ({e})"),
        })
    }

    /// `POST /drivers`: uploads a driver component; returns the installation.
    pub async fn upload_driver(&self, bytes: Vec<u8>) -> Result<Value, ClientError> {
        let url = format!("{}/drivers", self.base);
        let resp = self
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, "application/wasm")
            .body(bytes)
            .send()
            .await
            .map_err(|e| transport_error(&url, e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| transport_error(&url, e))?;
        if !status.is_success() {
            return Err(http_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
            url,
            detail: format!("not JSON ({e})"),
        })
    }

    /// `POST /tasks`: creates a task from a [`task_body`]; returns the task dict.
    pub async fn create_task(&self, body: &Value) -> Result<Value, ClientError> {
        self.call(Method::POST, "/tasks", &[], Some(body)).await
    }

    /// `GET /tasks?top_level=true[&limit=N]`: the top-level task dicts (the
    /// API lists subtasks too unless asked not to, as Drydock's does).
    pub async fn list_tasks(&self, limit: Option<u32>) -> Result<Value, ClientError> {
        let mut query: Vec<(&str, String)> = vec![("top_level", "true".to_owned())];
        query.extend(limit.map(|n| ("limit", n.to_string())));
        self.call(Method::GET, "/tasks", &query, None).await
    }

    /// `GET /tasks/{id}`: one task dict.
    pub async fn get_task(&self, id: Uuid) -> Result<Value, ClientError> {
        self.call(Method::GET, &format!("/tasks/{id}"), &[], None)
            .await
    }

    /// `GET /tasks/{id}?layers=2`: the task and its subtasks, keyed by id
    /// (see [`Layers`]).
    pub async fn task_layers(&self, id: Uuid) -> Result<Value, ClientError> {
        let query = [("layers", "2".to_owned())];
        self.call(Method::GET, &format!("/tasks/{id}"), &query, None)
            .await
    }

    /// `POST /tasks/{id}/cancel`: the task dict.
    pub async fn cancel_task(&self, id: Uuid) -> Result<Value, ClientError> {
        self.call(Method::POST, &format!("/tasks/{id}/cancel"), &[], None)
            .await
    }

    /// `POST /nodes`: registers a node; returns the node dict.
    pub async fn add_node(&self, body: &Value) -> Result<Value, ClientError> {
        self.call(Method::POST, "/nodes", &[], Some(body)).await
    }

    /// `GET /nodes`: the node dicts.
    pub async fn list_nodes(&self) -> Result<Value, ClientError> {
        self.call(Method::GET, "/nodes", &[], None).await
    }
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

// ---------------------------------------------------------------------------
// Task dicts
// ---------------------------------------------------------------------------

/// `null` as the type's default (the server may send `null` for empty lists).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Any scalar as text (`null` as `None`), for timestamps and contexts.
fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        v => Some(v.to_string()),
    })
}

/// A Drydock task dict, as far as the client reads it (missing fields take
/// their defaults; unknown ones are ignored).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Task {
    /// Task id.
    #[serde(deserialize_with = "nullable")]
    pub task_id: String,
    /// Action name.
    #[serde(deserialize_with = "nullable")]
    pub action: String,
    /// Parent task, for subtasks.
    #[serde(deserialize_with = "opt_text")]
    pub parent_task_id: Option<String>,
    /// Subtask ids.
    #[serde(deserialize_with = "nullable")]
    pub subtask_id_list: Vec<String>,
    /// `queued`, `running`, `complete` or `terminated`.
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    /// The node a subtask works on.
    #[serde(deserialize_with = "opt_text")]
    pub node_name: Option<String>,
    /// Site design reference.
    #[serde(deserialize_with = "opt_text")]
    pub design_ref: Option<String>,
    /// Result.
    #[serde(deserialize_with = "nullable")]
    pub result: TaskResult,
    /// Creation time.
    #[serde(deserialize_with = "opt_text")]
    pub created: Option<String>,
    /// Creator.
    #[serde(deserialize_with = "opt_text")]
    pub created_by: Option<String>,
    /// Last update time.
    #[serde(deserialize_with = "opt_text")]
    pub updated: Option<String>,
    /// Termination (cancel) time.
    #[serde(deserialize_with = "opt_text")]
    pub terminated: Option<String>,
    /// Who terminated it.
    #[serde(deserialize_with = "opt_text")]
    pub terminated_by: Option<String>,
}

/// A task's `result`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct TaskResult {
    /// `incomplete`, `success`, `partial_success` or `failure`.
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    /// Message.
    #[serde(deserialize_with = "opt_text")]
    pub message: Option<String>,
    /// Reason.
    #[serde(deserialize_with = "opt_text")]
    pub reason: Option<String>,
    /// Nodes (or items) that succeeded.
    #[serde(deserialize_with = "nullable")]
    pub successes: Vec<String>,
    /// Nodes (or items) that failed.
    #[serde(deserialize_with = "nullable")]
    pub failures: Vec<String>,
    /// Message details.
    #[serde(deserialize_with = "nullable")]
    pub details: ResultDetails,
}

/// A result's `details`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ResultDetails {
    /// Number of error messages.
    #[serde(rename = "errorCount", deserialize_with = "nullable")]
    pub error_count: u64,
    /// Messages, oldest first.
    #[serde(rename = "messageList", deserialize_with = "nullable")]
    pub message_list: Vec<TaskMessage>,
}

/// One entry of a result's `messageList`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct TaskMessage {
    /// Text.
    #[serde(deserialize_with = "nullable")]
    pub message: String,
    /// Whether it reports an error.
    #[serde(deserialize_with = "nullable")]
    pub error: bool,
    /// What `context` names (e.g. `node`).
    #[serde(deserialize_with = "opt_text")]
    pub context_type: Option<String>,
    /// The node (or other item) concerned.
    #[serde(deserialize_with = "opt_text")]
    pub context: Option<String>,
    /// Time stamp.
    #[serde(deserialize_with = "opt_text")]
    pub ts: Option<String>,
}

impl Task {
    /// Reads a task dict.
    pub fn from_value(v: &Value) -> Result<Task> {
        Task::deserialize(v).context("the server sent a task that is not a Drydock task dict")
    }

    /// Whether the task has ended (`complete` or `terminated`).
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "complete" | "terminated")
    }

    /// Whether the task ended with result `success`.
    pub fn succeeded(&self) -> bool {
        self.status == "complete" && self.result.status == "success"
    }

    /// What the task worked on: its node, else its id.
    fn label(&self) -> String {
        self.node_name
            .clone()
            .unwrap_or_else(|| self.task_id.clone())
    }
}

/// A task with its subtasks, from `GET /tasks/{id}?layers=2`
/// (`{"init_task_id": id, "<id>": task, "<subtask id>": subtask, ...}`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layers {
    /// The task asked for, as sent (for `--json`).
    pub raw: Value,
    /// The task asked for.
    pub task: Task,
    /// Its subtasks present in the response (in `subtask_id_list` order,
    /// then any other task naming it as parent).
    pub subtasks: Vec<Task>,
    /// How many subtasks it has (those listed but absent count as unfinished).
    pub total: usize,
}

impl Layers {
    /// Reads a layers response. A plain task dict (a server ignoring
    /// `layers`) is accepted as a task whose subtasks are all absent.
    pub fn from_value(v: &Value) -> Result<Layers> {
        let obj = v
            .as_object()
            .context("the server sent a task layers response that is not an object")?;
        let Some(init) = obj.get("init_task_id") else {
            let task = Task::from_value(v)?;
            let total = task.subtask_id_list.len();
            return Ok(Layers {
                raw: v.clone(),
                task,
                subtasks: Vec::new(),
                total,
            });
        };
        let init = init
            .as_str()
            .context("init_task_id of the layers response is not a string")?;
        let raw = obj
            .get(init)
            .with_context(|| format!("the layers response lacks the task {init}"))?
            .clone();
        let task = Task::from_value(&raw)?;
        let mut seen = BTreeSet::new();
        let mut subtasks = Vec::new();
        for id in &task.subtask_id_list {
            if seen.insert(id.clone())
                && let Some(s) = obj.get(id)
            {
                subtasks.push(Task::from_value(s)?);
            }
        }
        for (key, s) in obj {
            if key == "init_task_id" || key == init || seen.contains(key) || !s.is_object() {
                continue;
            }
            let s = Task::from_value(s)?;
            if s.parent_task_id.as_deref() == Some(init) {
                seen.insert(key.clone());
                subtasks.push(s);
            }
        }
        let total = seen.len();
        Ok(Layers {
            raw,
            task,
            subtasks,
            total,
        })
    }
}

/// How far a task has got, computed from its [`Layers`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The task's status.
    pub status: String,
    /// The task's result status.
    pub result: String,
    /// Number of subtasks.
    pub total: u64,
    /// Number of finished subtasks (all of them once the task has ended).
    pub finished: u64,
    /// Nodes (or subtasks) that succeeded, sorted.
    pub succeeded: Vec<String>,
    /// Nodes (or subtasks) that failed, sorted.
    pub failed: Vec<String>,
    /// Whether the task has ended.
    pub done: bool,
}

/// The nodes a finished subtask succeeded and failed on.
fn outcome(s: &Task) -> (Vec<String>, Vec<String>) {
    let r = &s.result;
    if !r.successes.is_empty() || !r.failures.is_empty() {
        return (r.successes.clone(), r.failures.clone());
    }
    if s.succeeded() {
        (vec![s.label()], Vec::new())
    } else {
        (Vec::new(), vec![s.label()])
    }
}

impl Progress {
    /// Counts finished subtasks and the nodes that succeeded or failed (also
    /// those the task's own result names).
    pub fn of(l: &Layers) -> Progress {
        let mut ok = BTreeSet::new();
        let mut bad = BTreeSet::new();
        let mut finished = 0u64;
        for s in l.subtasks.iter().filter(|s| s.is_finished()) {
            finished += 1;
            let (a, b) = outcome(s);
            ok.extend(a);
            bad.extend(b);
        }
        ok.extend(l.task.result.successes.iter().cloned());
        bad.extend(l.task.result.failures.iter().cloned());
        let done = l.task.is_finished();
        let total = l.total as u64;
        Progress {
            status: l.task.status.clone(),
            result: l.task.result.status.clone(),
            total,
            finished: if done { total } else { finished.min(total) },
            succeeded: ok.into_iter().collect(),
            failed: bad.into_iter().collect(),
            done,
        }
    }

    /// The progress bar's message, e.g. `2 succeeded, 1 failed (running)`.
    pub fn message(&self) -> String {
        format!(
            "{} succeeded, {} failed ({})",
            self.succeeded.len(),
            self.failed.len(),
            self.status
        )
    }

    /// One line for a non-terminal, e.g.
    /// `running: 3/10 subtasks finished, 2 succeeded, 1 failed`.
    pub fn line(&self) -> String {
        format!(
            "{}: {}/{} subtasks finished, {} succeeded, {} failed",
            self.status,
            self.finished,
            self.total,
            self.succeeded.len(),
            self.failed.len()
        )
    }
}

/// A node (or subtask) that failed, with its error messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    /// Node name (or subtask id).
    pub node: String,
    /// The subtask's result message, then its error messages (deduplicated,
    /// the last few).
    pub messages: Vec<String>,
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    let s = s.trim();
    if !s.is_empty() && !v.iter().any(|m| m == s) {
        v.push(s.to_owned());
    }
}

fn keep_last(mut v: Vec<String>, n: usize) -> Vec<String> {
    if v.len() > n {
        v.drain(..v.len() - n);
    }
    v
}

/// The failed nodes of a task: each failed finished subtask's node with its
/// result message and error messages, then any node only the task's own
/// result lists as failed (with the task's error messages about it).
pub fn failures(l: &Layers) -> Vec<Failure> {
    let mut out: Vec<Failure> = Vec::new();
    for s in l.subtasks.iter().filter(|s| s.is_finished()) {
        let (_, bad) = outcome(s);
        if bad.is_empty() {
            continue;
        }
        let mut messages = Vec::new();
        if let Some(m) = &s.result.message {
            push_unique(&mut messages, m);
        }
        for m in s.result.details.message_list.iter().filter(|m| m.error) {
            push_unique(&mut messages, &m.message);
        }
        let messages = keep_last(messages, MESSAGES_PER_NODE);
        for node in bad {
            if !out.iter().any(|f| f.node == node) {
                out.push(Failure {
                    node,
                    messages: messages.clone(),
                });
            }
        }
    }
    for node in &l.task.result.failures {
        if out.iter().any(|f| &f.node == node) {
            continue;
        }
        let mut messages = Vec::new();
        for m in l.task.result.details.message_list.iter() {
            if m.error && m.context.as_deref() == Some(node.as_str()) {
                push_unique(&mut messages, &m.message);
            }
        }
        out.push(Failure {
            node: node.clone(),
            messages: keep_last(messages, MESSAGES_PER_NODE),
        });
    }
    out
}

/// `2024-05-01T12:00:00.123456Z` as `2024-05-01 12:00:00`; anything else as is.
fn short_time(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => ts.to_owned(),
    }
}

fn or_dash(s: Option<&str>) -> &str {
    match s {
        Some(s) if !s.is_empty() => s,
        _ => "-",
    }
}

/// The result as one phrase: `failure: reason text` or `success`.
fn result_phrase(t: &Task) -> String {
    let status = or_dash(Some(&t.result.status));
    match t.result.message.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => format!("{status}: {m}"),
        None => status.to_owned(),
    }
}

fn format_failures(out: &mut String, f: &[Failure]) {
    if f.is_empty() {
        return;
    }
    out.push_str("failed nodes:\n");
    for f in f {
        match f.messages.split_first() {
            None => out.push_str(&format!("  {}\n", f.node)),
            Some((first, rest)) => {
                out.push_str(&format!("  {}: {first}\n", f.node));
                for m in rest {
                    out.push_str(&format!("    {m}\n"));
                }
            }
        }
    }
}

/// The human summary of a task (`task show`): action, status, result, nodes,
/// failures with their messages, and the last few messages of the task and
/// its subtasks.
pub fn format_summary(l: &Layers) -> String {
    let t = &l.task;
    let p = Progress::of(l);
    let mut rows: Vec<(&str, String)> = vec![
        ("task", t.task_id.clone()),
        ("action", t.action.clone()),
        ("status", t.status.clone()),
        ("result", result_phrase(t)),
    ];
    if let Some(r) = t.result.reason.as_deref().filter(|r| !r.is_empty()) {
        rows.push(("reason", r.to_owned()));
    }
    if let Some(d) = &t.design_ref {
        rows.push(("design", d.clone()));
    }
    let when_by = |ts: &Option<String>, by: &Option<String>| {
        let mut s = or_dash(ts.as_deref()).to_owned();
        if let Some(ts) = ts {
            s = short_time(ts);
        }
        if let Some(by) = by.as_deref().filter(|b| !b.is_empty()) {
            s.push_str(&format!(" by {by}"));
        }
        s
    };
    rows.push(("created", when_by(&t.created, &t.created_by)));
    if t.updated.is_some() {
        rows.push(("updated", when_by(&t.updated, &None)));
    }
    if t.terminated.is_some() || t.terminated_by.is_some() {
        rows.push(("terminated", when_by(&t.terminated, &t.terminated_by)));
    }
    rows.push(("subtasks", format!("{} ({} finished)", p.total, p.finished)));
    rows.push(("succeeded", list_or_none(&p.succeeded)));
    rows.push(("failed", list_or_none(&p.failed)));

    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &rows {
        out.push_str(&format!("{k:<width$}  {v}\n"));
    }
    format_failures(&mut out, &failures(l));

    let mut messages: Vec<&TaskMessage> = t.result.details.message_list.iter().collect();
    for s in &l.subtasks {
        messages.extend(s.result.details.message_list.iter());
    }
    messages.sort_by(|a, b| a.ts.cmp(&b.ts));
    if !messages.is_empty() {
        let n = messages.len();
        let shown = &messages[n.saturating_sub(SHOW_MESSAGES)..];
        if shown.len() < n {
            out.push_str(&format!("messages (last {} of {n}):\n", shown.len()));
        } else {
            out.push_str("messages:\n");
        }
        for m in shown {
            let level = if m.error { "error" } else { "info " };
            let ts = m.ts.as_deref().map(short_time).unwrap_or_default();
            let ctx = m
                .context
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(|c| format!("{c}: "))
                .unwrap_or_default();
            out.push_str(&format!("  {ts} {level} {ctx}{}\n", m.message));
        }
    }
    out
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_owned()
    } else {
        v.join(", ")
    }
}

/// What `watch` prints when the task has ended: its result, the counts, and
/// each failed node with its error messages.
pub fn format_report(l: &Layers) -> String {
    let t = &l.task;
    let p = Progress::of(l);
    let mut out = format!(
        "task {} {}: {}\n{} succeeded, {} failed\n",
        t.task_id,
        or_dash(Some(&t.status)),
        result_phrase(t),
        p.succeeded.len(),
        p.failed.len()
    );
    format_failures(&mut out, &failures(l));
    out
}

/// Left-aligned columns separated by two spaces (the last one unpadded).
pub fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut l = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 < n {
                let pad = widths[i] - c.chars().count();
                l.push_str(c);
                l.push_str(&" ".repeat(pad + 2));
            } else {
                l.push_str(c);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).take(headers.len()).collect());
    }
    out
}

/// The `task list` table: id, action, status, result, created.
pub fn format_task_table(tasks: &[Task]) -> String {
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.task_id.clone(),
                t.action.clone(),
                t.status.clone(),
                or_dash(Some(&t.result.status)).to_owned(),
                t.created.as_deref().map(short_time).unwrap_or("-".into()),
            ]
        })
        .collect();
    format_table(&["ID", "ACTION", "STATUS", "RESULT", "CREATED"], &rows)
}

/// A node dict's field as text (`-` when absent or null).
fn node_field(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return "-".into(),
        }
    }
    match cur {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        // A boot override object: show its device.
        Value::Object(o) if o.contains_key("device") => node_field(cur, &["device"]),
        other => other.to_string(),
    }
}

/// The `node list` table: name, oob type, address, power, boot, tags.
pub fn format_node_table(nodes: &[Value]) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let mut address = node_field(n, &["oob", "address"]);
            if let Some(port) = n.pointer("/oob/port").filter(|p| !p.is_null()) {
                address = format!("{address}:{port}");
            }
            let tags = n
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .map(|t| {
                            t.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| t.to_string())
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            vec![
                node_field(n, &["name"]),
                node_field(n, &["oob", "type"]),
                address,
                node_field(n, &["power_state"]),
                node_field(n, &["boot_device"]),
                list_or_none(&tags),
            ]
        })
        .collect();
    format_table(&["NAME", "OOB", "ADDRESS", "POWER", "BOOT", "TAGS"], &rows)
}

// ---------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------

/// Reads a JSON argument given inline or as `@FILE`.
fn json_arg(flag: &str, text: &str) -> Result<Value> {
    let owned;
    let text = match text.strip_prefix('@') {
        Some(path) => {
            owned = std::fs::read_to_string(path)
                .with_context(|| format!("reading --{flag} from {path}"))?;
            owned.as_str()
        }
        None => text,
    };
    serde_json::from_str(text).with_context(|| format!("--{flag} is not valid JSON"))
}

/// The Drydock node filter for `task create`: `raw` (`--filter`, JSON or
/// `@FILE`) as given; else one union filter for `--node` names and/or one
/// for `--tag`s (combined by intersection when both are given); else `null`
/// (every node).
pub fn build_node_filter(nodes: &[String], tags: &[String], raw: Option<&str>) -> Result<Value> {
    if let Some(raw) = raw {
        let v = json_arg("filter", raw)?;
        if !(v.is_object() || v.is_null()) {
            bail!("--filter must be a JSON object (a Drydock node filter) or null");
        }
        return Ok(v);
    }
    let mut set = Vec::new();
    if !nodes.is_empty() {
        set.push(json!({"filter_type": "union", "node_names": nodes}));
    }
    if !tags.is_empty() {
        set.push(json!({"filter_type": "union", "node_tags": tags}));
    }
    Ok(match set.len() {
        0 => Value::Null,
        1 => json!({"filter_set_type": "union", "filter_set": set}),
        _ => json!({"filter_set_type": "intersection", "filter_set": set}),
    })
}

/// The `POST /tasks` body for `task create`.
pub fn task_body(args: &CreateTaskArgs) -> Result<Value> {
    if args.action.trim().is_empty() {
        bail!("the action must not be empty");
    }
    let filter = build_node_filter(&args.nodes, &args.tags, args.filter.as_deref())?;
    let mut body = Map::new();
    body.insert("action".into(), Value::String(args.action.clone()));
    body.insert("node_filter".into(), filter);
    if let Some(d) = &args.design_ref {
        body.insert("design_ref".into(), Value::String(d.clone()));
    }
    if let Some(p) = &args.params {
        let p = json_arg("params", p)?;
        if !p.is_object() {
            bail!("--params must be a JSON object");
        }
        body.insert("params".into(), p);
    }
    Ok(Value::Object(body))
}

/// The `POST /nodes` body built from `node add`'s flags (not `--file`),
/// with `credentials` when a user name is given.
pub fn node_body(args: &AddNodeArgs, password: Option<&str>) -> Result<Value> {
    let name = args.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        bail!("the node name must not be empty");
    }
    let oob_type = args.oob_type.as_deref().unwrap_or_default();
    if oob_type.is_empty() {
        bail!("--oob-type must not be empty");
    }
    let mut oob = Map::new();
    oob.insert("type".into(), json!(oob_type));
    if let Some(a) = &args.oob_address {
        oob.insert("address".into(), json!(a));
    }
    if let Some(p) = args.oob_port {
        oob.insert("port".into(), json!(p));
    }
    if let Some(c) = &args.credential {
        oob.insert("credential".into(), json!(c));
    }
    let labels: Map<String, Value> = args
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut body = Map::new();
    body.insert("name".into(), json!(name));
    body.insert("oob".into(), Value::Object(oob));
    if let Some(m) = &args.boot_mac {
        body.insert("boot_mac".into(), json!(m));
    }
    body.insert("tags".into(), json!(args.tags));
    body.insert("labels".into(), Value::Object(labels));
    if let Some(r) = &args.rack {
        body.insert("rack".into(), json!(r));
    }
    let mut body = Value::Object(body);
    attach_credentials(&mut body, args.username.as_deref(), password)?;
    Ok(body)
}

/// Adds `"credentials": {"username", "password"}` to a node body when a user
/// name is given (the password may be empty).
pub fn attach_credentials(
    body: &mut Value,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<()> {
    let Some(user) = username else {
        return Ok(());
    };
    let obj = body
        .as_object_mut()
        .context("the node JSON must be an object")?;
    obj.insert(
        "credentials".into(),
        json!({"username": user, "password": password.unwrap_or_default()}),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------

/// Prints an API error (and a hint) and turns it into its exit code; other
/// errors are passed on (the caller prints them and exits 2).
pub(crate) fn finish(r: Result<ExitCode>) -> Result<ExitCode> {
    match r {
        Ok(code) => Ok(code),
        Err(e) => match e.downcast_ref::<ClientError>() {
            Some(ce) => {
                eprintln!("error: {ce}");
                if let Some(h) = ce.hint() {
                    eprintln!("hint: {h}");
                }
                Ok(ce.exit_code())
            }
            None => Err(e),
        },
    }
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// The array of a list response.
fn array(v: Value, what: &str) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(ClientError::Decode {
            url: what.to_owned(),
            detail: "expected a JSON array".into(),
        }
        .into()),
    }
}

/// Runs a `drydock task` command. API errors are printed here and become
/// exit codes (1, or 2 for 401/403/connection failures); other errors
/// (usage) are returned.
pub async fn run_task(cmd: TaskCommand) -> Result<ExitCode> {
    let client = cmd.conn.client()?;
    let json = cmd.conn.json;
    finish(task_command(&client, cmd.command, json).await)
}

async fn task_command(client: &Client, cmd: TaskAction, json: bool) -> Result<ExitCode> {
    match cmd {
        TaskAction::Create(args) => {
            let body = task_body(&args)?;
            let v = client.create_task(&body).await?;
            let task = Task::from_value(&v)?;
            if !args.wait {
                if json {
                    print_json(&v)?;
                } else {
                    println!("{}", task.task_id);
                }
                return Ok(ExitCode::SUCCESS);
            }
            if !json {
                println!("{}", task.task_id);
            }
            let id: Uuid = task.task_id.parse().with_context(|| {
                format!("the server's task id `{}` is not a UUID", task.task_id)
            })?;
            watch(client, id, Duration::from_millis(args.interval_ms), json).await
        }
        TaskAction::Show { id } => {
            if json {
                print_json(&client.get_task(id).await?)?;
            } else {
                let l = Layers::from_value(&client.task_layers(id).await?)?;
                print!("{}", format_summary(&l));
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskAction::List { limit } => {
            let v = client.list_tasks(limit).await?;
            if json {
                print_json(&v)?;
            } else {
                let tasks = array(v, "GET /tasks")?
                    .iter()
                    .map(Task::from_value)
                    .collect::<Result<Vec<_>>>()?;
                print!("{}", format_task_table(&tasks));
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskAction::Cancel { id } => {
            let v = client.cancel_task(id).await?;
            if json {
                print_json(&v)?;
            } else {
                let t = Task::from_value(&v)?;
                println!("task {}: {}", t.task_id, t.status);
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskAction::Watch { id, interval_ms } => {
            watch(client, id, Duration::from_millis(interval_ms), json).await
        }
    }
}

/// Polls the task until it ends, drawing a progress bar on a terminal, else
/// printing one line per change (nothing with `--json`, which prints the
/// final task dict). Exit 0 if it succeeded, 1 otherwise.
async fn watch(client: &Client, id: Uuid, interval: Duration, json: bool) -> Result<ExitCode> {
    let interval = interval.max(Duration::from_millis(50));
    let tty = !json && std::io::stdout().is_terminal();
    let bar = if tty {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stdout());
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden())
    };
    let mut last_line = String::new();
    let mut errors = 0u32;
    let layers = loop {
        let v = match client.task_layers(id).await {
            Ok(v) => {
                errors = 0;
                v
            }
            Err(e) if e.is_transient() && errors < WATCH_RETRIES => {
                errors += 1;
                bar.suspend(|| eprintln!("warning: {e}; retrying ({errors}/{WATCH_RETRIES})"));
                tokio::time::sleep(interval.max(Duration::from_secs(1))).await;
                continue;
            }
            Err(e) => {
                bar.abandon();
                return Err(e.into());
            }
        };
        let l = match Layers::from_value(&v) {
            Ok(l) => l,
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
        let p = Progress::of(&l);
        bar.set_length(p.total);
        bar.set_position(p.finished);
        bar.set_message(p.message());
        if !tty && !json {
            let line = p.line();
            if line != last_line {
                println!("{line}");
                last_line = line;
            }
        }
        if p.done {
            bar.finish();
            break l;
        }
        tokio::time::sleep(interval).await;
    };
    if json {
        print_json(&layers.raw)?;
    } else {
        print!("{}", format_report(&layers));
    }
    Ok(if layers.task.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs a `drydock node` command; errors as for [`run_task`].
pub async fn run_node(cmd: NodeCommand) -> Result<ExitCode> {
    let client = cmd.conn.client()?;
    let json = cmd.conn.json;
    finish(node_command(&client, cmd.command, json).await)
}

/// Reads `DRYDOCK_OOB_PASSWORD` for a node with a user name.
fn oob_password(username: Option<&str>) -> Option<String> {
    username?;
    let pw = std::env::var("DRYDOCK_OOB_PASSWORD").ok();
    if pw.is_none() {
        eprintln!("warning: DRYDOCK_OOB_PASSWORD is not set; sending an empty BMC password");
    }
    pw
}

async fn node_command(client: &Client, cmd: NodeAction, json: bool) -> Result<ExitCode> {
    match cmd {
        NodeAction::Add(args) => {
            let password = oob_password(args.username.as_deref());
            let body = match &args.file {
                Some(path) => {
                    let text = if path.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
                    } else {
                        std::fs::read_to_string(path)
                            .with_context(|| format!("reading {}", path.display()))?
                    };
                    let mut body: Value = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not valid JSON", path.display()))?;
                    if !body.is_object() {
                        bail!("{} must hold a JSON object (one node)", path.display());
                    }
                    attach_credentials(&mut body, args.username.as_deref(), password.as_deref())?;
                    body
                }
                None => node_body(&args, password.as_deref())?,
            };
            let v = client.add_node(&body).await?;
            if json {
                print_json(&v)?;
            } else {
                let name = v
                    .get("name")
                    .or_else(|| body.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                println!("node {name} added");
            }
            Ok(ExitCode::SUCCESS)
        }
        NodeAction::List => {
            let v = client.list_nodes().await?;
            if json {
                print_json(&v)?;
            } else {
                print!("{}", format_node_table(&array(v, "GET /nodes")?));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        cmd: TestCmd,
    }

    #[derive(Debug, Subcommand)]
    enum TestCmd {
        Task(TaskCommand),
        Node(NodeCommand),
    }

    fn parse(args: &[&str]) -> Result<TestCmd, clap::Error> {
        let mut argv = vec!["drydock"];
        argv.extend_from_slice(args);
        TestCli::try_parse_from(argv).map(|c| c.cmd)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn clap_definition_is_valid() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn filter_for_each_flag_combination() {
        assert_eq!(build_node_filter(&[], &[], None).unwrap(), Value::Null);
        assert_eq!(
            build_node_filter(&strings(&["a", "b"]), &[], None).unwrap(),
            json!({"filter_set_type": "union", "filter_set": [
                {"filter_type": "union", "node_names": ["a", "b"]}]})
        );
        assert_eq!(
            build_node_filter(&[], &strings(&["gpu"]), None).unwrap(),
            json!({"filter_set_type": "union", "filter_set": [
                {"filter_type": "union", "node_tags": ["gpu"]}]})
        );
        assert_eq!(
            build_node_filter(&strings(&["a"]), &strings(&["gpu", "ssd"]), None).unwrap(),
            json!({"filter_set_type": "intersection", "filter_set": [
                {"filter_type": "union", "node_names": ["a"]},
                {"filter_type": "union", "node_tags": ["gpu", "ssd"]}]})
        );
        let raw = r#"{"filter_set_type":"union","filter_set":[{"rack_names":["r1"]}]}"#;
        assert_eq!(
            build_node_filter(&[], &[], Some(raw)).unwrap(),
            serde_json::from_str::<Value>(raw).unwrap()
        );
        assert_eq!(
            build_node_filter(&[], &[], Some("null")).unwrap(),
            Value::Null
        );
        assert!(build_node_filter(&[], &[], Some("[1]")).is_err());
        assert!(build_node_filter(&[], &[], Some("{nope")).is_err());
    }

    #[test]
    fn filter_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, r#"{"filter_set":[{"node_names":["x"]}]}"#).unwrap();
        let arg = format!("@{}", path.display());
        assert_eq!(
            build_node_filter(&[], &[], Some(&arg)).unwrap(),
            json!({"filter_set": [{"node_names": ["x"]}]})
        );
    }

    fn create_args(cmd: TestCmd) -> CreateTaskArgs {
        match cmd {
            TestCmd::Task(TaskCommand {
                command: TaskAction::Create(a),
                ..
            }) => a,
            other => panic!("not task create: {other:?}"),
        }
    }

    #[test]
    fn create_parses_and_builds_the_body() {
        let a = create_args(
            parse(&[
                "task",
                "create",
                "deploy_nodes",
                "--node",
                "a",
                "--node",
                "b",
                "--tag",
                "gpu",
                "--params",
                r#"{"boot":{"device":"disk"}}"#,
                "--design-ref",
                "deckhand+x",
                "--wait",
                "--token",
                "t",
            ])
            .unwrap(),
        );
        assert!(a.wait);
        assert_eq!(
            task_body(&a).unwrap(),
            json!({
                "action": "deploy_nodes",
                "node_filter": {"filter_set_type": "intersection", "filter_set": [
                    {"filter_type": "union", "node_names": ["a", "b"]},
                    {"filter_type": "union", "node_tags": ["gpu"]}]},
                "design_ref": "deckhand+x",
                "params": {"boot": {"device": "disk"}},
            })
        );
        let a = create_args(parse(&["task", "create", "power_off_node"]).unwrap());
        assert_eq!(
            task_body(&a).unwrap(),
            json!({"action": "power_off_node", "node_filter": null})
        );
        let a = create_args(parse(&["task", "create", "x", "--params", "[1]"]).unwrap());
        assert!(task_body(&a).is_err());
    }

    #[test]
    fn usage_errors() {
        // --filter replaces --node/--tag.
        assert!(parse(&["task", "create", "x", "--filter", "{}", "--node", "a"]).is_err());
        assert!(parse(&["task", "show", "not-a-uuid"]).is_err());
        assert!(parse(&["task", "list", "--limit", "0"]).is_err());
        assert!(parse(&["task", "create", "x", "--interval-ms", "10"]).is_err());
        // node add needs a name and --oob-type, or --file alone.
        assert!(parse(&["node", "add", "n1"]).is_err());
        assert!(parse(&["node", "add", "--oob-type", "sim"]).is_err());
        assert!(parse(&["node", "add", "--file", "n.json", "--oob-type", "sim"]).is_err());
        assert!(
            parse(&[
                "node",
                "add",
                "n1",
                "--oob-type",
                "sim",
                "--label",
                "novalue"
            ])
            .is_err()
        );
        assert!(parse(&["node", "add", "--file", "n.json", "--username", "root"]).is_ok());
        // There is no password flag.
        assert!(parse(&["node", "add", "n1", "--oob-type", "sim", "--password", "x"]).is_err());
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        for args in [
            &["task", "--json", "--url", "http://h:1", "list"][..],
            &["task", "list", "--json", "--url", "http://h:1"][..],
        ] {
            match parse(args).unwrap() {
                TestCmd::Task(t) => {
                    assert!(t.conn.json);
                    assert_eq!(t.conn.url, "http://h:1");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let c = ConnArgs {
            url: DEFAULT_URL.into(),
            token: Some("s3cr3t-token".into()),
            json: false,
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let client = c.client().unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t"));
        let none = ConnArgs {
            token: None,
            ..c.clone()
        };
        assert!(
            none.client()
                .unwrap_err()
                .to_string()
                .contains("DRYDOCK_TOKEN")
        );
    }

    #[test]
    fn api_base_urls() {
        assert_eq!(
            api_base("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000/api/v1.0"
        );
        assert_eq!(
            api_base("http://h:9000/").unwrap(),
            "http://h:9000/api/v1.0"
        );
        assert_eq!(
            api_base("https://h/api/v1.0/").unwrap(),
            "https://h/api/v1.0"
        );
        assert_eq!(
            api_base("https://h/drydock").unwrap(),
            "https://h/drydock/api/v1.0"
        );
        assert!(api_base("ftp://h").is_err());
        assert!(api_base("h:9000x").is_err());
        assert!(api_base("http://u:p@h").is_err());
    }

    #[test]
    fn error_bodies_and_exit_codes() {
        let e = http_error(
            StatusCode::NOT_FOUND,
            br#"{"type":"error","message":"task 1 not found","retry":false}"#,
        );
        assert_eq!(e.to_string(), "404 Not Found: task 1 not found");
        assert_eq!(e.exit_code(), ExitCode::from(1));
        assert!(!e.is_transient());
        let e = http_error(StatusCode::UNAUTHORIZED, br#"{"message":"bad token"}"#);
        assert_eq!(e.exit_code(), ExitCode::from(2));
        assert!(e.hint().unwrap().contains("DRYDOCK_TOKEN"));
        assert_eq!(
            http_error(StatusCode::FORBIDDEN, b"").exit_code(),
            ExitCode::from(2)
        );
        let e = http_error(StatusCode::BAD_GATEWAY, b"<html>upstream</html>\n");
        assert_eq!(e.to_string(), "502 Bad Gateway: <html>upstream</html>");
        assert_eq!(e.exit_code(), ExitCode::from(1));
        assert!(e.is_transient());
        let e = http_error(StatusCode::CONFLICT, br#"{"message":"busy","retry":true}"#);
        assert!(e.is_transient());
        assert_eq!(
            http_error(StatusCode::INTERNAL_SERVER_ERROR, b"").to_string(),
            "500 Internal Server Error: Internal Server Error"
        );
        assert_eq!(
            ClientError::Connect("x".into()).exit_code(),
            ExitCode::from(2)
        );
    }

    fn sample_layers() -> Value {
        json!({
            "init_task_id": "11111111-1111-1111-1111-111111111111",
            "11111111-1111-1111-1111-111111111111": {
                "kind": "Task", "task_id": "11111111-1111-1111-1111-111111111111",
                "action": "power_on_node", "parent_task_id": null,
                "subtask_id_list": ["s1", "s2", "s3", "s4"],
                "status": "running",
                "node_filter": null, "design_ref": null,
                "result": {"status": "incomplete", "message": null, "reason": null,
                    "successes": [], "failures": [],
                    "details": {"errorCount": 0, "messageList": []}},
                "created": "2024-05-01T12:00:00.123456Z", "created_by": "admin",
                "updated": null, "terminated": null, "terminated_by": null
            },
            "s1": {"task_id": "s1", "action": "power_on_node",
                "parent_task_id": "11111111-1111-1111-1111-111111111111",
                "subtask_id_list": [], "status": "complete", "node_name": "n1",
                "result": {"status": "success", "message": "power_on_node succeeded",
                    "successes": ["n1"], "failures": [],
                    "details": {"errorCount": 0, "messageList": [
                        {"message": "powered on", "error": false, "context_type": "node",
                         "context": "n1", "ts": "2024-05-01T12:00:02Z"}]}}},
            "s2": {"task_id": "s2", "action": "power_on_node",
                "parent_task_id": "11111111-1111-1111-1111-111111111111",
                "subtask_id_list": null, "status": "complete", "node_name": "n2",
                "result": {"status": "failure", "message": "BMC unreachable",
                    "successes": [], "failures": ["n2"],
                    "details": {"errorCount": 2, "messageList": [
                        {"message": "connect timeout", "error": true, "context_type": "node",
                         "context": "n2", "ts": "2024-05-01T12:00:03Z"},
                        {"message": "BMC unreachable", "error": true, "context_type": "node",
                         "context": "n2", "ts": "2024-05-01T12:00:04Z"}]}}},
            "s3": {"task_id": "s3", "action": "power_on_node",
                "parent_task_id": "11111111-1111-1111-1111-111111111111",
                "status": "running", "node_name": "n3",
                "result": {"status": "incomplete"}}
            // s4 is not in the response yet.
        })
    }

    #[test]
    fn progress_from_a_layers_response() {
        let l = Layers::from_value(&sample_layers()).unwrap();
        assert_eq!(l.total, 4);
        assert_eq!(l.subtasks.len(), 3);
        let p = Progress::of(&l);
        assert_eq!(
            p,
            Progress {
                status: "running".into(),
                result: "incomplete".into(),
                total: 4,
                finished: 2,
                succeeded: strings(&["n1"]),
                failed: strings(&["n2"]),
                done: false,
            }
        );
        assert_eq!(p.message(), "1 succeeded, 1 failed (running)");
        assert_eq!(
            p.line(),
            "running: 2/4 subtasks finished, 1 succeeded, 1 failed"
        );
        assert_eq!(
            failures(&l),
            vec![Failure {
                node: "n2".into(),
                messages: strings(&["BMC unreachable", "connect timeout"]),
            }]
        );
    }

    #[test]
    fn progress_of_ended_and_odd_tasks() {
        let mut v = sample_layers();
        let top = &mut v["11111111-1111-1111-1111-111111111111"];
        top["status"] = json!("terminated");
        top["result"]["status"] = json!("partial_success");
        top["result"]["failures"] = json!(["n2", "n4"]);
        top["result"]["details"]["messageList"] = json!([
            {"message": "cancelled", "error": true, "context": "n4"}]);
        let l = Layers::from_value(&v).unwrap();
        let p = Progress::of(&l);
        assert!(p.done);
        assert_eq!(p.finished, 4);
        assert_eq!(p.failed, strings(&["n2", "n4"]));
        assert!(!l.task.succeeded());
        let f = failures(&l);
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[1],
            Failure {
                node: "n4".into(),
                messages: strings(&["cancelled"])
            }
        );

        // Subtasks found by parent id when the list is empty; no node names.
        let v = json!({"init_task_id": "t", "t": {"task_id": "t", "status": "complete",
                "result": {"status": "success"}},
            "u": {"task_id": "u", "parent_task_id": "t", "status": "complete",
                "result": {"status": "success"}}});
        let l = Layers::from_value(&v).unwrap();
        let p = Progress::of(&l);
        assert_eq!((p.total, p.finished), (1, 1));
        assert_eq!(p.succeeded, strings(&["u"]));
        assert!(l.task.succeeded());

        // A plain task dict (no layers).
        let l = Layers::from_value(&json!({"task_id": "t", "status": "queued",
            "subtask_id_list": ["a", "b"]}))
        .unwrap();
        assert_eq!(Progress::of(&l).total, 2);
        assert!(Layers::from_value(&json!({"init_task_id": "t"})).is_err());
        assert!(Layers::from_value(&json!([1])).is_err());
    }

    #[test]
    fn summary_shows_result_nodes_failures_and_messages() {
        let mut v = sample_layers();
        let top = &mut v["11111111-1111-1111-1111-111111111111"];
        top["status"] = json!("complete");
        top["result"] = json!({"status": "partial_success", "message": "1 of 4 nodes failed",
            "successes": ["n1"], "failures": ["n2"],
            "details": {"errorCount": 1, "messageList": []}});
        top["updated"] = json!("2024-05-01T12:00:05Z");
        let s = format_summary(&Layers::from_value(&v).unwrap());
        let expected = "\
task       11111111-1111-1111-1111-111111111111
action     power_on_node
status     complete
result     partial_success: 1 of 4 nodes failed
created    2024-05-01 12:00:00 by admin
updated    2024-05-01 12:00:05
subtasks   4 (4 finished)
succeeded  n1
failed     n2
failed nodes:
  n2: BMC unreachable
    connect timeout
messages:
  2024-05-01 12:00:02 info  n1: powered on
  2024-05-01 12:00:03 error n2: connect timeout
  2024-05-01 12:00:04 error n2: BMC unreachable
";
        assert_eq!(s, expected);
        let r = format_report(&Layers::from_value(&v).unwrap());
        assert_eq!(
            r,
            "task 11111111-1111-1111-1111-111111111111 complete: partial_success: 1 of 4 nodes failed\n\
             1 succeeded, 1 failed\n\
             failed nodes:\n  n2: BMC unreachable\n    connect timeout\n"
        );
    }

    #[test]
    fn tables() {
        let tasks = vec![
            Task::from_value(&json!({"task_id": "t1", "action": "deploy_nodes",
                "status": "complete", "result": {"status": "success"},
                "created": "2024-05-01T12:00:00Z"}))
            .unwrap(),
            Task::from_value(&json!({"task_id": "t22", "action": "power_on_node",
                "status": "queued", "result": null, "created": null}))
            .unwrap(),
        ];
        assert_eq!(
            format_task_table(&tasks),
            "\
ID   ACTION         STATUS    RESULT   CREATED
t1   deploy_nodes   complete  success  2024-05-01 12:00:00
t22  power_on_node  queued    -        -
"
        );
        let nodes = vec![
            json!({"name": "n1", "oob": {"type": "redfish", "address": "10.0.0.1", "port": 443},
                "power_state": "on", "boot_device": {"device": "pxe", "persistent": false},
                "tags": ["gpu", "ssd"]}),
            json!({"name": "node-two", "oob": {"type": "sim"}, "power_state": null, "tags": []}),
        ];
        assert_eq!(
            format_node_table(&nodes),
            "\
NAME      OOB      ADDRESS       POWER  BOOT  TAGS
n1        redfish  10.0.0.1:443  on     pxe   gpu, ssd
node-two  sim      -             -      -     -
"
        );
        assert_eq!(
            format_node_table(&[]),
            "NAME  OOB  ADDRESS  POWER  BOOT  TAGS\n"
        );
    }

    fn add_args(cmd: TestCmd) -> AddNodeArgs {
        match cmd {
            TestCmd::Node(NodeCommand {
                command: NodeAction::Add(a),
                ..
            }) => *a,
            other => panic!("not node add: {other:?}"),
        }
    }

    #[test]
    fn node_bodies() {
        let a = add_args(
            parse(&[
                "node",
                "add",
                "n1",
                "--oob-type",
                "redfish",
                "--oob-address",
                "10.0.0.1",
                "--oob-port",
                "443",
                "--credential",
                "bmc",
                "--boot-mac",
                "aa:bb:cc:dd:ee:ff",
                "--tag",
                "gpu",
                "--tag",
                "ssd",
                "--label",
                "role=worker",
                "--label",
                "x=a=b",
                "--rack",
                "r1",
                "--username",
                "root",
            ])
            .unwrap(),
        );
        assert_eq!(
            node_body(&a, Some("pw")).unwrap(),
            json!({
                "name": "n1",
                "oob": {"type": "redfish", "address": "10.0.0.1", "port": 443, "credential": "bmc"},
                "boot_mac": "aa:bb:cc:dd:ee:ff",
                "tags": ["gpu", "ssd"],
                "labels": {"role": "worker", "x": "a=b"},
                "rack": "r1",
                "credentials": {"username": "root", "password": "pw"},
            })
        );
        let mut a = add_args(parse(&["node", "add", "n2", "--oob-type", "sim"]).unwrap());
        a.username = None; // DRYDOCK_OOB_USER may be set where tests run.
        assert_eq!(
            node_body(&a, Some("ignored")).unwrap(),
            json!({"name": "n2", "oob": {"type": "sim"}, "tags": [], "labels": {}})
        );
        let mut body = json!({"name": "n3"});
        attach_credentials(&mut body, Some("admin"), None).unwrap();
        assert_eq!(
            body["credentials"],
            json!({"username": "admin", "password": ""})
        );
        assert!(attach_credentials(&mut json!([]), Some("a"), None).is_err());
    }

    // --- against a stand-in server -------------------------------------

    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::routing::{get, post};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn conn(url: &str, token: &str) -> ConnArgs {
        ConnArgs {
            url: url.into(),
            token: Some(token.into()),
            json: false,
        }
    }

    fn authorized(h: &HeaderMap) -> bool {
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer good")
    }

    /// A server whose task `TASK` finishes its two subtasks on the third poll
    /// (n1 succeeds, n2 fails).
    const TASK: &str = "11111111-1111-1111-1111-111111111111";

    async fn fake_server() -> String {
        let polls = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route(
                "/api/v1.0/tasks",
                post(|h: HeaderMap, body: axum::Json<Value>| async move {
                    if !authorized(&h) {
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            axum::Json(json!({"type": "error", "message": "bad token", "retry": false})),
                        );
                    }
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(json!({"task_id": TASK, "action": body["action"],
                            "status": "queued", "node_filter": body["node_filter"]})),
                    )
                }),
            )
            .route(
                "/api/v1.0/tasks/{id}",
                get(|State(polls): State<Arc<AtomicUsize>>, Path(id): Path<String>| async move {
                    if id != TASK {
                        return (
                            axum::http::StatusCode::NOT_FOUND,
                            axum::Json(json!({"type": "error", "message": "no such task", "retry": false})),
                        );
                    }
                    let n = polls.fetch_add(1, Ordering::SeqCst);
                    let (top, s1, s2) = match n {
                        0 => ("running", "running", "queued"),
                        1 => ("running", "complete", "running"),
                        _ => ("complete", "complete", "complete"),
                    };
                    let result = if top == "complete" { "partial_success" } else { "incomplete" };
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({
                            "init_task_id": TASK,
                            TASK: {"task_id": TASK, "action": "power_on_node", "status": top,
                                "subtask_id_list": ["s1", "s2"],
                                "result": {"status": result, "message": "1 of 2 failed"}},
                            "s1": {"task_id": "s1", "status": s1, "node_name": "n1",
                                "result": {"status": if s1 == "complete" {"success"} else {"incomplete"}}},
                            "s2": {"task_id": "s2", "status": s2, "node_name": "n2",
                                "result": {"status": if s2 == "complete" {"failure"} else {"incomplete"},
                                    "message": "BMC unreachable"}},
                        })),
                    )
                }),
            )
            .with_state(polls);
        serve(app).await
    }

    #[tokio::test]
    async fn create_and_wait_against_a_server() {
        let url = fake_server().await;
        let client = conn(&url, "good").client().unwrap();
        let v = client
            .create_task(&json!({"action": "power_on_node", "node_filter": null}))
            .await
            .unwrap();
        assert_eq!(v["task_id"], TASK);
        let code = run_task(TaskCommand {
            conn: conn(&url, "good"),
            command: TaskAction::Watch {
                id: TASK.parse().unwrap(),
                interval_ms: 10,
            },
        })
        .await
        .unwrap();
        // partial_success → 1.
        assert_eq!(code, ExitCode::FAILURE);
    }

    #[tokio::test]
    async fn http_and_connection_errors_become_exit_codes() {
        let url = fake_server().await;
        let bad = conn(&url, "wrong").client().unwrap();
        match bad.create_task(&json!({"action": "x"})).await {
            Err(e @ ClientError::Http { .. }) => {
                assert_eq!(e.to_string(), "401 Unauthorized: bad token");
                assert_eq!(e.exit_code(), ExitCode::from(2));
            }
            other => panic!("{other:?}"),
        }
        let code = run_task(TaskCommand {
            conn: conn(&url, "good"),
            command: TaskAction::Show { id: Uuid::nil() },
        })
        .await
        .unwrap();
        assert_eq!(code, ExitCode::from(1));

        // Nothing listens on a port just freed.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let code = run_node(NodeCommand {
            conn: conn(&dead, "good"),
            command: NodeAction::List,
        })
        .await
        .unwrap();
        assert_eq!(code, ExitCode::from(2));
        match conn(&dead, "good").client().unwrap().list_nodes().await {
            Err(e @ ClientError::Connect(_)) => {
                assert!(
                    e.to_string().starts_with("cannot connect to http://"),
                    "{e}"
                );
                assert!(e.is_transient());
            }
            other => panic!("{other:?}"),
        }
    }
}
