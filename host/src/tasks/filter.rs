//! Drydock node filters, evaluated over the nodes the host knows, as
//! Drydock's `Orchestrator.process_node_filter` evaluates them.
//!
//! `{"filter_set_type": "union"|"intersection", "filter_set": [{"filter_type":
//! "union"|"intersection", "node_names": [...], "node_tags": [...],
//! "node_labels": {...}, "rack_names": [...], "rack_labels": {...}}]}`.
//!
//! - `null` (or no filter) selects every node.
//! - A criterion that is missing, `null` or empty (`[]`, `{}`) is ignored:
//!   Shipyard sends every criterion, the unused ones empty.
//! - Each criterion that is given selects the nodes matching *any* of its
//!   values: `node_names` by name, `node_tags` by tag, `node_labels` by
//!   label (a node's `owner_data`) `name: value`, `rack_names` by the node's
//!   rack, `rack_labels` by a label of the node's rack.
//! - `filter_type: union` joins the criteria's selections (no criterion: no
//!   node); `intersection` keeps nodes in all of them (no criterion: no
//!   constraint, every node).
//! - `filter_set_type` joins the filters the same way; an empty
//!   `filter_set` selects no node.
//!
//! Where Drydock fails or guesses, this module decides: a missing
//! `filter_type` or `filter_set_type` is `union` (Drydock skips such a
//! filter or raises); a union over an unconstrained intersection filter is
//! every node (Drydock raises a `TypeError`); `rack_labels` really matches
//! the racks' labels (Drydock selects every node, "not yet implemented").
//! A filter that selects nothing is not an error: the task has nothing to
//! do.

use crate::model::Node;
use serde::{Deserialize, Deserializer};
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

/// `null` as the default (for fields Drydock's clients send as `null`).
fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One filter of a filter set. Unknown keys are ignored, as Drydock ignores
/// them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Filter {
    /// How this filter's criteria combine.
    #[serde(default, deserialize_with = "or_default")]
    pub filter_type: SetOp,
    /// Node names.
    #[serde(default, deserialize_with = "or_default")]
    pub node_names: Vec<String>,
    /// Node tags: nodes with any of them.
    #[serde(default, deserialize_with = "or_default")]
    pub node_tags: Vec<String>,
    /// Node labels (name → value): nodes with any of them.
    #[serde(default, deserialize_with = "or_default")]
    pub node_labels: BTreeMap<String, String>,
    /// Rack names.
    #[serde(default, deserialize_with = "or_default")]
    pub rack_names: Vec<String>,
    /// Rack labels (name → value): nodes in a rack with any of them; racks'
    /// labels come from the site design.
    #[serde(default, deserialize_with = "or_default")]
    pub rack_labels: BTreeMap<String, String>,
}

/// A Drydock node filter.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct NodeFilter {
    /// How the filters combine.
    #[serde(default, deserialize_with = "or_default")]
    pub filter_set_type: SetOp,
    /// The filters.
    #[serde(default, deserialize_with = "or_default")]
    pub filter_set: Vec<Filter>,
}

