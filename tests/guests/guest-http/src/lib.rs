//! Test guest `http-probe`: an oob driver that requests the URL in its `url`
//! setting. It asks for no outbound access, so the host's egress policy
//! decides alone whether a request goes out.
//!
//! - `interrogate_oob` GETs `url` and answers raw JSON
//!   `{"status": <code>, "body": "<text>"}`.
//! - `power_on_node` POSTs `{"node": "<name>"}` to `url` and fails on a
//!   non-2xx status as the SDK maps it.
//! - `power_off_node` POSTs to `url` with `Authorization: Bearer <secret>`,
//!   the secret named by the `token_secret` setting (invalid input when the
//!   host does not grant it).

/// Driver name and oob type.
const PROBE_NAME: &str = "http-probe";
/// Declares no node-BMC access: the host grants it no node's BMC.
const PROBE_NODE_BMC: bool = false;

include!("probe.rs");
