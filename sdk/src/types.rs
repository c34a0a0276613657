//! The records and enums of the WIT contract, as Rust types.
//!
//! They are generated from the WIT (`wit/<version>/types.wit` and `host.wit`,
//! the version in [`crate::WIT_PACKAGE`]); the docs of each
//! come from the WIT. [`Credentials`] is written by hand so that its `Debug`
//! output never shows the password.

use std::fmt;

pub use crate::wit::drydock::driver::types::{
    BootDevice, BootTarget, DatagramError, DeployOptions, DriverError, Filesystem,
    InterfaceAddress, IpRange, Labels, LimitExceeded, LogLevel, LogicalVolume, Network,
    NetworkLink, Node, NodeIdentity, NodeInterface, NodeInterrogation, OobFacts, OobInfo,
    OobInterrogation, PackageRepository, Partition, PhysicalDevice, Platform, PortInterrogation,
    PortMode, PortVlans, PowerState, Route, SiteNetworks, Size, Storage, SwitchInfo, SwitchPort,
    VolumeGroup,
};
pub use crate::wit::exports::drydock::driver::metadata::{
    DriverInfo, DriverInterface, OutboundAccess,
};

/// User name and password the host resolved from the secrets source for this
/// call. Never log them: `Debug` shows the user name only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Account name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl DriverError {
    /// True for the cases the host retries with backoff: `unreachable`, `busy`
    /// and `timeout`.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DriverError::Unreachable(_) | DriverError::Busy(_) | DriverError::Timeout(_)
        )
    }

    /// The human message the error carries.
    pub fn message(&self) -> &str {
        match self {
            DriverError::Unreachable(m)
            | DriverError::Busy(m)
            | DriverError::Timeout(m)
            | DriverError::Unsupported(m)
            | DriverError::Auth(m)
            | DriverError::InvalidInput(m)
            | DriverError::Failed(m) => m,
        }
    }
}

impl Size {
    /// Bytes this size takes of `total` bytes (the device, or the volume
    /// group for a logical volume): an exact or minimum size as is, a
    /// percentage of `total` rounded down.
    pub fn bytes_of(&self, total: u64) -> u64 {
        match *self {
            Size::Bytes(b) | Size::AtLeast(b) => b,
            Size::Percent(p) => (u128::from(total) * u128::from(p) / 100) as u64,
        }
    }
}

impl From<DatagramError> for DriverError {
    /// A datagram that did not deliver, as an action error: `timeout` and
    /// `unreachable` are retryable, a denial or a limit is permanent.
    fn from(e: DatagramError) -> Self {
        match e {
            DatagramError::Denied(m) => DriverError::Failed(format!("datagram denied: {m}")),
            DatagramError::Limit(l) => DriverError::Failed(l.message),
            DatagramError::Timeout => DriverError::Timeout("no datagram arrived in time".into()),
            DatagramError::Unreachable(m) => DriverError::Unreachable(m),
        }
    }
}

impl From<LimitExceeded> for DriverError {
    /// A host limit refused a request: a permanent failure carrying the
    /// host's message (which names the limit).
    fn from(e: LimitExceeded) -> Self {
        DriverError::Failed(e.message)
    }
}
