//! The dispatcher's invariants, with opens racing on every worker of a
//! cluster: capacity holds, the queue is first come first served across the
//! system, customers wait only when no agent has room, positions are told
//! once per change and only going down, and a freed slot goes to the
//! oldest waiting task, who is told who serves them.

use crate::support::*;

/// The queue positions a customer was told in a task, in order (the
/// notices are stored in the task's history like any message).
async fn positions_told(server: &Server, customer: &Client, task_id: i64) -> Vec<i64> {
    server
        .history(&customer.token, task_id, "")
        .await
        .iter()
        .filter_map(|m| m["ext"]["queue_position"].as_i64())
        .collect()
}

async fn open_tasks(server: &Server, token: &str) -> Vec<(String, i64)> {
    let (_, agents) = server.get("/api/agents", token).await;
    agents["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let id = a["user_id"].as_str().unwrap_or_default().to_owned();
            (id, int(a, "open_tasks"))
        })
        .collect()
}

/// Sends every customer's first message at once and returns the acks.
async fn all_at_once(customers: &mut [Client]) -> Vec<Acked> {
    let sends = customers
        .iter_mut()
        .enumerate()
        .map(|(i, c)| async move { c.say(&format!("first-{i}"), "hello, all at once").await });
    futures::future::join_all(sends).await
}

