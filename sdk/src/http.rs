//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! The host decides where a driver may connect (the operator's egress grant,
//! and a node's own BMC for node-scoped oob calls) and does TLS: an `https`
//! URL works as is. Transport failures come back as [`DriverError`]s a driver
//! can return unchanged; error messages name the host, never the credentials
//! or the query string.
//!
//! ```no_run
//! # fn main() -> drydock_sdk::Result<()> {
//! use drydock_sdk::http::Request;
//!
//! let systems: serde_json::Value = Request::get("https://10.0.0.5/redfish/v1/Systems")
//!     .basic_auth("admin", "secret")
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! # let _ = systems; Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, Method as WasiMethod, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

use crate::{DriverError, Result};

/// An HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// Whether requests with this method usually carry a body.
    fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

impl From<Method> for WasiMethod {
    fn from(method: Method) -> Self {
        match method {
            Method::Get => WasiMethod::Get,
            Method::Head => WasiMethod::Head,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Patch => WasiMethod::Patch,
            Method::Delete => WasiMethod::Delete,
            Method::Options => WasiMethod::Options,
        }
    }
}

/// An HTTP request being built; [`Request::send`] sends it.
#[must_use = "a request does nothing until sent"]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers may carry credentials and the query string tokens.
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &redact(&self.url))
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request with `method` to `url` (`http://` or `https://`).
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// A `PATCH` request.
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    /// Adds an `Authorization: Basic` header.
    pub fn basic_auth(self, username: &str, password: &str) -> Self {
        let token = crate::encoding::base64_encode(format!("{username}:{password}"));
        self.header("authorization", format!("Basic {token}"))
    }

    /// Sets the body to `value` as JSON, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self> {
        self.body = serde_json::to_vec(value).map_err(|e| {
            DriverError::InvalidInput(format!("cannot encode the request body as JSON: {e}"))
        })?;
        Ok(self.header("content-type", "application/json"))
    }

    /// Sets the raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Bounds connecting, the wait for the first response byte and each wait
    /// between bytes; past it the request fails with
    /// [`DriverError::Timeout`]. By default, and at most, the time left
    /// before the call's deadline less a moment to report it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole response. Any status is `Ok`:
    /// see [`Response::error_for_status`].
    pub fn send(self) -> Result<Response> {
        let target = Target::parse(&self.url)?;
        let host = target.host();
        let transport = |e: ErrorCode| transport_error(host, &e);

        let mut header_list = self.headers;
        let has_length = header_list
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
        if !has_length && (!self.body.is_empty() || self.method.has_body()) {
            // A known length, not chunked encoding: many BMCs refuse chunks.
            let length = self.body.len().to_string().into_bytes();
            header_list.push(("content-length".to_string(), length));
        }
        let headers = Fields::from_list(&header_list).map_err(|e| {
            DriverError::InvalidInput(format!("invalid header in a request to {host}: {e:?}"))
        })?;
        let request = OutgoingRequest::new(headers);
        let invalid = |what: &str| DriverError::InvalidInput(format!("invalid {what} for {host}"));
        request
            .set_method(&self.method.into())
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&target.scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(target.authority))
            .map_err(|()| invalid("address"))?;
        request
            .set_path_with_query(Some(&target.path_with_query))
            .map_err(|()| invalid("path"))?;
        // Never wait past the call's deadline: a stalled peer answers
        // `timeout` while the driver can still report it.
        let timeout = deadline_bound(self.timeout, crate::Ctx::new().deadline_remaining())
            .ok_or_else(|| DriverError::Timeout(format!("no time left to reach {host}")))?;
        let options = Some(timeout).map(|timeout| {
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let options = RequestOptions::new();
            // A host that does not support a timeout keeps its own.
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
            options
        });

        let body = request.body().expect("the body of a new request");
        if !self.body.is_empty() {
            let stream = body.write().expect("the stream of a new body");
            for chunk in self.body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| stream_error(host, e))?;
            }
        }
        let pending = outgoing_handler::handle(request, options).map_err(transport)?;
        OutgoingBody::finish(body, None).map_err(transport)?;

        let response = loop {
            match pending.get() {
                Some(result) => break result.expect("a response taken once"),
                None => pending.subscribe().block(),
            }
        }
        .map_err(transport)?;

        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response.consume().expect("the body of a new response");
        let stream = incoming.stream().expect("the stream of a new body");
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error(host, e)),
            }
        }

        Ok(Response {
            status,
            headers,
            body: bytes,
            host: host.to_string(),
        })
    }
}

