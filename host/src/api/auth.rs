//! Authentication and authorization.
//!
//! A caller is identified by a token in `X-Auth-Token` (Drydock's and
//! Shipyard's header) or `Authorization: Bearer <token>`:
//!
//! - a static API token from the configuration, each with a name and a
//!   [`Role`] (kept only as SHA-256 digests, compared in constant time);
//!   role `admin` carries the roles `admin`, `operator` and `viewer`,
//!   `operator` carries `operator` and `viewer`;
//! - otherwise, when `[keystone]` is configured, a Keystone token, checked
//!   with Keystone ([`super::keystone`]): the caller is the token's user,
//!   with its roles and project.
//!
//! Each route names a Drydock policy rule ([`super::policy`]), checked
//! against the caller's roles. No token, or one neither static nor valid in
//! Keystone, gives 401 (with `WWW-Authenticate: Bearer`); a caller the rule
//! refuses, 403; Keystone unreachable, 503. A peer presenting too many bad
//! tokens gets 429 for a while ([`super::throttle`]).
//!
//! Handlers ask for a rule with the [`Authorized`] extractor
//! (`Authorized<ReadTask>`, ...), which runs before the body is read: an
//! unauthorized caller learns nothing about the body's validity.
//!
//! Tokens never appear in `Debug` output nor in logs; their names do.

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::keystone::{Keystone, KeystoneError};
use super::policy::{Credentials, Policy};
use super::throttle::{Throttle, ThrottleConfig};
use super::{AppState, context};

/// What a token may do. Ordered: `Admin` ⊇ `Operator` ⊇ `Viewer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read tasks, nodes, build data and health; evaluate node filters.
    Viewer,
    /// Also create and cancel tasks, register and remove nodes.
    Operator,
    /// Also delete old tasks.
    Admin,
}

