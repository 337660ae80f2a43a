//! The accept loop of `crtask serve`: the only place it hands a socket to
//! the HTTP stack, for the public listener and the API's alike, with the
//! connection limits:
//!
//! - at most `max_connections` open connections. When all are taken, the
//!   connection that has sat idle longest (no request in progress: stalled
//!   ones that never sent a whole request count as idle) is closed to make
//!   room; when every one is busy, the new connection waits briefly for a
//!   slot and is closed if none frees. So thousands of stalled connections
//!   cannot lock out `/healthz` or a signed push, and file descriptors are
//!   never exhausted (the cap is fitted under the open-file limit).
//! - a header read timeout (hyper's own), a deadline for each request's whole
//!   body, and an idle timeout between requests.
//!
//! hyper gives the header timeout; hyper-util, axum and tower-http offer no
//! connection cap with eviction, idle timeout between keep-alive requests or
//! whole-body deadline (tower-http's body timeout restarts at every frame,
//! which a client dripping one byte at a time defeats), so those are here.

use crate::limits::Limits;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long a new connection waits for a slot when every open one is busy.
const ADMIT_WAIT: Duration = Duration::from_millis(500);
/// How long shutdown waits for requests in progress (a followed log never ends).
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// Binds `addr`; `what` names the flag in the error (`--listen`).
pub async fn bind(addr: SocketAddr, what: &str) -> crate::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| crate::Error::Config(format!("{what}: cannot listen on {addr}: {e}")))
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves;
/// then stops accepting, lets requests in progress finish (up to 10 s) and
/// returns. Handlers can read the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let conns = Arc::new(Conns::new());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let Some(permit) = admit(&slots, &conns).await else {
            tracing::debug!(%peer, "connection refused: every slot is busy");
            continue; // dropping the stream closes it
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(
            stream,
            peer,
            router.clone(),
            limits.clone(),
            conns.clone(),
            permit,
            stop.clone(),
        ));
    }
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_WAIT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("requests still in progress after {DRAIN_WAIT:?}; stopping anyway");
    }
    Ok(())
}

/// A slot for a new connection: a free one, or one freed by closing the
/// connection idle longest, or one freed within [`ADMIT_WAIT`].
async fn admit(slots: &Arc<Semaphore>, conns: &Conns) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = slots.clone().try_acquire_owned() {
        return Some(p);
    }
    conns.evict_oldest_idle();
    tokio::time::timeout(ADMIT_WAIT, slots.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Errors of `accept` for one connection are skipped; others (out of file
/// descriptors) pause accepting for a moment, as axum's loop does.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accepting a connection failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One connection: HTTP/1 with the header timeout; closed when idle too
/// long, when evicted, or (gracefully) at shutdown.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    conns: Arc<Conns>,
    _permit: OwnedSemaphorePermit,
    stop: CancellationToken,
) {
    let (id, conn) = conns.add();
    let body_timeout = limits.body_timeout;
    let svc = {
        let (conn, conns) = (conn.clone(), conns.clone());
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let busy = Busy::new(conn.clone(), conns.clone());
            let mut req = req.map(|b| Body::new(Deadline::new(b, body_timeout)));
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let resp = router.oneshot(req).await;
                resp.map(|r| {
                    r.map(|b| {
                        Body::new(Guarded {
                            inner: b,
                            _busy: busy,
                        })
                    })
                })
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let http = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(http);
    let mut draining = false;
    loop {
        let idle_for = conns.idle_for(&conn);
        let wake = Instant::now()
            + limits
                .idle_timeout
                .saturating_sub(idle_for.unwrap_or_default());
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                break;
            }
            _ = conn.evict.cancelled() => {
                tracing::debug!(%peer, "idle connection closed to make room");
                break;
            }
            _ = stop.cancelled(), if !draining => {
                http.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = tokio::time::sleep_until(wake) => {
                if conns.idle_for(&conn).is_some_and(|d| d >= limits.idle_timeout) {
                    tracing::debug!(%peer, "idle connection closed");
                    break;
                }
            }
        }
    }
    conns.remove(id);
}

/// The open connections, for eviction.
struct Conns {
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

struct Conn {
    /// Requests in progress (their response bodies included).
    in_flight: AtomicUsize,
    /// When it last became idle, in milliseconds since [`Conns::epoch`].
    idle_since: AtomicU64,
    evict: CancellationToken,
}

impl Conns {
    fn new() -> Self {
        Conns {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        // The map holds no invariant a panic could break.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            evict: CancellationToken::new(),
        });
        self.lock().insert(id, conn.clone());
        (id, conn)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// How long `conn` has had no request in progress; `None` while busy.
    fn idle_for(&self, conn: &Conn) -> Option<Duration> {
        if conn.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = conn.idle_since.load(Ordering::Acquire);
        Some(Duration::from_millis(self.now_ms().saturating_sub(since)))
    }

    /// Closes the connection idle longest; `false` when every one is busy.
    fn evict_oldest_idle(&self) -> bool {
        let mut open = self.lock();
        let oldest = open
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.idle_since.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| open.remove(&id)) {
            Some(c) => {
                c.evict.cancel();
                true
            }
            None => false,
        }
    }
}

/// Marks a request in progress on its connection until dropped (with the
/// response body, so a streamed answer keeps the connection busy).
struct Busy {
    conn: Arc<Conn>,
    conns: Arc<Conns>,
}

impl Busy {
    fn new(conn: Arc<Conn>, conns: Arc<Conns>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy { conn, conns }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .idle_since
            .store(self.conns.now_ms(), Ordering::Release);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress.
struct Guarded {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The error a request body gives when its deadline passes.
#[derive(Debug)]
pub struct BodyTimedOut(pub Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body was not received within {} s",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether a body read failed because of [`BodyTimedOut`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A request body that fails with [`BodyTimedOut`] once its deadline (set
/// when the request's headers arrived) passes.
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    expired: bool,
}

impl Deadline {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            expired: false,
        }
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired = true;
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_picks_the_connection_idle_longest_and_spares_busy_ones() {
        let conns = Arc::new(Conns::new());
        let (_, a) = conns.add();
        let (_, b) = conns.add();
        let (_, c) = conns.add();
        a.idle_since.store(5, Ordering::Release);
        b.idle_since.store(1, Ordering::Release);
        c.idle_since.store(0, Ordering::Release);
        let busy = Busy::new(c.clone(), conns.clone());
        assert!(conns.evict_oldest_idle());
        assert!(b.evict.is_cancelled(), "b is the oldest idle one");
        assert!(!c.evict.is_cancelled(), "c is busy");
        assert!(conns.evict_oldest_idle());
        assert!(a.evict.is_cancelled());
        assert!(!conns.evict_oldest_idle(), "only a busy one is left");
        drop(busy);
        assert!(conns.idle_for(&c).is_some());
        assert!(conns.evict_oldest_idle());
        assert!(c.evict.is_cancelled());
    }

    #[test]
    fn body_timeouts_are_recognised_through_wrapping() {
        let e = axum::Error::new(BodyTimedOut(Duration::from_secs(3)));
        assert!(is_body_timeout(&e));
        assert!(e.to_string().contains("3 s"), "{e}");
        let other = axum::Error::new(std::io::Error::other("reset"));
        assert!(!is_body_timeout(&other));
    }
}
