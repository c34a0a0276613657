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
//! - [`view`]: pure conversions from records to the wire model
//!   ([`crate::wire`]).
//! - [`drivers`]: `/drivers...`, the driver lifecycle.
//! - [`fleet`]: `/nodes/{name}/events`, `/nodes/{name}/sync`,
//!   `/nodes/{name}/maintenance`, `/fleet`, `/fleet/bmcs`: fleet truth.
//! - [`openapi`]: the OpenAPI 3.1 document (`/api/v1.0/openapi.json`) and
//!   the docs page (`/api/v1.0/docs`).
//!
//! Every route is registered in [`routes`], with its documentation: the
//! OpenAPI document is generated from the same handlers and wire types, so
//! a route cannot be served undocumented.
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
//! | `/drivers...` ([`drivers`]) | `drydock:read_drivers` (viewer), `drydock:manage_drivers` (admin) |
//! | `GET /openapi.json`, `GET /docs` ([`openapi`]) | none |
//! | `/nodes/{name}/events`, `/nodes/{name}/sync`, `/nodes/{name}/maintenance`, `/fleet`, `/fleet/bmcs` ([`fleet`]) | `read_data` (viewer), `manage_nodes` (operator) |

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
pub mod openapi;
pub mod params;
pub mod policy;
pub mod task_cache;
pub mod task_tree;
pub mod task_versions;
pub mod tasks;
pub mod throttle;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use auth::{ApiToken, Auth, Role};
pub use error::ApiError;

use crate::lifecycle::Lifecycle;
use crate::store::{READ_ACQUIRE_TIMEOUT, READ_CONNECTIONS, Store};
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
    /// Every other route of [`router`] (but `POST /drivers`, whose limit is
    /// [`drivers::MAX_DRIVER_BYTES`]).
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
    /// The task engine: submitting and cancelling tasks, designs, drivers.
    pub engine: Engine,
    /// The store (the engine's): what handlers write (and read before
    /// writing) directly.
    pub store: Store,
    /// The same database through the API's own small read pool
    /// ([`Store::reader`]): `GET` handlers read here, and answer 503 with
    /// `Retry-After` at once when it is saturated.
    pub reads: Store,
    /// The API tokens.
    pub auth: Arc<Auth>,
    /// The driver lifecycle (`/drivers`); without one those routes answer
    /// 503.
    pub lifecycle: Option<Arc<Lifecycle>>,
    /// Finished tasks' dicts, kept as bytes (`GET /tasks/{id}`).
    pub finished_tasks: Arc<task_cache::FinishedTasks>,
    /// `GET /tasks/{id}`'s version reads, gathered (on `reads`).
    pub task_versions: task_versions::TaskVersions,
}

impl AppState {
    /// The state of an API over `engine` (and its store), with `auth`'s
    /// tokens and no driver lifecycle.
    pub fn new(engine: Engine, auth: Arc<Auth>) -> Self {
        let reads = engine
            .store()
            .reader(READ_CONNECTIONS, READ_ACQUIRE_TIMEOUT);
        Self {
            store: engine.store().clone(),
            task_versions: task_versions::TaskVersions::new(reads.clone()),
            reads,
            engine,
            auth,
            lifecycle: None,
            finished_tasks: Arc::default(),
        }
    }

    /// The same state with a driver lifecycle for `/drivers`.
    pub fn with_lifecycle(mut self, lifecycle: Arc<Lifecycle>) -> Self {
        self.lifecycle = Some(lifecycle);
        self
    }

    /// The driver lifecycle, or 503.
    pub fn lifecycle(&self) -> Result<&Arc<Lifecycle>, ApiError> {
        self.lifecycle.as_ref().ok_or_else(|| {
            ApiError::Unavailable("driver management is not enabled on this instance".into())
        })
    }
}

/// Every route of the API with its documentation: the one place routes
/// are registered. Each `routes!` groups the handlers of one path. Routes
/// taking large bodies carry their own body limit; [`router_with`] sets the
/// small one on the rest.
pub fn routes(limits: BodyLimits) -> OpenApiRouter<AppState> {
    let large = DefaultBodyLimit::max(limits.json);
    let driver_file = DefaultBodyLimit::max(drivers::MAX_DRIVER_BYTES);
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::versions))
        .routes(routes!(health::versions_v1))
        .routes(routes!(health::health))
        .routes(routes!(health::extended))
        .routes(routes!(tasks::list, tasks::create, tasks::purge).layer(large))
        .routes(routes!(tasks::get))
        .routes(routes!(tasks::build_data))
        .routes(routes!(tasks::cancel))
        .routes(routes!(nodes::list, nodes::register))
        .routes(routes!(nodes::get, nodes::delete))
        .routes(routes!(nodes::build_data))
        .routes(routes!(nodes::filter).layer(large))
        .routes(routes!(design::validate))
        .routes(routes!(bootactions::units))
        .routes(routes!(bootactions::files))
        .routes(routes!(bootactions::report))
        .routes(routes!(drivers::list, drivers::install).layer(driver_file))
        .routes(routes!(drivers::show))
        .routes(routes!(drivers::activate))
        .routes(routes!(drivers::rollback))
        .routes(routes!(drivers::remove))
        .routes(routes!(fleet::events))
        .routes(routes!(fleet::sync_state))
        .routes(routes!(fleet::set_maintenance, fleet::clear_maintenance))
        .routes(routes!(fleet::fleet))
        .routes(routes!(fleet::bmcs))
        .routes(routes!(openapi::document))
}

/// The API's router, with the request-id and logging middleware, the
/// default body limits, and Drydock-shaped 404 and 405 answers.
pub fn router(state: AppState) -> Router {
    router_with(state, BodyLimits::default())
}

/// [`router`] with the given body limits.
pub fn router_with(state: AppState, limits: BodyLimits) -> Router {
    let (api, doc) = routes(limits).split_for_parts();
    let api = api
        .layer(openapi::serve(doc))
        .layer(DefaultBodyLimit::max(limits.small_json))
        .with_state(state);
    Router::new()
        .merge(api)
        .merge(openapi::docs_page())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(context::middleware))
}

/// The OpenAPI document of the API, as served.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(routes(BodyLimits::default()).split_for_parts().1)
}
