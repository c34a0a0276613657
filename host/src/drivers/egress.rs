//! The egress policy: which hosts a driver call may reach over `wasi:http`,
//! and the connector that enforces it.
//!
//! A call reaches only what the operator granted to the driver (host names,
//! IPs or CIDRs, each with an optional port) and, for a node-scoped oob call,
//! that node's own BMC address. A host name is looked up only when a name
//! grant matches it (no lookup reveals what a driver asked for otherwise),
//! every resolved IP is checked, and the connection is made to the checked
//! IP, so a name cannot be re-pointed between check and use (DNS
//! rebinding). Addresses are judged in their canonical form
//! ([`crate::netaddr::canonical`]): an IPv6 address carrying an IPv4 one is
//! that IPv4 address, so an IPv6 grant never reaches IPv4 hosts. Special
//! addresses ([`crate::netaddr::special`]: loopback, link-local,
//! unspecified, multicast, reserved, cloud metadata) are refused unless an
//! IP or CIDR grant of the same kind names them (`127.0.0.1`,
//! `169.254.169.254/32`; never `0.0.0.0/0` or `::/0`).
//!
//! Each call may have at most `requests_per_call` requests open at once,
//! and each driver `requests_per_driver` over all its calls
//! ([`super::limits::DriverLimits`]); past them the guest gets
//! `connection-limit-reached`.

use super::datagram::DatagramGrant;
use super::limits::{CallBudget, RequestPermit, cut};
use super::services::CallScope;
use crate::netaddr;
use http_body_util::BodyExt;
use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// What a grant names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum GrantHost {
    /// A host name, lower case; `*.example.com` matches any sub-domain.
    Name(String),
    /// An address or network.
    Net(IpNet),
}

/// One outbound grant: a host name, IP or CIDR with an optional port.
///
/// Text forms: `bmc.example.com`, `bmc.example.com:443`, `*.example.com`,
/// `10.0.0.5`, `10.0.0.5:8000`, `10.0.0.0/8`, `10.0.0.0/8:443`, `[::1]:80`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressGrant {
    host: GrantHost,
    port: Option<u16>,
}

/// A grant that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid egress grant `{0}`: expected HOST, HOST:PORT, IP, IP:PORT, CIDR or CIDR:PORT")]
pub struct BadGrant(pub String);

impl FromStr for EgressGrant {
    type Err = BadGrant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadGrant(s.to_owned());
        let s = s.trim();
        if s.is_empty() {
            return Err(bad());
        }
        // Bracketed IPv6, with or without a port.
        if let Some(rest) = s.strip_prefix('[') {
            let (addr, tail) = rest.split_once(']').ok_or_else(bad)?;
            let ip: IpAddr = addr.parse().map_err(|_| bad())?;
            let port = match tail {
                "" => None,
                t => Some(
                    t.strip_prefix(':')
                        .ok_or_else(bad)?
                        .parse()
                        .map_err(|_| bad())?,
                ),
            };
            return Ok(Self::net(IpNet::from(ip), port));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::net(IpNet::from(ip), None));
        }
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Self::net(net, None));
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (s, None),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Self::net(IpNet::from(ip), port));
        }
        if let Ok(net) = host.parse::<IpNet>() {
            return Ok(Self::net(net, port));
        }
        let name = host.to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        let body = name.strip_prefix("*.").unwrap_or(&name);
        if body.len() > 253 || !body.split('.').all(label_ok) {
            return Err(bad());
        }
        Ok(Self {
            host: GrantHost::Name(name),
            port,
        })
    }
}

impl fmt::Display for EgressGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.port) {
            (GrantHost::Name(n), None) => write!(f, "{n}"),
            (GrantHost::Name(n), Some(p)) => write!(f, "{n}:{p}"),
            (GrantHost::Net(n), p) => {
                let single = n.prefix_len() == n.max_prefix_len();
                match (single, n.addr(), p) {
                    (true, IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
                    (true, a, Some(p)) => write!(f, "{a}:{p}"),
                    (true, a, None) => write!(f, "{a}"),
                    (false, _, Some(p)) => write!(f, "{n}:{p}"),
                    (false, _, None) => write!(f, "{n}"),
                }
            }
        }
    }
}

