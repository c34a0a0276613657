//! Host bindings of `drydock:driver@0.1.0` (`wit/0.1.0`), frozen as
//! released. `sandbox` implements this version's `host` interface; later
//! versions run that implementation.

#![allow(missing_docs, unsafe_code)]

use super::super::action::Interface;
use super::super::runtime::{DriverInfo, Outbound};
use super::super::sandbox::CallState;
use super::WitVersion;
use wasmtime::Store;
use wasmtime::component::{HasSelf, Instance, InstancePre, Linker};

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "drydock:driver/full-driver",
    imports: { default: async | trappable },
    exports: { default: async },
    require_store_data_send: true,
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub(crate) use self::drydock::driver::{host, types};
pub(crate) use self::exports::drydock::driver::metadata;

/// Links 0.1.0's `host` and `types`.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    host::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)?;
    types::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)
}

driver_interfaces!();

/// The driver exports of a 0.1.0 component, looked up and type-checked
/// once at load.
pub(crate) struct Exports {
    pub(crate) oob: Option<OobFuncs>,
    pub(crate) node: Option<NodeFuncs>,
    pub(crate) network: Option<NetworkFuncs>,
}

impl Exports {
    /// Whether the component of `pre` exports `metadata`.
    pub(crate) fn is_driver(pre: &InstancePre<CallState>) -> bool {
        metadata::GuestIndices::new(pre).is_ok()
    }

    /// Looks up and type-checks every exported driver interface on
    /// `instance` (an instance of `pre`); returns them and `metadata`. On a
    /// mismatch, the interface and wasmtime's reason.
    pub(crate) fn load(
        pre: &InstancePre<CallState>,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> Result<(Self, metadata::Guest), (&'static str, wasmtime::Error)> {
        let v = WitVersion::V0_1.as_str();
        let exports = Self {
            oob: OobFuncs::load(v, pre, store, instance)
                .transpose()
                .map_err(|e| ("oob", e))?,
            node: NodeFuncs::load(v, pre, store, instance)
                .transpose()
                .map_err(|e| ("node", e))?,
            network: NetworkFuncs::load(v, pre, store, instance)
                .transpose()
                .map_err(|e| ("network", e))?,
        };
        let metadata = metadata::GuestIndices::new(pre)
            .and_then(|m| m.load(&mut *store, instance))
            .map_err(|e| ("metadata", e))?;
        Ok((exports, metadata))
    }

    /// Whether the component exports `iface`.
    pub(crate) fn has(&self, iface: Interface) -> bool {
        match iface {
            Interface::Oob => self.oob.is_some(),
            Interface::Node => self.node.is_some(),
            Interface::Network => self.network.is_some(),
            Interface::Provisioner => false,
        }
    }
}

/// A 0.1.0 `driver-info` in host terms.
pub(crate) fn driver_info(info: metadata::DriverInfo) -> DriverInfo {
    DriverInfo {
        name: info.name,
        version: info.version,
        vendor: info.vendor,
        description: info.description,
        interfaces: info
            .interfaces
            .into_iter()
            .map(|i| match i {
                metadata::DriverInterface::Oob => Interface::Oob,
                metadata::DriverInterface::Node => Interface::Node,
                metadata::DriverInterface::Network => Interface::Network,
            })
            .collect(),
        oob_types: info.oob_types,
        outbound: Outbound {
            hosts: info.outbound.hosts,
            node_bmc: info.outbound.node_bmc,
        },
        unsafe_to_repeat: info.unsafe_to_repeat,
    }
}
