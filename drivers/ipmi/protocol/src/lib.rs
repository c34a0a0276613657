//! IPMI 2.0 over RMCP+ ("lanplus") as a pure library: packet framing,
//! RAKP session establishment, HMAC-SHA1-96 / HMAC-SHA256-128 integrity,
//! AES-CBC-128 confidentiality, and the chassis, boot-option, device and
//! FRU commands an out-of-band driver needs.
//!
//! It does no I/O of its own: a [`Transport`] sends a datagram and returns
//! the answer. The Drydock `ipmi` driver implements it over the host's
//! datagram capability; the `udp` feature adds [`udp::UdpTransport`] over
//! `std::net::UdpSocket` for native tests against real BMC simulators.
//!
//! # Layout
//!
//! - [`error`]: errors with Drydock's kinds; completion and RMCP+ status
//!   codes.
//! - [`crypto`]: cipher suites 3 and 17, HMACs, session keys, AES-CBC.
//! - [`packet`]: RMCP, IPMI 2.0 and 1.5 packets, LAN messages.
//! - [`rakp`]: Open Session and RAKP 1-4.
//! - [`session`]: [`Session`] over a [`Transport`]: open, request with
//!   retransmission and busy retries, close.
//! - [`commands`]: typed commands; [`fru`]: FRU inventory parsing.
//!
//! # Example
//!
//! ```no_run
//! # #[cfg(feature = "udp")] {
//! use drydock_ipmi::{commands, Credentials, Options, Session};
//! use drydock_ipmi::udp::UdpTransport;
//!
//! let transport = UdpTransport::connect("127.0.0.1:623".parse().unwrap()).unwrap();
//! let credentials = Credentials { username: "admin".into(), password: "password".into() };
//! let mut session = Session::open(transport, "127.0.0.1:623", &credentials, Options::default()).unwrap();
//! let status = commands::chassis_status(&mut session).unwrap();
//! println!("power on: {}", status.power_on);
//! session.close().unwrap();
//! # }
//! ```

pub mod commands;
pub mod crypto;
pub mod error;
pub mod fru;
pub mod packet;
pub mod rakp;
pub mod session;
#[cfg(feature = "udp")]
pub mod udp;
#[cfg(test)]
mod vectors;

pub use crypto::CipherSuite;
pub use error::{Error, ErrorKind, TransportError};
pub use rakp::{Credentials, Privilege};
pub use session::{Options, Session, SuitePreference, Transport};
