//! Random values from the WASI random interface (`wasi:random/random`): the
//! host's cryptographically secure source, never the clock.
//!
//! Use them for nonces (OAuth), request ids and jitter.

/// A random `u64` from the host's secure source.
pub fn u64() -> u64 {
    wasip2::random::random::get_random_u64()
}

/// `len` random bytes from the host's secure source.
pub fn bytes(len: usize) -> Vec<u8> {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    wasip2::random::random::get_random_bytes(len)
}

/// A fresh nonce: 128 random bits as 32 lower-case hex digits (OAuth 1.0
/// `oauth_nonce`, request ids).
pub fn nonce() -> String {
    hex(&bytes(16))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(super::hex(&[0, 0x0f, 0xab, 0xff]), "000fabff");
    }
}
