//! Keystone v3 token validation, as Drydock's `keystonemiddleware` does it.
//!
//! A token in `X-Auth-Token` that is not one of the static API tokens is
//! checked with Keystone: `GET <auth_url>/auth/tokens?nocatalog` with the
//! service's own token in `X-Auth-Token` and the caller's in
//! `X-Subject-Token`. 200 gives the user, project and roles; 404 (or 401 for
//! the subject) means the token is not valid. The service token is obtained
//! with the configured credentials (password method, project scope) and
//! renewed a minute before it expires, or when Keystone refuses it.
//!
//! Valid tokens are cached (by SHA-256 digest, never the token) until they
//! expire, at most `cache_seconds` when set; the cache holds at most
//! `cache_entries` tokens (when full, expired entries go first, then those
//! expiring soonest). Keystone's answers are read up to 1 MiB, with a time
//! limit; Keystone unreachable is a 503 for the caller, never a 401.
//!
//! [`Keystone::service_token`] (also through the [`ServiceToken`] trait) is
//! the hook for calls made in this service's name (Deckhand design
//! references).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// `[keystone]`: where Keystone is and this service's credentials.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoneConfig {
    /// Keystone's URL, with or without the trailing `/v3`
    /// (e.g. `http://keystone-api.ucp:80/v3`).
    pub auth_url: String,
    /// This service's user (e.g. `drydock`).
    pub username: String,
    /// Its password.
    #[serde(default)]
    pub password: Option<String>,
    /// An environment variable holding the password (preferred).
    #[serde(default)]
    pub password_env: Option<String>,
    /// The user's domain by name (default: the domain with id `default`).
    #[serde(default)]
    pub user_domain_name: Option<String>,
    /// The user's domain by id.
    #[serde(default)]
    pub user_domain_id: Option<String>,
    /// The project the service token is scoped to (default `service`).
    #[serde(default = "default_project")]
    pub project_name: String,
    /// The project's domain by name (default: id `default`).
    #[serde(default)]
    pub project_domain_name: Option<String>,
    /// The project's domain by id.
    #[serde(default)]
    pub project_domain_id: Option<String>,
    /// Most validated tokens cached (default 10,000).
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// Longest a validation is trusted, in seconds (default: the token's
    /// whole life).
    #[serde(default)]
    pub cache_seconds: Option<u64>,
    /// Time limit of one Keystone request, in seconds (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
}

fn default_project() -> String {
    "service".into()
}
fn default_cache_entries() -> usize {
    10_000
}
fn default_timeout() -> u64 {
    10
}

impl fmt::Debug for KeystoneConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoneConfig")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("password_env", &self.password_env)
            .field("project_name", &self.project_name)
            .finish_non_exhaustive()
    }
}

/// Why Keystone could not answer.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneError {
    /// The configuration cannot work (no password, bad URL).
    #[error("keystone configuration: {0}")]
    Config(String),
    /// Keystone did not answer, or answered with an error (5xx, timeout).
    #[error("keystone is unavailable: {0}")]
    Unavailable(String),
    /// Keystone refused this service's own credentials.
    #[error("keystone refused drydock's service credentials ({0})")]
    ServiceRejected(String),
    /// Keystone's answer could not be understood.
    #[error("unexpected answer from keystone: {0}")]
    Protocol(String),
}

/// Who a valid token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// User name.
    pub user_name: String,
    /// User id.
    pub user_id: String,
    /// The project the token is scoped to, if any.
    pub project_id: Option<String>,
    /// Role names.
    pub roles: Vec<String>,
    /// Whether the project is Keystone's admin project.
    pub is_admin_project: bool,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

/// A token this service obtained.
#[derive(Clone)]
struct Issued {
    token: String,
    expires_at: DateTime<Utc>,
}

/// The largest Keystone answer read.
const MAX_ANSWER: usize = 1 << 20;
/// The longest token sent to Keystone (fernet tokens are about 200
/// characters; longer ones are refused without asking).
pub const MAX_TOKEN: usize = 8192;
/// Renew the service token this long before it expires.
const RENEW_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

