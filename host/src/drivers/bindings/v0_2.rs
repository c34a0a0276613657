//! Host bindings of `drydock:driver@0.2.0` (`wit/0.2.0`). The host functions
//! 0.2.0 shares with 0.1.0 run 0.1.0's implementation (`sandbox`), with the
//! types converted; `config-all`, `kv-compare-and-swap` and `datagram` are
//! new.

#![allow(missing_docs, unsafe_code)]

use super::super::action::Interface;
use super::super::datagram::DatagramError;
use super::super::runtime::{DriverInfo, Outbound};
use super::super::sandbox::CallState;
use super::WitVersion;
use super::v0_1;
use wasmtime::Store;
use wasmtime::component::{HasSelf, Instance, InstancePre, Linker};

wasmtime::component::bindgen!({
    path: "../wit/0.2.0",
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

pub(crate) use self::drydock::driver::{datagram, host, types};
pub(crate) use self::exports::drydock::driver::metadata;

/// Links 0.2.0's `host`, `types` and `datagram`.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    host::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)?;
    types::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)?;
    datagram::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)
}

driver_interfaces!();

exported_interface! {
    /// `provisioner`'s functions, checked at load.
    ProvisionerFuncs = "provisioner" {
        call_relabel_node / relabel_node = "relabel-node"(node: &types::Node, labels: &[(String, String)]) -> Result<(), types::DriverError>;
    }
}

/// The driver exports of a 0.2.0 component, looked up and type-checked
/// once at load.
pub(crate) struct Exports {
    pub(crate) oob: Option<OobFuncs>,
    pub(crate) node: Option<NodeFuncs>,
    pub(crate) network: Option<NetworkFuncs>,
    pub(crate) provisioner: Option<ProvisionerFuncs>,
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
        let v = WitVersion::V0_2.as_str();
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
            provisioner: ProvisionerFuncs::load(v, pre, store, instance)
                .transpose()
                .map_err(|e| ("provisioner", e))?,
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
            Interface::Provisioner => self.provisioner.is_some(),
        }
    }
}

/// A 0.2.0 `driver-info` in host terms.
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
                metadata::DriverInterface::Provisioner => Interface::Provisioner,
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

impl types::Host for CallState {}

fn log_level(l: types::LogLevel) -> v0_1::types::LogLevel {
    match l {
        types::LogLevel::Trace => v0_1::types::LogLevel::Trace,
        types::LogLevel::Debug => v0_1::types::LogLevel::Debug,
        types::LogLevel::Info => v0_1::types::LogLevel::Info,
        types::LogLevel::Warn => v0_1::types::LogLevel::Warn,
        types::LogLevel::Error => v0_1::types::LogLevel::Error,
    }
}

fn limit(l: v0_1::types::LimitExceeded) -> types::LimitExceeded {
    types::LimitExceeded {
        limit: l.limit,
        max: l.max,
        message: l.message,
    }
}

type Answer = wasmtime::Result<Result<(), types::LimitExceeded>>;

fn answer(a: wasmtime::Result<Result<(), v0_1::types::LimitExceeded>>) -> Answer {
    a.map(|r| r.map_err(limit))
}

impl host::Host for CallState {
    async fn log(&mut self, level: types::LogLevel, message: String) -> Answer {
        answer(v0_1::host::Host::log(self, log_level(level), message).await)
    }

    async fn log_threshold(&mut self) -> wasmtime::Result<Option<types::LogLevel>> {
        Ok(self.recorded_log_level().map(|l| match l {
            v0_1::types::LogLevel::Trace => types::LogLevel::Trace,
            v0_1::types::LogLevel::Debug => types::LogLevel::Debug,
            v0_1::types::LogLevel::Info => types::LogLevel::Info,
            v0_1::types::LogLevel::Warn => types::LogLevel::Warn,
            v0_1::types::LogLevel::Error => types::LogLevel::Error,
        }))
    }

    async fn status(&mut self, message: String, is_error: bool) -> Answer {
        answer(v0_1::host::Host::status(self, message, is_error).await)
    }

    async fn config_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        v0_1::host::Host::config_get(self, key).await
    }

    async fn secret_get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        v0_1::host::Host::secret_get(self, name).await
    }

    async fn config_keys(&mut self) -> wasmtime::Result<Vec<String>> {
        v0_1::host::Host::config_keys(self).await
    }

    async fn config_all(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.settings().clone().into_iter().collect())
    }

    async fn kv_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        v0_1::host::Host::kv_get(self, key).await
    }

    async fn kv_set(&mut self, key: String, value: String) -> Answer {
        answer(v0_1::host::Host::kv_set(self, key, value).await)
    }

    async fn kv_delete(&mut self, key: String) -> Answer {
        answer(v0_1::host::Host::kv_delete(self, key).await)
    }

    async fn kv_compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        value: Option<String>,
    ) -> wasmtime::Result<Result<bool, types::LimitExceeded>> {
        self.kv_swap(&key, expected.as_deref(), value.as_deref())
            .await
            .map(|r| r.map_err(limit))
    }

    async fn deadline_remaining_ms(&mut self) -> wasmtime::Result<u64> {
        v0_1::host::Host::deadline_remaining_ms(self).await
    }

    async fn sleep_ms(&mut self, ms: u64) -> wasmtime::Result<bool> {
        v0_1::host::Host::sleep_ms(self, ms).await
    }

    async fn build_data(&mut self, generator: String, format: String, content: String) -> Answer {
        answer(v0_1::host::Host::build_data(self, generator, format, content).await)
    }
}

fn datagram_error(e: DatagramError) -> types::DatagramError {
    match e {
        DatagramError::Denied(m) => types::DatagramError::Denied(m),
        DatagramError::Limit(l) => types::DatagramError::Limit(limit(l)),
        DatagramError::Timeout => types::DatagramError::Timeout,
        DatagramError::Unreachable(m) => types::DatagramError::Unreachable(m),
    }
}

impl datagram::Host for CallState {
    async fn exchange(
        &mut self,
        port: u16,
        payload: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, types::DatagramError>> {
        Ok(self
            .datagrams
            .exchange(port, &payload, timeout_ms)
            .await
            .map_err(datagram_error))
    }

    async fn send(
        &mut self,
        port: u16,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), types::DatagramError>> {
        Ok(self
            .datagrams
            .send(port, &payload)
            .await
            .map_err(datagram_error))
    }

    async fn receive(
        &mut self,
        port: u16,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, types::DatagramError>> {
        Ok(self
            .datagrams
            .receive(port, timeout_ms)
            .await
            .map_err(datagram_error))
    }
}
