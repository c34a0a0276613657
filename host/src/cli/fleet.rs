//! `drydock fleet ...`: a node's timeline, its synced state, maintenance,
//! and the fleet's sync figures, through the API (see [`crate::api::fleet`]),
//! read as the wire model's types ([`crate::wire::fleet`]); `--output json`
//! prints them as JSON.

use super::client::render::print_json;
use super::client::{Client, ConnArgs, Output, finish, format_table};
use crate::wire::{EventPage, FleetView, NodeSyncState};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
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
    let json = cmd.conn.output() == Output::Json;
    finish(command(&client, cmd.command, json).await)
}

/// `node`, checked to be a valid node name (it goes into the path as is).
fn checked(node: &str) -> Result<&str> {
    crate::api::nodes::validate_name(node).map_err(anyhow::Error::msg)?;
    Ok(node)
}

/// Prints `v` as JSON when asked to, else as `table` renders it.
fn print<T: Serialize>(v: &T, json: bool, table: impl FnOnce(&T) -> String) -> Result<ExitCode> {
    if json {
        print_json(v)?;
    } else {
        print!("{}", table(v));
    }
    Ok(ExitCode::SUCCESS)
}

async fn command(client: &Client, cmd: FleetAction, json: bool) -> Result<ExitCode> {
    match cmd {
        FleetAction::Events {
            node,
            limit,
            before,
        } => {
            let page = client.node_events(checked(&node)?, limit, before).await?;
            print(&page, json, events_table)
        }
        FleetAction::Show { node } => {
            let state = client.node_sync(checked(&node)?).await?;
            print(&state, json, sync_table)
        }
        FleetAction::Maintenance(MaintenanceAction::Set { node, reason }) => {
            let m = client.set_maintenance(checked(&node)?, &reason).await?;
            print(&m, json, |m| format!("{} is in maintenance\n", m.node))
        }
        FleetAction::Maintenance(MaintenanceAction::Clear { node }) => {
            let m = client.clear_maintenance(checked(&node)?).await?;
            print(&m, json, |m| format!("{} is out of maintenance\n", m.node))
        }
        FleetAction::Status => {
            let f = client.fleet().await?;
            print(&f, json, fleet_table)
        }
    }
}

fn or_dash(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or("-").to_owned()
}

/// A timeline page as a table: time, kind, action, outcome, duration,
/// message; then how to get the next page.
pub fn events_table(page: &EventPage) -> String {
    let rows: Vec<Vec<String>> = page
        .events
        .iter()
        .map(|e| {
            vec![
                e.ts.clone(),
                e.kind.clone(),
                or_dash(e.action.as_deref()),
                or_dash(e.outcome.as_deref()),
                e.duration_ms
                    .map_or_else(|| "-".to_owned(), |m| m.to_string()),
                or_dash(e.message.as_deref()).replace('\n', " "),
            ]
        })
        .collect();
    let mut out = format_table(
        &["TIME", "KIND", "ACTION", "OUTCOME", "MS", "MESSAGE"],
        &rows,
    );
    if let Some(next) = page.next_before {
        out.push_str(&format!("(older entries: --before {next})\n"));
    }
    out
}

/// A node's synced state as `field  value` lines.
pub fn sync_table(s: &NodeSyncState) -> String {
    let mut rows = vec![
        vec!["node".to_owned(), s.node.clone()],
        vec![
            "expected power".to_owned(),
            or_dash(s.expected_power.as_deref()),
        ],
    ];
    match &s.sync {
        None => rows.push(vec!["sync".to_owned(), "not synced yet".to_owned()]),
        Some(y) => {
            let maintenance = match (&y.maintenance, &y.maintenance_reason) {
                (Some(by), Some(why)) => format!("{by}: {why}"),
                (Some(by), None) => by.clone(),
                (None, _) => "-".to_owned(),
            };
            rows.extend([
                vec![
                    "observed power".to_owned(),
                    or_dash(y.observed_power.as_deref()),
                ],
                vec![
                    "observed health".to_owned(),
                    or_dash(y.observed_health.as_deref()),
                ],
                vec!["observed at".to_owned(), or_dash(y.observed_at.as_deref())],
                vec!["drift".to_owned(), y.drift.to_string()],
                vec!["failed syncs".to_owned(), y.failures.to_string()],
                vec!["last error".to_owned(), or_dash(y.last_error.as_deref())],
                vec!["maintenance".to_owned(), maintenance],
                vec!["next sync".to_owned(), or_dash(y.due.as_deref())],
            ]);
        }
    }
    format_table(&["FIELD", "VALUE"], &rows)
}

/// The fleet's figures as `field  value` lines.
pub fn fleet_table(f: &FleetView) -> String {
    let i = &f.instance;
    let rows: Vec<Vec<String>> = [
        ("nodes", f.nodes.to_string()),
        ("drifted", f.drifted.to_string()),
        ("in maintenance", f.in_maintenance.to_string()),
        ("instance", i.id.clone()),
        ("sync rounds", i.rounds.to_string()),
        ("syncs", i.syncs.to_string()),
        ("failed syncs", i.sync_failures.to_string()),
        ("drift detected", i.drift_detected.to_string()),
        ("maintenance entered", i.maintenance_entered.to_string()),
        ("maintenance left", i.maintenance_left.to_string()),
        ("max lag ms", i.max_lag_ms.to_string()),
        ("timeline dropped", i.timeline_dropped.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| vec![k.to_owned(), v])
    .collect();
    format_table(&["FIELD", "VALUE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NodeEvent;

    #[test]
    fn timeline_table_lists_entries_and_the_next_page() {
        let page = EventPage {
            node: "n1".into(),
            next_before: Some(7),
            events: vec![NodeEvent {
                seq: 8,
                node_name: "n1".into(),
                ts: "2026-01-01T00:00:00Z".into(),
                kind: "driver_call".into(),
                action: Some("power_on_node".into()),
                outcome: Some("failure".into()),
                duration_ms: Some(31),
                message: Some("timed out".into()),
                task_id: None,
            }],
        };
        let t = events_table(&page);
        assert!(
            t.contains("power_on_node") && t.contains("timed out") && t.contains("31"),
            "{t}"
        );
        assert!(t.contains("--before 7"), "{t}");
    }

    #[test]
    fn sync_and_fleet_tables_name_each_field() {
        let s = NodeSyncState {
            node: "n1".into(),
            expected_power: Some("on".into()),
            sync: None,
        };
        let t = sync_table(&s);
        assert!(
            t.contains("expected power") && t.contains("not synced yet"),
            "{t}"
        );
        let t = fleet_table(&FleetView::default());
        assert!(
            t.contains("in maintenance") && t.contains("failed syncs"),
            "{t}"
        );
    }
}
