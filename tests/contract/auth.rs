//! Authentication on the WebSocket, heartbeats and pings (SQLite only: no
//! storage involved).

use crate::support::*;
use std::time::Instant;

fn assert_auth_ack(ack: &Value, user: &str, role: &str, device: &str) {
    assert_eq!(ack["category"], "ack", "{ack}");
    assert_eq!(ack["action"], "auth", "{ack}");
    assert!(ack["created_at"].is_i64(), "created_at in ms: {ack}");
    assert!(
        (int(ack, "created_at") - now_ms()).abs() < 60_000,
        "server time in ms: {ack}"
    );
    assert_eq!(ack["ext"]["user_id"], user, "{ack}");
    assert_eq!(ack["ext"]["role"], role, "{ack}");
    assert_eq!(ack["ext"]["device"], device, "{ack}");
    let conn_id = ack["ext"]["conn_id"].as_str().unwrap_or_default();
    assert!(!conn_id.is_empty(), "conn_id is a non-empty string: {ack}");
}

/// After a refused authentication: the error ack, then close code 4401.
async fn assert_refused_then_closed(client: &mut Client) {
    let ack = client.recv_until(ack_of("auth"), WAIT).await;
    assert_error_ack(&ack, "unauthorized");
    assert_eq!(client.expect_close(WAIT).await, 4401);
}

#[tokio::test]
async fn query_token_auth_acks_with_user_role_device_and_conn_id() {
    let server = Server::start().await;
    let token = server.token_with("c1", "customer", &["--device", "phone"]);

    let client = Client::connect(&server, &token).await;

    assert_auth_ack(&client.auth, "c1", "customer", "phone");
}

#[tokio::test]
async fn first_frame_auth_acks_with_the_device_from_ext() {
    let server = Server::start().await;
    let token = server.token("a1", "agent");

    let client = Client::connect_with_frame_auth(&server, &token, "pc").await;

    assert_auth_ack(&client.auth, "a1", "agent", "pc");
}

#[tokio::test]
async fn each_connection_gets_its_own_conn_id() {
    let server = Server::start().await;
    let token = server.token_with("c1", "customer", &["--device", "pc"]);

    let first = Client::connect(&server, &token).await;
    let second = Client::connect(&server, &token).await;

    assert_ne!(first.auth["ext"]["conn_id"], second.auth["ext"]["conn_id"]);
}

#[tokio::test]
async fn a_garbage_query_token_upgrades_then_closes_with_4401() {
    let server = Server::start().await;

    let mut client = Client::connect_raw(&server, "?token=not-a-token").await;

    assert_refused_then_closed(&mut client).await;
}

#[tokio::test]
async fn a_forged_query_token_upgrades_then_closes_with_4401() {
    let server = Server::start().await;
    let token = forged(&server.token("c1", "customer"));

    let mut client = Client::connect_raw(&server, &format!("?token={token}")).await;

    assert_refused_then_closed(&mut client).await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused_with_4401() {
    let server = Server::start().await;
    let other = Server::start().await;
    let token = other.token("c1", "customer");

    let mut client = Client::connect_raw(&server, &format!("?token={token}")).await;

    assert_refused_then_closed(&mut client).await;
}

#[tokio::test]
async fn an_expired_query_token_upgrades_then_closes_with_4401() {
    let server = Server::start().await;
    let token = server.expired_token("c1", "customer").await;

    let mut client = Client::connect_raw(&server, &format!("?token={token}")).await;

    assert_refused_then_closed(&mut client).await;
}

#[tokio::test]
async fn a_bad_token_in_the_auth_frame_closes_with_4401() {
    let server = Server::start().await;
    let token = forged(&server.token("c1", "customer"));
    let mut client = Client::connect_raw(&server, "").await;

    client
        .send_json(json!({"action": "auth", "content": token, "ext": {"device": "pc"}}))
        .await;

    assert_refused_then_closed(&mut client).await;
}

#[tokio::test]
async fn an_expired_token_in_the_auth_frame_closes_with_4401() {
    let server = Server::start().await;
    let token = server.expired_token("c1", "customer").await;
    let mut client = Client::connect_raw(&server, "").await;

    client
        .send_json(json!({"action": "auth", "content": token, "ext": {"device": "pc"}}))
        .await;

    assert_refused_then_closed(&mut client).await;
}

#[tokio::test]
async fn no_auth_frame_within_the_auth_timeout_closes_with_4401() {
    // 10 s by default; a second here, so the test does not wait ten.
    let server = Server::builder().arg("--auth-timeout", "1s").start().await;
    let started = Instant::now();
    let mut client = Client::connect_raw(&server, "").await;

    let refusal = client.recv_until(ack_of("auth"), WAIT).await;
    let code = client.expect_close(WAIT).await;

    assert_eq!(code, 4401);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "a client has 1 s to authenticate, closed after {:?}",
        started.elapsed()
    );
    let said = refusal["ext"]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(said.contains("authenticate within 1s"), "{refusal}");
}

#[tokio::test]
async fn auth_frame_sent_late_but_within_the_auth_timeout_is_still_accepted() {
    let server = Server::builder().arg("--auth-timeout", "2s").start().await;
    let token = server.token("c1", "customer");
    let mut client = Client::connect_raw(&server, "").await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    client
        .send_json(json!({"action": "auth", "content": token, "ext": {"device": "pc"}}))
        .await;

    let ack = client.recv_until(ack_of("auth"), WAIT).await;
    assert_acked(&ack);
    assert_eq!(ack["ext"]["user_id"], "c1");
}

#[tokio::test]
async fn heartbeat_is_answered_with_server_time() {
    let server = Server::start().await;
    let mut client = server.customer("c1").await;

    let answer = client.heartbeat().await;

    assert_eq!(answer["category"], "heartbeat");
    assert!(
        (int(&answer, "created_at") - now_ms()).abs() < 60_000,
        "{answer}"
    );
}

#[tokio::test]
async fn heartbeat_gets_no_ack() {
    let server = Server::start().await;
    let mut client = server.customer("c1").await;

    client.heartbeat().await;

    client
        .expect_none(|f| f["category"] == "ack", Duration::from_secs(1))
        .await;
}

#[tokio::test]
async fn websocket_ping_is_answered_with_pong() {
    let server = Server::start().await;
    let mut client = server.customer("c1").await;

    assert!(client.ping(b"are you there").await, "no pong for a ping");
}

#[tokio::test]
async fn without_a_secret_the_generated_one_survives_a_restart() {
    let mut server = Server::builder().without_secret().start().await;
    let token = server.token("c1", "customer");
    Client::connect(&server, &token).await;

    server.restart().await;

    let client = Client::connect(&server, &token).await;
    assert_eq!(client.auth["ext"]["user_id"], "c1");
}

#[tokio::test]
async fn kefu_token_prints_only_the_token() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args([
            "token", "--user", "u1", "--role", "agent", "--secret", "s3cret",
        ])
        .env("RUST_LOG", "info")
        .output()
        .expect("run kefu token");

    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let token = stdout.strip_suffix('\n').unwrap_or(&stdout);
    assert!(
        !token.contains(char::is_whitespace),
        "one token, nothing else: {stdout:?}"
    );
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {token}");
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    assert!(
        parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(base64url)),
        "{token}"
    );
}
