//! Every JSON request body of the API, through the API's own body parser
//! (`JsonBody::parse`) and what the handler checks before touching the
//! store: `POST /tasks` (action, node filter, params), `POST /nodes`
//! (registration and credentials), `POST /validatedesign`, `POST
//! /nodefilter`, `POST /bootactions/{id}` reports, `POST
//! /drivers/{name}/activate`; and the model types a body carries (nodes and
//! action params must survive a serialization round trip unchanged).
#![no_main]

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, header};
use drydock::api::error::JsonBody;
use drydock::api::nodes::{parse_registration, validate_name};
use drydock::model::{ActionParams, Node};
use drydock::tasks::TaskRequest;
use drydock::tasks::filter::NodeFilter;
use drydock::wire::{
    ActivateBody, BootActionReport as Report, CreateTask, NodeFilterRequest as FilterRequest,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The body limit the API enforces (bigger bodies never reach a parser).
const MAX_BODY: usize = drydock::api::MAX_BODY_BYTES;

fn headers() -> &'static HeaderMap {
    static HEADERS: OnceLock<HeaderMap> = OnceLock::new();
    HEADERS.get_or_init(|| {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    })
}

fn body<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    JsonBody::<T>::parse(headers(), data).ok().map(|b| b.0)
}

/// `node` without the credentials it carries (never serialized, by design).
fn without_credentials(node: &Node) -> Node {
    let mut node = node.clone();
    node.oob.credentials = None;
    for i in &mut node.interfaces {
        if let Some(sp) = &mut i.switch_port {
            sp.switch.credentials = None;
        }
    }
    node
}

/// `params` without the credentials they carry (never serialized).
fn params_without_credentials(params: &ActionParams) -> ActionParams {
    let mut params = params.clone();
    if let Some(sp) = &mut params.switch_port {
        sp.switch.credentials = None;
    }
    if let Some(s) = &mut params.switch {
        s.credentials = None;
    }
    params
}

/// A value that serializes and reads back must read back equal.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let json = serde_json::to_value(v).expect("a parsed body serializes");
    let back: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
    assert_eq!(&back, v, "round trip through {json}");
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    if let Some(t) = body::<CreateTask>(data) {
        let request = TaskRequest {
            action: t.action,
            design_ref: t.design_ref,
            node_filter: t.node_filter,
            params: t.params,
            created_by: None,
        };
        if let Ok(name) = request.check() {
            assert!(!name.is_empty());
        }
    }
    if let Some(v) = body::<Value>(data)
        && let Ok((node, _credentials)) = parse_registration(v)
    {
        assert!(validate_name(&node.name).is_ok());
        round_trip(&without_credentials(&node));
    }
    if let Some(f) = body::<FilterRequest>(data)
        && let Some(filter) = &f.node_filter
    {
        let _ = NodeFilter::from_json(filter);
    }
    // POST /validatedesign reads any JSON object (Drydock's body, extra
    // keys ignored) and takes its `href`.
    let _ = body::<serde_json::Value>(data);
    let _ = body::<Report>(data);
    let _ = body::<ActivateBody>(data);
    if let Some(node) = body::<Node>(data) {
        round_trip(&without_credentials(&node));
    }
    if let Some(params) = body::<ActionParams>(data) {
        round_trip(&params_without_credentials(&params));
    }
});
