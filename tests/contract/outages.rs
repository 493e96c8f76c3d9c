//! Contract v2 §9 outages: without the database, sends and API calls are
//! answered `unavailable` / 503 within 2 s, and the first request after it
//! returns succeeds; nothing acknowledged is lost.

use crate::support::postgres::PrivatePostgres;
use crate::support::*;

/// The contract's bound, with room for a loaded CI machine.
const FAIL_FAST: Duration = Duration::from_millis(2_500);

#[tokio::test]
#[cfg_attr(not(kefu_test_postgres), ignore = "needs KEFU_TEST_POSTGRES_URL")]
async fn without_the_database_sends_and_calls_fail_fast_and_the_first_after_succeeds() {
    let pg = PrivatePostgres::start();
    let server = Server::builder()
        .arg("--database-url", &pg.url())
        .start()
        .await;
    let mut chat = Chat::open(&server).await;
    let before = chat
        .customer
        .say("before", "stored before the outage")
        .await;

    pg.crash();
    let started = std::time::Instant::now();
    let refused = chat
        .customer
        .send_text("during", "written during the outage")
        .await;
    let send_took = started.elapsed();
    let started = std::time::Instant::now();
    let (status, body) = server.get("/api/unread", &chat.customer.token).await;
    let call_took = started.elapsed();

    assert_error_ack(&refused, "unavailable");
    assert!(
        send_took < FAIL_FAST,
        "the send was answered after {send_took:?}"
    );
    assert_http_error(status, &body, 503, "unavailable");
    assert!(
        call_took < FAIL_FAST,
        "the call was answered after {call_took:?}"
    );

    // An outage of a second; the pool's connections date from before it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.up();
    let (status, body) = server.get("/api/unread", &chat.customer.token).await;
    assert_eq!(
        status,
        200,
        "the first call after the outage: {body}\n{}",
        server.log_tail()
    );
    let after = chat
        .customer
        .say("during", "written during the outage")
        .await;
    assert!(after.id > before.id);
    let history = server
        .full_history(&chat.customer.token, chat.task_id)
        .await;
    message_with_id(&history, before.id);
    message_with_id(&history, after.id);
}

/// Under load while the database is down, work does not pile up: every one
/// of 1,600 sends is answered `unavailable` within the bound of the last
/// one sent, and the server's memory stays flat (before the breaker, sends
/// waited for the database in a queue: no answer for up to 60 s, and a
/// worker's memory doubled).
#[tokio::test]
#[cfg_attr(not(kefu_test_postgres), ignore = "needs KEFU_TEST_POSTGRES_URL")]
async fn without_the_database_sends_under_load_are_answered_and_nothing_piles_up() {
    const SENDS: usize = 400;
    let pg = PrivatePostgres::start();
    let server = Server::builder()
        .arg("--database-url", &pg.url())
        .start()
        .await;
    let _agent = server.agent("a1").await;
    let mut customers = Vec::new();
    for i in 0..4 {
        let mut customer = server.customer(&format!("c{i}")).await;
        customer.say("before", "stored before the outage").await;
        customers.push(customer);
    }
    let before = rss_mib(server.pid());

    pg.crash();
    for customer in &mut customers {
        for n in 0..SENDS {
            let frame = json!({
                "category": "customer",
                "action": "send",
                "content": format!("during {n}"),
                "client_msg_id": format!("during-{n}"),
            });
            customer.send_json(frame).await;
        }
    }
    let sent = std::time::Instant::now();
    for customer in &mut customers {
        for n in 0..SENDS {
            let id = format!("during-{n}");
            let answer = customer
                .recv_until(|f| f["action"] == "send" && f["client_msg_id"] == id, WAIT)
                .await;
            assert_error_ack(&answer, "unavailable");
        }
    }
    let answered_in = sent.elapsed();
    let after = rss_mib(server.pid());
    println!(
        "{} sends answered {answered_in:?} after the last; RSS {before:.0} MiB before, \
         {after:.0} MiB after",
        4 * SENDS
    );
    assert!(
        answered_in < FAIL_FAST,
        "answered {answered_in:?} after the last send"
    );
    assert!(after - before < 40.0, "{:.0} MiB more", after - before);
    pg.up();
}
