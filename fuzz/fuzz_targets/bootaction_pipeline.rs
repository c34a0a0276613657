//! One boot action asset's bytes through a pipeline: the first byte picks
//! up to three segments (`base64_decode`, `base64_encode`, `utf8_decode`,
//! `utf8_encode`, `template`), the rest is the asset's data (a Jinja
//! template when `template` comes first) rendered with a sample node's
//! context; the result goes into the node's tarball.
#![no_main]

use drydock::api::bootactions::tarball;
use drydock::design::bootaction::{
    ActionContext, Asset, AssetType, BootAction, SEGMENTS, check_asset, render,
};
use drydock_fuzz::{MAX_YAML_BYTES, ready, sample_site};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > MAX_YAML_BYTES {
        return;
    }
    // Two bits of count (0..=3), then two segments of three bits each; the
    // third segment, when used, is always `utf8_encode`.
    let count = usize::from(pick & 3);
    let segment = |i: u8| SEGMENTS[usize::from(i) % SEGMENTS.len()].to_owned();
    let data_pipeline: Vec<String> = [
        segment((pick >> 2) & 7),
        segment((pick >> 5) & 7),
        "utf8_encode".to_owned(),
    ]
    .into_iter()
    .take(count)
    .collect();
    let asset = Asset {
        asset_type: AssetType::File,
        path: Some("/etc/drydock/fuzz".into()),
        location: None,
        data: Some(Value::String(String::from_utf8_lossy(rest).into_owned())),
        location_pipeline: Vec::new(),
        data_pipeline,
        permissions: Some(Value::String("644".into())),
    };
    if check_asset(&asset).is_err() {
        return;
    }
    let action = BootAction {
        name: "fuzz".into(),
        signaling: true,
        node_filter: None,
        assets: vec![asset],
    };
    let ctx = ActionContext {
        action_id: "01HFUZZACTION".into(),
        action_key: "00ff".repeat(16),
        report_url: "http://drydock.test:9000/api/v1.0/bootactions/".into(),
        design_ref: "file:site.yaml".into(),
    };
    let context = sample_site().template_node("cmp01");
    let fetch = |_: String| async { Err::<Vec<u8>, String>("no locations here".into()) };
    if let Ok(assets) = ready(render(&action, None, &context, &ctx, fetch)) {
        assert_eq!(assets.len(), 1);
        let _ = tarball(&assets);
    }
});
