//! Tasks: what a client asks for, how it is split into per-node work, run
//! against drivers, and rolled up into Drydock's result.
//!
//! - [`engine`]: the façade (start, submit, cancel, wait) over the engine's
//!   components: `scheduler` (claims and fans out top-level tasks),
//!   `executor` and `call` (run driver calls), `writer` (batched writes),
//!   `settler` (completes parents, advances orchestrations through
//!   `orchestration`), `bootactions` (hands out and settles boot actions),
//!   `kv_reads` (gathers drivers' key-value reads into batches),
//!   joined by channels; `shared` holds what they share.
//! - [`drain`]: how an instance leaves cleanly (the order of its steps).
//! - [`orchestrator`]: Drydock's orchestrator actions as plans of steps.
//! - [`filter`]: Drydock node filters (pure).
//! - [`result`]: the result algebra (pure).
//!
//! Leadership and recovery live in [`crate::cluster`].

mod bootactions;
mod call;
mod dispatch;
pub mod drain;
pub mod engine;
mod executor;
pub mod filter;
mod gate;
mod kv_reads;
mod orchestration;
pub mod orchestrator;
mod probe;
pub mod result;
mod scheduler;
mod services;
mod settler;
mod shared;
mod writer;

pub use crate::cluster::leader;
pub use drain::Drained;
pub use engine::{Engine, EngineConfig, EngineError, ServiceTokenSource, TaskRequest};
pub use leader::{LeaderConfig, LeaderView, Leadership};
pub use probe::ProbeError;
