//! A driver package as `POST /drivers` and `drivers_dir` read it: the wasm
//! section walk, the manifest and signature sections, and the signature
//! check. Signing any package that parses and checking it again must
//! succeed, and must keep the manifest.
#![no_main]

use std::sync::OnceLock;

use drydock::drivers::package::{
    self, MANIFEST_SECTION, PackageError, SIGNATURE_SECTION, TrustedKey,
};
use libfuzzer_sys::fuzz_target;

/// A fixed vendor key (the fuzzer must not depend on randomness).
const SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn trusted() -> &'static [TrustedKey] {
    static KEYS: OnceLock<Vec<TrustedKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let public = package::public_key(SECRET).expect("the fixed key is valid");
        vec![format!("fuzz:{public}:*").parse().expect("a trusted key")]
    })
}

fuzz_target!(|data: &[u8]| {
    // A trusted key line as the operator writes it.
    if let Ok(text) = std::str::from_utf8(data)
        && text.len() < 256
    {
        let _ = text.parse::<TrustedKey>();
    }
    let manifest = package::manifest(data);
    let _ = package::custom_section(data, "component-type:drydock");
    let _ = package::verify(data, trusted(), false);
    let unsigned = package::verify(data, trusted(), true);
    let Ok(stripped) = package::without_section(data, SIGNATURE_SECTION) else {
        // The section walk failed: everything else must fail the same way.
        assert!(matches!(manifest, Err(PackageError::Malformed(_))));
        assert!(matches!(unsigned, Err(PackageError::Malformed(_))));
        return;
    };
    let signed = package::sign(data, SECRET).expect("a package that parses can be signed");
    assert_eq!(
        package::verify(&signed, trusted(), false),
        Ok(Some("fuzz".to_owned())),
        "a package signed with a trusted key verifies"
    );
    assert_eq!(
        package::without_section(&signed, SIGNATURE_SECTION).as_ref(),
        Ok(&stripped),
        "signing only adds the signature section"
    );
    if let Ok(m) = &manifest {
        assert_eq!(&package::manifest(&signed), &Ok(m.clone()));
    }
    let _ = package::with_section(data, MANIFEST_SECTION, data);
});
