//! A `BootAction` document's body (YAML, as in a design): reading it (node
//! filter, assets, permissions, pipeline segments, template syntax, package
//! lists), rendering every asset for three of the sample site's nodes (the
//! pipeline and Jinja templates with Drydock's context; `location`s answered
//! at once), and the gzipped tar the node downloads.
#![no_main]

use drydock::api::bootactions::tarball;
use drydock::design::bootaction::{ActionContext, AssetType, read, render};
use drydock::design::documents::{Document, Kind};
use drydock_fuzz::{bounded_yaml, ready, sample_site};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// What a `location` fetch answers: a package list, a failure, or the
/// location itself as the asset's bytes.
async fn fetch(url: String) -> Result<Vec<u8>, String> {
    if url.contains("pkg") {
        Ok(b"curl: null\njq: '1.6*'\n".to_vec())
    } else if url.contains("fail") {
        Err("not found".into())
    } else {
        Ok(url.into_bytes())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = bounded_yaml(data) else {
        return;
    };
    let Ok(body) = serde_yaml_ng::from_str::<Value>(text) else {
        return;
    };
    let doc = Document {
        kind: Kind::BootAction,
        form: drydock::design::documents::Form::Deckhand,
        name: "fuzz".into(),
        data: body,
        index: 0,
    };
    let Ok(action) = read(&doc) else {
        return;
    };
    let site = sample_site();
    let ctx = ActionContext {
        action_id: "01HFUZZACTION".into(),
        action_key: "00ff".repeat(16),
        report_url: "http://drydock.test:9000/api/v1.0/bootactions/".into(),
        design_ref: "file:site.yaml".into(),
    };
    for node in ["cmp01", "ctl01", "not-a-node"] {
        let context = site.template_node(node);
        for only in [None, Some(AssetType::Unit), Some(AssetType::PkgList)] {
            if let Ok(assets) = ready(render(&action, only, &context, &ctx, fetch)) {
                let _ = tarball(&assets);
            }
        }
    }
});
