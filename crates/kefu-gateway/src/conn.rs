//! One WebSocket connection: authenticate, then relay frames both ways
//! until the client leaves, idles, misbehaves or the gateway drains.

use crate::retransmit::Retransmits;
use crate::{metrics, ConnHandle, Inner, Out, Overflow};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use kefu_proto::v1::{ClientCommand, ConnectionEvent, FrameRequest, Location, Session};
use kefu_protocol::{shard, token, Claims, Command, ErrorCode, Frame};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::time::{sleep_until, Instant};
use tracing::Instrument;

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// Close codes of the contract.
pub const CLOSE_AUTH: u16 = 4401;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_AWAY: u16 = 1001;
pub const CLOSE_SLOW: u16 = 1013;
pub const CLOSE_BAD_DATA: u16 = 1007;
/// The user already holds `max_devices_per_user` connections here.
pub const CLOSE_TOO_MANY_DEVICES: u16 = 4429;

/// How long the close frame may take to leave; a client that stopped
/// reading gets its socket dropped instead.
const CLOSE_WRITE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs a freshly upgraded socket to its end.
pub(crate) async fn run(
    inner: Arc<Inner>,
    socket: WebSocket,
    query_token: Option<String>,
    query_device: Option<String>,
    client_ip: String,
) {
    let (mut sink, mut stream) = socket.split();
    // The one-off steps are boxed so the connection's task, which lives as
    // long as the socket, is sized for the relay loop alone.
    let Some((claims, device)) = Box::pin(authenticate(
        &inner,
        &mut sink,
        &mut stream,
        query_token,
        query_device,
    ))
    .await
    else {
        return;
    };
    let max = inner.config.max_devices_per_user;
    let devices = inner.users.get(&claims.sub).map_or(0, |c| c.len());
    if max > 0 && devices >= max {
        let message = format!("this user already has {devices} connections; close one first");
        let ack = Frame::error("auth", None, ErrorCode::RateLimited, &message);
        let _ =
            tokio::time::timeout(CLOSE_WRITE, sink.send(Message::Text(ack.to_json().into()))).await;
        send_close(&mut sink, CLOSE_TOO_MANY_DEVICES, "too many devices").await;
        return;
    }
    // One copy per connection, shared by its loop and the gateway's map.
    let session = Arc::new(Session {
        device,
        conn_id: inner.new_conn_id(),
        client_ip,
        ..inner.session(&claims)
    });
    let (tx, rx) = flume::bounded(inner.config.send_queue);
    let overflow = Arc::new(Overflow::default());
    Box::pin(open(&inner, &session, tx, overflow.clone())).await;
    if sink.send(Message::Text(auth_ack(&session))).await.is_ok() {
        Connection {
            inner: inner.clone(),
            session: session.clone(),
            claims,
            sink,
            retransmits: Retransmits::new(inner.config.retransmit_after),
            refused: VecDeque::new(),
            unanswered: HashMap::new(),
            bucket: Bucket::full(&inner.config),
            receipts: Bucket::receipts(&inner.config),
            overflow,
        }
        .relay(stream, rx)
        // At debug level only: an enabled span costs every idle connection
        // a few hundred bytes.
        .instrument(
            tracing::debug_span!("conn", conn_id = %session.conn_id, user_id = %session.user_id),
        )
        .await;
    }
    Box::pin(close(&inner, &session)).await;
}

/// The ack of a successful authentication. Built apart so no frame stays in
/// the connection's task for the socket's lifetime.
fn auth_ack(session: &Session) -> Utf8Bytes {
    let mut ack = Frame::ack("auth", None);
    ack.ext = Some(serde_json::json!({
        "user_id": session.user_id, "role": session.role, "device": session.device,
        "conn_id": session.conn_id,
    }));
    ack.to_json().into()
}

