use super::*;

fn limits(config: LimitsConfig) -> Limits {
    Limits::new(config)
}

fn peer(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 40000)
}

#[test]
fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let l = limits(LimitsConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..LimitsConfig::default()
    });
    let xff = Some("203.0.113.9, 10.1.2.3");
    assert_eq!(
        l.client_ip(peer("10.0.0.5"), xff),
        "203.0.113.9".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        l.client_ip(peer("198.51.100.7"), xff),
        "198.51.100.7".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        l.client_ip(peer("10.0.0.5"), None),
        "10.0.0.5".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn visitors_are_limited_per_address() {
    let l = limits(LimitsConfig {
        visitors_per_minute: 3,
        ..LimitsConfig::default()
    });
    let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    for _ in 0..3 {
        assert!(l.visitor(a).is_ok());
    }
    let wait = l.visitor(a).unwrap_err();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(20),
        "{wait:?}"
    );
    assert!(l.visitor(b).is_ok(), "another address is not affected");
}

#[test]
fn wrong_passwords_lock_the_account_with_growing_waits_and_success_resets() {
    let l = limits(LimitsConfig {
        login_failures: 3,
        logins_per_minute: 0,
        ..LimitsConfig::default()
    });
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    for _ in 0..2 {
        l.login_result("alice", false);
        assert!(l.login(ip, "alice").is_ok());
    }
    l.login_result("alice", false);
    let first = l.login(ip, "alice").unwrap_err();
    assert!(first > Duration::from_secs(25), "{first:?}");
    l.login_result("alice", false);
    let second = l.login(ip, "alice").unwrap_err();
    assert!(second > first, "{second:?} after {first:?}");
    assert!(
        l.login(ip, "bob").is_ok(),
        "other accounts are not affected"
    );
    l.login_result("alice", true);
    assert!(l.login(ip, "alice").is_ok());
}
