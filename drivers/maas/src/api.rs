//! The MAAS 2.0 REST client: OAuth 1.0 PLAINTEXT signing (a fresh nonce
//! from the WASI random source per request), `op=` in the query,
//! multipart/form-data bodies (the SDK's encoder, a random boundary per
//! body), bounded retries of 429/5xx with the SDK's [`Backoff`], and the
//! mapping of MAAS answers to [`DriverError`]s.
//!
//! It knows nothing of Drydock's model; the action modules do.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drydock_sdk::encoding::{Multipart, url_encode as percent};
use drydock_sdk::http::{Method, Request, Response};
use drydock_sdk::prelude::*;
use drydock_sdk::random;
use drydock_sdk::retry::Backoff;
use serde_json::Value;

/// Attempts per request when MAAS answers 429 or 5xx.
const ATTEMPTS: u32 = 6;
/// First backoff; it doubles per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A MAAS API key `consumer:token:secret`. `Debug` hides it.
struct ApiKey {
    consumer: String,
    token: String,
    secret: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.trim().split(':').collect();
        match parts.as_slice() {
            [c, t, s] if !c.is_empty() && !t.is_empty() && !s.is_empty() => Ok(ApiKey {
                consumer: c.to_string(),
                token: t.to_string(),
                secret: s.to_string(),
            }),
            _ => Err(DriverError::InvalidInput(
                "the MAAS API key is not of the form consumer:token:secret".into(),
            )),
        }
    }

    /// The `Authorization` header value (OAuth 1.0, PLAINTEXT signature:
    /// empty consumer secret, `&`, token secret; percent-encoded).
    fn header(&self, nonce: &str) -> String {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!(
            "OAuth realm=\"OAuth\", oauth_nonce=\"{nonce}\", oauth_timestamp=\"{timestamp}\", \
             oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", \
             oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\"",
            percent(&self.consumer),
            percent(&self.token),
            percent(&self.secret)
        )
    }
}

/// Reads the API key from the secret named by setting `api_key_secret`
/// (default `maas-api-key`). The message names the secret, never its value.
fn api_key(ctx: &Ctx) -> Result<ApiKey> {
    let name = ctx
        .config("api_key_secret")
        .unwrap_or_else(|| "maas-api-key".into());
    let text = ctx.secret(&name).ok_or_else(|| {
        DriverError::InvalidInput(format!(
            "no MAAS API key: the secret `{name}` (consumer:token:secret) is not granted to this driver"
        ))
    })?;
    ApiKey::parse(&text).map_err(|_| {
        DriverError::InvalidInput(format!(
            "the secret `{name}` is not a MAAS API key of the form consumer:token:secret"
        ))
    })
}

/// A multipart/form-data body: fields in order; a name may repeat.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// An empty form.
    pub fn new() -> Self {
        Form(Vec::new())
    }

    /// Adds a field.
    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.0.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds a field when `value` is some.
    pub fn with_opt(self, name: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.with(name, v),
            None => self,
        }
    }

    /// True if no field was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The body, with a fresh random boundary, and its `content-type`.
    fn encode(&self) -> Result<(String, Vec<u8>)> {
        let mut form = Multipart::new();
        for (name, value) in &self.0 {
            form.text(name, value)?;
        }
        form.finish()
    }
}

/// A connection to one MAAS region for the length of a call.
pub struct Maas<'a> {
    ctx: &'a Ctx,
    /// `http://host:5240/MAAS/api/2.0`
    base: String,
    host: String,
    key: ApiKey,
}

impl<'a> Maas<'a> {
    /// Reads settings `url` and the API key.
    pub fn connect(ctx: &'a Ctx) -> Result<Self> {
        let url = ctx.config("url").ok_or_else(|| {
            DriverError::InvalidInput(
                "setting `url` (e.g. http://maas:5240/MAAS) is not set".into(),
            )
        })?;
        let root = url.trim().trim_end_matches('/');
        let root = root.strip_suffix("/api/2.0").unwrap_or(root);
        let host = root
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or(root)
            .to_string();
        Ok(Maas {
            ctx,
            base: format!("{root}/api/2.0"),
            host: format!("MAAS at {host}"),
            key: api_key(ctx)?,
        })
    }