async fn open(
    inner: &Inner,
    session: &Arc<Session>,
    tx: flume::Sender<Out>,
    overflow: Arc<Overflow>,
) {
    inner.conns.insert(
        session.conn_id.clone(),
        ConnHandle {
            session: Arc::clone(session),
            tx,
            overflow,
        },
    );
    inner
        .users
        .entry(session.user_id.clone())
        .or_insert_with(|| Vec::with_capacity(1))
        .push(session.conn_id.clone());
    metrics::CONNECTIONS.inc();
    if let Err(e) = inner.register.announce(vec![location(session)]).await {
        tracing::warn!(error = %e, conn_id = %session.conn_id, "cannot announce connection");
    }
    let event = ConnectionEvent {
        session: Some(Session::clone(session)),
        connected: true,
        shard: shard::of_user(&session.user_id),
    };
    if let Err(e) = inner.workers.connection(event).await {
        tracing::warn!(error = %e, conn_id = %session.conn_id, "cannot report connection");
    }
}

async fn close(inner: &Inner, session: &Session) {
    inner.conns.remove(&session.conn_id);
    if inner.conns.is_empty() {
        inner.all_closed.notify_waiters();
    }
    inner.users.remove_if_mut(&session.user_id, |_, conns| {
        conns.retain(|c| *c != session.conn_id);
        conns.is_empty()
    });
    metrics::CONNECTIONS.dec();
    if let Err(e) = inner.register.withdraw(vec![location(session)]).await {
        tracing::warn!(error = %e, conn_id = %session.conn_id, "cannot withdraw connection");
    }
    let event = ConnectionEvent {
        session: Some(Session::clone(session)),
        connected: false,
        shard: shard::of_user(&session.user_id),
    };
    let _ = inner.workers.connection(event).await;
}

pub(crate) fn location(session: &Session) -> Location {
    Location {
        user_id: session.user_id.clone(),
        gateway_id: session.gateway_id.clone(),
        conn_id: session.conn_id.clone(),
        device: session.device.clone(),
        role: session.role.clone(),
    }
}

async fn send_close(sink: &mut Sink, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = tokio::time::timeout(CLOSE_WRITE, sink.send(Message::Close(Some(frame)))).await;
}

/// Auth by `?token=` or by a first `auth` frame within the auth timeout.
/// On failure the client gets the error ack, then close 4401.
async fn authenticate(
    inner: &Inner,
    sink: &mut Sink,
    stream: &mut Stream,
    query_token: Option<String>,
    query_device: Option<String>,
) -> Option<(Claims, String)> {
    let (token, frame_device) = match query_token {
        Some(t) => (Some(t), None),
        None => {
            match tokio::time::timeout(inner.config.auth_timeout, first_auth_frame(stream)).await {
                Ok(Some(found)) => found,
                Ok(None) => return None,
                Err(_) => (None, None),
            }
        }
    };
    let verified = match token {
        Some(t) => token::verify(&inner.config.secret, &t).map_err(|e| e.to_string()),
        None => Err(format!(
            "authenticate within {} with an auth frame or ?token=",
            humantime::format_duration(inner.config.auth_timeout)
        )),
    };
    match verified {
        Ok(claims) => {
            let device = frame_device
                .or(query_device)
                .or_else(|| claims.device.clone())
                .unwrap_or_else(|| "default".into());
            Some((claims, device))
        }
        Err(message) => {
            let ack = Frame::error("auth", None, ErrorCode::Unauthorized, &message);
            let _ = sink.send(Message::Text(ack.to_json().into())).await;
            send_close(sink, CLOSE_AUTH, "unauthorized").await;
            None
        }
    }
}

