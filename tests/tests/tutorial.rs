//! Runs the vendor tutorial (`docs/driver-tutorial.md`) as a new vendor
//! would: its `<!-- tutorial -->` blocks, verbatim and in order, in one
//! `bash` in an empty directory, with the `drydock` binary of this build on
//! `PATH`. The one change: the server's port (`DRYDOCK_LISTEN`) is a free
//! one. Prints the time the commands took (a cold build of a new crate
//! included), then checks the server serves the signed driver, active, with
//! its conformance report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The tutorial's blocks, in order.
fn blocks(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "<!-- tutorial -->" {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert_eq!(fence.trim(), "```sh", "a tutorial block is a sh code block");
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        out.push(body.join("\n"));
    }
    out
}

/// The `drydock` binary of this build (`cargo test --workspace` builds it).
fn drydock() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("drydock");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p drydock-host)",
        bin.display()
    );
    bin
}

#[test]
fn the_vendor_tutorial_runs_as_written() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let markdown = std::fs::read_to_string(repo.join("docs/driver-tutorial.md")).unwrap();
    let blocks = blocks(&markdown);
    assert_eq!(blocks.len(), 5, "the tutorial's five steps");
    let port = drydock_tests::sushy::free_port();
    let listen = "export DRYDOCK_LISTEN=127.0.0.1:9000";
    // Each step stamps the time it starts (to stderr), to report per step.
    let script = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| format!("echo \"@@step {} $(date +%s.%N)\" >&2\n{b}", i + 1))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        script.contains(listen),
        "the tutorial sets the port as expected"
    );
    let script = script.replace(listen, &format!("export DRYDOCK_LISTEN=127.0.0.1:{port}"));

    let dir = drydock_tests::temp_dir("tutorial");
    let bin_dir = drydock().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}\n"
        ))
        .current_dir(&dir)
        .env("PATH", path);
    // Nothing of this build may steer the vendor's: a new vendor's shell has
    // none of these (the toolchain choice, `RUSTUP_*`, and `CARGO_HOME` and
    // `CARGO_BUILD_JOBS` stay, as a vendor's own).
    for (key, _) in std::env::vars() {
        let keep = matches!(key.as_str(), "CARGO_HOME" | "CARGO_BUILD_JOBS");
        let build = key.starts_with("CARGO_")
            || matches!(
                key.as_str(),
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "OUT_DIR"
            );
        if key.starts_with("DRYDOCK_") || (build && !keep) {
            command.env_remove(&key);
        }
    }
    let started = Instant::now();
    let out = command.output().expect("run bash");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let server_log = std::fs::read_to_string(dir.join("acme-bmc/server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "the tutorial failed ({}):\n{stdout}\n{stderr}\nserver:\n{server_log}",
        out.status
    );
    println!(
        "tutorial: {} commands ran in {:.1} s (a cold build of the new crate included)",
        blocks
            .iter()
            .flat_map(|b| b.lines())
            .filter(|l| !l.trim().is_empty() && !l.trim_end().ends_with('\\'))
            .count(),
        took.as_secs_f64()
    );
    let stamps: Vec<f64> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("@@step "))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    let end = stamps.first().map_or(0.0, |s| s + took.as_secs_f64());
    for (i, start) in stamps.iter().enumerate() {
        let next = stamps.get(i + 1).copied().unwrap_or(end);
        println!("  step {}: {:.1} s", i + 1, next - start);
    }

    assert!(stdout.contains("PASSED"), "{stdout}");
    assert!(stdout.contains("installed acme-bmc 0.1.0"), "{stdout}");
    assert!(stdout.contains("activated acme-bmc 0.1.0"), "{stdout}");
    // `driver list acme-bmc` printed the server's view: active, signed, with
    // the report of exactly this component.
    let start = stdout.find("{\n").expect("the driver's JSON");
    let shown: serde_json::Value =
        serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(shown["active"]["version"], "0.1.0", "{shown:#}");
    let version = &shown["versions"][0];
    assert!(
        version["signer"].as_str().is_some_and(|s| !s.is_empty()),
        "{shown:#}"
    );
    let report = &version["conformance"];
    assert_eq!(report["driver"], "acme-bmc", "{shown:#}");
    assert_eq!(report["passed"], true, "{shown:#}");
    let wasm =
        std::fs::read(dir.join("acme-bmc/target/wasm32-wasip2/release/acme_bmc.wasm")).unwrap();
    use sha2::Digest as _;
    assert_eq!(report["sha256"], hex::encode(sha2::Sha256::digest(&wasm)));
    let _ = std::fs::remove_dir_all(&dir);
}
