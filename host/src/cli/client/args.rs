//! The command line of `drydock task ...` and `drydock node ...` (and the
//! connection options of every command that talks to a server), and the
//! request bodies built from it.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use std::fmt;
use std::path::PathBuf;
use uuid::Uuid;

use super::http::Client;
use crate::wire::CreateTask;

/// The server used when neither `--url` nor `DRYDOCK_URL` is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9000";

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
    /// Output format: `table` (a table or summary for people) or `json`
    /// (the server's JSON).
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// Same as `--output json`.
    #[arg(long, global = true)]
    pub json: bool,
}

/// How a command prints what it got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Tables and summaries for people.
    #[default]
    Table,
    /// The server's JSON, pretty-printed.
    Json,
}

impl fmt::Debug for ConnArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnArgs")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("output", &self.output())
            .finish()
    }
}

impl ConnArgs {
    /// The output format asked for (`--json` is `--output json`).
    pub fn output(&self) -> Output {
        if self.json { Output::Json } else { self.output }
    }

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
pub fn task_body(args: &CreateTaskArgs) -> Result<CreateTask> {
    if args.action.trim().is_empty() {
        bail!("the action must not be empty");
    }
    let filter = build_node_filter(&args.nodes, &args.tags, args.filter.as_deref())?;
    let params = match &args.params {
        Some(p) => {
            let p = json_arg("params", p)?;
            if !p.is_object() {
                bail!("--params must be a JSON object");
            }
            Some(p)
        }
        None => None,
    };
    Ok(CreateTask {
        action: args.action.clone(),
        design_ref: args.design_ref.clone(),
        node_filter: Some(filter),
        params,
    })
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
