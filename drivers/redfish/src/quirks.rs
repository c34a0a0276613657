//! What differs between Redfish implementations, as data. A BMC gets the
//! first entry matching the operator's `vendor` setting, else the node's oob
//! type (`idrac`, `ilo`), else the service root's `Vendor` or `Oem` keys;
//! [`GENERIC`] otherwise.

use drydock_sdk::prelude::*;
use serde_json::Value;

/// One vendor's deviations from plain DMTF Redfish.
#[derive(Debug)]
pub struct Quirks {
    /// Name, as the `vendor` setting spells it.
    pub name: &'static str,
    /// Lower-case names that select it: oob types, service root `Vendor`
    /// values and `Oem` keys.
    aliases: &'static [&'static str],
    /// The system to manage when the BMC lists several and none is set.
    pub system_id: Option<&'static str>,
    /// When creating a session fails with 400/409/429/503 (session table
    /// full), fall back to basic auth instead of failing.
    pub session_fallback_to_basic: bool,
    /// Re-send the current `BootSourceOverrideMode` with every boot
    /// override PATCH (the BMC resets it to its default otherwise).
    pub resend_boot_mode: bool,
}

/// Plain DMTF Redfish (sushy-tools, OpenBMC, most others).
pub static GENERIC: Quirks = Quirks {
    name: "generic",
    aliases: &[],
    system_id: None,
    session_fallback_to_basic: false,
    resend_boot_mode: false,
};

/// Known vendors.
pub static VENDORS: &[Quirks] = &[
    // Dell iDRAC: one system, `System.Embedded.1`; the session table fills up
    // (RAC0218, "maximum number of user sessions") when other tools leak
    // sessions, while basic auth keeps working.
    Quirks {
        name: "idrac",
        aliases: &["idrac", "dell"],
        system_id: Some("System.Embedded.1"),
        session_fallback_to_basic: true,
        resend_boot_mode: false,
    },
    // HPE iLO: system `1`; `BootSourceOverrideMode` is read-only (a PATCH
    // naming it fails as a whole), and `BootSourceOverrideEnabled` is refused
    // unless the same PATCH names a target, which every PATCH here does.
    Quirks {
        name: "ilo",
        aliases: &["ilo", "hpe", "hp"],
        system_id: Some("1"),
        session_fallback_to_basic: false,
        resend_boot_mode: false,
    },
    // Supermicro: system `1`; a boot override PATCH without
    // `BootSourceOverrideMode` resets the mode to the BMC's default (Legacy).
    Quirks {
        name: "supermicro",
        aliases: &["supermicro"],
        system_id: Some("1"),
        session_fallback_to_basic: false,
        resend_boot_mode: true,
    },
];

/// The quirks for a BMC: forced by `vendor`, else by the oob type, else
/// from the service root.
pub fn detect(vendor: Option<&str>, oob_type: &str, root: &Value) -> Result<&'static Quirks> {
    let by_name = |name: &str| {
        let name = name.to_ascii_lowercase();
        VENDORS
            .iter()
            .find(|q| q.name == name || q.aliases.contains(&name.as_str()))
    };
    if let Some(vendor) = vendor {
        if vendor == GENERIC.name {
            return Ok(&GENERIC);
        }
        return by_name(vendor).ok_or_else(|| {
            let known: Vec<&str> = VENDORS.iter().map(|q| q.name).collect();
            DriverError::InvalidInput(format!(
                "driver setting `vendor` = `{vendor}` is unknown: use generic, {}",
                known.join(", ")
            ))
        });
    }
    let from_root = root["Vendor"].as_str().into_iter().chain(
        root["Oem"]
            .as_object()
            .into_iter()
            .flat_map(|oem| oem.keys().map(String::as_str)),
    );
    Ok(std::iter::once(oob_type)
        .chain(from_root)
        .find_map(by_name)
        .unwrap_or(&GENERIC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quirks_come_from_setting_then_oob_type_then_service_root() {
        let name = |vendor, oob_type, root| detect(vendor, oob_type, &root).unwrap().name;
        assert_eq!(name(None, "redfish", json!({})), "generic");
        assert_eq!(name(None, "redfish", json!({"Vendor": "Dell"})), "idrac");
        assert_eq!(name(None, "redfish", json!({"Oem": {"Hpe": {}}})), "ilo");
        assert_eq!(
            name(None, "redfish", json!({"Vendor": "Supermicro"})),
            "supermicro"
        );
        assert_eq!(name(None, "ilo", json!({"Vendor": "Dell"})), "ilo");
        assert_eq!(name(Some("generic"), "idrac", json!({})), "generic");
        assert_eq!(name(Some("dell"), "redfish", json!({})), "idrac");
        let err = detect(Some("acme"), "redfish", &json!({})).unwrap_err();
        assert!(matches!(err, DriverError::InvalidInput(_)), "{err:?}");
    }
}
