//! Bounds on what one design may cost: bytes, documents, YAML values (alias
//! expansions included), host profile inheritance, time, and boot-action
//! templates (`[design_limits]` in the configuration).
//!
//! YAML aliases are expanded into values by the YAML reader, so a 20 KB
//! text of one anchor referenced thousands of times can grow into
//! gigabytes. [`read_yaml`] builds each document's value through a counting
//! visitor: every value produced (an alias's expansion value by value) is
//! taken from one budget, and reading stops as soon as it runs out, before
//! the values exist.

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use super::documents::YamlError;

/// `[design_limits]`: what one design may cost. Every limit is reported by
/// name when a design exceeds it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DesignLimits {
    /// Largest design text, and largest boot-action asset fetched, in bytes
    /// (default 16 MiB).
    pub max_bytes: usize,
    /// YAML documents in one design (default 10,000).
    pub max_documents: usize,
    /// YAML values (scalars, sequences and mappings, each alias counted as
    /// the values it expands to) in one design; the same budget bounds the
    /// values host profile inheritance produces (default 1,000,000).
    pub max_values: u64,
    /// Host profiles in one design (default 1,000).
    pub max_host_profiles: usize,
    /// Longest host profile inheritance chain, profiles counted (default 32).
    pub max_inheritance_depth: usize,
    /// Seconds parsing, and separately validating, one design may take
    /// (default 30).
    pub time_budget_secs: u64,
    /// Designs parsed or validated at once on this instance (default 2;
    /// others wait their turn within their time budget).
    pub max_concurrent: usize,
    /// Fuel of one boot-action template rendering (minijinja instructions,
    /// default 500,000).
    pub template_fuel: u64,
    /// Largest output of one boot-action template, in bytes (default 4 MiB).
    pub template_max_bytes: usize,
}

impl Default for DesignLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 20,
            max_documents: 10_000,
            max_values: 1_000_000,
            max_host_profiles: 1_000,
            max_inheritance_depth: 32,
            time_budget_secs: 30,
            max_concurrent: 2,
            template_fuel: 500_000,
            template_max_bytes: 4 << 20,
        }
    }
}

impl DesignLimits {
    /// The time budget of one parse or validation.
    pub fn time_budget(&self) -> Duration {
        Duration::from_secs(self.time_budget_secs.max(1))
    }
}

/// A design that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not YAML.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// The design exceeds one of [`DesignLimits`].
    #[error("the design {what} (limit {limit}, setting `design_limits.{setting}`)")]
    Limit {
        /// What was too much, e.g. "expands to more than 1000000 YAML values".
        what: String,
        /// The limit.
        limit: u64,
        /// The setting that raises it.
        setting: &'static str,
    },
}

impl ParseError {
    pub(crate) fn limit(what: impl Into<String>, limit: u64, setting: &'static str) -> Self {
        ParseError::Limit {
            what: what.into(),
            limit,
            setting,
        }
    }
}

/// Reads every document of a YAML stream as JSON values, taking each value
/// produced from a budget of `limits.max_values` and refusing more than
/// `limits.max_documents` documents or `limits.max_bytes` bytes.
pub fn read_yaml(text: &str, limits: &DesignLimits) -> Result<Vec<Value>, ParseError> {
    if text.len() > limits.max_bytes {
        return Err(ParseError::limit(
            format!("is {} bytes long", text.len()),
            limits.max_bytes as u64,
            "max_bytes",
        ));
    }
    let budget = Budget {
        left: Cell::new(limits.max_values),
        exceeded: Cell::new(false),
    };
    let mut out = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        if i >= limits.max_documents {
            return Err(ParseError::limit(
                format!("has more than {} YAML documents", limits.max_documents),
                limits.max_documents as u64,
                "max_documents",
            ));
        }
        match Counted(&budget).deserialize(de) {
            Ok(v) => out.push(v),
            Err(_) if budget.exceeded.get() => {
                return Err(ParseError::limit(
                    format!(
                        "expands to more than {} YAML values (aliases counted as what they expand to)",
                        limits.max_values
                    ),
                    limits.max_values,
                    "max_values",
                ));
            }
            Err(e) => {
                return Err(ParseError::Yaml(YamlError {
                    message: e.to_string(),
                    location: e.location().map(|l| (l.line(), l.column())),
                }));
            }
        }
    }
    Ok(out)
}

/// Values that may still be produced.
struct Budget {
    left: Cell<u64>,
    exceeded: Cell<bool>,
}

impl Budget {
    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("the design has too many YAML values"))
            }
        }
    }
}

/// A JSON value read from YAML, one budget unit per value.
struct Counted<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for Counted<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Value, E> {
        self.0.take()?;
        Ok(match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => Value::Number(i.into()),
            (_, Ok(u)) => Value::Number(u.into()),
            _ => Number::from_f64(v as f64).map_or(Value::Null, Value::Number),
        })
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        self.0.take()?;
        Ok(match u64::try_from(v) {
            Ok(u) => Value::Number(u.into()),
            Err(_) => Number::from_f64(v as f64).map_or(Value::Null, Value::Number),
        })
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.take()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::String(v))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::Null)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.0.take()?;
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Counted(self.0).deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Counted(self.0).deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.take()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Counted(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.take()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.0.take()?;
            let v = map.next_value_seed(Counted(self.0))?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_serde_and_counts_aliases_expanded() {
        let text = "a: &x [1, 2.5, true, ~, s]\nb: *x\n'3': {k: v}\n";
        let got = read_yaml(text, &DesignLimits::default()).unwrap();
        let want: Value = serde_yaml_ng::from_str(text).unwrap();
        assert_eq!(got, vec![want]);
        // 1 mapping + 3 keys + 2 sequences of 5 + 1 mapping with 1 key and 1 value.
        let exact = DesignLimits {
            max_values: 1 + 3 + 12 + 3,
            ..DesignLimits::default()
        };
        assert!(read_yaml(text, &exact).is_ok());
        let short = DesignLimits {
            max_values: 1 + 3 + 12 + 2,
            ..DesignLimits::default()
        };
        let err = read_yaml(text, &short).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::Limit {
                    setting: "max_values",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_expands() {
        // One anchor of 5,000 values referenced 1,000 times: 30 KB of text,
        // 5,000,000 values expanded.
        let text = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; 5_000].join(","),
            vec!["*a"; 1_000].join(",")
        );
        let err = read_yaml(&text, &DesignLimits::default()).unwrap_err();
        assert!(
            err.to_string().contains("design_limits.max_values"),
            "{err}"
        );
    }

    #[test]
    fn documents_and_bytes_are_capped() {
        let limits = DesignLimits {
            max_documents: 2,
            max_bytes: 64,
            ..DesignLimits::default()
        };
        let err = read_yaml("--- 1\n--- 2\n--- 3\n", &limits).unwrap_err();
        assert!(err.to_string().contains("max_documents"), "{err}");
        let err = read_yaml(&"x".repeat(65), &limits).unwrap_err();
        assert!(err.to_string().contains("max_bytes"), "{err}");
        let err = read_yaml("a: [1,\n", &limits).unwrap_err();
        assert!(matches!(err, ParseError::Yaml(_)), "{err}");
    }
}