/// A node filter that is not one: its JSON does not have the shape above.
#[derive(Debug, thiserror::Error)]
#[error("invalid node_filter: {0}")]
pub struct FilterError(#[from] serde_json::Error);

impl NodeFilter {
    /// Parses a filter from JSON; `null` means every node (`None`).
    pub fn from_json(v: &Value) -> Result<Option<NodeFilter>, FilterError> {
        if v.is_null() {
            return Ok(None);
        }
        Ok(Some(NodeFilter::deserialize(v)?))
    }

    /// A filter selecting exactly `names` (what Shipyard's
    /// `gen_node_name_filter` sends).
    pub fn names(names: impl IntoIterator<Item = String>) -> NodeFilter {
        NodeFilter {
            filter_set_type: SetOp::Union,
            filter_set: vec![Filter {
                node_names: names.into_iter().collect(),
                ..Filter::default()
            }],
        }
    }
}

impl NodeFilter {
    /// Names that every node this filter can select is among, when the
    /// filter says so (each of its filters is bounded by its `node_names`,
    /// as Shipyard's name filters are): the scheduler then reads only those
    /// nodes instead of every registered one. `None`: any node may be
    /// selected. [`select`] over just these nodes selects what it selects
    /// over all of them.
    pub fn candidates(&self) -> Option<Vec<String>> {
        fn bound(f: &Filter) -> Option<BTreeSet<&String>> {
            let others = !f.node_tags.is_empty()
                || !f.rack_names.is_empty()
                || !f.node_labels.is_empty()
                || !f.rack_labels.is_empty();
            match f.filter_type {
                // A union of names only (none: selects nothing).
                SetOp::Union if !others => Some(f.node_names.iter().collect()),
                // An intersection with names is within them.
                SetOp::Intersection if !f.node_names.is_empty() => {
                    Some(f.node_names.iter().collect())
                }
                _ => None,
            }
        }
        let bounds = self.filter_set.iter().map(bound);
        let names: BTreeSet<&String> = match self.filter_set_type {
            SetOp::Union => {
                let mut acc = BTreeSet::new();
                for b in bounds {
                    acc.extend(b?);
                }
                acc
            }
            SetOp::Intersection => bounds.flatten().reduce(|a, b| &a & &b)?,
        };
        Some(names.into_iter().cloned().collect())
    }
}

/// A selection: `None` is "no constraint" (every node).
type Selection = Option<BTreeSet<String>>;

/// Joins selections as Drydock's `list_union` / `list_intersection` do,
/// with "no constraint" absorbing a union and ignored by an intersection.
/// No selection at all selects nothing.
fn join(op: SetOp, sets: Vec<Selection>) -> Selection {
    if sets.is_empty() {
        return Some(BTreeSet::new());
    }
    match op {
        SetOp::Union => {
            let mut acc = BTreeSet::new();
            for s in sets {
                acc.extend(s?);
            }
            Some(acc)
        }
        SetOp::Intersection => sets.into_iter().flatten().reduce(|a, b| &a & &b),
    }
}

/// The names of the nodes `filter` selects from `nodes` (sorted). Racks'
/// labels are given by `rack_labels` (rack name → labels).
pub fn select(
    nodes: &[Node],
    filter: Option<&NodeFilter>,
    rack_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<String> {
    let all = || nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
    let Some(filter) = filter else {
        let mut names = all();
        names.sort();
        names.dedup();
        return names;
    };
    let pick = |pred: &dyn Fn(&Node) -> bool| -> BTreeSet<String> {
        nodes
            .iter()
            .filter(|n| pred(n))
            .map(|n| n.name.clone())
            .collect()
    };
    let any_label = |want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| {
        want.iter().any(|(k, v)| have.get(k) == Some(v))
    };
    let results: Vec<Selection> = filter
        .filter_set
        .iter()
        .map(|f| {
            let mut sets: Vec<Selection> = Vec::new();
            if !f.node_names.is_empty() {
                sets.push(Some(pick(&|n| f.node_names.contains(&n.name))));
            }
            if !f.node_tags.is_empty() {
                sets.push(Some(pick(&|n| {
                    f.node_tags.iter().any(|t| n.tags.contains(t))
                })));
            }
            if !f.rack_names.is_empty() {
                sets.push(Some(pick(&|n| {
                    n.rack.as_ref().is_some_and(|r| f.rack_names.contains(r))
                })));
            }
            if !f.node_labels.is_empty() {
                sets.push(Some(pick(&|n| any_label(&f.node_labels, &n.labels))));
            }
            if !f.rack_labels.is_empty() {
                sets.push(Some(pick(&|n| {
                    n.rack
                        .as_ref()
                        .and_then(|r| rack_labels.get(r))
                        .is_some_and(|have| any_label(&f.rack_labels, have))
                })));
            }
            match (f.filter_type, sets.is_empty()) {
                // Drydock: an intersection of no criterion is no constraint.
                (SetOp::Intersection, true) => None,
                (op, _) => join(op, sets),
            }
        })
        .collect();
    match join(filter.filter_set_type, results) {
        Some(set) => set.into_iter().collect(),
        None => {
            let mut names = all();
            names.sort();
            names.dedup();
            names
        }
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

    /// Every filter below selects over its candidates what it selects over
    /// all nodes; name filters have candidates, others do not.
    #[test]
    fn candidates_bound_the_selection() {
        let racks = BTreeMap::from([(
            "r2".to_string(),
            BTreeMap::from([("zone".to_string(), "east".to_string())]),
        )]);
        let filters = [
            json!({"filter_set": [{"node_names": ["a", "c", "zz"]}]}),
            json!({"filter_set_type": "union", "filter_set": [
                {"filter_type": "union", "node_names": ["a"]},
                {"filter_type": "intersection", "node_names": ["b", "c"], "node_tags": ["gpu"]}]}),
            json!({"filter_set_type": "intersection", "filter_set": [
                {"filter_type": "union", "node_names": ["a", "b"]},
                {"filter_type": "union", "node_tags": ["compute"]}]}),
            json!({"filter_set_type": "intersection", "filter_set": [
                {"filter_type": "intersection", "node_names": ["a", "b", "c"],
                 "rack_labels": {"zone": "east"}}]}),
            json!({"filter_set": [{"filter_type": "union", "node_names": []}]}),
            json!({"filter_set": []}),
            // Unbounded: tags beside names in a union, no names at all.
            json!({"filter_set": [{"node_names": ["a"], "node_tags": ["storage"]}]}),
            json!({"filter_set": [{"filter_type": "intersection"}]}),
            json!({"filter_set_type": "intersection", "filter_set": []}),
        ];
        let bounded = [true, true, true, true, true, true, false, false, false];
        for (v, bounded) in filters.iter().zip(bounded) {
            let f = NodeFilter::from_json(v).unwrap().unwrap();
            let everything = select(&nodes(), Some(&f), &racks);
            match f.candidates() {
                Some(names) => {
                    assert!(bounded, "{v}: {names:?}");
                    let some: Vec<Node> = nodes()
                        .into_iter()
                        .filter(|n| names.contains(&n.name))
                        .collect();
                    assert_eq!(select(&some, Some(&f), &racks), everything, "{v}");
                }
                None => assert!(!bounded, "{v}"),
            }
        }
    }

    #[test]
    fn null_selects_everything() {
        assert_eq!(sel(Value::Null), vec!["a", "b", "c"]);
    }

    #[test]
    fn empty_and_missing_criteria_are_ignored() {
        // Shipyard's deployment-group lookup: every criterion sent, unused
        // ones empty, intersection inside.
        assert_eq!(
            sel(json!({"filter_set_type": "union", "filter_set": [
                {"filter_type": "intersection", "node_names": [], "node_tags": ["compute"],
                 "node_labels": {}, "rack_names": []}]})),
            vec!["a", "b"]
        );
        assert_eq!(
            sel(json!({"filter_set_type": "union", "filter_set": [
                {"filter_type": "intersection", "node_names": ["a", "c"], "node_tags": [],
                 "node_labels": {"role": "worker"}, "rack_names": [], "rack_labels": null}]})),
            vec!["a"]
        );
        // null criteria, unknown keys: ignored.
        assert_eq!(
            sel(
                json!({"filter_set": [{"filter_type": "union", "node_names": null,
                "node_tags": ["gpu"], "comment": "x"}], "extra": 1})
            ),
            vec!["b"]
        );
    }

    #[test]
    fn a_filter_without_criteria() {
        // Union of no criterion: nothing (Drydock's list_union of empty lists).
        assert!(
            sel(json!({"filter_set_type": "union", "filter_set": [
            {"filter_type": "union", "node_names": []}]}))
            .is_empty()
        );
        // Intersection of no criterion: no constraint.
        assert_eq!(
            sel(json!({"filter_set_type": "intersection", "filter_set": [
                {"filter_type": "intersection", "node_tags": []},
                {"filter_type": "union", "rack_names": ["r1"]}]})),
            vec!["a", "c"]
        );
        assert_eq!(
            sel(
                json!({"filter_set_type": "union", "filter_set": [{"filter_type": "intersection"}]})
            ),
            vec!["a", "b", "c"]
        );
        // No filter at all in the set: nothing.
        assert!(sel(json!({"filter_set_type": "union", "filter_set": []})).is_empty());
    }

    #[test]
    fn criteria_match_any_of_their_values() {
        assert_eq!(
            sel(json!({"filter_set": [{"node_names": ["a", "c", "zz"]}]})),
            vec!["a", "c"]
        );
        // Tags and labels match any value, whatever the filter type.
        assert_eq!(
            sel(json!({"filter_set": [{"filter_type": "intersection",
                "node_tags": ["gpu", "storage"]}]})),
            vec!["b", "c"]
        );
        assert_eq!(
            sel(json!({"filter_set": [{"filter_type": "intersection",
                "node_labels": {"role": "ceph", "zone": "nowhere"}}]})),
            vec!["c"]
        );
        assert_eq!(
            sel(json!({"filter_set": [{"rack_names": ["r1"]}]})),
            vec!["a", "c"]
        );
        assert_eq!(
            sel(json!({"filter_set": [{"rack_labels": {"zone": "east"}}]})),
            vec!["b"]
        );
    }

    #[test]
    fn union_and_intersection_at_both_levels() {
        let f = |inner: &str, outer: &str| {
            sel(json!({"filter_set_type": outer, "filter_set": [
                {"filter_type": inner, "node_tags": ["compute"], "rack_names": ["r1"]},
                {"filter_type": inner, "node_names": ["b", "c"]}]}))
        };
        // inner union: {a,b,c} and {b,c}; inner intersection: {a} and {b,c}.
        assert_eq!(f("union", "union"), vec!["a", "b", "c"]);
        assert_eq!(f("union", "intersection"), vec!["b", "c"]);
        assert_eq!(f("intersection", "union"), vec!["a", "b", "c"]);
        assert!(f("intersection", "intersection").is_empty());
    }

    #[test]
    fn shipyard_name_filter() {
        let f = serde_json::to_value(json!({"filter_set_type": "union", "filter_set": [
            {"filter_type": "union", "node_names": ["c"]}]}))
        .unwrap();
        assert_eq!(sel(f), vec!["c"]);
        assert_eq!(
            select(
                &nodes(),
                Some(&NodeFilter::names(["b".to_string()])),
                &BTreeMap::new()
            ),
            vec!["b"]
        );
    }

    #[test]
    fn bad_filters_are_errors() {
        assert!(NodeFilter::from_json(&json!({"filter_set_type": "xor"})).is_err());
        assert!(NodeFilter::from_json(&json!({"filter_set": [{"node_names": "a"}]})).is_err());
        assert!(NodeFilter::from_json(&json!([1, 2])).is_err());
    }
}
