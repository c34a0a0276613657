//! Running Drydock's orchestrator actions: ingesting and validating a
//! task's design ([`start`], called by the scheduler when it claims one),
//! and moving it from step to step ([`advance`], called only by the
//! settler). The plans themselves are in [`super::orchestrator`].
//!
//! Each step is a child task of the orchestrator task whose metadata
//! ([`StepMeta`]) says which step of the plan it is, which nodes it passed
//! through without acting on them, and whether it only probes.

use super::bootactions;
use super::engine::EngineError;
use super::filter::{NodeFilter, select};
use super::orchestrator::{self, Orchestration, StepAction, StepParams, StepResult};
use super::settler::Settle;
use super::shared::Shared;
use crate::design::{Design, PlatformCatalog};
use crate::drivers::{Action, CallRequest, DriverServices};
use crate::model::{self, ActionParams};
use crate::store::{NewMessage, NewTask, ResultStatus, TaskOutcome, TaskRecord, TaskStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The pseudo-node name site-wide steps report under.
const SITE: &str = "site";

/// What a step task records about its place in the orchestration (kept in
/// its `params`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StepMeta {
    /// Index of the step in the plan.
    step: usize,
    /// Nodes the step did not act on but let through as successes.
    #[serde(default)]
    passthrough: Vec<String>,
    /// A probe step: its failures are expected and not counted as errors.
    #[serde(default)]
    probe: bool,
}

impl StepMeta {
    fn of(row: &TaskRecord) -> Option<StepMeta> {
        serde_json::from_value(row.params.clone()).ok()
    }
}

/// Whether `t` is a step of an orchestrator task.
pub(super) fn is_step(t: &TaskRecord) -> bool {
    t.parent_id.is_some() && StepMeta::of(t).is_some()
}

/// Whether `t` is an orchestrator task.
pub(super) fn is_orchestration(t: &TaskRecord) -> bool {
    Orchestration::parse(&t.action).is_some()
}

/// Ingests and validates the design of a newly claimed orchestrator task,
/// records the design's nodes, and hands the task to the settler to start
/// its first step.
pub(super) async fn start(
    shared: &Shared,
    t: &TaskRecord,
    o: Orchestration,
) -> Result<(), EngineError> {
    let store = &shared.store;
    let design = match shared.task_design(t).await {
        Ok(d) => d,
        Err(e) => {
            shared.fail_task(t, &e.to_string()).await;
            return Ok(());
        }
    };
    let catalog = platform_catalog(shared).await;
    // Off the async workers, within the design time budget.
    let design_ref = t.design_ref.as_deref().unwrap_or_default();
    let findings = match shared
        .designs
        .validate(design_ref, design.clone(), catalog)
        .await
    {
        Ok(f) => f,
        Err(e) => {
            shared.fail_task(t, &e.to_string()).await;
            return Ok(());
        }
    };
    let errors = findings.iter().filter(|f| f.is_error()).count();
    let messages: Vec<NewMessage> = findings
        .iter()
        .map(|f| NewMessage {
            task_id: t.id,
            message: f.message.clone(),
            error: f.is_error(),
            context_type: "design".into(),
            context: f.code.into(),
            extra: Some(serde_json::json!({
                "rule": f.rule,
                "name": f.code,
                "level": f.level,
                "diagnostic": f.diagnostic,
                "documents": f.documents,
            })),
        })
        .collect();
    store.add_messages(&messages).await?;
    if errors > 0 {
        shared
            .fail_task(
                t,
                &format!("the site design has {errors} error(s); see the task's messages or POST /validatedesign"),
            )
            .await;
        return Ok(());
    }
    if o == Orchestration::ValidateDesign {
        let mut outcome = TaskOutcome::complete(
            t.id,
            shared.instance_id(),
            shared.epoch(),
            ResultStatus::Success,
        );
        outcome.result_message = Some(format!(
            "the site design is valid ({} warning(s))",
            findings
                .iter()
                .filter(|f| f.level == crate::design::Level::Warning)
                .count()
        ));
        store.finish_tasks(&[outcome]).await?;
        shared.announce_finished(t.id);
        return Ok(());
    }
    let nodes = design.model_nodes();
    let selected = match selected(t, &design, &nodes) {
        Ok(s) => s,
        Err(e) => {
            shared.fail_task(t, &e.to_string()).await;
            return Ok(());
        }
    };
    if o.is_node_scoped() {
        let selected: BTreeSet<String> = shared
            .skip_maintenance(t, selected.clone())
            .await?
            .into_iter()
            .collect();
        if selected.is_empty() {
            shared.nothing_to_do(t).await;
            return Ok(());
        }
        for node in nodes.iter().filter(|n| selected.contains(&n.name)) {
            let spec = serde_json::to_value(node)
                .map_err(|e| EngineError::Invalid(format!("node {}: {e}", node.name)))?;
            store
                .upsert_node(&node.name, &spec, node.oob.credential.as_deref())
                .await?;
        }
    }
    tracing::info!(task.id = %t.id, action = %t.action, nodes = selected.len(), "orchestration started");
    let _ = shared.settle.send(Settle::Advance(t.id));
    Ok(())
}

