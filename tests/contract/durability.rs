//! What survives a stop: SIGTERM drains, kill -9 loses nothing acknowledged,
//! a restart keeps tasks and dedup.

use crate::support::*;
use std::collections::BTreeMap;

const BURST: usize = 300;

fn burst_id(i: usize) -> String {
    format!("burst-{i:03}")
}

fn burst_content(i: usize) -> String {
    format!("burst message {i:03}")
}

fn burst_frame(i: usize) -> String {
    json!({"category": "customer", "action": "send", "kind": "text",
           "content": burst_content(i), "client_msg_id": burst_id(i)})
    .to_string()
}

/// Successful send acks among `frames`, by client_msg_id.
fn record_acks(acks: &mut BTreeMap<String, Acked>, frames: impl IntoIterator<Item = Value>) {
    for frame in frames {
        if frame["category"] == "ack"
            && frame["action"] == "send"
            && frame["ext"].get("error").is_none()
        {
            let cmid = frame["client_msg_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let ack = Acked::from(&frame);
            if let Some(earlier) = acks.insert(cmid.clone(), ack) {
                assert_eq!(earlier, ack, "two different acks for {cmid}");
            }
        }
    }
}

/// Pipelines `n` burst messages and waits until `at_least` are acked.
async fn start_burst(client: &mut Client, n: usize, at_least: usize) -> BTreeMap<String, Acked> {
    for i in 0..n {
        if !client.try_send_raw(&burst_frame(i)).await {
            break;
        }
    }
    let mut acks = BTreeMap::new();
    while acks.len() < at_least {
        let ack = client.recv_until(ack_of("send"), WAIT).await;
        record_acks(&mut acks, [ack]);
    }
    acks
}

/// Every acked message is in the task's history exactly once, and no content
/// is stored twice.
async fn assert_stored_once(server: &Server, acks: &BTreeMap<String, Acked>) -> i64 {
    let task = acks.values().next().expect("at least one ack").task_id;
    assert!(
        acks.values().all(|a| a.task_id == task),
        "one customer, one task"
    );
    let history = server.full_history(&server.admin_token(), task).await;
    for (cmid, ack) in acks {
        let copies: Vec<&Value> = history.iter().filter(|m| m["id"] == ack.id).collect();
        assert_eq!(copies.len(), 1, "acked {cmid} (id {}) stored once", ack.id);
        let i: usize = cmid["burst-".len()..].parse().expect("a burst id");
        assert_eq!(copies[0]["content"], burst_content(i).as_str());
    }
    let mut contents: Vec<&str> = history
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    let total = contents.len();
    contents.sort();
    contents.dedup();
    assert_eq!(contents.len(), total, "no message stored twice");
    task
}

/// A burst of messages, `kill -9` while it is acked, a restart: every
/// acked message is stored once, and resending the burst gets each acked
/// one its first ack back and stores the rest once.
async fn kill_9_loses_nothing_acked(mut server: Server) {
    let mut customer = server.customer("c1").await;
    let mut acks = start_burst(&mut customer, BURST, 20).await;

    server.kill9();

    record_acks(
        &mut acks,
        customer.drain_until_closed(Duration::from_secs(3)).await,
    );
    println!(
        "{} of {BURST} messages were acked before kill -9",
        acks.len()
    );
    server.restart().await;
    let task = assert_stored_once(&server, &acks).await;

    // The client retries whatever it has no ack for, and gets the first
    // ack again for the rest.
    let mut customer = server.customer("c1").await;
    for i in 0..BURST {
        let again = customer.say(&burst_id(i), &burst_content(i)).await;
        if let Some(first) = acks.get(&burst_id(i)) {
            assert_eq!(&again, first, "{} acked again after restart", burst_id(i));
        }
        assert_eq!(again.task_id, task);
    }
    let history = server.full_history(&server.admin_token(), task).await;
    for i in 0..BURST {
        let content = burst_content(i);
        let copies = history
            .iter()
            .filter(|m| m["content"] == content.as_str())
            .count();
        assert_eq!(copies, 1, "{} stored exactly once", burst_id(i));
    }
}

/// `--sqlite-sync normal` does not sync commits and leaves the WAL to a
/// thread beside the writer: what a killed process acknowledged is in the
/// page cache, and the restarted one reads it.
#[tokio::test]
async fn under_sqlite_sync_normal_kill_9_loses_nothing_acked() {
    let server = Server::builder()
        .arg("--sqlite-sync", "normal")
        .start()
        .await;
    kill_9_loses_nothing_acked(server).await;
}

on_every_backend! {
    async fn messages_acked_before_a_kill_9_are_stored_exactly_once(backend: Backend) {
        kill_9_loses_nothing_acked(Server::start_on(backend).await).await;
    }

    async fn sigterm_drains_exits_zero_and_keeps_every_acked_message(backend: Backend) {
        let mut server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let mut acks = start_burst(&mut chat.customer, 100, 10).await;

        server.sigterm();

        record_acks(&mut acks, chat.customer.drain_until_closed(Duration::from_secs(10)).await);
        chat.agent.drain_until_closed(Duration::from_secs(5)).await;
        let status = server.wait_exit(Duration::from_secs(15));
        let status = status.expect("kefu serve exits by itself after SIGTERM");
        assert!(status.success(), "exit status after SIGTERM: {status}");
        server.restart().await;
        assert_stored_once(&server, &acks).await;
    }

    async fn a_restart_keeps_open_tasks_and_client_msg_ids(backend: Backend) {
        let mut server = Server::start_on(backend).await;
        let mut chat = Chat::open(&server).await;
        let before = chat.customer.say("c-1", "before the restart").await;

        server.sigterm();
        server.wait_exit(Duration::from_secs(15)).expect("exits after SIGTERM");
        server.restart().await;

        let mut agent = server.agent("a1").await;
        let mut customer = server.customer("c1").await;
        assert_eq!(customer.say("c-1", "before the restart").await, before);
        let after = customer.say("c-2", "after the restart").await;
        assert_eq!(after.task_id, chat.task_id, "the open task continues");
        agent.recv_until(push_of(after.id), WAIT).await;
        let reply = agent.say_to("c1", "a-1", "still here").await;
        assert_eq!(reply.task_id, chat.task_id);
        customer.recv_until(push_of(reply.id), WAIT).await;
    }
}

/// A request that never ends (its body stopped arriving) and a connection
/// that never sent a byte are cut at the drain timeout: they would hold
/// the process for the body timeout (30 s) and the header timeout (10 s).
#[tokio::test]
async fn sigterm_exits_within_the_drain_timeout_despite_stalled_requests() {
    use tokio::io::AsyncWriteExt;
    let mut server = Server::builder().arg("--drain-timeout", "1s").start().await;
    let addr = server.socket_addr();
    let _silent = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let mut stalled = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stalled
        .write_all(
            b"POST /api/visitor HTTP/1.1\r\nHost: kefu\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"name\":",
        )
        .await
        .expect("writes");
    // Time for the server to read the headers and wait for the body.
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.sigterm();

    let status = server.wait_exit(Duration::from_secs(5));
    let status = status.expect("kefu serve exits within 5 s of SIGTERM with --drain-timeout 1s");
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// `--lane-queue 1`: a burst fills the lane at once, its connection waits
/// for room frame by frame, and every message is acked, stored once and
/// delivered in the order it was sent.
#[tokio::test]
async fn a_lane_that_holds_one_frame_makes_a_burst_wait_and_loses_nothing() {
    let server = Server::builder().arg("--lane-queue", "1").start().await;
    let mut chat = Chat::open(&server).await;

    let acks = start_burst(&mut chat.customer, BURST, BURST).await;

    assert_stored_once(&server, &acks).await;
    let mut delivered = Vec::new();
    while delivered.len() < BURST {
        let push = chat
            .agent
            .recv_until(
                |f| {
                    f["content"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("burst"))
                },
                WAIT,
            )
            .await;
        delivered.push(push["id"].as_i64().expect("an id"));
    }
    // burst-000, burst-001, …: the map's order is the order sent.
    let sent: Vec<i64> = acks.values().map(|a| a.id).collect();
    assert_eq!(delivered, sent, "delivered once each, in the order sent");
}
