//! The records and enums of the WIT contract, as Rust types.
//!
//! They are generated from `wit/types.wit` and `wit/host.wit`; the docs of each
//! come from the WIT. [`Credentials`] is written by hand so that its `Debug`
//! output never shows the password.

use std::fmt;

pub use crate::wit::drydock::driver::types::{
    BootDevice, BootTarget, DeployOptions, DriverError, Filesystem, InterfaceAddress, IpRange,
    LimitExceeded, LogLevel, LogicalVolume, Network, NetworkLink, Node, NodeIdentity,
    NodeInterface, NodeInterrogation, OobFacts, OobInfo, OobInterrogation, PackageRepository,
    Partition, PhysicalDevice, Platform, PortInterrogation, PortMode, PortVlans, PowerState, Route,
    SiteNetworks, Storage, SwitchInfo, SwitchPort, VolumeGroup,
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

impl From<LimitExceeded> for DriverError {
    /// A host limit refused a request: a permanent failure carrying the
    /// host's message (which names the limit).
    fn from(e: LimitExceeded) -> Self {
        DriverError::Failed(e.message)
    }
}
