//! Errors of an IPMI conversation, each with the kind a Drydock driver
//! reports (the WIT's `driver-error` cases) and a message for operators that
//! names the BMC and the cause, never a secret.

use std::fmt;

/// What went wrong, in the terms of Drydock's `driver-error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No answer, or the network refused the datagrams. Retryable.
    Unreachable,
    /// The BMC answered that it is busy (a busy completion code after the
    /// retries, no free session). Retryable.
    Busy,
    /// The call's deadline passed. Retryable.
    Timeout,
    /// The BMC does not support the command, cipher suite or option.
    Unsupported,
    /// The BMC refused the user name, password or privilege.
    Auth,
    /// The caller's parameters cannot be used (a user name longer than 16
    /// bytes...).
    InvalidInput,
    /// Any other failure (a malformed or unauthenticated answer, an error
    /// completion code, a datagram the host refused).
    Failed,
}

impl ErrorKind {
    /// Whether Drydock's host retries an error of this kind.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unreachable | Self::Busy | Self::Timeout)
    }
}

/// A failed IPMI operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Its kind.
    pub kind: ErrorKind,
    /// What happened, for operators.
    pub message: String,
}

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A `Failed` error about a malformed or unexpected answer.
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Why one datagram exchange produced no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// Nothing came back within the attempt's timeout; the session sends
    /// the request again (up to its attempts) before giving up as
    /// `Unreachable`.
    NoAnswer,
    /// The exchange cannot go on (the network refused the datagram, the
    /// host denied it, the packet budget or the deadline is spent): the
    /// session gives up at once with this error.
    Fatal(Error),
}

impl From<Error> for TransportError {
    fn from(error: Error) -> Self {
        Self::Fatal(error)
    }
}

/// Name of an IPMI completion code (IPMI 2.0 table 5-2 and the chassis
/// command-specific codes), for messages.
pub fn completion_code_name(code: u8) -> &'static str {
    match code {
        0x00 => "command completed normally",
        0x80 => "parameter not supported",
        0x81 => "set in progress",
        0x82 => "parameter is read-only",
        0xC0 => "node busy",
        0xC1 => "invalid command",
        0xC2 => "command invalid for given LUN",
        0xC3 => "timeout while processing command",
        0xC4 => "out of space",
        0xC5 => "reservation canceled or invalid",
        0xC6 => "request data truncated",
        0xC7 => "request data length invalid",
        0xC8 => "request data field length limit exceeded",
        0xC9 => "parameter out of range",
        0xCA => "cannot return number of requested data bytes",
        0xCB => "requested sensor, data, or record not present",
        0xCC => "invalid data field in request",
        0xCD => "command illegal for specified sensor or record type",
        0xCE => "command response could not be provided",
        0xCF => "cannot execute duplicated request",
        0xD0 => "SDR repository in update mode",
        0xD1 => "device in firmware update mode",
        0xD2 => "BMC initialization in progress",
        0xD3 => "destination unavailable",
        0xD4 => "insufficient privilege level",
        0xD5 => "command not supported in present state",
        0xD6 => "command sub-function disabled or unavailable",
        0xFF => "unspecified error",
        _ => "unknown completion code",
    }
}

/// Whether a completion code says "try again shortly": node busy, timeout
/// while processing, no response could be provided, BMC initialising, or a
/// boot-options set already in progress.
pub fn is_busy_completion(code: u8) -> bool {
    matches!(code, 0xC0 | 0xC3 | 0xCE | 0xD2 | 0x81)
}

/// The error kind a (non-zero, not busy) completion code maps to.
pub fn completion_kind(code: u8) -> ErrorKind {
    match code {
        0xC1 | 0xC2 | 0x80 | 0xD5 | 0xD6 => ErrorKind::Unsupported,
        0xD4 => ErrorKind::Auth,
        c if is_busy_completion(c) => ErrorKind::Busy,
        _ => ErrorKind::Failed,
    }
}

/// Name of an RMCP+ status code (IPMI 2.0 table 13-15), for messages.
pub fn rmcp_status_name(code: u8) -> &'static str {
    match code {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session ID",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session ID",
        0x09 => "invalid role",
        0x0A => "unauthorized role or privilege level requested",
        0x0B => "insufficient resources to create a session at the requested role",
        0x0C => "invalid name length",
        0x0D => "unauthorized name",
        0x0E => "unauthorized GUID",
        0x0F => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status code",
    }
}

/// The error kind an RMCP+ status code maps to.
pub fn rmcp_status_kind(code: u8) -> ErrorKind {
    match code {
        0x01 | 0x0B => ErrorKind::Busy,
        0x04..=0x07 | 0x10 | 0x11 => ErrorKind::Unsupported,
        0x09 | 0x0A | 0x0D | 0x0E | 0x0F => ErrorKind::Auth,
        0x0C => ErrorKind::InvalidInput,
        _ => ErrorKind::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_codes_are_retryable_and_others_are_not() {
        for code in [0xC0, 0xC3, 0xCE, 0xD2, 0x81] {
            assert!(is_busy_completion(code), "{code:#x}");
            assert!(completion_kind(code).is_retryable(), "{code:#x}");
        }
        assert_eq!(completion_kind(0xC1), ErrorKind::Unsupported);
        assert_eq!(completion_kind(0xD4), ErrorKind::Auth);
        assert_eq!(completion_kind(0xCC), ErrorKind::Failed);
        assert!(!completion_kind(0xFF).is_retryable());
    }

    #[test]
    fn rmcp_statuses_map_to_kinds() {
        assert_eq!(rmcp_status_kind(0x0D), ErrorKind::Auth);
        assert_eq!(rmcp_status_kind(0x11), ErrorKind::Unsupported);
        assert_eq!(rmcp_status_kind(0x01), ErrorKind::Busy);
        assert_eq!(rmcp_status_name(0x0D), "unauthorized name");
    }
}
