//! Kefu's gateway: holds client WebSockets and serves the HTTP API, with no
//! business state.
//!
//! A gateway checks tokens and frames, forwards what it accepts to the worker
//! that owns the frame's shard ([`WorkerLink`]), and delivers what workers
//! push back ([`Gateway::deliver`]) to the sockets of the listed users. It
//! tells the register which users it holds, and retransmits pushed messages
//! until a device confirms them.
//!
//! # Layout
//! - [`config`]: limits and timeouts.
//! - [`http`]: the axum router: `/ws`, sign-in, uploads, `/files/*`,
//!   `/healthz`, `/metrics`.
//! - `api`: the JSON API's other calls, each checked once and sent to a
//!   worker as a typed `ApiCall`.
//! - [`conn`]: one WebSocket connection, from auth to close.
//! - [`limits`]: visitor creation and login per client address, and the
//!   back-off after wrong passwords.
//! - [`retransmit`]: the per-connection back-off schedule.
//! - [`server`]: the listener: header and write timeouts, connections per
//!   client address, back-off on accept errors.
//! - [`tls`]: HTTPS/WSS with a certificate reloaded on SIGHUP.
//! - [`grpc`]: the `Gateway` gRPC service (deliver).
//! - [`workers`]: [`workers::RingLink`], the cluster's way to workers:
//!   consistent hashing, one frame stream per worker, retry on failure.
//! - [`metrics`]: counters and gauges.

#![forbid(unsafe_code)]

mod api;
pub mod config;
pub mod conn;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod retransmit;
pub mod server;
pub mod tls;
pub mod workers;

pub use config::GatewayConfig;
pub use limits::LimitsConfig;

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use kefu_proto::v1::push::Kind;
use kefu_proto::v1::{ApiCall, ApiReply, ConnectionEvent, FrameRequest, PushBatch};
use kefu_register::Register;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// How a gateway reaches the workers: the owner of each frame's shard.
#[async_trait::async_trait]
pub trait WorkerLink: Send + Sync + 'static {
    /// Forwards one frame; frames of one shard must arrive in this order.
    async fn submit(&self, request: FrameRequest) -> Result<(), LinkError>;
    async fn connection(&self, event: ConnectionEvent) -> Result<(), LinkError>;
    async fn api(&self, request: ApiCall) -> Result<ApiReply, LinkError>;
    /// Whether some worker can take frames now.
    fn ready(&self) -> bool {
        true
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no worker available: {0}")]
pub struct LinkError(pub String);

/// What a connection task is told to do.
#[derive(Debug)]
pub(crate) enum Out {
    /// A frame to write; a non-zero id is retransmitted until confirmed;
    /// `true`: an error ack refusing what the client asked.
    Frame(Utf8Bytes, u64, bool),
    /// The answer to a send this connection forwarded, for its
    /// client_msg_id; `true`: refused.
    Answer(Utf8Bytes, String, bool),
    /// Messages confirmed by some device of this user.
    Confirmed(Vec<u64>),
    Close(u16, &'static str),
}

pub(crate) struct ConnHandle {
    pub session: Arc<kefu_proto::v1::Session>,
    pub tx: flume::Sender<Out>,
    /// Raised once when a push finds the queue full.
    pub overflow: Arc<Overflow>,
}

/// A connection's send queue overflowed: it is closed with 1013 at once,
/// nothing more is queued for it, and it is logged and counted once.
#[derive(Default)]
pub(crate) struct Overflow {
    raised: std::sync::atomic::AtomicBool,
    pub notify: tokio::sync::Notify,
}

impl Overflow {
    /// True the first time only.
    pub(crate) fn raise(&self) -> bool {
        let first = !self.raised.swap(true, Ordering::Relaxed);
        if first {
            self.notify.notify_one();
        }
        first
    }
}

/// A gateway; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: GatewayConfig,
    pub workers: Arc<dyn WorkerLink>,
    pub register: Arc<dyn Register>,
    pub conns: DashMap<String, ConnHandle>,
    /// Told when the last connection closes.
    pub all_closed: tokio::sync::Notify,
    pub users: DashMap<String, Vec<String>>,
    pub limits: limits::Limits,
    next_conn: AtomicU64,
    /// Flips to true when the gateway drains.
    pub draining: watch::Sender<bool>,
    /// Uploads being received at once, at most `max_concurrent_uploads`:
    /// each holds its file in memory until the worker has it.
    pub uploads: Arc<tokio::sync::Semaphore>,
    /// The gateway's loops and jobs, stopped by whoever started it once
    /// its connections are closed.
    pub lifecycle: kefu_lifecycle::Lifecycle,
}

/// The upload slots of a configuration (0: as good as unlimited).
fn config_uploads(config: &GatewayConfig) -> usize {
    match config.max_concurrent_uploads {
        0 => tokio::sync::Semaphore::MAX_PERMITS,
        n => n,
    }
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        workers: Arc<dyn WorkerLink>,
        register: Arc<dyn Register>,
        lifecycle: kefu_lifecycle::Lifecycle,
    ) -> Gateway {
        metrics::init();
        let uploads = Arc::new(tokio::sync::Semaphore::new(config_uploads(&config)));
        Gateway {
            inner: Arc::new(Inner {
                limits: limits::Limits::new(config.client_limits.clone()),
                config,
                workers,
                register,
                conns: DashMap::new(),
                all_closed: tokio::sync::Notify::new(),
                users: DashMap::new(),
                next_conn: AtomicU64::new(1),
                draining: watch::channel(false).0,
                uploads,
                lifecycle,
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.inner.config.id
    }

    /// Delivers pushes from a worker to the local sockets they name.
    pub fn deliver(&self, batch: PushBatch) {
        for push in batch.pushes {
            match push.kind {
                Some(Kind::Reply(reply)) => {
                    let Some(frame) = text(reply.frame_json) else {
                        continue;
                    };
                    self.inner
                        .send_to_conn(&reply.conn_id, Out::Frame(frame, 0, reply.refused));
                }
                Some(Kind::Answer(reply)) => {
                    let Some(frame) = text(reply.frame_json) else {
                        continue;
                    };
                    let answer = Out::Answer(frame, reply.client_msg_id, reply.refused);
                    self.inner.send_to_conn(&reply.conn_id, answer);
                }
                Some(Kind::Fanout(fanout)) => {
                    let Some(frame) = text(fanout.frame_json) else {
                        continue;
                    };
                    for user in &fanout.user_ids {
                        self.inner.each_conn_of(user, |conn| {
                            if conn != fanout.exclude_conn {
                                let out = Out::Frame(frame.clone(), fanout.message_id, false);
                                self.inner.send_to_conn(conn, out);
                            }
                        });
                    }
                }
                Some(Kind::Confirmed(confirmed)) => {
                    self.inner.each_conn_of(&confirmed.user_id, |conn| {
                        let out = Out::Confirmed(confirmed.message_ids.clone());
                        self.inner.send_to_conn(conn, out);
                    });
                }
                Some(Kind::Close(close)) => self.close(close),
                None => tracing::warn!("worker pushed nothing this gateway knows; skipped"),
            }
        }
    }

    /// Closes the connection a worker named, or a user's connections whose
    /// token was issued before a sign-out.
    fn close(&self, close: kefu_proto::v1::Close) {
        let out = || Out::Close(close.code as u16, close_reason(close.code));
        if !close.conn_id.is_empty() {
            self.inner.send_to_conn(&close.conn_id, out());
        }
        if !close.user_id.is_empty() {
            self.inner.each_conn_of(&close.user_id, |conn| {
                let signed_out = self
                    .inner
                    .conns
                    .get(conn)
                    .is_some_and(|c| c.session.issued_at <= close.issued_up_to);
                if signed_out {
                    self.inner.send_to_conn(conn, out());
                }
            });
        }
    }

    /// Stops taking connections and closes the open ones with 1001.
    pub fn drain(&self) {
        let _ = self.inner.draining.send(true);
        for conn in self.inner.conns.iter() {
            let _ = conn.tx.try_send(Out::Close(1001, "server shutting down"));
        }
    }

    /// Tells the register about every open connection again (after the
    /// register lost its state).
    pub async fn announce_all(&self) {
        let locations: Vec<_> = self
            .inner
            .conns
            .iter()
            .map(|c| conn::location(&c.session))
            .collect();
        if let Err(e) = self.inner.register.announce(locations).await {
            tracing::warn!(error = %e, "cannot announce connections");
        }
    }

    /// Open connections on this gateway.
    pub fn connections(&self) -> usize {
        self.inner.conns.len()
    }

    /// Waits, at most `timeout`, until no connection is open; true if none
    /// is.
    pub async fn all_closed(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check: a close between the two still wakes it.
            let closed = self.inner.all_closed.notified();
            if self.inner.conns.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                return self.inner.conns.is_empty();
            }
        }
    }
}

/// A pushed frame as text for the socket.
fn text(frame_json: bytes::Bytes) -> Option<Utf8Bytes> {
    let text = Utf8Bytes::try_from(frame_json);
    if text.is_err() {
        tracing::error!("worker pushed a frame that is not UTF-8; skipped");
    }
    text.ok()
}

/// The reason sent with a close a worker asked for.
fn close_reason(code: u32) -> &'static str {
    match code {
        4401 => "signed out",
        4403 => "this user id belongs to another role",
        _ => "closed by server",
    }
}

