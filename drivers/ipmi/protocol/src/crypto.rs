//! The cryptography of an RMCP+ session: the cipher suites this library
//! speaks, RAKP's HMACs, the session keys (SIK, K1, K2), per-packet
//! integrity codes and AES-CBC-128 confidentiality (IPMI 2.0 §13.28-13.29).
//!
//! Everything is RustCrypto's (`hmac`, `sha1`, `sha2`, `aes`, `cbc`); this
//! module only arranges the inputs as the specification says.

use aes::Aes128;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::error::Error;

/// AES block size: IVs and the confidentiality padding.
pub const AES_BLOCK: usize = 16;

/// An RMCP+ cipher suite: authentication (RAKP), integrity and
/// confidentiality algorithms together (IPMI 2.0 table 22-20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CipherSuite {
    /// Suite 3: RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128. What nearly
    /// every BMC offers.
    Suite3,
    /// Suite 17: RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128. The
    /// stronger choice where the BMC offers it.
    Suite17,
}

impl CipherSuite {
    /// The suite's number.
    pub fn id(self) -> u8 {
        match self {
            Self::Suite3 => 3,
            Self::Suite17 => 17,
        }
    }

    /// The suite numbered `id`, if this library speaks it.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            3 => Some(Self::Suite3),
            17 => Some(Self::Suite17),
            _ => None,
        }
    }

    /// Authentication algorithm number (RAKP-HMAC-SHA1 = 1,
    /// RAKP-HMAC-SHA256 = 3).
    pub fn auth_algorithm(self) -> u8 {
        match self {
            Self::Suite3 => 0x01,
            Self::Suite17 => 0x03,
        }
    }

    /// Integrity algorithm number (HMAC-SHA1-96 = 1, HMAC-SHA256-128 = 4).
    pub fn integrity_algorithm(self) -> u8 {
        match self {
            Self::Suite3 => 0x01,
            Self::Suite17 => 0x04,
        }
    }

    /// Confidentiality algorithm number (AES-CBC-128 = 1).
    pub fn confidentiality_algorithm(self) -> u8 {
        0x01
    }

    /// The hash under this suite's HMACs.
    pub fn hash(self) -> Hash {
        match self {
            Self::Suite3 => Hash::Sha1,
            Self::Suite17 => Hash::Sha256,
        }
    }

    /// Length of the per-packet integrity code (HMAC-SHA1-96: 12,
    /// HMAC-SHA256-128: 16); also RAKP 4's integrity check value.
    pub fn auth_code_len(self) -> usize {
        match self {
            Self::Suite3 => 12,
            Self::Suite17 => 16,
        }
    }
}

/// A hash function under HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-1 (20-byte digests).
    Sha1,
    /// SHA-256 (32-byte digests).
    Sha256,
}

impl Hash {
    /// Digest length in bytes.
    pub fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// Always false: a digest is never empty (here for clippy's sake).
    pub fn is_empty(self) -> bool {
        false
    }

    /// HMAC of the concatenated `parts` under `key`.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC takes keys of any length.
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Sha1 => run::<Hmac<Sha1>>(key, parts),
            Self::Sha256 => run::<Hmac<Sha256>>(key, parts),
        }
    }
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The keys of an established session.
#[derive(Clone)]
pub struct SessionKeys {
    /// The suite they belong to.
    pub suite: CipherSuite,
    /// K1: the integrity key.
    pub k1: Vec<u8>,
    /// The AES-128 key: the first 16 bytes of K2.
    pub aes_key: [u8; 16],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// K1 = HMAC_SIK(0x01 × N) and K2 = HMAC_SIK(0x02 × N), N the digest
    /// length (IPMI 2.0 §13.32).
    pub fn derive(suite: CipherSuite, sik: &[u8]) -> Self {
        let hash = suite.hash();
        let k1 = hash.hmac(sik, &[&vec![0x01; hash.len()]]);
        let k2 = hash.hmac(sik, &[&vec![0x02; hash.len()]]);
        let mut aes_key = [0; 16];
        aes_key.copy_from_slice(&k2[..16]);
        Self { suite, k1, aes_key }
    }

    /// The integrity code of a packet's bytes from the auth type through
    /// the next-header field: HMAC_K1 truncated to the suite's length.
    pub fn auth_code(&self, covered: &[u8]) -> Vec<u8> {
        let mut code = self.suite.hash().hmac(&self.k1, &[covered]);
        code.truncate(self.suite.auth_code_len());
        code
    }

