//! `drydock task ...`, `drydock node ...` and the remote `drydock driver`
//! commands: the REST client of a Drydock API server (Airship Drydock's
//! `/api/v1.0`), reading and writing the API's own wire types
//! ([`crate::wire`]).
//!
//! - `task create ACTION [--node N]... [--tag T]... [--filter JSON]
//!   [--params JSON] [--design-ref REF] [--wait]`, `task show ID`,
//!   `task list [--limit N]`, `task cancel ID`, `task watch ID`.
//! - `node add NAME --oob-type T ...` (or `node add --file FILE.json`),
//!   `node list`.
//! - `driver install`, `driver list`, `driver activate`, `driver rollback`
//!   ([`commands::driver_install`] and the others, parsed in
//!   [`crate::cli::driver`]).
//!
//! Every command takes `--url` (`DRYDOCK_URL`), `--token` (`DRYDOCK_TOKEN`)
//! and `--output table|json` (`--json` is `--output json`: the server's
//! JSON instead of a table or summary).
//!
//! Exit codes: 0 when the operation succeeded; 1 when it failed (an HTTP
//! error other than 401/403, or a watched task that did not end in
//! `success`); 2 for usage errors, connection failures and 401/403.
//!
//! The token is sent only in the `Authorization` header (marked sensitive),
//! is hidden from `--help` and `Debug`, and is never printed. A node's BMC
//! password is read from `DRYDOCK_OOB_PASSWORD` only, never from a flag.
//!
//! # Layout
//!
//! - [`args`]: the command line and the request bodies built from it.
//! - [`http`]: the HTTP client and its errors.
//! - [`render`]: progress, summaries, tables (comfy-table), JSON.
//! - [`commands`]: what each command does.

pub mod args;
pub mod commands;
pub mod http;
pub mod render;

#[cfg(test)]
mod tests;

pub use args::{
    AddNodeArgs, ConnArgs, CreateTaskArgs, DEFAULT_URL, NodeAction, NodeCommand, Output,
    TaskAction, TaskCommand,
};
pub use commands::{finish, run_node, run_task};
pub use http::{Client, ClientError};
pub use render::format_table;
