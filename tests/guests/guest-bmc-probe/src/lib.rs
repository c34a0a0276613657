//! Test guest `bmc-probe`: `guest-http`'s probe (same actions, same `url`
//! setting) declaring node-BMC access (`NODE_BMC`), so the host grants its
//! oob calls the node's own BMC address.

/// Driver name and oob type.
const PROBE_NAME: &str = "bmc-probe";
/// Declares node-BMC access.
const PROBE_NODE_BMC: bool = true;

include!("../../guest-http/src/probe.rs");
