//! Host profile inheritance, resolved without recursion and within
//! [`DesignLimits`]: at most `max_host_profiles` profiles, chains at most
//! `max_inheritance_depth` long, and at most `max_values` values produced by
//! merging (profiles and nodes together). Cycles, missing parents and every
//! exceeded limit become one error naming the chain; profiles inheriting
//! from a broken one are left unresolved (nodes using them are reported as
//! unresolved references by validation).

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::documents::{DocRef, Kind, inherit};
use super::limits::DesignLimits;

/// Resolves profiles, then nodes over them, keeping the errors.
pub(super) struct Resolver<'l> {
    limits: &'l DesignLimits,
    values_left: u64,
    over_budget: bool,
    errors: Vec<(DocRef, String)>,
}

/// Where a profile stands after the depth pass.
#[derive(Clone, Copy)]
enum Depth {
    Ok(usize),
    Broken,
}

impl<'l> Resolver<'l> {
    pub(super) fn new(limits: &'l DesignLimits) -> Self {
        Resolver {
            limits,
            values_left: limits.max_values,
            over_budget: false,
            errors: Vec::new(),
        }
    }

    /// The errors found, one per broken chain or exceeded limit.
    pub(super) fn into_errors(self) -> Vec<(DocRef, String)> {
        self.errors
    }

    fn error(&mut self, profile: &str, message: String) {
        self.errors
            .push((DocRef::new(Kind::HostProfile, profile), message));
    }

    /// Every profile of `raw` (name → body) that resolves, inheritance
    /// applied.
    pub(super) fn profiles(&mut self, raw: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        let mut done = BTreeMap::new();
        if raw.len() > self.limits.max_host_profiles {
            let first = raw.keys().next().cloned().unwrap_or_default();
            self.error(
                &first,
                format!(
                    "the design has {} host profiles, more than design_limits.max_host_profiles ({}); none is resolved",
                    raw.len(),
                    self.limits.max_host_profiles
                ),
            );
            return done;
        }
        let parent = |name: &str| raw.get(name)?.get("host_profile")?.as_str();
        let depths = self.depths(raw, &parent);
        let max = self.limits.max_inheritance_depth;
        let mut order: Vec<(&str, usize)> = depths
            .iter()
            .filter_map(|(n, d)| match d {
                Depth::Ok(d) => Some((*n, *d)),
                Depth::Broken => None,
            })
            .collect();
        for &(name, d) in &order {
            if d == max + 1 {
                let mut chain = vec![name];
                while let Some(p) = parent(chain[chain.len() - 1]) {
                    chain.push(p);
                }
                self.error(
                    name,
                    format!(
                        "host profile `{name}` inherits through {} profiles, more than design_limits.max_inheritance_depth ({max}): {}; profiles inheriting from it are not resolved either",
                        chain.len(),
                        show_chain(&chain)
                    ),
                );
            }
        }
        // Parents before children.
        order.retain(|(_, d)| *d <= max);
        order.sort_by_key(|(n, d)| (*d, *n));
        for (name, _) in order {
            let data = &raw[name];
            let merged = match parent(name).and_then(|p| done.get(p)) {
                Some(p) => inherit(p, data),
                None => data.clone(),
            };
            if !self.charge(&merged, Kind::HostProfile, name) {
                break;
            }
            done.insert(name.to_owned(), merged);
        }
        done
    }

    /// Node `name`'s body merged over its profile's, or `None` once the
    /// value budget is spent (reported once).
    pub(super) fn node(&mut self, name: &str, parent: &Value, data: &Value) -> Option<Value> {
        if self.over_budget {
            return None;
        }
        let merged = inherit(parent, data);
        self.charge(&merged, Kind::BaremetalNode, name)
            .then_some(merged)
    }

    /// Takes `v`'s values from the budget; false (and one error) when it
    /// runs out.
    fn charge(&mut self, v: &Value, kind: Kind, name: &str) -> bool {
        let n = count_values(v);
        match self.values_left.checked_sub(n) {
            Some(left) => {
                self.values_left = left;
                true
            }
            None => {
                if !self.over_budget {
                    self.over_budget = true;
                    self.errors.push((
                        DocRef::new(kind, name),
                        format!(
                            "host profile inheritance produces more than design_limits.max_values ({}) values (reached at {} `{name}`); the rest of the design is not resolved",
                            self.limits.max_values,
                            kind.name()
                        ),
                    ));
                }
                false
            }
        }
    }

