//! Driver calls on a node outside any subtask: the fleet's periodic sync
//! ([`Engine::probe`]) and the read-back that decides an uncertain power
//! or boot outcome ([`took_effect`]). The node and its credentials load as
//! for a subtask, the call holds one of the node's BMC slots (shared with
//! subtasks, so the per-BMC limit holds across both), makes one attempt,
//! and writes nothing for a task (build data is not stored).

use super::call;
use super::engine::Engine;
use super::services::EngineServices;
use super::shared::Shared;
use crate::drivers::{Action, CallError, CallRequest, DriverServices, Installed};
use crate::model::{self, ActionParams};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The call could not start (the node, its credentials, no driver).
    #[error("{0}")]
    Setup(String),
    /// The driver call failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

impl ProbeError {
    /// A short machine-readable reason: the driver's error kind
    /// (`unreachable`, `timeout`, `auth`, ...), `timeout` for a cut call,
    /// `setup` when the call could not start.
    pub fn reason(&self) -> String {
        match self {
            ProbeError::Setup(_) => "setup".into(),
            ProbeError::Call(e) => call::reason(e),
        }
    }
}

impl Engine {
    /// Calls `action` (an oob read such as `interrogate_oob`) on registered
    /// node `node` once, within `timeout`, under the node's BMC limit.
    /// Returns the driver's result and the node's credential strings (for
    /// redacting errors).
    pub async fn probe(
        &self,
        node: &str,
        action: Action,
        timeout: Duration,
    ) -> Result<Value, (ProbeError, Vec<String>)> {
        let shared = &self.shared;
        let node = call::load_node(shared, node, None, false)
            .await
            .map_err(|e| (ProbeError::Setup(e.to_string()), Vec::new()))?;
        let secrets = credential_strings(&node);
        let installed = shared
            .drivers
            .for_action(action, Some(&node))
            .map_err(|e| (ProbeError::Setup(e), secrets.clone()))?
            .clone();
        let installed = with_node_tls(shared, &node, installed)
            .await
            .map_err(|e| (e, secrets.clone()))?;
        call_once(shared, &installed, &node, action, timeout)
            .await
            .map_err(|e| (e, secrets))
    }

    /// The BMC concurrency limit of the BMC at `key` (its address), shared
    /// with subtasks.
    pub fn bmc_limit(&self, key: &str) -> Arc<tokio::sync::Semaphore> {
        self.shared.bmcs.get(key)
    }
}

/// The strings of a node's BMC credentials (to redact from errors).
pub(super) fn credential_strings(node: &model::Node) -> Vec<String> {
    node.oob
        .credentials
        .as_ref()
        .map(|c| vec![c.password.clone()])
        .unwrap_or_default()
}

/// `installed` with the node's own TLS trust for its BMC, if it has one.
async fn with_node_tls(
    shared: &Arc<Shared>,
    node: &model::Node,
    mut installed: Installed,
) -> Result<Installed, ProbeError> {
    match call::node_tls(shared, node).await {
        Ok(Some(tls)) => {
            let mut config = (*installed.config).clone();
            config.tls = tls;
            installed.config = Arc::new(config);
            Ok(installed)
        }
        Ok(None) => Ok(installed),
        Err(e) => Err(ProbeError::Setup(e.to_string())),
    }
}

/// One call of `action` on `node` under its BMC limit, within `timeout`.
async fn call_once(
    shared: &Arc<Shared>,
    installed: &Installed,
    node: &model::Node,
    action: Action,
    timeout: Duration,
) -> Result<Value, ProbeError> {
    let key = node
        .oob
        .address
        .clone()
        .unwrap_or_else(|| node.name.clone());
    let bmc = shared.bmcs.get(&key);
    let services: Arc<dyn DriverServices> = Arc::new(EngineServices {
        shared: shared.clone(),
        task: None,
        gate: super::gate::Gate::stored(),
    });
    let params = ActionParams::default();
    let end = tokio::time::Instant::now() + timeout;
    let _slot = tokio::time::timeout_at(end, bmc.acquire())
        .await
        .map_err(|_| {
            ProbeError::Setup(format!(
                "no BMC slot free for {} within {timeout:?}",
                node.name
            ))
        })?;
    let left = end.saturating_duration_since(tokio::time::Instant::now());
    Ok(shared
        .runtime
        .call(
            &installed.driver,
            CallRequest {
                action,
                node: Some(node),
                params: &params,
                config: installed.config.clone(),
                services,
                timeout: Some(left.max(Duration::from_millis(1))),
                task: None,
            },
        )
        .await?)
}

/// Whether a failed call of `action` may have taken effect anyway: it
/// timed out, was cut at its deadline or lost its connection, so the
/// request may have reached the BMC.
pub(super) fn is_uncertain(e: &CallError) -> bool {
    use crate::drivers::DriverErrorKind::{Timeout, Unreachable};
    match e {
        CallError::Driver { error, .. } => matches!(error.kind, Timeout | Unreachable),
        CallError::Deadline { .. } => true,
        _ => false,
    }
}

/// The state a power or boot action leaves a node in, as `interrogate_oob`
/// reports it: `("power_state", "on")`, `("boot_device", "pxe")`. `None`
/// for actions whose effect a read cannot tell (`power_cycle_node`: on
/// before and after).
fn target(action: Action, params: &ActionParams) -> Option<(&'static str, &'static str)> {
    use crate::model::BootDevice;
    match action {
        Action::PowerOnNode => Some(("power_state", "on")),
        Action::PowerOffNode => Some(("power_state", "off")),
        Action::ConfigNodePxe => Some(("boot_device", "pxe")),
        Action::SetNodeBoot => Some((
            "boot_device",
            match params.boot.unwrap_or_default().device {
                BootDevice::Pxe => "pxe",
                BootDevice::Disk => "disk",
                BootDevice::Cdrom => "cdrom",
                BootDevice::BiosSetup => "bios_setup",
            },
        )),
        _ => None,
    }
}

/// Reads back the state of `node` after an uncertain failure of `action`
/// (see [`is_uncertain`]) and says whether the action took effect: `Some`
/// with what the BMC reports when it did, `None` when it did not, the
/// action's effect cannot be read, or the read failed.
pub(super) async fn took_effect(
    shared: &Arc<Shared>,
    installed: &Installed,
    node: &model::Node,
    action: Action,
    params: &ActionParams,
    timeout: Duration,
) -> Option<String> {
    let (field, want) = target(action, params)?;
    let value = call_once(shared, installed, node, Action::InterrogateOob, timeout)
        .await
        .ok()?;
    let got = match field {
        "power_state" => value["power_state"].as_str(),
        _ => value["boot_override"]["device"].as_str(),
    };
    (got == Some(want)).then(|| format!("the BMC reports {field} {want}"))
}

/// A call error as a timeline shows it: its text with the node's
/// credentials and any URL user info or auth header masked, bounded.
pub(super) fn redacted(e: &CallError, secrets: &[String]) -> String {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    crate::fleet::redact(&e.to_string(), &secrets)
}
