//! The `drydock driver` commands, run as a real process.

use drydock::drivers::Action;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn drydock(args: &[&str], cache: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(args)
        .env("DRYDOCK_CACHE_DIR", cache)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run drydock")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Parameters that let every sim action run.
fn params() -> String {
    let switch = json!({"name": "leaf1", "address": "192.0.2.1"});
    json!({
        "site": {"links": [], "networks": []},
        "ssh_keys": ["ssh-ed25519 AAAA test"],
        "image": "jammy",
        "switch": switch,
        "switch_port": {"switch": switch, "port": "Ethernet1"},
        "vlans": {"mode": "access", "access_vlan": 100},
        "boot": {"device": "pxe", "persistent": false},
    })
    .to_string()
}

#[test]
fn driver_call_runs_every_sim_action() {
    let dir = scratch("every");
    let state = dir.join("state.json");
    let node = r#"{"name":"node-1","oob":{"type":"sim"},"boot_mac":"52:54:00:00:00:01"}"#;
    let params = params();
    for action in Action::ALL {
        let out = drydock(
            &[
                "driver",
                "call",
                "bundled:sim",
                action.name(),
                "--node",
                node,
                "--params",
                &params,
                "--state",
                state.to_str().unwrap(),
            ],
            &dir,
        );
        let v = stdout_json(&out);
        assert!(
            out.status.success(),
            "{action}: {v} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(v["status"], "success", "{action}: {v}");
        assert_eq!(v["action"], action.name());
    }
    // State survived between processes: the node was deployed and then destroyed,
    // and the last power action left it on.
    let out = drydock(
        &[
            "driver",
            "call",
            "bundled:sim",
            "interrogate_oob",
            "--node",
            node,
            "--state",
            state.to_str().unwrap(),
        ],
        &dir,
    );
    let v = stdout_json(&out);
    assert_eq!(v["result"]["power_state"], "on", "{v}");
    assert_eq!(v["result"]["boot_override"]["device"], "pxe", "{v}");
}

#[test]
fn driver_errors_exit_non_zero_with_the_error_as_json() {
    let dir = scratch("fail");
    let out = drydock(
        &[
            "driver",
            "call",
            "bundled:sim",
            "power_on_node",
            "--node",
            r#"{"name":"bad-1"}"#,
            "--config",
            "fail_nodes=bad-1",
            "--config",
            "fail_kind=retryable",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let v = stdout_json(&out);
    assert_eq!(v["status"], "failure");
    assert_eq!(v["error"]["retryable"], true);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("bad-1"),
        "{v}"
    );
}

#[test]
fn inspect_reports_worlds_and_bad_input_is_a_clear_error() {
    let dir = scratch("inspect");
    let out = drydock(&["driver", "inspect", "bundled:sim"], &dir);
    assert!(out.status.success());
    let v = stdout_json(&out);
    assert_eq!(v["info"]["name"], "sim");
    assert!(
        v["worlds"]
            .as_array()
            .unwrap()
            .contains(&json!("full-driver"))
    );

    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let out = drydock(&["driver", "inspect", junk.to_str().unwrap()], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a WebAssembly file"));

    let out = drydock(
        &["driver", "call", "bundled:sim", "power_on", "--node", "{}"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown driver action `power_on`"));

    let out = drydock(
        &[
            "driver",
            "call",
            "bundled:sim",
            "power_on_node",
            "--node",
            "{\"nmae\":1}",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--node is not valid node JSON"));
}