impl Inner {
    /// The session a worker checks a caller's frames and calls against; a
    /// connection adds its device, id and address.
    pub(crate) fn session(&self, claims: &kefu_protocol::Claims) -> kefu_proto::v1::Session {
        kefu_proto::v1::Session {
            user_id: claims.sub.clone(),
            role: claims.role.as_str().into(),
            name: claims.name.clone().unwrap_or_default(),
            device: claims.device.clone().unwrap_or_default(),
            conn_id: String::new(),
            gateway_id: self.config.id.clone(),
            client_ip: String::new(),
            issued_at: claims.iat.unwrap_or(0),
        }
    }

    pub(crate) fn new_conn_id(&self) -> String {
        format!(
            "{}-{}",
            self.config.id,
            self.next_conn.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Calls `f` with each connection of `user` here, without copying the
    /// list. `f` must not touch `users` (it may touch `conns`).
    fn each_conn_of(&self, user: &str, mut f: impl FnMut(&str)) {
        if let Some(conns) = self.users.get(user) {
            conns.iter().for_each(|c| f(c));
        }
    }

    fn send_to_conn(&self, conn: &str, out: Out) {
        let Some(handle) = self.conns.get(conn) else {
            return;
        };
        if let Err(flume::TrySendError::Full(_)) = handle.tx.try_send(out) {
            // A client this far behind cannot keep up: close it; it will
            // reconnect and catch up from /api/offline.
            if handle.overflow.raise() {
                metrics::SLOW_CONSUMERS.inc();
                tracing::warn!(conn_id = conn, user_id = %handle.session.user_id, "send queue full, closing with 1013");
            }
        }
    }
}
