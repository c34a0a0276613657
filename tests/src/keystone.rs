//! OpenStack Keystone (the `keystone` package from PyPI, served by
//! gunicorn) as a test peer: one process per test on a free loopback port,
//! with SQLite and fernet tokens, from a copy of the template site that
//! `tests/peers/keystone/setup.sh` prepares (database synced and
//! bootstrapped, keys made). Killed on drop.
//!
//! [`Keystone::start`] runs the setup first, so a fresh clone needs no
//! manual step. The bootstrap admin (`admin` / [`ADMIN_PASSWORD`], project
//! `admin`) creates the users, projects and roles a test needs
//! ([`Keystone::user`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The bootstrap admin's password (set by setup.sh).
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// How long Keystone may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Keystone.
pub struct Keystone {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    dir: PathBuf,
    http: reqwest::Client,
    admin: tokio::sync::Mutex<Option<String>>,
}

impl Drop for Keystone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The repository root.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
}

/// Installs Keystone and its template once per test process; returns the
/// peer directory.
fn install() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo().join("tests/peers/keystone/setup.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        repo().join("target/peers/keystone")
    })
}

/// Copies `from` into `to` (files and directories, modes kept).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("site dir");
    let mode = std::fs::metadata(from).expect("template").permissions();
    std::fs::set_permissions(to, mode).expect("site dir mode");
    for entry in std::fs::read_dir(from).expect("read template") {
        let entry = entry.expect("template entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a template file");
        }
    }
}

/// A fresh scratch directory.
fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "drydock-keystone-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A user made for a test.
#[derive(Clone, Debug)]
pub struct User {
    /// Name.
    pub name: String,
    /// Keystone id.
    pub id: String,
    /// Password.
    pub password: String,
    /// The project its tokens are scoped to.
    pub project: String,
}

impl Keystone {
    /// Starts a Keystone of its own (a copy of the template site) and waits
    /// until it answers.
    pub async fn start() -> Keystone {
        let peer = install();
        let dir = scratch();
        copy_tree(&peer.join("template"), &dir);
        let port = crate::sushy::free_port();
        let log = std::fs::File::create(dir.join("gunicorn.log")).expect("log file");
        let child = Command::new(peer.join("venv/bin/gunicorn"))
            .current_dir(&dir)
            .env("OS_KEYSTONE_CONFIG_DIR", &dir)
            .env("PYTHONWARNINGS", "ignore")
            .args([
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--workers",
                "1",
                "--threads",
                "8",
                "--chdir",
            ])
            .arg(&dir)
            .arg("keystone_wsgi:application")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start gunicorn");
        let ks = Keystone {
            port,
            child,
            dir,
            http: reqwest::Client::new(),
            admin: tokio::sync::Mutex::new(None),
        };
        ks.wait_ready().await;
        ks
    }

    /// Polls `GET /v3` until it answers 200 (gunicorn binds its port before
    /// its worker has loaded Keystone).
    async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if let Ok(r) = self.http.get(format!("{}/v3", self.url())).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "keystone did not start within {START_TIMEOUT:?}: {}",
                std::fs::read_to_string(self.dir.join("gunicorn.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A project-scoped token for `user` / `password` in `project` (all in
    /// the default domain).
    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }});
        let r = self
            .http
            .post(format!("{}/v3/auth/tokens?nocatalog", self.url()))
            .json(&body)
            .send()
            .await
            .expect("keystone answers");
        assert_eq!(r.status(), 201, "token for {user}: {:?}", r.text().await);
        r.headers()["x-subject-token"]
            .to_str()
            .expect("token")
            .to_owned()
    }

    /// The bootstrap admin's token (issued once).
    async fn admin(&self) -> String {
        let mut slot = self.admin.lock().await;
        if slot.is_none() {
            *slot = Some(self.token("admin", ADMIN_PASSWORD, "admin").await);
        }
        slot.clone().expect("admin token")
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let admin = self.admin().await;
        let mut req = self
            .http
            .request(method.clone(), format!("{}/v3{path}", self.url()))
            .header("X-Auth-Token", admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("keystone answers");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The id of `kind` (`projects`, `roles`) named `name`, created if
    /// missing.
    async fn ensure(&self, kind: &str, name: &str) -> String {
        let found = self
            .call(reqwest::Method::GET, &format!("/{kind}?name={name}"), None)
            .await;
        if let Some(id) = found[kind][0]["id"].as_str() {
            return id.to_owned();
        }
        let one = kind.trim_end_matches('s');
        let mut obj = json!({"name": name});
        if kind == "projects" {
            obj["domain_id"] = json!("default");
        }
        let made = self
            .call(
                reqwest::Method::POST,
                &format!("/{kind}"),
                Some(json!({ one: obj })),
            )
            .await;
        made[one]["id"].as_str().expect("new id").to_owned()
    }

    /// Creates user `name` with `roles` (created when missing) on
    /// `project` (created when missing).
    pub async fn user(&self, name: &str, project: &str, roles: &[&str]) -> User {
        let project_id = self.ensure("projects", project).await;
        let password = format!("{name}-password");
        let made = self
            .call(
                reqwest::Method::POST,
                "/users",
                Some(json!({"user": {"name": name, "password": password,
                    "domain_id": "default"}})),
            )
            .await;
        let id = made["user"]["id"].as_str().expect("user id").to_owned();
        for role in roles {
            let role_id = self.ensure("roles", role).await;
            self.call(
                reqwest::Method::PUT,
                &format!("/projects/{project_id}/users/{id}/roles/{role_id}"),
                None,
            )
            .await;
        }
        User {
            name: name.into(),
            id,
            password,
            project: project.into(),
        }
    }

    /// A token for a user made by [`Keystone::user`].
    pub async fn token_for(&self, u: &User) -> String {
        self.token(&u.name, &u.password, &u.project).await
    }

    /// Revokes `token` (`DELETE /v3/auth/tokens`).
    pub async fn revoke(&self, token: &str) {
        let admin = self.admin().await;
        let r = self
            .http
            .delete(format!("{}/v3/auth/tokens", self.url()))
            .header("X-Auth-Token", admin)
            .header("X-Subject-Token", token)
            .send()
            .await
            .expect("keystone answers");
        assert_eq!(r.status(), 204, "revoking: {:?}", r.text().await);
    }
}
