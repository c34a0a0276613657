//! A driver package is one `.wasm` file: the component plus two top-level
//! custom sections, so one file travels.
//!
//! - `drydock-manifest`: JSON [`Manifest`] (name, version, vendor,
//!   interfaces, oob types, requested capabilities).
//! - `drydock-signature`: JSON [`Signature`]: the vendor's Ed25519 public key
//!   and its signature over [`signed_digest`], the SHA-256 of the file with
//!   the signature section left out (so the manifest is signed too).
//!
//! Keys are 32-byte Ed25519 seeds (secret) and public keys, written in hex.
//! Pure functions only: no I/O, no wasmtime.

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Name of the manifest custom section.
pub const MANIFEST_SECTION: &str = "drydock-manifest";
/// Name of the signature custom section.
pub const SIGNATURE_SECTION: &str = "drydock-signature";
/// Domain separation prefix of what is signed.
const SIGNING_CONTEXT: &[u8] = b"drydock-driver-signature-v1\0";

/// What a driver package says about itself and asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    /// Driver name (must equal the component's `info` name).
    pub name: String,
    /// Version of this package.
    pub version: String,
    /// Publisher.
    pub vendor: String,
    /// Interfaces it implements (`oob`, `node`, `network`).
    pub interfaces: Vec<String>,
    /// Oob types it claims.
    pub oob_types: Vec<String>,
    /// Capabilities it asks for; the operator's grant decides.
    pub requested: Requested,
    /// The conformance kit's report on this component (`drydock driver
    /// test -o`, embedded by `drydock driver sign --conformance`), signed
    /// with the rest of the manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conformance: Option<serde_json::Value>,
}

/// Capabilities a package asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Requested {
    /// Outbound hosts, IPs, CIDRs, with optional ports (`host:port`).
    pub outbound: Vec<String>,
    /// Memory per call, MiB.
    pub memory_mib: Option<u64>,
    /// Longest call, seconds.
    pub call_secs: Option<u64>,
}

/// The signature section's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's public key, hex.
    pub key: String,
    /// Ed25519 signature, hex.
    pub signature: String,
}

/// Why a package was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// The bytes are not a wasm binary whose sections can be walked.
    #[error("not a wasm component: {0}")]
    Malformed(String),
    /// A section is not valid JSON of its kind.
    #[error("the {section} section is invalid: {reason}")]
    Section {
        /// Which section.
        section: &'static str,
        /// Why.
        reason: String,
    },
    /// No signature and unsigned drivers are not allowed.
    #[error(
        "unsigned: the component carries no drydock-signature section and unsigned drivers are not allowed"
    )]
    Unsigned,
    /// Signed with a key the operator does not trust.
    #[error("wrong key: signed with key {key}, which is not a trusted vendor key")]
    UntrustedKey {
        /// The key, hex.
        key: String,
    },
    /// The signature does not match the content for the key it names.
    #[error(
        "tampered: the signature by trusted vendor `{vendor}` does not match the content (changed after signing, or signed with another key)"
    )]
    Tampered {
        /// The trusted vendor the signature claims.
        vendor: String,
    },
    /// A key could not be read.
    #[error("invalid key: {0}")]
    Key(String),
    /// Signed by a trusted key that may not sign drivers of this name.
    #[error(
        "wrong vendor: `{name}` is signed by trusted vendor `{vendor}`, whose key may sign only {allowed}"
    )]
    NameNotAllowed {
        /// The driver's name.
        name: String,
        /// The vendor whose key signed it.
        vendor: String,
        /// The names that key may sign.
        allowed: String,
    },
}

/// One top-level section: id, byte range of the whole section, custom name.
struct Section {
    id: u8,
    start: usize,
    end: usize,
    name: Option<String>,
    payload: std::ops::Range<usize>,
}

fn leb_u32(bytes: &[u8], pos: &mut usize) -> Result<u32, PackageError> {
    let mut result: u64 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes
            .get(*pos)
            .ok_or_else(|| PackageError::Malformed("truncated LEB128".into()))?;
        *pos += 1;
        result |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return u32::try_from(result)
                .map_err(|_| PackageError::Malformed("LEB128 too large".into()));
        }
    }
    Err(PackageError::Malformed("LEB128 too long".into()))
}

