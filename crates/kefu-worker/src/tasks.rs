//! Tasks: opening on a customer's first message, the waiting queue,
//! assignment to the least busy agent, transfer, end and rating.

use crate::notices::system_message;
use crate::outbox::push_stored;
use crate::{store_error, Inner, Sender};
use dashmap::DashMap;
use kefu_protocol::{shard, ErrorCode, ProtocolError, Role};
use kefu_store::entity::task;
use kefu_store::tasks::{ENDED, OPEN};
use kefu_store::users::AVAILABLE;
use kefu_store::StoreError;
use serde_json::json;
use std::collections::HashSet;
use std::time::Instant;
use tokio::sync::Mutex;

/// The waiting queue's in-memory side: one assignment at a time, and the
/// position each waiting customer was last told.
#[derive(Default)]
pub struct Queue {
    lock: Mutex<()>,
    pub(crate) told: DashMap<i64, usize>,
    /// Tasks put back in the queue because their agent went offline: the
    /// agent who takes one is told why.
    reassigned: DashMap<i64, ()>,
}

impl Queue {
    pub(crate) fn mark_reassigned(&self, task_id: i64) {
        self.reassigned.insert(task_id, ());
    }
}

/// What the next agent of a reassigned task is told.
const REASSIGNED_REASON: &str = "its agent went offline";

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

/// The customer's live task, or a new one (assigned if an agent can take it).
pub(crate) async fn live_or_open(
    inner: &Inner,
    sender: &Sender,
) -> Result<task::Model, ProtocolError> {
    let customer = sender.user();
    if let Some(task) = live_of(inner, customer).await? {
        return Ok(task);
    }
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
    inner
        .store
        .upsert_user(customer, "customer", name)
        .await
        .map_err(store_error)?;
    let client_ip = (!ip.is_empty()).then_some(ip);
    let task = inner
        .store
        .create_task(customer, shard::of_user(customer), None, client_ip)
        .await
        .map_err(store_error)?;
    tracing::info!(task_id = task.id, customer, "task opened");
    assign_waiting(inner).await;
    Ok(inner
        .store
        .task(task.id)
        .await
        .map_err(store_error)?
        .unwrap_or(task))
}

/// Assigns waiting tasks, oldest first, while an agent can take one; then
/// tells every customer still waiting their new position.
pub(crate) async fn assign_waiting(inner: &Inner) {
    let _one_at_a_time = inner.queue.lock.lock().await;
    if let Err(e) = assign_loop(inner).await {
        tracing::error!(error = %e, "assignment failed");
    }
    if let Err(e) = tell_positions(inner).await {
        tracing::error!(error = %e, "cannot update queue positions");
    }
}

async fn assign_loop(inner: &Inner) -> Result<(), StoreError> {
    loop {
        let waiting = inner.store.waiting_tasks().await?;
        let Some(task) = waiting.first() else {
            return Ok(());
        };
        let Some(agent) = pick_agent(inner).await? else {
            return Ok(());
        };
        let capacity = Some(inner.config.max_tasks_per_agent);
        match inner
            .store
            .assign_task_within(task.id, &agent, None, capacity)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
        let waited = inner.queue.told.remove(&task.id).is_some();
        let reassigned = inner.queue.reassigned.remove(&task.id).is_some();
        tracing::info!(
            task_id = task.id,
            agent,
            waited,
            reassigned,
            "task assigned"
        );
        let how = match (reassigned, waited) {
            (true, _) => Transfer::From {
                old: None,
                reason: Some(REASSIGNED_REASON),
            },
            (false, true) => Transfer::Waited,
            (false, false) => Transfer::AtOnce,
        };
        on_assigned(inner, task, &agent, how).await;
    }
}

