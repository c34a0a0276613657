//! Driver lifecycle across real processes: two `drydock serve` instances on
//! one Postgres; a driver signed with `drydock driver keygen | sign`,
//! installed and activated with `drydock driver install --activate` through
//! one instance is active on both within seconds; `drydock driver rollback`
//! through the other returns both; unsigned uploads are refused by the CLI.

#[path = "support/cluster.rs"]
mod cluster;

use cluster::{Cluster, TOKEN};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn drydock(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(args)
        .current_dir(dir)
        .env("DRYDOCK_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run drydock")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `GET /drivers/sim` on an instance.
fn sim(url: &str) -> Value {
    cluster::client()
        .get(format!("{url}/drivers/sim"))
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// Waits until instance `url` runs sim `version`; returns when.
fn wait_loaded(url: &str, sha: &str, since: Instant) -> Duration {
    loop {
        let d = sim(url);
        if d["loaded"]["sha256"] == sha {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "{url} never loaded {sha}: {d}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn install_on_one_instance_is_active_on_both_and_rollback_spreads() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "lifecycle-ha-{}",
        drydock::store::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // A vendor key and the sim driver signed as 2.0.0.
    ok(&drydock(&dir, &["driver", "keygen", "vendor"]));
    let public = std::fs::read_to_string(dir.join("vendor.pub")).unwrap();
    std::fs::write(dir.join("sim.wasm"), drydock::bundled::SIM).unwrap();
    ok(&drydock(
        &dir,
        &[
            "driver",
            "sign",
            "sim.wasm",
            "--key",
            "vendor.key",
            "--version",
            "2.0.0",
            "--request-host",
            "10.1.0.0/16:443",
            "-o",
            "sim-2.0.0.wasm",
        ],
    ));
    let signed = std::fs::read(dir.join("sim-2.0.0.wasm")).unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&signed))
    };

    let config = format!(
        "[driver_store]\ntrusted_keys = [\"acme:{}:sim\"]\npoll_ms = 250\n",
        public.trim()
    );
    let mut c = Cluster::new("lifecycle", &config, 8);
    let a = c.start("a");
    let b = c.start("b");
    let (url_a, url_b) = (c.instances[a].url.clone(), c.instances[b].url.clone());
    let bundled_sha = sim(&url_b)["loaded"]["sha256"].clone();

    // Unsigned: refused, and the CLI says why.
    let o = drydock(&dir, &["driver", "install", "sim.wasm", "--url", &url_a]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unsigned"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let t0 = Instant::now();
    let out = ok(&drydock(
        &dir,
        &[
            "driver",
            "install",
            "sim-2.0.0.wasm",
            "--activate",
            "--url",
            &url_a,
        ],
    ));
    assert!(out.contains("signer acme"), "{out}");
    let on_a = wait_loaded(&url_a, &sha, t0);
    let on_b = wait_loaded(&url_b, &sha, t0);
    println!(
        "install+activate through a (CLI, real processes): active on a after {:.0} ms, on b after {:.0} ms",
        on_a.as_secs_f64() * 1e3,
        on_b.as_secs_f64() * 1e3
    );
    let d = sim(&url_b);
    assert_eq!(d["active"]["version"], "2.0.0");
    assert_eq!(d["versions"][0]["signer"], "acme");
    assert_eq!(d["not_granted"]["outbound"][0], "10.1.0.0/16:443");

    // A task through b runs on 2.0.0.
    c.register(3);
    let task = c.submit(
        b,
        serde_json::json!({"action": "power_on_node", "node_filter": null}),
    );
    let until = Instant::now() + Duration::from_secs(30);
    while !c.task(task).status.is_terminal() {
        assert!(Instant::now() < until, "task did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        c.task(task).result_status,
        drydock::store::ResultStatus::Success
    );

    // `list` shows it; a second activation of an unknown version fails.
    let out = ok(&drydock(&dir, &["driver", "list", "--url", &url_b]));
    assert!(out.contains("sim") && out.contains("2.0.0"), "{out}");
    let o = drydock(
        &dir,
        &["driver", "activate", "sim", "9.9.9", "--url", &url_b],
    );
    assert!(!o.status.success());

    // 2.0.1 through b, then a rollback through b returns both to 2.0.0.
    ok(&drydock(
        &dir,
        &[
            "driver",
            "sign",
            "sim.wasm",
            "--key",
            "vendor.key",
            "--version",
            "2.0.1",
            "-o",
            "sim-2.0.1.wasm",
        ],
    ));
    let sha_201 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(dir.join("sim-2.0.1.wasm")).unwrap(),
        ))
    };
    ok(&drydock(
        &dir,
        &[
            "driver",
            "install",
            "sim-2.0.1.wasm",
            "--activate",
            "--url",
            &url_b,
        ],
    ));
    wait_loaded(&url_a, &sha_201, Instant::now());
    let t1 = Instant::now();
    let out = ok(&drydock(
        &dir,
        &["driver", "rollback", "sim", "--url", &url_b],
    ));
    assert!(out.contains("2.0.0"), "{out}");
    let back_b = wait_loaded(&url_b, &sha, t1);
    let back_a = wait_loaded(&url_a, &sha, t1);
    println!(
        "rollback through b: on b after {:.0} ms, on a after {:.0} ms",
        back_b.as_secs_f64() * 1e3,
        back_a.as_secs_f64() * 1e3
    );
    assert_ne!(bundled_sha, Value::String(sha));
    let _ = std::fs::remove_dir_all(&dir);
}
