//! Query-string and path parameters, parsed into 400s that say what is
//! wrong.

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use uuid::Uuid;

use super::error::ApiError;

/// The query string as a map (last value wins). Rejections are 400s in
/// Drydock's error shape.
#[derive(Debug, Clone, Default)]
pub struct QueryMap(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(m)| QueryMap(m))
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {}", e.body_text())))
    }
}

impl QueryMap {
    /// A boolean parameter: `true`/`false`/`1`/`0` (any case); `false` when
    /// absent.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.0.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(v) => Err(ApiError::BadRequest(format!(
                "query parameter `{name}` must be true, false, 1 or 0, not `{v}`"
            ))),
        }
    }

    /// A parsed parameter; `None` when absent.
    pub fn parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        self.0
            .get(name)
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "query parameter `{name}` must be {what}, not `{v}`"
                    ))
                })
            })
            .transpose()
    }
}

/// A task id from the path: 400 "task id `x` is not a UUID" when malformed.
pub fn task_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadRequest(format!("task id `{raw}` is not a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> QueryMap {
        QueryMap(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn flags() {
        assert!(!q(&[]).flag("x").unwrap());
        assert!(q(&[("x", "TRUE")]).flag("x").unwrap());
        assert!(q(&[("x", "1")]).flag("x").unwrap());
        assert!(!q(&[("x", "0")]).flag("x").unwrap());
        assert!(q(&[("x", "yes please")]).flag("x").is_err());
    }

    #[test]
    fn numbers_and_ids() {
        assert_eq!(
            q(&[("n", "5")]).parsed::<u32>("n", "a number").unwrap(),
            Some(5)
        );
        assert!(q(&[("n", "-5")]).parsed::<u32>("n", "a number").is_err());
        assert_eq!(q(&[]).parsed::<u32>("n", "a number").unwrap(), None);
        assert!(task_id("nope").is_err());
        assert!(task_id(&Uuid::new_v4().to_string()).is_ok());
    }
}
