//! RMCP+ session establishment: the Open Session request and response, and
//! the four RAKP messages with their key-exchange codes (IPMI 2.0
//! §13.17-13.31). Pure functions over bytes; [`crate::session`] does the
//! exchanges.

use crate::crypto::{CipherSuite, SessionKeys, constant_time_eq};
use crate::error::{Error, ErrorKind, rmcp_status_kind, rmcp_status_name};

/// RAKP's "name-only lookup" bit in the requested role: the BMC finds the
/// user by name, not by name and privilege.
const NAME_ONLY_LOOKUP: u8 = 0x10;

/// A session privilege level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// User: read-only commands.
    User = 2,
    /// Operator: chassis control and boot options.
    Operator = 3,
    /// Administrator.
    Administrator = 4,
}

impl Privilege {
    /// Parses `user`, `operator` or `administrator` (or `admin`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "user" => Some(Self::User),
            "operator" => Some(Self::Operator),
            "administrator" | "admin" => Some(Self::Administrator),
            _ => None,
        }
    }
}

/// What the console proves it knows: the user's name and password (Kuid).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (at most 16 bytes; empty for the anonymous user).
    pub username: String,
    /// Password (at most 20 bytes).
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

impl Credentials {
    /// Checks the IPMI 2.0 limits (user name ≤ 16 bytes, password ≤ 20).
    pub fn check(&self) -> Result<(), Error> {
        if self.username.len() > 16 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "IPMI user names are at most 16 bytes; `{}` has {}",
                    self.username,
                    self.username.len()
                ),
            ));
        }
        if self.password.len() > 20 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "IPMI 2.0 passwords are at most 20 bytes; the configured one is longer",
            ));
        }
        Ok(())
    }
}

/// The console's half of session establishment: its choices and nonces.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// The cipher suite proposed.
    pub suite: CipherSuite,
    /// Privilege requested.
    pub privilege: Privilege,
    /// The console's session id (the BMC puts it in packets to us).
    pub console_session_id: u32,
    /// Rm: the console's random number.
    pub console_random: [u8; 16],
    /// Message tag of the exchanges.
    pub tag: u8,
}

/// What the BMC answered to the Open Session request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSession {
    /// The BMC's session id (we put it in packets to the BMC).
    pub bmc_session_id: u32,
    /// The maximum privilege the BMC granted.
    pub privilege: u8,
}

/// What RAKP 2 carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rakp2 {
    /// Rc: the BMC's random number.
    pub bmc_random: [u8; 16],
    /// The BMC's GUID.
    pub bmc_guid: [u8; 16],
    /// Its key-exchange authentication code.
    pub auth_code: Vec<u8>,
}

impl Handshake {
    /// The requested role byte of RAKP 1 (privilege, name-only lookup).
    fn role(&self) -> u8 {
        self.privilege as u8 | NAME_ONLY_LOOKUP
    }

