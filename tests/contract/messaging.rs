//! Sending: the ack, the fan-out to every device, dedup by client_msg_id, ids.

use crate::support::*;

const SHORT: Duration = Duration::from_millis(1500);

/// The customer resends a message `agent` has received: the same ack comes
/// back and the agent gets no second copy, well before its socket's own
/// re-push of an unconfirmed message.
async fn a_resend_delivers_nothing_twice(server: &Server, agent: Client) {
    let mut chat = Chat::with_agent(server, "c1", agent).await;
    let first = chat.customer.say("c-1", "only once").await;
    chat.agent.recv_until(push_of(first.id), WAIT).await;

    let again = chat.customer.say("c-1", "only once").await;

    assert_eq!(again, first);
    chat.agent.expect_none(is_chat_message, SHORT).await;
}

/// Fields every copy of a message carries alike.
fn assert_same_message(push: &Value, ack: &Acked, from: &str, content: &str) {
    assert_eq!(int(push, "id"), ack.id, "{push}");
    assert_eq!(int(push, "task_id"), ack.task_id, "{push}");
    assert_eq!(int(push, "created_at"), ack.created_at, "{push}");
    assert_eq!(push["from"], from, "{push}");
    assert_eq!(push["content"], content, "{push}");
}

on_every_backend! {
    async fn customer_first_message_opens_a_task_and_is_acked(backend: Backend) {
        let server = Server::start_on(backend).await;
        let _agent = server.agent("a1").await;
        let mut customer = server.customer("c1").await;

        let ack = customer.send_text("c-1", "hi").await;

        assert_acked(&ack);
        assert_eq!(ack["action"], "send");
        assert_eq!(ack["client_msg_id"], "c-1");
        assert!(int(&ack, "id") > 0 && int(&ack, "id") < (1i64 << 53), "{ack}");
        assert!(int(&ack, "task_id") > 0, "{ack}");
        assert!((int(&ack, "created_at") - now_ms()).abs() < 60_000, "{ack}");
    }

    async fn a_message_reaches_every_agent_device_and_the_senders_other_devices(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut agent_pc = server.agent_on("a1", "pc").await;
        let mut agent_phone = server.agent_on("a1", "phone").await;
        let mut customer_pc = server.customer_on("c1", "pc").await;
        let mut customer_phone = server.customer_on("c1", "phone").await;

        let sent = customer_pc.say("c-1", "where is my order?").await;

        for device in [&mut agent_pc, &mut agent_phone, &mut customer_phone] {
            let push = device.recv_until(push_of(sent.id), WAIT).await;
            assert_same_message(&push, &sent, "c1", "where is my order?");
            assert_eq!(push["category"], "customer", "{push}");
        }
        customer_pc.expect_none(push_of(sent.id), SHORT).await;
    }

    async fn every_copy_of_a_message_names_the_same_recipient(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let mut customer_phone = server.customer_on("c1", "phone").await;

        let sent = chat.customer.say("c-2", "second question").await;

        let to_agent = chat.agent.recv_until(push_of(sent.id), WAIT).await;
        let to_phone = customer_phone.recv_until(push_of(sent.id), WAIT).await;
        assert_eq!(to_agent["to"], to_phone["to"]);
        assert_eq!(to_agent["to"], "a1", "addressed to the task's agent: {to_agent}");
    }

    async fn agent_reply_with_to_reaches_every_customer_device(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let mut customer_phone = server.customer_on("c1", "phone").await;
        let mut agent_phone = server.agent_on("a1", "phone").await;

        let reply = chat.agent.say_to("c1", "a-1", "happy to help").await;

        assert_eq!(reply.task_id, chat.task_id);
        for device in [&mut chat.customer, &mut customer_phone, &mut agent_phone] {
            let push = device.recv_until(push_of(reply.id), WAIT).await;
            assert_same_message(&push, &reply, "a1", "happy to help");
            assert_eq!(push["to"], "c1", "{push}");
            assert_eq!(push["category"], "manager", "{push}");
        }
        chat.agent.expect_none(push_of(reply.id), SHORT).await;
    }

    async fn agent_reply_with_task_id_reaches_the_customer(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;

        let ack = chat
            .agent
            .send_with("a-1", "by task", json!({"task_id": chat.task_id}))
            .await;

        let reply = Acked::from(&ack);
        assert_eq!(reply.task_id, chat.task_id);
        let push = chat.customer.recv_until(push_of(reply.id), WAIT).await;
        assert_same_message(&push, &reply, "a1", "by task");
    }

    async fn resent_client_msg_id_returns_the_first_ack(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let first = chat.customer.say("c-1", "only once").await;
        chat.agent.recv_until(push_of(first.id), WAIT).await;
        server.wait_until_confirmed(&chat.agent.token, first.id).await;

        let again = chat.customer.say("c-1", "only once").await;

        assert_eq!(again, first);
        chat.agent.expect_none(is_chat_message, SHORT).await;
    }

    async fn resent_client_msg_id_after_reconnect_returns_the_first_ack(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let first = chat.customer.say("c-1", "sent before a network blip").await;
        chat.agent.recv_until(push_of(first.id), WAIT).await;
        server.wait_until_confirmed(&chat.agent.token, first.id).await;
        chat.customer.disconnect().await;

        let mut customer = server.customer_on("c1", "pc").await;
        let again = customer.say("c-1", "sent before a network blip").await;

        assert_eq!(again, first);
        chat.agent.expect_none(is_chat_message, SHORT).await;
        let history = server.full_history(&server.admin_token(), chat.task_id).await;
        let copies = history
            .iter()
            .filter(|m| m["content"] == "sent before a network blip")
            .count();
        assert_eq!(copies, 1, "stored once");
    }

    async fn a_resend_right_after_the_push_is_confirmed_delivers_nothing_twice(backend: Backend) {
        let server = Server::start_on(backend).await;
        // The agent confirms every push the moment it reads it.
        let agent = server.agent("a1").await;
        a_resend_delivers_nothing_twice(&server, agent).await;
    }

    async fn a_resend_before_the_push_is_confirmed_delivers_nothing_twice(backend: Backend) {
        let server = Server::start_on(backend).await;
        // This agent confirms nothing; the push stays pending on its socket.
        let token = server.token_with("a1", "agent", &["--device", "pc"]);
        let agent = Client::connect(&server, &token).await;
        a_resend_delivers_nothing_twice(&server, agent).await;
    }

    async fn the_same_client_msg_id_from_two_customers_makes_two_messages(backend: Backend) {
        let server = Server::start_on(backend).await;
        let _agent = server.agent("a1").await;
        let mut alice = server.customer("alice").await;
        let mut bob = server.customer("bob").await;

        let from_alice = alice.say("m-1", "from alice").await;
        let from_bob = bob.say("m-1", "from bob").await;

        assert_ne!(from_alice.id, from_bob.id);
        assert_ne!(from_alice.task_id, from_bob.task_id);
    }

    async fn ids_increase_within_a_task(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;

        let mut ids = vec![chat.first.id];
        for i in 0..5 {
            let sent = chat.customer.say(&format!("c-{i}"), &format!("message {i}")).await;
            assert_eq!(sent.task_id, chat.task_id);
            ids.push(sent.id);
            let reply = chat.agent.say_to("c1", &format!("a-{i}"), &format!("reply {i}")).await;
            assert_eq!(reply.task_id, chat.task_id);
            ids.push(reply.id);
        }

        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in sending order: {ids:?}");
    }

    async fn a_returning_customer_continues_the_open_task(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        chat.customer.disconnect().await;

        let mut customer = server.customer_on("c1", "phone").await;
        let sent = customer.say("c-back", "I am back").await;

        assert_eq!(sent.task_id, chat.task_id);
        let push = chat.agent.recv_until(push_of(sent.id), WAIT).await;
        assert_eq!(push["content"], "I am back");
    }

    async fn missing_style_and_kind_default_and_unknown_fields_are_ignored(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let bare = json!({"category": "customer", "action": "send", "content": "bare",
                          "client_msg_id": "bare-1", "mood": "grumpy", "x_trace": [1, 2]});

        chat.customer.send_json(bare).await;

        let sent = Acked::from(&chat.customer.ack_of("send", Some("bare-1")).await);
        let push = chat.agent.recv_until(push_of(sent.id), WAIT).await;
        assert_eq!(push["style"], "normal", "{push}");
        assert_eq!(push["kind"], "text", "{push}");
        assert_eq!(push["content"], "bare", "{push}");
    }

    async fn a_message_with_card_style_and_ext_is_delivered_whole(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let card = json!({"style": "card", "url": "https://shop.example/p/1",
                          "ext": {"title": "Blue shoes", "price": "59.00"}});

        let ack = chat.customer.send_with("card-1", "Blue shoes", card).await;

        let sent = Acked::from(&ack);
        let push = chat.agent.recv_until(push_of(sent.id), WAIT).await;
        assert_eq!(push["style"], "card", "{push}");
        assert_eq!(push["url"], "https://shop.example/p/1", "{push}");
        assert_eq!(push["ext"]["title"], "Blue shoes", "{push}");
        assert_eq!(push["kind"], "text", "{push}");
    }

    /// A user id is one person's: a customer token for an agent's id would
    /// receive what customers send that agent, and an agent token for a
    /// customer's id would act for them. Either is refused (an auth error
    /// ack, then close 4403), and the rightful user is untouched.
    async fn a_token_for_a_user_id_of_another_role_is_refused_with_4403(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;

        let token = server.token("a1", "customer");
        let mut impostor = Client::connect_raw(&server, &format!("?token={token}")).await;
        let refusal = impostor
            .recv_until(|f| f["action"] == "auth" && f["ext"]["error"].is_object(), WAIT)
            .await;
        assert_eq!(error_code(&refusal), Some("forbidden"), "{refusal}");
        assert_eq!(impostor.expect_close(WAIT).await, 4403);

        let token = server.token("c1", "agent");
        let mut impostor = Client::connect_raw(&server, &format!("?token={token}")).await;
        assert_eq!(impostor.expect_close(WAIT).await, 4403);

        // Nor may it read the agent's messages over HTTP.
        let (status, body) = server.get("/api/offline", &server.token("a1", "customer")).await;
        assert_eq!(status, 403, "{body}");

        let sent = chat.customer.say("after-impostors", "still mine").await;
        chat.agent.recv_until(push_of(sent.id), WAIT).await;
    }
}
