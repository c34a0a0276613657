//! The versions of the `drydock:driver` WIT this host serves, side by side:
//! one private bindings module per version (the only `bindgen!`s), one enum
//! over them ([`WitVersion`]), and the exports of a loaded component in that
//! version's types ([`Exports`]), type-checked once at load and called by
//! index ([`calls`]).
//!
//! - [`v0_1`]: `wit/0.1.0`, frozen as released. Its `host` and `types`
//!   interfaces are the ones `sandbox` implements; every later version's
//!   host functions run that code, converting only the types.
//! - [`v0_2`]: `wit/0.2.0`: typed sizes, `host.config-all`,
//!   `host.kv-compare-and-swap`, `datagram`,
//!   `provisioner`.
//!
//! A component's version is read from the names it imports and exports
//! (`drydock:driver/metadata@0.2.0`); a component naming a version this host
//! does not serve is refused with the versions it does serve.

#[macro_use]
mod calls;
pub(crate) mod v0_1;
pub(crate) mod v0_2;

use super::action::Interface;
use super::error::LoadError;
use super::runtime::DriverInfo;
use super::sandbox::CallState;
use std::fmt;
use wasmtime::component::{Component, Instance, InstancePre, Linker};
use wasmtime::{Engine, Store};

pub(crate) use v0_1::{host, types};

/// A version of the `drydock:driver` WIT package this host serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum WitVersion {
    /// `drydock:driver@0.1.0`, frozen as released.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `drydock:driver@0.2.0`, the version the SDK builds.
    #[serde(rename = "0.2.0")]
    V0_2,
}

impl WitVersion {
    /// Every version this host serves, oldest first.
    pub const SERVED: &'static [WitVersion] = &[WitVersion::V0_1, WitVersion::V0_2];

    /// The newest version (the one the SDK builds).
    pub const CURRENT: WitVersion = WitVersion::V0_2;

    /// The version number, e.g. `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "0.1.0",
            WitVersion::V0_2 => "0.2.0",
        }
    }

    /// The version with this number, if served.
    pub fn parse(number: &str) -> Option<Self> {
        Self::SERVED.iter().copied().find(|v| v.as_str() == number)
    }

    /// The served versions as text: `0.1.0, 0.2.0`.
    pub fn served_list() -> String {
        Self::SERVED
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The interfaces a driver of this version can implement.
    pub fn interfaces(self) -> &'static [Interface] {
        match self {
            WitVersion::V0_1 => &[Interface::Oob, Interface::Node, Interface::Network],
            WitVersion::V0_2 => &[
                Interface::Oob,
                Interface::Node,
                Interface::Network,
                Interface::Provisioner,
            ],
        }
    }

    /// Reads the version a component was built against from the
    /// `drydock:driver/...@VERSION` names it imports and exports. Refuses a
    /// version this host does not serve, a component mixing versions, and one
    /// naming no `drydock:driver` interface at all.
    pub(crate) fn of_component(
        engine: &Engine,
        origin: &str,
        component: &Component,
    ) -> Result<Self, LoadError> {
        let ty = component.component_type();
        let names: Vec<String> = ty
            .imports(engine)
            .map(|(n, _)| n.to_owned())
            .chain(ty.exports(engine).map(|(n, _)| n.to_owned()))
            .collect();
        let mut found: Vec<&str> = names
            .iter()
            .filter_map(|n| n.strip_prefix("drydock:driver/"))
            .filter_map(|rest| rest.split_once('@').map(|(_, v)| v))
            .collect();
        found.sort_unstable();
        found.dedup();
        let wrong = |found: String| LoadError::WrongVersion {
            origin: origin.to_owned(),
            found,
            served: Self::served_list(),
        };
        match found.as_slice() {
            [] => Err(LoadError::NotADriver {
                origin: origin.to_owned(),
                served: Self::served_list(),
                exports: if names.is_empty() {
                    "nothing".into()
                } else {
                    names.join(", ")
                },
            }),
            [one] => Self::parse(one).ok_or_else(|| wrong(format!("drydock:driver@{one}"))),
            several => Err(wrong(format!(
                "several versions at once ({})",
                several
                    .iter()
                    .map(|v| format!("drydock:driver@{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

impl fmt::Display for WitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Links the host side of every served version: each version's `host` and
/// `types` (and, from 0.2.0, `datagram`) under its own versioned names.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    v0_1::add_to_linker(linker)?;
    v0_2::add_to_linker(linker)
}

/// A loaded component's driver exports, in its version's types (looked up
/// and type-checked once at load, called by index).
pub(crate) enum Exports {
    /// A 0.1.0 driver.
    V0_1(v0_1::Exports),
    /// A 0.2.0 driver.
    V0_2(v0_2::Exports),
}

/// A call of the `metadata` export, in the component's version.
pub(crate) enum Metadata {
    /// 0.1.0's.
    V0_1(v0_1::metadata::Guest),
    /// 0.2.0's.
    V0_2(v0_2::metadata::Guest),
}

impl Exports {
    /// Whether the component of `pre` (of `version`) exports `metadata`,
    /// what every driver exports.
    pub(crate) fn is_driver(version: WitVersion, pre: &InstancePre<CallState>) -> bool {
        match version {
            WitVersion::V0_1 => v0_1::Exports::is_driver(pre),
            WitVersion::V0_2 => v0_2::Exports::is_driver(pre),
        }
    }

    /// Looks up and type-checks every exported driver interface of a
    /// component of `version` on `instance` (an instance of `pre`); returns
    /// them and `metadata`. On a mismatch, the interface and wasmtime's
    /// reason.
    pub(crate) fn load(
        version: WitVersion,
        pre: &InstancePre<CallState>,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> Result<(Self, Metadata), (&'static str, wasmtime::Error)> {
        match version {
            WitVersion::V0_1 => v0_1::Exports::load(pre, store, instance)
                .map(|(e, m)| (Exports::V0_1(e), Metadata::V0_1(m))),
            WitVersion::V0_2 => v0_2::Exports::load(pre, store, instance)
                .map(|(e, m)| (Exports::V0_2(e), Metadata::V0_2(m))),
        }
    }

    /// The component's WIT version.
    pub(crate) fn version(&self) -> WitVersion {
        match self {
            Exports::V0_1(_) => WitVersion::V0_1,
            Exports::V0_2(_) => WitVersion::V0_2,
        }
    }

    /// Whether the component exports `iface`.
    pub(crate) fn has(&self, iface: Interface) -> bool {
        match self {
            Exports::V0_1(e) => e.has(iface),
            Exports::V0_2(e) => e.has(iface),
        }
    }
}

impl Metadata {
    /// Calls `info` and converts the answer.
    pub(crate) async fn info(&self, store: &mut Store<CallState>) -> wasmtime::Result<DriverInfo> {
        match self {
            Metadata::V0_1(m) => m.call_info(store).await.map(v0_1::driver_info),
            Metadata::V0_2(m) => m.call_info(store).await.map(v0_2::driver_info),
        }
    }
}
