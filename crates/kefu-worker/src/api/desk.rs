//! What the desk shows beside a chat: a customer's details and earlier
//! sessions, the queue's length, and each agent's quick replies.

use super::{created, ok, Reply};
use crate::{store_error, Inner, Sender};
use kefu_proto::v1;
use kefu_protocol::{ProtocolError, Role};
use kefu_store::entity::quick_reply;
use serde_json::{json, Value};
use std::collections::HashMap;

fn agents_only(sender: &Sender, what: &str) -> Result<(), ProtocolError> {
    if sender.role == Role::Customer {
        return Err(ProtocolError::forbidden(format!(
            "{what} are for agents and admins"
        )));
    }
    Ok(())
}

/// How many of a customer's tasks `GET /api/tasks` lists, newest first.
const TASK_LIST_LIMIT: u64 = 100;

/// A customer's service sessions, newest first: their own for a customer,
/// `?customer=ID`'s for agents and admins (the summary only; history keeps
/// its own check).
pub(super) async fn customer_tasks(
    inner: &Inner,
    sender: &Sender,
    customer: Option<String>,
) -> Reply {
    let customer = match (sender.role, customer) {
        (Role::Customer, None) => sender.user().to_owned(),
        (Role::Customer, Some(_)) => {
            return Err(ProtocolError::forbidden(
                "customers may list only their own tasks",
            ))
        }
        (_, Some(id)) if !id.is_empty() => id,
        (_, _) => return Err(ProtocolError::bad_request("`customer` is required")),
    };
    let tasks = inner
        .store
        .tasks_of_customer(&customer, TASK_LIST_LIMIT)
        .await
        .map_err(store_error)?;
    let mut agent_ids: Vec<String> = tasks.iter().filter_map(|t| t.agent_id.clone()).collect();
    agent_ids.sort();
    agent_ids.dedup();
    let names: HashMap<String, String> = inner
        .store
        .users(&agent_ids)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let list: Vec<Value> = tasks
        .iter()
        .map(|t| {
            let agent_name = t.agent_id.as_ref().map(|a| {
                names
                    .get(a)
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .unwrap_or_else(|| a.clone())
            });
            let rating = t
                .rating_score
                .map(|score| json!({"score": score, "comment": t.rating_comment}));
            json!({
                "task_id": t.id,
                "status": t.status,
                "customer_id": t.customer_id,
                "agent_id": t.agent_id,
                "agent_name": agent_name,
                "created_at": t.created_at,
                "ended_at": t.ended_at,
                "rating": rating,
            })
        })
        .collect();
    ok(json!({"tasks": list}))
}

/// A customer as the console's side panel shows them.
pub(super) async fn customer(inner: &Inner, sender: &Sender, id: &str) -> Reply {
    agents_only(sender, "customer details")?;
    let user = inner
        .store
        .user(id)
        .await
        .map_err(store_error)?
        .filter(|u| u.role == "customer")
        .ok_or_else(|| ProtocolError::not_found("no such customer"))?;
    let devices: Vec<String> = match inner.register.locate(&[id.to_owned()]).await {
        Ok(locations) => locations.into_iter().map(|l| l.device).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "register unavailable, showing no devices");
            Vec::new()
        }
    };
    ok(json!({
        "user_id": user.id,
        "name": user.name,
        "first_seen": user.created_at,
        "online": !devices.is_empty(),
        "devices": devices,
    }))
}

/// How many customers wait for an agent.
pub(super) async fn queue(inner: &Inner, sender: &Sender) -> Reply {
    agents_only(sender, "the queue's figures")?;
    let waiting = inner.store.count_waiting().await.map_err(store_error)?;
    ok(json!({"waiting": waiting}))
}

/// How many quick replies one agent may keep.
const MAX_QUICK_REPLIES: u64 = 500;

fn quick_reply_json(r: &quick_reply::Model) -> Value {
    json!({"id": r.id, "title": r.title, "content": r.content, "updated_at": r.updated_at})
}

fn no_such_quick_reply() -> ProtocolError {
    ProtocolError::not_found("no such quick reply")
}

/// `GET /api/quick-replies`: the caller's own list.
pub(super) async fn quick_replies(inner: &Inner, sender: &Sender) -> Reply {
    agents_only(sender, "quick replies")?;
    let list = inner
        .store
        .quick_replies(sender.user())
        .await
        .map_err(store_error)?;
    let list: Vec<Value> = list.iter().map(quick_reply_json).collect();
    ok(json!({"quick_replies": list}))
}

/// `POST /api/quick-replies`, the text checked by the gateway.
pub(super) async fn add_quick_reply(
    inner: &Inner,
    sender: &Sender,
    text: v1::QuickReplyText,
) -> Reply {
    agents_only(sender, "quick replies")?;
    let (store, me) = (&inner.store, sender.user());
    if store.count_quick_replies(me).await.map_err(store_error)? >= MAX_QUICK_REPLIES {
        return Err(ProtocolError::new(
            kefu_protocol::ErrorCode::Conflict,
            format!("an agent may keep at most {MAX_QUICK_REPLIES} quick replies"),
        ));
    }
    let row = store
        .add_quick_reply(me, &text.title, &text.content)
        .await
        .map_err(store_error)?;
    created(quick_reply_json(&row))
}

/// `PUT /api/quick-replies/{id}`.
pub(super) async fn update_quick_reply(
    inner: &Inner,
    sender: &Sender,
    edit: v1::QuickReplyEdit,
) -> Reply {
    agents_only(sender, "quick replies")?;
    let text = edit.text.unwrap_or_default();
    let row = inner
        .store
        .update_quick_reply(sender.user(), edit.id, &text.title, &text.content)
        .await
        .map_err(store_error)?
        .ok_or_else(no_such_quick_reply)?;
    ok(quick_reply_json(&row))
}

/// `DELETE /api/quick-replies/{id}`.
pub(super) async fn delete_quick_reply(inner: &Inner, sender: &Sender, id: i64) -> Reply {
    agents_only(sender, "quick replies")?;
    let deleted = inner
        .store
        .delete_quick_reply(sender.user(), id)
        .await
        .map_err(store_error)?;
    if !deleted {
        return Err(no_such_quick_reply());
    }
    ok(json!({"deleted": id}))
}
