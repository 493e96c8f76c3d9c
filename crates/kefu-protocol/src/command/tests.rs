use super::*;

fn customer() -> Claims {
    Claims::new("c1", Role::Customer, u64::MAX)
}

fn agent() -> Claims {
    Claims {
        role: Role::Agent,
        sub: "a1".into(),
        ..customer()
    }
}

fn parse(json: &str, claims: &Claims) -> Result<Command, ProtocolError> {
    let frame = Frame::parse(json.as_bytes()).expect("valid json");
    Command::from_frame(frame, claims, &Limits::default())
}

#[test]
fn a_customer_text_send_takes_defaults() {
    let cmd = parse(
        r#"{"category":"customer","action":"send","content":"hi","client_msg_id":"c-1"}"#,
        &customer(),
    )
    .unwrap();
    let Command::Send(send) = cmd else {
        panic!("not a send")
    };
    assert_eq!(
        (send.style.as_str(), send.kind.as_str()),
        ("normal", "text")
    );
}

#[test]
fn a_send_without_client_msg_id_is_a_bad_request() {
    let err = parse(
        r#"{"category":"customer","action":"send","content":"hi"}"#,
        &customer(),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
}

#[test]
fn a_category_that_does_not_match_the_role_is_forbidden() {
    let err = parse(
        r#"{"category":"manager","action":"send","content":"hi","to":"x","client_msg_id":"1"}"#,
        &customer(),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
}

#[test]
fn a_from_that_is_not_the_token_user_is_forbidden() {
    let err = parse(r#"{"category":"manager","action":"send","from":"a2","to":"c1","content":"hi","client_msg_id":"1"}"#, &agent()).unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
}

#[test]
fn unknown_categories_and_actions_are_bad_requests() {
    let err = parse(r#"{"category":"shout","action":"send"}"#, &customer()).unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    let err = parse(r#"{"category":"customer","action":"dance"}"#, &customer()).unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
}

#[test]
fn over_long_fields_are_refused() {
    let long_id = "x".repeat(65);
    let json = format!(
        r#"{{"category":"customer","action":"send","content":"hi","client_msg_id":"{long_id}"}}"#
    );
    assert_eq!(
        parse(&json, &customer()).unwrap_err().code,
        ErrorCode::BadRequest
    );
    let long_text = "x".repeat(10_001);
    let json = format!(
        r#"{{"category":"customer","action":"send","content":"{long_text}","client_msg_id":"1"}}"#
    );
    assert_eq!(
        parse(&json, &customer()).unwrap_err().code,
        ErrorCode::TooLarge
    );
}

#[test]
fn wrong_types_fail_to_parse_but_keep_the_action() {
    let (action, cmid, _) =
        Frame::parse(br#"{"action":"send","client_msg_id":"k","task_id":"seven"}"#).unwrap_err();
    assert_eq!(action, "send");
    assert_eq!(cmid.as_deref(), Some("k"));
}

#[test]
fn receive_takes_one_id_or_many() {
    assert_eq!(
        parse(r#"{"category":"receive","id":5}"#, &customer()).unwrap(),
        Command::Receive { ids: vec![5] }
    );
    assert_eq!(
        parse(r#"{"category":"receive","ext":{"ids":[1,2]}}"#, &customer()).unwrap(),
        Command::Receive { ids: vec![1, 2] }
    );
    assert!(parse(r#"{"category":"receive"}"#, &customer()).is_err());
}

#[test]
fn an_agent_send_needs_a_recipient() {
    let err = parse(
        r#"{"category":"manager","action":"send","content":"hi","client_msg_id":"1"}"#,
        &agent(),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
}

#[test]
fn clients_cannot_send_system_styles() {
    let err = parse(r#"{"category":"customer","action":"send","style":"toast","content":"x","client_msg_id":"1"}"#, &customer()).unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
}

fn send_error(extra: &str) -> Option<ErrorCode> {
    let json =
        format!(r#"{{"category":"customer","action":"send","client_msg_id":"c-1",{extra}}}"#);
    parse(&json, &customer()).err().map(|e| e.code)
}

#[test]
fn text_with_a_nul_character_is_a_bad_request_wherever_it_hides() {
    for extra in [
        r#""content":"a\u0000b""#,
        r#""content":"hi","url":"https://x.example/\u0000""#,
        r#""content":"hi","ext":{"note":"\u0000"}"#,
        r#""content":"hi","ext":{"list":[{"deep":"x\u0000"}]}"#,
        r#""content":"hi","ext":{"k\u0000":1}"#,
    ] {
        assert_eq!(send_error(extra), Some(ErrorCode::BadRequest), "{extra}");
    }
}

#[test]
fn links_a_client_would_open_must_be_http_or_https() {
    let refused = [
        r#""content":"hi","url":"javascript:alert(1)""#,
        r#""content":"hi","url":" https://x.example""#,
        r#""kind":"picture","content":"data:image/png;base64,AAAA""#,
        r#""kind":"file","content":"file:///etc/passwd""#,
        r#""style":"card","content":"t","ext":{"url":"JavaScript:alert(1)"}"#,
        r#""style":"order","content":"t","ext":{"image":"vbscript:x"}"#,
    ];
    for extra in refused {
        assert_eq!(send_error(extra), Some(ErrorCode::BadRequest), "{extra}");
    }
    let accepted = [
        r#""content":"see javascript:alert(1) as text""#,
        r#""content":"hi","url":"HTTPS://shop.example/p/1""#,
        r#""kind":"picture","content":"http://kefu.example/files/abc""#,
        r#""style":"card","content":"t","ext":{"url":"https://s.example","image":""}"#,
    ];
    for extra in accepted {
        assert_eq!(send_error(extra), None, "{extra}");
    }
}

/// What a gateway answers a client's frame with before any worker sees it:
/// Ok, or the error code of its error ack (a frame that does not parse is a
/// bad request).
fn verdict(json: &str, claims: &Claims) -> Result<(), &'static str> {
    let frame = Frame::parse(json.as_bytes()).map_err(|_| "bad_request")?;
    Command::from_frame(frame, claims, &Limits::default())
        .map(|_| ())
        .map_err(|e| e.code.as_str())
}

/// Every pure rule of a client frame, one row each: who sends, the frame,
/// and the verdict. (What needs the database, such as writing into another
/// agent's task, is tested end to end.)
#[test]
fn the_rules_of_a_frame_by_sender_and_field() {
    let send = |fields: &str| {
        format!(
            r#"{{"category":"customer","action":"send","kind":"text","content":"text","client_msg_id":"bad-1"{fields}}}"#
        )
    };
    let agent_send = |fields: &str| {
        format!(
            r#"{{"category":"manager","action":"send","kind":"text","content":"text","to":"c1","client_msg_id":"a-1"{fields}}}"#
        )
    };
    let cmid = |n: usize| {
        format!(
            r#"{{"category":"customer","action":"send","content":"x","client_msg_id":"{}"}}"#,
            "y".repeat(n)
        )
    };
    let (c, a) = (customer(), agent());
    let rows: Vec<(&str, &Claims, String, Result<(), &str>)> = vec![
        ("a plain customer send", &c, send(""), Ok(())),
        (
            "malformed JSON",
            &c,
            r#"{"category":"customer","action":"send","content":"x","client_msg_id":"#.into(),
            Err("bad_request"),
        ),
        (
            "a string where a number belongs",
            &c,
            send(r#","task_id":"seven""#),
            Err("bad_request"),
        ),
        (
            "a number where a string belongs",
            &c,
            send("").replace(r#""content":"text""#, r#""content":42"#),
            Err("bad_request"),
        ),
        (
            "an unknown category",
            &c,
            send("").replace(r#""category":"customer""#, r#""category":"robot""#),
            Err("bad_request"),
        ),
        (
            "an unknown action",
            &c,
            send("").replace(r#""action":"send""#, r#""action":"shout""#),
            Err("bad_request"),
        ),
        (
            "a send without client_msg_id",
            &c,
            send("").replace(r#","client_msg_id":"bad-1""#, ""),
            Err("bad_request"),
        ),
        ("a client_msg_id of 64 characters", &c, cmid(64), Ok(())),
        (
            "a client_msg_id of 65 characters",
            &c,
            cmid(65),
            Err("bad_request"),
        ),
        (
            "a customer sending as manager",
            &c,
            agent_send(""),
            Err("forbidden"),
        ),
        (
            "an agent sending as customer",
            &a,
            send(r#","task_id":7"#),
            Err("forbidden"),
        ),
        (
            "a from other than the token's user",
            &c,
            send(r#","from":"c999""#),
            Err("forbidden"),
        ),
        (
            "a from equal to the token's user",
            &c,
            send(r#","from":"c1""#),
            Ok(()),
        ),
        ("an agent send to a customer", &a, agent_send(""), Ok(())),
        (
            "an agent send to nobody",
            &a,
            agent_send("").replace(r#","to":"c1""#, ""),
            Err("bad_request"),
        ),
        (
            "a system style from a client",
            &c,
            send(r#","style":"toast""#),
            Err("forbidden"),
        ),
        (
            "a text over 10,000 characters",
            &c,
            send("").replace(
                r#""content":"text""#,
                &format!(r#""content":"{}""#, "x".repeat(10_001)),
            ),
            Err("too_large"),
        ),
    ];
    let wrong: Vec<String> = rows
        .iter()
        .filter_map(|(name, claims, json, want)| {
            let got = verdict(json, claims);
            (got != *want).then(|| format!("{name}: {got:?}, not {want:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
