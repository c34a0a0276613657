//! UDP to the call's node BMC: the host side of `drydock:driver/datagram`
//! (WIT 0.2.0 and later), for IPMI over RMCP+ and similar protocols.
//!
//! A call may send only to the address its [`DatagramGrant`] names (the
//! node's `oob.address`, set by the runtime for node-scoped oob calls of a
//! driver declaring node-BMC access) and only on the granted port. The
//! address is resolved through the same rules as HTTP egress
//! ([`EgressPolicy::resolve`]: special addresses only when named as IP
//! literals). Each port gets one UDP socket per call, bound to an ephemeral
//! port and connected to the BMC, so only the BMC's datagrams are received;
//! the sockets close with the call. Sends count against
//! `datagrams_per_call`, payloads are bounded by `datagram_bytes`, every
//! wait by the call's deadline. Denials are reported as task messages like
//! HTTP egress denials.

use super::bindings::types::LimitExceeded;
use super::egress::{Denied, EgressGrant, EgressPolicy, report_denial};
use super::limits::{CallBudget, Limit};
use super::services::CallScope;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// The BMC port granted when the design gives none (IPMI's RMCP port).
pub const DEFAULT_PORT: u16 = 623;

/// Largest datagram received; a larger one is cut (UDP's own maximum).
const RECEIVE_BUFFER: usize = 65_535;

/// Where one call may send datagrams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatagramGrant {
    /// The BMC's address (IP or host name) as the design gives it.
    pub host: String,
    /// The only port granted.
    pub port: u16,
}

/// Why a datagram operation did not deliver (the WIT's `datagram-error`).
#[derive(Debug)]
pub(crate) enum DatagramError {
    /// Not allowed; already reported.
    Denied(String),
    /// A limit refused it; already reported.
    Limit(LimitExceeded),
    /// Nothing arrived in time.
    Timeout,
    /// The network refused.
    Unreachable(String),
}

/// The datagram state of one call.
pub(crate) struct Datagrams {
    grant: Option<DatagramGrant>,
    scope: Arc<CallScope>,
    budget: Arc<CallBudget>,
    deadline: Instant,
    sent: u32,
    sockets: HashMap<u16, UdpSocket>,
}

impl Datagrams {
    /// A call's datagram state; nothing may be sent without a grant.
    pub(crate) fn new(
        grant: Option<DatagramGrant>,
        scope: Arc<CallScope>,
        budget: Arc<CallBudget>,
        deadline: Instant,
    ) -> Self {
        Self {
            grant,
            scope,
            budget,
            deadline,
            sent: 0,
            sockets: HashMap::new(),
        }
    }

    async fn deny(&self, port: u16, reason: String) -> DatagramError {
        let target = match &self.grant {
            Some(g) => format!("udp://{}:{port}", g.host),
            None => format!("udp port {port}"),
        };
        let denied = Denied { target, reason };
        report_denial(&self.scope, &self.budget, &denied).await;
        DatagramError::Denied(format!("{}: {}", denied.target, denied.reason))
    }

    /// The call's socket for `port`: checked against the grant, resolved,
    /// bound and connected on first use.
    async fn socket(&mut self, port: u16) -> Result<&UdpSocket, DatagramError> {
        if !self.sockets.contains_key(&port) {
            let grant = match &self.grant {
                None => {
                    let reason = "datagrams reach only the node's BMC, in a node-scoped oob call \
                                  of a driver declaring node-BMC access, and the node needs an \
                                  oob address"
                        .to_owned();
                    return Err(self.deny(port, reason).await);
                }
                Some(g) if g.port != port => {
                    let reason = format!("only port {} of the node's BMC is granted", g.port);
                    return Err(self.deny(port, reason).await);
                }
                Some(g) => g.clone(),
            };
            let addr = match resolve(&grant).await {
                Ok(a) => a,
                Err(d) => return Err(self.deny(port, d.reason).await),
            };
            let local: SocketAddr = if addr.is_ipv4() {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = UdpSocket::bind(local)
                .await
                .map_err(|e| DatagramError::Unreachable(format!("binding a UDP socket: {e}")))?;
            socket
                .connect(addr)
                .await
                .map_err(|e| DatagramError::Unreachable(format!("udp://{addr}: {e}")))?;
            self.sockets.insert(port, socket);
        }
        Ok(self.sockets.get(&port).expect("inserted above"))
    }

    /// Sends one datagram to the BMC on `port`.
    pub(crate) async fn send(&mut self, port: u16, payload: &[u8]) -> Result<(), DatagramError> {
        let limits = self.budget.limits().clone();
        if payload.len() as u64 > limits.datagram_bytes {
            let what = format!("a {}-byte datagram was refused", payload.len());
            return Err(DatagramError::Limit(
                self.budget.report(Limit::DatagramBytes, &what).await,
            ));
        }
        // Checked before counting, so a denied send spends no budget.
        self.socket(port).await?;
        if self.sent >= limits.datagrams_per_call {
            let what = "further datagrams were refused";
            return Err(DatagramError::Limit(
                self.budget.report(Limit::Datagrams, what).await,
            ));
        }
        self.sent += 1;
        let socket = self.socket(port).await?;
        socket.send(payload).await.map(|_| ()).map_err(unreachable)
    }

    /// Waits at most `timeout_ms` (and never past the call's deadline) for
    /// the next datagram from the BMC on `port`.
    pub(crate) async fn receive(
        &mut self,
        port: u16,
        timeout_ms: u32,
    ) -> Result<Vec<u8>, DatagramError> {
        let wait = Duration::from_millis(timeout_ms.into())
            .min(self.deadline.saturating_duration_since(Instant::now()));
        let socket = self.socket(port).await?;
        let mut buf = vec![0u8; RECEIVE_BUFFER];
        match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
            Err(_) => Err(DatagramError::Timeout),
            Ok(Err(e)) => Err(unreachable(e)),
            Ok(Ok(n)) => {
                buf.truncate(n);
                Ok(buf)
            }
        }
    }

