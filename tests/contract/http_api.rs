//! The HTTP API around the socket: visitors, login, tokens, contacts, agents,
//! health and metrics.

use crate::support::*;
use reqwest::Method;

/// `GET /api/contacts{query}` for `token`: the entries.
async fn contacts(server: &Server, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("/api/contacts{query}"), token).await;
    assert_eq!(status, 200, "contacts: {body}");
    body["contacts"]
        .as_array()
        .unwrap_or_else(|| panic!("no contacts list: {body}"))
        .clone()
}

fn contact<'a>(list: &'a [Value], user: &str) -> &'a Value {
    list.iter()
        .find(|c| c["user_id"] == user)
        .unwrap_or_else(|| panic!("{user} is not among the contacts {list:?}"))
}

fn user_ids(list: &[Value]) -> Vec<&str> {
    let mut ids: Vec<&str> = list.iter().filter_map(|c| c["user_id"].as_str()).collect();
    ids.sort();
    ids
}

/// `GET /api/agents` as `token`: the entry of `agent`.
async fn agent_entry(server: &Server, token: &str, agent: &str) -> Value {
    let (status, body) = server.get("/api/agents", token).await;
    assert_eq!(status, 200, "agents: {body}");
    let list = body["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("no agents list: {body}"));
    list.iter()
        .find(|a| a["user_id"] == agent)
        .unwrap_or_else(|| panic!("{agent} is not listed: {body}"))
        .clone()
}

async fn login(server: &Server, username: &str, password: &str) -> (u16, Value) {
    let body = json!({"username": username, "password": password});
    server
        .request(Method::POST, "/api/login", None, Some(body))
        .await
}

on_every_backend! {
    async fn a_visitor_token_connects_and_chats_as_a_customer(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut agent = server.agent("a1").await;

        let (status, body) = server
            .request(Method::POST, "/api/visitor", None, Some(json!({"name": "Guest Grace"})))
            .await;

        assert!(status == 200 || status == 201, "{status} {body}");
        let user_id = body["user_id"].as_str().expect("user_id").to_owned();
        let token = body["token"].as_str().expect("token").to_owned();
        let mut visitor = Client::connect(&server, &token).await.confirming();
        assert_eq!(visitor.auth["ext"]["user_id"], user_id.as_str());
        assert_eq!(visitor.auth["ext"]["role"], "customer");
        let sent = visitor.say("v-1", "just looking").await;
        let push = agent.recv_until(push_of(sent.id), WAIT).await;
        assert_eq!(push["from"], user_id.as_str());
        let listed = contacts(&server, &agent.token, "").await;
        assert_eq!(contact(&listed, &user_id)["name"], "Guest Grace");
    }

    async fn agent_login_with_the_right_password_gives_an_agent_token(backend: Backend) {
        let server = Server::start_on(backend).await;
        server.add_agent("a1", "Ann", "correct horse");

        let (status, body) = login(&server, "a1", "correct horse").await;

        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user_id"], "a1");
        let token = body["token"].as_str().expect("token");
        let agent = Client::connect(&server, token).await;
        assert_eq!(agent.auth["ext"]["role"], "agent");
        assert_eq!(agent.auth["ext"]["user_id"], "a1");
    }

    async fn a_wrong_password_or_unknown_agent_gets_401(backend: Backend) {
        let server = Server::start_on(backend).await;
        server.add_agent("a1", "Ann", "correct horse");

        let attempts = [("a1", "wrong horse"), ("a1", "correct horse\n"), ("nobody", "x")];
        for (username, password) in attempts {
            let (status, body) = login(&server, username, password).await;
            assert_http_error(status, &body, 401, "unauthorized");
        }
    }

    async fn contacts_list_customers_with_name_unread_online_and_last_message(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut agent = server.agent("a1").await;
        let alice_token = server.token_with("c1", "customer", &["--name", "Alice"]);
        let bob_token = server.token_with("c2", "customer", &["--name", "Bob"]);
        let mut alice = Client::connect(&server, &alice_token).await.confirming();
        let mut bob = Client::connect(&server, &bob_token).await.confirming();
        let from_alice = alice.say("c1-1", "my parcel is late").await;
        let from_bob = bob.say("c2-1", "I want a refund").await;
        agent.recv_until(push_of(from_alice.id), WAIT).await;
        agent.recv_until(push_of(from_bob.id), WAIT).await;

        let all = contacts(&server, &agent.token, "").await;

        assert_eq!(user_ids(&all), ["c1", "c2"]);
        let entry = contact(&all, "c1");
        assert_eq!(entry["name"], "Alice", "{entry}");
        assert_eq!(int(entry, "task_id"), from_alice.task_id, "{entry}");
        assert!(entry["task_status"].is_string(), "{entry}");
        assert_eq!(entry["online"], true, "{entry}");
        assert_eq!(int(entry, "unread"), 1, "{entry}");
        assert!(entry["last_message"].to_string().contains("my parcel is late"), "{entry}");
        assert!(contact(&all, "c2")["last_message"].to_string().contains("refund"));
    }

    async fn contacts_filter_by_id_name_and_last_message(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut agent = server.agent("a1").await;
        let alice_token = server.token_with("c1", "customer", &["--name", "Alice"]);
        let bob_token = server.token_with("c2", "customer", &["--name", "Bob"]);
        let mut alice = Client::connect(&server, &alice_token).await.confirming();
        let mut bob = Client::connect(&server, &bob_token).await.confirming();
        agent.recv_until(push_of(alice.say("c1-1", "my parcel is late").await.id), WAIT).await;
        agent.recv_until(push_of(bob.say("c2-1", "I want a refund").await.id), WAIT).await;

        assert_eq!(user_ids(&contacts(&server, &agent.token, "?q=refund").await), ["c2"]);
        assert_eq!(user_ids(&contacts(&server, &agent.token, "?q=Alice").await), ["c1"]);
        assert_eq!(user_ids(&contacts(&server, &agent.token, "?q=c2").await), ["c2"]);
        assert!(contacts(&server, &agent.token, "?q=zzz-nothing").await.is_empty());
    }

    async fn a_returning_customer_is_one_contact_with_the_new_task(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let token = chat.agent.token.clone();
        let path = format!("/api/tasks/{}/end", chat.task_id);
        let (status, body) = server.post(&path, &token, json!({})).await;
        assert_eq!(status, 200, "{body}");

        let again = chat.customer.say("c-again", "one more question").await;
        chat.agent.recv_until(push_of(again.id), WAIT).await;

        let list = contacts(&server, &token, "").await;
        assert_eq!(user_ids(&list), ["c1"], "one entry per customer: {list:?}");
        assert_eq!(int(&list[0], "task_id"), again.task_id);
    }

    async fn contacts_show_a_customer_going_offline_and_keep_ended_tasks(backend: Backend) {
        let server = Server::start_on(backend).await;
        let open = Chat::between(&server, "c1", "a1").await;
        let ended = Chat::with_agent(&server, "c2", open.agent).await;
        let token = ended.agent.token.clone();
        let (status, body) = server
            .post(&format!("/api/tasks/{}/end", ended.task_id), &token, json!({}))
            .await;
        assert_eq!(status, 200, "{body}");

        open.customer.disconnect().await;

        let list = eventually("c1 shows offline", WAIT, || async {
            let list = contacts(&server, &token, "").await;
            (contact(&list, "c1")["online"] == false).then_some(list)
        })
        .await;
        let c2 = contact(&list, "c2");
        assert_eq!(int(c2, "task_id"), ended.task_id, "an ended task stays listed: {c2}");
        assert_ne!(c2["task_status"], contact(&list, "c1")["task_status"], "ended vs open");
    }

    async fn agents_list_shows_status_online_open_tasks_and_capacity(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        server.add_agent("a2", "Bea", "pw");

        let a1 = agent_entry(&server, &chat.agent.token, "a1").await;
        let a2 = agent_entry(&server, &server.admin_token(), "a2").await;

        assert_eq!(a1["status"], "available", "{a1}");
        assert_eq!(a1["online"], true, "{a1}");
        assert_eq!(int(&a1, "open_tasks"), 1, "{a1}");
        assert_eq!(int(&a1, "capacity"), 10, "{a1}");
        assert_eq!(a2["online"], false, "{a2}");
        assert_eq!(int(&a2, "open_tasks"), 0, "{a2}");
        assert_eq!(a2["name"], "Bea", "{a2}");
    }

    async fn agent_status_away_is_listed(backend: Backend) {
        let server = Server::start_on(backend).await;
        let agent = server.agent("a1").await;

        let (status, body) = server
            .put("/api/agents/me/status", &agent.token, json!({"status": "away"}))
            .await;

        assert_eq!(status, 200, "{body}");
        assert_eq!(agent_entry(&server, &agent.token, "a1").await["status"], "away");
    }
}

#[tokio::test]
async fn a_visitor_needs_no_body() {
    let server = Server::start().await;

    let (status, body) = server
        .request(Method::POST, "/api/visitor", None, None)
        .await;

    assert!(status == 200 || status == 201, "{status} {body}");
    let token = body["token"].as_str().expect("token");
    let visitor = Client::connect(&server, token).await;
    assert_eq!(visitor.auth["ext"]["user_id"], body["user_id"]);
}

#[tokio::test]
async fn two_visitors_are_two_customers() {
    let server = Server::start().await;

    let (_, first) = server
        .request(Method::POST, "/api/visitor", None, None)
        .await;
    let (_, second) = server
        .request(Method::POST, "/api/visitor", None, None)
        .await;

    assert_ne!(first["user_id"], second["user_id"]);
}

#[tokio::test]
async fn agent_capacity_follows_max_tasks_per_agent() {
    let server = Server::builder().max_tasks_per_agent(3).start().await;
    let agent = server.agent("a1").await;

    let entry = agent_entry(&server, &agent.token, "a1").await;

    assert_eq!(int(&entry, "capacity"), 3, "{entry}");
}

#[tokio::test]
async fn password_stdin_drops_only_the_line_break() {
    let server = Server::start().await;
    server.add_agent("a1", "Ann", "  spaced out  ");

    let (status, body) = login(&server, "a1", "  spaced out  ").await;

    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn agents_list_is_not_for_customers() {
    let server = Server::start().await;
    let customer = server.token("c1", "customer");

    let (status, body) = server.get("/api/agents", &customer).await;

    assert_http_error(status, &body, 403, "forbidden");
}

#[tokio::test]
async fn every_api_call_without_a_valid_token_is_401_with_an_error_body() {
    let server = Server::start().await;
    let valid = server.token("a1", "agent");
    let forged = forged(&valid);
    let expired = server.expired_token("a1", "agent").await;
    let calls: &[(Method, &str)] = &[
        (Method::GET, "/api/offline"),
        (Method::GET, "/api/unread"),
        (Method::GET, "/api/contacts"),
        (Method::GET, "/api/agents"),
        (Method::PUT, "/api/agents/me/status"),
        (Method::GET, "/api/tasks/1/messages"),
        (Method::POST, "/api/tasks/1/transfer"),
        (Method::POST, "/api/tasks/1/end"),
        (Method::POST, "/api/tasks/1/rating"),
    ];

    for (method, path) in calls {
        for token in [
            None,
            Some("garbage"),
            Some(forged.as_str()),
            Some(expired.as_str()),
        ] {
            let (status, body) = server
                .request(
                    method.clone(),
                    path,
                    token,
                    (*method != Method::GET).then(|| json!({})),
                )
                .await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
            assert_http_error(status, &body, 401, "unauthorized");
        }
    }
    let (status, body) = server
        .upload(None, "a.png", "image/png", PNG_1X1.to_vec())
        .await;
    assert_http_error(status, &body, 401, "unauthorized");
    let (status, body) = server
        .upload(Some(&forged), "a.png", "image/png", PNG_1X1.to_vec())
        .await;
    assert_http_error(status, &body, 401, "unauthorized");
}

#[tokio::test]
async fn healthz_answers_200() {
    let server = Server::start().await;

    let response = server.fetch("/healthz").await;

    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn metrics_are_prometheus_text_about_connections_and_messages() {
    let server = Server::start().await;
    let mut chat = Chat::open(&server).await;
    chat.customer.say("c-2", "counted").await;

    let response = server.fetch("/metrics").await;

    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("a text body").to_lowercase();
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!samples.is_empty(), "no samples in /metrics:\n{text}");
    assert!(
        samples.iter().all(|l| l.split_whitespace().count() >= 2),
        "every sample is `name{{labels}} value`:\n{text}"
    );
    assert!(text.contains("connection"), "a connections metric:\n{text}");
    assert!(text.contains("message"), "a messages metric:\n{text}");
}

#[tokio::test]
async fn options_can_come_from_kefu_environment_variables() {
    let server = Server::builder()
        .env("KEFU_IDLE_TIMEOUT", "2s")
        .start()
        .await;
    let mut client = server.customer("c1").await;

    let code = client.expect_close(Duration::from_secs(8)).await;

    assert_eq!(code, 1001);
}

#[tokio::test]
async fn a_wrong_method_gets_405_with_a_json_error_body() {
    let server = Server::start().await;
    let (status, body) = server
        .request(reqwest::Method::POST, "/healthz", None, None)
        .await;
    assert_eq!(status, 405);
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn serve_is_ready_as_soon_as_it_serves() {
    let server = Server::start().await;
    let response = server.fetch("/readyz").await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["status"], "ready");
}

/// The status and headers of a request from a page of `origin`.
async fn from_site(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    origin: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url()))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

fn allowed_origin(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_listed_site_may_call_the_api_and_its_preflight_is_answered_others_are_not() {
    let server = Server::builder()
        .arg(
            "--allowed-origins",
            "https://shop.example.com,https://*.example.org",
        )
        .start()
        .await;
    let token = server.token("a1", "agent");

    for site in ["https://shop.example.com", "https://help.example.org"] {
        let preflight =
            from_site(&server, reqwest::Method::OPTIONS, "/api/unread", site, None).await;
        assert!(
            preflight.status().is_success(),
            "{site}: {}",
            preflight.status()
        );
        assert_eq!(allowed_origin(&preflight).as_deref(), Some(site));
        let call = from_site(
            &server,
            reqwest::Method::GET,
            "/api/unread",
            site,
            Some(&token),
        )
        .await;
        assert_eq!(call.status(), 200);
        assert_eq!(allowed_origin(&call).as_deref(), Some(site));
    }
    let evil = "https://evil.example.net";
    let preflight = from_site(&server, reqwest::Method::OPTIONS, "/api/unread", evil, None).await;
    assert_eq!(
        allowed_origin(&preflight),
        None,
        "an unlisted site is not allowed"
    );

    let upgrade = |origin: &str| {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("{}?token={token}", server.ws_url()),
            )
            .expect("request");
        request
            .headers_mut()
            .insert("Origin", origin.parse().expect("header"));
        tokio_tungstenite::connect_async(request)
    };
    assert!(upgrade("https://shop.example.com").await.is_ok());
    match upgrade(evil).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("an unlisted site's WebSocket was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn api_answers_are_never_sniffed_or_framed_and_other_sites_are_not_allowed_by_default() {
    let server = Server::start().await;
    let token = server.token("a1", "agent");
    let call = from_site(
        &server,
        reqwest::Method::GET,
        "/api/unread",
        "https://shop.example.com",
        Some(&token),
    )
    .await;
    assert_eq!(call.status(), 200);
    assert_eq!(call.headers()["x-content-type-options"], "nosniff");
    assert_eq!(call.headers()["x-frame-options"], "DENY");
    assert_eq!(allowed_origin(&call), None);
}
