//! A site design, as `validatedesign` and every orchestrator task read it:
//! parsing (both document forms, HostProfile inheritance), every validation
//! rule, and what the orchestrator takes from a design (model nodes, site
//! networks, repositories, boot actions and their nodes, template contexts).
#![no_main]

use std::sync::OnceLock;

use drydock::design::{Design, PlatformCatalog, validate::validate};
use drydock_fuzz::bounded_yaml;
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static PlatformCatalog {
    static CATALOG: OnceLock<PlatformCatalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut c = PlatformCatalog::default();
        c.images
            .insert("jammy".into(), vec!["ga-22.04".into(), "hwe-22.04".into()]);
        c.images
            .insert("noble".into(), vec!["ga-24.04".into(), "hwe-24.04".into()]);
        c
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = bounded_yaml(data) else {
        return;
    };
    // What DesignSource runs on the blocking pool, with the default limits.
    let Ok(design) = Design::parse(text) else {
        return;
    };
    let findings = validate(&design, Some(catalog()));
    let (_, body) = drydock::api::design::status_body(&findings);
    assert_eq!(
        body.details.error_count,
        findings.iter().filter(|f| f.is_error()).count() as u64
    );
    let nodes = design.model_nodes();
    assert_eq!(nodes.len(), design.nodes.len());
    let _ = design.site_networks();
    let _ = design.repositories();
    let _ = design.ssh_keys();
    if let Ok(actions) = design.boot_actions() {
        let targets = design.boot_action_nodes(&actions);
        assert_eq!(targets.len(), actions.len());
        for name in targets.iter().flatten() {
            assert!(design.nodes.contains_key(name), "{name} is not a node");
        }
    }
    for name in design.nodes.keys().take(4) {
        let _ = design.template_node(name);
    }
});
