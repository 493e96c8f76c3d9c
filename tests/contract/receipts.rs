//! Read receipts and unread counts, revoke, delete, typing.

use crate::support::*;

const SHORT: Duration = Duration::from_millis(1500);

/// `GET /api/unread` for `token`: (total, count of `task`).
async fn unread(server: &Server, token: &str, task: i64) -> (i64, i64) {
    let (status, body) = server.get("/api/unread", token).await;
    assert_eq!(status, 200, "unread: {body}");
    let total = int(&body, "total");
    let by_task = body["by_task"][task.to_string()].as_i64().unwrap_or(0);
    assert!(body["by_task"].is_object(), "by_task is an object: {body}");
    (total, by_task)
}

on_every_backend! {
    async fn an_agents_read_reaches_every_customer_device(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let mut customer_phone = server.customer_on("c1", "phone").await;
        let second = chat.customer.say("c-2", "and another thing").await;

        let ack = chat.agent.read(chat.task_id, second.id, "r-1").await;

        assert_acked(&ack);
        assert_eq!(ack["client_msg_id"], "r-1");
        for device in [&mut chat.customer, &mut customer_phone] {
            let receipt = device.recv_until(system("read"), WAIT).await;
            assert_eq!(int(&receipt, "task_id"), chat.task_id, "{receipt}");
            assert_eq!(int(&receipt, "quote"), second.id, "{receipt}");
            assert_eq!(receipt["from"], "a1", "{receipt}");
        }
    }

    async fn read_marks_messages_up_to_the_quote_only(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let second = chat.customer.say("c-2", "two").await;
        let third = chat.customer.say("c-3", "three").await;

        assert_acked(&chat.agent.read(chat.task_id, second.id, "r-1").await);

        let history = server.history(&chat.agent.token, chat.task_id, "").await;
        assert!(flag(message_with_id(&history, chat.first.id), "is_read"));
        assert!(flag(message_with_id(&history, second.id), "is_read"));
        assert!(!flag(message_with_id(&history, third.id), "is_read"));
    }

    async fn unread_counts_follow_reads(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let second = chat.customer.say("c-2", "two").await;
        chat.customer.say("c-3", "three").await;

        assert_eq!(unread(&server, &chat.agent.token, chat.task_id).await, (3, 3));
        assert_acked(&chat.agent.read(chat.task_id, second.id, "r-1").await);
        assert_eq!(unread(&server, &chat.agent.token, chat.task_id).await, (1, 1));
    }

    async fn an_agents_reply_is_unread_for_the_customer_until_read(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        assert_eq!(unread(&server, &chat.customer.token, chat.task_id).await, (0, 0));

        let reply = chat.agent.say_to("c1", "a-1", "here you go").await;
        assert_eq!(unread(&server, &chat.customer.token, chat.task_id).await, (1, 1));

        assert_acked(&chat.customer.read(chat.task_id, reply.id, "r-1").await);
        assert_eq!(unread(&server, &chat.customer.token, chat.task_id).await, (0, 0));
        let receipt = chat.agent.recv_until(system("read"), WAIT).await;
        assert_eq!(receipt["from"], "c1");
    }

    async fn system_messages_never_count_as_unread(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut customer = server.customer("c1").await;
        let sent = customer.say("c-1", "hello?").await;
        customer.recv_until(queue_toast(1), WAIT).await;
        assert_eq!(unread(&server, &customer.token, sent.task_id).await, (0, 0));

        let mut agent = server.agent("a1").await;
        agent.recv_until(push_of(sent.id), WAIT).await;
        let (status, body) = server
            .post(&format!("/api/tasks/{}/end", sent.task_id), &agent.token, json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        customer.recv_until(|f| f["style"] == "assess", WAIT).await;

        assert_eq!(unread(&server, &customer.token, sent.task_id).await, (0, 0));
    }

    async fn the_sender_revokes_within_the_window_and_everyone_is_told(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let mut customer_phone = server.customer_on("c1", "phone").await;
        let oops = chat.customer.say("c-2", "my password is hunter2").await;
        chat.agent.recv_until(push_of(oops.id), WAIT).await;

        let ack = chat.customer.revoke(oops.id, "rv-1").await;

        assert_acked(&ack);
        for side in [&mut chat.agent, &mut customer_phone, &mut chat.customer] {
            let notice = side.recv_until(system("revoke"), WAIT).await;
            assert_eq!(notice["style"], "toast", "{notice}");
            assert_eq!(int(&notice, "task_id"), chat.task_id, "{notice}");
            assert_eq!(int(&notice, "quote"), oops.id, "{notice}");
        }
        for token in [&chat.agent.token, &chat.customer.token] {
            let history = server.history(token, chat.task_id, "").await;
            let revoked = message_with_id(&history, oops.id);
            assert!(flag(revoked, "is_revoke"), "{revoked}");
            assert_eq!(revoked["content"], "", "a revoked message keeps no content: {revoked}");
        }
    }

    async fn revoking_someone_elses_message_is_forbidden(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;

        let ack = chat.agent.revoke(chat.first.id, "rv-1").await;

        assert_error_ack(&ack, "forbidden");
        assert_eq!(ack["client_msg_id"], "rv-1");
        let history = server.history(&chat.agent.token, chat.task_id, "").await;
        let untouched = message_with_id(&history, chat.first.id);
        assert!(!flag(untouched, "is_revoke"));
        assert_eq!(untouched["content"], "hello, I need help");
    }

    async fn delete_hides_a_message_for_the_requester_only(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let mut customer_phone = server.customer_on("c1", "phone").await;
        let reply = chat.agent.say_to("c1", "a-1", "an ad you did not want").await;
        chat.customer.recv_until(push_of(reply.id), WAIT).await;

        let ack = chat.customer.delete(reply.id, "del-1").await;

        assert_acked(&ack);
        customer_phone
            .recv_until(
                |f| f["action"] == "delete" && f["quote"] == reply.id && f["category"] != "ack",
                WAIT,
            )
            .await;
        let mine = server.history(&chat.customer.token, chat.task_id, "").await;
        assert!(flag(message_with_id(&mine, reply.id), "is_delete"));
        let theirs = server.history(&chat.agent.token, chat.task_id, "").await;
        let kept = message_with_id(&theirs, reply.id);
        assert!(!flag(kept, "is_delete"), "{kept}");
        assert_eq!(kept["content"], "an ad you did not want");
        chat.agent.expect_none(|f| f["action"] == "delete", SHORT).await;
    }

    async fn typing_is_relayed_to_the_other_side_and_not_acked(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let before = server.full_history(&server.admin_token(), chat.task_id).await.len();

        chat.customer.typing(chat.task_id).await;

        let notice = chat.agent.recv_until(system("typing"), WAIT).await;
        assert_eq!(int(&notice, "task_id"), chat.task_id);
        assert_eq!(notice["from"], "c1");
        chat.customer.expect_none(|f| f["category"] == "ack", SHORT).await;
        let after = server.full_history(&server.admin_token(), chat.task_id).await.len();
        assert_eq!(after, before, "typing is not stored");
    }

    async fn an_agents_typing_reaches_the_customer(backend: Backend) {
        let server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;

        chat.agent.typing(chat.task_id).await;

        let notice = chat.customer.recv_until(system("typing"), WAIT).await;
        assert_eq!(notice["from"], "a1");
    }
}

#[tokio::test]
async fn revoking_after_the_window_is_forbidden() {
    let server = Server::builder().revoke_window("1s").start().await;
    let mut chat = Chat::open(&server).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ack = chat.customer.revoke(chat.first.id, "rv-late").await;

    assert_error_ack(&ack, "forbidden");
    let history = server.history(&chat.agent.token, chat.task_id, "").await;
    assert!(!flag(message_with_id(&history, chat.first.id), "is_revoke"));
}

#[tokio::test]
async fn revoking_just_inside_a_short_window_works() {
    let server = Server::builder().revoke_window("3s").start().await;
    let mut chat = Chat::open(&server).await;

    let ack = chat.customer.revoke(chat.first.id, "rv-quick").await;

    assert_acked(&ack);
}
