//! Airship's service references — `deckhand+http(s)://` designs and
//! `promenade+http(s)://` boot-action assets — are fetched with the service
//! token in `X-Auth-Token`, as Drydock fetches them with its Keystone
//! token; plain `http(s)://` references carry no token, and a fetch with the
//! token follows no redirect (the token goes nowhere the design did not
//! name).
//!
//! The Deckhand here is a fake (an axum route answering 401 without the
//! expected token, as Deckhand does); the token source is a stub. That
//! Keystone's service token reaches the engine is tested in `shipyard.rs`
//! (`the_service_token_hook_yields_drydocks_own_token`) and wired in
//! `server.rs`.

use drydock::design::{AuthToken, DesignLimits, DesignSource, DesignSources, TokenError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "gAAAAABk-service-token";

/// A token source handing out [`TOKEN`].
struct Stub;

#[async_trait::async_trait]
impl AuthToken for Stub {
    async fn token(&self) -> Result<String, TokenError> {
        Ok(TOKEN.to_owned())
    }
}

/// What the fake Deckhand saw: the `X-Auth-Token` of each request.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// A fake Deckhand on loopback: `/design` (401 without [`TOKEN`]) and
/// `/moved` (a redirect to `/design`).
async fn deckhand(seen: Seen) -> u16 {
    let text = std::fs::read_to_string(examples().join("site.yaml")).unwrap();
    let app = axum::Router::new()
        .route(
            "/design",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let token = headers
                    .get("x-auth-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                seen.lock().unwrap().push(token.clone());
                let text = text.clone();
                async move {
                    if token.as_deref() == Some(TOKEN) {
                        (axum::http::StatusCode::OK, text)
                    } else {
                        (axum::http::StatusCode::UNAUTHORIZED, String::new())
                    }
                }
            }),
        )
        .route(
            "/moved",
            axum::routing::get(|| async { axum::response::Redirect::temporary("/design") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("examples")
}

fn source(token: bool) -> DesignSource {
    let sources = DesignSources {
        schemes: vec!["http".into()],
        cidrs: vec!["127.0.0.1/32".into()],
        ..DesignSources::default()
    };
    let s = DesignSource::new(None, &sources, DesignLimits::default()).unwrap();
    if token {
        s.with_token(Arc::new(Stub))
    } else {
        s
    }
}

#[tokio::test]
async fn deckhand_and_promenade_references_carry_the_service_token() {
    let seen: Seen = Arc::default();
    let port = deckhand(seen.clone()).await;
    let designs = source(true);

    let design = designs
        .load(&format!("deckhand+http://127.0.0.1:{port}/design"))
        .await
        .expect("a deckhand+http design with the token");
    assert!(!design.model_nodes().is_empty());
    let bytes = designs
        .fetch_bytes(&format!("promenade+http://127.0.0.1:{port}/design"))
        .await
        .expect("a promenade+http asset with the token");
    assert!(!bytes.is_empty());
    // A plain reference carries no token (the fake answers 401).
    let plain = designs
        .fetch_bytes(&format!("http://127.0.0.1:{port}/design"))
        .await
        .unwrap_err();
    assert!(plain.to_string().contains("401"), "{plain}");
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(TOKEN.to_owned()), Some(TOKEN.to_owned()), None]
    );
}

#[tokio::test]
async fn a_fetch_with_the_token_follows_no_redirect() {
    let seen: Seen = Arc::default();
    let port = deckhand(seen.clone()).await;
    let err = source(true)
        .fetch_bytes(&format!("deckhand+http://127.0.0.1:{port}/moved"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redirect"), "{err}");
    assert!(seen.lock().unwrap().is_empty(), "the target was reached");
}

#[tokio::test]
async fn without_a_token_source_deckhand_is_read_without_a_token() {
    let seen: Seen = Arc::default();
    let port = deckhand(seen.clone()).await;
    let err = source(false)
        .fetch_bytes(&format!("deckhand+http://127.0.0.1:{port}/design"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(*seen.lock().unwrap(), [None]);
}
