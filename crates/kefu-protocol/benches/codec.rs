//! Frame codec: parse + validate an inbound send, encode an outbound message.

use criterion::{criterion_group, criterion_main, Criterion};
use kefu_protocol::{Claims, Command, Frame, Limits, Role};
use std::hint::black_box;

fn codec(c: &mut Criterion) {
    let claims = Claims::new("customer-1", Role::Customer, u64::MAX);
    let limits = Limits::default();
    let inbound = br#"{"category":"customer","action":"send","kind":"text","content":"hello, I need help with my order","client_msg_id":"c-123456"}"#;
    c.bench_function("parse_and_validate_send", |b| {
        b.iter(|| {
            let frame = Frame::parse(black_box(inbound)).expect("parses");
            Command::from_frame(frame, &claims, &limits).expect("valid")
        })
    });
    let outbound = Frame {
        category: Some("customer".into()),
        action: Some("send".into()),
        id: Some(123_456_789),
        task_id: Some(98_765),
        content: Some("hello, I need help with my order".into()),
        from: Some("customer-1".into()),
        to: Some("agent-1".into()),
        created_at: Some(1_700_000_000_000),
        client_msg_id: Some("c-123456".into()),
        ..Frame::default()
    };
    c.bench_function("encode_message", |b| {
        b.iter(|| black_box(&outbound).to_json())
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
