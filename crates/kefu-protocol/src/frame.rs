//! The JSON frame, the one message structure of the WebSocket.
//!
//! Inbound, every field is optional and unknown fields are ignored; the
//! [`crate::command`] layer decides what is required. Outbound, absent fields
//! are left out of the JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_read: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_revoke: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_delete: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<Value>,
    /// Outbound only: `ext` as stored JSON text, written out as it is,
    /// never parsed into a tree and encoded again. Set this or `ext`.
    #[serde(
        rename = "ext",
        default,
        skip_deserializing,
        skip_serializing_if = "Option::is_none"
    )]
    pub ext_json: Option<RawJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// JSON text known to be valid, kept as text.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// The text, if it is valid JSON.
    pub fn new(text: String) -> Option<RawJson> {
        serde_json::value::RawValue::from_string(text)
            .ok()
            .map(RawJson)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &RawJson) -> bool {
        self.get() == other.get()
    }
}

impl Frame {
    /// Parses one text frame. On failure, whatever `action` and
    /// `client_msg_id` could be read are returned, so the error ack can echo them.
    pub fn parse(text: &[u8]) -> Result<Frame, (String, Option<String>, String)> {
        match serde_json::from_slice::<Frame>(text) {
            Ok(frame) => Ok(frame),
            Err(e) => {
                let loose: Option<Value> = serde_json::from_slice(text).ok();
                let field = |name: &str| {
                    loose
                        .as_ref()
                        .and_then(|v| v.get(name))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let action = field("action").unwrap_or_default();
                Err((action, field("client_msg_id"), e.to_string()))
            }
        }
    }

    pub fn to_json(&self) -> String {
        // A Frame holds only strings, numbers, booleans and JSON values: it
        // always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// `{"category":"ack","action":ACTION,...}` acknowledging success.
    pub fn ack(action: &str, client_msg_id: Option<String>) -> Frame {
        Frame {
            category: Some("ack".into()),
            action: Some(action.into()),
            client_msg_id,
            created_at: Some(crate::now_ms()),
            ..Frame::default()
        }
    }

    /// The error ack: `ext.error = {code, message}`.
    pub fn error(
        action: &str,
        client_msg_id: Option<String>,
        code: crate::ErrorCode,
        message: &str,
    ) -> Frame {
        let mut frame = Frame::ack(action, client_msg_id);
        frame.ext = Some(serde_json::json!({"error": {"code": code.as_str(), "message": message}}));
        frame
    }

    /// A system frame (read receipts, typing, revoke notices).
    pub fn system(action: &str) -> Frame {
        Frame {
            category: Some("system".into()),
            action: Some(action.into()),
            created_at: Some(crate::now_ms()),
            ..Frame::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored `ext` goes out byte for byte; an incoming one is parsed
    /// into `ext` and never lands in `ext_json`.
    #[test]
    fn stored_ext_is_written_as_it_is_and_incoming_ext_is_parsed() {
        let stored = r#"{"url":"https://e.com/a","n":[1,2.50,"x"]}"#;
        let frame = Frame {
            id: Some(7),
            ext_json: RawJson::new(stored.to_owned()),
            ..Frame::default()
        };
        assert_eq!(frame.to_json(), format!(r#"{{"id":7,"ext":{stored}}}"#));
        assert!(RawJson::new("{not json".into()).is_none());

        let incoming = Frame::parse(br#"{"category":"customer","ext":{"a":1}}"#).expect("parses");
        assert_eq!(incoming.ext, Some(serde_json::json!({"a": 1})));
        assert_eq!(incoming.ext_json, None);
    }
}
