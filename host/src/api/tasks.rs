//! `/tasks`: list, create, purge; `/tasks/{id}` with Drydock's `layers`,
//! `subtaskerrors` and `builddata` parameters; `/tasks/{id}/builddata`;
//! `/tasks/{id}/cancel`.

use std::collections::HashMap;

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::auth::{
    Authorized, CancelTask, CreateTask as CreateRule, DeleteTasks, ReadBuildData, ReadTask,
};
use super::error::{ApiError, JsonBody};
use super::params::{QueryMap, task_id};
use super::task_tree::{self, Loaded};
use super::{AppState, policy, view};
use crate::store::{MessageRecord, Store, TaskFilter, TaskRecord, TaskStatus};
use crate::tasks::TaskRequest;
use crate::wire::{
    BuildData, CreateTask, PurgeResult, SubtaskError, TaskDict, TaskLayers, TaskView,
};

/// The most tasks listed (the newest), also when `limit` is not given:
/// Drydock lists every task, and Shipyard looks subtasks up in that list.
pub const MAX_LIMIT: i64 = 10_000;

/// `GET /tasks`: every task, subtasks included, newest first, as Drydock
/// lists them (`?limit=`, `?offset=`, `?status=` narrow the list).
#[utoipa::path(get, path = "/api/v1.0/tasks", tag = "tasks",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 10000,
            description = "At most this many tasks (the newest); default and most 10000"),
        ("offset" = Option<u32>, Query, description = "Skip this many"),
        ("status" = Option<String>, Query,
            description = "Only tasks with this status (requested, queued, running, complete, terminated)"),
        ("top_level" = Option<bool>, Query, description = "Leave subtasks out"),
    ),
    responses((status = 200, description = "Task dicts, newest first", body = Vec<TaskDict>)))]
pub async fn list(
    _caller: Authorized<ReadTask>,
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<Vec<TaskDict>>, ApiError> {
    let what = "an integer from 1 to 10000";
    let limit = q.parsed::<i64>("limit", what)?.unwrap_or(MAX_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "query parameter `limit` must be {what}, not `{limit}`"
        )));
    }
    let offset = q
        .parsed::<u32>("offset", "a non-negative integer")?
        .unwrap_or(0);
    let status = q.parsed::<TaskStatus>(
        "status",
        "one of requested, queued, running, complete, terminated",
    )?;
    // Drydock lists every task; `top_level=true` (ours) leaves subtasks out.
    let top_level = q
        .parsed::<bool>("top_level", "true or false")?
        .unwrap_or(false);
    let store = &state.reads;
    let tasks = store
        .list_tasks(&TaskFilter {
            parent: if top_level { Some(None) } else { None },
            status,
            limit,
            offset: i64::from(offset),
        })
        .await?;
    let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
    let mut messages: HashMap<Uuid, Vec<MessageRecord>> = HashMap::new();
    for m in store.messages_for_tasks(&ids).await? {
        messages.entry(m.task_id).or_default().push(m);
    }
    // Every task listed: children are found in the list itself (oldest
    // first, as the store orders them); a partial list asks the store.
    let complete = status.is_none() && offset == 0 && (tasks.len() as i64) < limit;
    let mut children: HashMap<Uuid, Vec<&TaskRecord>> = HashMap::new();
    if complete {
        for t in &tasks {
            if let Some(p) = t.parent_id {
                children.entry(p).or_default().push(t);
            }
        }
        for c in children.values_mut() {
            c.sort_by_key(|t| (t.created, t.id));
        }
    }
    let base = state.engine.public_url();
    let mut out = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let subtasks: Vec<Uuid> = if complete {
            children
                .get(&t.id)
                .map(|c| c.iter().map(|t| t.id).collect())
                .unwrap_or_default()
        } else {
            store.subtask_ids(t.id).await?
        };
        let msgs = messages.get(&t.id).map(Vec::as_slice).unwrap_or_default();
        out.push(view::task_view(t, &subtasks, msgs, base));
    }
    Ok(Json(out))
}

/// `POST /tasks`: queues a task; 201 with `Location` and the task dict.
/// Beside `physical_provisioner:create_task`, the caller needs the action's
/// own rule (`physical_provisioner:deploy_nodes`, ...), or
/// `physical_provisioner:driver_action` for a driver action.
#[utoipa::path(post, path = "/api/v1.0/tasks", tag = "tasks", request_body = CreateTask,
    responses((status = 201, description = "Queued", body = TaskDict,
        headers(("Location" = String, description = "The task's URL path")))))]
