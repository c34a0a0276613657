//! Fleet truth: what the hardware is, beside what Drydock believes.
//!
//! - [`sync`]: the periodic power and health sync (led by the leader,
//!   executed by every instance), drift, and automatic maintenance of nodes
//!   whose BMC stops answering.
//! - [`outcomes`]: the sync's batching writer of read outcomes.
//! - [`timeline`]: each node's history (driver calls, state changes, drift,
//!   maintenance), written in batches and bounded by age and count.
//!
//! The task engine records its calls in the timeline and skips nodes in
//! maintenance (`Shared::skip_maintenance`); the API's `/nodes/{name}/events`
//! and `/nodes/{name}/maintenance` routes live in `crate::api::fleet`.

pub mod outcomes;
pub mod sync;
pub mod timeline;

pub use sync::{FleetStats, SyncConfig};
pub use timeline::{Timeline, redact};
