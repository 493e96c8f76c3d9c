//! Token lifetime: short access tokens with a refresh token from
//! `/api/visitor` and `/api/login`, `POST /api/refresh`, signing out
//! (`POST /api/logout`, an admin, `kefu agent sign-out`) and disabled agents.

use crate::support::*;
use base64::Engine;
use reqwest::Method;

/// The claims of a JWT, read without checking it (as a browser does).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

async fn refresh(server: &Server, refresh_token: &str) -> (u16, Value) {
    let body = json!({"refresh_token": refresh_token});
    server
        .request(Method::POST, "/api/refresh", None, Some(body))
        .await
}

async fn login(server: &Server, username: &str) -> Value {
    let body = json!({"username": username, "password": "pw-1"});
    let (status, body) = server
        .request(Method::POST, "/api/login", None, Some(body))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn token_of(body: &Value) -> String {
    body["token"].as_str().expect("a token").to_owned()
}

/// Waits for the server to close `client` with 4401 for a sign-out.
async fn expect_signed_out(client: &mut Client) {
    assert_eq!(client.expect_close(Duration::from_secs(5)).await, 4401);
}

/// `GET path` answers `status` within 3 s: each worker of a cluster learns
/// of a sign-out made elsewhere within about a second.
async fn expect_status_soon(server: &Server, path: &str, token: &str, status: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let (got, body) = server.get(path, token).await;
        if got == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "GET {path}: {got} {body}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A new socket with `token` is refused: the auth error, then 4401.
async fn expect_refused(server: &Server, token: &str) {
    let mut client = Client::connect_raw(server, &format!("?token={token}")).await;
    let refusal = client
        .recv_until(
            |f| f["action"] == "auth" && f["ext"]["error"].is_object(),
            WAIT,
        )
        .await;
    assert_eq!(error_code(&refusal), Some("unauthorized"), "{refusal}");
    assert_eq!(client.expect_close(WAIT).await, 4401);
}

#[tokio::test]
async fn a_visitor_gets_an_hour_long_token_and_a_refresh_token_that_renews_it() {
    let server = Server::start().await;
    let (status, visitor) = server
        .request(Method::POST, "/api/visitor", None, Some(json!({})))
        .await;
    assert_eq!(status, 201, "{visitor}");
    let access = claims(&token_of(&visitor));
    let lifetime = int(&access, "exp") - int(&access, "iat");
    assert_eq!(lifetime, 3600, "{access}");
    assert_eq!(visitor["expires_in"], 3600, "{visitor}");
    let refresh_token = visitor["refresh_token"].as_str().expect("a refresh token");
    assert_eq!(claims(refresh_token)["typ"], "refresh");
    assert_eq!(
        int(&claims(refresh_token), "exp") - int(&access, "iat"),
        30 * 24 * 3600
    );

    // Each token does its own job only.
    let (status, body) = server.get("/api/unread", refresh_token).await;
    assert_eq!(status, 401, "a refresh token is no access token: {body}");
    let (status, body) = refresh(&server, &token_of(&visitor)).await;
    assert_eq!(status, 401, "an access token buys nothing: {body}");
    let (status, body) = refresh(&server, &forged(refresh_token)).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = server
        .request(Method::POST, "/api/refresh", None, Some(json!({"x": 1})))
        .await;
    assert_eq!(status, 400, "{body}");

    let (status, renewed) = refresh(&server, refresh_token).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["user_id"], visitor["user_id"]);
    assert_eq!(claims(&token_of(&renewed))["sub"], visitor["user_id"]);
    let (status, body) = server.get("/api/unread", &token_of(&renewed)).await;
    assert_eq!(status, 200, "{body}");
    let client = Client::connect(&server, &token_of(&renewed)).await;
    assert_eq!(client.auth["ext"]["user_id"], visitor["user_id"]);
}

on_every_backend! {
    /// An agent signs out on one device: every device of theirs is closed
    /// with 4401 within seconds (in a cluster, on every gateway), their old
    /// access and refresh tokens are refused everywhere, and signing in
    /// again works at once. Customers are untouched.
    async fn signing_out_closes_every_device_and_refuses_the_old_tokens(backend: Backend) {
        let server = Server::start_on(backend).await;
        server.add_agent("a1", "Ann", "pw-1");
        let signed_in = login(&server, "a1").await;
        let token = token_of(&signed_in);
        let mut desk = Client::connect(&server, &token).await;
        let mut laptop = Client::connect(&server, &token).await;
        let mut customer = server.customer("c1").await;
        let sent = customer.say("c-1", "hello").await;
        desk.recv_until(push_of(sent.id), WAIT).await;

        let (status, body) = server.post("/api/logout", &token, json!({})).await;
        assert_eq!(status, 200, "{body}");

        expect_signed_out(&mut desk).await;
        expect_signed_out(&mut laptop).await;
        let (status, body) = server.get("/api/unread", &token).await;
        assert_eq!(status, 401, "{body}");
        let refresh_token = signed_in["refresh_token"].as_str().expect("refresh token");
        let (status, body) = refresh(&server, refresh_token).await;
        assert_eq!(status, 401, "{body}");
        expect_refused(&server, &token).await;

        let again = token_of(&login(&server, "a1").await);
        let mut back = Client::connect(&server, &again).await;
        let (status, body) = server.get("/api/unread", &again).await;
        assert_eq!(status, 200, "{body}");
        let later = customer.say("c-2", "still there?").await;
        back.recv_until(push_of(later.id), WAIT).await;
    }

    /// `kefu agent sign-out` and `disable` beside the running servers: the
    /// agent's connections close within seconds, the refresh token is
    /// refused at once, no token of theirs counts and, disabled, the login
    /// is refused until `kefu agent enable`.
    async fn a_disabled_agent_is_closed_out_and_cannot_log_in_until_enabled(backend: Backend) {
        let server = Server::start_on(backend).await;
        server.add_agent("a1", "Ann", "pw-1");
        let signed_in = login(&server, "a1").await;
        let mut desk = Client::connect(&server, &token_of(&signed_in)).await;
        let minted = server.token("a1", "agent");
        let refresh_token = signed_in["refresh_token"].as_str().expect("refresh token");

        // Signed out straight in the database: the next refresh is refused
        // at once, before any worker has read the sign-out.
        server.agent_tool("sign-out", "a1");
        let (status, body) = refresh(&server, refresh_token).await;
        assert_eq!(status, 401, "{body}");
        expect_signed_out(&mut desk).await;
        let mut desk = Client::connect(&server, &token_of(&login(&server, "a1").await)).await;

        server.agent_tool("disable", "a1");

        expect_signed_out(&mut desk).await;
        let body = json!({"username": "a1", "password": "pw-1"});
        let (status, refused) = server
            .request(Method::POST, "/api/login", None, Some(body.clone()))
            .await;
        assert_eq!(status, 403, "{refused}");
        assert!(
            refused["error"]["message"].as_str().unwrap_or_default().contains("disabled"),
            "{refused}"
        );
        // A token from the operator's backend counts no more.
        expect_status_soon(&server, "/api/unread", &minted, 401).await;
        let (status, _) = refresh(&server, refresh_token).await;
        assert_eq!(status, 401);

        server.agent_tool("enable", "a1");
        let again = token_of(&login(&server, "a1").await);
        Client::connect(&server, &again).await;
    }
}

#[tokio::test]
async fn an_admin_signs_an_agent_out_and_others_may_not() {
    let server = Server::start().await;
    server.add_agent("a1", "Ann", "pw-1");
    let mut desk = server.agent("a1").await;
    let customer = server.token("c1", "customer");

    let (status, body) = server
        .post("/api/agents/a1/sign-out", &customer, json!({}))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = server
        .post(
            "/api/agents/nobody/sign-out",
            &server.admin_token(),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server
        .post("/api/agents/a1/sign-out", &server.admin_token(), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    expect_signed_out(&mut desk).await;
    // Signed out, not disabled: a new login works.
    Client::connect(&server, &token_of(&login(&server, "a1").await)).await;
}
