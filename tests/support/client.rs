//! One WebSocket connection to the server, as a browser tab would hold it.
//!
//! Every wait is bounded. Frames read while waiting for something else go to
//! a backlog that later waits search first, so the order in which the server
//! interleaves pushes, toasts and acks never makes a test miss one.

use super::frames::{is_push, Acked};
use super::server::Server;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The default bound of every wait for a frame.
pub const WAIT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What reading the socket gave.
enum Event {
    Frame(Value),
    Pong(Vec<u8>),
    /// A close frame, with its code.
    Closed(Option<u16>),
    /// The connection ended without a close frame.
    Dropped(String),
}

pub struct Client {
    ws: Ws,
    /// The token this connection authenticated with (for HTTP calls too).
    pub token: String,
    /// `ext.user_id` of the auth ack.
    pub user_id: String,
    /// The auth ack itself.
    pub auth: Value,
    /// When set, every pushed message is confirmed with `receive` as it is read.
    pub auto_confirm: bool,
    backlog: VecDeque<Value>,
    closed: Option<String>,
}

/// Opens the WebSocket (the HTTP upgrade), panicking if it is refused.
async fn open(url: &str) -> Ws {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => panic!("WebSocket upgrade of {url} failed: {e}"),
        Err(_) => panic!("WebSocket upgrade of {url} took over {WAIT:?}"),
    }
}

impl Client {
    fn new(ws: Ws, token: &str) -> Client {
        Client {
            ws,
            token: token.to_owned(),
            user_id: String::new(),
            auth: Value::Null,
            auto_confirm: false,
            backlog: VecDeque::new(),
            closed: None,
        }
    }

    /// Authenticates with `?token=`; panics unless the auth ack is a success.
    /// Pushes are not confirmed unless [`Client::confirming`] is called.
    pub async fn connect(server: &Server, token: &str) -> Client {
        let mut client = Client::connect_raw(server, &format!("?token={token}")).await;
        client.token = token.to_owned();
        client.await_auth_ack().await;
        client
    }

    /// Authenticates with a first frame `{"action":"auth",...}`.
    pub async fn connect_with_frame_auth(server: &Server, token: &str, device: &str) -> Client {
        let mut client = Client::connect_raw(server, "").await;
        client.token = token.to_owned();
        client
            .send_json(json!({"action": "auth", "content": token, "ext": {"device": device}}))
            .await;
        client.await_auth_ack().await;
        client
    }

    /// Upgrades `/ws{query}` and nothing else: no auth ack is awaited.
    pub async fn connect_raw(server: &Server, query: &str) -> Client {
        let ws = open(&format!("{}{query}", server.ws_url())).await;
        Client::new(ws, "")
    }

    async fn await_auth_ack(&mut self) {
        let ack = self
            .recv_until(|f| f["category"] == "ack" && f["action"] == "auth", WAIT)
            .await;
        assert!(
            ack["ext"].get("error").is_none(),
            "authentication was refused: {ack}"
        );
        self.user_id = ack["ext"]["user_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.auth = ack;
    }

    /// From now on, confirm every push as it is read.
    pub fn confirming(mut self) -> Client {
        self.auto_confirm = true;
        self
    }

    /// The `category` this client's role sends messages in.
    pub fn category(&self) -> &'static str {
        match self.auth["ext"]["role"].as_str() {
            Some("customer") => "customer",
            _ => "manager",
        }
    }

    // ---- writing ----

    /// Sends a text frame; false if the connection is gone.
    pub async fn try_send_raw(&mut self, text: &str) -> bool {
        self.ws.send(Message::text(text.to_owned())).await.is_ok()
    }

    pub async fn send_raw(&mut self, text: &str) {
        if let Err(e) = self.ws.send(Message::text(text.to_owned())).await {
            panic!("sending a frame failed: {e} (closed: {:?})", self.closed);
        }
    }

    pub async fn send_json(&mut self, frame: Value) {
        self.send_raw(&frame.to_string()).await;
    }

    /// A `send` of `kind` text in this client's category, with extra fields
    /// merged in (`to`, `task_id`, ...). Returns the ack for `client_msg_id`.
    pub async fn send_with(&mut self, client_msg_id: &str, content: &str, extra: Value) -> Value {
        let mut frame = json!({
            "category": self.category(),
            "action": "send",
            "kind": "text",
            "content": content,
            "client_msg_id": client_msg_id,
        });
        if let (Some(frame), Some(extra)) = (frame.as_object_mut(), extra.as_object()) {
            frame.extend(extra.clone());
        }
        self.send_json(frame).await;
        self.ack_of("send", Some(client_msg_id)).await
    }

    /// A customer's text message; returns its ack.
    pub async fn send_text(&mut self, client_msg_id: &str, content: &str) -> Value {
        self.send_with(client_msg_id, content, json!({})).await
    }

    /// An agent's text message to a customer; returns its ack.
    pub async fn send_text_to(&mut self, to: &str, client_msg_id: &str, content: &str) -> Value {
        self.send_with(client_msg_id, content, json!({ "to": to }))
            .await
    }

