//! [`Bmc`]: one call's session with a node's BMC: where it is, the
//! settings, the RMCP+ session over the host's datagram capability, and
//! errors mapped to Drydock's kinds. [`with_bmc`] always closes the session
//! it opened, whatever the action's outcome. Never logs or returns the
//! password.

use drydock_ipmi::{Credentials, ErrorKind, Options, Session};
use drydock_sdk::prelude::*;

use crate::settings::{DEFAULT_PORT, Settings};
use crate::transport::HostTransport;

/// A connected, authenticated BMC.
pub struct Bmc<'a> {
    /// The call.
    pub ctx: &'a Ctx,
    /// The node's name, for messages.
    pub node: &'a str,
    /// `host:port`, for messages.
    pub addr: String,
    /// The call's settings.
    pub settings: Settings,
    /// The session.
    pub session: Session<HostTransport<'a>>,
}

/// A protocol error as the driver error Drydock expects.
pub fn driver_error(e: drydock_ipmi::Error) -> DriverError {
    let m = e.message;
    match e.kind {
        ErrorKind::Unreachable => DriverError::Unreachable(m),
        ErrorKind::Busy => DriverError::Busy(m),
        ErrorKind::Timeout => DriverError::Timeout(m),
        ErrorKind::Unsupported => DriverError::Unsupported(m),
        ErrorKind::Auth => DriverError::Auth(m),
        ErrorKind::InvalidInput => DriverError::InvalidInput(m),
        ErrorKind::Failed => DriverError::Failed(m),
    }
}

/// Opens a session with `node`'s BMC, runs `f`, and closes the session
/// whether `f` succeeded or not.
pub fn with_bmc<T>(ctx: &Ctx, node: &Node, f: impl FnOnce(&mut Bmc) -> Result<T>) -> Result<T> {
    let mut bmc = Bmc::connect(ctx, node)?;
    let result = f(&mut bmc);
    if let Err(e) = bmc.session.close() {
        ctx.warn(format!(
            "closing the session with BMC {}: {}",
            bmc.addr, e.message
        ));
    }
    ctx.debug(format!(
        "BMC {} of {}: {} datagrams sent",
        bmc.addr,
        node.name,
        bmc.session.datagrams_sent()
    ));
    result
}

impl<'a> Bmc<'a> {
    fn connect(ctx: &'a Ctx, node: &'a Node) -> Result<Self> {
        let settings = Settings::load(ctx, node)?;
        let host = node.oob.address.as_deref().map(str::trim).unwrap_or("");
        if host.is_empty() {
            return Err(DriverError::InvalidInput(format!(
                "node {} has no BMC address (oob.address)",
                node.name
            )));
        }
        let port = node.oob.port.unwrap_or(DEFAULT_PORT);
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let Some(c) = &node.oob.credentials else {
            return Err(DriverError::InvalidInput(format!(
                "node {} has no BMC credentials (oob.credential): IPMI 2.0 sessions need a user",
                node.name
            )));
        };
        let credentials = Credentials {
            username: c.username.clone(),
            password: c.password.clone(),
        };
        let options = Options {
            suites: settings.suites,
            privilege: settings.privilege,
            timeout: settings.timeout,
            attempts: settings.attempts,
            busy_retries: settings.busy_retries,
            ..Options::default()
        };
        let transport = HostTransport::new(ctx, port);
        let session =
            Session::open(transport, &addr, &credentials, options).map_err(driver_error)?;
        ctx.debug(format!(
            "BMC {addr} of {}: RMCP+ session, cipher suite {}, privilege {}",
            node.name,
            session.suite().id(),
            session.privilege()
        ));
        Ok(Bmc {
            ctx,
            node: &node.name,
            addr,
            settings,
            session,
        })
    }
}
