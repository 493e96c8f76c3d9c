//! A task's life: transfer, end, rating.

use crate::support::*;

async fn end(server: &Server, token: &str, task: i64) -> (u16, Value) {
    server
        .post(&format!("/api/tasks/{task}/end"), token, json!({}))
        .await
}

async fn rate(server: &Server, token: &str, task: i64, score: i64) -> (u16, Value) {
    let body = json!({"score": score, "comment": "quick and kind"});
    server
        .post(&format!("/api/tasks/{task}/rating"), token, body)
        .await
}

async fn transfer(server: &Server, token: &str, task: i64, to: &str) -> (u16, Value) {
    server
        .post(
            &format!("/api/tasks/{task}/transfer"),
            token,
            json!({"to_agent": to}),
        )
        .await
}

/// A chat whose task has been ended by its agent.
async fn ended_chat(server: &Server) -> Chat {
    let chat = Chat::open(server).await;
    let (status, body) = end(server, &chat.agent.token, chat.task_id).await;
    assert_eq!(status, 200, "end: {body}");
    chat
}

on_every_backend! {
    async fn transfer_hands_the_task_over_and_tells_all_three(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let mut new_agent = server.agent("a2").await;
        let since = now_ms();

        let (status, body) = transfer(&server, &chat.agent.token, chat.task_id, "a2").await;

        assert_eq!(status, 200, "{body}");
        for side in [&mut chat.customer, &mut chat.agent, &mut new_agent] {
            let toast = side.recv_until(toast_since(since), WAIT).await;
            assert_eq!(int(&toast, "task_id"), chat.task_id, "{toast}");
        }
    }

    async fn after_a_transfer_only_the_new_agent_may_write(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let mut new_agent = server.agent("a2").await;
        let (status, body) = transfer(&server, &chat.agent.token, chat.task_id, "a2").await;
        assert_eq!(status, 200, "{body}");

        let from_new = new_agent.say_to("c1", "a2-1", "I take it from here").await;
        let from_old = chat.agent.send_text_to("c1", "a1-1", "me too").await;

        assert_eq!(from_new.task_id, chat.task_id, "the task_id stays");
        chat.customer.recv_until(push_of(from_new.id), WAIT).await;
        assert_error_ack(&from_old, "forbidden");
        let later = chat.customer.say("c-2", "thanks").await;
        assert_eq!(later.task_id, chat.task_id);
        new_agent.recv_until(push_of(later.id), WAIT).await;
    }

    async fn a_previous_agent_still_reads_the_history(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        let _new_agent = server.agent("a2").await;
        let (status, body) = transfer(&server, &chat.agent.token, chat.task_id, "a2").await;
        assert_eq!(status, 200, "{body}");

        let history = server.history(&chat.agent.token, chat.task_id, "").await;

        message_with_id(&history, chat.first.id);
    }

    async fn transfer_to_an_offline_agent_is_a_conflict(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        server.add_agent("a2", "Bea", "pw-a2");

        let (status, body) = transfer(&server, &chat.agent.token, chat.task_id, "a2").await;

        assert_http_status_error(status, &body, 409);
    }

    async fn transfer_to_a_full_agent_is_a_conflict(backend: Backend) {
        let server = Server::builder().on(backend).max_tasks_per_agent(1).start().await;
        let chat = Chat::between(&server, "c1", "a1").await;
        let full = Chat::between(&server, "c2", "a2").await;

        let (status, body) = transfer(&server, &chat.agent.token, chat.task_id, "a2").await;

        assert_http_status_error(status, &body, 409);
        drop(full);
    }

    async fn transfer_by_someone_other_than_the_tasks_agent_is_forbidden(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        let outsider = server.agent("a2").await;
        let _a3 = server.agent("a3").await;

        let (status, body) = transfer(&server, &outsider.token, chat.task_id, "a3").await;

        assert_http_error(status, &body, 403, "forbidden");
        drop(chat);
    }

    async fn ending_a_task_invites_the_customer_to_rate(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;

        let (status, body) = end(&server, &chat.agent.token, chat.task_id).await;

        assert_eq!(status, 200, "{body}");
        let invitation = chat
            .customer
            .recv_until(|f| f["category"] == "system" && f["style"] == "assess", WAIT)
            .await;
        assert_eq!(int(&invitation, "task_id"), chat.task_id);
    }

    async fn after_the_end_the_customers_next_message_opens_a_new_task(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = ended_chat(&server).await;

        let next = chat.customer.say("c-after", "one more thing").await;

        assert_ne!(next.task_id, chat.task_id);
        chat.agent.recv_until(push_of(next.id), WAIT).await;
    }

    async fn after_the_end_the_agent_can_no_longer_write_into_the_task(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = ended_chat(&server).await;

        let by_task = json!({"task_id": chat.task_id});
        let into_task = chat.agent.send_with("late-1", "one more thing", by_task).await;
        let to_customer = chat.agent.send_text_to("c1", "late-2", "one more thing").await;

        assert_error_ack(&into_task, "forbidden");
        let code = error_code(&to_customer);
        assert!(matches!(code, Some("forbidden" | "not_found")), "{to_customer}");
        chat.customer.expect_none(is_chat_message, Duration::from_secs(1)).await;
    }

    async fn ending_by_someone_other_than_the_tasks_agent_is_forbidden(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;
        let outsider = server.agent("a2").await;

        let by_outsider = end(&server, &outsider.token, chat.task_id).await;
        let by_customer = end(&server, &chat.customer.token, chat.task_id).await;

        assert_http_error(by_outsider.0, &by_outsider.1, 403, "forbidden");
        assert_http_error(by_customer.0, &by_customer.1, 403, "forbidden");
    }

    async fn the_customer_rates_an_ended_task_once(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = ended_chat(&server).await;

        let first = rate(&server, &chat.customer.token, chat.task_id, 5).await;
        let second = rate(&server, &chat.customer.token, chat.task_id, 4).await;

        assert!(first.0 == 200 || first.0 == 201, "first rating: {first:?}");
        assert_http_status_error(second.0, &second.1, 409);
    }

    async fn the_agent_may_not_rate(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = ended_chat(&server).await;

        let (status, body) = rate(&server, &chat.agent.token, chat.task_id, 5).await;

        assert_http_error(status, &body, 403, "forbidden");
    }

    async fn an_open_task_cannot_be_rated(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;

        let (status, body) = rate(&server, &chat.customer.token, chat.task_id, 5).await;

        assert!((400..500).contains(&status), "rating an open task: {status} {body}");
        assert!(body["error"]["code"].is_string(), "error body: {body}");
    }

    async fn scores_outside_one_to_five_are_bad_requests(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = ended_chat(&server).await;

        for score in [0, 6] {
            let (status, body) = rate(&server, &chat.customer.token, chat.task_id, score).await;
            assert_http_error(status, &body, 400, "bad_request");
        }
        let (status, body) = rate(&server, &chat.customer.token, chat.task_id, 1).await;
        assert!(status == 200 || status == 201, "a valid score after those: {status} {body}");
    }

    async fn a_task_whose_agent_stays_offline_goes_to_another_agent(backend: Backend) {
        let server = Server::builder()
            .on(backend)
            .arg("--reassign-offline-after", "1s")
            .start()
            .await;
        let Chat { mut customer, agent, task_id, .. } = Chat::open(&server).await;
        let old_token = agent.token.clone();
        let mut a2 = server.agent("a2").await;

        agent.disconnect().await;

        let reassigned = |f: &Value| f["ext"]["event"] == "reassigned";
        let told = customer.recv_until(reassigned, Duration::from_secs(15)).await;
        assert_eq!(int(&told, "task_id"), task_id, "{told}");
        let given = a2
            .recv_until(|f| f["category"] == "system" && f["task_id"] == task_id, WAIT)
            .await;
        assert!(given["ext"]["reason"].is_string(), "the new agent is told why: {given}");
        let next = customer.say("after", "are you still there?").await;
        assert_eq!(next.task_id, task_id, "the same task continues");
        a2.recv_until(push_of(next.id), WAIT).await;
        let missed = server.offline(&old_token).await;
        assert!(missed.iter().any(reassigned), "the old agent finds the notice: {missed:?}");
    }

    async fn a_customer_lists_their_tasks_newest_first_with_agent_and_rating(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = ended_chat(&server).await;
        let (status, body) = rate(&server, &chat.customer.token, chat.task_id, 5).await;
        assert_eq!(status, 201, "{body}");
        let next = chat.customer.say("c-again", "back again").await;

        let (status, body) = server.get("/api/tasks", &chat.customer.token).await;

        assert_eq!(status, 200, "{body}");
        let tasks = body["tasks"].as_array().expect("a task list");
        assert_eq!(tasks.len(), 2, "{body}");
        assert_eq!(int(&tasks[0], "task_id"), next.task_id);
        assert_eq!(tasks[0]["status"], "open");
        assert_eq!(int(&tasks[1], "task_id"), chat.task_id);
        assert_eq!(tasks[1]["status"], "ended");
        assert_eq!(tasks[1]["agent_id"], "a1");
        assert_eq!(tasks[1]["rating"], json!({"score": 5, "comment": "quick and kind"}));
        assert!(tasks[1]["ended_at"].is_i64(), "{body}");
    }

    async fn an_agent_lists_a_customers_tasks_and_a_customer_only_their_own(backend: Backend) {
        let server = Server::start_on(backend).await;
        let chat = Chat::open(&server).await;

        let (status, body) = server.get("/api/tasks?customer=c1", &chat.agent.token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(int(&body["tasks"][0], "task_id"), chat.task_id);

        let (status, body) = server.get("/api/tasks?customer=c2", &chat.customer.token).await;
        assert_http_error(status, &body, 403, "forbidden");
        let (status, body) = server.get("/api/tasks", &chat.agent.token).await;
        assert_http_error(status, &body, 400, "bad_request");
    }
}

#[tokio::test]
async fn transfer_or_end_of_an_unknown_task_is_not_found() {
    let server = Server::start().await;
    let agent = server.agent("a1").await;
    let _a2 = server.agent("a2").await;

    let ended = end(&server, &agent.token, 999_999).await;
    let moved = transfer(&server, &agent.token, 999_999, "a2").await;

    assert_http_error(ended.0, &ended.1, 404, "not_found");
    assert_http_error(moved.0, &moved.1, 404, "not_found");
}