/// The token and device of the first text frame; None when the socket ends.
async fn first_auth_frame(stream: &mut Stream) -> Option<(Option<String>, Option<String>)> {
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => {
                let frame = Frame::parse(text.as_bytes()).ok();
                let frame = frame.filter(|f| f.action.as_deref() == Some("auth"));
                let device = frame
                    .as_ref()
                    .and_then(|f| f.ext.as_ref())
                    .and_then(|e| e.get("device"))
                    .and_then(|d| d.as_str())
                    .map(str::to_owned);
                return Some((frame.and_then(|f| f.content), device));
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
    None
}

struct Connection {
    inner: Arc<Inner>,
    session: Arc<Session>,
    claims: Claims,
    sink: Sink,
    retransmits: Retransmits,
    refused: VecDeque<Instant>,
    /// Sends forwarded and not yet answered, by client_msg_id.
    unanswered: HashMap<String, u32>,
    bucket: Bucket,
    receipts: Bucket,
    overflow: Arc<Overflow>,
}

/// A token bucket: how many frames a connection may send right now.
struct Bucket {
    tokens: f64,
    at: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn full(config: &crate::GatewayConfig) -> Bucket {
        Bucket {
            tokens: config.frame_burst,
            at: Instant::now(),
            rate: config.max_frames_per_sec,
            burst: config.frame_burst,
        }
    }

    /// Receipt ids a connection may confirm: a client confirms what it was
    /// pushed, and a gateway pushes each connection far less than this.
    fn receipts(config: &crate::GatewayConfig) -> Bucket {
        Bucket {
            tokens: 2.0 * config.max_receipts_per_sec,
            at: Instant::now(),
            rate: config.max_receipts_per_sec,
            burst: 2.0 * config.max_receipts_per_sec,
        }
    }

    /// Takes a token if there is one.
    fn take(&mut self) -> bool {
        self.take_n(1.0)
    }

    /// Takes `n` tokens if there are that many.
    fn take_n(&mut self, n: f64) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// Why the relay loop ends.
enum End {
    Gone,
    Close(u16, &'static str),
}

/// What to do with a client's frame, once checked.
enum Step {
    Done,
    Reply(Utf8Bytes),
    /// An error ack; refusals count toward closing with 1008.
    Refuse(Utf8Bytes),
    /// Boxed: a typed send is larger than the other steps.
    Submit(Box<Submit>),
}

/// A frame for the worker of its shard, with what its error ack would need.
struct Submit {
    command: ClientCommand,
    shard: u32,
    action: String,
    cmid: Option<String>,
    is_send: bool,
}

fn refusal(action: &str, cmid: Option<String>, code: ErrorCode, message: &str) -> Step {
    Step::Refuse(Frame::error(action, cmid, code, message).to_json().into())
}

impl Connection {
    async fn relay(mut self, mut stream: Stream, rx: flume::Receiver<Out>) {
        let overflow = self.overflow.clone();
        let mut draining = self.inner.draining.subscribe();
        let idle = self.inner.config.idle_timeout;
        let mut idle_at = Instant::now() + idle;
        let far = Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600);
        let end = loop {
            let retransmit_at = self.retransmits.next_due().unwrap_or(far);
            let step = tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(message)) => {
                        idle_at = Instant::now() + idle;
                        // Boxed: inline, this step's state would be part of
                        // every idle connection's task (measured: 0.45 KiB
                        // more per connection at 19,000), for one small
                        // allocation per frame.
                        Box::pin(self.incoming(message)).await
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "read failed");
                        Err(if is_capacity(&e) {
                            End::Close(CLOSE_TOO_BIG, "frame too large")
                        } else if is_bad_utf8(&e) {
                            End::Close(CLOSE_BAD_DATA, "text frames must be UTF-8")
                        } else {
                            End::Gone
                        })
                    }
                    None => Err(End::Gone),
                },
                out = rx.recv_async() => match out {
                    Ok(out) => self.outgoing(out, &rx).await,
                    Err(_) => Err(End::Gone),
                },
                _ = sleep_until(retransmit_at), if retransmit_at < far => self.retransmit().await,
                _ = sleep_until(idle_at) => Err(End::Close(CLOSE_AWAY, "idle timeout")),
                _ = draining.changed() => Err(End::Close(CLOSE_AWAY, "server shutting down")),
                _ = overflow.notify.notified() => Err(End::Close(CLOSE_SLOW, "too slow")),
            };
            if let Err(end) = step {
                break end;
            }
        };
        if let End::Close(code, reason) = end {
            send_close(&mut self.sink, code, reason).await;
        }
    }

    async fn write(&mut self, frame: Utf8Bytes) -> Result<(), End> {
        metrics::FRAMES_OUT.inc();
        let sent = self.sink.send(Message::Text(frame)).await;
        sent.map_err(|e| write_failed(e, &self.overflow, &self.session))
    }

    async fn outgoing(&mut self, first: Out, rx: &flume::Receiver<Out>) -> Result<(), End> {
        let mut next = Some(first);
        // Write what is queued, then flush once.
        while let Some(out) = next.take() {
            match out {
                Out::Frame(frame, id, refused) => {
                    if id != 0 && !self.retransmits.pushed(id, frame.clone()) {
                        next = rx.try_recv().ok();
                        continue;
                    }
                    if refused {
                        self.count_refusal()?;
                    }
                    metrics::FRAMES_OUT.inc();
                    let fed = self.sink.feed(Message::Text(frame)).await;
                    fed.map_err(|e| write_failed(e, &self.overflow, &self.session))?;
                }
                Out::Answer(frame, cmid, refused) => {
                    // One answer per forwarded send: a retried send's second
                    // answer is dropped.
                    match self.unanswered.get_mut(&cmid) {
                        Some(n) if *n > 1 => *n -= 1,
                        Some(_) => {
                            self.unanswered.remove(&cmid);
                        }
                        None => {
                            next = rx.try_recv().ok();
                            continue;
                        }
                    }
                    metrics::FRAMES_OUT.inc();
                    let fed = self.sink.feed(Message::Text(frame)).await;
                    fed.map_err(|e| write_failed(e, &self.overflow, &self.session))?;
                    if refused {
                        self.count_refusal()?;
                    }
                }
                Out::Confirmed(ids) => self.retransmits.confirmed(&ids),
                Out::Close(code, reason) => {
                    let _ = tokio::time::timeout(CLOSE_WRITE, self.sink.flush()).await;
                    return Err(End::Close(code, reason));
                }
            }
            next = rx.try_recv().ok();
        }
        let flushed = self.sink.flush().await;
        flushed.map_err(|e| write_failed(e, &self.overflow, &self.session))
    }

    async fn retransmit(&mut self) -> Result<(), End> {
        for frame in self.retransmits.take_due() {
            metrics::RETRANSMITS.inc();
            self.write(frame).await?;
        }
        Ok(())
    }

    async fn incoming(&mut self, message: Message) -> Result<(), End> {
        // Everything but the socket write and the hand-off to a worker is
        // synchronous, so the frame and its command are gone before any
        // await and this step's state stays small.
        match self.inspect(message)? {
            Step::Done => Ok(()),
            Step::Reply(frame) => self.write(frame).await,
            Step::Refuse(frame) => {
                metrics::FRAMES_REFUSED.inc();
                self.write(frame).await?;
                self.count_refusal()
            }
            Step::Submit(submit) => {
                let Submit {
                    command,
                    shard,
                    action,
                    cmid,
                    is_send,
                } = *submit;
                let request = FrameRequest {
                    session: Some(Session::clone(&self.session)),
                    shard,
                    seq: 0,
                    command: Some(command),
                };
                let Err(e) = self.inner.workers.submit(request).await else {
                    return Ok(());
                };
                if let (true, Some(cmid)) = (is_send, &cmid) {
                    self.unanswered.remove(cmid);
                }
                let reply = Frame::error(&action, cmid, ErrorCode::Unavailable, &e.to_string());
                self.write(reply.to_json().into()).await
            }
        }
    }

    /// Checks a client's frame and decides what to do with it.
    fn inspect(&mut self, message: Message) -> Result<Step, End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return Ok(refusal(
                    "",
                    None,
                    ErrorCode::BadRequest,
                    "frames are JSON text",
                ))
            }
            Message::Close(_) => return Err(End::Gone),
            Message::Ping(_) | Message::Pong(_) => return Ok(Step::Done),
        };
        metrics::FRAMES_IN.inc();
        if text.len() > self.inner.config.max_frame_bytes {
            return Err(End::Close(CLOSE_TOO_BIG, "frame too large"));
        }
        let frame = match Frame::parse(text.as_bytes()) {
            Ok(frame) => frame,
            Err((action, cmid, message)) => {
                return Ok(refusal(
                    &action,
                    cmid,
                    ErrorCode::BadRequest,
                    &format!("malformed frame: {message}"),
                ))
            }
        };
        let action = frame.action.clone().unwrap_or_default();
        let cmid = frame.client_msg_id.clone();
        let command = match Command::from_frame(frame, &self.claims, &self.inner.config.limits) {
            Ok(c) => c,
            Err(e) => return Ok(refusal(&action, cmid, e.code, &e.message)),
        };
        if let Command::Receive { ids } = &command {
            // Receipts cost the worker a write per id: metered by ids, apart
            // from the frames a person sends.
            if !self.receipts.take_n(ids.len() as f64) {
                return Ok(refusal(
                    &action,
                    cmid,
                    ErrorCode::RateLimited,
                    "too many receipts; slow down",
                ));
            }
        }
        let limited = !matches!(command, Command::Heartbeat | Command::Receive { .. });
        if limited && !self.bucket.take() {
            return Ok(refusal(
                &action,
                cmid,
                ErrorCode::RateLimited,
                "too many frames; slow down",
            ));
        }
        match &command {
            Command::Heartbeat => {
                let beat = Frame {
                    category: Some("heartbeat".into()),
                    created_at: Some(kefu_protocol::now_ms()),
                    ..Frame::default()
                };
                return Ok(Step::Reply(beat.to_json().into()));
            }
            Command::Receive { ids } => {
                let ids: Vec<u64> = ids.iter().map(|&i| i as u64).collect();
                self.retransmits.confirmed(&ids);
            }
            Command::Send(send) => {
                *self
                    .unanswered
                    .entry(send.client_msg_id.clone())
                    .or_default() += 1
            }
            _ => {}
        }
        let shard = shard::of_command(&command, &self.claims);
        let is_send = matches!(command, Command::Send(_));
        // Only a heartbeat has no wire form, and it was answered above.
        let Some(command) = ClientCommand::from_command(command) else {
            return Ok(Step::Done);
        };
        Ok(Step::Submit(Box::new(Submit {
            shard,
            is_send,
            command,
            action,
            cmid,
        })))
    }

    /// Counts a refusal, the gateway's or a worker's: more than the limit
    /// within the window closes the connection with 1008.
    fn count_refusal(&mut self) -> Result<(), End> {
        let now = Instant::now();
        let window = self.inner.config.refused_window;
        while self
            .refused
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.refused.pop_front();
        }
        self.refused.push_back(now);
        if self.refused.len() > self.inner.config.max_refused {
            return Err(End::Close(CLOSE_POLICY, "too many refused frames"));
        }
        Ok(())
    }
}

/// What a failed socket write means. The listener bounds every write by
/// the write timeout (`crate::server`): a timed-out write is a client that
/// stopped reading, closed with 1013 and counted once; anything else is a
/// socket already gone.
fn write_failed(e: axum::Error, overflow: &Overflow, session: &Session) -> End {
    if !is_timeout(&e) {
        return End::Gone;
    }
    if overflow.raise() {
        metrics::SLOW_CONSUMERS.inc();
        tracing::warn!(conn_id = %session.conn_id, user_id = %session.user_id,
            "write timed out, closing with 1013");
    }
    End::Close(CLOSE_SLOW, "write timed out")
}

fn is_timeout(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = err.source();
    }
    false
}

/// A text frame whose bytes are not UTF-8.
fn is_bad_utf8(e: &axum::Error) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("utf-8") || text.contains("utf8")
}

fn is_capacity(e: &axum::Error) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("capacity") || text.contains("too long") || text.contains("too big")
}
