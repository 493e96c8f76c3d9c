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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
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
