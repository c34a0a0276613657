//! Nodes on the wire: the node dict of `GET /nodes`, the body of `POST
//! /nodes`, and `POST /nodefilter`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A node: Drydock's `GET /nodes` fields (`hostname`, `memory`,
/// `cpu_count`, `status_name`, `boot_mac`, `power_state`, `power_address`,
/// `boot_ip`, from what the drivers last reported), then the node's own
/// description (`oob`, `interfaces`, `platform`, `storage`, `tags`,
/// `labels`, `rack`, ...). It never holds a credential: `oob.credential` is
/// only the name of the secret holding one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    /// Host name (the bootstrapper's, else the node's name).
    #[schema(value_type = Value)]
    pub hostname: Value,
    /// Memory as the bootstrapper reported it.
    #[schema(value_type = Value)]
    pub memory: Value,
    /// CPU count as the bootstrapper reported it.
    #[schema(value_type = Value)]
    pub cpu_count: Value,
    /// The bootstrapper's status for the node.
    #[schema(value_type = Value)]
    pub status_name: Value,
    /// PXE boot MAC.
    #[schema(value_type = Value)]
    pub boot_mac: Value,
    /// Last known power state.
    #[schema(value_type = Value)]
    pub power_state: Value,
    /// BMC address.
    #[schema(value_type = Value)]
    pub power_address: Value,
    /// Boot interface address.
    #[schema(value_type = Value)]
    pub boot_ip: Value,
    /// Always `Node`.
    #[schema(example = "Node")]
    pub kind: String,
    /// Always `v1.0`.
    #[serde(rename = "apiVersion")]
    #[schema(example = "v1.0")]
    pub api_version: String,
    /// Node name.
    pub name: String,
    /// The node's description as registered (secrets removed).
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub spec: Map<String, Value>,
    /// Last boot device set (e.g. `pxe`, `disk`).
    pub boot_device: Option<String>,
    /// When the node was registered (RFC 3339).
    pub created: String,
    /// Last change (RFC 3339).
    pub updated: String,
}

impl NodeView {
    /// The names of the fields the view sets itself; a description's keys
    /// of the same names are left out of [`NodeView::spec`].
    pub const OWN_FIELDS: &'static [&'static str] = &[
        "hostname",
        "memory",
        "cpu_count",
        "status_name",
        "boot_mac",
        "power_state",
        "power_address",
        "boot_ip",
        "kind",
        "apiVersion",
        "name",
        "boot_device",
        "created",
        "updated",
    ];
}

/// A user name and password, sent once with a registration and stored as a
/// secret; never shown.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Credentials {
    /// Account name (not empty).
    pub username: String,
    /// Password or token.
    #[serde(default)]
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How a node's BMC is reached, as registered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeOob {
    /// Out-of-band type, e.g. `redfish`, `ipmi`, `sim` (required).
    #[serde(rename = "type")]
    pub oob_type: String,
    /// BMC address: one host, not a special address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// BMC port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// BMC login name, used with a secret that holds only the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Name of the secret holding the BMC credentials (default
    /// `node-<name>-oob` when credentials are sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Credentials (instead of the top-level `credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// Further oob parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// The body of `POST /nodes`: a node, and optionally its BMC credentials
/// (stored as a secret; the node keeps only the secret's name). Unknown
/// keys are refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeRegistration {
    /// Node name: 1 to 253 characters of letters, digits, `.` and `-`.
    pub name: String,
    /// BMC access.
    pub oob: NodeOob,
    /// PXE boot MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mac: Option<String>,
    /// Network interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub interfaces: Vec<Value>,
    /// Platform (image, kernel, kernel parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub platform: Option<Value>,
    /// Storage layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub storage: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Rack name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// DNS domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The BMC credentials (or `oob.credentials`, not both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

/// The body of `POST /nodefilter` (other keys are ignored, as Drydock
/// ignores them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeFilterRequest {
    /// Drydock node filter; absent or `null` = every node.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub node_filter: Option<Value>,
    /// Site design reference: filter the design's nodes (with its racks'
    /// labels); absent: the registered nodes.
    #[serde(default)]
    pub design_ref: Option<String>,
}
