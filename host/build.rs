//! Builds the drivers shipped with Drydock (`drivers/`, wasm32-wasip2
//! components in their own cargo workspace) into `<root>/target/wasm` (or
//! `$DRYDOCK_WASM_TARGET_DIR`), and
//! hands each one's path to the crate as `DRYDOCK_BUNDLED_<NAME>` so the
//! binary embeds them (`drydock::bundled`).

use std::path::{Path, PathBuf};

include!("../build-support/wasm.rs");

fn main() {
    // sqlx::migrate! embeds the migrations at compile time.
    println!("cargo:rerun-if-changed=migrations");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .expect("host/ is inside the repository");
    // DRYDOCK_WASM_TARGET_DIR: where another build of the host (the fuzz
    // build, run beside the tests' build) puts its own copy of the drivers.
    println!("cargo:rerun-if-env-changed=DRYDOCK_WASM_TARGET_DIR");
    let wasm_dir = std::env::var_os("DRYDOCK_WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("wasm"));
    let components = build_wasm_workspace(Path::new("../drivers"), &wasm_dir);
    let mut found_sim = false;
    for component in components {
        let stem = component.file_stem().unwrap_or_default().to_string_lossy();
        let Some(name) = stem.strip_prefix("drydock_driver_") else {
            panic!("unexpected component {} in drivers/", component.display());
        };
        found_sim |= name == "sim";
        println!(
            "cargo:rustc-env=DRYDOCK_BUNDLED_{}={}",
            name.to_uppercase(),
            component.display()
        );
    }
    assert!(found_sim, "drivers/ did not produce the sim driver");
}
