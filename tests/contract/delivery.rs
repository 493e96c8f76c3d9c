//! Confirmation, retransmission and offline messages.

use crate::support::*;

/// The first re-push under `repushing` comes after 500 ms; a second more
/// for scheduling.
const REPUSH: Duration = Duration::from_millis(1500);

/// A server whose first re-push comes after 500 ms (5 s by default), so
/// that no test waits seconds for one.
async fn repushing(backend: Backend) -> Server {
    Server::builder()
        .on(backend)
        .arg("--retransmit-after", "500ms")
        .start()
        .await
}

/// `GET /api/offline{query}` for `token`, asserting 200.
async fn offline(server: &Server, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("/api/offline{query}"), token).await;
    assert_eq!(status, 200, "offline: {body}");
    messages_in(&body)
}

on_every_backend! {
    async fn an_unconfirmed_push_is_pushed_again_on_the_same_connection(backend: Backend) {
        let server = repushing(backend).await;
        let token = server.token_with("a1", "agent", &["--device", "pc"]);
        let mut agent = Client::connect(&server, &token).await;
        let mut customer = server.customer("c1").await;

        let sent = customer.say("c-1", "are you there?").await;
        let first = agent.recv_until(push_of(sent.id), WAIT).await;
        let again = agent.recv_until(push_of(sent.id), REPUSH).await;

        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["content"], first["content"]);
        assert_eq!(again["created_at"], first["created_at"]);
    }

    async fn a_confirmed_push_is_not_pushed_again(backend: Backend) {
        let server = repushing(backend).await;
        let token = server.token_with("a1", "agent", &["--device", "pc"]);
        let mut agent = Client::connect(&server, &token).await;
        let mut customer = server.customer("c1").await;
        let sent = customer.say("c-1", "are you there?").await;
        agent.recv_until(push_of(sent.id), WAIT).await;

        agent.send_json(json!({"category": "receive", "id": sent.id})).await;

        agent.expect_none(push_of(sent.id), REPUSH).await;
    }

    async fn a_confirmation_on_one_device_stops_re_pushes_to_the_others(backend: Backend) {
        let server = repushing(backend).await;
        let pc_token = server.token_with("a1", "agent", &["--device", "pc"]);
        let phone_token = server.token_with("a1", "agent", &["--device", "phone"]);
        let mut pc = Client::connect(&server, &pc_token).await;
        let mut phone = Client::connect(&server, &phone_token).await;
        let mut customer = server.customer("c1").await;
        let sent = customer.say("c-1", "anyone?").await;
        pc.recv_until(push_of(sent.id), WAIT).await;
        phone.recv_until(push_of(sent.id), WAIT).await;

        pc.confirm(&[sent.id]).await;

        phone.expect_none(push_of(sent.id), REPUSH).await;
    }

    async fn receive_gets_no_ack(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;

        chat.agent.send_json(json!({"category": "receive", "id": chat.first.id})).await;

        chat.agent.expect_none(|f| f["category"] == "ack", Duration::from_secs(1)).await;
    }

    async fn messages_for_a_disconnected_agent_wait_offline_in_id_order(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let agent_token = chat.agent.token.clone();
        chat.agent.disconnect().await;

        let mut sent = Vec::new();
        for i in 0..3 {
            sent.push(chat.customer.say(&format!("c-{i}"), &format!("while away {i}")).await.id);
        }

        let waiting = offline(&server, &agent_token, "").await;
        let ids = ids_of(&waiting);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "id order: {ids:?}");
        assert_eq!(ids_of(&chat_messages(&waiting)), sent, "exactly the unconfirmed messages");
        assert_eq!(waiting.last().map(|m| m["content"].clone()), Some(json!("while away 2")));
    }

    async fn confirmed_offline_messages_are_no_longer_listed(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        chat.agent.disconnect().await;
        let mut sent = Vec::new();
        for i in 0..3 {
            sent.push(chat.customer.say(&format!("c-{i}"), &format!("while away {i}")).await.id);
        }
        let token = server.token_with("a1", "agent", &["--device", "pc"]);
        let mut agent = Client::connect(&server, &token).await;

        agent.confirm(&sent).await;

        eventually("confirmed messages leave /api/offline", WAIT, || async {
            let waiting = offline(&server, &token, "").await;
            ids_of(&waiting).iter().all(|id| !sent.contains(id)).then_some(())
        })
        .await;
    }

    async fn offline_pages_with_after_and_limit(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let token = chat.agent.token.clone();
        chat.agent.disconnect().await;
        let mut sent = Vec::new();
        for i in 0..4 {
            sent.push(chat.customer.say(&format!("c-{i}"), &format!("while away {i}")).await.id);
        }

        let page = offline(&server, &token, &format!("?after={}&limit=2", sent[0])).await;

        assert_eq!(ids_of(&page), sent[1..3].to_vec());
    }

    async fn offline_lists_a_hundred_messages_by_default(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let token = chat.agent.token.clone();
        chat.agent.disconnect().await;
        let sent = chat.customer.say_many("while away", 105).await;

        let (status, body) = server.get("/api/offline", &token).await;

        assert_eq!(status, 200, "{body}");
        let page = messages_in(&body);
        assert_eq!(page.len(), 100);
        assert_eq!(int(&page[0], "id"), sent[0].id, "the oldest first");
    }

    async fn a_customers_offline_messages_include_the_agents_replies(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let token = chat.customer.token.clone();
        chat.customer.disconnect().await;

        let reply = chat.agent.say_to("c1", "a-1", "we shipped it").await;

        let waiting = offline(&server, &token, "").await;
        let message = message_with_id(&waiting, reply.id);
        assert_eq!(message["content"], "we shipped it");
        assert_eq!(message["from"], "a1");
    }

    async fn an_assess_invitation_waits_offline_for_a_disconnected_customer(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        let token = chat.customer.token.clone();
        chat.customer.disconnect().await;

        let (status, body) = server
            .post(&format!("/api/tasks/{}/end", chat.task_id), &chat.agent.token, json!({}))
            .await;

        assert_eq!(status, 200, "{body}");
        let waiting = offline(&server, &token, "").await;
        let invitation = waiting.iter().find(|m| m["style"] == "assess");
        let invitation =
            invitation.unwrap_or_else(|| panic!("no assess message offline: {waiting:?}"));
        assert_eq!(invitation["category"], "system");
        assert_eq!(int(invitation, "task_id"), chat.task_id);
    }
}

