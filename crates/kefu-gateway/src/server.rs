//! The gateway's listener: accepts TCP connections and serves the router on
//! each, with the limits a public port needs and `axum::serve` lacks.
//!
//! - A connection that sends nothing, or stops in the middle of its request
//!   headers, is closed after the header timeout.
//! - Every socket write is bounded by the write timeout, so a download or
//!   a WebSocket whose reader stalled is dropped and its memory freed.
//! - One client address holds a bounded number of connections.
//! - An accept error (out of file descriptors) backs off instead of
//!   spinning, and is logged once per run of errors.
//!
//! Request bodies that stop arriving are cut by the router's body timeout
//! ([`crate::http`]).

use axum::extract::ConnectInfo;
use axum::Router;
use dashmap::DashMap;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt;

/// The limits of [`serve`].
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// A request's headers must arrive within this, the first byte included.
    pub header_timeout: Duration,
    /// A socket write that takes longer drops the connection.
    pub write_timeout: Duration,
    /// Open connections per client address (0: no limit). Trusted proxies
    /// are not limited: many clients share their address.
    pub max_connections_per_ip: usize,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Apply the cap to loopback addresses too. Off by default: on loopback
    /// sit a local proxy and local load tools, not the public.
    pub limit_loopback: bool,
    /// Serve HTTPS and WSS instead of plain HTTP (the handshake, too, must
    /// end within the header timeout).
    pub tls: Option<Arc<crate::tls::Tls>>,
}

impl ServerLimits {
    /// Whether per-address limits leave `ip` alone: loopback, unless
    /// `--limit-loopback`.
    pub fn exempt_loopback(&self, ip: IpAddr) -> bool {
        ip.is_loopback() && !self.limit_loopback
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections_per_ip: 256,
            trusted_proxies: Vec::new(),
            limit_loopback: false,
            tls: None,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting and asks every open connection to finish its request and
/// close. The connections are jobs of `role`: its
/// [`Lifecycle::stop`](kefu_lifecycle::Lifecycle::stop) waits for them
/// within the drain timeout, so a request that never ends (an upload
/// whose body stalled) cannot hold the process past it.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    role: &kefu_lifecycle::Lifecycle,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let per_ip: Arc<DashMap<IpAddr, usize>> = Arc::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut failing = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => {
                failing.recovered();
                pair
            }
            Err(e) => {
                failing.wait(&e).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&per_ip, &limits, peer.ip()) else {
            crate::metrics::CONNECTIONS_REFUSED.inc();
            tracing::debug!(%peer, "too many connections from this address");
            continue;
        };
        let app = app.clone();
        let limits = limits.clone();
        let stop = stop_rx.clone();
        role.spawn(async move {
            connection(tcp, peer, app, &limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    Ok(())
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: &ServerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    // Until its first request begins, a stopping server just closes it.
    let io = tokio::select! {
        io = opened(tcp, peer, limits) => io,
        _ = stop.changed() => None,
    };
    let Some(io) = io else { return };
    let io = TokioIo::new(io);
    let service = app.map_request(move |request: axum::http::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return log_end(peer, result),
        // It only ever changes to "stop", or closes with the listener.
        _ = stop.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    log_end(peer, conn.await);
}

/// The connection's byte stream once its first byte has come (and its TLS
/// handshake ended), each within the header timeout; `None` if not.
async fn opened(
    tcp: TcpStream,
    peer: SocketAddr,
    limits: &ServerLimits,
) -> Option<std::pin::Pin<Box<dyn Io>>> {
    // Until the first byte hyper is still guessing between HTTP/1 and
    // HTTP/2, and applies no timeout of its own.
    let mut first = [0u8; 1];
    match tokio::time::timeout(limits.header_timeout, tcp.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return None,
    }
    let mut io = TimeoutStream::new(tcp);
    io.set_write_timeout(Some(limits.write_timeout));
    let Some(tls) = &limits.tls else {
        return Some(Box::pin(io));
    };
    let handshake = tls.acceptor().accept(Box::pin(io));
    match tokio::time::timeout(limits.header_timeout, handshake).await {
        Ok(Ok(stream)) => Some(Box::pin(stream)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// A connection's byte stream: plain TCP or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send> Io for T {}

fn log_end<E: std::fmt::Display>(peer: SocketAddr, result: Result<(), E>) {
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// One client address's share of the connection limit, given back on drop.
struct Slot {
    per_ip: Arc<DashMap<IpAddr, usize>>,
    ip: Option<IpAddr>,
}

impl Slot {
    fn take(
        per_ip: &Arc<DashMap<IpAddr, usize>>,
        limits: &ServerLimits,
        ip: IpAddr,
    ) -> Option<Slot> {
        let max = limits.max_connections_per_ip;
        let exempt = max == 0
            || limits.exempt_loopback(ip)
            || limits.trusted_proxies.iter().any(|n| n.contains(&ip));
        if exempt {
            return Some(Slot {
                per_ip: per_ip.clone(),
                ip: None,
            });
        }
        let mut open = per_ip.entry(ip).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(Slot {
            per_ip: per_ip.clone(),
            ip: Some(ip),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            self.per_ip.remove_if_mut(&ip, |_, open| {
                *open -= 1;
                *open == 0
            });
        }
    }
}

/// Back-off for accept errors: out of file descriptors, accepting again at
/// once only fails again.
#[derive(Default)]
struct AcceptErrors {
    run: u32,
}

impl AcceptErrors {
    async fn wait(&mut self, e: &std::io::Error) {
        if is_per_connection(e) {
            return;
        }
        if self.run == 0 {
            tracing::warn!(error = %e, "cannot accept connections; backing off");
        }
        self.run += 1;
        let wait = Duration::from_millis(10 << self.run.min(7)).min(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
    }

    fn recovered(&mut self) {
        if self.run > 0 {
            tracing::warn!(errors = self.run, "accepting connections again");
            self.run = 0;
        }
    }
}

/// Errors about one connection that went away before it was accepted.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
