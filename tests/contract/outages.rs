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
