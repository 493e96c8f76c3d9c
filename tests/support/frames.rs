//! Reading frames and HTTP bodies the way a client would.

use serde_json::Value;

/// An integer field; panics naming the frame if it is missing or not one.
pub fn int(frame: &Value, field: &str) -> i64 {
    frame[field]
        .as_i64()
        .unwrap_or_else(|| panic!("`{field}` is not an integer in {frame}"))
}

/// A boolean flag; a missing flag is `false`, as a client would default it.
pub fn flag(frame: &Value, field: &str) -> bool {
    match &frame[field] {
        Value::Null => false,
        Value::Bool(b) => *b,
        other => panic!("`{field}` is not a boolean ({other}) in {frame}"),
    }
}

/// `ext.error.code` of an error ack or `error.code` of an HTTP error body.
pub fn error_code(value: &Value) -> Option<&str> {
    value["ext"]["error"]["code"]
        .as_str()
        .or_else(|| value["error"]["code"].as_str())
}

/// The success ack of a `send`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acked {
    pub id: i64,
    pub task_id: i64,
    pub created_at: i64,
}

impl From<&Value> for Acked {
    /// Panics unless `ack` is a successful send ack.
    fn from(ack: &Value) -> Acked {
        assert_acked(ack);
        Acked {
            id: int(ack, "id"),
            task_id: int(ack, "task_id"),
            created_at: int(ack, "created_at"),
        }
    }
}

/// A success ack: `category` ack and no `ext.error`.
pub fn assert_acked(ack: &Value) {
    assert_eq!(ack["category"], "ack", "not an ack: {ack}");
    assert!(
        ack["ext"].get("error").is_none(),
        "expected success, got an error ack: {ack}"
    );
}

/// An error ack with `code` and a human message.
pub fn assert_error_ack(ack: &Value, code: &str) {
    assert_eq!(ack["category"], "ack", "not an ack: {ack}");
    assert_eq!(error_code(ack), Some(code), "expected error {code}: {ack}");
    assert!(
        ack["ext"]["error"]["message"].is_string(),
        "an error ack carries a message: {ack}"
    );
}

/// An HTTP error: `status` and `{"error":{"code":CODE,"message":"..."}}`.
pub fn assert_http_error(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "body: {body}");
    assert_eq!(body["error"]["code"], code, "error body: {body}");
    assert!(body["error"]["message"].is_string(), "error body: {body}");
}

/// An HTTP error with `status` and an error body whose code the contract does
/// not name (409 has no code of its own in the contract's list).
pub fn assert_http_status_error(status: u16, body: &Value, expected_status: u16) {
    assert_eq!(status, expected_status, "body: {body}");
    assert!(body["error"]["code"].is_string(), "error body: {body}");
    assert!(body["error"]["message"].is_string(), "error body: {body}");
}

/// A stored message pushed to a client (not an ack, heartbeat or notice
/// without an id).
pub fn is_push(frame: &Value) -> bool {
    matches!(
        frame["category"].as_str(),
        Some("customer" | "manager" | "system")
    ) && frame["id"].is_i64()
}

/// The push of message `id`.
pub fn push_of(id: i64) -> impl Fn(&Value) -> bool {
    move |f| f["category"] != "ack" && f["id"] == id
}

/// Any customer or agent message (not system, not ack).
pub fn is_chat_message(frame: &Value) -> bool {
    matches!(frame["category"].as_str(), Some("customer" | "manager")) && frame["id"].is_i64()
}

/// A chat message with this content.
pub fn message_saying(content: &str) -> impl Fn(&Value) -> bool + '_ {
    move |f| is_chat_message(f) && f["content"] == content
}

/// `{"category":"system","action":ACTION,...}`.
pub fn system(action: &str) -> impl Fn(&Value) -> bool + '_ {
    move |f| f["category"] == "system" && f["action"] == action
}

/// A system toast created at or after `since_ms` (so one from before an act
/// cannot stand in for the one it causes).
pub fn toast_since(since_ms: i64) -> impl Fn(&Value) -> bool {
    move |f| {
        f["category"] == "system"
            && f["style"] == "toast"
            && f["created_at"].as_i64().is_some_and(|t| t >= since_ms)
    }
}

/// A toast telling a waiting customer their place in the queue.
pub fn queue_toast(position: i64) -> impl Fn(&Value) -> bool {
    move |f| {
        f["category"] == "system"
            && f["style"] == "toast"
            && f["ext"]["queue_position"].as_i64() == Some(position)
    }
}

/// Any error ack.
pub fn is_error_ack(frame: &Value) -> bool {
    frame["category"] == "ack" && frame["ext"].get("error").is_some()
}

/// Any ack of `action`.
pub fn ack_of(action: &str) -> impl Fn(&Value) -> bool + '_ {
    move |f| f["category"] == "ack" && f["action"] == action
}

/// The message list of a history or offline body: `{"messages":[...]}` (a
/// bare array is accepted too).
pub fn messages_in(body: &Value) -> Vec<Value> {
    body["messages"]
        .as_array()
        .or_else(|| body.as_array())
        .unwrap_or_else(|| panic!("no message list in {body}"))
        .clone()
}

pub fn ids_of(messages: &[Value]) -> Vec<i64> {
    messages.iter().map(|m| int(m, "id")).collect()
}

/// The message with `id`; panics if it is not there.
pub fn message_with_id(messages: &[Value], id: i64) -> &Value {
    messages
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("message {id} is not in {}", Value::from(messages.to_vec())))
}

/// Only the customers' and agents' messages (history also holds system ones).
pub fn chat_messages(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| is_chat_message(m))
        .cloned()
        .collect()
}

/// A 1×1 RGBA PNG, made by hand.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x02, 0x00,
    0x00, 0x05, 0x00, 0x01, 0x7a, 0x5e, 0xab, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44,
    0xae, 0x42, 0x60, 0x82,
];
