//! The cluster: which instance leads (the lease, its fencing epoch and the
//! heartbeats, in [`leader`]) and how the leader takes over what dead or
//! stuck instances held ([`recovery`]).
//!
//! Nothing here runs tasks: the task engine (`crate::tasks`) asks
//! [`leader::Leadership`] whether to schedule, and its scheduler calls
//! [`recovery`] while it leads.

pub mod leader;
pub mod recovery;

pub use leader::{LeaderConfig, LeaderView, Leadership};
