//! Fetches the host makes for a design (design references, boot-action
//! `location`s), from the sources the operator allows (`[design_sources]`).
//!
//! - the URL's scheme must be listed (`https` by default) and, when
//!   `hosts` is set, its host must be one of them;
//! - the name is resolved, every address it resolves to is checked, and
//!   the connection goes to a checked address (the resolver reqwest uses is
//!   this module's, so there is no window for DNS rebinding); an address
//!   is allowed when it is public or inside a listed CIDR — loopback,
//!   link-local, private, cloud metadata and other special ranges
//!   ([`crate::netaddr`]) are refused unless listed, and a cloud metadata
//!   address only when listed alone (`/32`, `/128`);
//! - every redirect is checked against the same rules, at most
//!   `max_redirects` of them;
//! - time (`timeout_secs`), size (`design_limits.max_bytes`) and
//!   concurrency (`max_concurrent`) are bounded;
//! - a reference may pin its content, `...#sha256=HEX`: other bytes are
//!   refused;
//! - errors say what was refused or failed, never what the server sent.

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

use crate::netaddr::{self, AddrClass};

/// `[design_sources]`: where the host may fetch designs and boot-action
/// assets from (`file:` references are governed by `design_dir` instead).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DesignSources {
    /// URL schemes allowed (`https`, `http`; `deckhand+http(s)` counts as
    /// `http(s)`). Default `["https"]`.
    pub schemes: Vec<String>,
    /// Host names allowed (`name` or `*.domain`); empty (the default):
    /// any name whose addresses are allowed.
    pub hosts: Vec<String>,
    /// Address ranges allowed besides public addresses, e.g.
    /// `["10.20.0.0/16", "127.0.0.1/32"]`. Default none: loopback,
    /// link-local, private and other special addresses are refused.
    pub cidrs: Vec<String>,
    /// Seconds one fetch may take, waiting for a slot included (default 30).
    pub timeout_secs: u64,
    /// Fetches in flight at once on this instance (default 8).
    pub max_concurrent: usize,
    /// Redirects followed per fetch, each checked like the first URL
    /// (default 5).
    pub max_redirects: usize,
}

impl Default for DesignSources {
    fn default() -> Self {
        Self {
            schemes: vec!["https".into()],
            hosts: Vec::new(),
            cidrs: Vec::new(),
            timeout_secs: 30,
            max_concurrent: 8,
            max_redirects: 5,
        }
    }
}

/// Why a fetch gave nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The sources policy refuses the URL, a redirect or an address.
    #[error("refused: {0}")]
    Refused(String),
    /// The fetch itself failed (network, status, size, time, pin).
    #[error("{0}")]
    Failed(String),
}

/// A refusal by the policy, carried through reqwest's errors.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// The allow-list, checked.
#[derive(Debug)]
struct Policy {
    schemes: Vec<String>,
    hosts: Vec<String>,
    cidrs: Vec<IpNet>,
}

impl Policy {
    fn new(c: &DesignSources) -> Result<Policy, String> {
        let cidrs = c
            .cidrs
            .iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("design_sources.cidrs: `{s}` is not an address or CIDR"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            schemes: c
                .schemes
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
            hosts: c
                .hosts
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
            cidrs,
        })
    }

    fn check_url(&self, url: &Url) -> Result<(), String> {
        if !self.schemes.iter().any(|s| s == url.scheme()) {
            return Err(format!(
                "scheme `{}` is not in design_sources.schemes ({})",
                url.scheme(),
                self.schemes.join(", ")
            ));
        }
        // The URL parser normalises hosts: IPv4 in any notation becomes
        // dotted decimal, IPv6 is bracketed.
        let Some(host) = url.host_str() else {
            return Err("the URL has no host".into());
        };
        let name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if !self.hosts.is_empty() && !self.hosts.iter().any(|h| host_matches(h, &name)) {
            return Err(format!("host `{name}` is not in design_sources.hosts"));
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => self.check_ip(ip),
            Err(_) => Ok(()),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        let canonical = netaddr::canonical(ip);
        let class = netaddr::classify(ip);
        if let Some(net) = self.cidrs.iter().find(|n| n.contains(&canonical)) {
            if class == AddrClass::Metadata && net.prefix_len() != net.max_prefix_len() {
                return Err(format!(
                    "address {ip} is a cloud metadata address; it is allowed only when listed alone in design_sources.cidrs (not through {net})"
                ));
            }
            return Ok(());
        }
        if class == AddrClass::Public {
            return Ok(());
        }
        Err(format!(
            "address {ip} is {class}; list it in design_sources.cidrs to allow it"
        ))
    }
}

