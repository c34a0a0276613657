//! Authentication and authorization: static API tokens, each with a name and
//! a [`Role`].
//!
//! A token arrives as `Authorization: Bearer <token>` or, for
//! `drydock_client` compatibility, `X-Auth-Token: <token>`. Tokens are kept
//! only as SHA-256 digests and a presented token is compared against every
//! one in constant time. A missing or unknown token gives 401 (with
//! `WWW-Authenticate: Bearer`); a known token without the needed role, 403.
//!
//! Handlers ask for a role with the [`Authorized`] extractor
//! (`Authorized<Read>`, `Authorized<Operate>`, `Authorized<Administer>`),
//! which runs before the body is read: an unauthorized caller learns nothing
//! about the body's validity.
//!
//! Tokens never appear in `Debug` output nor in logs; their names do.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ApiError;
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

/// The set of known tokens.
pub struct Auth {
    entries: Vec<Entry>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (&e.name, e.role)))
            .finish()
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
    /// Keeps the tokens' digests. Empty tokens are ignored (with a warning):
    /// they could never be presented.
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
        Auth { entries }
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is known (then every protected route answers 401).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name and role of the token `presented`, if known. Every known
    /// digest is compared, in constant time each.
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
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// The token's role.
    pub role: Role,
    /// The end user the client acts for (`X-End-User`), if given.
    pub end_user: Option<String>,
}

impl Caller {
    /// Who to record as `created_by` / `terminated_by`: the token's name, or
    /// `<token name>/<end user>`.
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

/// Authenticates a request: its caller, or 401.
pub fn authenticate(auth: &Auth, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = presented(headers)?.ok_or_else(|| {
        ApiError::Unauthorized(
            "authentication required: send `Authorization: Bearer <token>` or `X-Auth-Token`"
                .into(),
        )
    })?;
    let (name, role) = auth
        .identify(&token)
        .ok_or_else(|| ApiError::Unauthorized("unknown API token".into()))?;
    context::set_caller(name);
    Ok(Caller {
        name: name.to_owned(),
        role,
        end_user: end_user(headers),
    })
}

/// A role a route needs, as a type (see [`Authorized`]).
pub trait Requirement {
    /// The least role allowed.
    const ROLE: Role;
}

/// Needs [`Role::Viewer`].
#[derive(Debug)]
pub struct Read;
/// Needs [`Role::Operator`].
#[derive(Debug)]
pub struct Operate;
/// Needs [`Role::Admin`].
#[derive(Debug)]
pub struct Administer;

impl Requirement for Read {
    const ROLE: Role = Role::Viewer;
}
impl Requirement for Operate {
    const ROLE: Role = Role::Operator;
}
impl Requirement for Administer {
    const ROLE: Role = Role::Admin;
}

/// Extracts an authenticated [`Caller`] holding at least `R::ROLE`: 401
/// without a known token, 403 naming the role needed otherwise.
#[derive(Debug)]
pub struct Authorized<R>(pub Caller, PhantomData<R>);

impl<R> std::ops::Deref for Authorized<R> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<R: Requirement> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(&state.auth, &parts.headers)?;
        if caller.role < R::ROLE {
            return Err(ApiError::Forbidden(format!(
                "this request needs the `{}` role; token `{}` has `{}`",
                R::ROLE,
                caller.name,
                caller.role
            )));
        }
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
    fn headers_are_read() {
        let a = auth();
        let mut h = HeaderMap::new();
        assert!(matches!(
            authenticate(&a, &h),
            Err(ApiError::Unauthorized(_))
        ));
        h.insert("x-auth-token", "tok-v".parse().unwrap());
        h.insert("x-end-user", "alice".parse().unwrap());
        let c = authenticate(&a, &h).unwrap();
        assert_eq!(c.actor(), "v/alice");
        h.insert("authorization", "bearer tok-a".parse().unwrap());
        assert_eq!(authenticate(&a, &h).unwrap().role, Role::Admin);
        h.insert("authorization", "Basic dTpw".parse().unwrap());
        assert!(matches!(
            authenticate(&a, &h),
            Err(ApiError::Unauthorized(_))
        ));
    }
}
