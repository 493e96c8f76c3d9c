//! Tasks: opening on a customer's first message, transfer, end and
//! rating. Who gets a task is the dispatcher's call ([`crate::dispatch`]);
//! this module asks it, and tells it what changed.

use crate::dispatch::{Event, Outcome};
use crate::notices::{on_assigned, system_message, Transfer};
use crate::{store_error, Inner, Sender};
use dashmap::DashMap;
use kefu_protocol::{shard, ErrorCode, ProtocolError, Role};
use kefu_store::entity::task;
use kefu_store::tasks::{Assigned, ENDED, OPEN};
use kefu_store::writer::Assignment;
use kefu_store::StoreError;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// How long a cached open task is trusted. The worker that owns a task's
/// shard makes every change to an open task (transfer and end run in its
/// lane) and forgets the entry when it does; the bound covers a shard that
/// moved away and back while another worker changed the task.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Open tasks by customer and by id, so a send needs no query to find its task.
#[derive(Default)]
pub struct TaskCache {
    by_customer: DashMap<String, (task::Model, Instant)>,
    by_id: DashMap<i64, (task::Model, Instant)>,
}

impl TaskCache {
    fn fresh(entry: Option<(task::Model, Instant)>) -> Option<task::Model> {
        entry
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(t, _)| t)
    }

    pub(crate) fn of_customer(&self, customer: &str) -> Option<task::Model> {
        Self::fresh(self.by_customer.get(customer).map(|e| e.clone()))
    }

    pub(crate) fn of_id(&self, id: i64) -> Option<task::Model> {
        Self::fresh(self.by_id.get(&id).map(|e| e.clone()))
    }

    /// Remembers a task if it is open; forgets it otherwise.
    pub(crate) fn put(&self, task: &task::Model) {
        if task.status != OPEN {
            return self.forget(task);
        }
        let now = Instant::now();
        self.by_customer
            .insert(task.customer_id.clone(), (task.clone(), now));
        self.by_id.insert(task.id, (task.clone(), now));
    }

    pub(crate) fn forget(&self, task: &task::Model) {
        self.by_customer.remove(&task.customer_id);
        self.by_id.remove(&task.id);
    }
}

/// A task by id, from the cache when fresh.
pub(crate) async fn by_id(inner: &Inner, id: i64) -> Result<Option<task::Model>, ProtocolError> {
    if let Some(task) = inner.tasks.of_id(id) {
        return Ok(Some(task));
    }
    let task = inner.store.task(id).await.map_err(store_error)?;
    if let Some(t) = &task {
        inner.tasks.put(t);
    }
    Ok(task)
}

/// A customer's live task, from the cache when fresh.
pub(crate) async fn live_of(
    inner: &Inner,
    customer: &str,
) -> Result<Option<task::Model>, ProtocolError> {
    if let Some(task) = inner.tasks.of_customer(customer) {
        return Ok(Some(task));
    }
    let task = inner
        .store
        .live_task_of(customer)
        .await
        .map_err(store_error)?;
    if let Some(t) = &task {
        inner.tasks.put(t);
    }
    Ok(task)
}

/// A new task for a customer the caller found without a live one
/// (assigned if an agent can take it). The customer's sends run in one
/// lane, so none opens a task in between.
pub(crate) async fn open(
    inner: &Arc<Inner>,
    sender: &Sender,
) -> Result<task::Model, ProtocolError> {
    let customer = sender.user();
    let name = if sender.session.name.is_empty() {
        customer
    } else {
        &sender.session.name
    };
    let ip = sender.session.client_ip.as_str();
    let max = inner.config.max_waiting_per_ip;
    if !ip.is_empty() && max > 0 {
        let waiting = inner
            .store
            .count_waiting_from(ip)
            .await
            .map_err(store_error)?;
        if waiting >= max {
            return Err(ProtocolError::new(
                ErrorCode::RateLimited,
                format!(
                    "{waiting} customers from your address are already waiting; please try \
                     again when an agent is free"
                ),
            ));
        }
    }
    let event = Event::Open {
        customer: customer.to_owned(),
        name: name.to_owned(),
        shard: shard::of_user(customer),
        client_ip: (!ip.is_empty()).then(|| ip.to_owned()),
        again: false,
    };
    match inner.dispatch.send(inner, event).await {
        Some(Outcome::Opened(task)) => Ok(task),
        Some(Outcome::Failed(e)) => {
            tracing::warn!(error = %e, customer, "cannot open a task");
            Err(ProtocolError::new(
                ErrorCode::Unavailable,
                "storage unavailable",
            ))
        }
        // No dispatcher answered (it is moving): the task waits, and the
        // next dispatcher finds it in the database. A dispatcher that did
        // open it and whose answer was lost has left it in the database.
        _ => {
            if let Some(task) = inner
                .store
                .live_task_of(customer)
                .await
                .map_err(store_error)?
            {
                return Ok(task);
            }
            let client_ip = (!ip.is_empty()).then_some(ip);
            let task = inner
                .store
                .create_task(customer, shard::of_user(customer), None, client_ip)
                .await
                .map_err(store_error)?;
            tracing::warn!(
                task_id = task.id,
                customer,
                "task opened waiting: no dispatcher answered"
            );
            Ok(task)
        }
    }
}

/// Which of `users` have a connection somewhere.
pub(crate) async fn online(inner: &Inner, users: &[String]) -> HashSet<String> {
    match inner.register.locate(users).await {
        Ok(locations) => locations.into_iter().map(|l| l.user_id).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "register unavailable, treating users as offline");
            HashSet::new()
        }
    }
}

