//! What the agent console shows beside a chat: quick replies, a customer's
//! details, the queue's length, and the reason given with a transfer.

use crate::support::*;
use reqwest::Method;

async fn add_reply(server: &Server, token: &str, title: &str, content: &str) -> (u16, Value) {
    let body = json!({"title": title, "content": content});
    server.post("/api/quick-replies", token, body).await
}

async fn replies(server: &Server, token: &str) -> Vec<Value> {
    let (status, body) = server.get("/api/quick-replies", token).await;
    assert_eq!(status, 200, "{body}");
    body["quick_replies"].as_array().expect("a list").clone()
}

on_every_backend! {
    async fn quick_replies_follow_their_agent_and_only_them(backend: Backend) {
        let server = Server::start_on(backend).await;
        let alice = server.token("alice", "agent");
        let bob = server.token("bob", "agent");

        let (status, hours) = add_reply(&server, &alice, "hours", "We answer 9:00-18:00.").await;
        assert_eq!(status, 201, "{hours}");
        let (status, body) = add_reply(&server, &alice, "bye", "Thanks, have a nice day!").await;
        assert_eq!(status, 201, "{body}");

        let titles: Vec<_> = replies(&server, &alice).await.iter().map(|r| r["title"].clone()).collect();
        assert_eq!(titles, [json!("bye"), json!("hours")], "listed by title");
        assert!(replies(&server, &bob).await.is_empty(), "bob has his own list");

        let id = int(&hours, "id");
        let path = format!("/api/quick-replies/{id}");
        let edit = json!({"title": "hours", "content": "We answer 8:00-20:00."});
        let (status, body) = server.put(&path, &bob, edit.clone()).await;
        assert_http_error(status, &body, 404, "not_found");
        let (status, body) = server.put(&path, &alice, edit).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["content"], "We answer 8:00-20:00.");

        let (status, body) = server.request(Method::DELETE, &path, Some(&bob), None).await;
        assert_http_error(status, &body, 404, "not_found");
        let (status, body) = server.request(Method::DELETE, &path, Some(&alice), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(replies(&server, &alice).await.len(), 1);
    }

    async fn the_console_sees_a_customers_details_and_the_queue(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        let mut waiting = server.customer("c2").await;
        // With its only agent away, the next customer waits.
        let (status, body) = server
            .put("/api/agents/me/status", &chat.agent.token, json!({"status": "away"}))
            .await;
        assert_eq!(status, 200, "{body}");
        waiting.say("c2-1", "anyone?").await;

        let (status, body) = server.get("/api/customers/c1", &chat.agent.token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user_id"], "c1");
        assert_eq!(body["online"], true);
        assert_eq!(body["devices"], json!(["pc"]));
        assert!(body["first_seen"].as_i64().is_some_and(|t| t > 0), "{body}");

        let (status, body) = server.get("/api/queue", &chat.agent.token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["waiting"], 1);
    }

    async fn customers_may_not_read_the_desks_figures(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        let token = &chat.customer.token;

        for path in ["/api/customers/c1", "/api/queue", "/api/quick-replies"] {
            let (status, body) = server.get(path, token).await;
            assert_http_error(status, &body, 403, "forbidden");
        }
        let (status, body) = server.get("/api/customers/nobody", &chat.agent.token).await;
        assert_http_error(status, &body, 404, "not_found");
    }

    async fn the_new_agent_is_told_why_a_task_was_handed_over(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        let mut a2 = server.agent("a2").await;
        let since = now_ms();

        let body = json!({"to_agent": "a2", "reason": "asks about a refund"});
        let path = format!("/api/tasks/{}/transfer", chat.task_id);
        let (status, reply) = server.post(&path, &chat.agent.token, body).await;

        assert_eq!(status, 200, "{reply}");
        let toast = a2.recv_until(toast_since(since), WAIT).await;
        assert_eq!(toast["ext"]["reason"], "asks about a refund", "{toast}");
        assert!(toast["content"].as_str().unwrap_or("").contains("asks about a refund"), "{toast}");
    }
}

#[tokio::test]
async fn bad_quick_replies_are_refused_and_change_nothing() {
    let server = Server::start().await;
    let alice = server.token("alice", "agent");
    let long = "x".repeat(2_001);
    for (title, content) in [
        ("", "text"),
        ("title", " "),
        ("t", long.as_str()),
        ("nul\0", "x"),
    ] {
        let (status, body) = add_reply(&server, &alice, title, content).await;
        assert_http_error(status, &body, 400, "bad_request");
    }
    let (status, body) = server
        .post("/api/quick-replies", &alice, json!({"title": 3}))
        .await;
    assert_http_error(status, &body, 400, "bad_request");
    assert!(replies(&server, &alice).await.is_empty());
}
