//! The `drydock` command line: argument parsing and what each command does.
//!
//! - `serve`: run the Drydock service ([`crate::server`]).
//! - `driver` ([`driver`]): inspect a component, run one action in the sandbox;
//!   `driver new` ([`driver_new`]) writes a driver crate, `driver test`
//!   ([`conformance`]) runs the conformance kit.
//! - `task`, `node` ([`client`]): the REST client of a Drydock API server.
//! - `fleet` ([`fleet`]): node timelines, synced state, maintenance.
//!
//! `main.rs` calls [`main`].

pub mod client;
pub mod conformance;
pub mod driver;
pub mod driver_new;
pub mod fleet;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Drydock: bare-metal provisioning with drivers as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "drydock", version, about)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Drydock service: REST API, task engine, bundled drivers. With
    /// no configuration it serves 127.0.0.1:9000 on a SQLite file in ./.drydock.
    Serve {
        /// TOML configuration file (environment variables DRYDOCK_* override it).
        #[arg(long, env = "DRYDOCK_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
    /// Work with driver components.
    #[command(subcommand)]
    Driver(driver::DriverCommand),
    /// Create, show, list, cancel and watch tasks on a Drydock server.
    Task(client::TaskCommand),
    /// Register and list nodes on a Drydock server.
    Node(client::NodeCommand),
    /// Node timelines, synced power state, drift and maintenance.
    Fleet(fleet::FleetCommand),
}

/// Entry point used by `main`: parses arguments, runs, maps errors to exit
/// codes (2 for usage and load errors; commands choose 0 or 1 themselves).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Held to the end: dropping it writes out the queued log lines.
    let _logs = crate::telemetry::init(cli.log_json);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let done = rt.block_on(run(cli));
    crate::observe::traces::flush();
    match done {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            let cfg = crate::config::Config::load(config.as_deref())?;
            crate::server::run(cfg, shutdown_signal(), shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Driver(cmd) => driver::run(cmd).await,
        Command::Task(cmd) => client::run_task(cmd).await,
        Command::Node(cmd) => client::run_node(cmd).await,
        Command::Fleet(cmd) => fleet::run(cmd).await,
    }
}

/// Resolves on Ctrl-C or SIGTERM (received after its first poll).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