fn push_leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn sections(bytes: &[u8]) -> Result<Vec<Section>, PackageError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(PackageError::Malformed("no wasm header".into()));
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < bytes.len() {
        let start = pos;
        let id = bytes[pos];
        pos += 1;
        let size = leb_u32(bytes, &mut pos)? as usize;
        let end = pos
            .checked_add(size)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| PackageError::Malformed("section runs past the end".into()))?;
        let mut payload = pos..end;
        let name = if id == 0 {
            let mut p = pos;
            let len = leb_u32(bytes, &mut p)? as usize;
            let name_end = p
                .checked_add(len)
                .filter(|e| *e <= end)
                .ok_or_else(|| PackageError::Malformed("custom section name".into()))?;
            let name = String::from_utf8_lossy(&bytes[p..name_end]).into_owned();
            payload = name_end..end;
            Some(name)
        } else {
            None
        };
        out.push(Section {
            id,
            start,
            end,
            name,
            payload,
        });
        pos = end;
    }
    Ok(out)
}

/// The payload of the first custom section named `name`.
pub fn custom_section<'a>(bytes: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, PackageError> {
    Ok(sections(bytes)?
        .into_iter()
        .find(|s| s.id == 0 && s.name.as_deref() == Some(name))
        .map(|s| &bytes[s.payload]))
}

/// `bytes` without custom sections named `name`.
pub fn without_section(bytes: &[u8], name: &str) -> Result<Vec<u8>, PackageError> {
    let mut out = bytes[..8.min(bytes.len())].to_vec();
    for s in sections(bytes)? {
        if !(s.id == 0 && s.name.as_deref() == Some(name)) {
            out.extend_from_slice(&bytes[s.start..s.end]);
        }
    }
    Ok(out)
}

/// `bytes` with the custom section `name` set to `payload` (appended at the
/// end, replacing any section of that name).
pub fn with_section(bytes: &[u8], name: &str, payload: &[u8]) -> Result<Vec<u8>, PackageError> {
    let mut out = without_section(bytes, name)?;
    let mut body = Vec::with_capacity(payload.len() + name.len() + 5);
    push_leb(&mut body, name.len() as u32);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    out.push(0);
    push_leb(&mut out, body.len() as u32);
    out.extend_from_slice(&body);
    Ok(out)
}

/// The manifest section, if present.
pub fn manifest(bytes: &[u8]) -> Result<Option<Manifest>, PackageError> {
    custom_section(bytes, MANIFEST_SECTION)?
        .map(|p| {
            serde_json::from_slice(p).map_err(|e| PackageError::Section {
                section: MANIFEST_SECTION,
                reason: e.to_string(),
            })
        })
        .transpose()
}

/// What a signature covers: the context prefix and the SHA-256 of the file
/// without its signature section.
pub fn signed_digest(bytes: &[u8]) -> Result<Vec<u8>, PackageError> {
    let unsigned = without_section(bytes, SIGNATURE_SECTION)?;
    let mut msg = SIGNING_CONTEXT.to_vec();
    msg.extend_from_slice(&Sha256::digest(&unsigned));
    Ok(msg)
}

/// A new secret key (32-byte seed), hex.
pub fn generate_key() -> Result<String, PackageError> {
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| PackageError::Key("no randomness".into()))?;
    Ok(hex::encode(seed))
}

fn key_pair(secret_hex: &str) -> Result<Ed25519KeyPair, PackageError> {
    let seed = hex::decode(secret_hex.trim()).map_err(|e| PackageError::Key(e.to_string()))?;
    Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| PackageError::Key("a secret key is 32 bytes of hex".into()))
}

/// The public key of a secret key, hex.
pub fn public_key(secret_hex: &str) -> Result<String, PackageError> {
    Ok(hex::encode(key_pair(secret_hex)?.public_key().as_ref()))
}

/// Signs `bytes` (any previous signature is replaced); returns the signed file.
pub fn sign(bytes: &[u8], secret_hex: &str) -> Result<Vec<u8>, PackageError> {
    let pair = key_pair(secret_hex)?;
    let unsigned = without_section(bytes, SIGNATURE_SECTION)?;
    let sig = pair.sign(&signed_digest(&unsigned)?);
    let section = Signature {
        key: hex::encode(pair.public_key().as_ref()),
        signature: hex::encode(sig.as_ref()),
    };
    let payload = serde_json::to_vec(&section).expect("signature serialises");
    with_section(&unsigned, SIGNATURE_SECTION, &payload)
}

