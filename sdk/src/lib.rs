//! Write Drydock drivers as WebAssembly components.
//!
//! A Drydock driver is a `wasm32-wasip2` component the host loads into a
//! sandbox and calls once per action: power a node on, deploy an OS, move a
//! switch port to a VLAN. This crate hides the generated WIT bindings
//! (the version in [`WIT_PACKAGE`]) behind plain Rust traits, so a driver
//! crate depends on `drydock-sdk` alone.
//!
//! # Layout
//!
//! - [`Driver`]: what the driver is (name, version, claimed oob types, needed
//!   outbound access).
//! - [`OobDriver`], [`NodeDriver`], [`NetworkDriver`]: one method per action of
//!   the WIT interfaces `oob`, `node` and `network`. Every method has a default
//!   answering [`DriverError::Unsupported`]; write only what the device does.
//! - [`export_driver!`]: registers the driver and the interfaces it implements.
//!   The component always exports the `full-driver` world; unregistered
//!   interfaces answer `unsupported` and `info().interfaces` lists exactly the
//!   registered ones.
//! - [`Ctx`]: the host during a call: logs, task status, configuration, a
//!   persistent key-value store, the deadline and deadline-aware sleeping.
//! - [`http`]: a small blocking HTTP client over `wasi:http`; the host enforces
//!   the operator's egress grant and does TLS.
//! - [`types`]: the WIT records and enums (also re-exported at the root).
//! - [`retry`]: retrying with backoff within the call's deadline.
//! - [`encoding`]: base64, URL-encoding and multipart bodies (from crates).
//! - [`random`]: nonces and random numbers from the WASI random interface.
//! - [`redfish`]: a Redfish client (service root, systems, sessions, resets,
//!   boot override, task monitors) for BMC drivers.
//!
//! # Example
//!
//! ```no_run
//! use drydock_sdk::prelude::*;
//!
//! /// Acme BMCs, driven through their JSON API.
//! struct Acme;
//!
//! impl Driver for Acme {
//!     const NAME: &'static str = "acme";
//!     const VERSION: &'static str = "1.0.0";
//!     const VENDOR: &'static str = "Acme Corp";
//!     const DESCRIPTION: &'static str = "Acme BMCs over their JSON API";
//!     const OOB_TYPES: &'static [&'static str] = &["acme"];
//!     const NODE_BMC: bool = true;
//! }
//!
//! impl OobDriver for Acme {
//!     fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
//!         let bmc = node.oob.address.as_deref().ok_or_else(|| {
//!             DriverError::InvalidInput(format!("node {} has no BMC address", node.name))
//!         })?;
//!         let request = |req: http::Request| match &node.oob.credentials {
//!             Some(c) => req.basic_auth(&c.username, &c.password),
//!             None => req,
//!         };
//!         request(http::Request::post(format!("https://{bmc}/api/power")))
//!             .json(&serde_json::json!({ "state": "on" }))?
//!             .send()?
//!             .error_for_status()?;
//!         ctx.info(format!("asked {bmc} to power {} on", node.name));
//!         ctx.poll_until(Duration::from_secs(2), "the BMC to report power on", || {
//!             let state: serde_json::Value = request(http::Request::get(format!(
//!                 "https://{bmc}/api/power"
//!             )))
//!             .send()?
//!             .error_for_status()?
//!             .json()?;
//!             Ok((state["state"] == "on").then_some(()))
//!         })
//!     }
//!     // Every other oob action answers `unsupported`.
//! }
//!
//! drydock_sdk::export_driver!(Acme: oob);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` in a crate with
//! `crate-type = ["cdylib"]`: the output `.wasm` is already a component.
#![deny(missing_docs)]

mod ctx;
pub mod datagram;
mod driver;
pub mod encoding;
#[doc(hidden)]
pub mod export;
pub mod http;
pub mod random;
pub mod redfish;
pub mod retry;
pub mod types;

pub use ctx::Ctx;
pub use driver::{Driver, NetworkDriver, NodeDriver, OobDriver, ProvisionerDriver};
pub use types::*;

/// The version of the `drydock:driver` WIT this SDK builds drivers against
/// (named once, in the SDK's `build.rs`).
pub const WIT_VERSION: &str = env!("DRYDOCK_WIT_VERSION");

/// The WIT package this SDK builds drivers against, e.g.
/// `drydock:driver@0.2.0`. A host serves a list of versions and refuses
/// components built against any other.
pub const WIT_PACKAGE: &str = concat!("drydock:driver@", env!("DRYDOCK_WIT_VERSION"));

/// Result of a driver action.
pub type Result<T, E = DriverError> = std::result::Result<T, E>;

/// The bindings `wit-bindgen` generates for the `full-driver` world. Not a
/// stable API: use the traits, [`Ctx`] and [`types`] instead.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod wit {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

/// The names a driver crate usually needs: `use drydock_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::types::*;
    pub use crate::{
        Ctx, Driver, NetworkDriver, NodeDriver, OobDriver, ProvisionerDriver, Result, datagram,
        http,
    };
    pub use std::time::Duration;
}

/// Logs a line at a level, formatting it only if the host records that
/// level for this driver ([`Ctx::log_enabled`]):
/// `drydock_sdk::log!(ctx, LogLevel::Debug, "{} is {}", node.name, state)`.
/// [`trace!`], [`debug!`], [`info!`], [`warn!`] and [`error!`] name the
/// level.
#[macro_export]
macro_rules! log {
    ($ctx:expr, $level:expr, $($arg:tt)+) => {{
        let ctx: &$crate::Ctx = &$ctx;
        let level: $crate::LogLevel = $level;
        if ctx.log_enabled(level) {
            ctx.log(level, ::std::format!($($arg)+));
        }
    }};
}

