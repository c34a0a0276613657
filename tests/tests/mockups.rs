//! The bundled Redfish driver's read path (`validate_oob_services`,
//! `interrogate_oob`) against every DMTF Redfish mockup (recorded trees of a
//! rack server, a tower, a bladed chassis, local storage and OEM
//! extensions) served read-only by `sushy-static`: every system of every
//! tree reads back as the recording says; a tree without systems fails
//! with a clear, permanent error.

use drydock::drivers::{Action, CallError, DriverConfig, DriverErrorKind};
use drydock_tests::mockups::{self, MOCKUPS, SushyStatic};
use drydock_tests::{Call, runtime};
use serde_json::{Value, json};
use std::sync::Arc;

fn call() -> Call {
    let settings = [("scheme", "http")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Call {
        config: Arc::new(DriverConfig {
            settings,
            ..DriverConfig::default()
        }),
        ..Call::default()
    }
}

/// The node whose BMC is `tree`, managing system `id`.
fn node(tree: &SushyStatic, id: &str) -> drydock::model::Node {
    let mut n = drydock_tests::node("n1", "redfish");
    n.oob.address = Some("127.0.0.1".into());
    n.oob.port = Some(tree.port);
    n.oob.params.insert("system_id".into(), id.into());
    n
}

/// What `interrogate_oob` must read from system `path` of mockup `name`.
fn expected(name: &str, path: &str) -> Value {
    let system = mockups::resource(name, path);
    let text = |k: &str| {
        system[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut macs: Vec<String> = Vec::new();
    if let Some(nics) = system["EthernetInterfaces"]["@odata.id"].as_str() {
        for m in mockups::resource(name, nics)["Members"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let nic = mockups::resource(name, m["@odata.id"].as_str().unwrap_or_default());
            if let Some(mac) = nic["MACAddress"]
                .as_str()
                .or(nic["PermanentMACAddress"].as_str())
            {
                let mac = mac.to_ascii_lowercase();
                if !macs.contains(&mac) {
                    macs.push(mac);
                }
            }
        }
    }
    let power = match system["PowerState"].as_str() {
        Some("On") => "on",
        Some("Off") => "off",
        _ => "unknown",
    };
    json!({
        "power_state": power,
        "manufacturer": text("Manufacturer"),
        "model": text("Model"),
        "serial": text("SerialNumber"),
        "bios_version": text("BiosVersion"),
        "macs": macs,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redfish_read_path_passes_against_every_mockup() {
    let rt = runtime();
    let driver = rt
        .load("redfish", drydock::bundled::REDFISH)
        .await
        .expect("load redfish");
    let mut systems_read = 0;
    for name in MOCKUPS {
        let tree = SushyStatic::start(name);
        let root = mockups::resource(name, "/redfish/v1/");
        let Some(collection) = root["Systems"]["@odata.id"].as_str() else {
            // No systems in this tree: a permanent error that says so.
            let n = node(&tree, "1");
            let err = match call()
                .run(&rt, &driver, Action::InterrogateOob, Some(&n))
                .await
            {
                Err(CallError::Driver { error, .. }) => error,
                other => panic!("{name}: expected a driver error, got {other:?}"),
            };
            assert!(!err.kind.is_retryable(), "{name}: {err:?}");
            assert_eq!(err.kind, DriverErrorKind::Failed, "{name}: {err:?}");
            assert!(err.message.contains("Systems"), "{name}: {err:?}");
            println!("{name}: no systems: {}", err.message);
            continue;
        };
        let members = mockups::resource(name, collection)["Members"].clone();
        for member in members.as_array().expect("a collection") {
            let path = member["@odata.id"].as_str().expect("a member path");
            let id = path.rsplit('/').next().unwrap_or(path);
            let n = node(&tree, id);
            let c = call();
            c.run(&rt, &driver, Action::ValidateOobServices, Some(&n))
                .await
                .unwrap_or_else(|e| panic!("{name} {id}: validate_oob_services: {e}"));
            let facts = c
                .run(&rt, &driver, Action::InterrogateOob, Some(&n))
                .await
                .unwrap_or_else(|e| panic!("{name} {id}: interrogate_oob: {e}"));
            let want = expected(name, path);
            for key in [
                "power_state",
                "manufacturer",
                "model",
                "serial",
                "bios_version",
                "macs",
            ] {
                assert_eq!(facts[key], want[key], "{name} {id}: {key}");
            }
            assert_eq!(facts["raw"]["system"]["Id"], id, "{name}: the raw document");
            println!(
                "{name} {id}: {} {} serial {} bios {} macs {}",
                facts["manufacturer"],
                facts["model"],
                facts["serial"],
                facts["bios_version"],
                facts["macs"]
            );
            systems_read += 1;
        }
    }
    assert_eq!(
        systems_read, 7,
        "1 + 1 + 4 + 1 systems in the recorded trees"
    );
}
