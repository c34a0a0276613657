//! High availability with real processes on real Postgres: several
//! `drydock serve` instances behave as one service; killing the leader, a
//! non-leader, pausing the leader past its lease or restarting Postgres
//! loses and duplicates nothing; instances stopped with SIGTERM hand their
//! work over at once; SQLite refuses a second instance.
//!
//! The tests run one at a time (they stop Postgres, and each starts several
//! processes on a two-core machine).

#[path = "support/cluster.rs"]
mod cluster;

use cluster::Cluster;
use drydock::store::{ResultStatus, TaskStatus, Uuid};
use serde_json::json;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sim settings: each call takes `delay_ms`, and counts itself.
fn config(delay_ms: u64) -> String {
    format!("[drivers.sim.settings]\ndelay_ms = \"{delay_ms}\"\ncount_calls = \"true\"\n")
}

const NODES: usize = 500;
/// Driver calls in flight per instance.
const CONCURRENCY: usize = 16;

/// Every node's subtask is complete and successful, exactly one per node,
/// and the task completed successfully.
fn assert_exactly_once(c: &Cluster, task: drydock::store::Uuid) {
    assert_exactly_once_over(c, task, NODES)
}

/// [`assert_exactly_once`] for a task over `nodes` nodes.
fn assert_exactly_once_over(c: &Cluster, task: drydock::store::Uuid, nodes: usize) {
    let t = c.task(task);
    assert_eq!(t.status, TaskStatus::Complete, "{t:?}");
    assert_eq!(t.result_status, ResultStatus::Success, "{t:?}");
    assert_eq!(t.successes.len(), nodes);
    let subs = c.subtasks(task);
    assert_eq!(subs.len(), nodes, "one subtask per node");
    let names: BTreeSet<_> = subs.iter().filter_map(|s| s.node_name.clone()).collect();
    assert_eq!(names.len(), nodes, "no node twice");
    for s in &subs {
        assert_eq!(s.status, TaskStatus::Complete, "{s:?}");
        assert_eq!(s.result_status, ResultStatus::Success, "{s:?}");
    }
}

/// Subtasks of `task` that `owner` holds (claimed, not finished).
fn held(c: &Cluster, task: Uuid, owner: &str) -> usize {
    c.subtasks(task)
        .iter()
        .filter(|s| s.status == TaskStatus::Running && s.owner.as_deref() == Some(owner))
        .count()
}

#[test]
fn killing_the_leader_then_a_follower_loses_nothing() {
    let _serial = serial();
    let mut c = Cluster::new("kill", &config(250), CONCURRENCY);
    for id in ["ha-a", "ha-b", "ha-c"] {
        c.start(id);
    }
    c.register(NODES);
    let task = c.submit(0, json!({"action": "power_on_node"}));

    // Kill the leader once a fifth of the work is done.
    c.wait(Duration::from_secs(60), "20% done", |c| {
        c.finished(task) >= NODES / 5
    });
    let leader = c.leader(Duration::from_secs(5));
    let old_epoch = c.lease().unwrap().epoch;
    let killed_leader = c.instances[leader].id.clone();
    c.instances[leader].signal("KILL");
    // What the dead instance holds now (its claims, including calls whose
    // outcome was not written yet) is all that may run again.
    let mut held_at_kills = held(&c, task, &killed_leader);

    // A new leader, at a higher epoch, within seconds.
    c.wait(Duration::from_secs(10), "a new leader", |c| {
        c.lease().is_some_and(|l| {
            l.holder != killed_leader && l.epoch > old_epoch && l.expires > chrono::Utc::now()
        })
    });

    // Then kill a follower (not the new leader) at half way.
    c.wait(Duration::from_secs(60), "50% done", |c| {
        c.finished(task) >= NODES / 2
    });
    let leader = c.leader(Duration::from_secs(5));
    let follower = (0..c.instances.len())
        .find(|&i| i != leader && c.instances[i].child.is_some())
        .expect("a live follower");
    let killed_follower = c.instances[follower].id.clone();
    c.instances[follower].signal("KILL");
    held_at_kills += held(&c, task, &killed_follower);

    c.wait(Duration::from_secs(120), "the task to complete", |c| {
        c.task(task).status.is_terminal()
    });
    assert_exactly_once(&c, task);
    // Nothing is left with a dead owner.
    for s in c.subtasks(task) {
        assert_ne!(s.status, TaskStatus::Running);
    }
    // Re-runs only for calls in flight at a kill (the counter of a call cut
    // by a kill may be lost with its instance, never counted twice).
    let mut reruns = 0;
    for i in 0..NODES {
        let n = c.calls("power_on_node", &format!("n{i:04}"));
        assert!(n <= 2, "n{i:04} ran {n} times");
        reruns += n.saturating_sub(1) as usize;
    }
    // Only what the killed instances held when they died ran again.
    assert!(
        reruns <= held_at_kills,
        "{reruns} re-runs, more than the {held_at_kills} subtasks the killed instances held"
    );
    assert!(!killed_follower.is_empty());
}