    /// A text message that must succeed; returns its id, task and time.
    pub async fn say(&mut self, client_msg_id: &str, content: &str) -> Acked {
        Acked::from(&self.send_text(client_msg_id, content).await)
    }

    /// An agent's text message to a customer that must succeed.
    pub async fn say_to(&mut self, to: &str, client_msg_id: &str, content: &str) -> Acked {
        Acked::from(&self.send_text_to(to, client_msg_id, content).await)
    }

    /// `n` customer text messages `{prefix}-{i}` sent back to back without
    /// waiting, then every ack collected; returns them in sending order.
    pub async fn say_many(&mut self, prefix: &str, n: usize) -> Vec<Acked> {
        for i in 0..n {
            let frame = json!({"category": self.category(), "action": "send", "kind": "text",
                               "content": format!("{prefix} {i}"),
                               "client_msg_id": format!("{prefix}-{i}")});
            self.send_json(frame).await;
        }
        let mut acks = Vec::with_capacity(n);
        for i in 0..n {
            let ack = self.ack_of("send", Some(&format!("{prefix}-{i}"))).await;
            acks.push(Acked::from(&ack));
        }
        acks
    }

    /// Waits for the ack of `action` (echoing `client_msg_id` when given).
    pub async fn ack_of(&mut self, action: &str, client_msg_id: Option<&str>) -> Value {
        let action = action.to_owned();
        let cmid = client_msg_id.map(str::to_owned);
        self.recv_until(
            move |f| {
                f["category"] == "ack"
                    && f["action"] == action.as_str()
                    && cmid.as_deref().is_none_or(|c| f["client_msg_id"] == c)
            },
            WAIT,
        )
        .await
    }

    /// `read` up to `quote` in `task`; returns the ack.
    pub async fn read(&mut self, task: i64, quote: i64, client_msg_id: &str) -> Value {
        let frame = json!({"category": self.category(), "action": "read", "task_id": task,
                           "quote": quote, "client_msg_id": client_msg_id});
        self.send_json(frame).await;
        self.ack_of("read", Some(client_msg_id)).await
    }

    /// `revoke` of message `quote`; returns the ack.
    pub async fn revoke(&mut self, quote: i64, client_msg_id: &str) -> Value {
        let frame = json!({"category": self.category(), "action": "revoke", "quote": quote,
                           "client_msg_id": client_msg_id});
        self.send_json(frame).await;
        self.ack_of("revoke", Some(client_msg_id)).await
    }

    /// `delete` of message `quote`; returns the ack.
    pub async fn delete(&mut self, quote: i64, client_msg_id: &str) -> Value {
        let frame = json!({"category": self.category(), "action": "delete", "quote": quote,
                           "client_msg_id": client_msg_id});
        self.send_json(frame).await;
        self.ack_of("delete", Some(client_msg_id)).await
    }

    pub async fn typing(&mut self, task: i64) {
        let frame = json!({"category": self.category(), "action": "typing", "task_id": task});
        self.send_json(frame).await;
    }

    /// Confirms pushed messages with one `receive`.
    pub async fn confirm(&mut self, ids: &[i64]) {
        self.send_json(json!({"category": "receive", "ext": {"ids": ids}}))
            .await;
    }

    /// Sends a heartbeat and returns the server's answer.
    pub async fn heartbeat(&mut self) -> Value {
        self.send_json(json!({"category": "heartbeat"})).await;
        self.recv_until(|f| f["category"] == "heartbeat", WAIT)
            .await
    }

    /// Sends a WebSocket ping; true if the matching pong came back in time.
    pub async fn ping(&mut self, payload: &[u8]) -> bool {
        if self
            .ws
            .send(Message::Ping(payload.to_vec().into()))
            .await
            .is_err()
        {
            return false;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            match self.next_event(deadline).await {
                Some(Event::Pong(p)) if p == payload => return true,
                Some(Event::Pong(_)) => {}
                Some(Event::Frame(f)) => self.backlog.push_back(f),
                Some(Event::Closed(_)) | Some(Event::Dropped(_)) | None => return false,
            }
        }
    }

