//! Any bytes as a client's text frame: parsing and validation never panic,
//! a frame that parses serializes to JSON that parses to the same frame,
//! and a command that validates keeps its content within the limits.

#![no_main]

use kefu_protocol::{Claims, Command, Frame, Limits, Role};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::parse(data) else {
        return;
    };
    let json = frame.to_json();
    let again = Frame::parse(json.as_bytes()).expect("a serialized frame parses");
    assert_eq!(again.to_json(), json, "a frame survives a round trip");
    let limits = Limits::default();
    for role in [Role::Customer, Role::Agent, Role::Admin] {
        let claims = Claims::new("fuzz", role, u64::MAX);
        if let Ok(Command::Send(send)) = Command::from_frame(frame.clone(), &claims, &limits) {
            assert!(send.content.chars().count() <= limits.max_content_chars);
            assert!(!send.client_msg_id.is_empty());
            assert!(!send.content.contains('\0'), "NUL is refused");
        }
    }
});
