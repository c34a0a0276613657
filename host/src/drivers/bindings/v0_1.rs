//! Host bindings of `drydock:driver@0.1.0` (`wit/0.1.0`), frozen as
//! released. `sandbox` implements this version's `host` interface; later
//! versions run that implementation.

#![allow(missing_docs, unsafe_code)]

use super::super::action::Interface;
use super::super::runtime::{DriverInfo, Outbound};
use super::super::sandbox::CallState;
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
pub(crate) use self::exports::drydock::driver::{metadata, network, node, oob};

/// Links 0.1.0's `host` and `types`.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    host::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)?;
    types::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)
}

/// The driver exports of a 0.1.0 component, looked up by index at load.
pub(crate) struct Exports {
    pub(crate) metadata: metadata::GuestIndices,
    pub(crate) oob: Option<oob::GuestIndices>,
    pub(crate) node: Option<node::GuestIndices>,
    pub(crate) network: Option<network::GuestIndices>,
}

impl Exports {
    /// The exports of `pre`; `None` without `metadata`.
    pub(crate) fn new(pre: &InstancePre<CallState>) -> Option<Self> {
        Some(Self {
            metadata: metadata::GuestIndices::new(pre).ok()?,
            oob: oob::GuestIndices::new(pre).ok(),
            node: node::GuestIndices::new(pre).ok(),
            network: network::GuestIndices::new(pre).ok(),
        })
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

    /// Type-checks every export; returns `metadata`.
    pub(crate) fn check(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> Result<metadata::Guest, (&'static str, wasmtime::Error)> {
        if let Some(i) = &self.oob {
            i.load(&mut *store, instance).map_err(|e| ("oob", e))?;
        }
        if let Some(i) = &self.node {
            i.load(&mut *store, instance).map_err(|e| ("node", e))?;
        }
        if let Some(i) = &self.network {
            i.load(&mut *store, instance).map_err(|e| ("network", e))?;
        }
        self.metadata
            .load(store, instance)
            .map_err(|e| ("metadata", e))
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
