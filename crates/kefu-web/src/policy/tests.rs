use super::*;

#[test]
fn origins_match_exactly_or_by_subdomain_and_scheme() {
    let origins = Origins::new(&[
        "https://shop.example.com".into(),
        "https://*.example.org".into(),
    ])
    .unwrap();
    assert!(origins.allows("https://shop.example.com"));
    assert!(origins.allows("HTTPS://Shop.Example.com"));
    assert!(!origins.allows("http://shop.example.com"));
    assert!(!origins.allows("https://shop.example.com.evil.net"));
    assert!(origins.allows("https://a.example.org"));
    assert!(!origins.allows("https://example.org.evil.net"));
    assert!(!origins.allows("https://evilexample.org"));
    assert!(Origins::new(&["javascript:alert(1)".into()]).is_err());
}

fn csp(policy: &Policy, kind: Kind) -> String {
    policy.headers(kind)[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn pages_forbid_inline_script_and_eval() {
    let policy = Policy::new(&[]).unwrap();
    for kind in [Kind::Chat, Kind::Console] {
        let csp = csp(&policy, kind);
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
    }
}

#[test]
fn chat_may_be_framed_by_the_listed_origins_and_the_console_by_none() {
    let policy = Policy::new(&[
        "https://shop.example.com".into(),
        "https://*.example.org".into(),
    ])
    .unwrap();
    assert!(csp(&policy, Kind::Chat)
        .ends_with("frame-ancestors https://shop.example.com https://*.example.org"));
    assert!(csp(&policy, Kind::Console).ends_with("frame-ancestors 'none'"));
    assert!(csp(&Policy::new(&[]).unwrap(), Kind::Chat).ends_with("frame-ancestors *"));
}

#[test]
fn an_origin_that_could_break_the_policy_is_refused() {
    for bad in [
        "shop.example.com",
        "https://",
        "javascript://x",
        "https://a.com; script-src *",
        "https://a.com 'unsafe-inline'",
    ] {
        assert!(Policy::new(&[bad.into()]).is_err(), "{bad} accepted");
    }
}

#[test]
fn hashed_assets_are_cached_for_a_year_and_pages_revalidate() {
    let policy = Policy::new(&[]).unwrap();
    let cache = |k| policy.headers(k)[header::CACHE_CONTROL].clone();
    assert_eq!(cache(Kind::Asset), "public, max-age=31536000, immutable");
    for kind in [Kind::Loader, Kind::Chat, Kind::Console] {
        assert_eq!(cache(kind), "no-cache");
    }
}