fn host_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(domain) => name
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
        None => pattern == name,
    }
}

/// Resolves names for reqwest, refusing any name one of whose addresses is
/// not allowed. reqwest connects only to the addresses returned here.
struct CheckedResolver(Arc<Policy>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(Box::new(Refusal(format!("`{host}` resolves to no address"))) as _);
            }
            for a in &addrs {
                policy
                    .check_ip(a.ip())
                    .map_err(|m| Refusal(format!("`{host}`: {m}")))?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The host's HTTP client for design sources.
#[derive(Debug)]
pub(crate) struct Fetcher {
    policy: Arc<Policy>,
    client: reqwest::Client,
    /// The client for fetches carrying a token: it follows no redirect, so
    /// the token never goes anywhere but the URL the operator's design
    /// named.
    with_token: reqwest::Client,
    slots: Semaphore,
    timeout: Duration,
    max_bytes: usize,
}

/// Where references to Airship services (`deckhand+http(s)://` designs,
/// `promenade+http(s)://` boot-action assets) get the token they are
/// fetched with (`X-Auth-Token`, as Drydock sends its Keystone service
/// token).
#[async_trait::async_trait]
pub trait AuthToken: Send + Sync {
    /// A current token.
    async fn token(&self) -> Result<String, TokenError>;
}

/// Why no token could be had (the text names the cause, never a secret).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

impl Fetcher {
    /// A client obeying `sources`, reading at most `max_bytes` per fetch.
    pub(crate) fn new(sources: &DesignSources, max_bytes: usize) -> Result<Fetcher, String> {
        let policy = Arc::new(Policy::new(sources)?);
        let redirects = policy.clone();
        let max_redirects = sources.max_redirects;
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max_redirects {
                    return attempt.error(Refusal(format!(
                        "more than {max_redirects} redirects (design_sources.max_redirects)"
                    )));
                }
                match redirects.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(m) => {
                        let m = format!("redirect to {}: {m}", attempt.url());
                        attempt.error(Refusal(m))
                    }
                }
            }))
            .connect_timeout(Duration::from_secs(sources.timeout_secs.clamp(1, 10)))
            .build()
            .map_err(|e| format!("design sources client: {e}"))?;
        let with_token = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(sources.timeout_secs.clamp(1, 10)))
            .build()
            .map_err(|e| format!("design sources client: {e}"))?;
        Ok(Fetcher {
            policy,
            client,
            with_token,
            slots: Semaphore::new(sources.max_concurrent.max(1)),
            timeout: Duration::from_secs(sources.timeout_secs.max(1)),
            max_bytes,
        })
    }

    /// GETs `url` if the policy allows it.
    pub(crate) async fn get(&self, url: &str, token: Option<&str>) -> Result<Vec<u8>, FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::Refused(format!("not a URL: {e}")))?;
        self.policy
            .check_url(&parsed)
            .map_err(FetchError::Refused)?;
        let secs = self.timeout.as_secs();
        tokio::time::timeout(self.timeout, self.get_checked(parsed, token))
            .await
            .map_err(|_| {
                FetchError::Failed(format!(
                    "no answer within {secs} s (design_sources.timeout_secs)"
                ))
            })?
    }

    async fn get_checked(&self, url: Url, token: Option<&str>) -> Result<Vec<u8>, FetchError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| FetchError::Failed("the fetcher is shutting down".into()))?;
        let request = match token {
            Some(t) => self.with_token.get(url).header("X-Auth-Token", t),
            None => self.client.get(url),
        };
        let mut resp = request.send().await.map_err(describe)?;
        if token.is_some() && resp.status().is_redirection() {
            return Err(FetchError::Refused(format!(
                "the server answered HTTP {} (a redirect): a fetch carrying the service \
                 token follows no redirect",
                resp.status().as_u16()
            )));
        }
        if !resp.status().is_success() {
            return Err(FetchError::Failed(format!(
                "the server answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let too_big = || {
            FetchError::Failed(format!(
                "the content is larger than {} bytes (design_limits.max_bytes)",
                self.max_bytes
            ))
        };
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A reqwest error as a message: a refusal when the policy refused, else
/// the causes (which never include the server's content).
fn describe(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut causes = Vec::new();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refusal>() {
            return FetchError::Refused(r.0.clone());
        }
        causes.push(s.to_string());
        source = s.source();
    }
    causes.dedup();
    FetchError::Failed(format!("fetch failed: {}", causes.join(": ")))
}

/// A reference without its content pin, and the pin (`#sha256=HEX`).
pub(crate) fn split_pin(reference: &str) -> Result<(&str, Option<[u8; 32]>), String> {
    let Some((base, fragment)) = reference.rsplit_once('#') else {
        return Ok((reference, None));
    };
    let Some(hex_digest) = fragment.strip_prefix("sha256=") else {
        return Ok((reference, None));
    };
    let mut pin = [0u8; 32];
    hex::decode_to_slice(hex_digest.trim(), &mut pin)
        .map_err(|_| "the pin `#sha256=` needs 64 hexadecimal digits".to_owned())?;
    Ok((base, Some(pin)))
}

/// Checks `bytes` against `pin` (without saying what they were).
pub(crate) fn check_pin(bytes: &[u8], pin: Option<[u8; 32]>) -> Result<(), String> {
    match pin {
        Some(p) if <[u8; 32]>::from(Sha256::digest(bytes)) != p => Err(format!(
            "the content does not match its pin sha256={}",
            hex::encode(p)
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cidrs: &[&str], hosts: &[&str]) -> Policy {
        Policy::new(&DesignSources {
            schemes: vec!["https".into(), "http".into()],
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
            ..DesignSources::default()
        })
        .unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn special_addresses_need_listing_and_metadata_needs_listing_alone() {
        let p = policy(&[], &[]);
        for bad in [
            "http://127.0.0.1/x",
            "http://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/x",
            "http://0.0.0.0/x",
        ] {
            assert!(p.check_url(&url(bad)).is_err(), "{bad}");
        }
        assert!(p.check_url(&url("https://8.8.8.8/x")).is_ok());
        let wide = policy(&["127.0.0.0/8", "169.254.0.0/16"], &[]);
        assert!(wide.check_url(&url("http://[::ffff:127.0.0.1]/x")).is_ok());
        let err = wide.check_url(&url("http://169.254.169.254/")).unwrap_err();
        assert!(err.contains("listed alone"), "{err}");
        let exact = policy(&["169.254.169.254"], &[]);
        assert!(exact.check_url(&url("http://169.254.169.254/")).is_ok());
        let v6 = policy(&["::/0"], &[]);
        assert!(v6.check_url(&url("http://[::ffff:127.0.0.1]/x")).is_err());
    }

    #[test]
    fn schemes_and_hosts_are_allow_lists() {
        let p = Policy::new(&DesignSources {
            hosts: vec!["designs.example.com".into(), "*.example.org".into()],
            ..DesignSources::default()
        })
        .unwrap();
        assert!(p.check_url(&url("http://designs.example.com/x")).is_err());
        assert!(p.check_url(&url("https://designs.example.com/x")).is_ok());
        assert!(p.check_url(&url("https://a.example.org/x")).is_ok());
        assert!(p.check_url(&url("https://example.org/x")).is_err());
        assert!(p.check_url(&url("https://evilexample.org/x")).is_err());
        assert!(p.check_url(&url("https://other.example.com/x")).is_err());
        assert!(
            Policy::new(&DesignSources {
                cidrs: vec!["nonsense".into()],
                ..DesignSources::default()
            })
            .is_err()
        );
    }

    #[test]
    fn pins() {
        let digest = hex::encode(Sha256::digest(b"abc"));
        let r = format!("https://x/site.yaml#sha256={digest}");
        let (base, pin) = split_pin(&r).unwrap();
        assert_eq!(base, "https://x/site.yaml");
        assert!(check_pin(b"abc", pin).is_ok());
        let err = check_pin(b"abd", pin).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        assert!(split_pin("https://x/#sha256=zz").is_err());
        assert_eq!(
            split_pin("https://x/#top").unwrap(),
            ("https://x/#top", None)
        );
    }
}
