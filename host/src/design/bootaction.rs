//! Boot actions: files, systemd units and packages a deployed node receives
//! at first boot, from Drydock's `BootAction` documents.
//!
//! A boot action selects its nodes with a node filter and lists assets. Each
//! asset's bytes come from `data` (or a `location` fetched like a design
//! reference) and go through a pipeline of segments — `base64_decode`,
//! `base64_encode`, `utf8_decode`, `utf8_encode` and `template` (Jinja, with
//! Drydock's context: `node.hostname`, `node.domain`, `node.tags`,
//! `node.labels`, `node.network.<name>.{ip,cidr,dns_suffix}` and
//! `node.network.default`, `node.interfaces`; `action.action_id`,
//! `action.action_key`, `action.report_url`, `action.design_ref`).
//! `pkg_list` assets name packages (a mapping of name to version or null).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Design;
use super::documents::{Document, Kind, YamlError};
use super::limits::{DesignLimits, ParseError, read_yaml};
use crate::tasks::filter::{NodeFilter, select};

/// The kind of an asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetType {
    /// A systemd unit, enabled and started at first boot.
    Unit,
    /// A file.
    File,
    /// Packages to install.
    PkgList,
}

/// One asset of a boot action, as the design states it.
#[derive(Clone, Debug, Deserialize)]
pub struct Asset {
    /// Its kind.
    #[serde(rename = "type")]
    pub asset_type: AssetType,
    /// Where it goes on the node (units and files).
    #[serde(default)]
    pub path: Option<String>,
    /// Where to fetch its bytes (`file:` in the design directory, http(s)).
    #[serde(default)]
    pub location: Option<String>,
    /// Its bytes inline (a string), or for `pkg_list` a mapping.
    #[serde(default)]
    pub data: Option<Value>,
    /// Segments applied to `location` before fetching.
    #[serde(default)]
    pub location_pipeline: Vec<String>,
    /// Segments applied to the bytes.
    #[serde(default)]
    pub data_pipeline: Vec<String>,
    /// Octal permissions, e.g. `"555"` (default `600`).
    #[serde(default)]
    pub permissions: Option<Value>,
}

/// A `BootAction` document.
#[derive(Clone, Debug)]
pub struct BootAction {
    /// Its name.
    pub name: String,
    /// Whether the node reports the outcome (Drydock's `signaling`, default
    /// true) and deploy_nodes waits for it.
    pub signaling: bool,
    /// Which nodes it applies to (none: every node).
    pub node_filter: Option<NodeFilter>,
    /// Its assets.
    pub assets: Vec<Asset>,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default, alias = "signaled")]
    signaling: Option<bool>,
    #[serde(default)]
    node_filter: Option<Value>,
    #[serde(default)]
    assets: Vec<Asset>,
}

/// What the `action` part of a template's context holds.
#[derive(Clone, Debug)]
pub struct ActionContext {
    /// The boot action's id on this node.
    pub action_id: String,
    /// The node's key (hex) for the boot action API.
    pub action_key: String,
    /// Where the node reports (`.../api/v1.0/bootactions/`).
    pub report_url: String,
    /// The design the deployment used.
    pub design_ref: String,
}

/// An asset ready for the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Its kind.
    pub asset_type: AssetType,
    /// Path on the node (empty for `pkg_list`).
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Its bytes (empty for `pkg_list`).
    pub bytes: Vec<u8>,
    /// Packages (`pkg_list` only): name → version (None: any).
    pub packages: BTreeMap<String, Option<String>>,
}

/// Why a boot action could not be read or rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootActionError {
    /// The document itself is wrong.
    #[error("boot action {0}: {1}")]
    Invalid(String, String),
    /// A pipeline segment failed.
    #[error("boot action {action}, asset {asset}: {message}")]
    Render {
        /// The boot action.
        action: String,
        /// The asset's path (or index).
        asset: String,
        /// What failed.
        message: String,
    },
}

/// The pipeline segments Drydock knows.
pub const SEGMENTS: &[&str] = &[
    "base64_decode",
    "base64_encode",
    "utf8_decode",
    "utf8_encode",
    "template",
];

