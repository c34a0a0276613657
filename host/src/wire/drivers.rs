//! Drivers on the wire: `GET /drivers` and `GET /drivers/{name}` (versions,
//! the active one, requested versus granted, call counts), the answer of an
//! install (`POST /drivers`), and activation and rollback.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One driver: its installed versions, the active one, the version loaded
/// on this instance, and what it asked for against what it was granted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DriverStatus {
    /// Driver name.
    pub name: String,
    /// The active installed version (none for a bundled or directory driver
    /// never replaced).
    pub active: Option<ActiveVersion>,
    /// The version loaded on this instance.
    pub loaded: Option<LoadedVersion>,
    /// Installed versions, oldest first.
    pub versions: Vec<DriverVersion>,
    /// What the active (else loaded) version asks for.
    pub requested: Option<Requested>,
    /// What the operator granted it (none when not loaded here).
    pub granted: Option<Grant>,
    /// What it asked for and was not granted.
    pub not_granted: NotGranted,
}

/// The active version of a driver.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActiveVersion {
    /// Version.
    pub version: String,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// The version active before it (what a rollback returns to).
    pub previous: Option<String>,
    /// Grows with every activation.
    pub generation: i64,
    /// When it changed (RFC 3339).
    pub changed: String,
    /// Why it changed (e.g. an automatic rollback's reason).
    pub message: Option<String>,
    /// Where it stands with the automatic rollback.
    #[serde(default)]
    pub auto_rollback: AutoRollback,
}

/// Where a driver's active version stands with the automatic rollback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RollbackState {
    /// An operator activated it over a previous version: every instance
    /// watches its own first calls of it (starting until `watch_until`)
    /// and rolls it back to the previous version when too many fail.
    Armed,
    /// It is active because an automatic rollback undid the version after
    /// it (`message` says why).
    RolledBack,
    /// Neither: no previous version to return to, a rollback's or an old
    /// activation, or watching is disabled (`watch_calls = 0`).
    #[default]
    Off,
}

/// The automatic rollback of a driver's active version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AutoRollback {
    /// Armed, rolled back, or off.
    pub state: RollbackState,
    /// First calls of a new version each instance watches (0: off).
    pub watch_calls: u64,
    /// The share of them that may fail before it is rolled back.
    pub max_error_ratio: f64,
    /// While armed: until when instances start watching (RFC 3339).
    pub watch_until: Option<String>,
}

/// The version loaded on the instance that answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoadedVersion {
    /// Version.
    pub version: String,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// The `drydock:driver` WIT version it was built against (`0.1.0`, `0.2.0`).
    #[serde(default)]
    pub wit: String,
    /// The interfaces it implements (`oob`, `node`, `network`, `provisioner`).
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Calls made on this instance.
    pub calls: u64,
    /// Of which failed.
    pub errors: u64,
}

/// An installed version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DriverVersion {
    /// Version.
    pub version: String,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// The vendor whose key signed it (none: unsigned, development mode).
    pub signer: Option<String>,
    /// When it was installed (RFC 3339).
    pub installed: String,
    /// Who installed it.
    pub installed_by: Option<String>,
    /// Whether it is the active version.
    pub active: bool,
    /// Whether it is loaded on this instance (ready to activate at once).
    pub warm: bool,
    /// What its manifest asks for.
    pub requested: Option<Requested>,
    /// The conformance kit's report signed into its manifest (`drydock
    /// driver test`), if the vendor embedded one.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub conformance: Option<serde_json::Value>,
}

/// Capabilities a driver package asks for; the operator's grant decides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Requested {
    /// Outbound hosts, IPs, CIDRs, with optional ports (`host:port`).
    pub outbound: Vec<String>,
    /// Memory per call, MiB.
    pub memory_mib: Option<u64>,
    /// Longest call, seconds.
    pub call_secs: Option<u64>,
}

/// What the operator granted a driver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    /// Outbound hosts it may reach.
    pub outbound: Vec<String>,
    /// Memory per call, MiB.
    pub memory_mib: u64,
    /// Longest call, seconds.
    pub call_secs: Option<u64>,
}

/// What a driver asked for and was not granted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotGranted {
    /// Hosts asked for and not granted.
    pub outbound: Vec<String>,
    /// Memory asked for, MiB, when above the grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Call time asked for, seconds, when above the grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_secs: Option<u64>,
}

/// What a driver package says about itself and asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct DriverManifest {
    /// Driver name (equal to the component's `info` name).
    pub name: String,
    /// Version of this package.
    pub version: String,
    /// Publisher.
    pub vendor: String,
    /// Interfaces it implements (`oob`, `node`, `network`).
    pub interfaces: Vec<String>,
    /// Oob types it claims.
    pub oob_types: Vec<String>,
    /// Capabilities it asks for.
    pub requested: Requested,
}

/// What `POST /drivers` did: 201 when a new version was stored, 200 when
/// the same file was there.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Installation {
    /// Driver name.
    pub name: String,
    /// Version.
    pub version: String,
    /// SHA-256 of the file (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The vendor whose key signed it (none: unsigned, development mode).
    pub signer: Option<String>,
    /// Whether a new version was stored (false: the same file was there).
    pub stored: bool,
    /// Whether compiled code came from this instance's cache.
    pub cache_hit: bool,
    /// Time to check, compile and load it, ms.
    pub load_ms: f64,
    /// The manifest.
    pub manifest: DriverManifest,
}

/// The body of `POST /drivers/{name}/activate`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    /// The version to activate.
    pub version: String,
}

/// The answer of an activation or a rollback: the version now active.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Activation {
    /// Driver name.
    pub name: String,
    /// The version now active.
    pub version: String,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// The version active before.
    pub previous: Option<String>,
    /// Grows with every activation.
    pub generation: i64,
    /// A rollback's message (`rolled back from A to B`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
