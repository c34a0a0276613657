//! A fake MAAS region for driver tests. **It is a fake, not MAAS**: written
//! by hand from the published MAAS 2.0 REST API description (paths,
//! parameters, object shapes, status codes, error answers), because no MAAS
//! emulator can be installed here.
//!
//! It is a real HTTP server on `127.0.0.1:0`, started in-process by a test,
//! under `/MAAS/api/2.0/`.
//!
//! # What it models
//!
//! - OAuth 1.0 with the PLAINTEXT signature: every request but `version/`
//!   must carry `consumer:token:secret` of its API key (`Authorization:
//!   OAuth ... oauth_signature="%26<secret>"`), a nonce and a timestamp
//!   within 5 minutes; otherwise 401 as MAAS answers.
//! - Bodies as MAAS reads them: multipart/form-data (parts plain or
//!   base64-encoded with `Content-Transfer-Encoding: base64`, as
//!   python-libmaas sends them) or urlencoded; `op=` in the query string.
//! - Machines with interfaces, block devices, partitions, volume groups,
//!   logical volumes and tags, stepping through statuses on timers of a
//!   configurable length: New → Commissioning → Ready, Ready → Allocated
//!   (`op=allocate`) → Deploying → Deployed, release → Disk erasing or
//!   Releasing → Ready, and Failed commissioning / Failed deployment when a
//!   test injects it. Status codes and names are MAAS's (`NODE_STATUS`).
//!   Transitions MAAS forbids answer 409 with MAAS's wording; bad parameters
//!   answer 400 with field errors. `op=details` answers BSON.
//! - Fabrics (each with its untagged VLAN), VLANs (MTU, DHCP with the rules
//!   MAAS applies: a dynamic range and a primary rack first), subnets, IP
//!   ranges (overlaps refused), static routes, SSH keys, package
//!   repositories, domains, tags with kernel options, boot resources, rack
//!   controllers and their services.
//! - Fault injection ([`Fault`]): forced statuses (401, 409, 503...) for the
//!   next N requests matching a pattern, a machine stuck in commissioning,
//!   commissioning or deployment failing with a reason.
//!
//! # What it does not model
//!
//! Zones, pools, spaces, IPv6, DNS records, events, users other than the
//! key's owner, power drivers (power actions are accepted and ignored),
//! commissioning scripts and their results (`details` answers a fixed lshw
//! document), bcache, RAID, per-architecture images, MAAS's exact
//! partition-table arithmetic (it keeps 5 MiB once a device is partitioned
//! and aligns to 4 MiB), and the websocket API. Objects' JSON carries the
//! fields drivers read, not every field MAAS sends.

mod routes;
pub mod state;

pub use routes::Params;
pub use state::{NewMachine, State, status};

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use routes::Reply;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The API key the fake accepts unless told otherwise.
pub const API_KEY: &str = "fakeconsumer:faketoken:fakesecret";

/// An injected failure: the next `times` requests whose
/// `"METHOD /path?op=op"` line contains `matches` (every request if none)
/// answer `status` with `body`, before authentication.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Substring of the request line, e.g. `POST /MAAS/api/2.0/fabrics/`.
    pub matches: Option<String>,
    /// Status to answer.
    pub status: u16,
    /// Body to answer.
    pub body: String,
    /// Requests left to fail.
    pub times: u32,
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Received {
    /// `METHOD /path?op=op` (other query parameters left out).
    pub line: String,
    /// Query and form parameters, decoded.
    pub params: Vec<(String, String)>,
    /// Status answered.
    pub status: u16,
    /// Whether a multipart part came base64-encoded.
    pub base64_parts: bool,
}

struct Shared {
    state: Mutex<State>,
    faults: Mutex<Vec<Fault>>,
    received: Mutex<Vec<Received>>,
    key: (String, String, String),
}

/// A running fake region. Dropping it stops the server.
pub struct FakeMaas {
    /// Address it listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMaas {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeMaas {
    /// Starts a region whose timed status steps take `step`, accepting
    /// [`API_KEY`].
    pub async fn start(step: Duration) -> Self {
        Self::start_with_key(step, API_KEY).await
    }

