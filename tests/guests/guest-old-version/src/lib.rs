//! Test guest `old-version`: an oob driver (world `oob-driver`) built against
//! `drydock:driver@0.0.1`. The host must refuse it as built for another WIT
//! version.
//!
//! `wit/` is the repository's `wit/` with only the package version changed:
//! `for f in ../../../wit/*.wit; do sed 's/drydock:driver@0\.1\.0/drydock:driver@0.0.1/g'
//! "$f" > "wit/$(basename "$f")"; done` and `cp -r ../../../wit/deps wit/`.

wit_bindgen::generate!({
    world: "oob-driver",
    path: "wit",
    generate_all,
});

use drydock::driver::types::{BootTarget, DriverError, Node, OobInterrogation};
use exports::drydock::driver::metadata::{self, DriverInfo, DriverInterface, OutboundAccess};
use exports::drydock::driver::oob;

/// The driver.
struct OldVersion;

fn unsupported<T>(action: &str) -> Result<T, DriverError> {
    Err(DriverError::Unsupported(format!(
        "{action} is not implemented by old-version"
    )))
}

impl metadata::Guest for OldVersion {
    fn info() -> DriverInfo {
        DriverInfo {
            name: "old-version".to_string(),
            version: "0.1.0".to_string(),
            vendor: "Drydock tests".to_string(),
            description: "An oob driver built against drydock:driver@0.0.1".to_string(),
            interfaces: vec![DriverInterface::Oob],
            oob_types: vec!["old-version".to_string()],
            outbound: OutboundAccess {
                hosts: Vec::new(),
                node_bmc: false,
            },
            unsafe_to_repeat: Vec::new(),
        }
    }
}

impl oob::Guest for OldVersion {
    fn validate_oob_services(_node: Node) -> Result<(), DriverError> {
        Ok(())
    }
    fn config_node_pxe(_node: Node) -> Result<(), DriverError> {
        unsupported("config_node_pxe")
    }
    fn set_node_boot(_node: Node, _target: BootTarget) -> Result<(), DriverError> {
        unsupported("set_node_boot")
    }
    fn power_off_node(_node: Node) -> Result<(), DriverError> {
        Ok(())
    }
    fn power_on_node(_node: Node) -> Result<(), DriverError> {
        Ok(())
    }
    fn power_cycle_node(_node: Node) -> Result<(), DriverError> {
        Ok(())
    }
    fn interrogate_oob(_node: Node) -> Result<OobInterrogation, DriverError> {
        unsupported("interrogate_oob")
    }
}

export!(OldVersion);