/// Instances that a SIGTERM stopped leave nothing behind: no heartbeat, no
/// subtask running under them. With `dead_after` at two minutes, their
/// work (the leader's share of the fan-out, mostly not started yet) is
/// taken over at once only if they drained; their calls in flight finished
/// and were stored, so no node ran twice.
#[test]
fn terminated_instances_hand_their_work_over_at_once() {
    let _serial = serial();
    let config = format!("{}[leader]\ndead_after_ms = 120000\n", config(250));
    let mut c = Cluster::new("drain", &config, CONCURRENCY);
    for id in ["ha-a", "ha-b", "ha-c"] {
        c.start(id);
    }
    c.register(NODES);
    let leader = c.leader(Duration::from_secs(5));
    let task = c.submit(leader, json!({"action": "power_on_node"}));
    let began = std::time::Instant::now();
    let gone = |c: &Cluster, id: &str| {
        let live =
            c.rt.block_on(c.store.live_instances(Duration::from_secs(3600)))
                .unwrap();
        !live.iter().any(|(i, _)| i == id)
    };

    // Stop the leader with SIGTERM at a fifth of the work, then a follower
    // at half.
    for (share, pick_leader) in [(5, true), (2, false)] {
        c.wait(Duration::from_secs(60), "progress", |c| {
            c.finished(task) >= NODES / share
        });
        let leader = c.leader(Duration::from_secs(5));
        let i = match pick_leader {
            true => leader,
            false => (0..c.instances.len())
                .find(|&i| i != leader && c.instances[i].child.is_some())
                .expect("a live follower"),
        };
        let id = c.instances[i].id.clone();
        let status = c.instances[i].terminate(Duration::from_secs(30));
        assert!(status.success(), "{id} exited with {status}");
        assert_eq!(held(&c, task, &id), 0, "{id} left subtasks running");
        assert!(gone(&c, &id), "{id} left its heartbeat");
        assert!(
            c.instances[i].logged("\"drained\""),
            "{id} did not log its drain"
        );
    }

    c.wait(Duration::from_secs(60), "the task to complete", |c| {
        c.task(task).status.is_terminal()
    });
    assert!(
        began.elapsed() < Duration::from_secs(120),
        "the work waited for the stopped instances to look dead"
    );
    assert_exactly_once(&c, task);
    for i in 0..NODES {
        let n = c.calls("power_on_node", &format!("n{i:04}"));
        assert_eq!(n, 1, "n{i:04} ran {n} times");
    }
}

#[test]
fn a_paused_leader_writes_nothing_after_its_lease_is_taken() {
    let _serial = serial();
    let mut c = Cluster::new("stop", &config(400), 16);
    c.start("ha-a");
    c.start("ha-b");
    c.register(NODES);
    let task = c.submit(0, json!({"action": "power_on_node"}));
    c.wait(Duration::from_secs(60), "some progress", |c| {
        c.finished(task) >= 40
    });
    let leader = c.leader(Duration::from_secs(5));
    let paused = c.instances[leader].id.clone();
    let old_epoch = c.lease().unwrap().epoch;
    c.instances[leader].signal("STOP");

    // The other instance takes the lease and the paused one's work.
    c.wait(Duration::from_secs(10), "a takeover", |c| {
        c.lease()
            .is_some_and(|l| l.holder != paused && l.epoch > old_epoch)
    });
    // What the paused one held when its lease was taken. (Not read at the
    // SIGSTOP: statements it had already sent, a COMMIT among them, still
    // complete then, so a subtask read as running at that instant can be
    // finished by it, rightly, a moment later. The takeover comes a lease
    // later, with nothing of its left in flight, and before any reclaim,
    // which waits `dead_after` more.)
    let stalled: Vec<_> = c
        .subtasks(task)
        .into_iter()
        .filter(|s| s.status == TaskStatus::Running && s.owner.as_deref() == Some(&paused))
        .map(|s| s.id)
        .collect();
    // ... and finishes the calls the paused one had in flight.
    c.wait(
        Duration::from_secs(30),
        "the paused instance's calls to be re-run",
        |c| {
            let subs = c.subtasks(task);
            stalled.iter().all(|id| {
                subs.iter()
                    .find(|s| s.id == *id)
                    .is_some_and(|s| s.status.is_terminal() && s.owner.as_deref() != Some(&paused))
            })
        },
    );
    c.instances[leader].signal("CONT");
    c.wait(
        Duration::from_secs(10),
        "the resumed instance to step down",
        |c| c.instances[leader].logged("no longer leads"),
    );
    c.wait(Duration::from_secs(120), "the task to complete", |c| {
        c.task(task).status.is_terminal()
    });
    assert_exactly_once(&c, task);
    // The calls it had in flight when paused were finished by others: its
    // own late outcomes were refused.
    for s in c.subtasks(task).iter().filter(|s| stalled.contains(&s.id)) {
        assert_ne!(s.owner.as_deref(), Some(paused.as_str()), "{s:?}");
    }
    // It did not settle the task either: the new leader adopted and
    // completed it.
    let t = c.task(task);
    let new_leader = c.lease().unwrap().holder;
    assert_eq!(t.owner.as_deref(), Some(new_leader.as_str()), "{t:?}");
    assert_ne!(new_leader, paused);
}

