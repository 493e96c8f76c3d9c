//! From a parsed [`Frame`] and the sender's identity to a [`Command`].
//!
//! This is the one place that decides who may send what: categories must match
//! the token's role, `from` must be the token's user, required fields must be
//! present and every field must fit its limit.

use crate::{Claims, ErrorCode, Frame, ProtocolError, Role};
use serde_json::Value;

/// Field limits; the defaults are those of docs/protocol.md.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_content_chars: usize,
    pub max_client_msg_id: usize,
    pub max_url: usize,
    pub max_ext_bytes: usize,
    pub max_receive_ids: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_content_chars: 10_000,
            max_client_msg_id: 64,
            max_url: 2_048,
            max_ext_bytes: 8_192,
            max_receive_ids: 500,
        }
    }
}

/// A validated `send`.
#[derive(Debug, Clone, PartialEq)]
pub struct SendCommand {
    pub style: String,
    pub kind: String,
    pub content: String,
    pub to: Option<String>,
    pub task_id: Option<i64>,
    pub url: Option<String>,
    pub quote: Option<i64>,
    /// The `ext` object as compact JSON, encoded once here and stored as
    /// it is.
    pub ext: Option<String>,
    pub client_msg_id: String,
}

/// Everything an authenticated client can ask for over the WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Send(SendCommand),
    Receive {
        ids: Vec<i64>,
    },
    Read {
        task_id: i64,
        up_to: i64,
        client_msg_id: Option<String>,
    },
    Revoke {
        id: i64,
        client_msg_id: Option<String>,
    },
    Delete {
        id: i64,
        client_msg_id: Option<String>,
    },
    Typing {
        task_id: Option<i64>,
        to: Option<String>,
    },
    Heartbeat,
}

const STYLES: &[&str] = &["normal", "card", "order", "assess", "toast"];
const SENDABLE_STYLES: &[&str] = &["normal", "card", "order"];
const KINDS: &[&str] = &["text", "picture", "video", "audio", "file", "unknown"];
const CATEGORIES: &[&str] = &[
    "system",
    "customer",
    "manager",
    "heartbeat",
    "ack",
    "receive",
];
const ACTIONS: &[&str] = &["send", "revoke", "delete", "read", "auth", "typing"];

impl Command {
    /// Checks a frame from an authenticated client.
    pub fn from_frame(
        frame: Frame,
        claims: &Claims,
        limits: &Limits,
    ) -> Result<Command, ProtocolError> {
        let category = frame.category.as_deref().unwrap_or("");
        if !CATEGORIES.contains(&category) {
            return Err(ProtocolError::bad_request(format!(
                "unknown category {category:?}"
            )));
        }
        if let Some(action) = frame.action.as_deref() {
            if !ACTIONS.contains(&action) {
                return Err(ProtocolError::bad_request(format!(
                    "unknown action {action:?}"
                )));
            }
        }
        match category {
            "heartbeat" => return Ok(Command::Heartbeat),
            "receive" => return receive(&frame, limits),
            "system" | "ack" => {
                return Err(ProtocolError::forbidden(format!(
                    "clients do not send {category} frames"
                )))
            }
            _ => {}
        }
        if category != claims.role.category() || claims.role == Role::Admin {
            return Err(ProtocolError::forbidden(format!(
                "a {} sends category {:?}",
                claims.role.as_str(),
                claims.role.category()
            )));
        }
        if let Some(from) = frame.from.as_deref() {
            if from != claims.sub {
                return Err(ProtocolError::forbidden(
                    "from must be the authenticated user",
                ));
            }
        }
        check_len(
            "client_msg_id",
            frame.client_msg_id.as_deref(),
            limits.max_client_msg_id,
            ErrorCode::BadRequest,
        )?;
        let action = frame.action.as_deref().unwrap_or("");
        match action {
            "send" => send(frame, claims, limits),
            "read" => Ok(Command::Read {
                task_id: positive("task_id", frame.task_id)?,
                up_to: positive("quote", frame.quote)?,
                client_msg_id: frame.client_msg_id,
            }),
            "revoke" => Ok(Command::Revoke {
                id: positive("quote", frame.quote)?,
                client_msg_id: frame.client_msg_id,
            }),
            "delete" => Ok(Command::Delete {
                id: positive("quote", frame.quote)?,
                client_msg_id: frame.client_msg_id,
            }),
            "typing" => {
                if frame.task_id.is_none() && frame.to.is_none() {
                    return Err(ProtocolError::bad_request("typing needs task_id"));
                }
                Ok(Command::Typing {
                    task_id: frame.task_id,
                    to: frame.to,
                })
            }
            "auth" => Err(ProtocolError::bad_request("already authenticated")),
            "" => Err(ProtocolError::bad_request("missing action")),
            other => Err(ProtocolError::bad_request(format!(
                "unknown action {other:?}"
            ))),
        }
    }

    /// The action an ack of this command names.
    pub fn action(&self) -> &'static str {
        match self {
            Command::Send(_) => "send",
            Command::Receive { .. } => "receive",
            Command::Read { .. } => "read",
            Command::Revoke { .. } => "revoke",
            Command::Delete { .. } => "delete",
            Command::Typing { .. } => "typing",
            Command::Heartbeat => "heartbeat",
        }
    }
}

