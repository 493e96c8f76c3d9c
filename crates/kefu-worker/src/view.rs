//! Stored rows as the frames clients see.

use kefu_protocol::Frame;
use kefu_store::entity::message;

/// A stored message as `viewer`'s client sees it (`deleted` for that viewer).
pub fn message_frame(m: &message::Model, deleted: bool) -> Frame {
    Frame {
        category: Some(m.category.clone()),
        action: Some("send".into()),
        style: Some(m.style.clone()),
        kind: Some(m.kind.clone()),
        id: Some(m.id),
        task_id: Some(m.task_id),
        content: Some(if m.is_revoke {
            String::new()
        } else {
            m.content.clone()
        }),
        from: Some(m.sender.clone()),
        to: (!m.recipient.is_empty()).then(|| m.recipient.clone()),
        url: if m.is_revoke { None } else { m.url.clone() },
        created_at: Some(m.created_at),
        is_read: Some(m.is_read),
        is_revoke: Some(m.is_revoke),
        is_delete: Some(deleted),
        quote: m.quote,
        ext: None,
        // Stored as the gateway encoded it: written out as it is.
        ext_json: m.ext.clone().and_then(kefu_protocol::frame::RawJson::new),
        client_msg_id: m.client_msg_id.clone(),
    }
}

/// The ack of a stored send.
pub fn send_ack(m: &message::Model) -> Frame {
    Frame {
        id: Some(m.id),
        task_id: Some(m.task_id),
        created_at: Some(m.created_at),
        ..Frame::ack("send", m.client_msg_id.clone())
    }
}
