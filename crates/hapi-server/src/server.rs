//! The socket side: accept connections within limits, run HTTP/1.1 on each, and shut
//! down gracefully.
//!
//! `axum::serve` has no connection cap, no header timeout and no write timeout, so one
//! address could hold every file descriptor with idle or slow sockets, and a client that
//! stops reading would hold its response forever. Here:
//! - at most `max_connections` open connections, `max_connections_per_address` from one
//!   address (more are closed at once);
//! - a request's header must arrive within `header_timeout` of the connection's start or
//!   of the previous response (hyper's header timer, which also ends idle keep-alives);
//! - a write that makes no progress for `send_timeout` fails, which drops the connection;
//! - `TCP_NODELAY`, so a small response never waits for the client's delayed ACK;
//! - on shutdown: stop accepting, let connections finish their responses for up to
//!   `shutdown_grace`, then drop the rest.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::ServerSettings;

/// hyper's buffer limit (bytes): a request header must fit, and a response queues at
/// most one chunk past it.
const WRITE_BUFFER: usize = 32 * 1024;
/// File descriptors kept free for the store, key files and logs.
const FD_RESERVE: usize = 64;

/// Serves the latest of `routers` on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    routers: tokio::sync::watch::Receiver<Router>,
    limits: ServerSettings,
    open: metrics::Gauge,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = limits.max_connections.min(fd_budget());
    let slots = Arc::new(Semaphore::new(max));
    let per_address = Arc::new(Mutex::new(HashMap::<IpAddr, usize>::new()));
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        // hyper pulls body chunks while its write queue is below this: kept small, a
        // stalled stream holds one chunk, not three. It also caps a request's header.
        .max_buf_size(WRITE_BUFFER);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the slot is freed.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A trusted proxy carries many clients on its connections: only the total cap.
        let per_address_cap = if limits.trusted_proxies.contains(&peer.ip()) {
            usize::MAX
        } else {
            limits.max_connections_per_address
        };
        let Some(address_slot) = AddressSlot::take(&per_address, peer.ip(), per_address_cap) else {
            tracing::debug!(peer = %peer.ip(), "too many connections from one address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(StallGuard::new(stream, limits.send_timeout));
        let routers = routers.clone();
        let trusted = limits.trusted_proxies.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            let client = client_address(peer, req.headers(), &trusted);
            req.extensions_mut().insert(ConnectInfo(client));
            // The router of the moment: after a reload, the next request gets the new one.
            let router = routers.borrow().clone();
            router.oneshot(req)
        });
        let conn = graceful.watch(http.serve_connection(io, service));
        let counted = Counted::new(open.clone());
        conns.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop((slot, address_slot, counted));
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(connections = open, grace_s = limits.shutdown_grace.as_secs(), "shutting down");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(connections = conns.len(), "shutdown grace ran out: dropping the rest");
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// A connection in the open-connections gauge for as long as it lives, also when its
/// task is aborted at the end of the shutdown grace.
struct Counted(metrics::Gauge);

impl Counted {
    fn new(gauge: metrics::Gauge) -> Counted {
        gauge.increment(1.0);
        Counted(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Connections the open-file limit allows, less a reserve.
fn fd_budget() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    limit.map_or(usize::MAX, |l| l.saturating_sub(FD_RESERVE).max(1))
}

/// One connection's place in the per-address count.
struct AddressSlot {
    ip: IpAddr,
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl AddressSlot {
    fn take(map: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut m = map.lock().unwrap_or_else(PoisonError::into_inner);
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot { ip, map: Arc::clone(map) })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A socket whose writes fail after `timeout` without progress: a client that stopped
/// reading loses its connection instead of holding its response (and its stream slot).
struct StallGuard {
    inner: TcpStream,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

impl StallGuard {
    fn new(inner: TcpStream, timeout: Duration) -> StallGuard {
        StallGuard { inner, timeout, timer: Box::pin(tokio::time::sleep(timeout)), armed: false }
    }

    /// After a write returned `Pending`: start the clock, or fail when it ran out.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.armed {
            self.timer.as_mut().reset(Instant::now() + self.timeout);
            self.armed = true;
        }
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading"))
    }

    fn progress<T>(&mut self, cx: &mut Context<'_>, p: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match p {
            Poll::Pending => match self.stalled(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            ready => {
                self.armed = false;
                ready
            }
        }
    }
}

impl AsyncRead for StallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallGuard {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, p)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, p)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let p = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(cx, p)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (entries to its
/// left are whatever the client chose to send). Port 0 when it came from the header.
fn client_address(peer: SocketAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> SocketAddr {
    if !trusted.contains(&peer.ip()) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return SocketAddr::new(ip, 0),
            // Not an address: nothing left of it can be believed.
            Err(_) => break,
        }
    }
    peer
}

/// The client's address (the peer, or whom a trusted proxy names), which the accept
/// loop puts into every request.
pub fn peer(req: &axum::http::Extensions) -> Option<SocketAddr> {
    req.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

#[cfg(test)]
mod client_address_tests {
    use super::*;

    fn with(xff: &[&str]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let trusted: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let ip = |a: &str| SocketAddr::new(a.parse().unwrap(), 0);
        assert_eq!(client_address(proxy, &with(&["203.0.113.7"]), &trusted), ip("203.0.113.7"));
        // A client's own entries are left of the one the proxy appended.
        assert_eq!(client_address(proxy, &with(&["1.2.3.4, 203.0.113.7"]), &trusted), ip("203.0.113.7"));
        assert_eq!(
            client_address(proxy, &with(&["1.2.3.4", "203.0.113.7, 10.0.0.2"]), &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(proxy, &with(&["1.2.3.4, junk"]), &trusted),
            proxy,
            "garbage: the proxy itself"
        );
        assert_eq!(client_address(proxy, &with(&[]), &trusted), proxy);
        let stranger: SocketAddr = "198.51.100.1:6000".parse().unwrap();
        assert_eq!(
            client_address(stranger, &with(&["203.0.113.7"]), &trusted),
            stranger,
            "an untrusted peer's header is ignored"
        );
    }
}
