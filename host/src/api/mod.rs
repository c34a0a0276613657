//! The REST API: Airship Drydock's `/api/v1.0`, so its clients (Shipyard,
//! `drydock_client`) keep working.
//!
//! This module owns HTTP only: routing, authentication, request ids, request
//! and response shapes. Work is done by the task engine
//! ([`crate::tasks::Engine`]) and data lives in the [`crate::store::Store`];
//! handlers never name SQL nor call drivers.
//!
//! # Layout
//!
//! - [`router`] and [`AppState`] (here), with the request-id middleware
//!   ([`context`]).
//! - [`auth`]: who the caller is (static tokens, Keystone tokens) and
//!   whether a Drydock [`policy`] rule allows the request; [`keystone`]
//!   checks tokens with Keystone; [`throttle`] slows down token guessing.
//! - [`error`]: [`ApiError`], Drydock's error body; the JSON body extractor.
//! - [`params`]: query-string and path parameter parsing.
//! - [`health`]: `/versions`, `/health`, `/health/extended`.
//! - [`tasks`] and [`task_tree`]: `/tasks...`; [`nodes`]: `/nodes...`,
//!   `/nodefilter`; [`design`]: `/validatedesign`.
//! - [`view`]: pure functions turning records into Drydock's JSON dicts.
//!
//! # Routes
//!
//! | route | policy rule (default roles) |
//! | --- | --- |
//! | `GET /versions`, `GET /api/v1.0/versions`, `GET /api/v1.0/health` | none |
//! | `GET /tasks`, `GET /tasks/{id}` | `physical_provisioner:read_task` (viewer) |
//! | `POST /tasks` | `create_task` and the action's rule, e.g. `deploy_nodes` (operator) |
//! | `POST /tasks/{id}/cancel` | `cancel_task` (operator) |
//! | `DELETE /tasks?days=N` | `delete_tasks` (admin) |
//! | `GET /tasks/{id}/builddata`, `GET /nodes/{name}/builddata` | `read_build_data` (viewer) |
//! | `GET /nodes`, `GET /nodes/{name}`, `POST /nodefilter` | `read_data` (viewer) |
//! | `POST /nodes`, `DELETE /nodes/{name}` | `manage_nodes` (operator) |
//! | `GET /health/extended` | `health_data` (viewer) |
//! | `POST /validatedesign` | `validate_site_design` (viewer) |
//! | `/bootactions...` ([`bootactions`]) | none: the node's `X-Bootaction-Key` |
//! | `/nodes/{name}/events`, `/nodes/{name}/sync`, `/nodes/{name}/maintenance`, `/fleet` ([`fleet`]) | `read_data` (viewer), `manage_nodes` (operator) |
//! | `/drivers...` ([`drivers`], merged by the server) | `drydock:read_drivers` (viewer), `drydock:manage_drivers` (admin) |

pub mod auth;
pub mod bootactions;
pub mod context;
pub mod design;
pub mod drivers;
pub mod error;
pub mod fleet;
pub mod health;
pub mod keystone;
pub mod nodes;
pub mod params;
pub mod policy;
pub mod task_tree;
pub mod tasks;
pub mod throttle;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use auth::{ApiToken, Auth, Role};
pub use error::ApiError;

use crate::tasks::Engine;

/// The API's path prefix.
pub const PREFIX: &str = "/api/v1.0";

/// The default body limit of `POST /tasks` and `POST /nodefilter`, in
/// bytes (larger ones get 413).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The default body limit of every other route (small JSON), in bytes.
pub const MAX_SMALL_BODY_BYTES: usize = 64 << 10;

/// Request body limits per route (`[http]` in the config).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// `POST /tasks` and `POST /nodefilter`, whose node filters may list
    /// many nodes.
    pub json: usize,
    /// Every other route of [`router`].
    pub small_json: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            json: MAX_BODY_BYTES,
            small_json: MAX_SMALL_BODY_BYTES,
        }
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The task engine (and, through it, the store and the drivers).
    pub engine: Engine,
    /// The API tokens.
    pub auth: Arc<Auth>,
}

/// `/api/v1.0` + `$path`, at compile time.
macro_rules! v1 {
    ($path:literal) => {
        concat!("/api/v1.0", $path)
    };
}

/// The API's router, with the request-id and logging middleware, the
/// default body limits, and Drydock-shaped 404 and 405 answers.
pub fn router(state: AppState) -> Router {
    router_with(state, BodyLimits::default())
}

/// [`router`] with the given body limits.
pub fn router_with(state: AppState, limits: BodyLimits) -> Router {
    let large = DefaultBodyLimit::max(limits.json);
    Router::new()
        .route("/versions", get(health::versions))
        .route(v1!("/versions"), get(health::versions))
        .route(v1!("/health"), get(health::health))
        .route(v1!("/health/extended"), get(health::extended))
        .route(
            v1!("/tasks"),
            get(tasks::list)
                .post(tasks::create)
                .delete(tasks::purge)
                .layer(large),
        )
        .route(v1!("/tasks/{id}"), get(tasks::get))
        .route(v1!("/tasks/{id}/builddata"), get(tasks::build_data))
        .route(v1!("/tasks/{id}/cancel"), post(tasks::cancel))
        .route(v1!("/nodes"), get(nodes::list).post(nodes::register))
        .route(v1!("/nodes/{name}"), get(nodes::get).delete(nodes::delete))
        .route(v1!("/nodes/{name}/builddata"), get(nodes::build_data))
        .route(v1!("/nodefilter"), post(nodes::filter).layer(large))
        .route(v1!("/validatedesign"), post(design::validate))
        .route(
            v1!("/bootactions/nodes/{hostname}/units"),
            get(bootactions::units),
        )
        .route(
            v1!("/bootactions/nodes/{hostname}/files"),
            get(bootactions::files),
        )
        .route(v1!("/bootactions/{action_id}"), post(bootactions::report))
        .merge(fleet::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.small_json))
        .layer(axum::middleware::from_fn(context::middleware))
        .with_state(state)
}
