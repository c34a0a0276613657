//! Several `drydock serve` processes on one fresh Postgres database, for the
//! high-availability tests and the failover benchmark. Each instance is a
//! real process (killable with SIGKILL, pausable with SIGSTOP); the test
//! reads the database through the store to see what really happened.

#![allow(dead_code)] // each includer uses a different part

use drydock::store::{Store, Uuid};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The API token every instance accepts.
pub const TOKEN: &str = "ha-test-admin-token";

/// Postgres for the tests (trust auth).
pub fn pg_admin_url() -> String {
    std::env::var("DRYDOCK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// One `drydock serve` process.
pub struct Instance {
    /// Its instance id.
    pub id: String,
    /// The process, while it runs.
    pub child: Option<Child>,
    /// API base URL (`http://addr/api/v1.0`).
    pub url: String,
    /// Its log lines (JSON), as they arrive.
    pub log: Arc<Mutex<Vec<String>>>,
    dir: PathBuf,
}

impl Instance {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`) to the process.
    pub fn signal(&mut self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
        if signal == "KILL" {
            let mut child = self.child.take().unwrap();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (at most `within`) for the process to exit;
    /// returns its exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        self.signal("TERM");
        self.wait_exit(within)
    }

    /// Waits (at most `within`, then kills it and fails) for the process to
    /// exit; returns its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.pid();
        let mut child = self.child.take().expect("running");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(());
            status
        });
        if rx.recv_timeout(within).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("instance {} did not exit within {within:?}", self.id);
        }
        waiter.join().expect("waiter").expect("wait")
    }

    /// Whether the process is stopped (SIGSTOP, by the test or by itself
    /// through a fault-injection point): state `T` in `/proc/PID/stat`.
    pub fn stopped(&self) -> bool {
        let Some(child) = self.child.as_ref() else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().next().map(|state| state == "T")
            })
            .unwrap_or(false)
    }

    /// Whether a log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A cluster: a database, a scratch directory, instances.
pub struct Cluster {
    /// The database URL.
    pub db_url: String,
    db_name: String,
    /// A store on the same database, for the test's own reads.
    pub store: Store,
    /// Runs the store's futures.
    pub rt: tokio::runtime::Runtime,
    /// The instances, by index.
    pub instances: Vec<Instance>,
    dir: PathBuf,
    config: String,
    max_concurrency: usize,
}

impl Cluster {
    /// A fresh database; instances get `config` (TOML) and a per-instance
    /// concurrency limit.
    pub fn new(name: &str, config: &str, max_concurrency: usize) -> Cluster {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let db_name = format!("drydock_ha_{name}_{}", Uuid::new_v4().simple());
        let db_url = rt
            .block_on(drydock::store::testing::create_pg_database(
                &pg_admin_url(),
                &db_name,
            ))
            .unwrap_or_else(|e| panic!("Postgres is needed ({}): {e}", pg_admin_url()));
        let store = rt.block_on(Store::connect(&db_url)).expect("store");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&db_name);
        std::fs::create_dir_all(&dir).unwrap();
        Cluster {
            db_url,
            db_name,
            store,
            rt,
            instances: Vec::new(),
            dir,
            config: config.to_owned(),
            max_concurrency,
        }
    }

    /// Starts instance `id` and waits until it serves. Returns its index.
    pub fn start(&mut self, id: &str) -> usize {
        self.start_with(id, &[])
    }

    /// [`Cluster::start`] with extra environment variables (e.g. a
    /// fault-injection point).
    pub fn start_with(&mut self, id: &str, env: &[(&str, &str)]) -> usize {
        let dir = self.dir.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        // Reuse the first instance's compiled drivers (starting is faster).
        if let Some(first) = self.instances.first() {
            let from = first.dir.join(".drydock/compile-cache");
            let to = dir.join(".drydock/compile-cache");
            if from.is_dir() && !to.exists() {
                std::fs::create_dir_all(&to).unwrap();
                for e in std::fs::read_dir(&from).unwrap().flatten() {
                    let _ = std::fs::copy(e.path(), to.join(e.file_name()));
                }
            }
        }
        std::fs::write(dir.join("drydock.toml"), &self.config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_drydock"))
            .args(["--log-json", "serve", "--config", "drydock.toml"])
            .current_dir(&dir)
            .env("DRYDOCK_LISTEN", "127.0.0.1:0")
            .env("DRYDOCK_DATABASE_URL", &self.db_url)
            .env("DRYDOCK_INSTANCE_ID", id)
            .env("DRYDOCK_TOKENS", format!("admin:admin:{TOKEN}"))
            .env("DRYDOCK_MAX_CONCURRENCY", self.max_concurrency.to_string())
            .env("RUST_LOG", "info")
            // Names its database sessions in `pg_stat_activity`.
            .env("PGAPPNAME", format!("drydock-{id}"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start drydock serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if !sent
                        && let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["fields"]["message"] == "drydock serving"
                    {
                        let _ =
                            tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
                        sent = true;
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("instance {id} did not start: {:?}", log.lock().unwrap()));
        let i = Instance {
            id: id.to_owned(),
            child: Some(child),
            url: format!("http://{addr}/api/v1.0"),
            log,
            dir,
        };
        if let Some(pos) = self.instances.iter().position(|x| x.id == id) {
            self.instances[pos] = i;
            pos
        } else {
            self.instances.push(i);
            self.instances.len() - 1
        }
    }

    /// The instance index of the lease holder, once one holds an unexpired
    /// lease (within `within`).
    pub fn leader(&self, within: Duration) -> usize {
        let until = Instant::now() + within;
        loop {
            let lease = self.rt.block_on(self.store.current_lease()).unwrap();
            let now = chrono::Utc::now();
            if let Some(l) = lease
                && l.expires > now
                && let Some(i) = self
                    .instances
                    .iter()
                    .position(|x| x.id == l.holder && x.child.is_some())
            {
                return i;
            }
            if Instant::now() >= until {
                self.explain();
                panic!("no leader within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The lease as stored.
    pub fn lease(&self) -> Option<drydock::store::Lease> {
        self.rt.block_on(self.store.current_lease()).unwrap()
    }

    /// Registers `n` sim nodes `n0000`... directly in the store.
    pub fn register(&self, n: usize) {
        self.rt.block_on(async {
            for i in 0..n {
                let name = format!("n{i:04}");
                self.store
                    .upsert_node(&name, &json!({"name": name, "oob": {"type": "sim"}}), None)
                    .await
                    .unwrap();
            }
        });
    }

    /// POSTs a task through instance `i`'s API; returns its id.
    pub fn submit(&self, i: usize, body: Value) -> Uuid {
        let resp = client()
            .post(format!("{}/tasks", self.instances[i].url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .expect("POST /tasks");
        assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text());
        let v: Value = resp.json().unwrap();
        Uuid::parse_str(v["task_id"].as_str().unwrap()).unwrap()
    }

    /// The task as stored.
    pub fn task(&self, id: Uuid) -> drydock::store::TaskRecord {
        self.rt
            .block_on(self.store.get_task(id))
            .unwrap()
            .expect("task")
    }

    /// Subtasks of `id`.
    pub fn subtasks(&self, id: Uuid) -> Vec<drydock::store::TaskRecord> {
        self.rt.block_on(self.store.subtasks(id)).unwrap()
    }

    /// How many subtasks of `id` are finished.
    pub fn finished(&self, id: Uuid) -> usize {
        self.subtasks(id)
            .iter()
            .filter(|s| s.status.is_terminal())
            .count()
    }

    /// Waits until `pred` holds (polling the database), at most `within`.
    pub fn wait(&self, within: Duration, what: &str, mut pred: impl FnMut(&Cluster) -> bool) {
        let until = Instant::now() + within;
        while !pred(self) {
            if Instant::now() >= until {
                self.explain();
                panic!("timed out after {within:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Prints what every session on the database is doing and waiting
    /// for (`pg_stat_activity`, `pg_locks`), and which process each
    /// instance is, so a wait that timed out explains itself.
    pub fn explain(&self) {
        eprintln!("---- instances");
        for i in &self.instances {
            let pid = i.child.as_ref().map(|c| c.id());
            eprintln!("  {} pid={pid:?} url={}", i.id, i.url);
        }
        match self
            .rt
            .block_on(drydock::store::testing::pg_activity_report(&self.db_url))
        {
            Ok(report) => eprintln!("---- database sessions at the timeout\n{report}"),
            Err(e) => eprintln!("---- could not read pg_stat_activity / pg_locks: {e}"),
        }
    }

    /// The sim driver's call counter for `action` on `node`.
    pub fn calls(&self, action: &str, node: &str) -> u64 {
        self.rt
            .block_on(self.store.kv_get("sim", &format!("calls/{action}/{node}")))
            .unwrap()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in &self.instances {
                let log = i.log.lock().unwrap();
                eprintln!("---- last log lines of {}", i.id);
                for l in log
                    .iter()
                    .rev()
                    .take(25)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    eprintln!("{l}");
                }
            }
        }
        self.instances.clear();
        let store = self.store.clone();
        self.rt.block_on(store.close());
        let _ = self.rt.block_on(drydock::store::testing::drop_pg_database(
            &pg_admin_url(),
            &self.db_name,
        ));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking HTTP client.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}
