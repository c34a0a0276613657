//! A [`Transport`] over a connected `std::net::UdpSocket`, for native use
//! (the tests against real BMC simulators). The driver component uses the
//! host's datagram capability instead.

use std::io::ErrorKind as IoKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, TransportError};
use crate::session::Transport;

/// Largest datagram accepted from a BMC.
const MAX_DATAGRAM: usize = 1024;

/// UDP to one BMC address.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    peer: SocketAddr,
}

impl UdpTransport {
    /// A socket on an ephemeral local port, connected to `peer`.
    pub fn connect(peer: SocketAddr) -> Result<Self, Error> {
        let local: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("a literal address");
        let socket = UdpSocket::bind(local)
            .and_then(|s| s.connect(peer).map(|()| s))
            .map_err(|e| Error::new(ErrorKind::Unreachable, format!("BMC {peer}: {e}")))?;
        Ok(Self { socket, peer })
    }
}

impl UdpTransport {
    fn refused(&self, e: std::io::Error) -> TransportError {
        TransportError::Fatal(Error::new(
            ErrorKind::Unreachable,
            format!("BMC {}: {e}", self.peer),
        ))
    }
}

impl Transport for UdpTransport {
    fn exchange(&mut self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.socket.send(request).map_err(|e| self.refused(e))?;
        self.receive(timeout)
    }

    fn receive(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TransportError::NoAnswer);
            }
            self.socket
                .set_read_timeout(Some(left))
                .map_err(|e| self.refused(e))?;
            match self.socket.recv(&mut buf) {
                Ok(n) => return Ok(buf[..n].to_vec()),
                Err(e) if matches!(e.kind(), IoKind::WouldBlock | IoKind::TimedOut) => {
                    return Err(TransportError::NoAnswer);
                }
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(e) => return Err(self.refused(e)),
            }
        }
    }
}
