//! Who gets a new customer: online, available agents below capacity; everyone
//! else waits in a queue that tells them their place.

use crate::support::*;

const SHORT: Duration = Duration::from_millis(1500);

async fn end_task(server: &Server, agent: &Client, task: i64) {
    let (status, body) = server
        .post(&format!("/api/tasks/{task}/end"), &agent.token, json!({}))
        .await;
    assert_eq!(status, 200, "end task {task}: {body}");
}

on_every_backend! {
    async fn with_no_agent_online_the_customer_waits_first_in_line(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut customer = server.customer("c1").await;

        let sent = customer.say("c-1", "hello?").await;

        let toast = customer.recv_until(queue_toast(1), WAIT).await;
        assert_eq!(int(&toast, "task_id"), sent.task_id, "{toast}");
        let history = server.history(&customer.token, sent.task_id, "").await;
        let stored = message_with_id(&history, int(&toast, "id"));
        assert_eq!(stored["category"], "system", "the toast is kept in the history: {stored}");
        let says = toast["content"].as_str().is_some_and(|c| !c.is_empty());
        assert!(says, "a toast says something: {toast}");
    }

    async fn the_agent_sees_the_customers_words_not_the_customers_queue_notices(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut customer = server.customer("c1").await;
        let sent = customer.say("c-1", "hello?").await;
        let toast = customer.recv_until(queue_toast(1), WAIT).await;
        let mut agent = server.agent("a1").await;
        agent.recv_until(push_of(sent.id), WAIT).await;

        let theirs = server.history(&agent.token, sent.task_id, "").await;
        let (_, contacts) = server.get("/api/contacts", &agent.token).await;

        message_with_id(&theirs, sent.id);
        assert!(
            theirs.iter().all(|m| m["from"] != "system" || m["to"] == "a1"),
            "the agent's history holds the customer's notices: {theirs:?}"
        );
        let last = &contacts["contacts"][0]["last_message"];
        assert_eq!(int(last, "id"), sent.id, "{contacts}");
        let mine = server.history(&customer.token, sent.task_id, "").await;
        message_with_id(&mine, int(&toast, "id"));
    }

    async fn customers_arriving_at_once_never_push_an_agent_past_capacity(backend: Backend) {
        let server = Server::builder().on(backend).max_tasks_per_agent(2).start().await;
        let agent = server.agent("a1").await;
        let mut customers = Vec::new();
        for i in 0..12 {
            customers.push(server.customer(&format!("race-{i}")).await);
        }

        // In a cluster their tasks fall to both workers, which race for a1.
        let ids: Vec<String> = (0..12).map(|i| format!("race-{i}")).collect();
        let sends = customers
            .iter_mut()
            .zip(&ids)
            .map(|(c, id)| c.send_text(id, "hello all at once"));
        for ack in futures::future::join_all(sends).await {
            assert_acked(&ack);
        }

        let (_, agents) = server.get("/api/agents", &agent.token).await;
        let a1 = agents["agents"]
            .as_array()
            .and_then(|list| list.iter().find(|a| a["user_id"] == "a1"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(a1["open_tasks"], 2, "{agents}");
        let (_, queue) = server.get("/api/queue", &agent.token).await;
        assert_eq!(queue["waiting"], 10, "{queue}");
    }

    async fn a_waiting_task_goes_to_the_first_agent_who_comes_online(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut customer = server.customer("c1").await;
        let sent = customer.say("c-1", "hello?").await;
        customer.recv_until(queue_toast(1), WAIT).await;

        let mut agent = server.agent("a1").await;

        let push = agent.recv_until(push_of(sent.id), WAIT).await;
        assert_eq!(push["content"], "hello?");
        let reply = agent.say_to("c1", "a-1", "sorry for the wait").await;
        assert_eq!(reply.task_id, sent.task_id);
        customer.recv_until(push_of(reply.id), WAIT).await;
    }

    async fn queue_positions_move_up_when_the_head_is_taken(backend: Backend) {
        let server = Server::builder().on(backend).max_tasks_per_agent(1).start().await;
        let chat = Chat::open(&server).await;
        let mut second = server.customer("c2").await;
        let mut third = server.customer("c3").await;

        let second_sent = second.say("c2-1", "me next").await;
        second.recv_until(queue_toast(1), WAIT).await;
        third.say("c3-1", "me after").await;
        third.recv_until(queue_toast(2), WAIT).await;

        let mut agent = chat.agent;
        end_task(&server, &agent, chat.task_id).await;

        agent.recv_until(push_of(second_sent.id), WAIT).await;
        third.recv_until(queue_toast(1), WAIT).await;
    }

    /// A customer who left the queue (no connection for
    /// --queue-abandon-after) no longer holds a place: the one behind moves
    /// up and is served first. Back and writing, they start a new task.
    async fn a_customer_gone_from_the_queue_gives_up_their_place(backend: Backend) {
        let server = Server::builder()
            .on(backend)
            .arg("--queue-abandon-after", "1")
            .start()
            .await;
        let mut gone = server.customer("c1").await;
        let gone_sent = gone.say("c1-1", "hello?").await;
        gone.recv_until(queue_toast(1), WAIT).await;
        let mut staying = server.customer("c2").await;
        let staying_sent = staying.say("c2-1", "me too").await;
        staying.recv_until(queue_toast(2), WAIT).await;
        drop(gone);

        staying.recv_until(queue_toast(1), Duration::from_secs(15)).await;
        let mut agent = server.agent("a1").await;
        agent.recv_until(push_of(staying_sent.id), WAIT).await;
        let (_, queue) = server.get("/api/queue", &agent.token).await;
        assert_eq!(queue["waiting"], 0, "{queue}");

        let mut back = server.customer("c1").await;
        let again = back.say("c1-2", "I am back").await;
        assert_ne!(again.task_id, gone_sent.task_id, "a new task");
        agent.recv_until(push_of(again.id), WAIT).await;
        let history = server.history(&back.token, gone_sent.task_id, "").await;
        let notice = history.iter().find(|m| m["ext"]["event"] == "abandoned");
        assert!(notice.is_some(), "the old task says why it ended: {history:?}");
    }

    async fn a_disconnected_agent_is_given_no_new_customers(backend: Backend) {
        let server = Server::start_on(backend).await;
        server.agent("a1").await.disconnect().await;
        let mut customer = server.customer("c1").await;

        let sent = customer.say("c-1", "hello?").await;

        let toast = customer.recv_until(queue_toast(1), WAIT).await;
        assert_eq!(int(&toast, "task_id"), sent.task_id);
    }

    async fn a_new_customer_goes_to_the_agent_with_fewest_open_tasks(backend: Backend) {
        let server = Server::start_on(backend).await;
        let busy = Chat::between(&server, "c1", "a1").await;
        let mut idle = server.agent("a2").await;
        let mut busy_agent = busy.agent;

        let mut customer = server.customer("c2").await;
        let sent = customer.say("c2-1", "hello").await;

        idle.recv_until(push_of(sent.id), WAIT).await;
        busy_agent.expect_none(push_of(sent.id), SHORT).await;
    }

    async fn an_away_agent_keeps_open_tasks_but_gets_no_new_customers(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::between(&server, "c1", "a1").await;
        let mut other = server.agent("a2").await;

        let (status, body) = server
            .put("/api/agents/me/status", &chat.agent.token, json!({"status": "away"}))
            .await;
        assert_eq!(status, 200, "{body}");

        let mut c2 = server.customer("c2").await;
        let mut c3 = server.customer("c3").await;
        let to_c2 = c2.say("c2-1", "hi").await;
        let to_c3 = c3.say("c3-1", "hi").await;
        other.recv_until(push_of(to_c2.id), WAIT).await;
        other.recv_until(push_of(to_c3.id), WAIT).await;
        chat.agent.expect_none(is_chat_message, SHORT).await;
        let reply = chat.agent.say_to("c1", "a-1", "still with you").await;
        assert_eq!(reply.task_id, chat.task_id);
    }

    async fn an_agent_back_from_away_is_given_customers_again(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut agent = server.agent("a1").await;
        let away = json!({"status": "away"});
        let (status, _) = server.put("/api/agents/me/status", &agent.token, away).await;
        assert_eq!(status, 200);
        let mut customer = server.customer("c1").await;
        let sent = customer.say("c-1", "hello?").await;
        customer.recv_until(queue_toast(1), WAIT).await;

        let available = json!({"status": "available"});
        let (status, body) = server.put("/api/agents/me/status", &agent.token, available).await;

        assert_eq!(status, 200, "{body}");
        agent.recv_until(push_of(sent.id), WAIT).await;
    }
}

#[tokio::test]
async fn an_unknown_agent_status_is_a_bad_request() {
    let server = Server::start().await;
    let agent = server.agent("a1").await;

    let (status, body) = server
        .put(
            "/api/agents/me/status",
            &agent.token,
            json!({"status": "sleeping"}),
        )
        .await;

    assert_http_error(status, &body, 400, "bad_request");
}

/// One address cannot fill the queue with throwaway visitors: past
/// --max-waiting-per-ip waiting customers, a first message from it gets
/// `rate_limited`; once one of them is served, there is room again.
/// (Loopback is counted here because of --limit-loopback.)
#[tokio::test]
async fn one_address_cannot_fill_the_queue() {
    let server = Server::builder()
        .arg("--max-waiting-per-ip", "2")
        .env("KEFU_LIMIT_LOOPBACK", "true")
        .start()
        .await;
    let mut first = server.customer("c1").await;
    let first_sent = first.say("c1-1", "hello?").await;
    let mut second = server.customer("c2").await;
    second.say("c2-1", "me too").await;
    let mut third = server.customer("c3").await;
    let refused = third.send_text("c3-1", "and me").await;
    assert_eq!(error_code(&refused), Some("rate_limited"), "{refused}");

    let mut agent = server.agent("a1").await;
    agent.recv_until(push_of(first_sent.id), WAIT).await;
    third.say("c3-2", "and me, now").await;
}