/// Logs a `trace` line, formatted only if the host records it (see [`log!`]).
#[macro_export]
macro_rules! trace {
    ($ctx:expr, $($arg:tt)+) => { $crate::log!($ctx, $crate::LogLevel::Trace, $($arg)+) };
}

/// Logs a `debug` line, formatted only if the host records it (see [`log!`]).
#[macro_export]
macro_rules! debug {
    ($ctx:expr, $($arg:tt)+) => { $crate::log!($ctx, $crate::LogLevel::Debug, $($arg)+) };
}

/// Logs an `info` line, formatted only if the host records it (see [`log!`]).
#[macro_export]
macro_rules! info {
    ($ctx:expr, $($arg:tt)+) => { $crate::log!($ctx, $crate::LogLevel::Info, $($arg)+) };
}

/// Logs a `warn` line, formatted only if the host records it (see [`log!`]).
#[macro_export]
macro_rules! warn {
    ($ctx:expr, $($arg:tt)+) => { $crate::log!($ctx, $crate::LogLevel::Warn, $($arg)+) };
}

/// Logs an `error` line, formatted only if the host records it (see [`log!`]).
#[macro_export]
macro_rules! error {
    ($ctx:expr, $($arg:tt)+) => { $crate::log!($ctx, $crate::LogLevel::Error, $($arg)+) };
}

/// Registers a driver and the interfaces it implements, and exports the
/// component.
///
/// `export_driver!(MyDriver: oob, node, network)` takes any non-empty subset of
/// `oob`, `node`, `network` and `provisioner`; `MyDriver` implements
/// [`Driver`] and the trait of each listed interface ([`OobDriver`],
/// [`NodeDriver`], [`NetworkDriver`], [`ProvisionerDriver`]). The component exports every interface of the
/// `full-driver` world: those not listed answer `unsupported` for every
/// action, and `info().interfaces` lists exactly the listed ones. Invoke it
/// once per crate.
///
/// ```no_run
/// use drydock_sdk::prelude::*;
///
/// struct Switchy;
///
/// impl Driver for Switchy {
///     const NAME: &'static str = "switchy";
///     const VERSION: &'static str = "0.1.0";
///     const VENDOR: &'static str = "Example";
///     const DESCRIPTION: &'static str = "Moves ports between VLANs";
///     const OUTBOUND_HOSTS: &'static [&'static str] = &["10.0.0.0/24:443"];
/// }
///
/// impl NetworkDriver for Switchy {
///     fn validate_network_services(ctx: &Ctx, switch: &SwitchInfo) -> Result<()> {
///         ctx.info(format!("{} looks fine", switch.name));
///         Ok(())
///     }
/// }
///
/// drydock_sdk::export_driver!(Switchy: network);
/// ```
///
/// An unknown interface name does not compile:
///
/// ```compile_fail
/// # use drydock_sdk::prelude::*;
/// # struct Bmc;
/// # impl Driver for Bmc {
/// #     const NAME: &'static str = "bmc";
/// #     const VERSION: &'static str = "0.1.0";
/// #     const VENDOR: &'static str = "Example";
/// #     const DESCRIPTION: &'static str = "";
/// # }
/// # impl OobDriver for Bmc {}
/// drydock_sdk::export_driver!(Bmc: oob, ipmi); // error: unknown driver interface `ipmi`
/// ```
#[macro_export]
macro_rules! export_driver {
    ($driver:ty : $($interface:ident),+ $(,)?) => {
        const _: () = {
            struct Registration;
            impl $crate::export::Registration for Registration {
                type Driver = $driver;
                type Oob = $crate::__pick!(oob, $driver, $($interface)+);
                type Node = $crate::__pick!(node, $driver, $($interface)+);
                type Network = $crate::__pick!(network, $driver, $($interface)+);
                type Provisioner = $crate::__pick!(provisioner, $driver, $($interface)+);
                const INTERFACES: &'static [$crate::DriverInterface] =
                    &[$($crate::__interface!($interface)),+];
            }
            type Component = $crate::export::Component<Registration>;
            $crate::wit::export!(Component with_types_in $crate::wit);
        };
    };
}

/// `$driver` if `$want` is among the listed interfaces, else the placeholder
/// answering `unsupported`.
#[doc(hidden)]
#[macro_export]
macro_rules! __pick {
    (oob, $driver:ty, oob $($rest:ident)*) => { $driver };
    (node, $driver:ty, node $($rest:ident)*) => { $driver };
    (network, $driver:ty, network $($rest:ident)*) => { $driver };
    (provisioner, $driver:ty, provisioner $($rest:ident)*) => { $driver };
    ($want:ident, $driver:ty, $other:ident $($rest:ident)*) => {
        $crate::__pick!($want, $driver, $($rest)*)
    };
    ($want:ident, $driver:ty,) => { $crate::export::Unsupported };
}

/// The [`DriverInterface`] named by an `export_driver!` keyword.
#[doc(hidden)]
#[macro_export]
macro_rules! __interface {
    (oob) => {
        $crate::DriverInterface::Oob
    };
    (node) => {
        $crate::DriverInterface::Node
    };
    (network) => {
        $crate::DriverInterface::Network
    };
    (provisioner) => {
        $crate::DriverInterface::Provisioner
    };
    ($other:ident) => {
        ::core::compile_error!(::core::concat!(
            "unknown driver interface `",
            ::core::stringify!($other),
            "`: expected oob, node, network or provisioner"
        ))
    };
}