/// The design nodes task `t` selects.
fn selected(
    t: &TaskRecord,
    design: &Design,
    nodes: &[model::Node],
) -> Result<BTreeSet<String>, EngineError> {
    let filter = match &t.node_filter {
        Some(f) => NodeFilter::from_json(f)?,
        None => None,
    };
    Ok(select(nodes, filter.as_ref(), &design.rack_labels())
        .into_iter()
        .collect())
}

/// Where the steps of an orchestration stand, read from the store.
struct Progress {
    /// Step containers by plan index.
    containers: BTreeMap<usize, TaskRecord>,
    /// Children of the open containers, by node (site steps: [`SITE`]).
    children: BTreeMap<usize, HashMap<String, TaskRecord>>,
}

impl Progress {
    async fn read(shared: &Shared, id: Uuid) -> Result<Progress, EngineError> {
        let mut containers = BTreeMap::new();
        let mut children: BTreeMap<usize, HashMap<String, TaskRecord>> = BTreeMap::new();
        for row in shared.store.subtasks(id).await? {
            let Some(meta) = StepMeta::of(&row) else {
                continue;
            };
            if !row.status.is_terminal() {
                let kids = shared.store.subtasks(row.id).await?;
                children.insert(
                    meta.step,
                    kids.into_iter()
                        .map(|k| (k.node_name.clone().unwrap_or_else(|| SITE.to_owned()), k))
                        .collect(),
                );
            }
            containers.insert(meta.step, row);
        }
        Ok(Progress {
            containers,
            children,
        })
    }
}

