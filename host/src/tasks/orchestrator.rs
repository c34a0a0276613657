//! Drydock's orchestrator actions as plans of driver-action steps.
//!
//! An orchestrator task (`prepare_nodes`...) runs its plan one step at a
//! time. Each step is a child task whose own children are per-node subtasks
//! (one site-wide subtask for site steps); a step targets the nodes an
//! earlier step left (normally the previous step's successes), so a node that
//! fails drops out of the rest of the flow while the others go on. Retries
//! follow Drydock (`configure_hardware`, `deploy_node`, `destroy_node`: up to
//! 3 attempts), and the network steps Drydock designed but never built run
//! around PXE boot and deploy for nodes cabled to a known switch port.

use crate::drivers::Action;
use crate::model::{BootDevice, BootTarget, Node};
use std::collections::{BTreeMap, BTreeSet};

/// The orchestrator actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orchestration {
    /// Ingest and validate the design only.
    ValidateDesign,
    /// Check the node bootstrapper.
    VerifySite,
    /// Networks, credentials and repositories on the bootstrapper.
    PrepareSite,
    /// Interrogate every node's BMC.
    VerifyNodes,
    /// Enlist and commission nodes.
    PrepareNodes,
    /// Configure and deploy the OS.
    DeployNodes,
    /// Release nodes.
    DestroyNodes,
    /// Set each node's Kubernetes labels from the design (provisioner
    /// driver, WIT 0.2.0).
    RelabelNodes,
}

impl Orchestration {
    /// Parses an action name.
    pub fn parse(name: &str) -> Option<Orchestration> {
        Some(match name {
            "validate_design" => Orchestration::ValidateDesign,
            "verify_site" => Orchestration::VerifySite,
            "prepare_site" => Orchestration::PrepareSite,
            "verify_nodes" => Orchestration::VerifyNodes,
            "prepare_nodes" => Orchestration::PrepareNodes,
            "deploy_nodes" => Orchestration::DeployNodes,
            "destroy_nodes" => Orchestration::DestroyNodes,
            "relabel_nodes" => Orchestration::RelabelNodes,
            _ => return None,
        })
    }

    /// Whether the action works on nodes (else on the site).
    pub fn is_node_scoped(self) -> bool {
        !matches!(
            self,
            Orchestration::ValidateDesign | Orchestration::VerifySite | Orchestration::PrepareSite
        )
    }
}

/// What a step does: a driver action per node (or for the site), or the
/// host's wait for boot action reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepAction {
    /// A driver action.
    Driver(Action),
    /// Wait until every signaling boot action the node received reports
    /// success (or one reports failure, or the step's deadline passes).
    /// No driver and no executor: the leader settles these from the
    /// reports nodes post to `/bootactions/{id}`.
    BootActionReport,
}

/// The task action name of the wait for boot action reports.
pub const BOOT_ACTION_REPORT: &str = "boot_action_report";

/// Subtask actions that wait for reports instead of calling a driver: a
/// restart or a takeover leaves them running (nothing to run again).
pub const WAITS: &[&str] = &[BOOT_ACTION_REPORT];

impl StepAction {
    /// The name its tasks carry.
    pub fn name(self) -> &'static str {
        match self {
            StepAction::Driver(a) => a.name(),
            StepAction::BootActionReport => BOOT_ACTION_REPORT,
        }
    }

    /// Whether it works per node (else once for the site).
    pub fn is_node_scoped(self) -> bool {
        match self {
            StepAction::Driver(a) => a.is_node_scoped(),
            StepAction::BootActionReport => true,
        }
    }
}

/// Which nodes a step acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// The nodes the task selected.
    Selected,
    /// Successes of step `i`.
    SuccessesOf(usize),
    /// Failures of step `i` (e.g. nodes the bootstrapper did not know).
    FailuresOf(usize),
    /// Successes of either step.
    SuccessesOfEither(usize, usize),
}

/// Which targeted nodes a step calls a driver for; the others pass through
/// as if the step had succeeded for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    /// Every targeted node.
    All,
    /// Nodes with an interface cabled to a switch port.
    WithSwitchPorts,
    /// Nodes this task handed signaling boot actions to.
    WithBootActions,
}

/// Parameters a step's driver calls get, from the design.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepParams {
    /// None.
    None,
    /// The site's networks.
    Site,
    /// Region SSH keys.
    SshKeys,
    /// Region repositories.
    Repositories,
    /// PXE boot, once.
    PxeBoot,
    /// Per node: the boot actions the design gives it, recorded with a
    /// fresh key, and cloud-init user data that fetches and runs them.
    BootActions,
}

/// One step of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// What it does.
    pub action: StepAction,
    /// Nodes it targets (ignored for site steps).
    pub targets: Targets,
    /// Which targeted nodes it runs on.
    pub only: Only,
    /// Attempts per node (0: the engine's default for retryable errors).
    pub attempts: i64,
    /// Parameters.
    pub params: StepParams,
    /// The step's failures are expected and not the task's errors (a probe).
    pub probe: bool,
    /// The wait for the bootstrapper to enlist a node after its PXE boot:
    /// retried until the engine's `enlist_timeout` (Drydock waits about
    /// ten minutes) rather than a number of attempts.
    pub enlist: bool,
}

const fn step(action: Action, targets: Targets) -> Step {
    Step {
        action: StepAction::Driver(action),
        targets,
        only: Only::All,
        attempts: 0,
        params: StepParams::None,
        probe: false,
        enlist: false,
    }
}