impl Design {
    /// The design's boot actions, in document order; a malformed one is an
    /// error naming it (validation reports the same).
    pub fn boot_actions(&self) -> Result<Vec<BootAction>, BootActionError> {
        self.documents
            .iter()
            .filter(|d| d.kind == Kind::BootAction)
            .map(read)
            .collect()
    }

    /// The nodes each of `actions` applies to, in the same order.
    pub fn boot_action_nodes(&self, actions: &[BootAction]) -> Vec<BTreeSet<String>> {
        let (nodes, racks) = (self.model_nodes(), self.rack_labels());
        actions
            .iter()
            .map(|a| {
                select(&nodes, a.node_filter.as_ref(), &racks)
                    .into_iter()
                    .collect()
            })
            .collect()
    }

    /// The `node` part of a template's context for node `name`.
    pub fn template_node(&self, name: &str) -> Value {
        let Some(node) = self.nodes.get(name) else {
            return json!({ "hostname": name });
        };
        let mut network = serde_json::Map::new();
        for a in &node.addressing {
            let Some(ip) = a.address.as_deref().filter(|ip| *ip != "dhcp") else {
                continue;
            };
            let net = self.networks.get(&a.network);
            let entry = json!({
                "ip": ip,
                "cidr": net.map(|n| n.cidr.clone()),
                "dns_suffix": net.and_then(|n| n.dns.domain.clone()),
            });
            if node.primary_network.as_deref() == Some(a.network.as_str()) {
                network.insert("default".into(), entry.clone());
            }
            network.insert(a.network.clone(), entry);
        }
        let domain = node
            .primary_network
            .as_ref()
            .and_then(|p| self.networks.get(p))
            .and_then(|n| n.dns.domain.clone());
        let interfaces: serde_json::Map<String, Value> = node
            .interfaces
            .keys()
            .map(|i| (i.clone(), json!({ "sriov": false })))
            .collect();
        json!({
            "hostname": name,
            "domain": domain,
            "tags": node.metadata.tags,
            "labels": node.metadata.owner_data,
            "network": network,
            "interfaces": interfaces,
        })
    }
}

/// Reads one `BootAction` document, checking its node filter and assets.
pub fn read(d: &Document) -> Result<BootAction, BootActionError> {
    let bad = |m: String| BootActionError::Invalid(d.name.clone(), m);
    let spec: Spec = serde_json::from_value(d.data.clone()).map_err(|e| bad(format!("{e}")))?;
    let node_filter = match &spec.node_filter {
        Some(v) => NodeFilter::from_json(v).map_err(|e| bad(format!("node_filter: {e}")))?,
        None => None,
    };
    for (i, a) in spec.assets.iter().enumerate() {
        check_asset(a).map_err(|m| bad(format!("asset {}: {m}", i + 1)))?;
    }
    Ok(BootAction {
        name: d.name.clone(),
        signaling: spec.signaling.unwrap_or(true),
        node_filter,
        assets: spec.assets,
    })
}

/// Checks what can be checked without rendering: paths, permissions,
/// segment names, templates' syntax, package lists.
pub fn check_asset(a: &Asset) -> Result<(), String> {
    for s in a.data_pipeline.iter().chain(&a.location_pipeline) {
        if !SEGMENTS.contains(&s.as_str()) {
            return Err(format!(
                "unknown pipeline segment `{s}` (known: {})",
                SEGMENTS.join(", ")
            ));
        }
    }
    mode(a)?;
    match a.asset_type {
        AssetType::Unit | AssetType::File => {
            let path = a.path.as_deref().unwrap_or("");
            if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
                return Err(format!("path `{path}` must be absolute, without `..`"));
            }
            if a.asset_type == AssetType::Unit
                && !path.rsplit('/').next().unwrap_or("").contains('.')
            {
                return Err(format!(
                    "unit path `{path}` must name a unit file (e.g. x.service)"
                ));
            }
            match (&a.data, &a.location) {
                (Some(Value::String(_)), None) | (None, Some(_)) => {}
                (Some(_), None) => return Err("data must be a string".into()),
                _ => return Err("give either data or location".into()),
            }
        }
        AssetType::PkgList => match (&a.data, &a.location) {
            (Some(Value::Object(m)), None) => {
                package_list(m)?;
            }
            (None, Some(_)) => {}
            _ => return Err("a pkg_list needs data (a mapping) or a location".into()),
        },
    }
    if let Some(Value::String(text)) = &a.data
        && a.data_pipeline.first().map(String::as_str) == Some("template")
    {
        super::template::check(text, &DesignLimits::default())
            .map_err(|e| format!("template: {e}"))?;
    }
    Ok(())
}