#[tokio::test]
async fn offline_pages_are_at_most_five_hundred() {
    let server = Server::start().await;
    let mut chat = Chat::open(&server).await;
    let token = chat.agent.token.clone();
    chat.agent.disconnect().await;
    chat.customer.say_many("while away", 505).await;

    let (status, body) = server.get("/api/offline?limit=1000", &token).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(messages_in(&body).len(), 500);
}

#[tokio::test]
async fn re_pushes_back_off_by_doubling() {
    let server = repushing(Backend::Sqlite).await;
    let token = server.token_with("a1", "agent", &["--device", "pc"]);
    let mut agent = Client::connect(&server, &token).await;
    let mut customer = server.customer("c1").await;
    let sent = customer.say("c-1", "still there?").await;
    agent.recv_until(push_of(sent.id), WAIT).await;
    let pushed = std::time::Instant::now();

    agent.recv_until(push_of(sent.id), REPUSH).await;
    let first_gap = pushed.elapsed();
    let repushed = std::time::Instant::now();
    agent.recv_until(push_of(sent.id), 2 * REPUSH).await;
    let second_gap = repushed.elapsed();

    // 500 ms, then 1 s.
    assert!(
        second_gap > first_gap + Duration::from_millis(250),
        "the wait grows: {first_gap:?} then {second_gap:?}"
    );
}