/// A response, read whole.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in the order received (names lower case), values decoded as
    /// UTF-8 (lossily).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    host: String,
}

impl Response {
    /// The host (and port) that answered, for messages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded as JSON; [`DriverError::Failed`] naming the host if
    /// it does not decode as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            DriverError::Failed(format!(
                "{} answered HTTP {} with unexpected JSON: {e}",
                self.host, self.status
            ))
        })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The response itself if its status is below 400, else the error
    /// [`status_error`] maps it to.
    pub fn error_for_status(self) -> Result<Self> {
        match status_error(&self.host, self.status) {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }
}

/// Time kept back from the deadline to report a timed-out request.
const REPORT_MARGIN: Duration = Duration::from_millis(300);

/// The timeout of one request: `wanted`, cut to the time `left` before the
/// deadline less [`REPORT_MARGIN`]; `None` when no time is left.
fn deadline_bound(wanted: Option<Duration>, left: Duration) -> Option<Duration> {
    let usable = left.checked_sub(REPORT_MARGIN).filter(|d| !d.is_zero())?;
    Some(wanted.map_or(usable, |w| w.min(usable)))
}

/// Maps an HTTP error status to a [`DriverError`] naming `host` and the
/// status: 401 and 403 → `Auth`; 409, 429 and 503 → `Busy` (retryable); any
/// other status from 400 on → `Failed`. `None` below 400.
pub fn status_error(host: &str, status: u16) -> Option<DriverError> {
    match status {
        0..=399 => None,
        401 | 403 => Some(DriverError::Auth(format!(
            "{host} refused the credentials (HTTP {status})"
        ))),
        409 | 429 | 503 => Some(DriverError::Busy(format!("{host} is busy (HTTP {status})"))),
        _ => Some(DriverError::Failed(format!(
            "{host} answered HTTP {status}"
        ))),
    }
}

/// A URL split the way `wasi:http` wants it.
struct Target<'a> {
    scheme: Scheme,
    authority: &'a str,
    path_with_query: String,
}

impl<'a> Target<'a> {
    fn parse(url: &'a str) -> Result<Self> {
        let invalid =
            |why: &str| DriverError::InvalidInput(format!("invalid URL `{}`: {why}", redact(url)));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(invalid("only http and https are supported")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        if authority.contains('@') {
            return Err(invalid(
                "credentials in URLs are not supported; use basic_auth",
            ));
        }
        let path = path.split('#').next().unwrap_or_default();
        let path_with_query = match path.chars().next() {
            None => "/".to_string(),
            Some('?') => format!("/{path}"),
            Some(_) => path.to_string(),
        };
        Ok(Target {
            scheme,
            authority,
            path_with_query,
        })
    }

    /// The host (and port) the request goes to, for messages.
    fn host(&self) -> &'a str {
        self.authority
    }
}

/// `url` without user info, query string and fragment, which may carry
/// secrets.
fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_string(),
    }
}

fn stream_error(host: &str, error: StreamError) -> DriverError {
    match error {
        StreamError::Closed => {
            DriverError::Unreachable(format!("connection to {host} closed unexpectedly"))
        }
        StreamError::LastOperationFailed(e) => match wasip2::http::types::http_error_code(&e) {
            Some(code) => transport_error(host, &code),
            None => DriverError::Unreachable(format!(
                "connection to {host} failed: {}",
                e.to_debug_string()
            )),
        },
    }
}

