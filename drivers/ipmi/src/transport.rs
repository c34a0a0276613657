//! The protocol's [`Transport`] over the host's `datagram` capability: UDP
//! to the call's node BMC only, on the granted port, bounded by the call's
//! deadline and packet budget (drydock:driver@0.2.0).

use std::time::Duration;

use drydock_ipmi::{Error, ErrorKind, Transport, TransportError};
use drydock_sdk::datagram;
use drydock_sdk::{Ctx, DatagramError};

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

    /// A datagram error as the protocol sees it: a timeout is no answer
    /// (the session sends again); anything else ends the exchange.
    fn error(&self, e: DatagramError) -> TransportError {
        let (kind, message) = match e {
            DatagramError::Timeout => return TransportError::NoAnswer,
            DatagramError::Unreachable(m) => (ErrorKind::Unreachable, m),
            DatagramError::Denied(m) => (
                ErrorKind::Failed,
                format!(
                    "UDP to the BMC on port {} denied by the host: {m}",
                    self.port
                ),
            ),
            DatagramError::Limit(l) => (ErrorKind::Failed, l.message),
        };
        TransportError::Fatal(Error::new(kind, message))
    }
}

impl Transport for HostTransport<'_> {
    fn exchange(&mut self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, TransportError> {
        datagram::exchange(self.port, request, timeout).map_err(|e| self.error(e))
    }

    fn receive(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        datagram::receive(self.port, timeout).map_err(|e| self.error(e))
    }

    fn pause(&mut self, duration: Duration) -> Result<(), Error> {
        self.ctx
            .sleep(duration)
            .map_err(|e| Error::new(ErrorKind::Timeout, e.message()))
    }
}
