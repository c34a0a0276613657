//! `promenade`: Drydock's Kubernetes provisioner driver, over Airship
//! Promenade's node-labels API (WIT 0.2.0 `provisioner`).
//!
//! `relabel_node` sends `PUT <url>/node-labels/<node name>` with the node's
//! labels as a JSON object, as Drydock's Promenade driver does; Promenade
//! reads the node's current labels from Kubernetes and patches the
//! difference (adding, changing, and removing labels not listed, except
//! `kubernetes.io` ones), so the call is idempotent.
//!
//! # Settings
//!
//! | key | meaning |
//! | --- | --- |
//! | `url` | Promenade's API base, e.g. `http://promenade-api.ucp.svc:80/api/v1.0` (required) |
//! | `token_secret` | the secret holding the Keystone token sent as `X-Auth-Token` (default `promenade-token`; none sent when the secret is not granted) |
//! | `request_timeout_s` | per-request timeout (default 30) |
//!
//! The operator grants the driver Promenade's host (`outbound`).
//!
//! # Errors
//!
//! 400 → `invalid-input`; 401, 403 → `auth`; 404 (no such Kubernetes node)
//! → `failed`; 503 (Promenade's Kubernetes API error) and 409, 429 → `busy`
//! (retried); no answer → `unreachable` (retried).

use drydock_sdk::prelude::*;
use serde_json::{Map, Value};

/// The driver.
pub struct Promenade;

impl Driver for Promenade {
    const NAME: &'static str = "promenade";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const VENDOR: &'static str = "Drydock";
    const DESCRIPTION: &'static str =
        "Kubernetes node labels through Airship Promenade's node-labels API";
}

/// The URL of `node`'s labels under Promenade's API base `base`.
fn labels_url(base: &str, node: &str) -> Result<String> {
    let base = base.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(DriverError::InvalidInput(format!(
            "driver setting `url` = `{base}` is not an http(s) URL"
        )));
    }
    // Kubernetes node names are DNS labels: nothing to escape, and anything
    // else must not reach a URL path.
    let ok = !node.is_empty()
        && node.len() <= 253
        && node
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !ok {
        return Err(DriverError::InvalidInput(format!(
            "node name `{}` is not a Kubernetes node name",
            node.escape_debug()
        )));
    }
    Ok(format!("{base}/node-labels/{node}"))
}

/// The body Promenade expects: the labels as one JSON object.
fn body(labels: &[(String, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// The error for Promenade's answer `status` about `node`.
fn answer_error(host: &str, node: &str, status: u16, message: &str) -> Option<DriverError> {
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    match status {
        0..=399 => None,
        400 => Some(DriverError::InvalidInput(format!(
            "{host} refused the labels of {node} (HTTP 400){detail}"
        ))),
        404 => Some(DriverError::Failed(format!(
            "{host}: {node} is not a Kubernetes node (HTTP 404){detail}"
        ))),
        _ => http::status_error(host, status),
    }
}

impl ProvisionerDriver for Promenade {
    fn relabel_node(ctx: &Ctx, node: &Node, labels: &[(String, String)]) -> Result<()> {
        let base = ctx.config("url").ok_or_else(|| {
            DriverError::InvalidInput(
                "driver setting `url` (Promenade's API base) is not set".into(),
            )
        })?;
        let url = labels_url(&base, &node.name)?;
        let timeout = Duration::from_secs(ctx.config_or("request_timeout_s", 30u64)?);
        let secret = ctx
            .config("token_secret")
            .unwrap_or_else(|| "promenade-token".into());
        let mut request = http::Request::put(&url)
            .timeout(timeout)
            .json(&body(labels))?;
        if let Some(token) = ctx.secret(&secret) {
            request = request.header("X-Auth-Token", token);
        }
        let response = request.send()?;
        // Promenade's errors are Airship status documents with a `message`.
        let message = response
            .json::<Value>()
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if let Some(e) = answer_error(response.host(), &node.name, response.status, &message) {
            return Err(e);
        }
        ctx.status(
            format!(
                "{}: Kubernetes labels set through Promenade ({} label(s))",
                node.name,
                labels.len()
            ),
            false,
        );
        Ok(())
    }
}

drydock_sdk::export_driver!(Promenade: provisioner);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_bodies() {
        assert_eq!(
            labels_url("http://p:80/api/v1.0/", "cmp01").unwrap(),
            "http://p:80/api/v1.0/node-labels/cmp01"
        );
        assert!(labels_url("p:80", "cmp01").is_err());
        assert!(labels_url("http://p", "../x").is_err());
        assert!(labels_url("http://p", "CMP01").is_err());
        let b = body(&[("a".into(), "1".into()), ("b".into(), "".into())]);
        assert_eq!(b, serde_json::json!({"a": "1", "b": ""}));
        assert!(matches!(
            answer_error("p", "n", 503, ""),
            Some(DriverError::Busy(_))
        ));
        assert!(matches!(
            answer_error("p", "n", 404, "Node not found"),
            Some(DriverError::Failed(m)) if m.contains("Node not found")
        ));
        assert!(answer_error("p", "n", 200, "").is_none());
    }
}
