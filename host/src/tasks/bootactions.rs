//! Boot actions in a deployment: handing each deployed node its boot
//! actions (recorded with a fresh per-node key, delivered as cloud-init
//! user data) and settling the `boot_action_report` waits from the reports
//! nodes send. The node-facing API is in `api/bootactions.rs`.

use super::engine::EngineError;
use super::orchestrator;
use super::shared::Shared;
use crate::design::Design;
use crate::store::{ResultStatus, TaskRecord, TaskStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// What a `boot_action_report` wait records: the orchestrator task whose
/// boot actions it waits for.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct WaitParams {
    task: Uuid,
}

/// The params of a wait for the boot action reports of orchestrator `task`.
pub(super) fn wait_params(task: Uuid) -> serde_json::Value {
    serde_json::to_value(WaitParams { task }).unwrap_or_default()
}

/// Records the boot actions the design gives each of `nodes`, with a fresh
/// key per node, and returns each such node's `deploy_node` parameters:
/// cloud-init user data that installs the packages of its `pkg_list`
/// assets, fetches its files and units from the boot action API with the
/// key, and enables the units.
pub(super) async fn hand_out(
    shared: &Shared,
    t: &TaskRecord,
    design: &Design,
    nodes: &BTreeSet<String>,
) -> Result<BTreeMap<String, serde_json::Value>, EngineError> {
    use crate::design::bootaction::{ActionContext, AssetType, render_with};
    let actions = match design.boot_actions() {
        Ok(a) => a,
        Err(e) => {
            // Validation refuses such a design before any step; say so
            // anyway rather than deploy without them silently.
            shared
                .message(
                    t.id,
                    None,
                    format!("boot actions not handed out: {e}"),
                    true,
                )
                .await;
            return Ok(BTreeMap::new());
        }
    };
    if actions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let targets: Vec<_> = actions
        .iter()
        .zip(design.boot_action_nodes(&actions))
        .collect();
    let design_ref = t.design_ref.clone().unwrap_or_default();
    let url = shared.cfg.boot_action_url.clone();
    let fetch = |r: String| async move {
        shared
            .designs
            .fetch_bytes(&r)
            .await
            .map_err(|e| e.to_string())
    };
    let mut records = Vec::new();
    let mut out = BTreeMap::new();
    for node in nodes {
        let mine: Vec<_> = targets
            .iter()
            .filter(|(_, n)| n.contains(node))
            .map(|(a, _)| *a)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let key = crate::store::bootactions::new_key();
        let context = design.template_node(node);
        let mut packages = BTreeSet::new();
        let mut units = BTreeSet::new();
        for a in &mine {
            let action_id = Uuid::new_v4().simple().to_string();
            let ctx = ActionContext {
                action_id: action_id.clone(),
                action_key: key.clone(),
                report_url: url.clone(),
                design_ref: design_ref.clone(),
            };
            let limits = shared.designs.limits();
            match render_with(a, Some(AssetType::PkgList), &context, &ctx, &fetch, limits).await {
                Ok(lists) => {
                    for (name, version) in lists.into_iter().flat_map(|l| l.packages) {
                        packages.insert(match version {
                            Some(v) => format!("{name}={v}"),
                            None => name,
                        });
                    }
                }
                Err(e) => shared.message(t.id, Some(node), e.to_string(), true).await,
            }
            units.extend(
                a.assets
                    .iter()
                    .filter(|x| x.asset_type == AssetType::Unit)
                    .filter_map(|x| x.path.as_deref())
                    .filter_map(|p| p.rsplit('/').next())
                    .map(str::to_owned),
            );
            records.push(crate::store::NewBootAction {
                action_id,
                task_id: t.id,
                node_name: node.clone(),
                name: a.name.clone(),
                signaling: a.signaling,
                key_hash: crate::store::bootactions::key_hash(&key),
                design_ref: design_ref.clone(),
            });
        }
        let user_data = first_boot_user_data(&url, node, &key, &units, &packages);
        out.insert(node.clone(), serde_json::json!({ "user_data": user_data }));
    }
    shared.store.insert_boot_actions(&records).await?;
    let n = out.len();
    shared
        .message(
            t.id,
            None,
            format!("boot actions handed out to {n} node(s)"),
            false,
        )
        .await;
    Ok(out)
}

