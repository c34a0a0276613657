//! The endpoints the conformance kit puts in front of a driver: a proxy to
//! the real device that can answer "busy" first, a stalled endpoint that
//! accepts connections and never answers, and a down one (a port nothing
//! listens on). Every endpoint is on 127.0.0.1 and counts its connections.
//!
//! The driver's HTTP client opens one connection per request (the host's
//! `wasi:http`), so a connection is a request here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest request head the busy answer reads before answering.
const MAX_HEAD: usize = 64 * 1024;

/// A listening endpoint, stopped on drop.
pub struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicU32>,
    /// Connections still to answer `503 Service Unavailable` (proxy only).
    pub busy_left: Arc<AtomicU32>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Endpoint {
    /// `host:port`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Connections accepted so far.
    pub fn seen(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }

    /// A proxy to `upstream`: each connection is relayed both ways, except
    /// that while `busy_left` is above zero a connection gets `503` with
    /// `Retry-After: 1` instead (and `busy_left` drops by one).
    pub async fn proxy(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicU32::new(0));
        let busy_left = Arc::new(AtomicU32::new(0));
        let (count, busy) = (connections.clone(), busy_left.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let answer_busy = busy
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                tokio::spawn(async move {
                    if answer_busy {
                        let _ = busy_answer(client).await;
                    } else {
                        let _ = relay(client, upstream).await;
                    }
                });
            }
        });
        Ok(Endpoint {
            addr,
            connections,
            busy_left,
            task: Some(task),
        })
    }

    /// An endpoint that accepts connections, reads them and never answers
    /// (a hung service).
    pub async fn stalled() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicU32::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(tokio::spawn(async move {
                    let mut sink = [0u8; 4096];
                    while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {}
                    // Keep the connection open until the kit is done.
                    std::future::pending::<()>().await;
                }));
            }
        });
        Ok(Endpoint {
            addr,
            connections,
            busy_left: Arc::new(AtomicU32::new(0)),
            task: Some(task),
        })
    }
}

/// A loopback address nothing listens on (a port bound, then released).
pub async fn down_address() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    listener.local_addr()
}

/// Reads a request (head and `content-length` body) and answers 503.
async fn busy_answer(mut client: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD {
            return Ok(());
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length.min(MAX_HEAD) {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    let body = br#"{"error":{"code":"Base.1.0.ServiceTemporarilyUnavailable","message":"busy"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(answer.as_bytes()).await?;
    client.write_all(body).await?;
    client.shutdown().await
}

/// Relays one connection to `upstream` both ways until either side closes.
async fn relay(mut client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_proxy_answers_busy_then_relays() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = upstream.accept().await {
                let mut b = [0u8; 1024];
                let _ = c.read(&mut b).await;
                let _ = c
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            }
        });
        let proxy = Endpoint::proxy(up_addr).await.unwrap();
        proxy.busy_left.store(1, Ordering::SeqCst);
        let get = |addr: SocketAddr| async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
                .await
                .unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get(proxy.addr).await.starts_with("HTTP/1.1 503"));
        assert!(get(proxy.addr).await.starts_with("HTTP/1.1 200"));
        assert_eq!(proxy.seen(), 2);
    }
}
