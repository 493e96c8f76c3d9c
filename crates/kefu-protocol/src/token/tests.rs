use super::*;

fn claims(exp: u64) -> Claims {
    Claims {
        name: Some("Ann".into()),
        ..Claims::new("u1", Role::Agent, exp)
    }
}

#[test]
fn a_signed_token_verifies_with_the_same_secret_only() {
    let token = sign(
        b"s1",
        &claims(expiry_after(std::time::Duration::from_secs(60))),
    )
    .unwrap();
    assert_eq!(verify(b"s1", &token).unwrap().sub, "u1");
    assert!(matches!(verify(b"s2", &token), Err(TokenError::Invalid(_))));
}

#[test]
fn an_expired_token_is_refused() {
    let token = sign(b"s", &claims(1_000)).unwrap();
    assert!(matches!(verify(b"s", &token), Err(TokenError::Expired)));
}

#[test]
fn a_token_without_exp_is_refused() {
    let header = Header::new(Algorithm::HS256);
    let body = serde_json::json!({"sub": "u", "role": "agent"});
    let token = encode(&header, &body, &EncodingKey::from_secret(b"s")).unwrap();
    assert!(verify(b"s", &token).is_err());
}

#[test]
fn a_token_not_valid_before_a_later_time_is_refused_until_then() {
    let exp = expiry_after(std::time::Duration::from_secs(3600));
    let later = expiry_after(std::time::Duration::from_secs(600));
    let header = Header::new(Algorithm::HS256);
    let body = serde_json::json!({"sub": "u", "role": "agent", "exp": exp, "nbf": later});
    let token = encode(&header, &body, &EncodingKey::from_secret(b"s")).unwrap();
    assert!(verify(b"s", &token).is_err());
    let body = serde_json::json!({"sub": "u", "role": "agent", "exp": exp, "nbf": 1_000});
    let token = encode(&header, &body, &EncodingKey::from_secret(b"s")).unwrap();
    assert!(verify(b"s", &token).is_ok());
}

#[test]
fn no_token_may_speak_as_the_system() {
    let c = Claims {
        sub: SYSTEM_USER.into(),
        ..claims(expiry_after(std::time::Duration::from_secs(60)))
    };
    let token = sign(b"s", &c).unwrap();
    assert!(matches!(verify(b"s", &token), Err(TokenError::Invalid(_))));
}

#[test]
fn another_algorithm_is_refused() {
    let header = Header::new(Algorithm::HS512);
    let c = claims(expiry_after(std::time::Duration::from_secs(60)));
    let token = encode(&header, &c, &EncodingKey::from_secret(b"s")).unwrap();
    assert!(verify(b"s", &token).is_err());
}

#[test]
fn access_and_refresh_tokens_are_not_taken_for_each_other() {
    let exp = expiry_after(std::time::Duration::from_secs(60));
    let access = sign(b"s", &claims(exp)).unwrap();
    let refresh = sign(
        b"s",
        &Claims {
            typ: Some(REFRESH.into()),
            ..claims(exp)
        },
    )
    .unwrap();
    assert!(verify(b"s", &access).is_ok());
    assert!(verify_refresh(b"s", &access).is_err());
    assert!(verify_refresh(b"s", &refresh).unwrap().is_refresh());
    assert!(matches!(
        verify(b"s", &refresh),
        Err(TokenError::Invalid(_))
    ));
    let other = sign(
        b"s",
        &Claims {
            typ: Some("id".into()),
            ..claims(exp)
        },
    )
    .unwrap();
    assert!(verify(b"s", &other).is_err());
}