impl EgressGrant {
    /// A network grant, in canonical form: an IPv6 network inside the
    /// IPv4-mapped range `::ffff:0:0/96` becomes the IPv4 network it maps.
    fn net(net: IpNet, port: Option<u16>) -> Self {
        let net = match net {
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
                Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                    .map(IpNet::V4)
                    .unwrap_or(net),
                None => net,
            },
            _ => net,
        };
        Self {
            host: GrantHost::Net(net),
            port,
        }
    }

    /// A grant for exactly one host (name or IP literal) and optional port.
    pub fn host(host: &str, port: Option<u16>) -> Result<Self, BadGrant> {
        let mut g: EgressGrant = host.parse()?;
        g.port = port;
        Ok(g)
    }

    /// The same host on `port`.
    pub fn on_port(&self, port: u16) -> Self {
        Self {
            host: self.host.clone(),
            port: Some(port),
        }
    }

    fn port_ok(&self, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
    }

    fn name_matches(&self, name: &str, port: u16) -> bool {
        let GrantHost::Name(g) = &self.host else {
            return false;
        };
        let hit = match g.strip_prefix("*.") {
            Some(suffix) => name.len() > suffix.len() + 1 && name.ends_with(&format!(".{suffix}")),
            None => g == name,
        };
        hit && self.port_ok(port)
    }

    /// Whether the grant covers `ip` (canonical) on `port`. A special
    /// address is covered only by a network of its own kind.
    fn ip_matches(&self, ip: IpAddr, port: u16) -> bool {
        let GrantHost::Net(n) = &self.host else {
            return false;
        };
        if !n.contains(&ip) || !self.port_ok(port) {
            return false;
        }
        // `127.0.0.0/8` covers loopback addresses, `0.0.0.0/0` (whose
        // network address is "this network") does not.
        let class = netaddr::classify(ip);
        !class.is_special() || netaddr::classify(n.network()) == class
    }
}

/// The grants in force for one call: the driver's (parsed once, shared by
/// all its calls) and the call's own (its node's BMC, its switch).
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    driver: Arc<[EgressGrant]>,
    call: Vec<EgressGrant>,
    /// The node BMC the call may send UDP datagrams to (WIT `datagram`).
    datagram: Option<DatagramGrant>,
}

impl EgressPolicy {
    /// A policy allowing exactly the driver's `grants` (shared, not
    /// copied), and no datagrams.
    pub fn new(grants: Arc<[EgressGrant]>) -> Self {
        Self {
            driver: grants,
            call: Vec::new(),
            datagram: None,
        }
    }

    fn grants(&self) -> impl Iterator<Item = &EgressGrant> {
        self.driver.iter().chain(&self.call)
    }

    /// Lets the call send datagrams to `grant` (its node's BMC).
    pub fn grant_datagram(&mut self, grant: DatagramGrant) {
        self.datagram = Some(grant);
    }

    /// Where the call may send datagrams, if anywhere.
    pub fn datagram(&self) -> Option<&DatagramGrant> {
        self.datagram.as_ref()
    }

    /// Adds a grant for this call.
    pub fn push(&mut self, grant: EgressGrant) {
        self.call.push(grant);
    }

    /// Whether `host:port` may be contacted at all (before resolution): a
    /// name must match a name grant, unless an IP grant may still match what
    /// it resolves to.
    fn name_granted(&self, host: &str, port: u16) -> bool {
        self.grants().any(|g| g.name_matches(host, port))
    }

    /// Checks one resolved address. `by_name` says the host name itself was
    /// granted (then ordinary addresses are fine, special ones are not).
    fn check_ip(&self, ip: IpAddr, port: u16, by_name: bool) -> Result<(), String> {
        let ip = netaddr::canonical(ip);
        if self.grants().any(|g| g.ip_matches(ip, port)) {
            return Ok(());
        }
        match (by_name, netaddr::special(ip)) {
            (true, None) => Ok(()),
            (true, Some(kind)) => Err(format!(
                "it resolves to {ip} ({kind}), which is not granted"
            )),
            (false, _) => Err("it is not granted".to_owned()),
        }
    }