    /// Each profile's depth (1 for a profile inheriting from none), found
    /// by walking up each chain once with a list, never the stack. Cycles
    /// and missing parents are reported here.
    fn depths<'r>(
        &mut self,
        raw: &'r BTreeMap<String, Value>,
        parent: &dyn Fn(&str) -> Option<&'r str>,
    ) -> HashMap<&'r str, Depth> {
        let mut depth: HashMap<&str, Depth> = HashMap::with_capacity(raw.len());
        for start in raw.keys().map(String::as_str) {
            if depth.contains_key(start) {
                continue;
            }
            let mut chain = vec![start];
            let mut on_chain = HashSet::from([start]);
            // The depth above the chain's top, or None when the chain is broken.
            let base = loop {
                let top = chain[chain.len() - 1];
                let Some(p) = parent(top) else { break Some(0) };
                if let Some(d) = depth.get(p) {
                    break match d {
                        Depth::Ok(d) => Some(*d),
                        Depth::Broken => None,
                    };
                }
                if !raw.contains_key(p) {
                    self.error(top, format!("host profile `{p}` does not exist"));
                    break None;
                }
                if !on_chain.insert(p) {
                    let from = chain.iter().position(|c| *c == p).unwrap_or(0);
                    let mut cycle = chain[from..].to_vec();
                    cycle.push(p);
                    self.error(
                        p,
                        format!("host profile inheritance cycle: {}", show_chain(&cycle)),
                    );
                    break None;
                }
                chain.push(p);
            };
            for (i, name) in chain.iter().enumerate() {
                let d = match base {
                    Some(b) => Depth::Ok(b + chain.len() - i),
                    None => Depth::Broken,
                };
                depth.insert(name, d);
            }
        }
        depth
    }
}

/// `a -> b -> c`, the middle left out of long chains.
fn show_chain(chain: &[&str]) -> String {
    const HEAD: usize = 5;
    const TAIL: usize = 3;
    if chain.len() <= HEAD + TAIL + 1 {
        return chain.join(" -> ");
    }
    format!(
        "{} -> ... ({} more) ... -> {}",
        chain[..HEAD].join(" -> "),
        chain.len() - HEAD - TAIL,
        chain[chain.len() - TAIL..].join(" -> ")
    )
}

/// How many values `v` holds (itself included), without recursion.
fn count_values(v: &Value) -> u64 {
    let mut n = 0u64;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        n += 1;
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(m) => {
                n += m.len() as u64;
                stack.extend(m.values());
            }
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: usize) -> BTreeMap<String, Value> {
        (0..n)
            .map(|i| {
                let body = if i == 0 {
                    json!({"metadata": {"tags": ["base"]}})
                } else {
                    json!({"host_profile": format!("p{}", i - 1), "metadata": {"tags": [format!("t{i}")]}})
                };
                (format!("p{i}"), body)
            })
            .collect()
    }

    #[test]
    fn a_long_chain_is_one_error_naming_it_and_the_stack_is_never_used() {
        let limits = DesignLimits {
            max_host_profiles: 100_000,
            ..DesignLimits::default()
        };
        let mut r = Resolver::new(&limits);
        let done = r.profiles(&chain(50_000));
        assert_eq!(done.len(), 32);
        assert_eq!(
            done["p31"]["metadata"]["tags"].as_array().unwrap().len(),
            32
        );
        let errors = r.into_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0.name, "p32");
        let msg = &errors[0].1;
        assert!(
            msg.contains("max_inheritance_depth (32)")
                && msg.contains("p32 -> p31 -> p30")
                && msg.contains("-> p0"),
            "{msg}"
        );
    }

    #[test]
    fn cycles_missing_parents_and_counts_are_errors() {
        let limits = DesignLimits::default();
        let raw: BTreeMap<String, Value> = [
            ("a", json!({"host_profile": "b"})),
            ("b", json!({"host_profile": "c"})),
            ("c", json!({"host_profile": "a"})),
            ("d", json!({"host_profile": "a"})),
            ("e", json!({"host_profile": "nowhere"})),
            ("f", json!({})),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut r = Resolver::new(&limits);
        let done = r.profiles(&raw);
        assert_eq!(done.keys().collect::<Vec<_>>(), ["f"]);
        let errors: Vec<String> = r.into_errors().into_iter().map(|e| e.1).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("cycle: a -> b -> c -> a")));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`nowhere` does not exist"))
        );

        let few = DesignLimits {
            max_host_profiles: 5,
            ..DesignLimits::default()
        };
        let mut r = Resolver::new(&few);
        assert!(r.profiles(&raw).is_empty());
        assert!(r.into_errors()[0].1.contains("max_host_profiles (5)"));
    }

    #[test]
    fn values_produced_by_inheritance_are_budgeted() {
        let limits = DesignLimits {
            max_values: 1_000,
            ..DesignLimits::default()
        };
        let big: Vec<Value> = (0..300).map(|i| json!(i)).collect();
        let raw: BTreeMap<String, Value> =
            [("base".to_owned(), json!({ "metadata": {"tags": big} }))].into();
        let mut r = Resolver::new(&limits);
        let done = r.profiles(&raw);
        let base = &done["base"];
        let mut merged = 0;
        while r.node(&format!("n{merged}"), base, &json!({})).is_some() {
            merged += 1;
        }
        assert_eq!(merged, 2);
        let errors = r.into_errors();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].1.contains("max_values (1000)"), "{errors:?}");
    }
}