    /// Encrypts a payload: `IV | AES-CBC(data | 1, 2, ..., n | n)`, padded
    /// to whole blocks (IPMI 2.0 §13.29).
    pub fn encrypt(&self, iv: [u8; AES_BLOCK], data: &[u8]) -> Vec<u8> {
        let pad = (AES_BLOCK - (data.len() + 1) % AES_BLOCK) % AES_BLOCK;
        let mut buf = Vec::with_capacity(AES_BLOCK + data.len() + pad + 1);
        buf.extend_from_slice(data);
        buf.extend(1..=pad as u8);
        buf.push(pad as u8);
        let len = buf.len();
        cbc::Encryptor::<Aes128>::new(&self.aes_key.into(), &iv.into())
            .encrypt_padded::<NoPadding>(&mut buf, len)
            .expect("the buffer is a whole number of blocks");
        let mut out = iv.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Decrypts `IV | ciphertext` and strips the confidentiality padding,
    /// checking it.
    pub fn decrypt(&self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        if payload.len() < 2 * AES_BLOCK || !payload.len().is_multiple_of(AES_BLOCK) {
            return Err(Error::malformed(format!(
                "encrypted payload of {} bytes is not an IV and whole AES blocks",
                payload.len()
            )));
        }
        let (iv, ciphertext) = payload.split_at(AES_BLOCK);
        let iv: [u8; AES_BLOCK] = iv.try_into().expect("split at the block size");
        let mut buf = ciphertext.to_vec();
        let plain = cbc::Decryptor::<Aes128>::new(&self.aes_key.into(), &iv.into())
            .decrypt_padded::<NoPadding>(&mut buf)
            .map_err(|_| Error::malformed("encrypted payload does not decrypt"))?;
        let pad = *plain.last().expect("at least one block") as usize;
        if pad + 1 > plain.len()
            || plain[plain.len() - 1 - pad..plain.len() - 1]
                .iter()
                .enumerate()
                .any(|(i, &b)| b as usize != i + 1)
        {
            return Err(Error::malformed(
                "encrypted payload has an invalid confidentiality trailer",
            ));
        }
        Ok(plain[..plain.len() - 1 - pad].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmacs_match_rfc_2202_and_4231() {
        // RFC 2202 test case 2 (HMAC-SHA1) and RFC 4231 test case 2
        // (HMAC-SHA256): key "Jefe", "what do ya want for nothing?".
        let parts: [&[u8]; 2] = [b"what do ya want ", b"for nothing?"];
        assert_eq!(
            Hash::Sha1.hmac(b"Jefe", &parts),
            hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
        assert_eq!(
            Hash::Sha256.hmac(b"Jefe", &parts),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn aes_cbc_matches_nist_sp800_38a() {
        // SP 800-38A F.2.1, first block, with the IPMI trailer appended:
        // the first ciphertext block does not depend on what follows.
        let keys = SessionKeys {
            suite: CipherSuite::Suite3,
            k1: vec![],
            aes_key: hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap(),
        };
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let block = hex("6bc1bee22e409f96e93d7e117393172a");
        let out = keys.encrypt(iv, &block);
        assert_eq!(&out[..16], &iv);
        assert_eq!(&out[16..32], &hex("7649abac8119b246cee98e9b12e9197d")[..]);
        assert_eq!(out.len(), 48, "16 data bytes need a whole trailer block");
        assert_eq!(keys.decrypt(&out).unwrap(), block);
    }

    #[test]
    fn encryption_round_trips_every_length_and_rejects_bad_trailers() {
        let keys = SessionKeys::derive(CipherSuite::Suite17, b"some session key");
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let out = keys.encrypt([7; 16], &data);
            assert_eq!(out.len() % 16, 0);
            assert_eq!(keys.decrypt(&out).unwrap(), data, "length {len}");
        }
        // A flipped last ciphertext byte garbles the trailer.
        let mut out = keys.encrypt([7; 16], b"hello");
        *out.last_mut().unwrap() ^= 1;
        assert!(keys.decrypt(&out).is_err());
        assert!(keys.decrypt(&[0; 20]).is_err());
    }

    #[test]
    fn session_keys_follow_the_specification() {
        let sik = Hash::Sha1.hmac(b"password", &[b"rm rc role name"]);
        let keys = SessionKeys::derive(CipherSuite::Suite3, &sik);
        assert_eq!(keys.k1, Hash::Sha1.hmac(&sik, &[&[1; 20]]));
        assert_eq!(keys.aes_key[..], Hash::Sha1.hmac(&sik, &[&[2; 20]])[..16]);
        assert_eq!(keys.auth_code(b"abc").len(), 12);
        let keys = SessionKeys::derive(CipherSuite::Suite17, &sik);
        assert_eq!(keys.k1, Hash::Sha256.hmac(&sik, &[&[1; 32]]));
        assert_eq!(keys.auth_code(b"abc").len(), 16);
    }
}