    /// Resolves `host` and picks the first address the policy allows. A
    /// name no name grant matches is refused without a lookup; the address
    /// returned is canonical (IPv4 for IPv6 forms carrying IPv4).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, Denied> {
        let deny = |reason: String| Denied {
            target: format!("{host}:{port}"),
            reason,
        };
        let host_lc = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host_lc.parse::<IpAddr>() {
            return self
                .check_ip(ip, port, false)
                .map(|()| SocketAddr::new(netaddr::canonical(ip), port))
                .map_err(deny);
        }
        let name = host_lc.to_ascii_lowercase();
        if !self.name_granted(&name, port) {
            return Err(deny("it is not granted".to_owned()));
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|e| deny(format!("it does not resolve: {e}")))?
            .collect();
        let mut last = "it resolves to no address".to_owned();
        for addr in addrs {
            match self.check_ip(addr.ip(), port, true) {
                Ok(()) => return Ok(SocketAddr::new(netaddr::canonical(addr.ip()), port)),
                Err(reason) => last = reason,
            }
        }
        Err(deny(last))
    }
}

/// A request the policy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// `host:port` asked for.
    pub target: String,
    /// Why it was refused.
    pub reason: String,
}

/// TLS settings for a driver's outbound HTTPS.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<rustls::ClientConfig>,
    /// Certificates are not verified (see [`TlsSettings::insecure_skip_verify`]).
    insecure: bool,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self::with_extra_roots(&[]).expect("public roots alone are valid")
    }
}

impl TlsSettings {
    /// Public web PKI roots plus the PEM certificates in `extra_pem` (for
    /// BMCs with a private CA).
    pub fn with_extra_roots(extra_pem: &[u8]) -> Result<Self, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        if !extra_pem.is_empty() {
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(extra_pem) {
                let cert = cert.map_err(|e| format!("invalid CA certificate PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("unusable CA certificate: {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err("the CA bundle holds no PEM certificate".into());
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            insecure: false,
        })
    }

    /// No certificate verification at all: any certificate, from any issuer,
    /// for any name, is accepted (the handshake signature is still checked).
    /// Only for BMCs whose self-signed certificates cannot be collected into
    /// a CA bundle for [`TlsSettings::with_extra_roots`]; anyone on the path
    /// can impersonate the BMC and read its credentials. Every connection
    /// made with it logs a warning.
    pub fn insecure_skip_verify() -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(NoVerification(provider.clone()));
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Self {
            config: Arc::new(config),
            insecure: true,
        }
    }

    /// Whether certificates go unverified.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }
}

/// The verifier of [`TlsSettings::insecure_skip_verify`]: accepts any
/// certificate, still checks that the server holds its key.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The `wasi:http` hooks of one call: the policy, TLS, and where denials go.
pub struct EgressHooks {
    /// Grants in force.
    pub policy: Arc<EgressPolicy>,
    /// TLS settings.
    pub tls: TlsSettings,
    /// The call, for denial messages.
    pub scope: Arc<CallScope>,
    /// The call's limits: denials are task messages (within
    /// `messages_per_call`), open requests are counted.
    pub(crate) budget: Arc<CallBudget>,
    /// The call's deadline (bounds connect time).
    pub deadline: Instant,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let policy = self.policy.clone();
        let tls = self.tls.clone();
        let scope = self.scope.clone();
        let budget = self.budget.clone();
        let deadline = self.deadline;
        // Counted when the guest asks, so a flood is refused at once.
        let permit = budget.take_request();
        Box::new(async move {
            let permit = match permit {
                Ok(p) => p,
                Err(limit) => {
                    let what = format!(
                        "a request to {} was refused",
                        cut(&request.uri().to_string(), 256)
                    );
                    budget.report(limit, &what).await;
                    return Err(HttpError::ConnectionLimitReached);
                }
            };
            match send(request, options, &policy, &tls, deadline, permit).await {
                Ok(sent) => Ok(sent),
                Err(SendError::Http(e)) => Err(e),
                Err(SendError::Denied(d)) => {
                    report_denial(&scope, &budget, &d).await;
                    Err(HttpError::HttpRequestDenied)
                }
            }
        })
    }
}

