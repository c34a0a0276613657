//! Drydock node filters, evaluated over the nodes the host knows.
//!
//! `{"filter_set_type": "union"|"intersection", "filter_set": [{"filter_type":
//! "union"|"intersection", "node_names": [...], "node_tags": [...],
//! "node_labels": {...}, "rack_names": [...], "rack_labels": {...}}]}`;
//! `null` (or no filter) selects every node. Within one filter, each given
//! criterion selects a set and `filter_type` combines those sets; the
//! filter set's sets are then combined by `filter_set_type`. A filter with no
//! criterion selects every node (as in Drydock).

use crate::model::Node;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// How sets are combined.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SetOp {
    /// Nodes in any set.
    #[default]
    Union,
    /// Nodes in every set.
    Intersection,
}

/// One filter of a filter set.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// How this filter's criteria combine.
    #[serde(default)]
    pub filter_type: SetOp,
    /// Node names.
    #[serde(default)]
    pub node_names: Option<Vec<String>>,
    /// Node tags (a node matches when it has any of them under union, all under intersection).
    #[serde(default)]
    pub node_tags: Option<Vec<String>>,
    /// Node labels (name → value).
    #[serde(default)]
    pub node_labels: Option<BTreeMap<String, String>>,
    /// Rack names.
    #[serde(default)]
    pub rack_names: Option<Vec<String>>,
    /// Rack labels (name → value); racks' labels come from the site design.
    #[serde(default)]
    pub rack_labels: Option<BTreeMap<String, String>>,
}

/// A Drydock node filter.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeFilter {
    /// How the filters combine.
    #[serde(default)]
    pub filter_set_type: SetOp,
    /// The filters.
    #[serde(default)]
    pub filter_set: Vec<Filter>,
}

impl NodeFilter {
    /// Parses a filter from JSON; `null` means every node (`None`).
    pub fn from_json(v: &Value) -> Result<Option<NodeFilter>, String> {
        if v.is_null() {
            return Ok(None);
        }
        serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| format!("invalid node_filter: {e}"))
    }
}

fn combine(op: SetOp, sets: Vec<BTreeSet<String>>, all: &BTreeSet<String>) -> BTreeSet<String> {
    let mut iter = sets.into_iter();
    let Some(first) = iter.next() else {
        return all.clone();
    };
    iter.fold(first, |acc, s| match op {
        SetOp::Union => acc.union(&s).cloned().collect(),
        SetOp::Intersection => acc.intersection(&s).cloned().collect(),
    })
}

/// The names of the nodes `filter` selects from `nodes` (sorted). Racks'
/// labels are given by `rack_labels` (rack name → labels).
pub fn select(
    nodes: &[Node],
    filter: Option<&NodeFilter>,
    rack_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<String> {
    let all: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let Some(filter) = filter else {
        return all.into_iter().collect();
    };
    let pick = |pred: &dyn Fn(&Node) -> bool| -> BTreeSet<String> {
        nodes
            .iter()
            .filter(|n| pred(n))
            .map(|n| n.name.clone())
            .collect()
    };
    let mut results = Vec::new();
    for f in &filter.filter_set {
        let op = f.filter_type;
        let mut sets = Vec::new();
        if let Some(names) = &f.node_names {
            sets.push(pick(&|n| names.contains(&n.name)));
        }
        if let Some(tags) = &f.node_tags {
            sets.push(pick(&|n| match op {
                SetOp::Union => tags.iter().any(|t| n.tags.contains(t)),
                SetOp::Intersection => tags.iter().all(|t| n.tags.contains(t)),
            }));
        }
        if let Some(labels) = &f.node_labels {
            sets.push(pick(&|n| label_match(op, labels, &n.labels)));
        }
        if let Some(racks) = &f.rack_names {
            sets.push(pick(&|n| {
                n.rack.as_ref().is_some_and(|r| racks.contains(r))
            }));
        }
        if let Some(labels) = &f.rack_labels {
            sets.push(pick(&|n| {
                n.rack
                    .as_ref()
                    .and_then(|r| rack_labels.get(r))
                    .is_some_and(|have| label_match(op, labels, have))
            }));
        }
        results.push(combine(op, sets, &all));
    }
    combine(filter.filter_set_type, results, &all)
        .into_iter()
        .collect()
}

fn label_match(
    op: SetOp,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) -> bool {
    let hit = |(k, v): (&String, &String)| have.get(k) == Some(v);
    match op {
        SetOp::Union => want.iter().any(hit),
        SetOp::Intersection => want.iter().all(hit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, tags: &[&str], labels: &[(&str, &str)], rack: &str) -> Node {
        Node {
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            rack: Some(rack.into()),
            ..Node::default()
        }
    }

    fn nodes() -> Vec<Node> {
        vec![
            node("a", &["compute"], &[("role", "worker")], "r1"),
            node("b", &["compute", "gpu"], &[("role", "worker")], "r2"),
            node("c", &["storage"], &[("role", "ceph")], "r1"),
        ]
    }

    fn sel(v: Value) -> Vec<String> {
        let f = NodeFilter::from_json(&v).unwrap();
        let mut racks = BTreeMap::new();
        racks.insert(
            "r2".to_string(),
            BTreeMap::from([("zone".to_string(), "east".to_string())]),
        );
        select(&nodes(), f.as_ref(), &racks)
    }

    #[test]
    fn null_selects_everything() {
        assert_eq!(sel(Value::Null), vec!["a", "b", "c"]);
        assert_eq!(
            sel(json!({"filter_set_type": "union", "filter_set": [{}]})),
            vec!["a", "b", "c"]
        );
    }

    #[test]
    fn criteria_and_set_types() {
        assert_eq!(
            sel(json!({"filter_set": [{"node_names": ["a", "c", "zz"]}]})),
            vec!["a", "c"]
        );
        assert_eq!(
            sel(json!({"filter_set": [{"node_tags": ["gpu", "storage"]}]})),
            vec!["b", "c"]
        );
        assert_eq!(
            sel(
                json!({"filter_set": [{"filter_type": "intersection", "node_tags": ["compute", "gpu"]}]})
            ),
            vec!["b"]
        );
        assert_eq!(
            sel(json!({"filter_set": [{"node_labels": {"role": "worker"}}]})),
            vec!["a", "b"]
        );
        assert_eq!(
            sel(json!({"filter_set": [{"rack_names": ["r1"]}]})),
            vec!["a", "c"]
        );
        assert_eq!(
            sel(json!({"filter_set": [{"rack_labels": {"zone": "east"}}]})),
            vec!["b"]
        );
        assert_eq!(
            sel(json!({"filter_set_type": "intersection", "filter_set": [
                {"rack_names": ["r1"]}, {"node_tags": ["compute"]}]})),
            vec!["a"]
        );
        assert_eq!(
            sel(json!({"filter_set_type": "union", "filter_set": [
                {"node_names": ["a"]}, {"node_tags": ["storage"]}]})),
            vec!["a", "c"]
        );
    }

    #[test]
    fn bad_filters_are_errors() {
        assert!(NodeFilter::from_json(&json!({"filter_set_type": "xor"})).is_err());
        assert!(NodeFilter::from_json(&json!({"filter_set": [{"node_nmes": ["a"]}]})).is_err());
        assert!(NodeFilter::from_json(&json!([1, 2])).is_err());
    }
}
