//! Signed driver packages for the lifecycle tests and benchmark: the
//! bundled sim driver repackaged under another version.

use drydock::drivers::package::{self, Manifest, TrustedKey};

/// A fresh vendor key: the secret key, and the operator's trusted entry for
/// it (vendor `drydock-tests`).
pub fn key() -> (String, TrustedKey) {
    let secret = package::generate_key().expect("a key");
    let trusted = TrustedKey {
        vendor: "drydock-tests".into(),
        key: package::public_key(&secret).expect("its public key"),
        names: vec!["sim".into()],
    };
    (secret, trusted)
}

/// The bundled sim driver repackaged as `version`: a manifest section,
/// `padding` bytes in a custom section (to make a larger component), then
/// signed with `secret` (unsigned with None).
pub fn sim_package(version: &str, secret: Option<&str>, padding: usize) -> Vec<u8> {
    sim_package_of(drydock::bundled::SIM, version, secret, padding)
}

/// A sim driver `component` (the bundled one, or the frozen 0.1.0 sim
/// fixture) packaged as [`sim_package`] does.
pub fn sim_package_of(
    component: &[u8],
    version: &str,
    secret: Option<&str>,
    padding: usize,
) -> Vec<u8> {
    let manifest = Manifest {
        name: "sim".into(),
        version: version.into(),
        vendor: "Drydock tests".into(),
        interfaces: vec!["oob".into(), "node".into(), "network".into()],
        oob_types: vec!["sim".into()],
        requested: package::Requested {
            outbound: vec!["10.0.0.0/8:443".into()],
            memory_mib: Some(128),
            call_secs: None,
        },
        conformance: None,
    };
    let mut bytes = package::with_section(
        component,
        package::MANIFEST_SECTION,
        &serde_json::to_vec(&manifest).expect("manifest JSON"),
    )
    .expect("manifest section");
    if padding > 0 {
        bytes = package::with_section(&bytes, "padding", &vec![0x5a; padding]).expect("padding");
    }
    match secret {
        Some(s) => package::sign(&bytes, s).expect("signature"),
        None => bytes,
    }
}