/// Reports a denied connection (HTTP or datagram) as a warning and a task
/// message of the call.
pub(crate) async fn report_denial(scope: &CallScope, budget: &CallBudget, d: &Denied) {
    let message = format!(
        "egress denied: driver {} may not reach {}: {}",
        scope.driver,
        cut(&d.target, 256),
        d.reason
    );
    tracing::warn!(
        driver = %scope.driver,
        action = scope.action_name(),
        node = scope.node.as_deref().unwrap_or("-"),
        target = %d.target,
        "{message}"
    );
    if let Err(e) = budget.post(&message, true).await {
        tracing::warn!(driver = %scope.driver, error = %e, "could not record an egress denial");
    }
}

enum SendError {
    Denied(Denied),
    Http(HttpError),
}

impl From<HttpError> for SendError {
    fn from(e: HttpError) -> Self {
        SendError::Http(e)
    }
}

async fn send(
    req: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    policy: &EgressPolicy,
    tls: &TlsSettings,
    deadline: Instant,
    permit: RequestPermit,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    SendError,
> {
    let uri = req.uri().clone();
    let use_tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let host = uri
        .host()
        .ok_or(HttpError::HttpRequestUriInvalid)?
        .to_owned();
    let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
    let addr = policy
        .resolve(&host, port)
        .await
        .map_err(SendError::Denied)?;

    let remaining = deadline.saturating_duration_since(Instant::now());
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(remaining)
        .min(remaining)
        .max(Duration::from_millis(1));
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
            _ => HttpError::Connect(e),
        })?;
    let _ = tcp.set_nodelay(true);
    // The guest's first-byte timeout bounds the TLS handshake and the wait
    // for the response head, so a stalled peer answers the driver
    // `http-response-timeout` (a `timeout` it can report) before the host
    // cuts the whole call at its deadline.
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(remaining)
        .min(remaining)
        .max(Duration::from_millis(1));
    tokio::time::timeout(
        first_byte,
        exchange(tcp, req, &host, addr, use_tls, tls, permit),
    )
    .await
    .map_err(|_| HttpError::HttpResponseTimeout)?
}

/// TLS (for `https`) and the HTTP/1 exchange up to the response head.
async fn exchange(
    tcp: TcpStream,
    mut req: http::Request<WasiBody>,
    host: &str,
    addr: SocketAddr,
    use_tls: bool,
    tls: &TlsSettings,
    permit: RequestPermit,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    SendError,
> {
    let uri = req.uri().clone();

    *req.uri_mut() = http::Uri::builder()
        .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    if use_tls {
        if tls.insecure {
            tracing::warn!(
                target = %addr,
                host = %host,
                "TLS certificate verification is disabled for this driver (insecure TLS setting)"
            );
        }
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|e| {
                if e.to_string().contains("certificate") {
                    HttpError::TlsCertificateError
                } else {
                    HttpError::Tls(e)
                }
            })?;
        handshake(TokioIo::new(stream), req, permit).await
    } else {
        handshake(TokioIo::new(tcp), req, permit).await
    }
}