/// A vendor key the operator trusts, and the driver names it may sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    /// The vendor's name (what [`verify`] reports as the signer).
    pub vendor: String,
    /// Public key, hex.
    pub key: String,
    /// Driver names this key may sign; `*` alone: any name.
    pub names: Vec<String>,
}

impl TrustedKey {
    /// Whether this key may sign a driver named `name`.
    pub fn may_sign(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == "*" || n == name)
    }
}

impl std::str::FromStr for TrustedKey {
    type Err = PackageError;
    /// `VENDOR:HEXKEY:NAME[,NAME...]`, or `VENDOR:HEXKEY:*` for a key that
    /// may sign any driver name. The older `VENDOR:HEXKEY` is refused: a key
    /// must say which drivers it may sign, or any vendor could ship a
    /// `maas` or `redfish` that replaces the real one.
    fn from_str(s: &str) -> Result<Self, PackageError> {
        let mut parts = s.splitn(3, ':');
        let (Some(vendor), Some(key)) = (parts.next(), parts.next()) else {
            return Err(PackageError::Key(format!(
                "`{s}` is not VENDOR:PUBLICKEY:DRIVER[,DRIVER...]"
            )));
        };
        let vendor = vendor.trim();
        let raw = hex::decode(key.trim()).map_err(|e| PackageError::Key(e.to_string()))?;
        if raw.len() != 32 {
            return Err(PackageError::Key(format!(
                "the key of `{vendor}` is not 32 bytes of hex"
            )));
        }
        let Some(names) = parts.next() else {
            return Err(PackageError::Key(format!(
                "the key of `{vendor}` names no driver: write `{vendor}:{}:NAME[,NAME...]` \
                 with the drivers it may sign (`*` for any name)",
                key.trim()
            )));
        };
        let names: Vec<String> = names
            .split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return Err(PackageError::Key(format!(
                "the key of `{vendor}` names no driver (`*` for any name)"
            )));
        }
        Ok(TrustedKey {
            vendor: vendor.to_owned(),
            key: key.trim().to_lowercase(),
            names,
        })
    }
}

/// Checks the signature of `bytes` against `trusted` and that the signing
/// key may sign a driver named `name`. Returns the signer's vendor name, or
/// `None` for an unsigned file when `allow_unsigned`.
pub fn verify_named(
    bytes: &[u8],
    trusted: &[TrustedKey],
    allow_unsigned: bool,
    name: &str,
) -> Result<Option<String>, PackageError> {
    let Some(key) = signer(bytes, trusted, allow_unsigned)? else {
        return Ok(None);
    };
    if !key.may_sign(name) {
        return Err(PackageError::NameNotAllowed {
            name: name.to_owned(),
            vendor: key.vendor.clone(),
            allowed: key.names.join(", "),
        });
    }
    Ok(Some(key.vendor.clone()))
}

/// Checks the signature of `bytes` against `trusted`. Returns the signer's
/// vendor name, or `None` for an unsigned file when `allow_unsigned`. Does
/// not check which names the key may sign: see [`verify_named`].
pub fn verify(
    bytes: &[u8],
    trusted: &[TrustedKey],
    allow_unsigned: bool,
) -> Result<Option<String>, PackageError> {
    Ok(signer(bytes, trusted, allow_unsigned)?.map(|k| k.vendor.clone()))
}

