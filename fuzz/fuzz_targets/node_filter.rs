//! Node filters (`POST /tasks`, `POST /nodefilter`, boot actions): parsing
//! and selection. The input is a filter, or `{"node_filter": F, "nodes":
//! [...], "rack_labels": {...}}` to choose the nodes too (else the sample
//! site's 24 nodes and its racks' labels). What is selected is a sorted
//! subset of the nodes without duplicates; no filter or an empty filter set
//! selects every node; the intersection of a filter set's filters is within
//! their union.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use drydock::model::Node;
use drydock::tasks::filter::{NodeFilter, SetOp, select};
use drydock_fuzz::sample_site;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;

type RackLabels = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithNodes {
    node_filter: Value,
    nodes: Vec<Node>,
    #[serde(default)]
    rack_labels: RackLabels,
}

fn site() -> &'static (Vec<Node>, RackLabels) {
    static SITE: OnceLock<(Vec<Node>, RackLabels)> = OnceLock::new();
    SITE.get_or_init(|| (sample_site().model_nodes(), sample_site().rack_labels()))
}

fn check(nodes: &[Node], filter: Option<&NodeFilter>, racks: &RackLabels) {
    let all: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let picked = select(nodes, filter, racks);
    assert!(
        picked.windows(2).all(|w| w[0] < w[1]),
        "sorted, no duplicates: {picked:?}"
    );
    assert!(picked.iter().all(|n| all.contains(n.as_str())));
    let Some(filter) = filter else {
        assert_eq!(picked.len(), all.len(), "no filter selects every node");
        return;
    };
    let with = |op| NodeFilter {
        filter_set_type: op,
        ..filter.clone()
    };
    let union: BTreeSet<String> = select(nodes, Some(&with(SetOp::Union)), racks)
        .into_iter()
        .collect();
    let intersection = select(nodes, Some(&with(SetOp::Intersection)), racks);
    assert!(
        intersection.iter().all(|n| union.contains(n)),
        "intersection {intersection:?} within union {union:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 << 10 {
        return;
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(w) = serde_json::from_value::<WithNodes>(value.clone()) {
        if let Ok(filter) = NodeFilter::from_json(&w.node_filter) {
            check(&w.nodes, filter.as_ref(), &w.rack_labels);
        }
        return;
    }
    if let Ok(filter) = NodeFilter::from_json(&value) {
        let (nodes, racks) = site();
        check(nodes, filter.as_ref(), racks);
    }
});
