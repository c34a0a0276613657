//! The `drydock` command line: argument parsing and what each command does.
//!
//! - `driver` ([`driver`]): inspect a component, run one action in the sandbox.
//!
//! `main.rs` calls [`main`].

pub mod driver;

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
    /// Work with driver components.
    #[command(subcommand)]
    Driver(driver::DriverCommand),
}

/// Entry point used by `main`: parses arguments, runs, maps errors to exit
/// codes (2 for usage and load errors; commands choose 0 or 1 themselves).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init(cli.log_json);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
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
        Command::Driver(cmd) => driver::run(cmd).await,
    }
}
