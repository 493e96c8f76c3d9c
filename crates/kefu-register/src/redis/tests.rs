//! Against the Redis named by `KEFU_TEST_REDIS_URL`; ignored without it.

use super::*;

/// A register under a key prefix of its own, whose keys are deleted on drop.
struct TestRegister {
    register: RedisRegister,
    url: String,
    prefix: String,
}

impl std::ops::Deref for TestRegister {
    type Target = RedisRegister;
    fn deref(&self) -> &RedisRegister {
        &self.register
    }
}

impl Drop for TestRegister {
    fn drop(&mut self) {
        let deleted = delete_prefix(&self.url, &self.prefix);
        if let Err(e) = deleted {
            eprintln!(
                "could not delete the test's Redis keys {}*: {e}",
                self.prefix
            );
        }
    }
}

async fn register() -> TestRegister {
    let url = std::env::var("KEFU_TEST_REDIS_URL")
        .expect("KEFU_TEST_REDIS_URL is not set: this test needs the Redis it names");
    let prefix = format!("kefu-test-{:016x}:", rand_u64());
    TestRegister {
        register: RedisRegister::with_prefix(&url, &prefix)
            .await
            .expect("redis"),
        url,
        prefix,
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

fn member(id: &str, role: &str) -> Member {
    Member {
        id: id.into(),
        role: role.into(),
        addr: format!("http://{id}"),
    }
}

fn loc(user: &str, gateway: &str, conn: &str) -> Location {
    crate::test_location(user, gateway, conn, "agent")
}

#[tokio::test]
#[cfg_attr(not(kefu_test_redis), ignore = "needs KEFU_TEST_REDIS_URL")]
async fn members_join_renew_and_lapse() {
    let reg = register().await;
    assert!(
        reg.keep_alive(member("w1", "worker"), Duration::from_millis(300))
            .await
            .unwrap(),
        "first join"
    );
    assert!(
        !reg.keep_alive(member("w1", "worker"), Duration::from_millis(300))
            .await
            .unwrap(),
        "renewal"
    );
    reg.keep_alive(member("g1", "gateway"), Duration::from_secs(10))
        .await
        .unwrap();
    let workers = reg.members("worker").await.unwrap();
    assert_eq!(workers, vec![member("w1", "worker")]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        reg.members("worker").await.unwrap().is_empty(),
        "lease lapsed"
    );
    assert!(
        reg.keep_alive(member("w1", "worker"), Duration::from_secs(1))
            .await
            .unwrap(),
        "rejoined after lapse"
    );
    reg.leave("g1").await.unwrap();
    assert!(reg.members("gateway").await.unwrap().is_empty());
}

#[tokio::test]
#[cfg_attr(not(kefu_test_redis), ignore = "needs KEFU_TEST_REDIS_URL")]
async fn locations_of_live_gateways_only() {
    let reg = register().await;
    reg.keep_alive(member("g1", "gateway"), Duration::from_secs(10))
        .await
        .unwrap();
    reg.keep_alive(member("g2", "gateway"), Duration::from_millis(200))
        .await
        .unwrap();
    reg.announce(vec![
        loc("u", "g1", "c1"),
        loc("u", "g2", "c2"),
        loc("v", "g1", "c3"),
    ])
    .await
    .unwrap();
    let mut found = reg.locate(&["u".into(), "v".into()]).await.unwrap();
    found.sort_by(|a, b| a.conn_id.cmp(&b.conn_id));
    assert_eq!(
        found,
        vec![
            loc("u", "g1", "c1"),
            loc("u", "g2", "c2"),
            loc("v", "g1", "c3")
        ]
    );
    reg.withdraw(vec![loc("v", "g1", "c3")]).await.unwrap();
    assert!(reg.locate(&["v".into()]).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reg.locate(&["u".into()]).await.unwrap(),
        vec![loc("u", "g1", "c1")],
        "g2 lapsed"
    );
    reg.sweep().await.unwrap();
    reg.keep_alive(member("g2", "gateway"), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        reg.locate(&["u".into()]).await.unwrap().len(),
        1,
        "swept locations stay gone"
    );
}
