//! The API's HTTP/1.1 server loop, with the limits `axum::serve` lacks.
//!
//! - **Connections**: at most `max_connections` open; the listener accepts
//!   the next only when one closes (others wait in the kernel's backlog).
//! - **Header timeout**: hyper's `header_read_timeout` closes a connection
//!   whose client has not sent a whole request head in time (a slowloris),
//!   counted from when the server starts waiting, so it also bounds how
//!   long a keep-alive connection sits between requests.
//! - **Idle timeout**: a connection on which no byte has moved either way
//!   for `idle_timeout_ms` while none of its requests is being handled (a
//!   client that stopped reading its answer) is closed.
//! - **Request timeout** (tower's `Timeout`): from a request's head to its
//!   answer, body reading included; past it, 503 with `Retry-After`.
//! - **Concurrency** (tower's `GlobalConcurrencyLimit` behind `LoadShed`):
//!   at most `max_requests` handled at once; others are answered 503 with
//!   `Retry-After` at once rather than queued.
//!
//! hyper (already the API's HTTP implementation under axum) and tower are
//! the crates axum itself is built from; this module only wires their knobs
//! together and adds the idle watchdog, which neither provides.

use crate::config::HttpSettings;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::{ServiceBuilder, ServiceExt};

/// The limits, as durations.
#[derive(Clone, Copy, Debug)]
struct Limits {
    header: Duration,
    request: Duration,
    idle: Duration,
    retry_after: u64,
}

impl From<&HttpSettings> for Limits {
    fn from(s: &HttpSettings) -> Self {
        Limits {
            header: Duration::from_millis(s.header_timeout_ms),
            request: Duration::from_millis(s.request_timeout_ms),
            idle: Duration::from_millis(s.idle_timeout_ms),
            retry_after: s.retry_after_s,
        }
    }
}

/// A 503 answer with `Retry-After`, in Drydock's error shape.
fn unavailable(message: &str, retry_after: u64) -> Response {
    let mut res = crate::api::error::error_response(StatusCode::SERVICE_UNAVAILABLE, message);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    res
}

/// The router behind the request timeout and the concurrency limit.
fn service(
    app: Router,
    s: &HttpSettings,
) -> impl tower::Service<
    axum::http::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    let limits = Limits::from(s);
    ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            move |e: tower::BoxError| async move {
                if e.is::<tower::load_shed::error::Overloaded>() {
                    tracing::warn!("request refused: too many requests in flight");
                    unavailable(
                        "the server is handling too many requests; retry later",
                        limits.retry_after,
                    )
                } else if e.is::<tower::timeout::error::Elapsed>() {
                    tracing::warn!(limit = ?limits.request, "request cut: it took too long");
                    unavailable(
                        &format!("the request took longer than {:?}", limits.request),
                        limits.retry_after,
                    )
                } else {
                    tracing::error!(error = %e, "request failed in the server stack");
                    crate::api::error::error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal error, see the server log",
                    )
                }
            },
        ))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            s.max_requests,
        ))
        .timeout(limits.request)
        .service(app)
}

/// When a connection last moved a byte, and how many of its requests are
/// being handled.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once the connection has been idle for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let due = if self.in_flight.load(Ordering::Relaxed) > 0 {
                // A request is being handled (the request timeout governs
                // it): look again later.
                Instant::now() + idle
            } else {
                last + idle
            };
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        a.touch();
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A TCP stream that records when bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` with the limits of `settings` until `stop`
/// is cancelled; then stops accepting and waits (at most the request
/// timeout and a second) for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &HttpSettings,
    stop: CancellationToken,
) -> io::Result<()> {
    let limits = Limits::from(settings);
    let svc = service(app, settings);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off
                    // rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        });
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: activity.clone(),
        });
        let svc = svc.clone();
        let counted = activity.clone();
        let hyper_svc = hyper::service::service_fn(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                // The peer's address, for the bad-token throttle and logs.
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(peer));
                let guard = InFlight::new(&counted);
                let call = svc.clone().oneshot(req);
                async move {
                    let res = call.await;
                    drop(guard);
                    res
                }
            },
        );
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header)
            .serve_connection(io, hyper_svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = activity.idle_for(limits.idle) => {
                    tracing::debug!(%peer, "closing an idle connection");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let bound = limits.request + Duration::from_secs(1);
    if tokio::time::timeout(bound, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period: closing them");
    }
    Ok(())
}