pub async fn create(
    caller: Authorized<CreateRule>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateTask>,
) -> Result<Response, ApiError> {
    let rule = policy::action_rule(&body.action).unwrap_or("physical_provisioner:driver_action");
    state.auth.authorize(&caller, rule)?;
    let record = state
        .engine
        .submit(TaskRequest {
            action: body.action,
            design_ref: body.design_ref,
            node_filter: body.node_filter,
            params: body.params,
            created_by: Some(caller.actor()),
        })
        .await?;
    let location = view::task_href(record.id);
    let body = view::task_view(&record, &[], &[], state.engine.public_url());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// The retention `DELETE /tasks` uses without a usable `days`, as Drydock.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// `DELETE /tasks?days=N`: deletes finished top-level tasks (with their
/// subtasks and messages) last updated more than N days ago; without `days`,
/// or with one that is not a whole number, 90 (Drydock's default, also
/// what `drydock_client.delete_tasks()` sends as `days=None`).
#[utoipa::path(delete, path = "/api/v1.0/tasks", tag = "tasks",
    params(("days" = Option<String>, Query,
        description = "Retention in days (not a whole number: 90)")),
    responses((status = 200, description = "Purged", body = PurgeResult)))]
pub async fn purge(
    _caller: Authorized<DeleteTasks>,
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<PurgeResult>, ApiError> {
    let days =
        q.0.get("days")
            .and_then(|d| d.trim().parse::<u32>().ok())
            .unwrap_or(DEFAULT_RETENTION_DAYS);
    let deleted = state.store.delete_tasks_older_than(days).await?;
    Ok(Json(PurgeResult {
        message: "Tables purged successfully.".into(),
        days,
        deleted,
    }))
}

/// A task, or 404.
async fn find(store: &Store, id: Uuid) -> Result<TaskRecord, ApiError> {
    store
        .get_task(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("task {id} does not exist")))
}

/// `layers`: `None` when not asked (or 0, Drydock's default), `Some(None)`
/// for -1 (all), `Some(Some(n))` for n ≥ 1.
fn layers(q: &QueryMap) -> Result<Option<Option<usize>>, ApiError> {
    let what = "a positive integer, or -1 for all layers";
    match q.parsed::<i64>("layers", what)? {
        None | Some(0) => Ok(None),
        Some(-1) => Ok(Some(None)),
        Some(n) if n > 0 => Ok(Some(Some(usize::try_from(n).unwrap_or(usize::MAX)))),
        Some(n) => Err(ApiError::BadRequest(format!(
            "query parameter `layers` must be {what}, not `{n}`"
        ))),
    }
}

/// A task dict, with its `build_data` when asked.
async fn dict(
    store: &Store,
    t: &Loaded,
    build_data: bool,
    base: Option<&str>,
) -> Result<TaskDict, ApiError> {
    let mut d = t.view(base);
    if build_data {
        let items = store.build_data_for_task(t.record.id).await?;
        d.build_data = Some(items.iter().map(view::build_data_view).collect());
    }
    Ok(d)
}

/// `GET /tasks/{id}`: the task dict; with `layers=N` a dict of the task and
/// its descendants N layers deep keyed by id (plus `init_task_id`); with
/// `subtaskerrors=true`, `subtask_errors` maps each descendant that reported
/// errors to its result; with `builddata=true` each task dict gets its
/// `build_data`.
#[utoipa::path(get, path = "/api/v1.0/tasks/{id}", tag = "tasks",
    params(
        ("id" = String, Path, description = "Task id (a UUID)"),
        ("layers" = Option<i64>, Query,
            description = "Also the descendants, this many layers deep (-1: all); answers a map by id"),
        ("subtaskerrors" = Option<bool>, Query,
            description = "Add `subtask_errors`: the descendants that reported errors"),
        ("builddata" = Option<bool>, Query, description = "Add each task's `build_data`"),
    ),
    responses((status = 200, description = "The task, or with `layers` the layers map",
        body = TaskView)))]