    /// Starts a region accepting `api_key` (`consumer:token:secret`).
    pub async fn start_with_key(step: Duration, api_key: &str) -> Self {
        let mut parts = api_key.splitn(3, ':').map(str::to_string);
        let key = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(step)),
            faults: Mutex::new(Vec::new()),
            received: Mutex::new(Vec::new()),
            key,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake MAAS");
        let addr = listener.local_addr().expect("local address");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeMaas { addr, shared, task }
    }

    /// The MAAS URL a driver is configured with: `http://127.0.0.1:PORT/MAAS`.
    pub fn url(&self) -> String {
        format!("http://{}/MAAS", self.addr)
    }

    /// The egress grant a driver needs: `127.0.0.1:PORT`.
    pub fn egress(&self) -> String {
        self.addr.to_string()
    }

    /// Runs `f` on the region's state (read or change it).
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut st = self.shared.state.lock().unwrap();
        st.tick(std::time::Instant::now());
        f(&mut st)
    }

    /// Enlists a machine (status New); returns its system id.
    pub fn enlist(&self, machine: NewMachine) -> String {
        self.with_state(|st| st.enlist(machine))
    }

    /// A machine as `GET machines/{id}/` shows it, if it exists.
    pub fn machine(&self, system_id: &str) -> Option<serde_json::Value> {
        self.with_state(|st| st.machines.get(system_id).map(|m| st.machine_json(m)))
    }

    /// Adds an injected failure.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.lock().unwrap().push(fault);
    }

    /// Fails the next `times` requests containing `matches` with `status`.
    pub fn fail_next(&self, matches: Option<&str>, status: u16, times: u32) {
        let body = match status {
            401 => {
                "Authorization Error: 'Expired timestamp: given 0 and now 1 has a greater difference than threshold 300'"
            }
            409 => "Machine is busy: another operation is in progress.",
            503 => "Service Unavailable: the region is starting or overloaded.",
            _ => "Injected failure.",
        };
        self.inject(Fault {
            matches: matches.map(str::to_string),
            status,
            body: body.into(),
            times,
        });
    }

    /// Requests received so far, oldest first.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Request lines (`METHOD /path?op=op`) received so far.
    pub fn lines(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.line).collect()
    }
}

const PREFIX: &str = "/MAAS/api/2.0/";

