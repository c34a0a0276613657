//! Drydock: a bare-metal provisioning host whose hardware drivers are
//! sandboxed WebAssembly components.
//!
//! # Layout
//!
//! - [`model`]: the host's own description of a node and of driver action
//!   parameters (serde types, what the CLI and the API accept).
//! - [`drivers`]: everything about driver components: the only `bindgen!`,
//!   the wasmtime engine and its limits, loading and checking components, the
//!   compile cache, the egress policy, and calling actions in a fresh sandbox.
//! - [`design`]: site designs: fetching, parsing both document forms,
//!   profile inheritance, Drydock's validation rules, nodes for drivers.
//! - [`lifecycle`]: installing, verifying, activating and rolling back
//!   driver versions across the instances of a cluster.
//! - [`netaddr`]: the one list of special IP addresses (loopback,
//!   metadata, link-local, ...) used by egress, fetches and node addresses.
//! - [`tasks`]: the task engine and the orchestrator's plans.
//! - [`cluster`]: leadership (lease, fencing epoch, heartbeats) and the
//!   leader's recovery of dead instances' work.
//! - [`cli`]: the `drydock` command line (parsing and the commands' effects).
//! - [`telemetry`]: `tracing` subscriber set-up.
//! - [`wire`]: the REST API's request and response types, shared by the
//!   API, its OpenAPI document and the CLI client.
//! - [`observe`]: Prometheus metrics at `/metrics` and the web dashboard
//!   at `/`.
//!
//! `main.rs` only parses arguments and calls [`cli::run`].

pub mod api;
pub mod bundled;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod design;
pub mod drivers;
pub mod fleet;
pub mod httpd;
pub mod lifecycle;
pub mod model;
pub mod netaddr;
pub mod node_address;
pub mod observe;
pub mod secrets;
pub mod server;
pub mod sqlite_files;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod wire;