    /// `GET path` with query parameters, as JSON.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.call(Method::Get, path, query, None)?.json()
    }

    /// `GET path` as JSON, or `None` if MAAS answers 404.
    pub fn get_opt(&self, path: &str) -> Result<Option<Value>> {
        match self.call(Method::Get, path, &[], None) {
            Ok(r) => r.json().map(Some),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET path` raw bytes (e.g. BSON).
    pub fn get_raw(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<u8>> {
        Ok(self.call(Method::Get, path, query, None)?.body)
    }

    /// `POST path?op=op` with a form, as JSON (`null` for an empty answer).
    pub fn post(&self, path: &str, op: Option<&str>, form: Form) -> Result<Value> {
        let query: Vec<(&str, &str)> = op.map(|op| ("op", op)).into_iter().collect();
        let response = self.call(Method::Post, path, &query, Some(form))?;
        json_or_null(&response)
    }

    /// `PUT path` with a form, as JSON.
    pub fn put(&self, path: &str, form: Form) -> Result<Value> {
        let response = self.call(Method::Put, path, &[], Some(form))?;
        json_or_null(&response)
    }

    /// `DELETE path`; a missing object is already deleted.
    pub fn delete(&self, path: &str) -> Result<()> {
        match self.call(Method::Delete, path, &[], None) {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        form: Option<Form>,
    ) -> Result<Response, Error> {
        let mut url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{}={}", percent(k), percent(v)));
        }
        let verb = format!("{method:?}").to_uppercase();
        let what = format!("{verb} {}", path.trim_start_matches('/'));
        let what = match query.iter().find(|(k, _)| *k == "op") {
            Some((_, op)) => format!("{what}?op={op}"),
            None => what,
        };
        let body = form.map(|f| f.encode()).transpose()?;
        let mut last_status = 0;
        let response = Backoff::new()
            .attempts(ATTEMPTS)
            .first_wait(FIRST_BACKOFF)
            .max_wait(MAX_BACKOFF)
            .only(|e| matches!(e, DriverError::Busy(_)))
            .on_retry(|e, attempt, wait| {
                self.ctx.debug(format!(
                    "{} (attempt {attempt}); retrying in {} ms",
                    e.message(),
                    wait.as_millis()
                ))
            })
            .run(self.ctx, |_| {
                let mut request = Request::new(method, url.clone())
                    .header("authorization", self.key.header(&random::nonce()))
                    .header("accept", "application/json");
                if let Some((content_type, body)) = &body {
                    request = request
                        .header("content-type", content_type)
                        .body(body.clone());
                }
                let response = request.send()?;
                last_status = response.status;
                if response.status == 429 || response.status >= 500 {
                    // Retried while attempts and the deadline allow.
                    return Err(DriverError::Busy(format!(
                        "{} answered HTTP {} to {what}: {}",
                        self.host,
                        response.status,
                        excerpt(&response.text())
                    )));
                }
                Ok(response)
            });
        let response = match response {
            Ok(response) => response,
            // 429 and 503 stay busy (retryable by the host); other 5xx fail.
            Err(DriverError::Busy(message)) if ![429, 503].contains(&last_status) => {
                return Err(Error::Driver(DriverError::Failed(message)));
            }
            Err(e) => return Err(Error::Driver(e)),
        };
        let status = response.status;
        if status < 400 {
            return Ok(response);
        }
        let text = excerpt(&response.text());
        let message = format!("{} answered HTTP {status} to {what}: {text}", self.host);
        Err(match status {
            401 | 403 => Error::Driver(DriverError::Auth(format!("{message} (check the API key)"))),
            404 => Error::NotFound(message),
            409 => Error::Driver(DriverError::Busy(message)),
            400 => Error::Driver(DriverError::InvalidInput(message)),
            _ => Error::Driver(DriverError::Failed(message)),
        })
    }
}

/// A request's failure: 404 apart, so callers can treat it as "absent".
pub enum Error {
    /// MAAS answered 404.
    NotFound(String),
    /// Any other failure.
    Driver(DriverError),
}

impl From<DriverError> for Error {
    fn from(e: DriverError) -> Self {
        Error::Driver(e)
    }
}

impl From<Error> for DriverError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => DriverError::Failed(m),
            Error::Driver(e) => e,
        }
    }
}

fn json_or_null(response: &Response) -> Result<Value> {
    if response.body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        response.json()
    }
}

/// The first line of an error body, shortened for a message.
fn excerpt(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else if line.is_empty() {
        "(no details)".into()
    } else {
        line.to_string()
    }
}

/// A string field of a MAAS object (`""` if absent).
pub fn s<'v>(value: &'v Value, field: &str) -> &'v str {
    value[field].as_str().unwrap_or("")
}

/// An integer field of a MAAS object (`-1` if absent).
pub fn n(value: &Value, field: &str) -> i64 {
    value[field].as_i64().unwrap_or(-1)
}

/// A MAAS list answer as a slice (empty if not a list).
pub fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or(&[])
}