/// Moves orchestrator task `id` on. Each node moves through the plan on
/// its own: as soon as its call in one step ends, it gets its call in the
/// next step that targets it (a step's container is created when the first
/// node gets there). A step completes once no node can reach it any more
/// and its calls have ended; the task completes with its last step. Only
/// the settler calls this.
pub(super) async fn advance(shared: &Shared, id: Uuid) -> Result<(), EngineError> {
    let store = &shared.store;
    let Some(t) = store.get_task(id).await? else {
        return Ok(());
    };
    let Some(o) = Orchestration::parse(&t.action) else {
        return Ok(());
    };
    if t.status != TaskStatus::Running {
        return Ok(());
    }
    let plan = orchestrator::plan(o);
    let progress = Progress::read(shared, id).await?;
    if t.terminate {
        // No node moves on: steps complete as their calls end, then the task.
        for (i, c) in &progress.containers {
            if c.status.is_terminal() {
                continue;
            }
            let kids = progress.children.get(i).cloned().unwrap_or_default();
            if kids.values().any(|k| !k.status.is_terminal()) {
                return Ok(());
            }
            seal(shared, c, kids.into_values().collect()).await?;
        }
        let steps = store.subtasks(id).await?;
        return finish(shared, &t, o, &plan, &steps, None).await;
    }
    let design = match shared.task_design(&t).await {
        Ok(d) => d,
        Err(e) => {
            shared.fail_task(&t, &e.to_string()).await;
            return Ok(());
        }
    };
    let all = design.model_nodes();
    let selected: BTreeSet<String> = if o.is_node_scoped() {
        // Nodes in maintenance that have not started are skipped (noted
        // when the task started); those under way go on.
        let maintenance = store.nodes_in_maintenance().await?;
        let mut s = selected(&t, &design, &all)?;
        s.retain(|n| {
            !maintenance.contains_key(n) || progress.children.values().any(|k| k.contains_key(n))
        });
        s
    } else {
        [SITE.to_owned()].into()
    };
    let nodes: HashMap<String, model::Node> =
        all.into_iter().map(|n| (n.name.clone(), n)).collect();
    let signaled: BTreeSet<String> = if plan
        .iter()
        .any(|s| s.only == orchestrator::Only::WithBootActions)
    {
        store
            .boot_actions_for_task(t.id)
            .await?
            .into_iter()
            .filter(|b| b.signaling)
            .map(|b| b.node_name)
            .collect()
    } else {
        BTreeSet::new()
    };
    // Step by step: which nodes reached it, and where each stands in it.
    let mut results: BTreeMap<usize, StepResult> = BTreeMap::new();
    let mut create: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut first_open: Option<usize> = None;
    // Nodes in flight (or about to be), by step.
    let mut open: Vec<(String, usize)> = Vec::new();
    for (i, step) in plan.iter().enumerate() {
        let targets = step.targets.resolve(&selected, &results);
        let mut r = StepResult::default();
        let container = progress.containers.get(&i);
        let sealed = container.is_some_and(|c| c.status.is_terminal());
        for n in targets {
            let eligible = match step.only {
                orchestrator::Only::WithBootActions => signaled.contains(&n),
                only => nodes.get(&n).is_none_or(|node| only.includes(node)),
            };
            if !eligible {
                r.successes.insert(n);
                continue;
            }
            if sealed {
                continue;
            }
            match progress.children.get(&i).and_then(|k| k.get(&n)) {
                Some(k) if k.status.is_terminal() => {
                    if k.status == TaskStatus::Complete && k.result_status == ResultStatus::Success
                    {
                        r.successes.insert(n);
                    } else {
                        r.failures.insert(n);
                    }
                }
                Some(_) => {
                    first_open.get_or_insert(i);
                    open.push((n, i));
                }
                None => {
                    first_open.get_or_insert(i);
                    create.entry(i).or_default().insert(n.clone());
                    open.push((n, i));
                }
            }
        }
        if let Some(c) = container.filter(|_| sealed) {
            let done = step_result(c);
            r.successes.extend(done.successes);
            r.failures.extend(done.failures);
        }
        results.insert(i, r);
    }
    // New calls for the nodes that reached a step; containers keep the
    // plan's order (a step nodes upstream may still reach gets its
    // container before a later one).
    let mut made: BTreeSet<usize> = progress.containers.keys().copied().collect();
    for (i, new) in &create {
        let from = first_open.unwrap_or(*i);
        for (j, step) in plan.iter().enumerate().take(*i).skip(from) {
            // Only where a node upstream may still call a driver.
            let reachable = open.iter().any(|(n, k)| {
                *k < j
                    && (step.only == orchestrator::Only::WithBootActions
                        || nodes.get(n).is_none_or(|node| step.only.includes(node)))
            });
            if reachable && !made.contains(&j) && !create.contains_key(&j) {
                add_calls(shared, &t, j, step, &design, &BTreeSet::new(), None).await?;
                made.insert(j);
            }
        }
        let existing = progress.containers.get(i);
        add_calls(shared, &t, *i, &plan[*i], &design, new, existing).await?;
        made.insert(*i);
    }
    if !create.is_empty() {
        return Ok(());
    }
    // Steps no node can reach any more, whose calls have all ended.
    let mut all_sealed = true;
    for (i, c) in &progress.containers {
        if c.status.is_terminal() {
            continue;
        }
        if first_open.is_some_and(|k| k <= *i) {
            all_sealed = false;
            break;
        }
        let kids = progress.children.get(i).cloned().unwrap_or_default();
        seal(shared, c, kids.into_values().collect()).await?;
    }
    if all_sealed && first_open.is_none() {
        let steps = store.subtasks(id).await?;
        finish(shared, &t, o, &plan, &steps, Some((&selected, &results))).await?;
    }
    Ok(())
}