/// The trusted key whose valid signature `bytes` carry.
fn signer<'a>(
    bytes: &[u8],
    trusted: &'a [TrustedKey],
    allow_unsigned: bool,
) -> Result<Option<&'a TrustedKey>, PackageError> {
    let Some(payload) = custom_section(bytes, SIGNATURE_SECTION)? else {
        return if allow_unsigned {
            Ok(None)
        } else {
            Err(PackageError::Unsigned)
        };
    };
    let sig: Signature = serde_json::from_slice(payload).map_err(|e| PackageError::Section {
        section: SIGNATURE_SECTION,
        reason: e.to_string(),
    })?;
    let key = sig.key.to_lowercase();
    let Some(vendor) = trusted.iter().find(|t| t.key == key) else {
        return Err(PackageError::UntrustedKey { key });
    };
    let raw_key = hex::decode(&key).map_err(|e| PackageError::Key(e.to_string()))?;
    let raw_sig = hex::decode(&sig.signature).map_err(|_| PackageError::Tampered {
        vendor: vendor.vendor.clone(),
    })?;
    UnparsedPublicKey::new(&ED25519, raw_key)
        .verify(&signed_digest(bytes)?, &raw_sig)
        .map_err(|_| PackageError::Tampered {
            vendor: vendor.vendor.clone(),
        })?;
    Ok(Some(vendor))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal component: header and one custom section.
    fn component() -> Vec<u8> {
        let header = b"\0asm\x0d\x00\x01\x00".to_vec();
        with_section(&header, "other", b"data").unwrap()
    }

    #[test]
    fn sections_round_trip() {
        let c = component();
        let m = Manifest {
            name: "sim".into(),
            version: "2.0.0".into(),
            ..Manifest::default()
        };
        let with = with_section(&c, MANIFEST_SECTION, &serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(manifest(&with).unwrap(), Some(m));
        assert_eq!(custom_section(&with, "other").unwrap(), Some(&b"data"[..]));
        assert_eq!(without_section(&with, MANIFEST_SECTION).unwrap(), c);
    }

    #[test]
    fn signatures() {
        let secret = generate_key().unwrap();
        let trusted = vec![TrustedKey {
            vendor: "acme".into(),
            key: public_key(&secret).unwrap(),
            names: vec!["sim".into()],
        }];
        let signed = sign(&component(), &secret).unwrap();
        assert_eq!(verify(&signed, &trusted, false), Ok(Some("acme".into())));
        // Re-signing replaces the signature.
        assert_eq!(
            verify(&sign(&signed, &secret).unwrap(), &trusted, false),
            Ok(Some("acme".into()))
        );
        // Unsigned.
        assert_eq!(
            verify(&component(), &trusted, false),
            Err(PackageError::Unsigned)
        );
        assert_eq!(verify(&component(), &trusted, true), Ok(None));
        // Tampered: a byte of the signed content changes.
        let mut tampered = signed.clone();
        let at = tampered.windows(4).position(|w| w == b"data").unwrap();
        tampered[at] = b'D';
        assert_eq!(
            verify(&tampered, &trusted, false),
            Err(PackageError::Tampered {
                vendor: "acme".into()
            })
        );
        // Wrong key.
        let other = generate_key().unwrap();
        let by_other = sign(&component(), &other).unwrap();
        assert!(matches!(
            verify(&by_other, &trusted, false),
            Err(PackageError::UntrustedKey { .. })
        ));
        assert!("acme:zz".parse::<TrustedKey>().is_err());
    }

    #[test]
    fn keys_are_bound_to_driver_names() {
        let secret = generate_key().unwrap();
        let public = public_key(&secret).unwrap();
        // The old form names no driver: refused, saying what to write.
        let err = format!("acme:{public}").parse::<TrustedKey>().unwrap_err();
        assert!(err.to_string().contains("NAME[,NAME...]"), "{err}");
        let key: TrustedKey = format!("acme:{public}:sim, eos").parse().unwrap();
        assert_eq!(key.names, ["sim", "eos"]);
        let signed = sign(&component(), &secret).unwrap();
        let trusted = [key];
        assert_eq!(
            verify_named(&signed, &trusted, false, "eos"),
            Ok(Some("acme".into()))
        );
        assert_eq!(
            verify_named(&signed, &trusted, false, "maas"),
            Err(PackageError::NameNotAllowed {
                name: "maas".into(),
                vendor: "acme".into(),
                allowed: "sim, eos".into()
            })
        );
        let any: TrustedKey = format!("acme:{public}:*").parse().unwrap();
        assert_eq!(
            verify_named(&signed, &[any], false, "maas"),
            Ok(Some("acme".into()))
        );
        assert!(format!("acme:{public}:").parse::<TrustedKey>().is_err());
    }
}