fn send(frame: Frame, claims: &Claims, limits: &Limits) -> Result<Command, ProtocolError> {
    let client_msg_id = match frame.client_msg_id {
        Some(id) if !id.is_empty() => id,
        _ => return Err(ProtocolError::bad_request("send needs client_msg_id")),
    };
    let style = frame.style.unwrap_or_else(|| "normal".into());
    if !STYLES.contains(&style.as_str()) {
        return Err(ProtocolError::bad_request(format!(
            "unknown style {style:?}"
        )));
    }
    if !SENDABLE_STYLES.contains(&style.as_str()) {
        return Err(ProtocolError::forbidden(format!(
            "clients do not send style {style:?}"
        )));
    }
    let kind = frame.kind.unwrap_or_else(|| "text".into());
    if !KINDS.contains(&kind.as_str()) {
        return Err(ProtocolError::bad_request(format!("unknown kind {kind:?}")));
    }
    let content = frame.content.unwrap_or_default();
    if content.chars().count() > limits.max_content_chars {
        return Err(ProtocolError::new(
            ErrorCode::TooLarge,
            format!("content is over {} characters", limits.max_content_chars),
        ));
    }
    if content.trim().is_empty() && kind == "text" && style == "normal" {
        return Err(ProtocolError::bad_request("content is empty"));
    }
    check_len(
        "url",
        frame.url.as_deref(),
        limits.max_url,
        ErrorCode::TooLarge,
    )?;
    check_len(
        "to",
        frame.to.as_deref(),
        crate::token::MAX_USER_ID,
        ErrorCode::BadRequest,
    )?;
    let ext_json = match &frame.ext {
        Some(ext) if !ext.is_object() => {
            return Err(ProtocolError::bad_request("ext must be an object"))
        }
        Some(ext) => Some(ext.to_string()),
        None => None,
    };
    if ext_json
        .as_ref()
        .is_some_and(|e| e.len() > limits.max_ext_bytes)
    {
        return Err(ProtocolError::new(ErrorCode::TooLarge, "ext is too large"));
    }
    check_text(
        &content,
        frame.url.as_deref(),
        frame.ext.as_ref(),
        &client_msg_id,
    )?;
    check_links(
        &style,
        &kind,
        &content,
        frame.url.as_deref(),
        frame.ext.as_ref(),
    )?;
    if claims.role == Role::Agent && frame.to.is_none() && frame.task_id.is_none() {
        return Err(ProtocolError::bad_request(
            "an agent's send needs to or task_id",
        ));
    }
    Ok(Command::Send(SendCommand {
        style,
        kind,
        content,
        to: frame.to,
        task_id: frame.task_id,
        url: frame.url,
        quote: frame.quote,
        ext: ext_json,
        client_msg_id,
    }))
}

/// NUL cannot be stored by every database (PostgreSQL refuses it in text),
/// so it is refused here rather than failing at the commit.
fn check_text(
    content: &str,
    url: Option<&str>,
    ext: Option<&Value>,
    client_msg_id: &str,
) -> Result<(), ProtocolError> {
    let nul = content.contains('\0')
        || url.is_some_and(|u| u.contains('\0'))
        || client_msg_id.contains('\0')
        || ext.is_some_and(has_nul);
    if nul {
        return Err(ProtocolError::bad_request(
            "text may not contain the NUL character",
        ));
    }
    Ok(())
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Kinds whose content is the address of the file.
const FILE_KINDS: &[&str] = &["picture", "video", "audio", "file"];

/// Every address a client will open or load (the message's `url`, a file's
/// content, a card's or order's `ext.url` and `ext.image`) is http(s), so a
/// message cannot carry `javascript:` or `data:` into another user's page.
fn check_links(
    style: &str,
    kind: &str,
    content: &str,
    url: Option<&str>,
    ext: Option<&Value>,
) -> Result<(), ProtocolError> {
    let mut links: Vec<(&str, &str)> = Vec::new();
    if let Some(url) = url.filter(|u| !u.is_empty()) {
        links.push(("url", url));
    }
    if FILE_KINDS.contains(&kind) {
        links.push(("content", content));
    }
    if matches!(style, "card" | "order") {
        for field in ["url", "image"] {
            if let Some(v) = ext.and_then(|e| e.get(field)).and_then(Value::as_str) {
                if !v.is_empty() {
                    links.push((field, v));
                }
            }
        }
    }
    for (name, link) in links {
        if !is_web_url(link) {
            return Err(ProtocolError::bad_request(format!(
                "{name} must be an http or https URL"
            )));
        }
    }
    Ok(())
}

/// An absolute http(s) URL, scheme in any case, nothing before it.
pub fn is_web_url(link: &str) -> bool {
    let lower = link.get(..8).unwrap_or(link).to_ascii_lowercase();
    (lower.starts_with("http://") && link.len() > 7)
        || (lower.starts_with("https://") && link.len() > 8)
}

fn receive(frame: &Frame, limits: &Limits) -> Result<Command, ProtocolError> {
    let mut ids: Vec<i64> = frame.id.into_iter().collect();
    if let Some(list) = frame.ext.as_ref().and_then(|e| e.get("ids")) {
        let list = list
            .as_array()
            .ok_or_else(|| ProtocolError::bad_request("ext.ids must be an array of ids"))?;
        for v in list {
            ids.push(
                v.as_i64()
                    .ok_or_else(|| ProtocolError::bad_request("ext.ids must be an array of ids"))?,
            );
        }
    }
    if ids.is_empty() {
        return Err(ProtocolError::bad_request("receive needs id or ext.ids"));
    }
    if ids.len() > limits.max_receive_ids {
        return Err(ProtocolError::new(ErrorCode::TooLarge, "too many ids"));
    }
    Ok(Command::Receive { ids })
}

fn positive(name: &str, value: Option<i64>) -> Result<i64, ProtocolError> {
    match value {
        Some(v) if v > 0 => Ok(v),
        _ => Err(ProtocolError::bad_request(format!(
            "{name} must be a positive id"
        ))),
    }
}

fn check_len(
    name: &str,
    value: Option<&str>,
    max: usize,
    code: ErrorCode,
) -> Result<(), ProtocolError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ProtocolError::new(
            code,
            format!("{name} is over {max} characters"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