/// Completes step container `c` from its calls (fenced by owner and epoch).
async fn seal(shared: &Shared, c: &TaskRecord, kids: Vec<TaskRecord>) -> Result<(), EngineError> {
    let mut r = super::result::rollup(&kids);
    if kids.is_empty() {
        // Created for nodes that went another way in the end.
        r.status = ResultStatus::Success;
        r.message = "no node reached this step".to_owned();
    }
    let result = r.status;
    let outcome = shared.rolled_up(c, r);
    if shared.store.finish_tasks(&[outcome]).await? == 1 {
        tracing::info!(task.id = %c.id, result = result.as_str(), "step finished");
        shared.announce_finished(c.id);
    }
    Ok(())
}

/// Adds the calls of step `index` of `t`'s plan for `new` nodes: into its
/// container `existing`, or into a new container (already running, owned
/// by this instance, fenced on the lease, its span opened under `t`'s).
async fn add_calls(
    shared: &Shared,
    t: &TaskRecord,
    index: usize,
    step: &orchestrator::Step,
    design: &Design,
    new: &BTreeSet<String>,
    existing: Option<&TaskRecord>,
) -> Result<(), EngineError> {
    let params = match step.params {
        StepParams::None => serde_json::json!({}),
        StepParams::Site => serde_json::json!({ "site": design.site_networks() }),
        StepParams::SshKeys => serde_json::json!({ "ssh_keys": design.ssh_keys() }),
        StepParams::Repositories => {
            serde_json::json!({ "repositories": design.repositories() })
        }
        StepParams::PxeBoot => serde_json::json!({ "boot": orchestrator::pxe_once() }),
        StepParams::BootActions => serde_json::json!({}),
    };
    let per_node: BTreeMap<String, serde_json::Value> = match step.params {
        StepParams::BootActions if !new.is_empty() => {
            bootactions::hand_out(shared, t, design, new).await?
        }
        _ => BTreeMap::new(),
    };
    let action = step.action;
    let timeout = if step.enlist {
        shared.cfg.enlist_timeout
    } else {
        shared.step_timeout(action)
    };
    let deadline =
        chrono::Utc::now() + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    let mut rows = Vec::new();
    let (parent_id, traceparent) = match existing {
        Some(c) => (c.id, c.traceparent.clone()),
        None => {
            let mut parent = NewTask::new(action.name());
            parent.parent_id = Some(t.id);
            parent.status = TaskStatus::Running;
            parent.owner = Some(shared.instance_id().to_owned());
            parent.epoch = shared.epoch();
            parent.design_ref = t.design_ref.clone();
            parent.created_by = t.created_by.clone();
            // No deadline on the container: its calls have theirs (each from
            // when its node got there), and a container may wait empty for
            // nodes upstream (the leader's overdue sweep must not end it).
            parent.params = serde_json::to_value(StepMeta {
                step: index,
                passthrough: Vec::new(),
                probe: step.probe,
            })
            .unwrap_or_default();
            parent.traceparent = crate::observe::traces::step_started(
                parent.id,
                t.id,
                action.name(),
                t.traceparent.as_deref(),
            );
            let ids = (parent.id, parent.traceparent.clone());
            rows.push(parent);
            ids
        }
    };
    let sub = |node: Option<&String>| {
        let mut s = match node {
            Some(n) => NewTask::subtask(parent_id, action.name(), n.clone()),
            None => NewTask {
                parent_id: Some(parent_id),
                ..NewTask::new(action.name())
            },
        };
        s.params = node
            .and_then(|n| per_node.get(n))
            .cloned()
            .unwrap_or_else(|| params.clone());
        if action == StepAction::BootActionReport {
            // No executor runs a wait: the leader settles it.
            s.params = bootactions::wait_params(t.id);
            s.status = TaskStatus::Running;
            s.owner = Some(shared.instance_id().to_owned());
            s.epoch = shared.epoch();
        }
        s.deadline = Some(deadline);
        // The wait for enlistment retries until its deadline.
        s.max_attempts = if step.enlist {
            i64::from(u32::MAX)
        } else {
            step.attempts
        };
        s.created_by = t.created_by.clone();
        s.traceparent = traceparent.clone();
        s
    };
    if action.is_node_scoped() {
        rows.extend(new.iter().map(|n| sub(Some(n))));
    } else if !new.is_empty() {
        rows.push(sub(None));
    }
    // This instance's share of the calls runs here without a claim.
    let reserved = super::dispatch::reserve(shared, &mut rows).await;
    shared
        .store
        .insert_tasks_fenced(&rows, Some((shared.instance_id(), shared.epoch())))
        .await
        .inspect_err(|_| {
            if existing.is_none() {
                // No such step after all: its span ends now.
                crate::observe::traces::task_finished(parent_id);
            }
        })?;
    reserved.dispatch(
        shared,
        &rows,
        &mut HashMap::new(),
        super::gate::Gate::stored(),
    );
    super::dispatch::stored(shared, &rows);
    // A cancel that arrived since the orchestration was read did not reach
    // the new calls: cascade it now (and settle the step).
    if shared.store.is_cancel_requested(t.id).await? {
        let by = t.terminated_by.clone().unwrap_or_else(|| "unknown".into());
        shared.store.request_cancel(t.id, &by).await?;
        shared.settle(vec![parent_id]);
    }
    if existing.is_none() {
        let who = if action.is_node_scoped() {
            format!("{} node(s)", new.len())
        } else {
            "the site".to_owned()
        };
        shared
            .message(
                t.id,
                None,
                format!("step {}: {} on {who}", index + 1, action.name()),
                false,
            )
            .await;
    }
    tracing::info!(task.id = %t.id, step = index, action = action.name(), targets = new.len(), "orchestration step calls added");
    shared.wake_executor.notify_one();
    Ok(())
}

