//! `drydock fleet ...`: a node's timeline, its synced state, maintenance,
//! and the fleet's sync figures, through the API (see [`crate::api::fleet`]).

use super::client::{Client, ConnArgs, finish};
use anyhow::Result;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use std::process::ExitCode;

/// `drydock fleet ...`.
#[derive(Debug, Args)]
pub struct FleetCommand {
    /// Connection and output options.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The fleet command.
    #[command(subcommand)]
    pub command: FleetAction,
}

/// The `fleet` subcommands.
#[derive(Debug, Subcommand)]
pub enum FleetAction {
    /// A node's timeline, newest first: driver calls, state changes, drift,
    /// maintenance.
    Events {
        /// Node name.
        node: String,
        /// Entries to show (1 to 500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=500))]
        limit: i64,
        /// Only entries older than this sequence number (the previous
        /// page's `next`).
        #[arg(long)]
        before: Option<i64>,
    },
    /// A node's synced state: power as its BMC reports it beside what
    /// Drydock set, drift, failed syncs, maintenance.
    Show {
        /// Node name.
        node: String,
    },
    /// Put a node in maintenance, or take it out.
    #[command(subcommand)]
    Maintenance(MaintenanceAction),
    /// Nodes synced, drifted, in maintenance; this server's sync counters.
    Status,
}

/// `drydock fleet maintenance ...`.
#[derive(Debug, Subcommand)]
pub enum MaintenanceAction {
    /// Put a node in maintenance: tasks skip it and its syncs stop.
    Set {
        /// Node name.
        node: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Take a node out of maintenance (set by an operator or by the sync).
    Clear {
        /// Node name.
        node: String,
    },
}

/// Runs a `drydock fleet` command.
pub async fn run(cmd: FleetCommand) -> Result<ExitCode> {
    let client = cmd.conn.client()?;
    finish(command(&client, cmd.command, cmd.conn.json).await)
}

/// `/nodes/{node}/{tail}`, for a valid node name (checked here: it goes
/// into the path as is).
fn node_path(node: &str, tail: &str) -> Result<String> {
    crate::api::nodes::validate_name(node).map_err(anyhow::Error::msg)?;
    Ok(format!("/nodes/{node}/{tail}"))
}

async fn command(client: &Client, cmd: FleetAction, json_out: bool) -> Result<ExitCode> {
    let v = match &cmd {
        FleetAction::Events {
            node,
            limit,
            before,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            query.extend(before.map(|b| ("before", b.to_string())));
            client
                .call(Method::GET, &node_path(node, "events")?, &query, None)
                .await?
        }
        FleetAction::Show { node } => {
            client
                .call(Method::GET, &node_path(node, "sync")?, &[], None)
                .await?
        }
        FleetAction::Maintenance(MaintenanceAction::Set { node, reason }) => {
            let body = json!({ "reason": reason });
            client
                .call(
                    Method::POST,
                    &node_path(node, "maintenance")?,
                    &[],
                    Some(&body),
                )
                .await?
        }
        FleetAction::Maintenance(MaintenanceAction::Clear { node }) => {
            client
                .call(Method::DELETE, &node_path(node, "maintenance")?, &[], None)
                .await?
        }
        FleetAction::Status => client.call(Method::GET, "/fleet", &[], None).await?,
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    match cmd {
        FleetAction::Events { .. } => print!("{}", events_table(&v)),
        FleetAction::Maintenance(MaintenanceAction::Set { node, .. }) => {
            println!("{node} is in maintenance")
        }
        FleetAction::Maintenance(MaintenanceAction::Clear { node }) => {
            println!("{node} is out of maintenance")
        }
        FleetAction::Show { .. } | FleetAction::Status => {
            println!("{}", serde_json::to_string_pretty(&v)?)
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A timeline page as a table: time, kind, action, outcome, duration,
/// message; then how to get the next page.
pub fn events_table(page: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = format!(
        "{:<27} {:<13} {:<18} {:<10} {:>8}  {}\n",
        "TIME", "KIND", "ACTION", "OUTCOME", "MS", "MESSAGE"
    );
    for e in page["events"].as_array().into_iter().flatten() {
        let ms = e["duration_ms"]
            .as_i64()
            .map_or_else(|| "-".to_owned(), |m| m.to_string());
        out.push_str(&format!(
            "{:<27} {:<13} {:<18} {:<10} {:>8}  {}\n",
            s(&e["ts"]),
            s(&e["kind"]),
            s(&e["action"]),
            s(&e["outcome"]),
            ms,
            s(&e["message"]).replace('\n', " ")
        ));
    }
    if let Some(next) = page["next_before"].as_i64() {
        out.push_str(&format!("(older entries: --before {next})\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_table_lists_entries_and_the_next_page() {
        let page = json!({"node": "n1", "next_before": 7, "events": [
            {"seq": 8, "ts": "2026-01-01T00:00:00Z", "kind": "driver_call",
             "action": "power_on_node", "outcome": "failure", "duration_ms": 31,
             "message": "timed out"}]});
        let t = events_table(&page);
        assert!(
            t.contains("power_on_node") && t.contains("timed out") && t.contains("31"),
            "{t}"
        );
        assert!(t.contains("--before 7"), "{t}");
    }
}