fn mode(a: &Asset) -> Result<u32, String> {
    match &a.permissions {
        None => Ok(0o600),
        Some(Value::String(s)) => u32::from_str_radix(s.trim(), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| format!("permissions `{s}` are not octal (e.g. '644')")),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::from_str_radix(&n.to_string(), 8).ok())
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| format!("permissions `{n}` are not octal (e.g. '644')")),
        Some(other) => Err(format!("permissions `{other}` are not octal")),
    }
}

fn package_list(
    m: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, Option<String>>, String> {
    m.iter()
        .map(|(k, v)| match v {
            Value::Null => Ok((k.clone(), None)),
            Value::String(s) => Ok((k.clone(), Some(s.clone()))),
            other => Err(format!(
                "package {k}: version `{other}` must be a string or null"
            )),
        })
        .collect()
}

/// Data moving through a pipeline.
enum Data {
    Bytes(Vec<u8>),
    Text(String),
}

impl Data {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Data::Bytes(b) => b,
            Data::Text(t) => t.into_bytes(),
        }
    }

    fn into_text(self) -> Result<String, String> {
        match self {
            Data::Text(t) => Ok(t),
            Data::Bytes(b) => String::from_utf8(b).map_err(|_| "the data is not UTF-8".into()),
        }
    }
}

/// Runs `segments` over `data` on the blocking pool, within the design
/// time budget.
async fn run_pipeline_off_workers(
    data: Data,
    segments: &[String],
    ctx: &Value,
    limits: &DesignLimits,
    strict: bool,
) -> Result<Data, String> {
    if segments.is_empty() {
        return Ok(data);
    }
    let (segments, ctx, l) = (segments.to_vec(), ctx.clone(), limits.clone());
    let work = tokio::task::spawn_blocking(move || run_pipeline(data, &segments, &ctx, &l, strict));
    match tokio::time::timeout(limits.time_budget(), work).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("the pipeline failed unexpectedly".into()),
        Err(_) => Err(format!(
            "the pipeline took longer than {} s (design_limits.time_budget_secs)",
            limits.time_budget().as_secs()
        )),
    }
}

fn run_pipeline(
    data: Data,
    segments: &[String],
    ctx: &Value,
    limits: &DesignLimits,
    strict: bool,
) -> Result<Data, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    segments.iter().try_fold(data, |data, s| {
        Ok(match s.as_str() {
            "base64_decode" => {
                let raw = data.into_bytes();
                let clean: Vec<u8> = raw
                    .into_iter()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                Data::Bytes(
                    b64.decode(clean)
                        .map_err(|e| format!("base64_decode: {e}"))?,
                )
            }
            "base64_encode" => {
                let raw = data.into_bytes();
                if raw.len() / 3 * 4 > limits.max_bytes {
                    return Err(format!(
                        "base64_encode: the output would be larger than {} bytes (design_limits.max_bytes)",
                        limits.max_bytes
                    ));
                }
                Data::Bytes(b64.encode(raw).into_bytes())
            }
            "utf8_decode" => Data::Text(data.into_text().map_err(|e| format!("utf8_decode: {e}"))?),
            "utf8_encode" => Data::Bytes(data.into_bytes()),
            "template" => {
                let text = data.into_text().map_err(|e| format!("template: {e}"))?;
                Data::Text(super::template::render(&text, ctx, limits, strict)?)
            }
            other => return Err(format!("unknown pipeline segment `{other}`")),
        })
    })
}

