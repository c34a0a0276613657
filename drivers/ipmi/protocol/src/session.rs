//! [`Session`]: one authenticated, encrypted RMCP+ session with a BMC over a
//! [`Transport`]: establishment (channel capabilities, Open Session, RAKP
//! 1-4, privilege), requests with retransmission and busy retries, and the
//! Close Session that ends it.

use std::time::Duration;

use crate::crypto::{CipherSuite, SessionKeys};
use crate::error::{
    Error, ErrorKind, TransportError, completion_code_name, completion_kind, is_busy_completion,
};
use crate::packet::{self, PayloadType, Response};
use crate::rakp::{Credentials, Handshake, OpenSession, Privilege};

/// Network functions (requests; responses are one more).
pub mod netfn {
    /// Chassis.
    pub const CHASSIS: u8 = 0x00;
    /// Application.
    pub const APP: u8 = 0x06;
    /// Storage (FRU, SDR, SEL).
    pub const STORAGE: u8 = 0x0A;
}

/// How datagrams reach the BMC and come back.
pub trait Transport {
    /// Sends `request` to the BMC and returns the next datagram it answers
    /// within `timeout`; [`TransportError::NoAnswer`] if none came.
    fn exchange(&mut self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, TransportError>;

    /// Waits up to `timeout` for the next datagram from the BMC without
    /// sending (to read past a late answer to an earlier request). The
    /// default has nothing to read, so the request is sent again.
    fn receive(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let _ = timeout;
        Err(TransportError::NoAnswer)
    }

    /// Waits before retrying a busy command. The default sleeps the thread;
    /// a transport bound by a deadline fails instead when it would pass.
    fn pause(&mut self, duration: Duration) -> Result<(), Error> {
        std::thread::sleep(duration);
        Ok(())
    }
}

/// Which cipher suites to propose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuitePreference {
    /// Suite 17 (SHA-256), then suite 3 if the BMC refuses it.
    Auto,
    /// Only this suite.
    Only(CipherSuite),
}

/// How a session behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Cipher suites to propose.
    pub suites: SuitePreference,
    /// Privilege to run at (chassis control needs operator).
    pub privilege: Privilege,
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// How many times a request is sent before the BMC counts as not
    /// answering.
    pub attempts: u32,
    /// How many times a command answered with a busy completion code is
    /// retried.
    pub busy_retries: u32,
    /// The first wait before a busy retry; each further one doubles.
    pub busy_backoff: Duration,
    /// Fills a buffer with random bytes (session id, RAKP nonce, IVs).
    pub random: fn(&mut [u8]) -> Result<(), Error>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            suites: SuitePreference::Auto,
            privilege: Privilege::Administrator,
            timeout: Duration::from_secs(1),
            attempts: 3,
            busy_retries: 3,
            busy_backoff: Duration::from_millis(500),
            random: os_random,
        }
    }
}

/// The operating system's (on wasm32-wasip2: the host's `wasi:random`)
/// random bytes.
pub fn os_random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| Error::new(ErrorKind::Failed, format!("no randomness: {e}")))
}

/// An established session. Closed by [`Session::close`], or when dropped.
pub struct Session<T: Transport> {
    transport: T,
    bmc: String,
    options: Options,
    suite: CipherSuite,
    keys: SessionKeys,
    bmc_session_id: u32,
    console_session_id: u32,
    privilege: u8,
    sequence: u32,
    rq_seq: u8,
    open: bool,
    /// Datagrams sent so far (for the caller's statistics).
    sent: u32,
}

impl<T: Transport> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("bmc", &self.bmc)
            .field("suite", &self.suite)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

/// Datagrams that are not the answer read past per attempt before the
/// request is sent again.
const STRAYS_PER_ATTEMPT: usize = 4;