    /// Closes the connection and waits (at most 2 s) for the server to end it,
    /// so the server has seen the disconnect when this returns.
    pub async fn disconnect(mut self) {
        let _ = self.ws.close(None).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, self.ws.next()).await {}
    }

    // ---- reading ----

    async fn next_event(&mut self, deadline: Instant) -> Option<Event> {
        if let Some(reason) = &self.closed {
            return Some(Event::Dropped(reason.clone()));
        }
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => {
                    self.closed = Some("stream ended".into());
                    return Some(Event::Dropped("stream ended".into()));
                }
                Ok(Some(Err(e))) => {
                    self.closed = Some(e.to_string());
                    return Some(Event::Dropped(e.to_string()));
                }
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!("the server sent a non-JSON text frame ({e}): {text}")
                    });
                    if self.auto_confirm && is_push(&frame) {
                        let id = frame["id"].as_i64();
                        let _ = self
                            .ws
                            .send(Message::text(
                                json!({"category": "receive", "id": id}).to_string(),
                            ))
                            .await;
                    }
                    return Some(Event::Frame(frame));
                }
                Message::Binary(bytes) => {
                    panic!("the server sent a binary frame of {} bytes", bytes.len())
                }
                Message::Pong(payload) => return Some(Event::Pong(payload.to_vec())),
                Message::Close(close) => {
                    let code = close.map(|c| u16::from(c.code));
                    self.closed = Some(format!("closed with code {code:?}"));
                    return Some(Event::Closed(code));
                }
                Message::Ping(_) | Message::Frame(_) => {}
            }
        }
    }

    /// The next frame (backlog first); panics after [`WAIT`].
    pub async fn recv(&mut self) -> Value {
        if let Some(frame) = self.backlog.pop_front() {
            return frame;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            match self.next_event(deadline).await {
                Some(Event::Frame(frame)) => return frame,
                Some(Event::Pong(_)) => {}
                Some(Event::Closed(code)) => {
                    panic!("{}: connection closed with code {code:?}", self.user_id)
                }
                Some(Event::Dropped(e)) => panic!("{}: connection dropped: {e}", self.user_id),
                None => panic!("{}: no frame within {WAIT:?}", self.user_id),
            }
        }
    }

    /// The first frame matching `pred` within `timeout`, or `None`. Frames
    /// that do not match stay in the backlog.
    pub async fn try_recv_until(
        &mut self,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        if let Some(pos) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(pos);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline).await {
                Some(Event::Frame(frame)) if pred(&frame) => return Some(frame),
                Some(Event::Frame(frame)) => self.backlog.push_back(frame),
                Some(Event::Pong(_)) => {}
                Some(Event::Closed(_)) | Some(Event::Dropped(_)) | None => return None,
            }
        }
    }

    /// The first frame matching `pred`; panics (listing what did arrive) if
    /// none does within `timeout`.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        match self.try_recv_until(pred, timeout).await {
            Some(frame) => frame,
            None => panic!(
                "{}: the expected frame did not arrive within {timeout:?} (connection: {}); \
                 frames seen meanwhile:\n{}",
                self.user_id,
                self.closed.as_deref().unwrap_or("open"),
                self.describe_backlog()
            ),
        }
    }

    /// Panics if a frame matching `pred` is in the backlog or arrives within
    /// `duration`.
    pub async fn expect_none(&mut self, pred: impl Fn(&Value) -> bool, duration: Duration) {
        if let Some(frame) = self.backlog.iter().find(|f| pred(f)) {
            panic!("{}: unexpected frame: {frame}", self.user_id);
        }
        let deadline = Instant::now() + duration;
        loop {
            match self.next_event(deadline).await {
                Some(Event::Frame(frame)) if pred(&frame) => {
                    panic!("{}: unexpected frame: {frame}", self.user_id)
                }
                Some(Event::Frame(frame)) => self.backlog.push_back(frame),
                Some(Event::Pong(_)) => {}
                Some(Event::Closed(_)) | Some(Event::Dropped(_)) | None => return,
            }
        }
    }

    /// Panics if any frame is waiting or arrives within `duration`.
    pub async fn expect_silence(&mut self, duration: Duration) {
        self.expect_none(|_| true, duration).await;
    }

    /// Waits for the server's close frame and returns its code; panics if the
    /// connection stays open or ends without a close frame.
    pub async fn expect_close(&mut self, timeout: Duration) -> u16 {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline).await {
                Some(Event::Frame(frame)) => self.backlog.push_back(frame),
                Some(Event::Pong(_)) => {}
                Some(Event::Closed(Some(code))) => return code,
                Some(Event::Closed(None)) => panic!("{}: close frame without a code", self.user_id),
                Some(Event::Dropped(e)) => {
                    panic!(
                        "{}: the connection ended without a close frame: {e}",
                        self.user_id
                    )
                }
                None => panic!(
                    "{}: the connection was not closed within {timeout:?}; frames seen:\n{}",
                    self.user_id,
                    self.describe_backlog()
                ),
            }
        }
    }

    /// Reads until the connection ends or `timeout` passes, and returns every
    /// frame seen (backlog included). Never panics.
    pub async fn drain_until_closed(&mut self, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline).await {
                Some(Event::Frame(frame)) => self.backlog.push_back(frame),
                Some(Event::Pong(_)) => {}
                Some(Event::Closed(_)) | Some(Event::Dropped(_)) | None => break,
            }
        }
        self.backlog.drain(..).collect()
    }

    /// Every frame read but not yet taken, oldest first.
    pub fn backlog(&self) -> impl Iterator<Item = &Value> {
        self.backlog.iter()
    }

    fn describe_backlog(&self) -> String {
        if self.backlog.is_empty() {
            return "  (none)".into();
        }
        let skip = self.backlog.len().saturating_sub(20);
        self.backlog
            .iter()
            .skip(skip)
            .map(|f| format!("  {f}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