async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = Params(form_urlencoded(uri.query().unwrap_or("")));
    let (form, base64_parts) = match parse_body(&headers, &body) {
        Ok(parsed) => parsed,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    params.0.extend(form);
    let op = params
        .get("op")
        .map(|op| format!("?op={op}"))
        .unwrap_or_default();
    let line = format!("{method} {}{op}", uri.path());
    let reply = answer(&shared, &method, &uri, &headers, &line, &params);
    let status = match &reply {
        Reply::Json(s, _) | Reply::Text(s, _) => *s,
        Reply::Bson(_) => 200,
        Reply::NoContent => 204,
    };
    shared.received.lock().unwrap().push(Received {
        line,
        params: params.0,
        status,
        base64_parts,
    });
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply {
        Reply::Json(_, v) => (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Reply::Text(_, t) => (
            code,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            t,
        )
            .into_response(),
        Reply::Bson(b) => (code, [(header::CONTENT_TYPE, "application/bson")], b).into_response(),
        Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
    }
}

fn answer(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    line: &str,
    params: &Params,
) -> Reply {
    {
        let mut faults = shared.faults.lock().unwrap();
        if let Some(f) = faults
            .iter_mut()
            .find(|f| f.times > 0 && f.matches.as_deref().is_none_or(|m| line.contains(m)))
        {
            f.times -= 1;
            return Reply::Text(f.status, f.body.clone());
        }
    }
    let Some(rest) = uri.path().strip_prefix(PREFIX) else {
        return Reply::Text(404, "Not Found".into());
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segs != ["version"]
        && let Err(why) = check_oauth(shared, headers)
    {
        return Reply::Text(401, format!("Authorization Error: {why}"));
    }
    let mut st = shared.state.lock().unwrap();
    routes::dispatch(&mut st, method.as_str(), &segs, params)
}

/// Checks an OAuth 1.0 PLAINTEXT `Authorization` header against the key.
fn check_oauth(shared: &Shared, headers: &HeaderMap) -> Result<(), String> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("'Missing OAuth parameters'")?;
    let fields = header
        .strip_prefix("OAuth ")
        .ok_or("'Unsupported authorization scheme'")?;
    let mut oauth = std::collections::BTreeMap::new();
    for field in fields.split(',') {
        let Some((k, v)) = field.trim().split_once('=') else {
            continue;
        };
        oauth.insert(
            k.trim().to_string(),
            percent_decode(v.trim().trim_matches('"')),
        );
    }
    let get = |k: &str| oauth.get(k).map(String::as_str).unwrap_or("");
    if get("oauth_signature_method") != "PLAINTEXT" {
        return Err(format!(
            "'Signature method {} not supported.'",
            get("oauth_signature_method")
        ));
    }
    if !["", "1.0"].contains(&get("oauth_version")) {
        return Err("'OAuth version not supported.'".into());
    }
    if get("oauth_nonce").is_empty() || get("oauth_timestamp").is_empty() {
        return Err("'Missing OAuth parameters: oauth_nonce, oauth_timestamp'".into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let ts: i64 = get("oauth_timestamp")
        .parse()
        .map_err(|_| "'Invalid timestamp'")?;
    if (now - ts).abs() > 300 {
        return Err(format!(
            "'Expired timestamp: given {ts} and now {now} has a greater difference than threshold 300'"
        ));
    }
    let (consumer, token, secret) = &shared.key;
    if get("oauth_consumer_key") != consumer {
        return Err(format!("'Invalid consumer: {}'", get("oauth_consumer_key")));
    }
    if get("oauth_token") != token {
        return Err(format!("'Invalid access token: {}'", get("oauth_token")));
    }
    if get("oauth_signature") != format!("&{secret}") {
        return Err("'Invalid signature.'".into());
    }
    Ok(())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes a body: multipart/form-data (base64 parts too) or urlencoded.
/// Returns the fields and whether any part was base64-encoded.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<(Vec<(String, String)>, bool), String> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/x-www-form-urlencoded") {
        return Ok((form_urlencoded(&String::from_utf8_lossy(body)), false));
    }
    if !ctype.starts_with("multipart/form-data") {
        return Ok((Vec::new(), false));
    }
    let boundary = ctype
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"').to_string())
        .ok_or("multipart body without a boundary")?;
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut fields = Vec::new();
    let mut any_base64 = false;
    let positions: Vec<usize> = find_all(text, delimiter.as_bytes());
    for w in positions.windows(2) {
        let part = &text[w[0] + delimiter.len()..w[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = find_all(part, b"\r\n\r\n").first().copied() else {
            return Err("multipart part without headers".into());
        };
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let content = &part[split + 4..];
        let mut name = None;
        let mut base64 = false;
        for h in head.lines() {
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    name = v
                        .split(';')
                        .filter_map(|x| x.trim().strip_prefix("name="))
                        .next()
                        .map(|n| n.trim_matches('"').to_string());
                }
                "content-transfer-encoding" => base64 = v.trim().eq_ignore_ascii_case("base64"),
                _ => {}
            }
        }
        let name = name.ok_or("multipart part without a name")?;
        let value = if base64 {
            any_base64 = true;
            let compact: Vec<u8> = content
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| format!("part {name}: bad base64: {e}"))?
        } else {
            content.to_vec()
        };
        fields.push((name, String::from_utf8_lossy(&value).into_owned()));
    }
    Ok((fields, any_base64))
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return Vec::new();
    }
    (0..=haystack.len() - needle.len())
        .filter(|i| &haystack[*i..*i + needle.len()] == needle)
        .collect()
}

/// A BSON document of binary fields (what MAAS's `op=details` answers).
pub fn bson_doc(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in fields {
        body.push(0x05);
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(&(bytes.len() as i32).to_le_bytes());
        body.push(0x00); // generic binary subtype
        body.extend_from_slice(bytes);
    }
    let mut doc = ((body.len() + 5) as i32).to_le_bytes().to_vec();
    doc.extend_from_slice(&body);
    doc.push(0);
    doc
}

/// Encodes `fields` as a multipart body with each part base64-encoded, the
/// way python-libmaas sends them (for tests of the fake itself).
pub fn libmaas_multipart(boundary: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, value) in fields {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nMIME-Version: 1.0\r\n\
             Content-Transfer-Encoding: base64\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{}\r\n",
            base64::engine::general_purpose::STANDARD.encode(value)
        ));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}
