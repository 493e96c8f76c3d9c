//! Contract v2 §9: slow and stalled clients, and the limits that hold
//! against abuse.

use crate::support::*;
use futures::StreamExt;
use tokio::net::TcpSocket;

/// A sample of `/metrics`, 0 when absent.
async fn metric(server: &Server, name: &str) -> f64 {
    let text = server
        .fetch("/metrics")
        .await
        .text()
        .await
        .unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn settles(server: &Server, name: &str, want: f64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = metric(server, name).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stayed {got}, not {want}\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An authenticated WebSocket on a 4 KiB receive buffer, so that a client
/// that stops reading stalls the server's writes after a few frames.
async fn stalled_device(
    server: &Server,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let url = format!("{}?token={token}&device=stalled", server.ws_url());
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("host:port")
        .parse()
        .expect("a socket address");
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small buffer");
    let tcp = socket.connect(addr).await.expect("connects");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("upgrades");
    let ack = ws.next().await.expect("an auth ack").expect("readable");
    assert!(ack.to_text().unwrap_or("").contains("\"auth\""), "{ack}");
    ws
}

#[tokio::test]
async fn a_device_that_stops_reading_is_closed_once_and_the_others_get_everything() {
    let server = Server::builder()
        .arg("--send-queue", "16")
        .arg("--write-timeout", "2s")
        .arg("--max-frames-per-second", "0")
        .start()
        .await;
    let mut chat = Chat::open(&server).await;
    let mut agent = chat.agent.confirming();
    let token = agent.token.clone();
    let before = metric(&server, "kefu_gateway_connections").await;
    let mut stalled = stalled_device(&server, &token).await;
    settles(&server, "kefu_gateway_connections", before + 1.0, WAIT).await;

    // The agent's other device keeps reading throughout.
    let reader = tokio::spawn(async move {
        agent
            .recv_until(|f| f["content"] == "the end", Duration::from_secs(30))
            .await;
    });
    // 8 MB in all: more than the kernel buffers hold (4 MB at most here).
    let text = "x".repeat(10_000);
    for i in 0..800 {
        chat.customer.say(&format!("flood-{i}"), &text).await;
    }
    chat.customer.say("end", "the end").await;

    settles(
        &server,
        "kefu_gateway_connections",
        before,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        metric(&server, "kefu_gateway_slow_consumers_total").await,
        1.0
    );
    reader.await.expect("the reading device got every message");
    // The stalled device, reading at last, finds its connection ended.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = stalled.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stalled connection was never closed");
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    assert_eq!(
        log.matches("closing with 1013").count(),
        1,
        "one line:\n{log}"
    );
}
