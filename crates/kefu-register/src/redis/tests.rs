//! Against the Redis named by `KEFU_TEST_REDIS_URL`; skipped without it.

use super::*;

async fn register() -> Option<RedisRegister> {
    let Ok(url) = std::env::var("KEFU_TEST_REDIS_URL") else {
        println!("skipped: KEFU_TEST_REDIS_URL not set");
        return None;
    };
    let prefix = format!("kefu-test-{:016x}:", rand_u64());
    Some(
        RedisRegister::with_prefix(&url, &prefix)
            .await
            .expect("redis"),
    )
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
    Location {
        user_id: user.into(),
        gateway_id: gateway.into(),
        conn_id: conn.into(),
        device: "pc".into(),
        role: "agent".into(),
    }
}

#[tokio::test]
async fn members_join_renew_and_lapse() {
    let Some(reg) = register().await else { return };
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
async fn locations_of_live_gateways_only() {
    let Some(reg) = register().await else { return };
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
