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
    let addr = server.socket_addr();
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
        agent
    });
    // 8 MB in all: more than the kernel buffers hold (4 MB at most here).
    let text = "x".repeat(10_000);
    for i in 0..800 {
        chat.customer.say(&format!("flood-{i}"), &text).await;
    }
    chat.customer.say("end", "the end").await;

    // The reading device got every message, and stays connected.
    let _agent = reader.await.expect("the reading device got every message");
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

async fn post_raw(server: &Server, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .json(&body)
        .send()
        .await
        .expect("the request completes")
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn visitor_creation_is_limited_per_address_with_retry_after() {
    let server = Server::builder()
        .arg("--visitors-per-minute", "3")
        .start()
        .await;

    for _ in 0..3 {
        let ok = post_raw(&server, "/api/visitor", json!({})).await;
        assert_eq!(ok.status().as_u16(), 201);
    }
    let refused = post_raw(&server, "/api/visitor", json!({})).await;

    assert_eq!(refused.status().as_u16(), 429);
    assert!(
        (1..=20).contains(&retry_after(&refused)),
        "{:?}",
        refused.headers()
    );
    let body: Value = refused.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_for_a_while_even_for_the_right_one() {
    let server = Server::builder()
        .arg("--login-failures", "3")
        .arg("--logins-per-minute", "0")
        .start()
        .await;
    server.add_agent("alice", "Alice", "right-password");
    let attempt = |password: &str| json!({"username": "alice", "password": password});

    for _ in 0..3 {
        let wrong = post_raw(&server, "/api/login", attempt("guess")).await;
        assert_eq!(wrong.status().as_u16(), 401);
    }
    let locked = post_raw(&server, "/api/login", attempt("right-password")).await;

    assert_eq!(locked.status().as_u16(), 429);
    assert!(retry_after(&locked) >= 20, "{:?}", locked.headers());
    let other = post_raw(
        &server,
        "/api/login",
        json!({"username": "bob", "password": "x"}),
    )
    .await;
    assert_eq!(
        other.status().as_u16(),
        401,
        "other accounts are not locked"
    );
}

#[tokio::test]
async fn login_attempts_are_limited_per_address() {
    let server = Server::builder()
        .arg("--logins-per-minute", "2")
        .start()
        .await;
    for name in ["a", "b"] {
        let r = post_raw(
            &server,
            "/api/login",
            json!({"username": name, "password": "x"}),
        )
        .await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let limited = post_raw(
        &server,
        "/api/login",
        json!({"username": "c", "password": "x"}),
    )
    .await;
    assert_eq!(limited.status().as_u16(), 429);
    assert!(retry_after(&limited) >= 1);
}

/// Names cannot be probed by timing: refusing an unknown name costs about
/// what refusing a wrong password costs (before, 0.3 ms against 15 ms).
#[tokio::test]
async fn an_unknown_name_is_refused_as_slowly_as_a_wrong_password() {
    let server = Server::builder()
        .arg("--logins-per-minute", "0")
        .arg("--login-failures", "1000")
        .start()
        .await;
    server.add_agent("alice", "Alice", "right-password");
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..7 {
        for (user, out) in [("alice", &mut known), ("nobody", &mut unknown)] {
            let started = std::time::Instant::now();
            let body = json!({"username": user, "password": format!("guess-{i}")});
            let r = post_raw(&server, "/api/login", body).await;
            assert_eq!(r.status().as_u16(), 401);
            out.push(started.elapsed());
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        unknown * 4 >= known,
        "unknown name refused in {unknown:?}, wrong password in {known:?}"
    );
}

/// Reads until the server closes the connection; panics if it has not
/// within `within`.
async fn closed_by_server(mut tcp: tokio::net::TcpStream, within: Duration, what: &str) {
    use tokio::io::AsyncReadExt;
    let mut sink = Vec::new();
    let read = tokio::time::timeout(within, tcp.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "{what}: still open after {within:?}");
}

#[tokio::test]
async fn connections_that_never_finish_their_request_are_closed() {
    use tokio::io::AsyncWriteExt;
    let server = Server::builder()
        .arg("--header-timeout", "1s")
        .arg("--body-timeout", "1s")
        .start()
        .await;
    let addr = server.socket_addr();
    let silent = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let mut half = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: kefu\r\nX-Slow: ")
        .await
        .expect("writes");
    let mut body = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    body.write_all(
        b"POST /api/visitor HTTP/1.1\r\nHost: kefu\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"name\":",
    )
    .await
    .expect("writes");

    let within = Duration::from_secs(5);
    closed_by_server(silent, within, "a connection that sent nothing").await;
    closed_by_server(half, within, "half-sent headers").await;
    closed_by_server(body, within, "a body that stopped").await;
    assert_eq!(server.fetch("/healthz").await.status().as_u16(), 200);
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let server = Server::builder()
        .arg("--max-connections-per-ip", "3")
        .env("KEFU_LIMIT_LOOPBACK", "true")
        .arg("--header-timeout", "30s")
        .start()
        .await;
    let addr = server.socket_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            tokio::net::TcpStream::connect(addr)
                .await
                .expect("connects"),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let fourth = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    closed_by_server(fourth, Duration::from_secs(5), "a fourth connection").await;

    // Another address is served as usual.
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.2:0".parse().expect("an address"))
        .expect("binds");
    let mut other = socket.connect(addr).await.expect("connects");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: kefu\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let mut reply = String::new();
    other.read_to_string(&mut reply).await.expect("reads");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    drop(held);
}

#[tokio::test]
async fn a_user_has_a_bounded_number_of_devices_and_the_newest_is_refused() {
    let server = Server::builder()
        .arg("--max-devices-per-user", "2")
        .start()
        .await;
    let token = server.token("c1", "customer");
    let mut first = server.customer_on("c1", "phone").await;
    let _second = server.customer_on("c1", "pc").await;

    let mut third = Client::connect_raw(&server, &format!("?token={token}")).await;
    let refusal = third
        .recv_until(|f| f["category"] == "ack" && f["action"] == "auth", WAIT)
        .await;
    assert_eq!(error_code(&refusal), Some("rate_limited"), "{refusal}");
    assert_eq!(third.expect_close(WAIT).await, 4429);

    let _agent = server.agent("a1").await;
    first.say("still-1", "the first device still works").await;
}

#[tokio::test]
async fn receipts_are_metered_by_ids() {
    let server = Server::builder()
        .arg("--max-receipts-per-second", "100")
        .start()
        .await;
    let mut customer = server.customer("c1").await;
    let ids: Vec<i64> = (1..=150).collect();

    customer
        .send_json(json!({"category": "receive", "ext": {"ids": ids}}))
        .await;
    customer.expect_silence(Duration::from_millis(300)).await;
    customer
        .send_json(json!({"category": "receive", "ext": {"ids": ids}}))
        .await;

    let refused = customer.recv_until(|f| f["category"] == "ack", WAIT).await;
    assert_eq!(error_code(&refused), Some("rate_limited"), "{refused}");
}

/// 40 downloads of a 20 MiB file that never read their body used to pin
/// the whole file each (RSS 123 -> 944 MiB). Files are streamed a chunk at
/// a time now: memory grows by chunks, not files. A full download still
/// returns every byte.
#[tokio::test]
async fn stalled_downloads_hold_a_chunk_each_not_the_file() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start().await;
    let token = server.token("a1", "agent");
    let data: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (status, body) = server
        .upload(
            Some(&token),
            "big.bin",
            "application/octet-stream",
            data.clone(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = body["url"].as_str().expect("url").to_owned();
    let path = url.trim_start_matches(&server.url()).to_owned();

    let whole = reqwest::get(&url).await.expect("download");
    assert_eq!(whole.status(), 200);
    assert_eq!(
        whole.headers()["content-length"],
        data.len().to_string().as_str()
    );
    let got = whole.bytes().await.expect("body");
    assert!(got[..] == data[..], "the streamed file differs");

    let before = rss_mib(server.pid());
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let mut tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: kefu\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.expect("request");
        stalled.push(tcp);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_mib(server.pid());
    println!("RSS {before:.0} MiB before, {after:.0} MiB with 40 stalled downloads");
    assert!(
        after - before < 160.0,
        "40 stalled downloads took {:.0} MiB",
        after - before
    );
    drop(stalled);
}

/// Ten raw uploads of a 20 MiB file that stop after `mib` MiB.
async fn stall_uploads(server: &Server, token: &str, mib: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let addr = server.url().trim_start_matches("http://").to_owned();
    let megabyte: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let uploads = (0..10).map(|_| {
        let (addr, megabyte) = (addr.clone(), &megabyte);
        async move {
            let mut tcp = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            let head = upload_head(token, 20_971_700);
            tcp.write_all(head.as_bytes()).await.expect("head");
            for _ in 0..mib {
                tcp.write_all(megabyte).await.expect("part of the body");
            }
            tcp
        }
    });
    let stalled = futures::future::join_all(uploads).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stalled
}

/// Uploads are stored a piece at a time: ten uploads stalled after 18 MiB
/// hold no more than ten stalled after 2 MiB (before, each held all it had
/// received until the end: 160 MiB more). The bound is half that: what the
/// allocator keeps of the pieces it freed moves the figure, 1-24 MiB in
/// runs alone and once 41 MiB in CI beside the other tests.
#[tokio::test]
async fn stalled_uploads_hold_a_piece_each_not_what_they_sent() {
    let server = Server::builder()
        .arg("--max-concurrent-uploads", "16")
        .start()
        .await;
    let token = server.token("a1", "agent");
    let before = rss_mib(server.pid());
    let shallow = stall_uploads(&server, &token, 2).await;
    let at_2 = rss_mib(server.pid());
    drop(shallow);
    let deep = stall_uploads(&server, &token, 18).await;
    let at_18 = rss_mib(server.pid());
    println!(
        "RSS {before:.0} MiB before, {at_2:.0} MiB with 10 uploads stalled at 2 MiB, \
         {at_18:.0} MiB at 18 MiB"
    );
    assert!(
        at_18 - at_2 < 80.0,
        "16 MiB more of each of 10 uploads took {:.0} MiB more",
        at_18 - at_2
    );
    drop(deep);
    let (status, body) = server
        .upload(
            Some(&token),
            "after.bin",
            "application/octet-stream",
            vec![1; 1000],
        )
        .await;
    assert_eq!(status, 201, "the server goes on taking uploads: {body}");
}
