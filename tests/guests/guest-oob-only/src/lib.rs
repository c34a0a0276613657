//! Test guest `oob-only`: a driver of the single-interface `oob-driver`
//! world, built with `wit-bindgen` directly instead of the SDK — what a vendor
//! targeting one interface without the SDK writes. Power actions succeed,
//! every other action answers `unsupported`.

wit_bindgen::generate!({
    world: "oob-driver",
    path: "../../../wit/0.2.0",
    generate_all,
});

use drydock::driver::types::{BootTarget, DriverError, Node, OobInterrogation};
use exports::drydock::driver::metadata::{self, DriverInfo, DriverInterface, OutboundAccess};
use exports::drydock::driver::oob;

/// The driver.
struct OobOnly;

fn unsupported<T>(action: &str) -> Result<T, DriverError> {
    Err(DriverError::Unsupported(format!(
        "{action} is not implemented by oob-only"
    )))
}

impl metadata::Guest for OobOnly {
    fn info() -> DriverInfo {
        DriverInfo {
            name: "oob-only".to_string(),
            version: "0.1.0".to_string(),
            vendor: "Drydock tests".to_string(),
            description: "An oob-driver world component built without the SDK".to_string(),
            interfaces: vec![DriverInterface::Oob],
            oob_types: vec!["oob-only".to_string()],
            outbound: OutboundAccess {
                hosts: Vec::new(),
                node_bmc: false,
            },
            unsafe_to_repeat: Vec::new(),
        }
    }
}

impl oob::Guest for OobOnly {
    fn validate_oob_services(_node: Node) -> Result<(), DriverError> {
        unsupported("validate_oob_services")
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

export!(OobOnly);
