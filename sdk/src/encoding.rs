//! Encodings drivers need, from well-kept crates that build for
//! `wasm32-wasip2`: base64 ([`base64`] crate), URL percent-encoding
//! ([`percent_encoding`], from the `rust-url` project) and
//! `multipart/form-data` bodies ([`form_data_builder`], RFC 7578, a random
//! boundary per form).
//!
//! The crates are re-exported for what the helpers here do not cover.
//!
//! ```no_run
//! # fn main() -> drydock_sdk::Result<()> {
//! use drydock_sdk::encoding::{self, Multipart};
//! use drydock_sdk::http::Request;
//!
//! let mut form = Multipart::new();
//! form.text("user_data", &encoding::base64_encode(b"#cloud-config\n"))?;
//! let request = form.into_request(Request::post(format!(
//!     "http://maas:5240/MAAS/api/2.0/machines/abc/?op={}",
//!     encoding::url_encode("deploy")
//! )))?;
//! # let _ = request; Ok(()) }
//! ```

pub use base64;
pub use form_data_builder;
pub use percent_encoding;

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::http::Request;
use crate::{DriverError, Result};

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64_encode(input: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// Decodes standard base64 with padding; [`DriverError::InvalidInput`] if
/// `input` is not.
pub fn base64_decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(input)
        .map_err(|e| DriverError::InvalidInput(format!("not valid base64: {e}")))
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`):
/// what OAuth 1.0 and query strings need escaped.
pub const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `text` (UTF-8) for a URL query value, a path segment or
/// an OAuth parameter: everything but RFC 3986's unreserved characters.
pub fn url_encode(text: &str) -> String {
    utf8_percent_encode(text, RFC3986).to_string()
}

/// `k1=v1&k2=v2`, each key and value [`url_encode`]d.
pub fn query<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", url_encode(k.as_ref()), url_encode(v.as_ref())))
        .collect::<Vec<_>>()
        .join("&")
}

/// A `multipart/form-data` body (RFC 7578) being written, with a random
/// boundary; [`Multipart::into_request`] puts it on a request with its
/// `content-type`.
pub struct Multipart {
    form: form_data_builder::FormData<Vec<u8>>,
}

impl std::fmt::Debug for Multipart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Field values may be secrets.
        f.debug_struct("Multipart").finish_non_exhaustive()
    }
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

impl Multipart {
    /// An empty form.
    pub fn new() -> Self {
        Multipart {
            form: form_data_builder::FormData::new(Vec::new()),
        }
    }

    /// Adds a text field (a name may repeat).
    pub fn text(&mut self, name: &str, value: &str) -> Result<()> {
        self.form
            .write_field(name, value)
            .map_err(|e| DriverError::InvalidInput(format!("form field `{name}`: {e}")))
    }

    /// The `content-type` header value, naming this form's boundary.
    pub fn content_type(&self) -> String {
        self.form.content_type_header()
    }

    /// The finished body.
    pub fn finish(mut self) -> Result<(String, Vec<u8>)> {
        let content_type = self.content_type();
        let body = self
            .form
            .finish()
            .map_err(|e| DriverError::InvalidInput(format!("cannot finish the form: {e}")))?;
        Ok((content_type, body))
    }

    /// `request` with this form as its body and its `content-type`.
    pub fn into_request(self, request: Request) -> Result<Request> {
        let (content_type, body) = self.finish()?;
        Ok(request.header("content-type", content_type).body(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_and_round_trips() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input), want);
            assert_eq!(base64_decode(want).unwrap(), input.as_bytes());
        }
        assert!(matches!(
            base64_decode("!!"),
            Err(DriverError::InvalidInput(_))
        ));
    }

    #[test]
    fn url_encoding_keeps_only_unreserved_characters() {
        assert_eq!(url_encode("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            query([("op", "deploy"), ("x y", "1&2")]),
            "op=deploy&x%20y=1%262"
        );
    }

    #[test]
    fn multipart_bodies_carry_their_own_boundary() {
        let mut a = Multipart::new();
        a.text("distro_series", "noble").unwrap();
        a.text("tag", "x").unwrap();
        a.text("tag", "y").unwrap();
        let (content_type, body) = a.finish().unwrap();
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect(&content_type);
        let body = String::from_utf8(body).unwrap();
        assert!(body.starts_with(&format!("--{boundary}\r\n")), "{body}");
        assert!(body.ends_with(&format!("--{boundary}--\r\n")), "{body}");
        assert!(
            body.contains("name=\"distro_series\"\r\n\r\nnoble\r\n"),
            "{body}"
        );
        assert_eq!(body.matches("name=\"tag\"").count(), 2);
        let (other, _) = Multipart::new().finish().unwrap();
        assert_ne!(other, content_type, "a fresh boundary per form");
    }
}
