//! Errors of the driver layer: loading a component, and calling an action.

use std::time::Duration;

/// Why a component could not be loaded as a driver.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not WebAssembly at all.
    #[error("not a WebAssembly file (no `\\0asm` header): {0}")]
    NotWasm(String),
    /// A core module, not a component.
    #[error(
        "{0} is a core WebAssembly module, not a component: build it for \
         `wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule(String),
    /// Built against another version of the driver WIT.
    #[error(
        "{origin} was built against {found}; this host serves drydock:driver versions {served}"
    )]
    WrongVersion {
        /// File or source name.
        origin: String,
        /// The package version the component names.
        found: String,
        /// The versions this host serves, e.g. `0.1.0, 0.2.0`.
        served: String,
    },
    /// Exports no Drydock driver interface.
    #[error(
        "{origin} is not a Drydock driver: it exports no drydock:driver/metadata of a version \
         this host serves ({served}) (it exports: {exports})"
    )]
    NotADriver {
        /// File or source name.
        origin: String,
        /// The versions this host serves.
        served: String,
        /// What it does export.
        exports: String,
    },
    /// Imports something the host does not provide.
    #[error("{origin} imports something this host does not provide: {reason}")]
    Imports {
        /// File or source name.
        origin: String,
        /// wasmtime's explanation.
        reason: String,
    },
    /// Exports a driver interface with the wrong shape.
    #[error("{origin} exports {interface} with a type that does not match the WIT: {reason}")]
    ExportType {
        /// File or source name.
        origin: String,
        /// The interface.
        interface: String,
        /// wasmtime's explanation.
        reason: String,
    },
    /// The driver's `info` is unusable.
    #[error("{origin}: bad driver info: {reason}")]
    BadInfo {
        /// File or source name.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// Needs more than one call's share of the sandbox pool (core instances,
    /// memories or tables): refused at load, not at full concurrency.
    #[error("{origin} needs more than one driver call's sandbox gives: {reason}")]
    TooBig {
        /// File or source name.
        origin: String,
        /// What it needs and what a call gets.
        reason: String,
    },
    /// Compilation failed.
    #[error("{origin} failed to compile: {reason}")]
    Compile {
        /// File or source name.
        origin: String,
        /// wasmtime's explanation.
        reason: String,
    },
    /// Reading the file failed.
    #[error("cannot read {origin}: {source}")]
    Io {
        /// File name.
        origin: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Instantiating it to read `info` failed.
    #[error("{origin}: reading driver info failed: {source}")]
    Info {
        /// File or source name.
        origin: String,
        /// The call error.
        #[source]
        source: Box<CallError>,
    },
}

/// The kind of a failure a driver reported, mirroring the WIT `driver-error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverErrorKind {
    /// Device unreachable (retryable).
    Unreachable,
    /// Device busy (retryable).
    Busy,
    /// Timed out (retryable).
    Timeout,
    /// Not supported.
    Unsupported,
    /// Credentials refused.
    Auth,
    /// Bad input.
    InvalidInput,
    /// Other permanent failure.
    Failed,
}

impl DriverErrorKind {
    /// Whether the host retries this kind of failure.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unreachable | Self::Busy | Self::Timeout)
    }
}

/// A failure reported by a driver.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{kind:?}: {message}")]
pub struct DriverError {
    /// What kind of failure.
    pub kind: DriverErrorKind,
    /// The driver's message.
    pub message: String,
}

/// Why a driver call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The driver reported a failure.
    #[error("driver {driver} failed {action}: {error}")]
    Driver {
        /// Driver name.
        driver: String,
        /// Action name.
        action: &'static str,
        /// The failure.
        error: DriverError,
    },
    /// The call ran past its deadline and was cut.
    #[error("driver {driver} exceeded the {limit:?} deadline for {action} and was stopped")]
    Deadline {
        /// Driver name.
        driver: String,
        /// Action name.
        action: &'static str,
        /// The deadline.
        limit: Duration,
    },
    /// The guest tried to grow its memory past the limit.
    #[error(
        "driver {driver} exceeded its memory limit of {limit} bytes in {action} \
         (asked for {requested} bytes) and was stopped"
    )]
    MemoryLimit {
        /// Driver name.
        driver: String,
        /// Action name.
        action: &'static str,
        /// The limit.
        limit: usize,
        /// The size asked for.
        requested: usize,
    },
    /// The guest trapped (panicked, hit `unreachable`, ...).
    #[error("driver {driver} crashed in {action}: {trap}")]
    Trap {
        /// Driver name.
        driver: String,
        /// Action name.
        action: &'static str,
        /// The trap and the guest's last words on stderr.
        trap: String,
    },
    /// The driver does not implement the action's interface.
    #[error("driver {driver} does not implement the {interface} interface (needed for {action})")]
    Unsupported {
        /// Driver name.
        driver: String,
        /// Action name.
        action: &'static str,
        /// The interface.
        interface: super::Interface,
    },
    /// The request is not usable (no node for a node action, missing parameter).
    #[error("invalid request for {action}: {reason}")]
    InvalidRequest {
        /// Action name.
        action: &'static str,
        /// What is missing or wrong.
        reason: String,
    },
    /// The host failed (instantiation, an internal error).
    #[error("host error calling driver {driver}: {reason}")]
    Host {
        /// Driver name.
        driver: String,
        /// What failed.
        reason: String,
    },
    /// A host service the driver used (its key-value store, status
    /// messages, build data) was unavailable, e.g. the database was down:
    /// worth retrying once it is back.
    #[error("driver {driver}: host services unavailable: {reason}")]
    ServicesUnavailable {
        /// Driver name.
        driver: String,
        /// What failed.
        reason: String,
    },
}

impl CallError {
    /// Whether retrying the call may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Driver { error, .. } => error.kind.is_retryable(),
            CallError::Deadline { .. } => true,
            CallError::ServicesUnavailable { .. } => true,
            _ => false,
        }
    }

    /// A short machine-readable kind, for results and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Driver { .. } => "driver",
            CallError::Deadline { .. } => "deadline",
            CallError::MemoryLimit { .. } => "memory_limit",
            CallError::Trap { .. } => "trap",
            CallError::Unsupported { .. } => "unsupported",
            CallError::InvalidRequest { .. } => "invalid_request",
            CallError::Host { .. } => "host",
            CallError::ServicesUnavailable { .. } => "services_unavailable",
        }
    }
}
