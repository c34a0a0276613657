//! What operators see of a running Drydock beyond the JSON API: Prometheus
//! metrics ([`metrics`]), traces exported by OTLP ([`traces`]), the web
//! dashboard ([`dashboard`]) and per-request HTTP metrics and spans
//! ([`http`]).
//!
//! This module owns the metric names, the `/metrics` and dashboard routes
//! and the `[observe]` settings. Other components record through the
//! `metrics` facade (one line each, named in [`metrics`]'s docs); nothing
//! here calls back into the engine except to read its gauges at scrape
//! time.

pub mod dashboard;
pub mod http;
pub mod metrics;
pub mod traces;

use serde::Deserialize;
use std::net::SocketAddr;

/// `[observe]`: where metrics are served.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObserveSettings {
    /// A separate, unauthenticated listen address for `GET /metrics` (for a
    /// Prometheus on a private network). Unset: `/metrics` is served on the
    /// API listener and needs a token allowed
    /// `physical_provisioner:health_data` (viewer).
    pub metrics_listen: Option<SocketAddr>,
}

/// Adds this module's routes and the HTTP metrics layer to the API's
/// router `app`, installs the metrics recorder, and starts the separate
/// metrics listener when `[observe] metrics_listen` is set (stopped by
/// `stop`). Returns the router to serve and the metrics listener's address.
pub async fn serve(
    app: axum::Router,
    state: crate::api::AppState,
    cfg: &crate::config::Config,
    stop: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<(axum::Router, Option<SocketAddr>)> {
    use anyhow::Context;
    self::metrics::install();
    let mut metrics_addr = None;
    if let Some(listen) = cfg.observe.metrics_listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("observe.metrics_listen: listening on {listen}"))?;
        metrics_addr = Some(listener.local_addr()?);
        let (open, http, stop) = (
            self::metrics::open_router(state.clone()),
            cfg.http.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = crate::httpd::serve(listener, open, &http, stop).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
        tracing::info!(addr = ?metrics_addr, "metrics listener (no token) serving /metrics");
    }
    Ok((http::layer(app.merge(router(state))), metrics_addr))
}

/// The routes this module adds to the API router: `/metrics` (token) and
/// the dashboard at `/`.
pub fn router(state: crate::api::AppState) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(self::metrics::scrape_authorized),
        )
        .merge(dashboard::router())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn observe_settings_parse_and_refuse_unknown_keys() {
        let cfg: Config = toml::from_str("[observe]\nmetrics_listen = \"127.0.0.1:9100\"\n")
            .expect("a valid [observe]");
        assert_eq!(
            cfg.observe.metrics_listen,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert!(Config::default().observe.metrics_listen.is_none());
        assert!(toml::from_str::<Config>("[observe]\nmetrics_listne = \"x\"\n").is_err());
        assert!(toml::from_str::<Config>("[observe]\nmetrics_listen = \"nowhere\"\n").is_err());
    }
}
