//! `GET /api/tasks/{task_id}/messages`: pages and who may read them.

use crate::support::*;

/// A chat whose customer has sent `n` more messages (awaiting each ack).
async fn chat_with_messages(server: &Server, n: usize) -> Chat {
    let mut chat = Chat::open(server).await;
    for i in 0..n {
        chat.customer
            .say(&format!("h-{i}"), &format!("line {i}"))
            .await;
    }
    chat
}

on_every_backend! {
    async fn history_pages_newest_first_fifty_by_default(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = chat_with_messages(&server, 60).await;
        let token = chat.agent.token.clone();
        let all = server.history(&token, chat.task_id, "?limit=200").await;
        assert!(all.len() > 60, "the whole task fits one page of 200: {}", all.len());
        assert!(ids_of(&all).windows(2).all(|w| w[0] < w[1]), "oldest first within the page");

        let newest = server.history(&token, chat.task_id, "").await;

        assert_eq!(ids_of(&newest), ids_of(&all[all.len() - 50..]));
        assert_eq!(newest.last().map(|m| m["content"].clone()), Some(json!("line 59")));
    }

    async fn history_before_and_limit_give_the_previous_page(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = chat_with_messages(&server, 30).await;
        let token = chat.agent.token.clone();
        let all = server.history(&token, chat.task_id, "?limit=200").await;
        let newest = server.history(&token, chat.task_id, "?limit=10").await;
        assert_eq!(ids_of(&newest), ids_of(&all[all.len() - 10..]));

        let before = int(&newest[0], "id");
        let previous = server
            .history(&token, chat.task_id, &format!("?before={before}&limit=10"))
            .await;

        assert_eq!(ids_of(&previous), ids_of(&all[all.len() - 20..all.len() - 10]));
    }

    async fn history_pages_are_at_most_two_hundred(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = chat_with_messages(&server, 205).await;

        let page = server.history(&chat.agent.token, chat.task_id, "?limit=1000").await;

        assert_eq!(page.len(), 200);
        assert_eq!(page.last().map(|m| m["content"].clone()), Some(json!("line 204")));
    }

    async fn a_customer_outside_the_task_may_not_read_its_history(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        let stranger = server.token("c2", "customer");

        let (status, body) = server
            .get(&format!("/api/tasks/{}/messages", chat.task_id), &stranger)
            .await;

        assert_http_error(status, &body, 403, "forbidden");
    }

    async fn an_agent_never_on_the_task_may_not_read_its_history(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        let other_agent = server.token("a2", "agent");

        let (status, body) = server
            .get(&format!("/api/tasks/{}/messages", chat.task_id), &other_agent)
            .await;

        assert_http_error(status, &body, 403, "forbidden");
    }

    async fn the_customer_and_an_admin_read_the_history(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let reply = chat.agent.say_to("c1", "a-1", "hello from a1").await;

        for token in [chat.customer.token.clone(), server.admin_token()] {
            let history = server.history(&token, chat.task_id, "").await;
            let first = message_with_id(&history, chat.first.id);
            assert_eq!(first["content"], "hello, I need help");
            assert_eq!(first["from"], "c1");
            assert_eq!(int(first, "task_id"), chat.task_id);
            assert_eq!(int(first, "created_at"), chat.first.created_at);
            let answer = message_with_id(&history, reply.id);
            assert_eq!(answer["from"], "a1");
            assert_eq!(answer["to"], "c1");
        }
    }
}

#[tokio::test]
async fn history_of_an_unknown_task_is_not_found_for_an_admin() {
    let server = Server::start().await;

    let (status, body) = server
        .get("/api/tasks/987654/messages", &server.admin_token())
        .await;

    assert_http_error(status, &body, 404, "not_found");
}
