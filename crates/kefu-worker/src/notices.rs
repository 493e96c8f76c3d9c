//! System notices: the toasts (queue position, assignment, transfer,
//! reassignment, a wait ended) and the `assess` invitation, stored with ids
//! in the task's history like any message and pushed to the one user they
//! are for. The task and queue logic and the sweeps write them; the send
//! path does not, so notices do not tie `messages` and `tasks` together.

use crate::outbox::push_stored;
use crate::Inner;
use kefu_store::NewMessage;

/// Stores a system message (toast, assess) for one user and pushes it.
pub(crate) async fn system_message(
    inner: &Inner,
    task_id: i64,
    to: &str,
    style: &str,
    content: String,
    ext: serde_json::Value,
) {
    let message = NewMessage {
        task_id,
        sender: "system".into(),
        recipient: to.to_owned(),
        category: "system".into(),
        style: style.into(),
        kind: "text".into(),
        content,
        url: None,
        quote: None,
        ext: Some(ext.to_string()),
        client_msg_id: None,
        created_at: kefu_protocol::now_ms(),
        undelivered_for: vec![to.to_owned()],
    };
    match inner.writer.write(message).await {
        Ok(w) => push_stored(inner, &w.message, vec![to.to_owned()]).await,
        Err(e) => tracing::error!(error = %e, task_id, "cannot store system message"),
    }
}