/// Maps a `wasi:http` error to a [`DriverError`]: denied by the host's
/// egress policy → `Failed`; connection and DNS failures → `Unreachable`;
/// timeouts → `Timeout`; a bad request → `InvalidInput`.
fn transport_error(host: &str, code: &ErrorCode) -> DriverError {
    use ErrorCode as E;
    match code {
        E::HttpRequestDenied => DriverError::Failed(format!(
            "request to {host} denied by the host's egress policy"
        )),
        E::DestinationIpProhibited => DriverError::Failed(format!(
            "request to {host} denied: destination address prohibited"
        )),
        E::DnsTimeout
        | E::ConnectionTimeout
        | E::ConnectionReadTimeout
        | E::ConnectionWriteTimeout
        | E::HttpResponseTimeout => DriverError::Timeout(format!("request to {host} timed out")),
        E::DnsError(_)
        | E::DestinationNotFound
        | E::DestinationUnavailable
        | E::DestinationIpUnroutable
        | E::ConnectionRefused
        | E::ConnectionTerminated
        | E::ConnectionLimitReached
        | E::HttpResponseIncomplete => {
            DriverError::Unreachable(format!("cannot reach {host}: {}", describe(code)))
        }
        E::TlsProtocolError | E::TlsCertificateError | E::TlsAlertReceived(_) => {
            DriverError::Failed(format!("TLS with {host} failed: {}", describe(code)))
        }
        E::HttpRequestMethodInvalid | E::HttpRequestUriInvalid | E::HttpRequestUriTooLong => {
            DriverError::InvalidInput(format!("invalid request to {host}: {}", describe(code)))
        }
        _ => DriverError::Failed(format!("request to {host} failed: {}", describe(code))),
    }
}

/// A short description of a `wasi:http` error, e.g. `connection-refused`.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::DnsError(p) => {
            format!("DNS error {}", p.rcode.as_deref().unwrap_or("(no code)"))
        }
        ErrorCode::TlsAlertReceived(p) => format!(
            "TLS alert {}",
            p.alert_message.as_deref().unwrap_or("(no message)")
        ),
        other => {
            // `Debug` gives `ErrorCode::InternalError(Some(..))`: keep the
            // case name, in the WIT spelling.
            let debug = format!("{other:?}");
            let name = debug.split(['(', ' ', '{']).next().unwrap_or_default();
            let name = name.rsplit("::").next().unwrap_or_default();
            let mut out = String::new();
            for (i, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('-');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeouts_stop_before_the_deadline() {
        let s = Duration::from_secs;
        assert_eq!(deadline_bound(None, s(10)), Some(s(10) - REPORT_MARGIN));
        assert_eq!(deadline_bound(Some(s(2)), s(10)), Some(s(2)));
        assert_eq!(
            deadline_bound(Some(s(30)), s(5)),
            Some(s(5) - REPORT_MARGIN)
        );
        assert_eq!(deadline_bound(None, REPORT_MARGIN), None);
    }

    #[test]
    fn urls_split_for_wasi_http() {
        let t = Target::parse("https://10.0.0.5:8443/redfish/v1?x=1#frag").unwrap();
        assert!(matches!(t.scheme, Scheme::Https));
        assert_eq!(t.authority, "10.0.0.5:8443");
        assert_eq!(t.path_with_query, "/redfish/v1?x=1");
        assert_eq!(Target::parse("http://bmc").unwrap().path_with_query, "/");
        assert_eq!(
            Target::parse("http://bmc?a").unwrap().path_with_query,
            "/?a"
        );
        for bad in ["bmc/x", "ftp://bmc/", "http:///x", "http://u:p@bmc/"] {
            let err = Target::parse(bad).err().expect(bad);
            assert!(
                matches!(err, DriverError::InvalidInput(_)),
                "{bad}: {err:?}"
            );
            assert!(!err.message().contains(":p@"), "{err:?}");
        }
    }

    #[test]
    fn statuses_map_to_driver_errors() {
        assert!(status_error("bmc", 204).is_none());
        assert!(matches!(
            status_error("bmc", 401),
            Some(DriverError::Auth(_))
        ));
        assert!(matches!(
            status_error("bmc", 429),
            Some(DriverError::Busy(_))
        ));
        let Some(DriverError::Failed(m)) = status_error("bmc:443", 500) else {
            panic!("500 is a permanent failure");
        };
        assert_eq!(m, "bmc:443 answered HTTP 500");
    }

    #[test]
    fn transport_errors_map_to_driver_errors() {
        let denied = transport_error("evil.example", &ErrorCode::HttpRequestDenied);
        assert_eq!(
            denied,
            DriverError::Failed(
                "request to evil.example denied by the host's egress policy".into()
            )
        );
        let refused = transport_error("bmc", &ErrorCode::ConnectionRefused);
        assert_eq!(
            refused,
            DriverError::Unreachable("cannot reach bmc: connection-refused".into())
        );
        assert!(transport_error("bmc", &ErrorCode::ConnectionTimeout).is_retryable());
    }
}
