//! What the fuzz targets share: input bounds for problems known and being
//! fixed elsewhere, the sample site, and running a future on a runtime.

use std::future::Future;
use std::sync::OnceLock;

use drydock::design::Design;

/// Largest YAML input the design targets read. The sample site is about
/// 20 KiB. Long HostProfile inheritance chains overflow the stack (being
/// fixed by iterative resolution, issue 13): 32 KiB holds a few hundred
/// profiles at most, well under the depth that overflows.
pub const MAX_YAML_BYTES: usize = 32 << 10;

/// Most `*` (YAML aliases) a YAML input may hold. Alias expansion is
/// unbounded (a few nested anchors referenced many times balloon memory;
/// an alias budget is being added, issue 13); 16 aliases expand at most
/// 2^8 times.
pub const MAX_ALIASES: usize = 16;

/// The YAML text of `data` when it is within the bounds above.
pub fn bounded_yaml(data: &[u8]) -> Option<&str> {
    if data.len() > MAX_YAML_BYTES {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    (text.bytes().filter(|b| *b == b'*').count() <= MAX_ALIASES).then_some(text)
}

/// The sample site (`examples/site.yaml`), parsed once.
pub fn sample_site() -> &'static Design {
    static SITE: OnceLock<Design> = OnceLock::new();
    SITE.get_or_init(|| {
        Design::parse(include_str!("../../examples/site.yaml")).expect("the sample site parses")
    })
}

/// Runs a future to completion on one shared current-thread runtime (the
/// boot action renderer runs pipelines on tokio's blocking pool; every
/// `fetch` given to it here answers at once).
pub fn ready<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime")
        })
        .block_on(future)
}
