//! `kefu bench relay`: the baseline. A minimal in-memory WebSocket relay
//! speaking just enough of Kefu's protocol for `kefu bench`: it takes the
//! user from the token without checking it, acks every send at once with a
//! counter for id, and pushes the message to the `to` user's connections.
//! No auth check, no storage, no retransmission: what this machine can do
//! at best, so Kefu's figures can be read as a share of it.
//!
//! It does the least the same frames need: each frame is read into borrowed
//! fields (no JSON tree), the ack is written as text, and the message pushed
//! is the client's own frame with `id`, `from` and `created_at` spliced in
//! before its closing brace, encoded once for all of the recipient's
//! connections. Receipts and anything else are read and dropped.

use base64::Engine;
use clap::Args;
use dashmap::DashMap;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Debug)]
pub struct RelayOptions {
    /// Address the relay listens on.
    #[arg(long, env = "KEFU_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: String,
}

#[derive(Default)]
struct Relay {
    users: DashMap<String, Vec<mpsc::UnboundedSender<Message>>>,
    ids: AtomicI64,
}

pub async fn run(opts: RelayOptions) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&opts.listen).await?;
    println!("relay listening on {}", listener.local_addr()?);
    let relay = Arc::new(Relay::default());
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(relay.clone(), tcp));
    }
}

/// What the relay reads of a client frame; the rest is skipped unread.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(default)]
    category: &'a str,
    action: Option<&'a str>,
    to: Option<&'a str>,
    #[serde(borrow)]
    client_msg_id: Option<&'a RawValue>,
}

/// The `sub` of a JWT, read without checking the signature.
fn subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["sub"].as_str().map(str::to_owned)
}

// The handshake callback's error type is tungstenite's, large by its design.
#[allow(clippy::result_large_err)]
async fn connection(relay: Arc<Relay>, tcp: tokio::net::TcpStream) {
    let mut user = None;
    let callback = |req: &Request, resp: Response| {
        user = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
            .and_then(subject);
        Ok(resp)
    };
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(super::ws_config()))
            .await
    else {
        return;
    };
    let Some(user) = user else { return };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    relay
        .users
        .entry(user.clone())
        .or_default()
        .push(tx.clone());
    // The user id as a JSON string, encoded once for every frame it goes in.
    let from = serde_json::to_string(&user).unwrap_or_else(|_| "\"\"".into());
    let _ = tx.send(Message::text(format!(
        r#"{{"category":"ack","action":"auth","ext":{{"user_id":{from}}}}}"#
    )));
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.feed(m).await.is_err() {
                return;
            }
            while let Ok(m) = rx.try_recv() {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(frame) = serde_json::from_str::<Incoming>(&text) else {
            continue;
        };
        match (frame.category, frame.action) {
            ("heartbeat", _) => {
                let _ = tx.send(Message::text(r#"{"category":"heartbeat"}"#));
            }
            ("customer" | "manager", Some("send")) => {
                let id = relay.ids.fetch_add(1, Ordering::Relaxed) + 1;
                let now = kefu_protocol::now_ms();
                let cmid = frame.client_msg_id.map_or("null", RawValue::get);
                let _ = tx.send(Message::text(format!(
                    r#"{{"category":"ack","action":"send","client_msg_id":{cmid},"id":{id},"task_id":1,"created_at":{now}}}"#
                )));
                let Some(open) = text.trim_end().strip_suffix('}') else {
                    continue;
                };
                // Encoded once, shared by every recipient connection.
                let message = Message::text(format!(
                    r#"{open},"id":{id},"from":{from},"created_at":{now}}}"#
                ));
                if let Some(conns) = frame.to.and_then(|to| relay.users.get(to)) {
                    for c in conns.iter() {
                        let _ = c.send(message.clone());
                    }
                }
            }
            _ => {}
        }
    }
    writer.abort();
    if let Some(mut conns) = relay.users.get_mut(&user) {
        conns.retain(|c| !c.same_channel(&tx));
    }
}
