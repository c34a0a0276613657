//! The web dashboard at `/`: static HTML, CSS and JavaScript modules
//! embedded in the binary (no CDN, no build step; works offline). The page
//! signs in with an API token kept in the browser's session storage and
//! reads everything through the JSON API (`/api/v1.0/...`), so it can see
//! exactly what the token may see.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The embedded assets: (name, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/api.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/views.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
];

/// The page itself.
const INDEX: &str = include_str!("assets/index.html");

/// The page's security headers: nothing but this origin may be loaded or
/// framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `GET /` and `GET /ui/{asset}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/", get(index))
        .route("/ui/{asset}", get(asset))
}

fn secured(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// `GET /`: the dashboard page.
pub async fn index() -> Response {
    secured(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response())
}

/// `GET /ui/{asset}`: one embedded asset; 404 for any other name.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ty, body)) => secured(([(header::CONTENT_TYPE, *ty)], *body).into_response()),
        None => {
            crate::api::ApiError::NotFound(format!("no dashboard asset {name:?}")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        for (name, _, body) in ASSETS {
            assert!(!body.is_empty(), "{name}");
        }
        for needed in ["/ui/app.js", "/ui/style.css"] {
            assert!(INDEX.contains(needed), "{needed}");
        }
    }
}
