//! Fetching designs from a `design_ref`, parsing and validating them off
//! the async workers, and caching them by content.
//!
//! - `file:///abs/path.yaml` or `file:relative.yaml`: read inside the
//!   operator's design directory only (opened once as a cap-std capability,
//!   so a reference that arrives over the API cannot read other files);
//! - `https://`, `http://`, `deckhand+http(s)://` and
//!   `promenade+http(s)://` (read as http(s); the last two with the
//!   service token, see [`DesignSource::with_token`]): only from the
//!   sources the operator allows ([`super::fetch`]);
//! - any reference may end in `#sha256=HEX`: content with another digest is
//!   refused.
//!
//! Parsing and validation run on the blocking pool, a few designs at a
//! time, each within a time budget ([`DesignLimits`]): a hostile design
//! costs its own request or task an error, never an async worker.
//! Parsed designs are cached by the SHA-256 of their text, so a design is
//! parsed once however many tasks use it.

use super::Design;
use super::fetch::{AuthToken, DesignSources, FetchError, Fetcher, check_pin, split_pin};
use super::limits::{DesignLimits, ParseError};
use super::validate::{Finding, PlatformCatalog};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Parsed designs kept.
const CACHE_ENTRIES: usize = 32;
/// Text bytes of the parsed designs kept (the cache is emptied past it, so
/// designs near the limits cannot pile up in memory).
const CACHE_BYTES: usize = 32 << 20;

