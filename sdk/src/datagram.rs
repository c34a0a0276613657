//! UDP to the BMC of the call's node, through the host's `datagram`
//! interface: for IPMI over RMCP+ and other request/response BMC protocols.
//!
//! Only a node-scoped oob call of a driver with [`Driver::NODE_BMC`] may send,
//! only to the node's `oob.address`, only on the granted port (the node's
//! `oob.port`, else 623), within the operator's per-call packet budget and the
//! call's deadline. Anything else answers [`DatagramError::Denied`] and the
//! host reports it in the task's messages. `?` turns a [`DatagramError`] into
//! a [`crate::DriverError`] (timeouts and unreachable hosts stay retryable).
//!
//! [`Driver::NODE_BMC`]: crate::Driver::NODE_BMC

use std::time::Duration;

use crate::DatagramError;
use crate::wit::drydock::driver::datagram as host;

/// The port IPMI over RMCP+ uses when the design gives the BMC none.
pub const IPMI_PORT: u16 = 623;

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Sends `payload` to the node's BMC on `port` and returns the next datagram
/// it answers within `timeout` (which the call's deadline may shorten). On
/// [`DatagramError::Timeout`], send the request again: UDP loses packets. The
/// answer may be a late one to an earlier request: match answers to requests
/// (by sequence number) and call [`receive`] to read on.
pub fn exchange(port: u16, payload: &[u8], timeout: Duration) -> Result<Vec<u8>, DatagramError> {
    host::exchange(port, payload, millis(timeout))
}

/// Sends `payload` to the node's BMC on `port` without waiting.
pub fn send(port: u16, payload: &[u8]) -> Result<(), DatagramError> {
    host::send(port, payload)
}

/// Waits at most `timeout` for the next datagram from the node's BMC on
/// `port`.
pub fn receive(port: u16, timeout: Duration) -> Result<Vec<u8>, DatagramError> {
    host::receive(port, millis(timeout))
}