/// A task the caller may manage (its current agent, or an admin).
async fn managed_task(
    inner: &Inner,
    sender: &Sender,
    task_id: i64,
) -> Result<task::Model, ProtocolError> {
    let task = inner
        .store
        .task(task_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ProtocolError::not_found("no such task"))?;
    let is_agent = sender.role == Role::Agent && task.agent_id.as_deref() == Some(sender.user());
    if !is_agent && sender.role != Role::Admin {
        return Err(ProtocolError::forbidden(
            "only the task's agent may do that",
        ));
    }
    if task.status == ENDED {
        return Err(ProtocolError::new(
            ErrorCode::Conflict,
            "the task has ended",
        ));
    }
    Ok(task)
}

/// The longest reason a transfer may give.
const MAX_REASON_CHARS: usize = 500;

pub(crate) async fn transfer(
    inner: &Arc<Inner>,
    sender: &Sender,
    task_id: i64,
    to_agent: &str,
    reason: Option<&str>,
) -> Result<serde_json::Value, ProtocolError> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ProtocolError::bad_request(format!(
            "reason is over {MAX_REASON_CHARS} characters"
        )));
    }
    let task = managed_task(inner, sender, task_id).await?;
    if task.agent_id.as_deref() == Some(to_agent) {
        return Err(ProtocolError::bad_request("the task is already theirs"));
    }
    let target = inner.store.user(to_agent).await.map_err(store_error)?;
    if target.is_none_or(|u| u.role != "agent") {
        return Err(ProtocolError::not_found("no such agent"));
    }
    if !online(inner, &[to_agent.to_owned()])
        .await
        .contains(to_agent)
    {
        return Err(ProtocolError::new(
            ErrorCode::Conflict,
            "that agent is offline",
        ));
    }
    let full = || ProtocolError::new(ErrorCode::Conflict, "that agent is full");
    let reserve = Event::Reserve {
        agent: to_agent.to_owned(),
    };
    let reserved = match inner.dispatch.send(inner, reserve).await {
        Some(Outcome::Reserved(false)) => return Err(full()),
        Some(Outcome::Reserved(true)) => true,
        // No dispatcher: the database's capacity check alone decides.
        _ => false,
    };
    let written = inner
        .task_writer
        .assign_task(Assignment {
            task_id,
            agent: to_agent.to_owned(),
            from: task.agent_id.clone(),
            capacity: Some(inner.config.max_tasks_per_agent),
        })
        .await;
    let refused = match written {
        Ok(Assigned::Yes) => None,
        Ok(Assigned::AgentFull) => Some(full()),
        Ok(Assigned::TaskMoved) => Some(ProtocolError::new(
            ErrorCode::Conflict,
            format!("task {task_id} changed meanwhile"),
        )),
        Err(e) => Some(store_error(e)),
    };
    if let Some(e) = refused {
        if reserved {
            released(inner, 0, Some(to_agent)).await;
        }
        return Err(e);
    }
    inner.tasks.forget(&task);
    tracing::info!(task_id, from = ?task.agent_id, to = to_agent, "task transferred");
    released(inner, task_id, task.agent_id.as_deref()).await;
    on_assigned(
        inner,
        &task,
        to_agent,
        Transfer::From {
            old: task.agent_id.as_deref(),
            reason,
        },
    )
    .await;
    Ok(json!({"task_id": task_id, "agent_id": to_agent, "status": OPEN}))
}

pub(crate) async fn end(
    inner: &Arc<Inner>,
    sender: &Sender,
    task_id: i64,
) -> Result<serde_json::Value, ProtocolError> {
    let task = managed_task(inner, sender, task_id).await?;
    inner
        .task_writer
        .end_task(task_id)
        .await
        .map_err(store_error)?;
    inner.tasks.forget(&task);
    tracing::info!(task_id, "task ended");
    released(inner, task_id, task.agent_id.as_deref()).await;
    let ext = json!({"event": "assess", "task_id": task_id, "scores": [1, 2, 3, 4, 5]});
    let text = "This conversation has ended. How would you rate our service?".to_owned();
    system_message(inner, task_id, &task.customer_id, "assess", text, ext).await;
    Ok(json!({"task_id": task_id, "status": ENDED}))
}

/// Tells the dispatcher a task left its agent (`agent`) or the queue
/// (None); task id 0 frees an unused reservation.
pub(crate) async fn released(inner: &Arc<Inner>, task_id: i64, agent: Option<&str>) {
    let event = Event::Released {
        task_id,
        agent: agent.map(str::to_owned),
    };
    inner.dispatch.send(inner, event).await;
}

pub(crate) async fn rate(
    inner: &Inner,
    sender: &Sender,
    task_id: i64,
    score: i64,
    comment: &str,
) -> Result<serde_json::Value, ProtocolError> {
    let task = inner
        .store
        .task(task_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ProtocolError::not_found("no such task"))?;
    if sender.role != Role::Customer || task.customer_id != sender.user() {
        return Err(ProtocolError::forbidden(
            "only the task's customer may rate it",
        ));
    }
    if !(1..=5).contains(&score) {
        return Err(ProtocolError::bad_request("score must be 1 to 5"));
    }
    if comment.chars().count() > 2000 {
        return Err(ProtocolError::bad_request(
            "comment is over 2000 characters",
        ));
    }
    if task.status != ENDED {
        return Err(ProtocolError::new(
            ErrorCode::Conflict,
            "the task has not ended",
        ));
    }
    inner
        .store
        .rate_task(task_id, score as i32, comment)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                ProtocolError::new(ErrorCode::Conflict, "the task was rated already")
            }
            other => store_error(other),
        })?;
    Ok(json!({"task_id": task_id, "score": score, "comment": comment}))
}
