//! The API server's limits over real sockets (`drydock::httpd`): header,
//! request and idle timeouts, the connection and concurrency limits, body
//! limits per route; and the SQLite files' modes (`drydock::sqlite_files`).

use axum::Router;
use axum::routing::get;
use drydock::config::{Config, HttpSettings};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// A bound on every wait, so a broken limit fails the test instead of
/// hanging it.
const BOUND: Duration = Duration::from_secs(20);

/// A server over a test router: `/ok` answers at once; `/hold` tells the
/// test it started, then waits for `release`.
struct TestServer {
    addr: SocketAddr,
    started: mpsc::UnboundedReceiver<()>,
    release: Arc<Notify>,
    stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(settings: HttpSettings) -> TestServer {
    let (tx, started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let r = release.clone();
    let app = Router::new().route("/ok", get(|| async { "ok" })).route(
        "/hold",
        get(move || {
            let (tx, r) = (tx.clone(), r.clone());
            async move {
                let _ = tx.send(());
                r.notified().await;
                "released"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move { drydock::httpd::serve(listener, app, &settings, s).await });
    TestServer {
        addr,
        started,
        release,
        stop,
    }
}

/// Sends a GET on `conn` (keep-alive).
async fn send_get(conn: &mut TcpStream, path: &str) {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
}

/// Reads one answer with a small body (head and body in one go is enough
/// for these answers); returns the text.
async fn read_answer(conn: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 8192];
    let mut text = String::new();
    loop {
        let n = tokio::time::timeout(BOUND, conn.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "connection closed before an answer: {text:?}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if text.len() >= head_end + 4 + len {
                return text;
            }
        }
    }
}

/// Waits for the server to close `conn` (EOF or reset), reading whatever
/// it sends first.
async fn closed(conn: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let r = tokio::time::timeout(BOUND, conn.read_to_end(&mut got)).await;
    assert!(r.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

async fn get_once(addr: SocketAddr, path: &str) -> String {
    let mut c = TcpStream::connect(addr).await.unwrap();
    send_get(&mut c, path).await;
    read_answer(&mut c).await
}

#[tokio::test]
async fn a_slowloris_client_is_cut_after_the_header_timeout() {
    let s = serve(HttpSettings {
        header_timeout_ms: 300,
        ..HttpSettings::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let (mut rd, mut wr) = conn.into_split();
    // One more header byte every 50 ms: the head never ends.
    let trickle = tokio::spawn(async move {
        loop {
            if wr.write_all(b"X").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut got = Vec::new();
    let r = tokio::time::timeout(BOUND, rd.read_to_end(&mut got)).await;
    trickle.abort();
    assert!(r.is_ok(), "the server kept a never-ending request head");
    let text = String::from_utf8_lossy(&got);
    assert!(!text.contains("200 OK"), "{text}");
    // Other clients are still served.
    assert!(get_once(s.addr, "/ok").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_request_taking_too_long_gets_503_with_retry_after() {
    let s = serve(HttpSettings {
        request_timeout_ms: 200,
        retry_after_s: 7,
        ..HttpSettings::default()
    })
    .await;
    let answer = get_once(s.addr, "/hold").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 7"), "{answer}");
    assert!(answer.contains("took longer than"), "{answer}");
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_get_503_with_retry_after() {
    let mut s = serve(HttpSettings {
        max_requests: 1,
        ..HttpSettings::default()
    })
    .await;
    let addr = s.addr;
    let first = tokio::spawn(async move { get_once(addr, "/hold").await });
    tokio::time::timeout(BOUND, s.started.recv())
        .await
        .expect("the first request reached its handler");
    let refused = get_once(s.addr, "/ok").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    assert!(refused.contains("too many requests"), "{refused}");
    s.release.notify_one();
    let first = first.await.unwrap();
    assert!(first.ends_with("released"), "{first}");
    // The slot is free again.
    assert!(get_once(s.addr, "/ok").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn the_connection_limit_holds_the_next_connection_until_one_closes() {
    let s = serve(HttpSettings {
        max_connections: 1,
        ..HttpSettings::default()
    })
    .await;
    let mut a = TcpStream::connect(s.addr).await.unwrap();
    send_get(&mut a, "/ok").await;
    assert!(read_answer(&mut a).await.starts_with("HTTP/1.1 200"));
    // `a` stays open (keep-alive): `b` is not served...
    let mut b = TcpStream::connect(s.addr).await.unwrap();
    send_get(&mut b, "/ok").await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), b.read(&mut byte)).await;
    assert!(early.is_err(), "a connection past the limit was served");
    // ...until `a` closes.
    drop(a);
    assert!(read_answer(&mut b).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let s = serve(HttpSettings {
        // The header timeout (which also bounds the wait for the next
        // request) is far away: the idle timeout closes the connection.
        header_timeout_ms: 600_000,
        idle_timeout_ms: 200,
        ..HttpSettings::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    send_get(&mut conn, "/ok").await;
    assert!(read_answer(&mut conn).await.starts_with("HTTP/1.1 200"));
    assert_eq!(closed(&mut conn).await, "");
}

// ------------------------------------------------------------ whole server

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "http-limits-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const TOKEN: &str = "operator-token-0123456789";

fn config(dir: &std::path::Path) -> Config {
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        bundled_drivers: false,
        design_dir: None,
        ..Config::default()
    };
    cfg.apply_env(|k| (k == "DRYDOCK_TOKENS").then(|| format!("ops:admin:{TOKEN}")))
        .unwrap();
    cfg
}

async fn post(url: String, body: Vec<u8>, content_type: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn body_limits_are_per_route() {
    let dir = scratch("bodies");
    let server = drydock::server::start(config(&dir)).await.unwrap();
    let api = format!("http://{}/api/v1.0", server.addr);
    // 100 KiB: past the small-JSON limit, within the task and filter one.
    let big = |key: &str| {
        let mut v = format!("{{\"{key}\": \"").into_bytes();
        v.resize(100 << 10, b'a');
        v.extend_from_slice(b"\"}");
        v
    };
    for route in [
        "/nodes",
        "/validatedesign",
        "/bootactions/01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ] {
        let r = post(format!("{api}{route}"), big("name"), "application/json").await;
        assert_eq!(r.status(), 413, "{route}");
    }
    for route in ["/tasks", "/nodefilter"] {
        // Past the small limit, within the route's: the handler answers
        // (POST /tasks refuses the action, /nodefilter ignores the key as
        // Drydock does), not the size limit.
        let r = post(format!("{api}{route}"), big("action"), "application/json").await;
        let status = r.status();
        assert_ne!(status, 413, "{route}: {}", r.text().await.unwrap());
    }
    let r = post(
        format!("{api}/tasks"),
        vec![b' '; 2 << 20],
        "application/json",
    )
    .await;
    assert_eq!(r.status(), 413);
    // A driver upload may be large (it is refused as a package, not by size).
    let r = post(
        format!("{api}/drivers"),
        vec![0u8; 2 << 20],
        "application/octet-stream",
    )
    .await;
    assert_ne!(r.status(), 413);
    server.shutdown().await.unwrap();
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_database_is_0600_in_a_0700_directory() {
    use std::os::unix::fs::PermissionsExt;
    // Default place: data_dir, even one left open by an older install.
    let dir = scratch("files");
    let mut cfg = config(&dir);
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    std::fs::set_permissions(&cfg.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = drydock::server::start(cfg.clone()).await.unwrap();
    assert_eq!(mode(&cfg.data_dir), 0o700);
    assert_eq!(mode(&cfg.data_dir.join("drydock.db")), 0o600);
    server.shutdown().await.unwrap();

    // A custom path: its new directories are 0700, the file 0600.
    let custom = dir.join("custom/db");
    cfg.database_url = Some(format!(
        "sqlite:{}",
        custom.join("drydock.sqlite").display()
    ));
    let server = drydock::server::start(cfg.clone()).await.unwrap();
    assert_eq!(mode(&custom), 0o700);
    assert_eq!(mode(&custom.join("drydock.sqlite")), 0o600);
    for suffix in ["-wal", "-shm"] {
        let p = custom.join(format!("drydock.sqlite{suffix}"));
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    server.shutdown().await.unwrap();

    // An existing file is tightened; a directory open to others that is
    // not Drydock's own is refused, not changed.
    std::fs::set_permissions(
        custom.join("drydock.sqlite"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let server = drydock::server::start(cfg.clone()).await.unwrap();
    assert_eq!(mode(&custom.join("drydock.sqlite")), 0o600);
    server.shutdown().await.unwrap();
    std::fs::set_permissions(&custom, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = drydock::server::start(cfg).await.err().expect("refused");
    assert!(format!("{e:#}").contains("open to other users"), "{e:#}");
    assert_eq!(mode(&custom), 0o755);
}