/// Completes orchestrator task `t`: cancelled (`done` is None), or with
/// the nodes that made it through the last step as successes and each
/// failed node named with the step it dropped out at.
async fn finish(
    shared: &Shared,
    t: &TaskRecord,
    o: Orchestration,
    plan: &[orchestrator::Step],
    steps: &[TaskRecord],
    done: Option<(&BTreeSet<String>, &BTreeMap<usize, StepResult>)>,
) -> Result<(), EngineError> {
    let errors: i64 = steps
        .iter()
        .filter(|s| !StepMeta::of(s).is_some_and(|m| m.probe))
        .map(|s| s.error_count)
        .sum();
    let mut outcome = TaskOutcome::complete(
        t.id,
        shared.instance_id(),
        shared.epoch(),
        ResultStatus::Failure,
    );
    outcome.error_count = errors;
    match done {
        None => {
            outcome.status = TaskStatus::Terminated;
            outcome.terminated_by = t.terminated_by.clone();
            outcome.result_message = Some(format!(
                "cancelled by {}",
                t.terminated_by.as_deref().unwrap_or("?")
            ));
        }
        Some((selected, results)) => {
            let last = plan
                .len()
                .checked_sub(1)
                .and_then(|i| results.get(&i))
                .cloned()
                .unwrap_or_default();
            let successes: Vec<String> = selected.intersection(&last.successes).cloned().collect();
            let failed: Vec<String> = selected.difference(&last.successes).cloned().collect();
            // Where each failed node dropped out.
            let why: Vec<String> = failed
                .iter()
                .map(|n| {
                    let at = plan.iter().enumerate().find(|(i, s)| {
                        !s.probe && results.get(i).is_some_and(|r| r.failures.contains(n))
                    });
                    match at {
                        Some((_, s)) => format!("{n} ({})", s.action.name()),
                        None => n.clone(),
                    }
                })
                .collect();
            outcome.result_status = match (successes.is_empty(), failed.is_empty()) {
                (_, true) => ResultStatus::Success,
                (true, false) => ResultStatus::Failure,
                (false, false) => ResultStatus::PartialSuccess,
            };
            outcome.result_message = Some(if o.is_node_scoped() {
                if failed.is_empty() {
                    format!("{}: all {} node(s) succeeded", t.action, successes.len())
                } else {
                    format!(
                        "{}: {} of {} node(s) succeeded; failed: {}",
                        t.action,
                        successes.len(),
                        selected.len(),
                        why.join(", ")
                    )
                }
            } else if failed.is_empty() {
                format!("{} succeeded", t.action)
            } else {
                let step = plan
                    .iter()
                    .enumerate()
                    .find(|(i, _)| results.get(i).is_some_and(|r| !r.failures.is_empty()))
                    .map(|(_, s)| s.action.name())
                    .unwrap_or("a step");
                format!("{} failed at {step}", t.action)
            });
            if o.is_node_scoped() {
                outcome.successes = successes;
                outcome.failures = failed;
            }
        }
    }
    if shared.store.finish_tasks(&[outcome.clone()]).await? == 1 {
        tracing::info!(task.id = %t.id, result = outcome.result_status.as_str(), "orchestration finished");
        shared.announce_finished(t.id);
        shared.forget_design(t.id);
    }
    Ok(())
}