on_every_backend! {
    async fn when_agents_have_room_nobody_is_told_to_wait(backend: Backend) {
        // Exactly as many customers as places, at once: the scale at which
        // per-worker assignment told customers to wait with agents free
        // (24 of 300 on `serve` before the dispatcher).
        let server = Server::builder().on(backend).max_tasks_per_agent(10).start().await;
        let mut agents = Vec::new();
        for i in 0..30 {
            agents.push(server.agent(&format!("room-{i}")).await);
        }
        let mut customers = Vec::new();
        for i in 0..300 {
            customers.push(server.customer(&format!("guest-{i}")).await);
        }

        let acks = all_at_once(&mut customers).await;
        // A queue notice follows the ack it belongs to; give any a moment
        // to be stored.
        tokio::time::sleep(Duration::from_millis(700)).await;

        let mut told_to_wait = Vec::new();
        for (customer, ack) in customers.iter().zip(&acks) {
            let told = positions_told(&server, customer, ack.task_id).await;
            if !told.is_empty() {
                told_to_wait.push((customer.user_id.clone(), told));
            }
        }
        assert!(told_to_wait.is_empty(), "told to wait with room left: {told_to_wait:?}");
        for (agent, load) in open_tasks(&server, &agents[0].token).await {
            assert_eq!(load, 10, "{agent} holds {load}: the 300 fill 30 agents of 10");
        }
        let (_, queue) = server.get("/api/queue", &agents[0].token).await;
        assert_eq!(queue["waiting"], 0, "{queue}");
    }

    async fn racing_opens_fill_agents_to_capacity_and_queue_the_rest_each_told_one_place(backend: Backend) {
        let server = Server::builder().on(backend).max_tasks_per_agent(2).start().await;
        let mut agents = Vec::new();
        for i in 0..3 {
            agents.push(server.agent(&format!("full-{i}")).await);
        }
        let mut customers = Vec::new();
        for i in 0..20 {
            customers.push(server.customer(&format!("crowd-{i}")).await);
        }

        let acks = all_at_once(&mut customers).await;

        for (agent, load) in open_tasks(&server, &agents[0].token).await {
            assert_eq!(load, 2, "{agent} holds {load} with a capacity of 2");
        }
        let (_, queue) = server.get("/api/queue", &agents[0].token).await;
        assert_eq!(queue["waiting"], 14, "{queue}");
        // Each waiting customer hears their place once; the places are
        // 1..=14, one each (positions are told by one dispatcher, not by
        // each worker for the queue it sees).
        let mut places = Vec::new();
        for (customer, ack) in customers.iter_mut().zip(&acks) {
            let deadline = tokio::time::Instant::now() + WAIT;
            let told = loop {
                let told = positions_told(&server, customer, ack.task_id).await;
                if !told.is_empty() || tokio::time::Instant::now() > deadline {
                    break told;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            places.extend(told);
        }
        // A straggler's notice, if any, is stored by now.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut all = Vec::new();
        for (customer, ack) in customers.iter().zip(&acks) {
            all.extend(positions_told(&server, customer, ack.task_id).await);
        }
        all.sort_unstable();
        assert_eq!(all, (1..=14).collect::<Vec<_>>(), "places told");
    }

    async fn the_queue_is_first_come_first_served_and_places_only_go_down(backend: Backend) {
        let server = Server::builder().on(backend).max_tasks_per_agent(1).start().await;
        let chat = Chat::between(&server, "first", "solo").await;
        let mut agent = chat.agent;
        // Arriving one after another (each hears their place before the
        // next writes); in a cluster they fall to both workers.
        let mut waiting = Vec::new();
        for i in 1..=5 {
            let mut customer = server.customer(&format!("line-{i}")).await;
            let sent = customer.say(&format!("line-{i}"), "waiting my turn").await;
            customer.recv_until(queue_toast(i), WAIT).await;
            waiting.push((customer, sent));
        }

        let mut current = chat.task_id;
        for (customer, sent) in waiting.iter_mut() {
            let (status, body) = server
                .post(&format!("/api/tasks/{current}/end"), &agent.token, json!({}))
                .await;
            assert_eq!(status, 200, "end {current}: {body}");
            let served = customer
                .recv_until(|f| f["ext"]["event"] == "assigned", WAIT)
                .await;
            assert_eq!(served["ext"]["agent_id"], "solo", "{served}");
            let push = agent.recv_until(push_of(sent.id), WAIT).await;
            assert_eq!(int(&push, "task_id"), sent.task_id, "the oldest waiting task comes next");
            current = sent.task_id;
        }

        for (i, (customer, sent)) in waiting.iter().enumerate() {
            let told = positions_told(&server, customer, sent.task_id).await;
            let arrived = i as i64 + 1;
            let expected: Vec<i64> = (1..=arrived).rev().collect();
            assert_eq!(told, expected, "{}: each place once, going down", customer.user_id);
        }
    }

    /// --reassign-unanswered-after: a customer left without an answer goes
    /// to another agent, and everyone is told why.
    async fn an_unanswered_customer_goes_back_to_the_queue_and_to_another_agent(backend: Backend) {
        let server = Server::builder()
            .on(backend)
            .arg("--reassign-unanswered-after", "1s")
            .start()
            .await;
        let mut slow = server.agent("slow").await;
        let mut customer = server.customer("c1").await;
        let sent = customer.say("c-1", "anyone there?").await;
        slow.recv_until(push_of(sent.id), WAIT).await;
        let mut quick = server.agent("quick").await;

        let moved = customer
            .recv_until(|f| f["ext"]["event"] == "reassigned", Duration::from_secs(15))
            .await;
        assert_eq!(moved["ext"]["from_agent"], "slow", "{moved}");
        let told = slow.recv_until(|f| f["ext"]["event"] == "reassigned", WAIT).await;
        let says = told["content"].as_str().unwrap_or_default();
        assert!(says.contains("waited"), "the agent hears why: {told}");
        let given = quick.recv_until(|f| f["ext"]["event"] == "transferred", WAIT).await;
        assert_eq!(given["ext"]["reason"], "its customer was waiting for an answer", "{given}");
        let now = customer
            .recv_until(|f| f["ext"]["event"] == "transferred", WAIT)
            .await;
        assert_eq!(now["ext"]["agent_id"], "quick", "{now}");

        let reply = quick.say_to("c1", "q-1", "I can help").await;
        assert_eq!(reply.task_id, sent.task_id, "the same task, with its history");
        customer.recv_until(push_of(reply.id), WAIT).await;
    }

    async fn an_answered_customer_stays_with_their_agent(backend: Backend) {
        let server = Server::builder()
            .on(backend)
            .arg("--reassign-unanswered-after", "1s")
            .start()
            .await;
        let mut chat = Chat::open(&server).await;
        chat.agent.say_to("c1", "a-1", "hello, how can I help?").await;
        let _other = server.agent("a2").await;

        chat.customer
            .expect_none(|f| f["ext"]["event"] == "reassigned", Duration::from_secs(3))
            .await;
        let (_, agents) = server.get("/api/agents", &chat.agent.token).await;
        let a1 = agents["agents"]
            .as_array()
            .and_then(|list| list.iter().find(|a| a["user_id"] == "a1"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(a1["open_tasks"], 1, "{agents}");
    }
}