/// [`render_with`] within the default [`DesignLimits`].
pub async fn render<F, Fut>(
    action: &BootAction,
    only: Option<AssetType>,
    node: &Value,
    ctx: &ActionContext,
    fetch: F,
) -> Result<Vec<Rendered>, BootActionError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, String>>,
{
    render_with(action, only, node, ctx, fetch, &DesignLimits::default()).await
}

/// Renders `action`'s assets of type `only` (all when `None`) for a node
/// whose template context `node` is (see [`Design::template_node`]).
/// `fetch` reads a `location` (a design reference). Pipelines run on the
/// blocking pool; templates within `limits` (fuel, output size). The
/// context a `location` is built from has no `action.action_key` (the
/// node's key never leaves in a URL): naming it there is an error.
pub async fn render_with<F, Fut>(
    action: &BootAction,
    only: Option<AssetType>,
    node: &Value,
    ctx: &ActionContext,
    fetch: F,
    limits: &DesignLimits,
) -> Result<Vec<Rendered>, BootActionError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, String>>,
{
    let mut context = json!({
        "node": node,
        "action": {
            "action_id": ctx.action_id,
            "report_url": ctx.report_url,
            "design_ref": ctx.design_ref,
        },
    });
    let location_context = context.clone();
    context["action"]["action_key"] = json!(ctx.action_key);
    let mut out = Vec::new();
    for (i, a) in action.assets.iter().enumerate() {
        if only.is_some_and(|t| t != a.asset_type) {
            continue;
        }
        let err = |message: String| BootActionError::Render {
            action: action.name.clone(),
            asset: a.path.clone().unwrap_or_else(|| format!("#{}", i + 1)),
            message,
        };
        check_asset(a).map_err(err)?;
        let fetched = match &a.location {
            Some(location) => {
                let url = run_pipeline_off_workers(
                    Data::Text(location.clone()),
                    &a.location_pipeline,
                    &location_context,
                    limits,
                    true,
                )
                .await
                .and_then(Data::into_text)
                .map_err(err)?;
                Some(
                    fetch(url.clone())
                        .await
                        .map_err(|e| err(format!("location {url}: {e}")))?,
                )
            }
            None => None,
        };
        let mode = mode(a).map_err(err)?;
        if a.asset_type == AssetType::PkgList {
            let packages = match (fetched, &a.data) {
                (Some(bytes), _) => {
                    let text = String::from_utf8(bytes)
                        .map_err(|_| err("the package list is not UTF-8".into()))?;
                    // Read within the design's limits, and the error
                    // names no content of the fetched list.
                    let v = read_yaml(&text, limits)
                        .map_err(|e| match e {
                            ParseError::Yaml(y) => YamlError {
                                message: "the package list is not YAML".into(),
                                location: y.location,
                            }
                            .to_string(),
                            ParseError::Limit {
                                what,
                                limit,
                                setting,
                            } => format!(
                                "the package list {what} (limit {limit}, design_limits.{setting})"
                            ),
                        })
                        .map_err(err)?
                        .into_iter()
                        .next()
                        .unwrap_or(Value::Null);
                    let Value::Object(m) = v else {
                        return Err(err("the package list must be a mapping".into()));
                    };
                    package_list(&m).map_err(err)?
                }
                (None, Some(Value::Object(m))) => package_list(m).map_err(err)?,
                _ => BTreeMap::new(),
            };
            out.push(Rendered {
                asset_type: a.asset_type,
                path: String::new(),
                mode,
                bytes: Vec::new(),
                packages,
            });
            continue;
        }
        let start = match (fetched, &a.data) {
            (Some(bytes), _) => Data::Bytes(bytes),
            (None, Some(Value::String(s))) => Data::Bytes(s.clone().into_bytes()),
            _ => Data::Bytes(Vec::new()),
        };
        let bytes = run_pipeline_off_workers(start, &a.data_pipeline, &context, limits, false)
            .await
            .map_err(err)?
            .into_bytes();
        out.push(Rendered {
            asset_type: a.asset_type,
            path: a.path.clone().unwrap_or_default(),
            mode,
            bytes,
            packages: BTreeMap::new(),
        });
    }
    Ok(out)
}
