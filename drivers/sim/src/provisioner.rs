//! A simulated Kubernetes provisioner (WIT 0.2.0 `provisioner`): each node's
//! labels in `labels/<node>` (a JSON object), replaced by `relabel_node`.

use drydock_sdk::prelude::*;
use std::collections::BTreeMap;

use crate::Sim;
use crate::chaos::begin;

impl ProvisionerDriver for Sim {
    fn relabel_node(ctx: &Ctx, node: &Node, labels: &[(String, String)]) -> Result<()> {
        begin(ctx, "relabel_node", &node.name)?;
        let labels: BTreeMap<&str, &str> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        ctx.kv_set_json(&format!("labels/{}", node.name), &labels)?;
        ctx.status(
            format!("{}: {} label(s) set", node.name, labels.len()),
            false,
        );
        Ok(())
    }
}