    /// Sends `payload`, then returns the next datagram from the BMC.
    pub(crate) async fn exchange(
        &mut self,
        port: u16,
        payload: &[u8],
        timeout_ms: u32,
    ) -> Result<Vec<u8>, DatagramError> {
        self.send(port, payload).await?;
        self.receive(port, timeout_ms).await
    }
}

fn unreachable(e: std::io::Error) -> DatagramError {
    let what = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            "the BMC's host answered port unreachable".to_owned()
        }
        _ => e.to_string(),
    };
    DatagramError::Unreachable(what)
}

/// The BMC's address under the egress rules (a policy of this one grant).
async fn resolve(grant: &DatagramGrant) -> Result<SocketAddr, Denied> {
    let one = EgressGrant::host(&grant.host, Some(grant.port)).map_err(|e| Denied {
        target: format!("udp://{}:{}", grant.host, grant.port),
        reason: e.to_string(),
    })?;
    EgressPolicy::new(Arc::from([one]))
        .resolve(&grant.host, grant.port)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::limits::{DriverLimits, DriverRequests};
    use crate::drivers::{DriverServices, MemoryServices};

    fn datagrams(
        grant: Option<DatagramGrant>,
        limits: DriverLimits,
    ) -> (Datagrams, Arc<MemoryServices>) {
        let services = Arc::new(MemoryServices::new());
        let scope = Arc::new(CallScope {
            driver: "ipmi".into(),
            action: Some(crate::drivers::Action::PowerOnNode),
            node: Some("n1".into()),
            task: None,
            log: crate::drivers::log_sites("ipmi"),
        });
        let dyn_services: Arc<dyn DriverServices> = services.clone();
        let budget = Arc::new(CallBudget::new(
            Arc::new(limits),
            scope.clone(),
            dyn_services,
            &DriverRequests::default(),
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        (Datagrams::new(grant, scope, budget, deadline), services)
    }

    async fn echo_peer() -> (UdpSocket, u16) {
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = peer.local_addr().unwrap().port();
        (peer, port)
    }

    #[tokio::test]
    async fn exchanges_with_the_granted_bmc_only() {
        let (peer, port) = echo_peer().await;
        let grant = DatagramGrant {
            host: "127.0.0.1".into(),
            port,
        };
        let (mut d, services) = datagrams(Some(grant), DriverLimits::default());
        let answer = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let (n, from) = peer.recv_from(&mut buf).await.unwrap();
            peer.send_to(&[&buf[..n], b"-ok"].concat(), from)
                .await
                .unwrap();
        });
        let reply = d.exchange(port, b"ping", 2000).await.unwrap();
        assert_eq!(reply, b"ping-ok");
        answer.await.unwrap();

        // Another port is denied and reported like an egress denial.
        let e = d.send(port.wrapping_add(1), b"x").await.unwrap_err();
        assert!(matches!(e, DatagramError::Denied(ref m) if m.contains("only port")));
        let messages = services.messages();
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0]
                .message
                .starts_with("egress denied: driver ipmi")
        );
        assert!(messages[0].is_error);
    }

    #[tokio::test]
    async fn without_a_grant_nothing_is_sent() {
        let (mut d, services) = datagrams(None, DriverLimits::default());
        assert!(matches!(
            d.send(623, b"x").await,
            Err(DatagramError::Denied(_))
        ));
        assert!(matches!(
            d.receive(623, 10).await,
            Err(DatagramError::Denied(_))
        ));
        assert_eq!(services.messages().len(), 2);
    }

    #[tokio::test]
    async fn the_packet_budget_and_size_are_enforced_and_waits_time_out() {
        let (_peer, port) = echo_peer().await;
        let grant = DatagramGrant {
            host: "127.0.0.1".into(),
            port,
        };
        let limits = DriverLimits {
            datagrams_per_call: 2,
            datagram_bytes: 8,
            ..DriverLimits::default()
        };
        let (mut d, services) = datagrams(Some(grant), limits);
        assert!(matches!(
            d.send(port, &[0; 9]).await,
            Err(DatagramError::Limit(ref l)) if l.limit == "datagram_bytes"
        ));
        d.send(port, b"1").await.unwrap();
        d.send(port, b"2").await.unwrap();
        assert!(matches!(
            d.send(port, b"3").await,
            Err(DatagramError::Limit(ref l)) if l.limit == "datagrams_per_call" && l.max == 2
        ));
        // The peer never answers.
        assert!(matches!(
            d.receive(port, 50).await,
            Err(DatagramError::Timeout)
        ));
        // Each limit is reported once.
        assert_eq!(services.messages().len(), 2);
    }
}
