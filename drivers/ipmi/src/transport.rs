//! The protocol's [`Transport`] over the host. Placeholder until the
//! host's `datagram` capability (drydock:driver@0.2.0) is available to this
//! build: every exchange is refused as unsupported.

use std::time::Duration;

use drydock_ipmi::{Error, ErrorKind, Transport, TransportError};
use drydock_sdk::Ctx;

/// Datagrams to the call's node BMC on one port.
pub struct HostTransport<'a> {
    ctx: &'a Ctx,
    port: u16,
}

impl<'a> HostTransport<'a> {
    /// Datagrams to the node's BMC on `port`.
    pub fn new(ctx: &'a Ctx, port: u16) -> Self {
        Self { ctx, port }
    }
}

impl Transport for HostTransport<'_> {
    fn exchange(&mut self, _request: &[u8], _timeout: Duration) -> Result<Vec<u8>, TransportError> {
        Err(TransportError::Fatal(Error::new(
            ErrorKind::Unsupported,
            format!("this host offers no UDP to BMCs (port {})", self.port),
        )))
    }

    fn pause(&mut self, duration: Duration) -> Result<(), Error> {
        self.ctx
            .sleep(duration)
            .map_err(|e| Error::new(ErrorKind::Timeout, e.message()))
    }
}
