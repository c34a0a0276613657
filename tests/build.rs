//! Builds the guest fixtures in `tests/guests/` (wasm32-wasip2 components,
//! their own cargo workspace) into `<root>/target/wasm` and gives the tests
//! each one's path as `GUEST_<NAME>`, e.g. `GUEST_LOOP` for `guest-loop`.

use std::path::{Path, PathBuf};

include!("../build-support/wasm.rs");

/// Every fixture the tests expect; building a guest not listed here, or not
/// building one listed, is an error.
const GUESTS: &[&str] = &[
    "GUEST_LOOP",
    "GUEST_MEMBOMB",
    "GUEST_TRAP",
    "GUEST_HTTP",
    "GUEST_BMC_PROBE",
    "GUEST_OOB_ONLY",
    "GUEST_OTHER_WORLD",
    "GUEST_OLD_VERSION",
    "GUEST_HOSTILE",
    "GUEST_SIM_V0_1",
    "GUEST_DATAGRAM",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .expect("tests/ is inside the repository");
    let components = build_wasm_workspace(Path::new("guests"), &root.join("target").join("wasm"));

    let mut missing: Vec<&str> = GUESTS.to_vec();
    for component in components {
        let stem = component.file_stem().unwrap_or_default().to_string_lossy();
        let name = stem.to_uppercase().replace('-', "_");
        assert!(
            GUESTS.contains(&name.as_str()),
            "guest {} built but not listed in tests/build.rs",
            component.display()
        );
        missing.retain(|guest| *guest != name);
        println!("cargo:rustc-env={name}={}", component.display());
    }
    assert!(missing.is_empty(), "guests not built: {missing:?}");

    // The Redfish-variant example driver (its own workspace, as a vendor's
    // crate is): the conformance tests run the kit on it.
    let example = build_wasm_workspace(
        Path::new("../examples/redfish-variant"),
        &root.join("target").join("wasm"),
    );
    let [component] = example.as_slice() else {
        panic!("examples/redfish-variant built {example:?}, not one component");
    };
    println!(
        "cargo:rustc-env=EXAMPLE_REDFISH_VARIANT={}",
        component.display()
    );
}
