//! Refused frames: each gets an error ack, stores nothing and leaves the
//! connection usable; too many of them, or a frame too large, close it.

use crate::support::*;

/// Sends `frame` from `client` and checks what a client can observe: an error
/// ack with `code` (echoing `client_msg_id` when the frame had a readable one),
/// then a valid send still acked, and the task's history grown by that one
/// message only.
async fn assert_refused_harmlessly(
    server: &Server,
    client: &mut Client,
    task: i64,
    frame: &str,
    code: &str,
) {
    let admin = server.admin_token();
    let before = server.full_history(&admin, task).await;

    client.send_raw(frame).await;

    let ack = client.recv_until(is_error_ack, WAIT).await;
    assert_error_ack(&ack, code);
    let echoed = serde_json::from_str::<Value>(frame)
        .ok()
        .and_then(|f| f["client_msg_id"].as_str().map(str::to_owned));
    if let Some(client_msg_id) = echoed {
        assert_eq!(
            ack["client_msg_id"],
            client_msg_id.as_str(),
            "echo in {ack}"
        );
    }
    let still_fine = format!("ok-after-{}", unique_suffix());
    let ack = if client.category() == "customer" {
        client.send_text(&still_fine, "still here").await
    } else {
        client
            .send_with(&still_fine, "still here", json!({"task_id": task}))
            .await
    };
    let valid = Acked::from(&ack);
    let after = server.full_history(&admin, task).await;
    assert_eq!(
        after.len(),
        before.len() + 1,
        "only the valid message was stored"
    );
    assert!(after.iter().any(|m| m["id"] == valid.id));
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A customer's send frame with `extra` fields merged in (or removed, for
/// `null`).
fn customer_send(extra: Value) -> String {
    let mut frame = json!({"category": "customer", "action": "send", "kind": "text",
                           "content": "text", "client_msg_id": "bad-1"});
    for (key, value) in extra.as_object().expect("an object") {
        if value.is_null() {
            frame.as_object_mut().expect("an object").remove(key);
        } else {
            frame[key] = value.clone();
        }
    }
    frame.to_string()
}

/// The gateway's refusals end to end, on one server: each kind of refused
/// frame gets its error ack, stores nothing and leaves the connection
/// usable. (Which frame gets which verdict is a table of unit tests in
/// kefu-protocol, `the_rules_of_a_frame_by_sender_and_field`.) Nine
/// refusals on one connection: under the ten that close it with 1008.
#[tokio::test]
async fn refused_frames_get_their_error_ack_store_nothing_and_leave_the_connection_usable() {
    let server = Server::start().await;
    let mut chat = Chat::open(&server).await;
    let malformed = r#"{"category":"customer","action":"send","content":"x","client_msg_id":"#;
    let refused = [
        (malformed.to_owned(), "bad_request"),
        (customer_send(json!({"task_id": "seven"})), "bad_request"),
        (customer_send(json!({"content": 42})), "bad_request"),
        (customer_send(json!({"category": "robot"})), "bad_request"),
        (customer_send(json!({"action": "shout"})), "bad_request"),
        (customer_send(json!({"client_msg_id": null})), "bad_request"),
        (
            customer_send(json!({"category": "manager", "to": "a1"})),
            "forbidden",
        ),
        (customer_send(json!({"from": "c999"})), "forbidden"),
    ];
    for (frame, code) in &refused {
        assert_refused_harmlessly(&server, &mut chat.customer, chat.task_id, frame, code).await;
    }
    let as_customer = customer_send(json!({"task_id": chat.task_id}));
    assert_refused_harmlessly(
        &server,
        &mut chat.agent,
        chat.task_id,
        &as_customer,
        "forbidden",
    )
    .await;
    let frame = customer_send(json!({"client_msg_id": "x".repeat(65)}));
    client_msg_id_refused(&server, &mut chat, &frame).await;
}

/// A 65-character client_msg_id cannot be echoed usefully, so only the code,
/// the usable connection and the unchanged history are checked.
async fn client_msg_id_refused(server: &Server, chat: &mut Chat, frame: &str) {
    let admin = server.admin_token();
    let before = server.full_history(&admin, chat.task_id).await.len();

    chat.customer.send_raw(frame).await;

    assert_error_ack(
        &chat.customer.recv_until(is_error_ack, WAIT).await,
        "bad_request",
    );
    chat.customer.say("ok-1", "still here").await;
    let after = server.full_history(&admin, chat.task_id).await.len();
    assert_eq!(after, before + 1);
}

#[tokio::test]
async fn a_64_character_client_msg_id_and_the_sender_s_own_from_are_accepted() {
    let server = Server::start().await;
    let mut chat = Chat::open(&server).await;

    let ack = chat.customer.send_text(&"y".repeat(64), "long id").await;
    assert_acked(&ack);
    let ack = chat
        .customer
        .send_with("own-1", "it is me", json!({"from": "c1"}))
        .await;

    let sent = Acked::from(&ack);
    let push = chat.agent.recv_until(push_of(sent.id), WAIT).await;
    assert_eq!(push["from"], "c1");
}

#[tokio::test]
async fn an_agent_writing_into_a_task_not_assigned_to_them_is_forbidden() {
    let server = Server::start().await;
    let chat = Chat::open(&server).await;
    let mut outsider = server.agent("a2").await;
    let admin = server.admin_token();
    let before = server.full_history(&admin, chat.task_id).await.len();

    let by_task = outsider
        .send_with("x-1", "let me butt in", json!({"task_id": chat.task_id}))
        .await;

    assert_error_ack(&by_task, "forbidden");
    assert_eq!(by_task["client_msg_id"], "x-1");
    let after = server.full_history(&admin, chat.task_id).await.len();
    assert_eq!(after, before, "nothing stored");
    drop(chat);
}

#[tokio::test]
async fn an_agent_writing_to_a_customer_of_another_agent_is_refused() {
    let server = Server::start().await;
    let mut chat = Chat::open(&server).await;
    let mut outsider = server.agent("a2").await;

    let ack = outsider.send_text_to("c1", "x-1", "let me butt in").await;

    let code = error_code(&ack).unwrap_or_else(|| panic!("expected an error ack: {ack}"));
    assert!(code == "forbidden" || code == "not_found", "{ack}");
    chat.customer
        .expect_none(|f| f["content"] == "let me butt in", Duration::from_secs(1))
        .await;
}

#[tokio::test]
async fn ten_refused_frames_do_not_close_the_connection() {
    let server = Server::start().await;
    let mut chat = Chat::open(&server).await;

    for _ in 0..10 {
        chat.customer.send_raw("{not json").await;
        chat.customer.recv_until(is_error_ack, WAIT).await;
    }

    chat.customer.say("ok-1", "still talking").await;
}

#[tokio::test]
async fn more_than_ten_refused_frames_within_ten_seconds_close_with_1008() {
    let server = Server::start().await;
    let mut chat = Chat::open(&server).await;

    for _ in 0..12 {
        if !chat.customer.try_send_raw("{not json").await {
            break;
        }
    }

    assert_eq!(chat.customer.expect_close(WAIT).await, 1008);
}

#[tokio::test]
async fn a_frame_over_the_size_limit_closes_with_1009() {
    let server = Server::builder().max_frame_bytes(1024).start().await;
    let mut chat = Chat::open(&server).await;
    let frame = customer_send(json!({"content": "x".repeat(2000), "client_msg_id": "big-1"}));

    chat.customer.send_raw(&frame).await;

    assert_eq!(chat.customer.expect_close(WAIT).await, 1009);
}

#[tokio::test]
async fn a_frame_under_the_size_limit_is_accepted() {
    let server = Server::builder().max_frame_bytes(4096).start().await;
    let mut chat = Chat::open(&server).await;

    let ack = chat.customer.send_text("big-1", &"x".repeat(3000)).await;

    assert_acked(&ack);
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_with_1009_by_default() {
    let server = Server::start().await;
    let mut chat = Chat::open(&server).await;
    let frame = customer_send(json!({"content": "x".repeat(70 * 1024), "client_msg_id": "big-1"}));

    chat.customer.send_raw(&frame).await;

    assert_eq!(chat.customer.expect_close(WAIT).await, 1009);
}

#[tokio::test]
async fn an_idle_connection_is_closed_with_1001() {
    let server = Server::builder().idle_timeout("2s").start().await;
    let mut client = server.customer("c1").await;
    let started = std::time::Instant::now();

    let code = client.expect_close(Duration::from_secs(8)).await;

    assert_eq!(code, 1001);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn heartbeats_keep_a_connection_open_past_the_idle_timeout() {
    let server = Server::builder().idle_timeout("2s").start().await;
    let mut client = server.customer("c1").await;

    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        client.heartbeat().await;
    }

    client.say("c-1", "still here after 5 s").await;
}

#[tokio::test]
async fn a_refused_frame_does_not_lose_or_repeat_an_acknowledged_message() {
    let server = Server::start().await;
    let mut chat = Chat::open(&server).await;
    let kept = chat.customer.say("c-1", "keep me").await;

    let refused = customer_send(json!({"client_msg_id": "c-2", "kind": "hologram"}));
    chat.customer.send_raw(&refused).await;
    assert_error_ack(
        &chat.customer.recv_until(is_error_ack, WAIT).await,
        "bad_request",
    );
    let again = chat.customer.say("c-1", "keep me").await;
    let retried = chat.customer.say("c-2", "a proper retry").await;

    assert_eq!(again, kept);
    assert!(
        retried.id > kept.id,
        "a refused client_msg_id is still free"
    );
    let history = server
        .full_history(&server.admin_token(), chat.task_id)
        .await;
    assert_eq!(
        history.iter().filter(|m| m["content"] == "keep me").count(),
        1
    );
    assert_eq!(
        history
            .iter()
            .filter(|m| m["content"] == "a proper retry")
            .count(),
        1
    );
}

#[tokio::test]
async fn frames_refused_by_the_worker_count_toward_1008_too() {
    let server = Server::start().await;
    let chat = Chat::open(&server).await;
    let mut outsider = server.agent("a2").await;

    // Well-formed, so the gateway passes them; the worker refuses each.
    for n in 0..12 {
        let frame = json!({"category": "manager", "action": "send", "task_id": chat.task_id,
            "content": "let me butt in", "client_msg_id": format!("x-{n}")});
        if !outsider.try_send_raw(&frame.to_string()).await {
            break;
        }
    }

    assert_eq!(outsider.expect_close(WAIT).await, 1008);
}

#[tokio::test]
async fn a_connection_sending_too_fast_is_rate_limited_and_nothing_refused_is_stored() {
    let server = Server::builder()
        .arg("--max-frames-per-second", "2")
        .start()
        .await;
    let mut customer = server.customer("c1").await;

    // Two a second, four at once: a burst of eight gets four refusals.
    for n in 0..8 {
        let frame = json!({"category": "customer", "action": "send",
            "content": format!("fast {n}"), "client_msg_id": format!("f-{n}")});
        assert!(customer.try_send_raw(&frame.to_string()).await);
    }
    let mut limited = Vec::new();
    let mut acked = Vec::new();
    for _ in 0..8 {
        let ack = customer.recv_until(ack_of("send"), WAIT).await;
        match error_code(&ack) {
            Some("rate_limited") => limited.push(ack["client_msg_id"].to_string()),
            Some(other) => panic!("unexpected error {other}: {ack}"),
            None => acked.push(Acked::from(&ack)),
        }
    }
    assert!(!limited.is_empty(), "some sends were rate limited");
    assert!(acked.len() >= 4, "the burst allowance was acked: {acked:?}");

    let history = server
        .full_history(&server.admin_token(), acked[0].task_id)
        .await;
    let stored: Vec<String> = history
        .iter()
        .map(|m| m["client_msg_id"].to_string())
        .collect();
    for cmid in &limited {
        assert!(!stored.contains(cmid), "refused {cmid} was stored");
    }
}

#[tokio::test]
async fn a_visitor_name_with_a_nul_character_is_a_bad_request() {
    let server = Server::start().await;
    let (status, body) = server
        .request(
            reqwest::Method::POST,
            "/api/visitor",
            None,
            Some(json!({"name": "Eve\u{0}"})),
        )
        .await;
    assert_http_error(status, &body, 400, "bad_request");
}

on_every_backend! {
    async fn text_with_a_nul_character_is_refused_and_the_chat_goes_on(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;

        let refused = chat.customer.send_text("nul-1", "a\u{0}b").await;
        let card = json!({"style": "card", "ext": {"title": "x", "url": "javascript:alert(1)"}});
        let evil = chat.customer.send_with("js-1", "x", card).await;

        assert_error_ack(&refused, "bad_request");
        assert_error_ack(&evil, "bad_request");
        let next = chat.customer.say("ok-1", "still here").await;
        chat.agent.recv_until(push_of(next.id), WAIT).await;
    }
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let server = Server::start().await;
    let token = server.token("c1", "customer");
    let url = format!("{}?token={token}", server.ws_url());
    let tcp = tokio::net::TcpStream::connect(server.socket_addr())
        .await
        .expect("connects");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("upgrades");
    ws.next().await.expect("the auth ack").expect("readable");

    // A masked text frame holding the bytes FF FE, written past the client
    // library, which would refuse to send it.
    let payload = [0xffu8, 0xfe];
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    ws.get_mut().write_all(&frame).await.expect("writes");

    let code = tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(Some(close)) = message {
                return Some(u16::from(close.code));
            }
        }
        None
    })
    .await
    .expect("closed in time");
    assert_eq!(code, Some(1007));
}
