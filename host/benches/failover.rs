//! Failover time: three `drydock serve` instances on one Postgres; the
//! leader is killed with SIGKILL ten times (restarted each time so three
//! remain), and each time we measure from the kill until a new leader has
//! scheduled a task submitted at the moment of the kill (the task leaves
//! `queued`). Prints each figure, the median and the maximum: first with
//! the leader lock off (`[leader] advisory_lock = false`: a successor waits
//! for the lease to lapse), as the baseline, then with it on (the default:
//! the dead leader's connection drops and a successor takes over at once),
//! then stopping the leader with SIGTERM instead (it drains and resigns:
//! the planned handover of a rolling upgrade).
//!
//! `cargo bench -p drydock-host --bench failover` (Postgres at
//! 127.0.0.1:5432, or `DRYDOCK_TEST_PG`). Aim: median ≤ 0.5 s with the lock.

#[path = "../tests/support/cluster.rs"]
mod cluster;

use cluster::Cluster;
use drydock::store::TaskStatus;
use serde_json::json;
use std::time::{Duration, Instant};

fn main() {
    let kills: usize = std::env::var("FAILOVER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let lease_only = failovers("lease only (advisory_lock = false)", kills, false, "KILL");
    let lock = failovers("leader lock (default)", kills, true, "KILL");
    let drain = failovers(
        "SIGTERM: the leader drains and resigns",
        kills,
        true,
        "TERM",
    );
    println!(
        "median failover: {:.2} s with the leader lock, {:.2} s on the lease alone ({:.0}x); \
         {:.2} s when the leader is stopped with SIGTERM",
        lock.as_secs_f64(),
        lease_only.as_secs_f64(),
        lease_only.as_secs_f64() / lock.as_secs_f64().max(1e-6),
        drain.as_secs_f64()
    );
}

/// Stops the leader with `signal` (`KILL` or `TERM`) `kills` times;
/// returns the median failover time.
fn failovers(label: &str, kills: usize, lock: bool, signal: &str) -> Duration {
    println!("== {label}");
    let config = format!("[leader]\nadvisory_lock = {lock}\n\n[drivers.sim.settings]\n");
    let mut c = Cluster::new("bench", &config, 16);
    for id in ["fo-a", "fo-b", "fo-c"] {
        c.start(id);
    }
    c.register(1);
    let mut times = Vec::new();
    for round in 0..kills {
        let leader = c.leader(Duration::from_secs(30));
        let id = c.instances[leader].id.clone();
        let epoch = c.lease().map(|l| l.epoch).unwrap_or(0);
        // Submit through a survivor, then kill the leader.
        let survivor = (0..c.instances.len())
            .find(|&i| i != leader && c.instances[i].child.is_some())
            .unwrap();
        let killed_at = Instant::now();
        c.instances[leader].signal(signal);
        let task = c.submit(survivor, json!({"action": "power_on_node"}));
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let t = c.task(task);
            if t.status != TaskStatus::Queued && t.owner.as_deref() != Some(id.as_str()) {
                break;
            }
            assert!(
                Instant::now() < until,
                "no new leader scheduled within 60 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = killed_at.elapsed();
        let new = c.lease().unwrap();
        println!(
            "{signal} {:>2}: {id} (epoch {epoch}) -> {} (epoch {}) in {:.2} s",
            round + 1,
            new.holder,
            new.epoch,
            took.as_secs_f64()
        );
        times.push(took);
        if signal != "KILL" {
            let status = c.instances[leader].wait_exit(Duration::from_secs(60));
            assert!(status.success(), "{id} exited with {status}");
        }
        c.start(&id);
    }
    times.sort();
    let median = times[times.len() / 2];
    let max = *times.last().unwrap();
    println!(
        "{label}: failover over {} stops: median {:.2} s, max {:.2} s (lease 2 s, renew 0.4 s)",
        times.len(),
        median.as_secs_f64(),
        max.as_secs_f64()
    );
    median
}