    /// RMCP+ Open Session Request payload.
    pub fn open_session_request(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.privilege as u8, 0, 0];
        out.extend_from_slice(&self.console_session_id.to_le_bytes());
        for (kind, algorithm) in [
            (0x00, self.suite.auth_algorithm()),
            (0x01, self.suite.integrity_algorithm()),
            (0x02, self.suite.confidentiality_algorithm()),
        ] {
            out.extend_from_slice(&[kind, 0, 0, 0x08, algorithm, 0, 0, 0]);
        }
        out
    }

    /// Checks an Open Session Response; `bmc` names the BMC in errors.
    pub fn open_session_response(&self, payload: &[u8], bmc: &str) -> Result<OpenSession, Error> {
        self.status(payload, "open session", bmc)?;
        if payload.len() < 36 {
            return Err(Error::malformed(format!(
                "BMC {bmc}: open session response of {} bytes is too short",
                payload.len()
            )));
        }
        self.check_console_id(&payload[4..8], bmc)?;
        let bmc_session_id = u32::from_le_bytes(payload[8..12].try_into().expect("4 bytes"));
        let wanted = [
            self.suite.auth_algorithm(),
            self.suite.integrity_algorithm(),
            self.suite.confidentiality_algorithm(),
        ];
        for (i, want) in wanted.into_iter().enumerate() {
            let got = payload[12 + 8 * i + 4] & 0x3F;
            if got != want {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "BMC {bmc} chose algorithm {got} where cipher suite {} needs {want}",
                        self.suite.id()
                    ),
                ));
            }
        }
        if bmc_session_id == 0 {
            return Err(Error::malformed(format!("BMC {bmc} gave session id 0")));
        }
        Ok(OpenSession {
            bmc_session_id,
            privilege: payload[2],
        })
    }

    /// RAKP Message 1 payload.
    pub fn rakp1(&self, open: &OpenSession, credentials: &Credentials) -> Vec<u8> {
        let mut out = vec![self.tag, 0, 0, 0];
        out.extend_from_slice(&open.bmc_session_id.to_le_bytes());
        out.extend_from_slice(&self.console_random);
        out.extend_from_slice(&[self.role(), 0, 0, credentials.username.len() as u8]);
        out.extend_from_slice(credentials.username.as_bytes());
        out
    }

    /// Parses RAKP Message 2 and checks its code, which proves the BMC
    /// knows the password: HMAC_Kuid(SIDm, SIDc, Rm, Rc, GUIDc, ROLEm,
    /// ULENGTHm, UNAMEm). A mismatch means the password is wrong.
    pub fn rakp2(
        &self,
        payload: &[u8],
        open: &OpenSession,
        credentials: &Credentials,
        bmc: &str,
    ) -> Result<Rakp2, Error> {
        self.status(payload, "RAKP 2", bmc)?;
        let code_len = self.suite.hash().len();
        if payload.len() < 40 + code_len {
            return Err(Error::malformed(format!(
                "BMC {bmc}: RAKP 2 of {} bytes is too short",
                payload.len()
            )));
        }
        self.check_console_id(&payload[4..8], bmc)?;
        let rakp2 = Rakp2 {
            bmc_random: payload[8..24].try_into().expect("16 bytes"),
            bmc_guid: payload[24..40].try_into().expect("16 bytes"),
            auth_code: payload[40..40 + code_len].to_vec(),
        };
        let expected = self.suite.hash().hmac(
            credentials.password.as_bytes(),
            &[
                &self.console_session_id.to_le_bytes(),
                &open.bmc_session_id.to_le_bytes(),
                &self.console_random,
                &rakp2.bmc_random,
                &rakp2.bmc_guid,
                &[self.role(), credentials.username.len() as u8],
                credentials.username.as_bytes(),
            ],
        );
        if !constant_time_eq(&expected, &rakp2.auth_code) {
            return Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "BMC {bmc} refused the credentials of user `{}` (RAKP 2 does not match the password)",
                    credentials.username
                ),
            ));
        }
        Ok(rakp2)
    }

    /// RAKP Message 3 payload: HMAC_Kuid(Rc, SIDm, ROLEm, ULENGTHm,
    /// UNAMEm) proves the console knows the password.
    pub fn rakp3(&self, open: &OpenSession, rakp2: &Rakp2, credentials: &Credentials) -> Vec<u8> {
        let code = self.suite.hash().hmac(
            credentials.password.as_bytes(),
            &[
                &rakp2.bmc_random,
                &self.console_session_id.to_le_bytes(),
                &[self.role(), credentials.username.len() as u8],
                credentials.username.as_bytes(),
            ],
        );
        let mut out = vec![self.tag, 0, 0, 0];
        out.extend_from_slice(&open.bmc_session_id.to_le_bytes());
        out.extend_from_slice(&code);
        out
    }

    /// The Session Integrity Key: HMAC_Kg(Rm, Rc, ROLEm, ULENGTHm,
    /// UNAMEm), Kg being the password when the BMC has no BMC key.
    pub fn sik(&self, rakp2: &Rakp2, credentials: &Credentials) -> Vec<u8> {
        self.suite.hash().hmac(
            credentials.password.as_bytes(),
            &[
                &self.console_random,
                &rakp2.bmc_random,
                &[self.role(), credentials.username.len() as u8],
                credentials.username.as_bytes(),
            ],
        )
    }

    /// Checks RAKP Message 4: HMAC_SIK(Rm, SIDc, GUIDc), truncated, proves
    /// the BMC derived the same session key. Returns the session keys.
    pub fn rakp4(
        &self,
        payload: &[u8],
        open: &OpenSession,
        rakp2: &Rakp2,
        credentials: &Credentials,
        bmc: &str,
    ) -> Result<SessionKeys, Error> {
        self.status(payload, "RAKP 4", bmc)?;
        let icv_len = self.suite.auth_code_len();
        if payload.len() < 8 + icv_len {
            return Err(Error::malformed(format!(
                "BMC {bmc}: RAKP 4 of {} bytes is too short",
                payload.len()
            )));
        }
        self.check_console_id(&payload[4..8], bmc)?;
        let sik = self.sik(rakp2, credentials);
        let mut expected = self.suite.hash().hmac(
            &sik,
            &[
                &self.console_random,
                &open.bmc_session_id.to_le_bytes(),
                &rakp2.bmc_guid,
            ],
        );
        expected.truncate(icv_len);
        if !constant_time_eq(&expected, &payload[8..8 + icv_len]) {
            return Err(Error::new(
                ErrorKind::Auth,
                format!("BMC {bmc}: RAKP 4 integrity check failed (a BMC key is configured?)"),
            ));
        }
        Ok(SessionKeys::derive(self.suite, &sik))
    }

    /// Fails with the status code's meaning unless it is 0.
    fn status(&self, payload: &[u8], what: &str, bmc: &str) -> Result<(), Error> {
        let Some(&status) = payload.get(1) else {
            return Err(Error::malformed(format!("BMC {bmc}: empty {what} answer")));
        };
        if status == 0 {
            return Ok(());
        }
        Err(Error::new(
            rmcp_status_kind(status),
            format!(
                "BMC {bmc} refused {what} (cipher suite {}): {} (status {status:#04x})",
                self.suite.id(),
                rmcp_status_name(status)
            ),
        ))
    }

    fn check_console_id(&self, id: &[u8], bmc: &str) -> Result<(), Error> {
        if id != self.console_session_id.to_le_bytes() {
            return Err(Error::malformed(format!(
                "BMC {bmc} answered for another console session"
            )));
        }
        Ok(())
    }
}
