//! How Drydock's ingester reads values: the defaults it fills in and the
//! coercions its object fields make (`ingester/plugins/deckhand.py`,
//! `objects/*.py`).

use super::documents::{Bonding, Hugepages, NetworkSpec};
use serde_json::Value;

/// Drydock's DNS domain for networks that name none (and for nodes whose
/// primary network is not defined).
pub const DEFAULT_DOMAIN: &str = "local";

/// A link's bonding with Drydock's ingestion defaults applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EffectiveBonding {
    /// The mode (`disabled` when absent).
    pub mode: String,
    /// Transmit hash (802.3ad only).
    pub hash: Option<String>,
    /// LACP rate (802.3ad only).
    pub peer_rate: Option<String>,
    /// Monitoring interval (bonded modes only).
    pub mon_rate: Option<u32>,
    /// Up delay (bonded modes only).
    pub up_delay: Option<u32>,
    /// Down delay (bonded modes only).
    pub down_delay: Option<u32>,
}

impl Bonding {
    /// Drydock's ingestion of `bonding`: mode `disabled` by default; for
    /// `802.3ad`, `active-backup` and `balance-rr` the timers default to
    /// 100/200/200 ms; for `802.3ad` the hash defaults to `layer3+4` and the
    /// peer rate to `fast`. Other modes keep what the document says.
    pub fn effective(&self) -> EffectiveBonding {
        let mode = self.mode.clone().unwrap_or_else(|| "disabled".into());
        let bonded = matches!(mode.as_str(), "802.3ad" | "active-backup" | "balance-rr");
        let lacp = mode == "802.3ad";
        EffectiveBonding {
            hash: self
                .hash
                .clone()
                .or_else(|| lacp.then(|| "layer3+4".into())),
            peer_rate: self
                .peer_rate
                .clone()
                .or_else(|| lacp.then(|| "fast".into())),
            mon_rate: self.mon_rate.or(bonded.then_some(100)),
            up_delay: self.up_delay.or(bonded.then_some(200)),
            down_delay: self.down_delay.or(bonded.then_some(200)),
            mode,
        }
    }
}
impl NetworkSpec {
    /// The DNS domain, Drydock's default `local` when none is given.
    pub fn dns_domain(&self) -> String {
        self.dns
            .domain
            .clone()
            .unwrap_or_else(|| DEFAULT_DOMAIN.to_owned())
    }
}

impl Hugepages {
    /// The size as Drydock's string field holds it.
    pub fn size_text(&self) -> Option<String> {
        self.size.as_ref().and_then(scalar_text)
    }

    /// The count as Drydock's integer field holds it (`Err` names a value
    /// that is not a non-negative integer).
    pub fn count_value(&self) -> Result<Option<u64>, String> {
        match &self.count {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
            Some(other) => Err(format!(
                "hugepages count {other} is not a non-negative integer"
            )),
        }
    }
}

/// A scalar as Drydock's string fields coerce it (`true` is `True`, as in
/// Python); `None` for mappings, lists and null.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
