//! Names the `drydock:driver` WIT version this SDK builds drivers against:
//! the one place the SDK spells it. Writes the `wit_bindgen::generate!`
//! invocation for that version's `full-driver` world (`wit/<version>/`)
//! into `OUT_DIR/bindings.rs`, and hands the version to the crate as
//! `DRYDOCK_WIT_VERSION`.

use std::path::PathBuf;

/// The WIT version the SDK targets.
const WIT_VERSION: &str = "0.2.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env=DRYDOCK_WIT_VERSION={WIT_VERSION}");
    let types = |name: &str| format!("\"drydock:driver/types@{WIT_VERSION}/{name}\"");
    let serde = r#"[#[derive(serde::Serialize, serde::Deserialize)]]"#;
    let serde_kebab =
        r#"[#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = "kebab-case")]]"#;
    let bindings = format!(
        r#"wit_bindgen::generate!({{
    world: "full-driver",
    path: "../wit/{WIT_VERSION}",
    with: {{
        // Keep credentials out of `Debug` output (see `types::Credentials`).
        {credentials}: crate::types::Credentials,
        // The HTTP client uses the `wasip2` crate's bindings.
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    }},
    additional_type_attributes: {{
        {power_state}: {serde_kebab},
        {boot_device}: {serde_kebab},
        {boot_target}: {serde},
        {port_mode}: {serde_kebab},
        {port_vlans}: {serde},
        {node_identity}: {serde},
        {size}: {serde_kebab},
    }},
    additional_derives: [PartialEq],
    pub_export_macro: true,
}});
"#,
        credentials = types("credentials"),
        power_state = types("power-state"),
        boot_device = types("boot-device"),
        boot_target = types("boot-target"),
        port_mode = types("port-mode"),
        port_vlans = types("port-vlans"),
        node_identity = types("node-identity"),
        size = types("size"),
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("bindings.rs"), bindings).expect("writing OUT_DIR/bindings.rs");
}