async fn handshake<S>(
    io: S,
    req: http::Request<WasiBody>,
    permit: RequestPermit,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    SendError,
>
where
    S: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(HttpError::from)?;
    // The connection task lives as long as the response body is read; it is
    // aborted when the call's store (and so this future) is dropped.
    let conn = tokio::spawn(conn);
    let abort = AbortOnDrop(conn);
    let res = sender
        .send_request(req)
        .await
        .map_err(HttpError::from)?
        .map(|body| body.map_err(HttpError::from).boxed_unsync());
    Ok((
        res,
        Box::new(async move {
            // The request counts as open until its connection ends.
            let _permit = permit;
            let mut abort = abort;
            match (&mut abort.0).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(HttpError::from(e)),
                Err(_) => Err(HttpError::ConnectionTerminated),
            }
        }),
    ))
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(grants: &[&str]) -> EgressPolicy {
        EgressPolicy::new(grants.iter().map(|g| g.parse().unwrap()).collect())
    }

    #[test]
    fn grants_parse_and_print() {
        for g in [
            "bmc.example.com",
            "bmc.example.com:443",
            "*.example.com",
            "10.0.0.5",
            "10.0.0.5:8000",
            "10.0.0.0/8",
            "10.0.0.0/8:443",
            "[::1]:80",
        ] {
            assert_eq!(g.parse::<EgressGrant>().unwrap().to_string(), g);
        }
        for bad in ["", "bmc:notaport", "a b", "http://x", "[::1", "-:1:2:3"] {
            assert!(bad.parse::<EgressGrant>().is_err(), "{bad} parsed");
        }
    }

    #[tokio::test]
    async fn ip_literals_need_an_ip_grant() {
        let p = policy(&["10.0.0.0/8:443", "127.0.0.1:8000"]);
        assert!(p.resolve("10.1.2.3", 443).await.is_ok());
        assert!(p.resolve("10.1.2.3", 80).await.is_err());
        assert!(p.resolve("127.0.0.1", 8000).await.is_ok());
        assert!(p.resolve("127.0.0.1", 8001).await.is_err());
        assert!(p.resolve("169.254.169.254", 80).await.is_err());
        assert!(p.resolve("192.168.1.1", 443).await.is_err());
    }

    #[tokio::test]
    async fn granted_names_resolving_to_loopback_are_refused() {
        let p = policy(&["localhost"]);
        let err = p.resolve("localhost", 80).await.unwrap_err();
        assert!(err.reason.contains("loopback"), "{err:?}");
        // ...unless the loopback address itself is granted.
        let p = policy(&["localhost", "127.0.0.1", "::1"]);
        assert!(p.resolve("localhost", 80).await.is_ok());
    }

    #[tokio::test]
    async fn names_not_granted_are_refused() {
        let p = policy(&["*.example.com"]);
        let err = p.resolve("localhost", 80).await.unwrap_err();
        assert_eq!(err.reason, "it is not granted");
        assert!(p.name_granted("bmc.example.com", 1));
        assert!(!p.name_granted("example.com", 1));
        assert!(!p.name_granted("evil-example.com", 1));
    }

    #[tokio::test]
    async fn ipv6_grants_never_reach_ipv4_through_mapped_forms() {
        let p = policy(&["::/0"]);
        for ip in [
            "[::ffff:127.0.0.1]",
            "[::127.0.0.1]",
            "[64:ff9b::7f00:1]",
            "[::ffff:169.254.169.254]",
            "[::ffff:10.0.0.1]",
            "[::1]",
            "[fe80::1]",
        ] {
            assert!(
                p.resolve(ip, 80).await.is_err(),
                "{ip} reached through ::/0"
            );
        }
        assert!(p.resolve("[2606:4700::1111]", 80).await.is_ok());
        // A mapped grant is the IPv4 grant it maps.
        let p = policy(&["::ffff:10.0.0.0/104"]);
        assert_eq!(
            p.resolve("10.1.2.3", 80).await.unwrap(),
            "10.1.2.3:80".parse().unwrap()
        );
        assert_eq!(
            p.resolve("[::ffff:10.1.2.3]", 80).await.unwrap(),
            "10.1.2.3:80".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn broad_grants_do_not_reach_special_addresses() {
        let p = policy(&["0.0.0.0/0", "169.254.0.0/16"]);
        assert!(p.resolve("8.8.8.8", 443).await.is_ok());
        assert!(p.resolve("10.0.0.1", 443).await.is_ok());
        assert!(p.resolve("127.0.0.1", 80).await.is_err());
        assert!(p.resolve("169.254.169.254", 80).await.is_err());
        assert!(p.resolve("169.254.1.1", 80).await.is_ok());
        assert!(p.resolve("100.100.100.200", 80).await.is_err());
        let p = policy(&["127.0.0.0/8", "169.254.169.254"]);
        assert!(p.resolve("127.0.0.2", 80).await.is_ok());
        assert!(p.resolve("169.254.169.254", 80).await.is_ok());
    }

    #[tokio::test]
    async fn names_no_grant_matches_are_never_looked_up() {
        // `.invalid` never resolves: a lookup would answer "does not
        // resolve"; the policy must refuse before asking.
        let p = policy(&["*.example.com", "0.0.0.0/0"]);
        let err = p.resolve("leak.secret.invalid", 80).await.unwrap_err();
        assert_eq!(err.reason, "it is not granted");
        let p = policy(&["leak.secret.invalid"]);
        let err = p.resolve("leak.secret.invalid", 80).await.unwrap_err();
        assert!(err.reason.contains("does not resolve"), "{err:?}");
    }
}
