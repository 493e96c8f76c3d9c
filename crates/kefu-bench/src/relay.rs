//! `kefu bench relay`: the baseline. A minimal in-memory WebSocket relay
//! speaking just enough of Kefu's protocol for `kefu bench`: it takes the
//! user from the token without checking it, acks every send at once with a
//! counter for id, and pushes the message to the `to` user's connections.
//! No auth check, no storage, no retransmission: what this machine can do
//! at best, so Kefu's figures can be read as a share of it.

use base64::Engine;
use clap::Args;
use dashmap::DashMap;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
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
    let ack = json!({"category": "ack", "action": "auth", "ext": {"user_id": user}}).to_string();
    let _ = tx.send(Message::text(ack));
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
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match (v["category"].as_str(), v["action"].as_str()) {
            (Some("heartbeat"), _) => {
                let _ = tx.send(Message::text(r#"{"category":"heartbeat"}"#));
            }
            (Some("customer" | "manager"), Some("send")) => {
                let id = relay.ids.fetch_add(1, Ordering::Relaxed) + 1;
                let now = kefu_protocol::now_ms();
                let cmid = v["client_msg_id"].clone();
                let ack = json!({"category": "ack", "action": "send", "client_msg_id": cmid, "id": id, "task_id": 1, "created_at": now});
                let _ = tx.send(Message::text(ack.to_string()));
                let to = v["to"].as_str().unwrap_or_default();
                let mut message = v.clone();
                message["id"] = json!(id);
                message["from"] = json!(user);
                message["created_at"] = json!(now);
                // Encoded once, shared by every recipient connection.
                let frame = Message::text(message.to_string());
                if let Some(conns) = relay.users.get(to) {
                    for c in conns.iter() {
                        let _ = c.send(frame.clone());
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