/// Why a design could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The reference is malformed or of an unsupported scheme.
    #[error("design_ref `{0}`: {1}")]
    BadRef(String, String),
    /// The design sources policy refuses the reference (or a redirect, or
    /// an address it resolves to).
    #[error("design_ref `{0}`: refused: {1}")]
    Refused(String, String),
    /// The design could not be read or fetched.
    #[error("design_ref `{0}`: {1}")]
    Fetch(String, String),
    /// The text is not YAML or exceeds a design limit.
    #[error("design_ref `{0}`: {1}")]
    Parse(String, ParseError),
    /// Parsing or validating took longer than the time budget.
    #[error("design_ref `{0}`: {1} took longer than {2} s (design_limits.time_budget_secs)")]
    TimedOut(String, &'static str, u64),
    /// Parsing or validating failed unexpectedly (a bug; the design is
    /// refused, the process carries on).
    #[error("design_ref `{0}`: {1} failed unexpectedly")]
    Crashed(String, &'static str),
}

/// Where designs come from.
pub struct DesignSource {
    dir: Option<(PathBuf, cap_std::fs::Dir)>,
    fetcher: Fetcher,
    /// The token `deckhand+`/`promenade+` references are fetched with.
    token: Option<Arc<dyn AuthToken>>,
    limits: DesignLimits,
    /// Designs parsed or validated at once.
    work: Arc<Semaphore>,
    /// Parsed designs by the SHA-256 of their text, with the text's size.
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

/// A parsed design and the size of its text.
type Cached = (Arc<Design>, usize);

impl std::fmt::Debug for DesignSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesignSource")
            .field("dir", &self.dir.as_ref().map(|(p, _)| p))
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DesignSource {
    /// A source reading `file:` references inside `dir` (none: `file:`
    /// references are refused) and network references from `sources`,
    /// within `limits`.
    pub fn new(
        dir: Option<&Path>,
        sources: &DesignSources,
        limits: DesignLimits,
    ) -> std::io::Result<DesignSource> {
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
        let fetcher = Fetcher::new(sources, limits.max_bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(DesignSource {
            dir,
            fetcher,
            token: None,
            work: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            limits,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The design directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|(p, _)| p.as_path())
    }

    /// Fetches `deckhand+http(s)://` and `promenade+http(s)://`
    /// references with `token`'s token in `X-Auth-Token` (following no
    /// redirect), as Drydock fetches them with its Keystone service token.
    pub fn with_token(mut self, token: Arc<dyn AuthToken>) -> DesignSource {
        self.token = Some(token);
        self
    }

    /// The limits designs are held to.
    pub fn limits(&self) -> &DesignLimits {
        &self.limits
    }

    /// Fetches and parses `design_ref` (parsing is skipped when the same
    /// text was parsed before).
    pub async fn load(&self, design_ref: &str) -> Result<Arc<Design>, SourceError> {
        let text = self.fetch(design_ref).await?;
        self.parse(design_ref, text).await
    }

    /// Parses `text`, through the content cache, on the blocking pool
    /// within the time budget.
    pub async fn parse(&self, design_ref: &str, text: String) -> Result<Arc<Design>, SourceError> {
        let key: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if let Some((d, _)) = self.cache.lock().expect("design cache").get(&key) {
            return Ok(d.clone());
        }
        let size = text.len();
        let limits = self.limits.clone();
        let design = self
            .off_workers(design_ref, "parsing", move || {
                Design::parse_with(&text, &limits)
            })
            .await?
            .map_err(|e| SourceError::Parse(design_ref.to_owned(), e))?;
        let design = Arc::new(design);
        let mut cache = self.cache.lock().expect("design cache");
        let held: usize = cache.values().map(|(_, n)| n).sum();
        if cache.len() >= CACHE_ENTRIES || held + size > CACHE_BYTES {
            cache.clear();
        }
        cache.insert(key, (design.clone(), size));
        Ok(design)
    }

    /// Validates `design` ([`super::validate::validate`]) on the blocking
    /// pool within the time budget.
    pub async fn validate(
        &self,
        design_ref: &str,
        design: Arc<Design>,
        catalog: Option<PlatformCatalog>,
    ) -> Result<Vec<Finding>, SourceError> {
        self.off_workers(design_ref, "validation", move || {
            super::validate::validate(&design, catalog.as_ref())
        })
        .await
    }

    /// Runs `work` on the blocking pool once a slot is free, within the
    /// time budget (waiting included). A run past its budget keeps its slot
    /// until it ends, so slow designs cannot pile up.
    async fn off_workers<T: Send + 'static>(
        &self,
        design_ref: &str,
        what: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, SourceError> {
        let budget = self.limits.time_budget();
        let slots = self.work.clone();
        let run = async move {
            let slot = slots.acquire_owned().await;
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                work()
            })
            .await
        };
        match tokio::time::timeout(budget, run).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::error!(design_ref, error = %e, "design {what} failed");
                Err(SourceError::Crashed(design_ref.to_owned(), what))
            }
            Err(_) => Err(SourceError::TimedOut(
                design_ref.to_owned(),
                what,
                budget.as_secs(),
            )),
        }
    }

    async fn fetch(&self, design_ref: &str) -> Result<String, SourceError> {
        let bytes = self.fetch_bytes(design_ref).await?;
        String::from_utf8(bytes).map_err(|_| {
            SourceError::Fetch(design_ref.to_owned(), "the design is not UTF-8 text".into())
        })
    }

    /// Reads a reference as a design reference is read (`file:` inside the
    /// design directory, or from an allowed source; at most
    /// `design_limits.max_bytes`; `#sha256=` pins checked): designs and
    /// boot action assets' `location`s.
    pub async fn fetch_bytes(&self, design_ref: &str) -> Result<Vec<u8>, SourceError> {
        let bad = |m: &str| SourceError::BadRef(design_ref.to_owned(), m.to_owned());
        let fetch = |m: String| SourceError::Fetch(design_ref.to_owned(), m);
        let (trimmed, pin) = split_pin(design_ref.trim()).map_err(|m| bad(&m))?;
        let bytes = if let Some(path) = trimmed.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            self.read_file(path).map_err(|e| match e {
                FileError::Refused(m) => bad(&m),
                FileError::Io(m) => fetch(m),
            })?
        } else {
            // Airship's service references are fetched with the service
            // token, as Drydock fetches them.
            let service = ["deckhand+", "promenade+"]
                .iter()
                .find_map(|p| trimmed.strip_prefix(p));
            let url = service.unwrap_or(trimmed);
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(
                    "use file://, http(s)://, deckhand+http(s):// or promenade+http(s)://",
                ));
            }
            let token = match (service, &self.token) {
                (Some(_), Some(source)) => Some(
                    source
                        .token()
                        .await
                        .map_err(|e| fetch(format!("no service token: {e}")))?,
                ),
                _ => None,
            };
            self.fetcher
                .get(url, token.as_deref())
                .await
                .map_err(|e| match e {
                    FetchError::Refused(m) => SourceError::Refused(design_ref.to_owned(), m),
                    FetchError::Failed(m) => fetch(m),
                })?
        };
        check_pin(&bytes, pin).map_err(fetch)?;
        Ok(bytes)
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
            .take(self.limits.max_bytes as u64 + 1)
            .read_to_end(&mut text)
            .map_err(|e| FileError::Io(format!("cannot read {}: {e}", relative.display())))?;
        if text.len() > self.limits.max_bytes {
            return Err(FileError::Io(format!(
                "the file is larger than {} bytes (design_limits.max_bytes)",
                self.limits.max_bytes
            )));
        }
        Ok(text)
    }
}

enum FileError {
    Refused(String),
    Io(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_past_its_budget_is_cut_off_and_keeps_its_slot() {
        let limits = DesignLimits {
            time_budget_secs: 1,
            max_concurrent: 1,
            ..DesignLimits::default()
        };
        let source = DesignSource::new(None, &DesignSources::default(), limits).unwrap();
        // Work that never ends on its own (a design the budget must cut).
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let err = source
            .off_workers("stuck", "parsing", move || wait.recv())
            .await
            .unwrap_err();
        assert!(
            matches!(err, SourceError::TimedOut(_, "parsing", 1)),
            "{err}"
        );
        assert!(err.to_string().contains("design_limits.time_budget_secs"));
        // Its slot is still taken: the next design waits, within its own
        // budget, rather than adding a thread.
        let err = source
            .off_workers("next", "validation", || ())
            .await
            .unwrap_err();
        assert!(matches!(err, SourceError::TimedOut(..)), "{err}");
        release.send(()).unwrap();
        // Once the stuck work ends, designs run again.
        let mut ran = false;
        for _ in 0..50 {
            if source.off_workers("again", "parsing", || ()).await.is_ok() {
                ran = true;
                break;
            }
        }
        assert!(ran);
    }
}
