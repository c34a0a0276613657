//! What each client command does: calls the server, prints the answer as
//! `--output` says, and chooses the exit code.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;
use uuid::Uuid;

use super::args::{
    ConnArgs, NodeAction, NodeCommand, Output, TaskAction, TaskCommand, attach_credentials,
    node_body, task_body,
};
use super::http::{Client, ClientError};
use super::render::{
    Layers, Progress, format_node_table, format_report, format_summary, format_table,
    format_task_table, print_json,
};

/// How many consecutive transient errors `watch` tolerates before giving up.
const WATCH_RETRIES: u32 = 5;

/// Prints an API error (and a hint) and turns it into its exit code; other
/// errors are passed on (the caller prints them and exits 2).
pub fn finish(r: Result<ExitCode>) -> Result<ExitCode> {
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

/// Runs a `drydock task` command. API errors are printed here and become
/// exit codes (1, or 2 for 401/403/connection failures); other errors
/// (usage) are returned.
pub async fn run_task(cmd: TaskCommand) -> Result<ExitCode> {
    let client = cmd.conn.client()?;
    let json = cmd.conn.output() == Output::Json;
    finish(task_command(&client, cmd.command, json).await)
}

async fn task_command(client: &Client, cmd: TaskAction, json: bool) -> Result<ExitCode> {
    match cmd {
        TaskAction::Create(args) => {
            let body = task_body(&args)?;
            let task = client.create_task(&body).await?;
            if !args.wait {
                if json {
                    print_json(&task)?;
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
            let tasks = client.list_tasks(limit).await?;
            if json {
                print_json(&tasks)?;
            } else {
                print!("{}", format_task_table(&tasks));
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskAction::Cancel { id } => {
            let t = client.cancel_task(id).await?;
            if json {
                print_json(&t)?;
            } else {
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
    let json = cmd.conn.output() == Output::Json;
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
                println!("node {} added", v.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        NodeAction::List => {
            let nodes = client.list_nodes().await?;
            if json {
                print_json(&nodes)?;
            } else {
                let nodes = nodes
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<Vec<_>, _>>()?;
                print!("{}", format_node_table(&nodes));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `drydock driver install FILE [--activate]`: uploads a component, then
/// activates it when asked.
pub async fn driver_install(conn: &ConnArgs, bytes: Vec<u8>, activate: bool) -> Result<ExitCode> {
    let client = conn.client()?;
    finish(install(&client, bytes, activate, conn.output()).await)
}

async fn install(
    client: &Client,
    bytes: Vec<u8>,
    activate: bool,
    output: Output,
) -> Result<ExitCode> {
    let done = client.upload_driver(bytes).await?;
    match output {
        Output::Json => print_json(&done)?,
        Output::Table => println!(
            "installed {} {} (sha256 {}, signer {})",
            done.name,
            done.version,
            done.sha256,
            done.signer.as_deref().unwrap_or("none: unsigned")
        ),
    }
    if activate {
        let a = client.activate_driver(&done.name, &done.version).await?;
        match output {
            Output::Json => print_json(&a)?,
            Output::Table => println!("activated {} {}", a.name, a.version),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `drydock driver list [NAME]`: the drivers as a table, or one driver.
pub async fn driver_list(conn: &ConnArgs, name: Option<String>) -> Result<ExitCode> {
    let client = conn.client()?;
    finish(list_drivers(&client, name, conn.output()).await)
}

async fn list_drivers(client: &Client, name: Option<String>, output: Output) -> Result<ExitCode> {
    let drivers = match &name {
        Some(n) => vec![client.get_driver(n).await?],
        None => client.list_drivers().await?,
    };
    match (output, &name) {
        (Output::Json, Some(_)) => print_json(&drivers[0])?,
        (Output::Json, None) => print_json(&drivers)?,
        (Output::Table, _) => {
            let rows: Vec<Vec<String>> = drivers
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.active
                            .as_ref()
                            .map(|a| a.version.clone())
                            .or_else(|| d.loaded.as_ref().map(|l| l.version.clone()))
                            .unwrap_or_else(|| "-".into()),
                        d.versions.len().to_string(),
                        d.loaded.as_ref().map_or(0, |l| l.calls).to_string(),
                        d.loaded.as_ref().map_or(0, |l| l.errors).to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                format_table(&["NAME", "ACTIVE", "VERSIONS", "CALLS", "ERRORS"], &rows)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `drydock driver activate NAME VERSION` and `drydock driver rollback
/// NAME` (`version` none).
pub async fn driver_activate(
    conn: &ConnArgs,
    name: &str,
    version: Option<&str>,
) -> Result<ExitCode> {
    let client = conn.client()?;
    let r = async {
        let a = match version {
            Some(v) => client.activate_driver(name, v).await?,
            None => client.rollback_driver(name).await?,
        };
        match conn.output() {
            Output::Json => print_json(&a)?,
            Output::Table => {
                let previous = a.previous.as_deref().unwrap_or("-");
                println!(
                    "{} {} active (generation {}, previous {previous})",
                    a.name, a.version, a.generation
                );
                if let Some(m) = &a.message {
                    println!("{m}");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    };
    finish(r.await)
}