pub async fn get(
    _caller: Authorized<ReadTask>,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    q: QueryMap,
) -> Result<Response, ApiError> {
    let id = task_id(&raw)?;
    let build_data = q.flag("builddata")?;
    let subtask_errors = q.flag("subtaskerrors")?;
    let layers = layers(&q)?;
    let store = &state.reads;
    let base = state.engine.public_url();
    if layers.is_none() && !subtask_errors && !build_data {
        return plain(&state, id).await;
    }
    let root = find(store, id).await?;
    let shown = layers.unwrap_or(Some(1));
    let walk = if subtask_errors { None } else { shown };
    let tree = task_tree::load(store, root, walk).await?;

    let errors = if subtask_errors {
        let mut errors = BTreeMap::new();
        for t in tree.iter().skip(1).flatten() {
            if view::has_errors(&t.messages) {
                errors.insert(
                    t.record.id.to_string(),
                    SubtaskError {
                        result: view::result_view(&t.record, &t.messages, base),
                        task_id: t.record.id.to_string(),
                    },
                );
            }
        }
        Some(errors)
    } else {
        None
    };
    if layers.is_none() {
        let mut d = dict(store, &tree[0][0], build_data, base).await?;
        d.subtask_errors = errors;
        return Ok(Json(TaskView::Task(Box::new(d))).into_response());
    }
    let mut tasks = BTreeMap::new();
    for (depth, layer) in tree.iter().enumerate() {
        if shown.is_some_and(|n| depth >= n) {
            break;
        }
        for t in layer {
            tasks.insert(
                t.record.id.to_string(),
                dict(store, t, build_data, base).await?,
            );
        }
    }
    Ok(Json(TaskView::Layers(TaskLayers {
        init_task_id: id.to_string(),
        tasks,
        subtask_errors: errors,
    }))
    .into_response())
}

/// `GET /tasks/{id}` without parameters (what Shipyard polls): a finished
/// task from the cache while its version holds (one version read, gathered
/// with the others arriving at once), else built from the store (and
/// cached if finished).
async fn plain(state: &AppState, id: Uuid) -> Result<Response, ApiError> {
    let version = state
        .task_versions
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("task {id} does not exist")))?;
    let bytes = match state.finished_tasks.get(id, &version) {
        Some(bytes) => bytes,
        None => {
            // Built after `version` was read: if the task changed in
            // between, the next read sees a newer version and rebuilds.
            let root = find(&state.reads, id).await?;
            let tree = task_tree::load(&state.reads, root, Some(1)).await?;
            let d = tree[0][0].view(state.engine.public_url());
            let bytes = axum::body::Bytes::from(
                serde_json::to_vec(&TaskView::Task(Box::new(d)))
                    .map_err(|e| ApiError::Internal(format!("serialising a task: {e}")))?,
            );
            state.finished_tasks.put(id, version, bytes.clone());
            bytes
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// `GET /tasks/{id}/builddata`: build data collected by the task and its
/// subtasks, oldest first; 404 if the task does not exist or has none (as
/// Drydock).
#[utoipa::path(get, path = "/api/v1.0/tasks/{id}/builddata", tag = "tasks",
    params(("id" = String, Path, description = "Task id (a UUID)")),
    responses((status = 200, description = "Build data, oldest first", body = Vec<BuildData>)))]
pub async fn build_data(
    _caller: Authorized<ReadBuildData>,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Vec<BuildData>>, ApiError> {
    let id = task_id(&raw)?;
    let store = &state.reads;
    find(store, id).await?;
    let items = store.build_data_under(id).await?;
    if items.is_empty() {
        return Err(ApiError::NotFound(format!("task {id} has no build data")));
    }
    Ok(Json(items.iter().map(view::build_data_view).collect()))
}

/// `POST /tasks/{id}/cancel`: asks the engine to stop the task; 200 with the
/// task dict, 404 if unknown, 409 if it already finished.
#[utoipa::path(post, path = "/api/v1.0/tasks/{id}/cancel", tag = "tasks",
    params(("id" = String, Path, description = "Task id (a UUID)")),
    responses((status = 200, description = "Cancel asked; the task dict", body = TaskDict)))]
pub async fn cancel(
    caller: Authorized<CancelTask>,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<TaskDict>, ApiError> {
    let id = task_id(&raw)?;
    let store = &state.store;
    let task = find(store, id).await?;
    if task.status.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "task {id} is already {}; there is nothing to cancel",
            task.status
        )));
    }
    let record = state.engine.cancel(id, &caller.actor()).await?;
    let tree = task_tree::load(store, record, Some(1)).await?;
    Ok(Json(tree[0][0].view(state.engine.public_url())))
}
