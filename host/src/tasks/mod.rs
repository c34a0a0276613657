//! Tasks: what a client asks for, how it is split into per-node work, run
//! against drivers, and rolled up into Drydock's result.
//!
//! - [`engine`]: the scheduler (claims queued top-level tasks and fans them
//!   out into per-node subtasks), the executor (claims subtasks, calls
//!   drivers with concurrency limits, retries and deadlines) and the writer
//!   (batches outcomes and messages into the store, completes parents).
//! - [`orchestrator`]: Drydock's orchestrator actions as plans of steps.
//! - [`leader`]: the leader lease, its fencing epoch and heartbeats.
//! - [`filter`]: Drydock node filters (pure).
//! - [`result`]: the result algebra (pure).

pub mod engine;
pub mod filter;
pub mod leader;
pub mod orchestrator;
pub mod result;

pub use engine::{Engine, EngineConfig, EngineError, TaskRequest};
pub use leader::{LeaderConfig, LeaderView, Leadership};