async fn tell_positions(inner: &Inner) -> Result<(), StoreError> {
    let waiting = inner.store.waiting_tasks().await?;
    let live: HashSet<i64> = waiting.iter().map(|t| t.id).collect();
    inner.queue.told.retain(|id, _| live.contains(id));
    for (i, task) in waiting.iter().enumerate() {
        let position = i + 1;
        if inner.queue.told.get(&task.id).map(|p| *p) == Some(position) {
            continue;
        }
        inner.queue.told.insert(task.id, position);
        let text = format!("All our agents are busy; you are number {position} in line.");
        let ext = json!({"event": "queued", "queue_position": position});
        system_message(inner, task.id, &task.customer_id, "toast", text, ext).await;
    }
    Ok(())
}

/// The online, available agent below capacity with the fewest open tasks.
async fn pick_agent(inner: &Inner) -> Result<Option<String>, StoreError> {
    let agents = inner.store.agents().await?;
    let available: Vec<String> = agents
        .into_iter()
        .filter(|a| a.status == AVAILABLE)
        .map(|a| a.id)
        .collect();
    if available.is_empty() {
        return Ok(None);
    }
    let online = online(inner, &available).await;
    let counts = inner.store.open_task_counts().await?;
    Ok(available
        .into_iter()
        .filter(|a| online.contains(a))
        .map(|a| (counts.get(&a).copied().unwrap_or(0), a))
        .filter(|(n, _)| *n < inner.config.max_tasks_per_agent)
        .min()
        .map(|(_, a)| a))
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

/// How a task came to its agent.
#[derive(Clone, Copy)]
enum Transfer<'a> {
    /// Taken from the queue the moment it opened.
    AtOnce,
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
/// the customer wrote while waiting. A task taken at once needs no notice:
/// the customer's message itself reaches the agent. A customer who waited
/// hears who took them; a transfer is told to every side.
async fn on_assigned(inner: &Inner, task: &task::Model, agent: &str, how: Transfer<'_>) {
    if let Transfer::AtOnce = how {
        return hand_over_waiting_messages(inner, task.id).await;
    }
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
    match inner.store.claim_waiting_messages(task_id, &agent).await {
        Ok(claimed) => {
            for m in claimed {
                push_stored(inner, &m, vec![agent.clone()]).await;
            }
        }
        Err(e) => tracing::error!(error = %e, task_id, "cannot hand over waiting messages"),
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
    inner: &Inner,
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
    let open = inner.store.open_task_counts().await.map_err(store_error)?;
    if open.get(to_agent).copied().unwrap_or(0) >= inner.config.max_tasks_per_agent {
        return Err(ProtocolError::new(
            ErrorCode::Conflict,
            "that agent is full",
        ));
    }
    inner
        .store
        .assign_task_within(
            task_id,
            to_agent,
            task.agent_id.as_deref(),
            Some(inner.config.max_tasks_per_agent),
        )
        .await
        .map_err(store_error)?;
    inner.tasks.forget(&task);
    inner.queue.told.remove(&task_id);
    tracing::info!(task_id, from = ?task.agent_id, to = to_agent, "task transferred");
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
    assign_waiting(inner).await;
    Ok(json!({"task_id": task_id, "agent_id": to_agent, "status": OPEN}))
}

pub(crate) async fn end(
    inner: &Inner,
    sender: &Sender,
    task_id: i64,
) -> Result<serde_json::Value, ProtocolError> {
    let task = managed_task(inner, sender, task_id).await?;
    inner.store.end_task(task_id).await.map_err(store_error)?;
    inner.tasks.forget(&task);
    inner.queue.told.remove(&task_id);
    tracing::info!(task_id, "task ended");
    let ext = json!({"event": "assess", "task_id": task_id, "scores": [1, 2, 3, 4, 5]});
    let text = "This conversation has ended. How would you rate our service?".to_owned();
    system_message(inner, task_id, &task.customer_id, "assess", text, ext).await;
    assign_waiting(inner).await;
    Ok(json!({"task_id": task_id, "status": ENDED}))
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
