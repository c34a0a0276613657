//! The one place that runs `bindgen!` over `wit/`: generated host-side types
//! for the `drydock:driver@0.1.0` package. Nothing outside `drivers` sees them.

#![allow(missing_docs, unsafe_code)]

wasmtime::component::bindgen!({
    path: "../wit",
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

pub use self::drydock::driver::host;
pub use self::drydock::driver::types;
pub use self::exports::drydock::driver::{metadata, network, node, oob};
