//! Fetching designs from a `design_ref` and caching them by content.
//!
//! - `file:///abs/path.yaml` or `file:relative.yaml`: read inside the
//!   operator's design directory only (opened once as a cap-std capability,
//!   so a reference that arrives over the API cannot read other files);
//! - `http://`, `https://`, and `deckhand+http(s)://` (read as http).
//!
//! Parsed designs are cached by the SHA-256 of their text, so a design is
//! parsed once however many tasks use it.

use super::Design;
use super::documents::YamlError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest design accepted.
pub const MAX_DESIGN_BYTES: usize = 16 << 20;
/// Parsed designs kept.
const CACHE_ENTRIES: usize = 32;

/// Why a design could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The reference is malformed or of an unsupported scheme.
    #[error("design_ref `{0}`: {1}")]
    BadRef(String, String),
    /// The design could not be read or fetched.
    #[error("design_ref `{0}`: {1}")]
    Fetch(String, String),
    /// The text is not YAML.
    #[error("design_ref `{0}`: {1}")]
    Yaml(String, YamlError),
}

/// Where designs come from.
pub struct DesignSource {
    dir: Option<(PathBuf, cap_std::fs::Dir)>,
    http: reqwest::Client,
    cache: Mutex<HashMap<[u8; 32], Arc<Design>>>,
}

impl std::fmt::Debug for DesignSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesignSource")
            .field("dir", &self.dir.as_ref().map(|(p, _)| p))
            .finish_non_exhaustive()
    }
}

impl DesignSource {
    /// A source reading `file:` references inside `dir` (none: `file:`
    /// references are refused).
    pub fn new(dir: Option<&Path>) -> std::io::Result<DesignSource> {
        let dir = match dir {
            Some(d) => {
                let canonical = d.canonicalize().map_err(|e| {
                    std::io::Error::new(e.kind(), format!("design directory {}: {e}", d.display()))
                })?;
                let cap =
                    cap_std::fs::Dir::open_ambient_dir(&canonical, cap_std::ambient_authority())?;
                Some((canonical, cap))
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(DesignSource {
            dir,
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The design directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|(p, _)| p.as_path())
    }

    /// Fetches and parses `design_ref` (parsing is skipped when the same
    /// text was parsed before).
    pub async fn load(&self, design_ref: &str) -> Result<Arc<Design>, SourceError> {
        let text = self.fetch(design_ref).await?;
        self.parse(design_ref, &text)
    }

    /// Parses `text`, through the content cache.
    pub fn parse(&self, design_ref: &str, text: &str) -> Result<Arc<Design>, SourceError> {
        let key: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if let Some(d) = self.cache.lock().expect("design cache").get(&key) {
            return Ok(d.clone());
        }
        let design =
            Arc::new(Design::parse(text).map_err(|e| SourceError::Yaml(design_ref.to_owned(), e))?);
        let mut cache = self.cache.lock().expect("design cache");
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, design.clone());
        Ok(design)
    }

    async fn fetch(&self, design_ref: &str) -> Result<String, SourceError> {
        let bytes = self.fetch_bytes(design_ref).await?;
        String::from_utf8(bytes).map_err(|_| {
            SourceError::Fetch(design_ref.to_owned(), "the design is not UTF-8 text".into())
        })
    }

    /// Reads a reference as a design reference is read (`file:` inside the
    /// design directory, http(s), deckhand+http(s); at most 16 MiB): boot
    /// action assets' `location`s.
    pub async fn fetch_bytes(&self, design_ref: &str) -> Result<Vec<u8>, SourceError> {
        let bad = |m: &str| SourceError::BadRef(design_ref.to_owned(), m.to_owned());
        let fetch = |m: String| SourceError::Fetch(design_ref.to_owned(), m);
        let trimmed = design_ref.trim();
        if let Some(path) = trimmed.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            return self.read_file(path).map_err(|e| match e {
                FileError::Refused(m) => bad(&m),
                FileError::Io(m) => fetch(m),
            });
        }
        let url = trimmed.strip_prefix("deckhand+").unwrap_or(trimmed);
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("use file://, http(s):// or deckhand+http(s)://"));
        }
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| fetch(format!("fetch failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(fetch(format!("the server answered HTTP {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| fetch(format!("reading the response: {e}")))?
        {
            if body.len() + chunk.len() > MAX_DESIGN_BYTES {
                return Err(fetch(format!(
                    "the design is larger than {MAX_DESIGN_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, FileError> {
        let Some((root, dir)) = &self.dir else {
            return Err(FileError::Refused(
                "file: references need a design directory (config `design_dir`)".into(),
            ));
        };
        let p = Path::new(path);
        let relative = if p.is_absolute() {
            p.strip_prefix(root).map_err(|_| {
                FileError::Refused(format!(
                    "file references must be inside the design directory {}",
                    root.display()
                ))
            })?
        } else {
            p
        };
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(FileError::Refused(
                "the path may not contain `..` or `.`".into(),
            ));
        }
        use std::io::Read;
        let mut file = dir
            .open(relative)
            .map_err(|e| FileError::Io(format!("cannot open {}: {e}", relative.display())))?;
        let mut text = Vec::new();
        (&mut file)
            .take(MAX_DESIGN_BYTES as u64 + 1)
            .read_to_end(&mut text)
            .map_err(|e| FileError::Io(format!("cannot read {}: {e}", relative.display())))?;
        if text.len() > MAX_DESIGN_BYTES {
            return Err(FileError::Io(format!(
                "the design is larger than {MAX_DESIGN_BYTES} bytes"
            )));
        }
        Ok(text)
    }
}

enum FileError {
    Refused(String),
    Io(String),
}