/// Nodes in the paused-transaction tests.
const PAUSE_NODES: usize = 100;
/// Sim call length in the paused-transaction tests, ms.
const PAUSE_DELAY_MS: u64 = 400;

/// The longest the survivor may take to re-run the work of an instance
/// stopped inside a write transaction, from the default lease and session
/// limits: the stopped leader's lease lapses (`lease`) and the survivor
/// takes it (`renew`); it reclaims once it has led for `dead_after` (then
/// every `renew`); the stopped session is ended after `idle_in_transaction`,
/// a statement queued behind it gives up after `lock_timeout` and is retried
/// after `renew` (or the writer's 0.5 s); then the re-run call. Plus 15 s
/// for a loaded two-core machine. Without the session limits this is
/// unbounded: the locks are held until the stopped process resumes.
fn takeover_bound() -> Duration {
    let leader = drydock::tasks::LeaderConfig::default();
    let limits = drydock::store::SessionLimits::default();
    leader.lease
        + leader.dead_after
        + limits.idle_in_transaction
        + limits.lock_timeout
        + leader.renew * 3
        + Duration::from_millis(500 + PAUSE_DELAY_MS)
        + Duration::from_secs(15)
}

/// ha-a leads and stops itself (SIGSTOP) at fault-injection `point`, inside
/// a write transaction it has not committed, holding its row locks; ha-b
/// must re-run ha-a's work and finish the task within bounds from the lease
/// and the session limits; ha-a, continued, must find its late outcomes
/// refused.
fn paused_inside_a_transaction(point: &str) {
    let _serial = serial();
    let mut c = Cluster::new(
        &format!("ptx_{point}"),
        &config(PAUSE_DELAY_MS),
        CONCURRENCY,
    );
    let a = c.start_with("ha-a", &[("DRYDOCK_FAULT_PAUSE_IN_TX", point)]);
    assert_eq!(
        c.leader(Duration::from_secs(10)),
        a,
        "the first instance leads"
    );
    c.start("ha-b");
    c.register(PAUSE_NODES);
    let task = c.submit(1, json!({"action": "power_on_node"}));

    c.wait(
        Duration::from_secs(60),
        "ha-a to stop inside its transaction",
        |c| c.instances[a].stopped(),
    );
    let old_epoch = c.lease().unwrap().epoch;
    // All it holds: the calls whose outcomes it was writing, uncommitted,
    // and those still in flight.
    let stalled: Vec<Uuid> = c
        .subtasks(task)
        .into_iter()
        .filter(|s| s.status == TaskStatus::Running && s.owner.as_deref() == Some("ha-a"))
        .map(|s| s.id)
        .collect();
    assert!(!stalled.is_empty(), "ha-a stopped holding no subtask");

    // ha-b takes the lease and re-runs what ha-a held, despite its locks.
    let bound = takeover_bound();
    c.wait(bound, "the stopped instance's calls to be re-run", |c| {
        let subs = c.subtasks(task);
        stalled.iter().all(|id| {
            subs.iter()
                .find(|s| s.id == *id)
                .is_some_and(|s| s.status.is_terminal() && s.owner.as_deref() == Some("ha-b"))
        })
    });
    let lease = c.lease().unwrap();
    assert_eq!(lease.holder, "ha-b");
    assert!(lease.epoch > old_epoch, "{lease:?}");
    // ... and the rest of the task, on its own (16 calls at a time).
    let work = Duration::from_millis(PAUSE_DELAY_MS) * (PAUSE_NODES / CONCURRENCY + 1) as u32;
    c.wait(bound + work * 2, "the task to complete", |c| {
        c.task(task).status.is_terminal()
    });
    assert_exactly_once_over(&c, task, PAUSE_NODES);

    // ha-a, continued, finds its session ended and its transaction rolled
    // back; its retried outcomes are refused (fenced by owner and epoch).
    c.instances[a].signal("CONT");
    c.wait(
        Duration::from_secs(30),
        "the resumed instance's late outcomes to be refused",
        |c| c.instances[a].logged("some outcomes were not written"),
    );
    c.wait(
        Duration::from_secs(10),
        "the resumed instance to step down",
        |c| c.instances[a].logged("no longer leads"),
    );
    assert_exactly_once_over(&c, task, PAUSE_NODES);
    for s in c.subtasks(task).iter().filter(|s| stalled.contains(&s.id)) {
        assert_eq!(s.owner.as_deref(), Some("ha-b"), "{s:?}");
    }
    assert_eq!(c.task(task).owner.as_deref(), Some("ha-b"));
}