/// A Keystone client validating tokens for this service.
pub struct Keystone {
    http: reqwest::Client,
    base: String,
    cfg: KeystoneConfig,
    password: String,
    service: tokio::sync::Mutex<Option<Issued>>,
    cache: Mutex<Cache>,
}

impl fmt::Debug for Keystone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystone")
            .field("auth_url", &self.base)
            .field("username", &self.cfg.username)
            .finish_non_exhaustive()
    }
}

/// The answer to a token check.
#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: DateTime<Utc>,
    user: Named,
    #[serde(default)]
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Named>,
    #[serde(default)]
    is_admin_project: Option<bool>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

impl Keystone {
    /// A client for `cfg` (the password read now from `password_env` or
    /// `password`).
    pub fn new(cfg: KeystoneConfig) -> Result<Keystone, KeystoneError> {
        let password = match (&cfg.password, &cfg.password_env) {
            (_, Some(var)) => std::env::var(var).map_err(|_| {
                KeystoneError::Config(format!("environment variable {var} is not set"))
            })?,
            (Some(p), None) => p.clone(),
            (None, None) => {
                return Err(KeystoneError::Config(
                    "give the service password as `password_env` (or `password`)".into(),
                ));
            }
        };
        let url = reqwest::Url::parse(&cfg.auth_url)
            .map_err(|e| KeystoneError::Config(format!("auth_url `{}`: {e}", cfg.auth_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(KeystoneError::Config(format!(
                "auth_url `{}` must be http(s)",
                cfg.auth_url
            )));
        }
        let trimmed = cfg.auth_url.trim_end_matches('/');
        let base = if trimmed.ends_with("/v3") {
            trimmed.to_owned()
        } else {
            format!("{trimmed}/v3")
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_s.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| KeystoneError::Config(format!("HTTP client: {e}")))?;
        Ok(Keystone {
            http,
            base,
            cache: Mutex::new(Cache::new(cfg.cache_entries.max(1))),
            cfg,
            password,
            service: tokio::sync::Mutex::new(None),
        })
    }

    /// This service's own token (cached, renewed before it expires): for
    /// checking callers' tokens and for calling other services (Deckhand)
    /// in this service's name.
    pub async fn service_token(&self) -> Result<String, KeystoneError> {
        let mut slot = self.service.lock().await;
        if let Some(t) = slot.as_ref()
            && t.expires_at - RENEW_MARGIN > Utc::now()
        {
            return Ok(t.token.clone());
        }
        let t = self.issue().await?;
        let token = t.token.clone();
        *slot = Some(t);
        Ok(token)
    }

    async fn forget_service_token(&self) {
        *self.service.lock().await = None;
    }

    fn domain(name: &Option<String>, id: &Option<String>) -> serde_json::Value {
        match (name, id) {
            (Some(n), _) => serde_json::json!({ "name": n }),
            (None, Some(i)) => serde_json::json!({ "id": i }),
            (None, None) => serde_json::json!({ "id": "default" }),
        }
    }

    /// `POST /v3/auth/tokens` with the service's password.
    async fn issue(&self) -> Result<Issued, KeystoneError> {
        let c = &self.cfg;
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username,
                "domain": Self::domain(&c.user_domain_name, &c.user_domain_id),
                "password": self.password,
            }}},
            "scope": {"project": {
                "name": c.project_name,
                "domain": Self::domain(&c.project_domain_name, &c.project_domain_id),
            }},
        }});
        let res = self
            .http
            .post(format!("{}/auth/tokens?nocatalog", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| KeystoneError::Unavailable(without_url(e)))?;
        let status = res.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(KeystoneError::ServiceRejected(format!(
                "HTTP {} for user `{}`",
                status.as_u16(),
                c.username
            )));
        }
        if !status.is_success() {
            return Err(KeystoneError::Unavailable(format!(
                "issuing the service token: HTTP {}",
                status.as_u16()
            )));
        }
        let token = res
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| KeystoneError::Protocol("no X-Subject-Token in the answer".into()))?;
        let bytes = read_capped(res).await?;
        let info: TokenBody = serde_json::from_slice(&bytes)
            .map_err(|e| KeystoneError::Protocol(format!("token body: {e}")))?;
        Ok(Issued {
            token,
            expires_at: info.token.expires_at,
        })
    }

    /// Checks `token`: its owner when valid, `None` when Keystone says it
    /// is not (unknown, expired, revoked).
    pub async fn validate(&self, token: &str) -> Result<Option<Identity>, KeystoneError> {
        if token.is_empty() || token.len() > MAX_TOKEN || !token.is_ascii() {
            return Ok(None);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Utc::now();
        if let Some(id) = self.cache.lock().expect("keystone cache").get(&key, now) {
            return Ok(Some(id));
        }
        let mut refreshed = false;
        loop {
            let service = self.service_token().await?;
            let res = self
                .http
                .get(format!("{}/auth/tokens?nocatalog", self.base))
                .header("X-Auth-Token", &service)
                .header("X-Subject-Token", token)
                .send()
                .await
                .map_err(|e| KeystoneError::Unavailable(without_url(e)))?;
            match res.status().as_u16() {
                200 => {
                    let bytes = read_capped(res).await?;
                    let body: TokenBody = serde_json::from_slice(&bytes)
                        .map_err(|e| KeystoneError::Protocol(format!("token body: {e}")))?;
                    let t = body.token;
                    let id = Identity {
                        user_name: t.user.name.unwrap_or_else(|| t.user.id.clone()),
                        user_id: t.user.id,
                        project_id: t.project.map(|p| p.id),
                        roles: t.roles.into_iter().filter_map(|r| r.name).collect(),
                        is_admin_project: t.is_admin_project.unwrap_or(false),
                        expires_at: t.expires_at,
                    };
                    if id.expires_at <= Utc::now() {
                        return Ok(None);
                    }
                    let mut until = id.expires_at;
                    if let Some(s) = self.cfg.cache_seconds {
                        let cap = now + chrono::Duration::seconds(s.min(i64::MAX as u64) as i64);
                        until = until.min(cap);
                    }
                    self.cache
                        .lock()
                        .expect("keystone cache")
                        .insert(key, id.clone(), until, now);
                    return Ok(Some(id));
                }
                // The subject token is not valid.
                404 => return Ok(None),
                // Our own token was refused: get a new one, once.
                401 | 403 if !refreshed => {
                    refreshed = true;
                    self.forget_service_token().await;
                }
                401 | 403 => {
                    return Err(KeystoneError::ServiceRejected(
                        "the service token was refused when checking a token".into(),
                    ));
                }
                other => {
                    return Err(KeystoneError::Unavailable(format!(
                        "checking a token: HTTP {other}"
                    )));
                }
            }
        }
    }

    /// How many validations are cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().expect("keystone cache").len()
    }
}

