//! System notices: the toasts (queue position, assignment, transfer,
//! reassignment, a wait ended) and the `assess` invitation, stored with ids
//! in the task's history like any message and pushed to the one user they
//! are for; and what an agent is given when a task becomes theirs. The
//! task logic, the dispatcher and the sweeps use them, so none of those
//! import each other for it.

use crate::outbox::push_stored;
use crate::Inner;
use kefu_store::entity::task;
use kefu_store::tasks::OPEN;
use kefu_store::NewMessage;
use serde_json::json;

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

/// How a task came to its agent.
#[derive(Clone, Copy)]
pub(crate) enum Transfer<'a> {
    /// Taken from the queue after the customer waited.
    Waited,
    /// Handed over by its agent (or an admin; `old` is None when it had no
    /// agent), with the reason the new agent is shown.
    From {
        old: Option<&'a str>,
        reason: Option<&'a str>,
    },
}

/// Tells the sides of an assignment what changed, and gives the agent what
/// the customer wrote while waiting. (A task taken the moment it opened
/// needs neither: the customer's message itself reaches the agent.) A
/// customer who waited hears who took them; a transfer is told to every
/// side.
pub(crate) async fn on_assigned(inner: &Inner, task: &task::Model, agent: &str, how: Transfer<'_>) {
    let names = inner
        .store
        .users(&[task.customer_id.clone(), agent.to_owned()])
        .await
        .unwrap_or_default();
    let name_of = |id: &str| {
        names
            .iter()
            .find(|u| u.id == id)
            .map_or(id.to_owned(), |u| u.name.clone())
    };
    let customer = name_of(&task.customer_id);
    let (event, from, reason) = match how {
        Transfer::From { old, reason } => ("transferred", old, reason),
        _ => ("assigned", None, None),
    };
    let mut ext = json!({"event": event, "task_id": task.id, "customer_id": task.customer_id,
        "agent_id": agent, "from_agent": from});
    if let Some(reason) = reason {
        ext["reason"] = json!(reason);
    }
    let to_customer = match how {
        Transfer::From { .. } => format!("You are now talking with {}.", name_of(agent)),
        _ => format!("{} is now serving you.", name_of(agent)),
    };
    let customer_id = &task.customer_id;
    system_message(
        inner,
        task.id,
        customer_id,
        "toast",
        to_customer,
        ext.clone(),
    )
    .await;
    if let Transfer::From { old: from, reason } = how {
        let mut text = match from {
            Some(old) => format!(
                "{} handed you the conversation with {customer}.",
                name_of(old)
            ),
            None => format!("You were given the conversation with {customer}."),
        };
        if let Some(reason) = reason {
            text.push_str(&format!(" Reason: {reason}"));
        }
        system_message(inner, task.id, agent, "toast", text, ext.clone()).await;
        if let Some(old) = from {
            let text = format!("Conversation with {customer} handed to {}.", name_of(agent));
            system_message(inner, task.id, old, "toast", text, ext).await;
        }
    }
    hand_over_waiting_messages(inner, task.id).await;
}

/// Gives the task's agent the messages stored while it waited.
pub(crate) async fn hand_over_waiting_messages(inner: &Inner, task_id: i64) {
    let Ok(Some(task)) = inner.store.task(task_id).await else {
        return;
    };
    let Some(agent) = task.agent_id.filter(|_| task.status == OPEN) else {
        return;
    };
    match inner
        .task_writer
        .claim_waiting_messages(task_id, &agent)
        .await
    {
        Ok(claimed) => {
            for m in claimed {
                push_stored(inner, &m, vec![agent.clone()]).await;
            }
        }
        Err(e) => tracing::error!(error = %e, task_id, "cannot hand over waiting messages"),
    }
}
