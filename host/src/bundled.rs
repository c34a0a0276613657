//! Drivers shipped inside the `drydock` binary, built from `drivers/` by the
//! build script, so a fresh install runs with no files beside it.

/// The simulated driver (`drivers/sim`): oob, node and network.
pub const SIM: &[u8] = include_bytes!(env!("DRYDOCK_BUNDLED_SIM"));

/// The MAAS node driver (`drivers/maas`).
pub const MAAS: &[u8] = include_bytes!(env!("DRYDOCK_BUNDLED_MAAS"));

/// Every bundled driver, by file name.
pub fn all() -> [(&'static str, &'static [u8]); 2] {
    [("sim.wasm", SIM), ("maas.wasm", MAAS)]
}