/// Something that yields this service's own token, for calling other
/// services in its name (e.g. fetching `deckhand+http` designs).
#[async_trait::async_trait]
pub trait ServiceToken: Send + Sync {
    /// A current token.
    async fn service_token(&self) -> Result<String, KeystoneError>;
}

#[async_trait::async_trait]
impl ServiceToken for Keystone {
    async fn service_token(&self) -> Result<String, KeystoneError> {
        Keystone::service_token(self).await
    }
}

#[async_trait::async_trait]
impl crate::design::AuthToken for Keystone {
    async fn token(&self) -> Result<String, crate::design::TokenError> {
        Keystone::service_token(self)
            .await
            .map_err(|e| crate::design::TokenError(e.to_string()))
    }
}

/// An error's text without the URL (which could carry a query).
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

/// The answer's body, at most [`MAX_ANSWER`] bytes.
async fn read_capped(mut res: reqwest::Response) -> Result<Vec<u8>, KeystoneError> {
    let mut out = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| KeystoneError::Unavailable(without_url(e)))?
    {
        if out.len() + chunk.len() > MAX_ANSWER {
            return Err(KeystoneError::Protocol(format!(
                "answer larger than {MAX_ANSWER} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Validated tokens by digest, each until a time; bounded.
struct Cache {
    max: usize,
    entries: HashMap<[u8; 32], (Identity, DateTime<Utc>)>,
}

impl Cache {
    fn new(max: usize) -> Cache {
        Cache {
            max,
            entries: HashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&mut self, key: &[u8; 32], now: DateTime<Utc>) -> Option<Identity> {
        match self.entries.get(key) {
            Some((id, until)) if *until > now => Some(id.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, key: [u8; 32], id: Identity, until: DateTime<Utc>, now: DateTime<Utc>) {
        if self.entries.len() >= self.max && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, u)| *u > now);
            while self.entries.len() >= self.max {
                let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(key, (id, until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> Identity {
        Identity {
            user_name: name.into(),
            user_id: name.into(),
            project_id: None,
            roles: vec!["admin".into()],
            is_admin_project: false,
            expires_at: Utc::now(),
        }
    }

    #[test]
    fn cache_is_bounded_and_expires() {
        let now = Utc::now();
        let later = |s| now + chrono::Duration::seconds(s);
        let mut c = Cache::new(2);
        c.insert([1; 32], id("a"), later(10), now);
        c.insert([2; 32], id("b"), later(20), now);
        assert_eq!(c.get(&[1; 32], now).unwrap().user_name, "a");
        // Full: the entry expiring soonest goes.
        c.insert([3; 32], id("c"), later(30), now);
        assert_eq!(c.len(), 2);
        assert!(c.get(&[1; 32], now).is_none());
        assert!(c.get(&[2; 32], now).is_some());
        // Past its time, an entry is gone.
        assert!(c.get(&[2; 32], later(21)).is_none());
        assert_eq!(c.len(), 1);
        // Expired entries are dropped first when full.
        c.insert([4; 32], id("d"), later(40), later(35));
        c.insert([5; 32], id("e"), later(50), later(35));
        assert!(c.get(&[4; 32], later(36)).is_some());
        assert!(c.get(&[5; 32], later(36)).is_some());
    }

    fn cfg(url: &str) -> KeystoneConfig {
        KeystoneConfig {
            auth_url: url.into(),
            username: "drydock".into(),
            password: Some("pw".into()),
            password_env: None,
            user_domain_name: None,
            user_domain_id: None,
            project_name: "service".into(),
            project_domain_name: None,
            project_domain_id: None,
            cache_entries: 10,
            cache_seconds: None,
            timeout_s: 1,
        }
    }

    #[test]
    fn configuration_is_checked() {
        assert_eq!(
            Keystone::new(cfg("http://ks:5000")).unwrap().base,
            "http://ks:5000/v3"
        );
        assert_eq!(
            Keystone::new(cfg("http://ks:5000/v3/")).unwrap().base,
            "http://ks:5000/v3"
        );
        assert!(Keystone::new(cfg("ftp://ks")).is_err());
        let mut c = cfg("http://ks");
        c.password = None;
        assert!(matches!(Keystone::new(c), Err(KeystoneError::Config(_))));
        assert!(!format!("{:?}", cfg("http://ks")).contains("pw\""));
    }

    #[tokio::test]
    async fn oversized_or_odd_tokens_are_invalid_without_asking() {
        // Nothing listens on port 9: asking would be an error, not `None`.
        let k = Keystone::new(cfg("http://127.0.0.1:9")).unwrap();
        assert_eq!(k.validate(&"a".repeat(MAX_TOKEN + 1)).await.unwrap(), None);
        assert_eq!(k.validate("tøken").await.unwrap(), None);
        assert!(matches!(
            k.validate("gAAAA-real-looking").await,
            Err(KeystoneError::Unavailable(_))
        ));
    }
}