/// What a finished step left: its successes plus the nodes it passed
/// through, its failures (a site step succeeds or fails as [`SITE`]).
fn step_result(row: &TaskRecord) -> StepResult {
    let node_scoped = row
        .action
        .parse::<Action>()
        .is_ok_and(Action::is_node_scoped);
    if !node_scoped {
        let mut r = StepResult::default();
        if row.result_status == ResultStatus::Success {
            r.successes.insert(SITE.to_owned());
        } else {
            r.failures.insert(SITE.to_owned());
        }
        return r;
    }
    let mut r = StepResult {
        successes: row.successes.iter().cloned().collect(),
        failures: row.failures.iter().cloned().collect(),
    };
    if let Some(meta) = StepMeta::of(row) {
        r.successes.extend(meta.passthrough);
    }
    r
}

/// Images and kernels the node driver offers, for the platform rule.
/// `None` (rule skipped) without a node driver or when it fails.
pub(super) async fn platform_catalog(shared: &Shared) -> Option<PlatformCatalog> {
    let installed = shared
        .drivers
        .for_action(Action::AvailableImages, None)
        .ok()?
        .clone();
    let services: Arc<dyn DriverServices> = Arc::new(crate::drivers::MemoryServices::new());
    let call = |action, params: ActionParams| {
        let installed = installed.clone();
        let services = services.clone();
        async move {
            shared
                .runtime
                .call(
                    &installed.driver,
                    CallRequest {
                        action,
                        node: None,
                        params: &params,
                        config: installed.config.clone(),
                        services,
                        timeout: Some(Duration::from_secs(60)),
                        task: None,
                    },
                )
                .await
        }
    };
    let strings = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let images = match call(Action::AvailableImages, ActionParams::default()).await {
        Ok(v) => strings(v),
        Err(e) => {
            tracing::warn!(error = %e, "the node driver did not list its images; platform rule skipped");
            return None;
        }
    };
    let mut catalog = PlatformCatalog::default();
    for image in images {
        let params = ActionParams {
            image: Some(image.clone()),
            ..ActionParams::default()
        };
        let kernels = call(Action::AvailableKernels, params)
            .await
            .map(strings)
            .unwrap_or_default();
        catalog.images.insert(image, kernels);
    }
    Some(catalog)
}