impl Role {
    /// The role's name (`viewer`, `operator`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The policy roles a static token of this role carries: `admin` also
    /// `operator` and `viewer`, `operator` also `viewer`.
    pub fn policy_roles(self) -> BTreeSet<String> {
        [Role::Viewer, Role::Operator, Role::Admin]
            .into_iter()
            .filter(|r| *r <= self)
            .map(|r| r.as_str().to_owned())
            .collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}` (expected viewer, operator or admin)"
            )),
        }
    }
}

/// One API token as configured.
#[derive(Clone)]
pub struct ApiToken {
    /// Who holds the token (shown in logs and in `created_by`).
    pub name: String,
    /// The secret token.
    pub token: String,
    /// What it may do.
    pub role: Role,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// A known token, by digest.
struct Entry {
    name: String,
    role: Role,
    digest: [u8; 32],
}

/// Who may call the API and what each caller may do: the static tokens,
/// Keystone (when configured), the policy rules and the bad-token throttle.
pub struct Auth {
    entries: Vec<Entry>,
    policy: Policy,
    keystone: Option<Arc<Keystone>>,
    throttle: Throttle,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field(
                "tokens",
                &self
                    .entries
                    .iter()
                    .map(|e| (&e.name, e.role))
                    .collect::<Vec<_>>(),
            )
            .field("keystone", &self.keystone)
            .finish_non_exhaustive()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests without an early exit.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Keeps the tokens' digests, with Drydock's default policy, no
    /// Keystone and the default throttle. Empty tokens are ignored (with a
    /// warning): they could never be presented.
    pub fn new(tokens: Vec<ApiToken>) -> Auth {
        let entries = tokens
            .into_iter()
            .filter(|t| {
                let empty = t.token.trim().is_empty();
                if empty {
                    tracing::warn!(token.name = %t.name, "ignoring an empty API token");
                }
                !empty
            })
            .map(|t| Entry {
                digest: digest(t.token.trim()),
                name: t.name,
                role: t.role,
            })
            .collect();
        Auth {
            entries,
            policy: Policy::default(),
            keystone: None,
            throttle: Throttle::new(ThrottleConfig::default()),
        }
    }

    /// Uses `policy` instead of the default rules.
    pub fn with_policy(mut self, policy: Policy) -> Auth {
        self.policy = policy;
        self
    }

    /// Also accepts Keystone tokens, checked with `keystone`.
    pub fn with_keystone(mut self, keystone: Option<Arc<Keystone>>) -> Auth {
        self.keystone = keystone;
        self
    }

    /// Uses `cfg` for the bad-token throttle.
    pub fn with_throttle(mut self, cfg: ThrottleConfig) -> Auth {
        self.throttle = Throttle::new(cfg);
        self
    }

    /// The Keystone client, when configured: its
    /// [`Keystone::service_token`] is this service's token for calling
    /// other services.
    pub fn keystone(&self) -> Option<Arc<Keystone>> {
        self.keystone.clone()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How many static tokens are known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no static token is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name and role of the static token `presented`, if known. Every
    /// known digest is compared, in constant time each.
    pub fn identify(&self, presented: &str) -> Option<(&str, Role)> {
        let d = digest(presented);
        let mut found = None;
        for e in &self.entries {
            if same(&e.digest, &d) && found.is_none() {
                found = Some((e.name.as_str(), e.role));
            }
        }
        found
    }

    /// Authenticates a request from `peer`: its caller, or 401 (no token, or
    /// a bad one), 429 (the peer presented too many bad tokens), 503
    /// (Keystone unavailable).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Caller, ApiError> {
        if let Some(wait) = peer.and_then(|p| self.throttle.blocked(p)) {
            return Err(ApiError::TooManyRequests {
                message: "too many requests with bad tokens from this address; retry later".into(),
                retry_after: wait,
            });
        }
        let token = presented(headers)?.ok_or_else(|| {
            ApiError::Unauthorized(
                "authentication required: send `X-Auth-Token: <token>` or \
                 `Authorization: Bearer <token>`"
                    .into(),
            )
        })?;
        let end_user = end_user(headers);
        if let Some((name, role)) = self.identify(&token) {
            context::set_caller(name);
            return Ok(Caller {
                name: name.to_owned(),
                end_user,
                creds: Credentials {
                    roles: role.policy_roles(),
                    user_id: Some(name.to_owned()),
                    ..Credentials::default()
                },
            });
        }
        let unknown = || {
            if let Some(p) = peer {
                self.throttle.failed(p);
            }
            ApiError::Unauthorized("unknown or expired token".into())
        };
        let Some(keystone) = &self.keystone else {
            return Err(unknown());
        };
        match keystone.validate(&token).await {
            Ok(Some(id)) => {
                context::set_caller(&id.user_name);
                Ok(Caller {
                    name: id.user_name,
                    end_user,
                    creds: Credentials {
                        roles: id.roles.into_iter().collect(),
                        user_id: Some(id.user_id),
                        project_id: id.project_id,
                        is_admin_project: id.is_admin_project,
                    },
                })
            }
            Ok(None) => Err(unknown()),
            Err(e) => {
                let req_id = context::request_id()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                tracing::warn!(req_id = %req_id, error = %e, "cannot check a token with keystone");
                Err(match e {
                    KeystoneError::Unavailable(_) => ApiError::Unavailable(
                        "the identity service (keystone) is unavailable; retry later".into(),
                    ),
                    _ => ApiError::Internal(e.to_string()),
                })
            }
        }
    }

    /// 403 unless `caller` passes rule `rule`.
    pub fn authorize(&self, caller: &Caller, rule: &str) -> Result<(), ApiError> {
        if self.policy.allows(rule, &caller.creds) {
            return Ok(());
        }
        tracing::info!(caller = %caller.name, rule, "forbidden by policy");
        Err(ApiError::Forbidden(format!(
            "policy `{rule}` does not allow `{}` (roles: {})",
            caller.name,
            caller
                .creds
                .roles
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The static token's name, or the Keystone user's name.
    pub name: String,
    /// The end user the client acts for (`X-End-User`), if given.
    pub end_user: Option<String>,
    /// Roles, user and project, as the policy sees them.
    pub creds: Credentials,
}

impl Caller {
    /// Who to record as `created_by` / `terminated_by`: the caller's name,
    /// or `<name>/<end user>`.
    pub fn actor(&self) -> String {
        match &self.end_user {
            Some(u) => format!("{}/{u}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The token a request presents: `Authorization: Bearer`, else
/// `X-Auth-Token`. `Err` when an `Authorization` header has another scheme.
fn presented(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or_default().trim();
        let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized(
                "the Authorization header must use the Bearer scheme".into(),
            ));
        }
        let token = token.trim();
        return Ok((!token.is_empty()).then(|| token.to_owned()));
    }
    Ok(headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned))
}

/// The longest `X-End-User` kept.
const MAX_END_USER: usize = 128;

fn end_user(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("x-end-user")?.to_str().ok()?.trim();
    if v.is_empty() {
        return None;
    }
    Some(v.chars().take(MAX_END_USER).collect())
}

/// A policy rule a route needs, as a type (see [`Authorized`]).
pub trait Rule {
    /// The rule's name.
    const NAME: &'static str;
}

macro_rules! rules {
    ($($(#[$doc:meta])* $ty:ident => $name:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;
        impl Rule for $ty {
            const NAME: &'static str = $name;
        }
    )*};
}

rules! {
    /// `physical_provisioner:read_task`.
    ReadTask => "physical_provisioner:read_task";
    /// `physical_provisioner:create_task` (the action's own rule is checked
    /// by the handler).
    CreateTask => "physical_provisioner:create_task";
    /// `physical_provisioner:cancel_task`.
    CancelTask => "physical_provisioner:cancel_task";
    /// `physical_provisioner:delete_tasks`.
    DeleteTasks => "physical_provisioner:delete_tasks";
    /// `physical_provisioner:read_data`.
    ReadData => "physical_provisioner:read_data";
    /// `physical_provisioner:read_build_data`.
    ReadBuildData => "physical_provisioner:read_build_data";
    /// `physical_provisioner:manage_nodes`.
    ManageNodes => "physical_provisioner:manage_nodes";
    /// `physical_provisioner:health_data`.
    HealthData => "physical_provisioner:health_data";
    /// `physical_provisioner:validate_site_design`.
    ValidateSiteDesign => "physical_provisioner:validate_site_design";
    /// `drydock:read_drivers`.
    ReadDrivers => "drydock:read_drivers";
    /// `drydock:manage_drivers`.
    ManageDrivers => "drydock:manage_drivers";
}

/// Reading nodes and data (`physical_provisioner:read_data`).
pub type Read = ReadData;
/// Registering and removing nodes (`physical_provisioner:manage_nodes`).
pub type Operate = ManageNodes;
/// Changing drivers (`drydock:manage_drivers`).
pub type Administer = ManageDrivers;

/// The peer's address, when the server records it.
pub fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Extracts an authenticated [`Caller`] that rule `R` allows: 401 without a
/// known token, 403 when the rule refuses.
#[derive(Debug)]
pub struct Authorized<R>(pub Caller, PhantomData<R>);

impl<R> std::ops::Deref for Authorized<R> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<R: Rule> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = state.auth.authenticate(&parts.headers, peer(parts)).await?;
        state.auth.authorize(&caller, R::NAME)?;
        Ok(Authorized(caller, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(vec![
            ApiToken {
                name: "v".into(),
                token: "tok-v".into(),
                role: Role::Viewer,
            },
            ApiToken {
                name: "a".into(),
                token: "tok-a".into(),
                role: Role::Admin,
            },
            ApiToken {
                name: "empty".into(),
                token: " ".into(),
                role: Role::Admin,
            },
        ])
    }

    #[test]
    fn identifies_known_tokens_only() {
        let a = auth();
        assert_eq!(a.len(), 2);
        assert_eq!(a.identify("tok-v"), Some(("v", Role::Viewer)));
        assert_eq!(a.identify("tok-a"), Some(("a", Role::Admin)));
        assert_eq!(a.identify("tok-x"), None);
        assert_eq!(a.identify(""), None);
    }

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn debug_hides_tokens() {
        let t = ApiToken {
            name: "n".into(),
            token: "s3cret-token".into(),
            role: Role::Viewer,
        };
        assert!(!format!("{t:?}").contains("s3cret"));
        let a = Auth::new(vec![t]);
        assert!(!format!("{a:?}").contains("s3cret"));
    }

    #[test]
    fn static_roles_are_cumulative() {
        assert_eq!(
            Role::Operator
                .policy_roles()
                .into_iter()
                .collect::<Vec<_>>(),
            ["operator", "viewer"]
        );
        assert_eq!(Role::Admin.policy_roles().len(), 3);
        assert_eq!(Role::Viewer.policy_roles().len(), 1);
    }

    #[tokio::test]
    async fn headers_are_read() {
        let a = auth();
        let mut h = HeaderMap::new();
        assert!(matches!(
            a.authenticate(&h, None).await,
            Err(ApiError::Unauthorized(_))
        ));
        h.insert("x-auth-token", "tok-v".parse().unwrap());
        h.insert("x-end-user", "alice".parse().unwrap());
        let c = a.authenticate(&h, None).await.unwrap();
        assert_eq!(c.actor(), "v/alice");
        assert!(a.authorize(&c, "physical_provisioner:read_task").is_ok());
        assert!(matches!(
            a.authorize(&c, "physical_provisioner:create_task"),
            Err(ApiError::Forbidden(_))
        ));
        h.insert("authorization", "bearer tok-a".parse().unwrap());
        let c = a.authenticate(&h, None).await.unwrap();
        assert!(a.authorize(&c, "physical_provisioner:delete_tasks").is_ok());
        h.insert("authorization", "Basic dTpw".parse().unwrap());
        assert!(matches!(
            a.authenticate(&h, None).await,
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn bad_tokens_from_one_peer_are_throttled() {
        let a = auth().with_throttle(ThrottleConfig {
            max_failures: 2,
            ..ThrottleConfig::default()
        });
        let peer: IpAddr = [192, 0, 2, 1].into();
        let mut h = HeaderMap::new();
        h.insert("x-auth-token", "guess".parse().unwrap());
        for _ in 0..2 {
            assert!(matches!(
                a.authenticate(&h, Some(peer)).await,
                Err(ApiError::Unauthorized(_))
            ));
        }
        // Now even a good token from that peer waits.
        h.insert("x-auth-token", "tok-v".parse().unwrap());
        assert!(matches!(
            a.authenticate(&h, Some(peer)).await,
            Err(ApiError::TooManyRequests { .. })
        ));
        assert!(
            a.authenticate(&h, Some([192, 0, 2, 2].into()))
                .await
                .is_ok()
        );
        // No token at all does not count.
        let other: IpAddr = [192, 0, 2, 3].into();
        for _ in 0..5 {
            let _ = a.authenticate(&HeaderMap::new(), Some(other)).await;
        }
        assert!(a.authenticate(&h, Some(other)).await.is_ok());
    }
}