/// The plan of an orchestrator action (empty for `validate_design`).
pub fn plan(o: Orchestration) -> Vec<Step> {
    use Action::*;
    use Targets::*;
    match o {
        Orchestration::ValidateDesign => vec![],
        Orchestration::VerifySite => vec![step(ValidateNodeServices, Selected)],
        Orchestration::PrepareSite => vec![
            Step {
                params: StepParams::Site,
                ..step(CreateNetworkTemplate, Selected)
            },
            Step {
                params: StepParams::SshKeys,
                ..step(ConfigureUserCredentials, SuccessesOf(0))
            },
            Step {
                params: StepParams::Repositories,
                ..step(ConfigureNodeProvisioner, SuccessesOf(1))
            },
        ],
        Orchestration::VerifyNodes => vec![step(InterrogateOob, Selected)],
        Orchestration::PrepareNodes => vec![
            // 0: nodes the bootstrapper already knows skip the PXE boot.
            Step {
                attempts: 1,
                probe: true,
                ..step(IdentifyNode, Selected)
            },
            // 1: switch ports into the provisioning VLAN.
            Step {
                only: Only::WithSwitchPorts,
                ..step(ConfigPortProvisioning, FailuresOf(0))
            },
            // 2, 3: PXE boot.
            Step {
                params: StepParams::PxeBoot,
                ..step(SetNodeBoot, SuccessesOf(1))
            },
            step(PowerCycleNode, SuccessesOf(2)),
            // 4: wait for the bootstrapper to enlist the node.
            Step {
                enlist: true,
                ..step(IdentifyNode, SuccessesOf(3))
            },
            // 5: commission.
            Step {
                attempts: 3,
                ..step(ConfigureHardware, SuccessesOfEither(0, 4))
            },
        ],
        Orchestration::DeployNodes => vec![
            Step {
                params: StepParams::Site,
                ..step(ApplyNodeNetworking, Selected)
            },
            step(ApplyNodeStorage, SuccessesOf(0)),
            step(ApplyNodePlatform, SuccessesOf(1)),
            Step {
                attempts: 3,
                params: StepParams::BootActions,
                ..step(DeployNode, SuccessesOf(2))
            },
            Step {
                only: Only::WithSwitchPorts,
                ..step(ConfigPortProduction, SuccessesOf(3))
            },
            // 5: Drydock's wait for boot action reports.
            Step {
                action: StepAction::BootActionReport,
                only: Only::WithBootActions,
                ..step(DeployNode, SuccessesOf(4))
            },
        ],
        Orchestration::DestroyNodes => vec![Step {
            attempts: 3,
            ..step(DestroyNode, Selected)
        }],
        // Drydock's RelabelNodes: the provisioner sets each node's labels.
        Orchestration::RelabelNodes => vec![step(RelabelNode, Selected)],
    }
}

/// The outcome of a finished (or skipped) step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepResult {
    /// Nodes it succeeded for (plus those it passed through).
    pub successes: BTreeSet<String>,
    /// Nodes it failed for.
    pub failures: BTreeSet<String>,
}

impl Targets {
    /// The nodes targeted, given the selection and earlier results.
    pub fn resolve(
        self,
        selected: &BTreeSet<String>,
        results: &BTreeMap<usize, StepResult>,
    ) -> BTreeSet<String> {
        let get = |i: usize| results.get(&i).cloned().unwrap_or_default();
        match self {
            Targets::Selected => selected.clone(),
            Targets::SuccessesOf(i) => get(i).successes,
            Targets::FailuresOf(i) => get(i).failures,
            Targets::SuccessesOfEither(a, b) => {
                get(a).successes.union(&get(b).successes).cloned().collect()
            }
        }
    }
}

impl Only {
    /// Whether the step calls a driver for `node`.
    pub fn includes(self, node: &Node) -> bool {
        match self {
            Only::All => true,
            Only::WithSwitchPorts => node.interfaces.iter().any(|i| i.switch_port.is_some()),
            // Decided from the task's stored boot actions by the engine.
            Only::WithBootActions => true,
        }
    }
}

/// The PXE-once boot target.
pub fn pxe_once() -> BootTarget {
    BootTarget {
        device: BootDevice::Pxe,
        persistent: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_nodes_follows_drydock_order() {
        let p = plan(Orchestration::PrepareNodes);
        let actions: Vec<&str> = p.iter().map(|s| s.action.name()).collect();
        assert_eq!(
            actions,
            [
                "identify_node",
                "config_port_provisioning",
                "set_node_boot",
                "power_cycle_node",
                "identify_node",
                "configure_hardware"
            ]
        );
    }

    #[test]
    fn targets_resolve_from_earlier_steps() {
        let selected: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
        let mut results = BTreeMap::new();
        results.insert(
            0,
            StepResult {
                successes: ["a".to_string()].into(),
                failures: ["b".to_string(), "c".to_string()].into(),
            },
        );
        results.insert(
            4,
            StepResult {
                successes: ["b".to_string()].into(),
                failures: ["c".to_string()].into(),
            },
        );
        assert_eq!(Targets::FailuresOf(0).resolve(&selected, &results).len(), 2);
        let either = Targets::SuccessesOfEither(0, 4).resolve(&selected, &results);
        assert_eq!(either, ["a".to_string(), "b".to_string()].into());
    }
}