/// Sends `request` up to `attempts` times until `accept` takes an answer.
/// `accept` returns `None` for a datagram that is not the answer (a late
/// answer to an earlier request, another session's, unverifiable): the
/// next datagram is read, and after a few such the request is sent again.
fn round_trip<T: Transport, R>(
    transport: &mut T,
    options: &Options,
    sent: &mut u32,
    request: &[u8],
    mut accept: impl FnMut(&[u8]) -> Option<Result<R, Error>>,
) -> Result<Option<R>, Error> {
    for _ in 0..options.attempts.max(1) {
        *sent += 1;
        let mut next = transport.exchange(request, options.timeout);
        for _ in 0..STRAYS_PER_ATTEMPT {
            match next {
                Ok(answer) => {
                    if let Some(result) = accept(&answer) {
                        return result.map(Some);
                    }
                }
                Err(TransportError::NoAnswer) => break,
                Err(TransportError::Fatal(e)) => return Err(e),
            }
            next = transport.receive(options.timeout);
        }
    }
    Ok(None)
}

impl<T: Transport> Session<T> {
    /// Establishes a session with the BMC `bmc` (its name in messages)
    /// over `transport`.
    pub fn open(
        mut transport: T,
        bmc: &str,
        credentials: &Credentials,
        options: Options,
    ) -> Result<Self, Error> {
        credentials.check()?;
        let mut sent = 0;
        channel_capabilities(&mut transport, &options, &mut sent, bmc)?;
        let suites = match options.suites {
            SuitePreference::Auto => vec![CipherSuite::Suite17, CipherSuite::Suite3],
            SuitePreference::Only(suite) => vec![suite],
        };
        let mut last = None;
        for (i, &suite) in suites.iter().enumerate() {
            match handshake(&mut transport, &options, &mut sent, bmc, credentials, suite) {
                Ok((hs, open, keys)) => {
                    let mut session = Session {
                        transport,
                        bmc: bmc.to_string(),
                        suite,
                        keys,
                        bmc_session_id: open.bmc_session_id,
                        console_session_id: hs.console_session_id,
                        privilege: 0,
                        sequence: 0,
                        rq_seq: 0,
                        open: true,
                        sent,
                        options,
                    };
                    session.set_privilege()?;
                    return Ok(session);
                }
                Err(e) if e.kind == ErrorKind::Unsupported && i + 1 < suites.len() => {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!("BMC {bmc}: no cipher suite to propose"),
            )
        }))
    }

    /// The cipher suite in use.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The privilege level the BMC granted.
    pub fn privilege(&self) -> u8 {
        self.privilege
    }

    /// The BMC's name in messages.
    pub fn bmc(&self) -> &str {
        &self.bmc
    }

    /// Datagrams sent so far, retransmissions included.
    pub fn datagrams_sent(&self) -> u32 {
        self.sent
    }

    /// The transport, for waits between commands.
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    fn set_privilege(&mut self) -> Result<(), Error> {
        let wanted = self.options.privilege as u8;
        let answer = self.request(netfn::APP, 0x3B, &[wanted])?;
        match answer.completion {
            0 => {
                self.privilege = answer.data.first().copied().unwrap_or(wanted) & 0x0F;
                Ok(())
            }
            0x80..=0x81 => Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "BMC {} does not grant this user privilege level {wanted} ({:?})",
                    self.bmc, self.options.privilege
                ),
            )),
            code => Err(completion_error(
                &self.bmc,
                "Set Session Privilege Level",
                code,
            )),
        }
    }

    /// Sends one request and returns the BMC's answer, whatever its
    /// completion code.
    pub fn request(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Response, Error> {
        if !self.open {
            return Err(Error::new(
                ErrorKind::Failed,
                format!("BMC {}: the session is closed", self.bmc),
            ));
        }
        self.rq_seq = self.rq_seq % 63 + 1;
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let mut iv = [0u8; 16];
        (self.options.random)(&mut iv)?;
        let message = packet::encode_request(netfn, cmd, self.rq_seq, data);
        let datagram = packet::encode(
            PayloadType::Ipmi,
            self.bmc_session_id,
            self.sequence,
            &message,
            Some((&self.keys, iv)),
        );
        let (keys, console, rq_seq) = (&self.keys, self.console_session_id, self.rq_seq);
        let answer = round_trip(
            &mut self.transport,
            &self.options,
            &mut self.sent,
            &datagram,
            |bytes| {
                let packet = packet::decode(bytes, Some(keys)).ok()?;
                if packet.payload_type != PayloadType::Ipmi as u8
                    || packet.session_id != console
                    || !packet.authenticated
                {
                    return None;
                }
                let response = packet::decode_response(&packet.payload).ok()?;
                (response.netfn == netfn + 1 && response.cmd == cmd && response.rq_seq == rq_seq)
                    .then_some(Ok(response))
            },
        )?;
        answer.ok_or_else(|| {
            Error::new(
                ErrorKind::Unreachable,
                format!(
                    "BMC {} stopped answering (command {netfn:#04x}/{cmd:#04x}, {} attempts of {} ms)",
                    self.bmc,
                    self.options.attempts,
                    self.options.timeout.as_millis()
                ),
            )
        })
    }

    /// Sends a command and returns its response data; a busy completion
    /// code is retried with backoff, any other non-zero one is an error
    /// naming `what`.
    pub fn command(
        &mut self,
        what: &str,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut backoff = self.options.busy_backoff;
        for retry in 0..=self.options.busy_retries {
            let answer = self.request(netfn, cmd, data)?;
            match answer.completion {
                0 => return Ok(answer.data),
                code if is_busy_completion(code) && retry < self.options.busy_retries => {
                    self.transport.pause(backoff)?;
                    backoff *= 2;
                }
                code => return Err(completion_error(&self.bmc, what, code)),
            }
        }
        unreachable!("the last retry returns")
    }

    /// Closes the session (Close Session, one attempt). Later requests
    /// fail; closing again does nothing.
    pub fn close(&mut self) -> Result<(), Error> {
        if !self.open {
            return Ok(());
        }
        let attempts = std::mem::replace(&mut self.options.attempts, 1);
        let id = self.bmc_session_id.to_le_bytes();
        let result = self.request(netfn::APP, 0x3C, &id);
        self.options.attempts = attempts;
        self.open = false;
        match result?.completion {
            0 => Ok(()),
            code => Err(completion_error(&self.bmc, "Close Session", code)),
        }
    }
}

