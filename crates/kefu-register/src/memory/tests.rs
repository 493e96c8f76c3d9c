use super::*;

fn loc(user: &str, gateway: &str, conn: &str) -> Location {
    crate::test_location(user, gateway, conn, "customer")
}

fn gateway(id: &str) -> Member {
    Member {
        id: id.into(),
        role: "gateway".into(),
        addr: String::new(),
    }
}

#[tokio::test]
async fn locations_follow_announce_and_withdraw() {
    let reg = MemoryRegister::new();
    reg.announce(vec![loc("u", "g1", "1"), loc("u", "g2", "2")])
        .await
        .unwrap();
    assert_eq!(reg.locate(&["u".into()]).await.unwrap().len(), 2);
    reg.withdraw(vec![loc("u", "g1", "1")]).await.unwrap();
    let left = reg.locate(&["u".into()]).await.unwrap();
    assert_eq!(left, vec![loc("u", "g2", "2")]);
}

#[tokio::test(start_paused = true)]
async fn a_member_whose_lease_expires_disappears_with_its_locations() {
    let reg = MemoryRegister::new();
    reg.keep_alive(gateway("g1"), Duration::from_secs(10))
        .await
        .unwrap();
    reg.announce(vec![loc("u", "g1", "1")]).await.unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(reg.members("gateway").await.unwrap().len(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(reg.members("gateway").await.unwrap().is_empty());
    assert!(reg.locate(&["u".into()]).await.unwrap().is_empty());
}