/// Settles the waits for boot action reports (leader only): a node's wait
/// succeeds once every signaling boot action it received reported success,
/// fails at the first reported failure, and fails at its deadline naming the
/// boot actions that never reported. The steps of settled waits go to the
/// settler.
pub(super) async fn settle_waits(shared: &Shared) {
    use crate::store::bootactions::{FAILURE, SUCCESS};
    let store = &shared.store;
    let waits = match store
        .running_with_action(orchestrator::BOOT_ACTION_REPORT)
        .await
    {
        Ok(w) => w,
        Err(e) => {
            tracing::debug!(error = %e, "reading the boot action waits failed");
            return;
        }
    };
    let mut reports: HashMap<Uuid, Vec<crate::store::BootActionRecord>> = HashMap::new();
    let mut parents = Vec::new();
    for w in waits {
        let Ok(WaitParams { task }) = serde_json::from_value(w.params.clone()) else {
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(e) = reports.entry(task) {
            match store.boot_actions_for_task(task).await {
                Ok(r) => {
                    e.insert(r);
                }
                Err(_) => continue,
            }
        }
        let mine: Vec<&crate::store::BootActionRecord> = reports[&task]
            .iter()
            .filter(|b| b.signaling && Some(&b.node_name) == w.node_name.as_ref())
            .collect();
        let names = |status: &str| -> Vec<&str> {
            mine.iter()
                .filter(|b| b.status == status)
                .map(|b| b.name.as_str())
                .collect()
        };
        let failed = names(FAILURE);
        let pending: Vec<&str> = mine
            .iter()
            .filter(|b| b.status != SUCCESS && b.status != FAILURE)
            .map(|b| b.name.as_str())
            .collect();
        let overdue = w.deadline.is_some_and(|d| d < chrono::Utc::now());
        let mut status = TaskStatus::Complete;
        let (result, message) = if w.terminate {
            status = TaskStatus::Terminated;
            (ResultStatus::Failure, "cancelled".to_owned())
        } else if !failed.is_empty() {
            (
                ResultStatus::Failure,
                format!("boot action(s) {} reported failure", failed.join(", ")),
            )
        } else if pending.is_empty() {
            (
                ResultStatus::Success,
                format!(
                    "boot action(s) {} reported success",
                    names(SUCCESS).join(", ")
                ),
            )
        } else if overdue {
            (
                ResultStatus::Failure,
                format!(
                    "no final report from boot action(s) {} by the deadline",
                    pending.join(", ")
                ),
            )
        } else {
            continue;
        };
        match store
            .settle_wait(
                &w,
                shared.instance_id(),
                shared.epoch(),
                (status, result),
                &message,
            )
            .await
        {
            Ok(true) => {
                let error = result != ResultStatus::Success;
                shared
                    .message(w.id, w.node_name.as_deref(), message, error)
                    .await;
                parents.extend(w.parent_id);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(task.id = %w.id, error = %e, "could not settle a boot action wait")
            }
        }
    }
    parents.sort();
    parents.dedup();
    shared.settle(parents);
}

/// Cloud-init user data for a node's first boot: install `packages`, fetch
/// the node's files and units from the boot action API at `url` with `key`
/// (unpacked at `/`), then enable and start `units`.
pub fn first_boot_user_data(
    url: &str,
    node: &str,
    key: &str,
    units: &BTreeSet<String>,
    packages: &BTreeSet<String>,
) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r#"'\''"#));
    let mut script = format!(
        "set -e; u={}; k={}; for t in files units; do \
         curl -fsS --retry 5 -H \"X-Bootaction-Key: $k\" \"${{u}}nodes/{node}/$t\" | tar -xzf - -C /; \
         done; systemctl daemon-reload",
        quote(url),
        quote(key)
    );
    if !units.is_empty() {
        let names: Vec<String> = units.iter().map(|u| quote(u)).collect();
        script.push_str(&format!("; systemctl enable --now {}", names.join(" ")));
    }
    let mut doc = serde_json::json!({ "runcmd": [["/bin/sh", "-c", script]] });
    if !packages.is_empty() {
        doc["packages"] = serde_json::json!(packages);
    }
    let yaml = serde_yaml_ng::to_string(&doc).unwrap_or_default();
    format!("#cloud-config\n{yaml}")
}