impl<T: Transport> Drop for Session<T> {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The error for a command answered with a non-zero completion code.
pub fn completion_error(bmc: &str, what: &str, code: u8) -> Error {
    Error::new(
        completion_kind(code),
        format!(
            "BMC {bmc}: {what} failed: {} (completion code {code:#04x})",
            completion_code_name(code)
        ),
    )
}

/// Get Channel Authentication Capabilities (sessionless, IPMI 1.5 framing):
/// checks that the BMC answers and speaks IPMI 2.0.
fn channel_capabilities<T: Transport>(
    transport: &mut T,
    options: &Options,
    sent: &mut u32,
    bmc: &str,
) -> Result<(), Error> {
    // Channel 0x0E (this one) with bit 7 asking for IPMI 2.0 data; the
    // privilege we will want.
    let message = packet::encode_request(netfn::APP, 0x38, 0, &[0x8E, options.privilege as u8]);
    let datagram = packet::encode_v15(&message);
    let answer = round_trip(transport, options, sent, &datagram, |bytes| {
        let message = if packet::is_ipmi15(bytes) {
            packet::decode_v15(bytes).ok()?
        } else {
            packet::decode(bytes, None).ok()?.payload
        };
        let response = packet::decode_response(&message).ok()?;
        (response.cmd == 0x38 && response.netfn == netfn::APP + 1).then_some(Ok(response))
    })?;
    let Some(response) = answer else {
        return Err(Error::new(
            ErrorKind::Unreachable,
            format!(
                "BMC {bmc} does not answer IPMI ({} attempts of {} ms)",
                options.attempts,
                options.timeout.as_millis()
            ),
        ));
    };
    if response.completion != 0 {
        return Err(completion_error(
            bmc,
            "Get Channel Authentication Capabilities",
            response.completion,
        ));
    }
    // Byte 2 bit 7: extended capabilities present; byte 4 bit 1: IPMI 2.0.
    let v2 = response.data.get(1).is_some_and(|b| b & 0x80 != 0)
        && response.data.get(3).is_some_and(|b| b & 0x02 != 0);
    if !v2 {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("BMC {bmc} does not support IPMI 2.0 (RMCP+) on this channel"),
        ));
    }
    Ok(())
}

