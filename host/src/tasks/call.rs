//! One subtask's driver call, from claim to outcome: read the node and its
//! credentials, pick the driver, call it under the BMC limit with retries
//! and backoff inside the action's deadline, stop at once on cancel, and
//! hand the outcome to the writer.

use super::executor::BmcLimits;
use super::gate::Gate;
use super::probe;
use super::services::EngineServices;
use super::shared::Shared;
use super::writer::{Finished, Write};
use crate::drivers::{Action, CallError, CallRequest, DriverServices, Interface};
use crate::model::{self, ActionParams};
use crate::store::{NewBuildData, NodeRecord, ResultStatus, TaskOutcome, TaskRecord, TaskStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a subtask's call could not even start (its message says what to
/// fix: the node, its credentials, its TLS trust, the driver).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct SetupError(String);

/// Runs subtask `t` (claimed by this instance) to its outcome.
pub(super) async fn run(
    shared: &Arc<Shared>,
    bmcs: &BmcLimits,
    t: TaskRecord,
    cancel: CancellationToken,
    prefetched: Option<NodeRecord>,
    gate: Gate,
) {
    if gate.failed() {
        // Its row was never stored (the fan-out's insert failed), so there
        // is nothing to run it for: the task's next fan-out, if the failure
        // was passing, makes a new subtask for its node.
        return;
    }
    let started = std::time::Instant::now();
    let epoch = t.epoch;
    let node_name = t.node_name.clone();
    let mut outcome =
        TaskOutcome::complete(t.id, shared.instance_id(), epoch, ResultStatus::Failure);
    // What names the subtask (its outcome, messages, build data) waits
    // until its row is stored, and is dropped if it never was
    // (`super::gate`); the call itself need not wait.
    let say = async |node: Option<&str>, text: String, error: bool| {
        if gate.wait().await {
            shared.message(t.id, node, text, error).await;
        }
    };
    let finish = async |mut outcome: TaskOutcome, state| {
        if let Some(n) = &node_name {
            match outcome.result_status {
                ResultStatus::Success => outcome.successes = vec![n.clone()],
                _ => outcome.failures = vec![n.clone()],
            }
        }
        let write = Write::Finished(Finished {
            outcome,
            parent: t.parent_id,
            node_state: state,
        });
        if gate.is_open() {
            let _ = shared.writes.send(write).await;
        } else if !gate.failed() {
            // Its row is not stored yet: the outcome waits for it, the
            // call slot does not. Nothing of this call went to the writer
            // before (messages wait for the row), so the outcome still
            // follows them.
            let (shared, gate) = (shared.clone(), gate.clone());
            tokio::spawn(async move {
                if gate.wait().await {
                    let _ = shared.writes.send(write).await;
                }
            });
        }
    };
    let action: Action = match t.action.parse() {
        Ok(a) => a,
        Err(e) => {
            outcome.result_message = Some(format!("{e}"));
            return finish(outcome, None).await;
        }
    };
    let params = match <ActionParams as serde::Deserialize>::deserialize(&t.params) {
        Ok(p) => p,
        Err(e) => {
            outcome.result_message = Some(format!("invalid params: {e}"));
            return finish(outcome, None).await;
        }
    };
    // A switch given in the task's params is granted like the node's.
    if let Err(e) = shared.cfg.node_addresses.check_params(&params) {
        let e = format!("invalid params: {e}");
        say(node_name.as_deref(), e.clone(), true).await;
        outcome.result_message = Some(e);
        outcome.error_count = 1;
        return finish(outcome, None).await;
    }
    let node = match &node_name {
        Some(n) => {
            let network = action.interface() == Interface::Network;
            match load_node_patiently(shared, n, prefetched, network, &t, &cancel).await {
                Ok(node) => Some(node),
                Err(e) => {
                    say(Some(n), e.to_string(), true).await;
                    outcome.result_message = Some(e.to_string());
                    outcome.error_count = 1;
                    return finish(outcome, None).await;
                }
            }
        }
        None => None,
    };
    let mut installed = match shared.drivers.for_action(action, node.as_ref()) {
        Ok(i) => i.clone(),
        Err(e) => {
            say(node_name.as_deref(), e.clone(), true).await;
            outcome.result_message = Some(e);
            outcome.error_count = 1;
            return finish(outcome, None).await;
        }
    };
    // A node may carry its own TLS trust for its BMC (oob calls).
    if action.interface() == Interface::Oob
        && let Some(n) = &node
    {
        match node_tls(shared, n).await {
            Ok(Some(tls)) => {
                let mut config = (*installed.config).clone();
                config.tls = tls;
                installed.config = Arc::new(config);
            }
            Ok(None) => {}
            Err(e) => {
                say(node_name.as_deref(), e.to_string(), true).await;
                outcome.result_message = Some(e.to_string());
                outcome.error_count = 1;
                return finish(outcome, None).await;
            }
        }
    }
    let bmc_key = node
        .as_ref()
        .map(|n| n.oob.address.clone().unwrap_or_else(|| n.name.clone()))
        .unwrap_or_default();
    let bmc = bmcs.get(&bmc_key);
    let deadline = t
        .deadline
        .map(|d| (d - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
        .unwrap_or_else(|| shared.timeout(action));
    let end = tokio::time::Instant::now() + deadline;
    let services: Arc<dyn DriverServices> = Arc::new(EngineServices {
        shared: shared.clone(),
        task: Some(t.id),
        gate: gate.clone(),
    });
    // Orchestrator steps set their own attempts (Drydock retries those
    // steps on any failure that is not permanent by nature).
    let (max_attempts, retry_any) = if t.max_attempts > 0 {
        (u32::try_from(t.max_attempts).unwrap_or(u32::MAX), true)
    } else {
        (shared.cfg.max_attempts, false)
    };
    let calls = port_calls(action, node.as_ref(), &params);
    let secrets = node
        .as_ref()
        .map(probe::credential_strings)
        .unwrap_or_default();
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        let attempt_started = std::time::Instant::now();
        let call = async {
            let _bmc = bmc.acquire().await;
            let mut last = Ok(serde_json::Value::Null);
            for params in &calls {
                let left = end.saturating_duration_since(tokio::time::Instant::now());
                last = shared
                    .runtime
                    .call(
                        &installed.driver,
                        CallRequest {
                            action,
                            node: node.as_ref(),
                            params,
                            config: installed.config.clone(),
                            services: services.clone(),
                            timeout: Some(left.max(Duration::from_millis(1))),
                            task: Some(t.id.to_string()),
                        },
                    )
                    .await;
                if last.is_err() {
                    break;
                }
            }
            last
        };
        // A cancel first: a subtask cancelled while it waited for a slot
        // never reaches the driver.
        let r = tokio::select! {
            biased;
            _ = cancel.cancelled() => break Err(None),
            r = call => r,
        };
        let timeline = (node_name.as_deref(), t.id, &secrets[..]);
        record_call(shared, timeline, action, &r, attempt_started.elapsed());
        // A power or boot action that timed out or lost its connection may
        // have reached the BMC: read the state back before deciding.
        let r = match (r, &node) {
            (Err(e), Some(n)) if probe::is_uncertain(&e) => {
                match probe::took_effect(shared, &installed, n, action, &params, READ_BACK).await {
                    Some(seen) => {
                        let note = format!(
                            "{} {}, but {seen}: it took effect",
                            action.name(),
                            probe::redacted(&e, &secrets)
                        );
                        record_event(shared, timeline, "readback", action, "success", &note);
                        Ok(serde_json::json!({ "read_back": note }))
                    }
                    None => Err(e),
                }
            }
            (r, _) => r,
        };
        match r {
            Ok(v) => break Ok(v),
            Err(e) => {
                let left = end.saturating_duration_since(tokio::time::Instant::now());
                let backoff = (shared.cfg.retry_backoff * 2u32.saturating_pow(attempt - 1))
                    .min(Duration::from_secs(10));
                let again = e.is_retryable() || (retry_any && !is_permanent(&e));
                // The host's own services (the database) being down is not
                // the driver's failure: wait for them, deadline permitting,
                // however many attempts that takes.
                let ours = matches!(e, CallError::ServicesUnavailable { .. });
                let backoff = if ours {
                    backoff.min(Duration::from_secs(1))
                } else {
                    backoff
                };
                if again && (attempt < max_attempts || ours) && left > backoff {
                    // Retry notes count against the messages of a call (waiting
                    // out a database outage can take many).
                    let notes = shared.runtime.limits().messages_per_call;
                    if attempt < notes {
                        say(
                            node_name.as_deref(),
                            format!("attempt {attempt} failed, retrying in {backoff:?}: {e}"),
                            false,
                        )
                        .await;
                    } else if attempt == notes {
                        let text = format!(
                            "attempt {attempt} failed, retrying in {backoff:?}: {e}; further \
                         retries are not reported (messages_per_call = {notes})"
                        );
                        say(node_name.as_deref(), text, false).await;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => break Err(None),
                        _ = tokio::time::sleep(backoff) => continue,
                    }
                }
                break Err(Some(e));
            }
        }
    };
    let mut state = None;
    match result {
        Ok(value) => {
            outcome.result_status = ResultStatus::Success;
            outcome.result_message = Some(match value["read_back"].as_str() {
                Some(note) => format!("{} succeeded ({note})", action.name()),
                None => format!("{} succeeded", action.name()),
            });
            if let Some(n) = &node_name {
                state = node_state(action, &params, &value).map(|(p, b)| (n.clone(), p, b));
                if let Some((power, boot)) = state.as_ref().map(|(_, p, b)| (*p, *b)) {
                    let text = [
                        power.map(|p| format!("power {p}")),
                        boot.map(|b| format!("boot {b}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                    let text = format!("{text} (set by {})", action.name());
                    record_event(
                        shared,
                        (Some(n), t.id, &[]),
                        "state_change",
                        action,
                        "success",
                        &text,
                    );
                }
                if matches!(action, Action::InterrogateOob | Action::InterrogateNode) {
                    let data = NewBuildData {
                        node_name: n.clone(),
                        task_id: Some(t.id),
                        generator: action.name().into(),
                        format: "application/json".into(),
                        content: value.to_string(),
                    };
                    let max = shared.runtime.limits().build_data_bytes_per_call;
                    if data.content.len() as u64 > max {
                        let text = format!(
                            "the {} result ({} bytes) was not stored as build data: \
                             the limit build_data_bytes_per_call is {max}",
                            action.name(),
                            data.content.len()
                        );
                        say(Some(n), text, true).await;
                    } else if !gate.wait().await {
                        // Never stored: no row to attach it to.
                    } else if let Err(e) = shared.store_build_data(&data).await {
                        tracing::warn!(node = %n, error = %e, "could not store build data");
                    }
                }
            }
        }
        Err(None) if shared.calls.is_cancelled() => {
            // The engine is stopping, not the task: leave the subtask
            // running; the drain (or the next start of this instance)
            // requeues it.
            tracing::debug!(task.id = %t.id, "driver call cut by shutdown; left for requeue");
            return;
        }
        Err(None) => {
            outcome.status = TaskStatus::Terminated;
            outcome.result_message = Some("cancelled".into());
            outcome.terminated_by = t.terminated_by.clone();
            say(node_name.as_deref(), "cancelled".into(), true).await;
        }
        Err(Some(e)) => {
            let text = e.to_string();
            outcome.result_message = Some(text.clone());
            outcome.result_reason = Some(reason(&e));
            outcome.error_count = 1;
            say(node_name.as_deref(), text, true).await;
        }
    }
    outcome.retry = i64::from(attempt.saturating_sub(1));
    tracing::debug!(task.id = %t.id, node = node_name.as_deref().unwrap_or("-"), action = action.name(),
        attempts = attempt, elapsed_ms = started.elapsed().as_millis() as u64, "subtask finished");
    finish(outcome, state).await;
}

/// Loads a node (unless prefetched), checks its BMC (and, with `network`,
/// switch) addresses and resolves their credentials from the secrets
/// sources, each in its scope.
pub(super) async fn load_node(
    shared: &Shared,
    name: &str,
    prefetched: Option<NodeRecord>,
    network: bool,
) -> Result<model::Node, SetupError> {
    let record = match prefetched {
        Some(r) => r,
        None => shared
            .store
            .get_node(name)
            .await
            .map_err(|e| SetupError(format!("reading node {name}: {e}")))?
            .ok_or_else(|| SetupError(format!("node {name} is not registered")))?,
    };
    let mut node: model::Node = serde_json::from_value(record.spec)
        .map_err(|e| SetupError(format!("node {name} has an unusable description: {e}")))?;
    shared
        .cfg
        .node_addresses
        .check_node(&node, network)
        .map_err(|e| SetupError(format!("node {name}: {e}")))?;
    resolve_device_aliases(shared, &mut node).await?;
    let secrets = &shared.secrets;
    let (oob, switch) = (crate::secrets::Scope::Oob, crate::secrets::Scope::Switch);
    if let Some(secret) = record
        .credential
        .as_deref()
        .or(node.oob.credential.as_deref())
    {
        let creds = secrets
            .credentials(secret, node.oob.account.as_deref(), &oob, Some(name))
            .await
            .map_err(|e| SetupError(format!("node {name}'s BMC credential: {e}")))?;
        node.oob.credentials = Some(creds);
    }
    if network {
        for iface in &mut node.interfaces {
            let Some(port) = iface.switch_port.as_mut() else {
                continue;
            };
            if let Some(secret) = port.switch.credential.clone() {
                let creds = secrets
                    .credentials(&secret, port.switch.account.as_deref(), &switch, Some(name))
                    .await
                    .map_err(|e| {
                        SetupError(format!("switch {}'s credential: {e}", port.switch.name))
                    })?;
                port.switch.credentials = Some(creds);
            }
        }
    }
    Ok(node)
}

/// Names the node's devices as its latest `lshw` build data does where the
/// design names them by a hardware profile's device alias (as Drydock does
/// before its node driver acts); unchanged without `lshw` data.
async fn resolve_device_aliases(shared: &Shared, node: &mut model::Node) -> Result<(), SetupError> {
    if node.device_aliases.is_empty() {
        return Ok(());
    }
    let data = shared
        .store
        .build_data_for_node(&node.name, true)
        .await
        .map_err(|e| SetupError(format!("reading node {}'s build data: {e}", node.name)))?;
    let Some(lshw) = data.iter().find(|b| b.generator == "lshw") else {
        return Ok(());
    };
    match crate::design::aliases::logical_names(&lshw.content, &node.device_aliases) {
        Ok(names) => crate::design::aliases::apply(node, &names),
        Err(e) => {
            tracing::warn!(node = %node.name, error = %e, "device aliases left unresolved")
        }
    }
    Ok(())
}

/// [`load_node`], waiting out a database outage (the node and its secrets
/// are read from it) until the subtask's deadline.
async fn load_node_patiently(
    shared: &Shared,
    name: &str,
    prefetched: Option<NodeRecord>,
    network: bool,
    t: &TaskRecord,
    cancel: &CancellationToken,
) -> Result<model::Node, SetupError> {
    let mut prefetched = prefetched;
    loop {
        let r = load_node(shared, name, prefetched.take(), network).await;
        let down = r.is_err() && shared.store.ping().await.is_err();
        let left = t
            .deadline
            .map(|d| (d - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(60));
        if !down || left < Duration::from_secs(1) || cancel.is_cancelled() {
            return r;
        }
        tracing::debug!(
            node = name,
            "database unavailable: waiting to read the node"
        );
        tokio::select! {
            _ = cancel.cancelled() => return r,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// TLS trust for a node's BMC from its oob parameters:
/// `tls_ca_secret = <secret holding PEM CA certificates>` trusts those CAs
/// (besides the public roots); `tls_verify = "false"` turns verification
/// off for this node (logged on every connection). `None` keeps the
/// driver's settings.
pub(super) async fn node_tls(
    shared: &Shared,
    n: &model::Node,
) -> Result<Option<crate::drivers::TlsSettings>, SetupError> {
    if n.oob.params.get("tls_verify").map(String::as_str) == Some("false") {
        return Ok(Some(crate::drivers::TlsSettings::insecure_skip_verify()));
    }
    let Some(secret) = n.oob.params.get("tls_ca_secret") else {
        return Ok(None);
    };
    let pem = shared
        .secrets
        .get(secret, &crate::secrets::Scope::Oob, Some(&n.name))
        .await
        .map_err(|e| SetupError(format!("node {}: TLS CA secret: {e}", n.name)))?;
    crate::drivers::TlsSettings::with_extra_roots(pem.as_bytes())
        .map(Some)
        .map_err(|e| SetupError(format!("node {}: TLS CA secret `{secret}`: {e}", n.name)))
}

/// Whether a failure will not go away by retrying (bad credentials, an
/// unsupported action, invalid input, a broken driver).
fn is_permanent(e: &CallError) -> bool {
    use crate::drivers::DriverErrorKind::*;
    match e {
        CallError::Driver { error, .. } => matches!(error.kind, Auth | Unsupported | InvalidInput),
        CallError::Deadline { .. } => false,
        _ => true,
    }
}

/// The driver calls one subtask makes: one per switch port for a port
/// action on a node whose ports come from the design (each with that port's
/// target VLANs), else the single call.
fn port_calls(
    action: Action,
    node: Option<&model::Node>,
    params: &ActionParams,
) -> Vec<ActionParams> {
    let target = |p: &model::SwitchPort| match action {
        Action::ConfigPortProvisioning => p.provisioning.clone(),
        Action::ConfigPortProduction => p.production.clone(),
        _ => None,
    };
    let portwise = matches!(
        action,
        Action::ConfigPortProvisioning | Action::ConfigPortProduction | Action::InterrogatePort
    );
    if !portwise || params.switch_port.is_some() {
        return vec![params.clone()];
    }
    let ports: Vec<ActionParams> = node
        .into_iter()
        .flat_map(|n| n.interfaces.iter().filter_map(|i| i.switch_port.as_ref()))
        .map(|p| ActionParams {
            switch_port: Some(p.clone()),
            vlans: params.vlans.clone().or_else(|| target(p)),
            ..params.clone()
        })
        .collect();
    if ports.is_empty() {
        vec![params.clone()]
    } else {
        ports
    }
}

/// A short machine-readable reason for a failed call: the driver's error
/// kind (`timeout`, `busy`, `auth`, ...) or the host's (`timeout` for a cut
/// call, `trap`, `memory_limit`, ...).
pub(super) fn reason(e: &CallError) -> String {
    match e {
        CallError::Driver { error, .. } => serde_json::to_value(error.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "driver".into()),
        CallError::Deadline { .. } => "timeout".into(),
        other => other.kind().into(),
    }
}

/// The power state and boot device an action leaves a node in.
fn node_state(
    action: Action,
    params: &ActionParams,
    value: &serde_json::Value,
) -> Option<(Option<&'static str>, Option<&'static str>)> {
    use crate::model::BootDevice;
    let device = |d: BootDevice| match d {
        BootDevice::Pxe => "pxe",
        BootDevice::Disk => "disk",
        BootDevice::Cdrom => "cdrom",
        BootDevice::BiosSetup => "bios_setup",
    };
    match action {
        Action::PowerOnNode | Action::PowerCycleNode => Some((Some("on"), None)),
        Action::PowerOffNode => Some((Some("off"), None)),
        Action::ConfigNodePxe => Some((None, Some("pxe"))),
        Action::SetNodeBoot => Some((None, Some(device(params.boot.unwrap_or_default().device)))),
        Action::InterrogateOob => {
            let power = match value["power_state"].as_str() {
                Some("on") => Some("on"),
                Some("off") => Some("off"),
                _ => None,
            };
            Some((power, None))
        }
        _ => None,
    }
}

/// How long the read-back of an uncertain outcome may take.
const READ_BACK: Duration = Duration::from_secs(30);

/// Where a call's timeline entries go: the node, the task, the strings to
/// redact.
type Timeline<'a> = (Option<&'a str>, uuid::Uuid, &'a [String]);

/// Records one attempt of a driver call in its node's timeline.
fn record_call(
    shared: &Shared,
    (node, task, secrets): Timeline<'_>,
    action: Action,
    r: &Result<serde_json::Value, CallError>,
    took: Duration,
) {
    let Some(node) = node else { return };
    let (outcome, message) = match r {
        Ok(_) => ("success", None),
        Err(e) => ("failure", Some(probe::redacted(e, secrets))),
    };
    shared.timeline.record(crate::store::NewNodeEvent {
        node_name: node.to_owned(),
        ts: chrono::Utc::now(),
        kind: "driver_call".into(),
        action: Some(action.name().into()),
        outcome: Some(outcome.into()),
        duration_ms: Some(i64::try_from(took.as_millis()).unwrap_or(i64::MAX)),
        message,
        task_id: Some(task),
    });
}

/// Records a non-call event (a state change, a read-back) in a timeline.
fn record_event(
    shared: &Shared,
    (node, task, _): Timeline<'_>,
    kind: &str,
    action: Action,
    outcome: &str,
    message: &str,
) {
    let Some(node) = node else { return };
    shared.timeline.record(crate::store::NewNodeEvent {
        node_name: node.to_owned(),
        ts: chrono::Utc::now(),
        kind: kind.into(),
        action: Some(action.name().into()),
        outcome: Some(outcome.into()),
        duration_ms: None,
        message: Some(message.to_owned()),
        task_id: Some(task),
    });
}