/// Stopped while writing outcomes: the task rows it updated stay locked, so
/// the new leader's reclaim (and its lease renewal, queued behind the
/// reclaim's lease lock) would wait for ever.
#[test]
fn a_leader_stopped_while_writing_outcomes_stalls_nobody() {
    paused_inside_a_transaction("finish_tasks");
}

/// Stopped while writing driver key-value state: the keys it wrote stay
/// locked, so the survivor's writer, re-running the same calls, would wait
/// on them for ever with every outcome behind it.
#[test]
fn a_leader_stopped_while_writing_driver_state_stalls_nobody() {
    paused_inside_a_transaction("kv_apply");
}

/// Stopped while reclaiming, holding the lease row locked (as every fenced
/// leader transaction does): the other instance's lease renewal queues
/// behind that lock, so without bounds it could never take the lease.
#[test]
fn a_leader_stopped_holding_the_lease_row_stalls_nobody() {
    let _serial = serial();
    let mut c = Cluster::new("ptx_lease", &config(PAUSE_DELAY_MS), CONCURRENCY);
    let a = c.start_with("ha-a", &[("DRYDOCK_FAULT_PAUSE_IN_TX", "reclaim_dead")]);
    assert_eq!(
        c.leader(Duration::from_secs(10)),
        a,
        "the first instance leads"
    );
    let b = c.start("ha-b");
    c.register(PAUSE_NODES);
    // Its first reclaim comes once it has led for `dead_after`.
    c.wait(
        Duration::from_secs(60),
        "ha-a to stop inside its reclaim",
        |c| c.instances[a].stopped(),
    );
    let old_epoch = c.lease().unwrap().epoch;
    c.wait(takeover_bound(), "ha-b to take the lease", |c| {
        c.lease().is_some_and(|l| {
            l.holder == "ha-b" && l.epoch > old_epoch && l.expires > chrono::Utc::now()
        })
    });
    let task = c.submit(b, json!({"action": "power_on_node"}));
    let work = Duration::from_millis(PAUSE_DELAY_MS) * (PAUSE_NODES / CONCURRENCY + 1) as u32;
    c.wait(takeover_bound() + work * 2, "the task to complete", |c| {
        c.task(task).status.is_terminal()
    });
    assert_exactly_once_over(&c, task, PAUSE_NODES);
    // Continued, ha-a's reclaim finds its session ended; it steps down.
    c.instances[a].signal("CONT");
    c.wait(
        Duration::from_secs(10),
        "the resumed instance to step down",
        |c| c.instances[a].logged("no longer leads"),
    );
    assert_eq!(c.lease().unwrap().holder, "ha-b");
    assert_eq!(c.task(task).owner.as_deref(), Some("ha-b"));
}

fn pg_cluster_cmd(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("a Postgres cluster in /etc/postgresql");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .status()
        .expect("pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

#[test]
fn a_postgres_restart_mid_task_loses_and_duplicates_nothing() {
    let _serial = serial();
    let mut c = Cluster::new("pgrestart", &config(250), 16);
    c.start("ha-a");
    c.start("ha-b");
    c.register(NODES);
    let task = c.submit(1, json!({"action": "power_on_node"}));
    c.wait(Duration::from_secs(60), "some progress", |c| {
        c.finished(task) >= 60
    });

    pg_cluster_cmd("stop");
    // Every instance reports unhealthy while the database is gone.
    let health = |url: &str| {
        cluster::client()
            .get(format!("{url}/health"))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    for i in &c.instances {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while health(&i.url) != 503 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never reported 503",
                i.id
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    pg_cluster_cmd("start");
    for i in &c.instances {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while health(&i.url) != 204 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never recovered",
                i.id
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // The test's own store reconnects (its pool's connections died).
    c.wait(Duration::from_secs(180), "the task to complete", |c| {
        c.rt.block_on(c.store.get_task(task))
            .ok()
            .flatten()
            .is_some_and(|t| t.status.is_terminal())
    });
    assert_exactly_once(&c, task);
}

#[test]
fn sqlite_refuses_a_second_instance() {
    let _serial = serial();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ha-sqlite-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(["serve"])
        .current_dir(&dir)
        .env("DRYDOCK_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first holds the lock (its database exists and it serves).
    let lock = dir.join(".drydock/drydock.db.lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !lock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "first instance did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(["serve"])
        .current_dir(&dir)
        .env("DRYDOCK_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another drydock instance"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