/// Open Session and RAKP 1-4 with one cipher suite.
fn handshake<T: Transport>(
    transport: &mut T,
    options: &Options,
    sent: &mut u32,
    bmc: &str,
    credentials: &Credentials,
    suite: CipherSuite,
) -> Result<(Handshake, OpenSession, SessionKeys), Error> {
    let mut random = [0u8; 21];
    (options.random)(&mut random)?;
    let console_session_id = u32::from_le_bytes(random[..4].try_into().expect("4 bytes")).max(1);
    let hs = Handshake {
        suite,
        privilege: options.privilege,
        console_session_id,
        console_random: random[4..20].try_into().expect("16 bytes"),
        tag: random[20],
    };
    let silent = |what: &str| {
        Error::new(
            ErrorKind::Unreachable,
            format!(
                "BMC {bmc} did not answer {what} ({} attempts of {} ms)",
                options.attempts,
                options.timeout.as_millis()
            ),
        )
    };

    let request = packet::encode(
        PayloadType::OpenSessionRequest,
        0,
        0,
        &hs.open_session_request(),
        None,
    );
    let open = round_trip(transport, options, sent, &request, |bytes| {
        let p = setup_packet(bytes, PayloadType::OpenSessionResponse, hs.tag)?;
        Some(hs.open_session_response(&p, bmc))
    })?
    .ok_or_else(|| silent("the RMCP+ open session request"))?;

    let request = packet::encode(
        PayloadType::Rakp1,
        0,
        0,
        &hs.rakp1(&open, credentials),
        None,
    );
    let rakp2 = round_trip(transport, options, sent, &request, |bytes| {
        let p = setup_packet(bytes, PayloadType::Rakp2, hs.tag)?;
        Some(hs.rakp2(&p, &open, credentials, bmc))
    })?
    .ok_or_else(|| {
        // It answered the open session request: silence now is how some
        // BMCs (pyghmi's among them) refuse an unknown user.
        Error::new(
            ErrorKind::Auth,
            format!(
                "BMC {bmc} opened a session but did not answer RAKP 1 for user `{}` (an unknown user?)",
                credentials.username
            ),
        )
    })?;

    let request = packet::encode(
        PayloadType::Rakp3,
        0,
        0,
        &hs.rakp3(&open, &rakp2, credentials),
        None,
    );
    let keys = round_trip(transport, options, sent, &request, |bytes| {
        let p = setup_packet(bytes, PayloadType::Rakp4, hs.tag)?;
        Some(hs.rakp4(&p, &open, &rakp2, credentials, bmc))
    })?
    .ok_or_else(|| silent("RAKP 3"))?;
    Ok((hs, open, keys))
}

/// The payload of a session-setup answer of type `want` carrying `tag`;
/// `None` for anything else.
fn setup_packet(bytes: &[u8], want: PayloadType, tag: u8) -> Option<Vec<u8>> {
    let p = packet::decode(bytes, None).ok()?;
    (p.payload_type == want as u8 && p.payload.first() == Some(&tag)).then_some(p.payload)
}
