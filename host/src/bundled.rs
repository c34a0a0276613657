//! Drivers shipped inside the `drydock` binary, built from `drivers/` by the
//! build script, so a fresh install runs with no files beside it.

/// The simulated driver (`drivers/sim`): oob, node, network and provisioner.
pub const SIM: &[u8] = include_bytes!(env!("DRYDOCK_BUNDLED_SIM"));

/// The Arista EOS eAPI driver (`drivers/eos`): network.
pub const EOS: &[u8] = include_bytes!(env!("DRYDOCK_BUNDLED_EOS"));

/// The Redfish driver (`drivers/redfish`): oob for `redfish`, `idrac`, `ilo`.
pub const REDFISH: &[u8] = include_bytes!(env!("DRYDOCK_BUNDLED_REDFISH"));

/// The MAAS driver (`drivers/maas`): node.
pub const MAAS: &[u8] = include_bytes!(env!("DRYDOCK_BUNDLED_MAAS"));

/// The Promenade driver (`drivers/promenade`): provisioner.
pub const PROMENADE: &[u8] = include_bytes!(env!("DRYDOCK_BUNDLED_PROMENADE"));

/// The IPMI driver (`drivers/ipmi`): oob for `ipmi`, IPMI 2.0 over RMCP+
/// through the host's datagram capability.
pub const IPMI: &[u8] = include_bytes!(env!("DRYDOCK_BUNDLED_IPMI"));

/// Every bundled driver, by file name.
pub fn all() -> [(&'static str, &'static [u8]); 6] {
    [
        ("sim.wasm", SIM),
        ("eos.wasm", EOS),
        ("redfish.wasm", REDFISH),
        ("maas.wasm", MAAS),
        ("promenade.wasm", PROMENADE),
        ("ipmi.wasm", IPMI),
    ]
}
