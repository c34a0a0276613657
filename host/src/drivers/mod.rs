//! Driver components: loading, checking and calling them in a sandbox.
//!
//! - [`runtime`]: the engine, loading ([`Runtime::load`]) and calls ([`Runtime::call`]).
//! - [`action`]: driver actions by their Drydock names.
//! - [`config`]: per-driver grants and settings, runtime limits.
//! - [`egress`]: which hosts a call may reach, enforced at connect time.
//! - [`services`]: key-value, status messages and build data behind the host imports.
//! - [`error`]: load and call errors.
//! - [`limits`]: quotas on what a call, a driver and a node may consume.
//! - [`package`]: the manifest and Ed25519 signature a component carries
//!   in custom sections.
//! - [`WitVersion`]: the `drydock:driver` WIT versions served side by side.
//! - private: `bindings` (one module per WIT version, the only `bindgen!`s),
//!   `sandbox` (store data and host functions), `kv_order` (per-key order of
//!   key-value writes: what makes compare-and-swap atomic), `datagram` (UDP to the node
//!   BMC), `dispatch` (action → export), `convert` (model ↔ WIT), `cache`
//!   (compiled code on disk), `guest_log` (guest logs → tracing), `pool`
//!   (the engine's configuration and its pool of sandboxes), `burst`
//!   (the allocator's free memory given back after a burst of calls).

pub mod action;
mod bindings;
mod burst;
mod cache;
pub mod config;
mod convert;
mod datagram;
mod dispatch;
pub mod egress;
pub mod error;
mod guest_log;
pub use guest_log::EVENT as GUEST_LOG_EVENT;
#[cfg(test)]
pub(crate) use guest_log::recorder as guest_log_recorder;
pub use guest_log::{Sites as LogSites, sites as log_sites};
pub mod kv_ledger;
mod kv_order;
pub mod limits;
pub mod package;
mod pool;
pub mod registry;
pub mod runtime;
mod sandbox;
pub mod services;

pub use action::{Action, Interface};
pub use cache::CompileCache;
pub use config::{DriverConfig, GrantedSecrets, RuntimeConfig};
pub use egress::{EgressGrant, TlsSettings};
pub use error::{CallError, DriverError, DriverErrorKind, LoadError};
pub use limits::DriverLimits;
pub use registry::{DriverSet, Installed};
pub use runtime::{CallRequest, Driver, DriverInfo, Runtime};
pub use services::{CallScope, DriverServices, KvUsage, MemoryServices};

pub use bindings::WitVersion;
