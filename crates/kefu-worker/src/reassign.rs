//! Reassignment: a task whose agent has had no connection for
//! `reassign_offline_after`, or whose customer's message has waited
//! `reassign_unanswered_after` for an answer, goes back to the queue, ahead
//! of everyone who came later (to another agent when one has room), and
//! both the customer and the agent are told (`ext.event` `reassigned`). The
//! next agent to take it is told why.
//!
//! Every worker sweeps every open task; putting a task back is a
//! conditional update, so when two workers sweep at once only one wins.
//! How long an agent has been offline is each worker's own observation, so
//! a worker that restarts starts counting again.

use crate::dispatch::Event;
use crate::notices::system_message;
use crate::{tasks, Inner};
use kefu_store::entity::task;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts the sweep, unless reassignment is off (a zero duration).
pub(crate) fn start(inner: Arc<Inner>) {
    let after = inner.config.reassign_offline_after;
    every_quarter_of(
        after,
        inner,
        |inner, seen: &mut HashMap<String, Instant>| {
            Box::pin(async move { sweep(&inner, inner.config.reassign_offline_after, seen).await })
        },
    );
}

/// A sweep's state between rounds, and one round.
pub(crate) type Round<S> =
    fn(Arc<Inner>, &mut S) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;

/// Runs `round` every quarter of `after` (200 ms to 30 s), with state kept
/// between rounds; nothing when `after` is zero (the feature is off).
pub(crate) fn every_quarter_of<S: Default + Send + 'static>(
    after: Duration,
    inner: Arc<Inner>,
    round: Round<S>,
) {
    if after.is_zero() {
        return;
    }
    let every = (after / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
    let lifecycle = inner.lifecycle.clone();
    lifecycle.spawn_loop(async move {
        let mut state = S::default();
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            if inner.store.reachable() {
                round(inner.clone(), &mut state).await;
            }
        }
    });
}

async fn sweep(inner: &Arc<Inner>, after: Duration, offline_since: &mut HashMap<String, Instant>) {
    let agents: Vec<String> = match inner.store.open_task_counts().await {
        Ok(counts) => counts.into_keys().collect(),
        Err(e) => return tracing::warn!(error = %e, "reassignment: cannot list agents"),
    };
    // Without the register, nobody can be told offline: skip the round.
    let online: HashSet<String> = match inner.register.locate(&agents).await {
        Ok(locations) => locations.into_iter().map(|l| l.user_id).collect(),
        Err(e) => return tracing::warn!(error = %e, "reassignment: register unavailable"),
    };
    let offline: HashSet<&String> = agents.iter().filter(|a| !online.contains(*a)).collect();
    offline_since.retain(|agent, _| offline.contains(agent));
    let now = Instant::now();
    let mut gone = Vec::new();
    for agent in offline {
        let since = *offline_since.entry(agent.clone()).or_insert(now);
        if now.duration_since(since) >= after {
            gone.push(agent.clone());
        }
    }
    for agent in gone {
        offline_since.remove(&agent);
        requeue_all(inner, &agent, after).await;
    }
}

/// Puts every open task of `agent` back in the queue and tells both sides.
async fn requeue_all(inner: &Arc<Inner>, agent: &str, after: Duration) {
    let open = match inner.store.open_tasks_of(agent).await {
        Ok(open) => open,
        Err(e) => return tracing::warn!(error = %e, agent, "reassignment: cannot list tasks"),
    };
    for task in open {
        put_back(inner, &task, agent, Why::Offline(after)).await;
    }
}

/// Why a task goes back to the queue.
#[derive(Clone, Copy)]
enum Why {
    /// Its agent has had no connection for this long.
    Offline(Duration),
    /// Its customer has waited this long for an answer.
    Unanswered(Duration),
}

/// Puts one open task of `agent` back in the queue, unless it changed
/// meanwhile, and tells the customer and the agent why.
async fn put_back(inner: &Arc<Inner>, task: &task::Model, agent: &str, why: Why) {
    if inner.store.requeue_task(task.id, agent).await.is_err() {
        return; // taken back, ended or moved by someone else meanwhile
    }
    inner.tasks.forget(task);
    let (reason, log) = match why {
        Why::Offline(_) => ("its agent went offline", "its agent is offline"),
        Why::Unanswered(_) => (
            "its customer was waiting for an answer",
            "its customer waited too long for an answer",
        ),
    };
    tracing::info!(task_id = task.id, agent, "task reassigned: {log}");
    // Queued before the agent's slot is freed, so the slot cannot go to
    // someone behind it in line, nor the task straight back to them.
    let queued = Event::Queued {
        task_id: task.id,
        reason: Some(reason.to_owned()),
        from: Some(agent.to_owned()),
    };
    inner.dispatch.send(inner, queued).await;
    tasks::released(inner, 0, Some(agent)).await;

    let ids = [task.customer_id.clone(), agent.to_owned()];
    let names: HashMap<String, String> = inner
        .store
        .users(&ids)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|u| !u.name.is_empty())
        .map(|u| (u.id, u.name))
        .collect();
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let ext = json!({"event": "reassigned", "task_id": task.id,
        "customer_id": task.customer_id, "from_agent": agent});
    let (to_customer, to_agent) = match why {
        Why::Offline(after) => (
            format!(
                "{} is not available right now; we are finding you another agent.",
                name(agent)
            ),
            format!(
                "The conversation with {} went back to the queue: you were offline for {}.",
                name(&task.customer_id),
                humanize(after)
            ),
        ),
        Why::Unanswered(after) => (
            "Sorry for the wait; we are finding you another agent.".to_owned(),
            format!(
                "The conversation with {} went back to the queue: their message waited {} \
                 for an answer.",
                name(&task.customer_id),
                humanize(after)
            ),
        ),
    };
    let customer = &task.customer_id;
    system_message(inner, task.id, customer, "toast", to_customer, ext.clone()).await;
    system_message(inner, task.id, agent, "toast", to_agent, ext).await;
}

/// Starts the sweep of unanswered customers, unless it is off.
pub(crate) fn start_unanswered(inner: Arc<Inner>) {
    let after = inner.config.reassign_unanswered_after;
    every_quarter_of(after, inner, |inner, (): &mut ()| {
        Box::pin(async move { sweep_unanswered(&inner).await })
    });
}

/// Every open task whose customer has waited `reassign_unanswered_after`
/// for an answer goes back to the queue, to another agent if one has room.
/// Like the offline sweep, every worker runs it; putting back is
/// conditional, so only one wins.
async fn sweep_unanswered(inner: &Arc<Inner>) {
    let after = inner.config.reassign_unanswered_after;
    let cutoff = kefu_protocol::now_ms() - after.as_millis() as i64;
    let unanswered = match inner.store.unanswered_tasks(cutoff).await {
        Ok(tasks) => tasks,
        Err(e) => return tracing::debug!(error = %e, "reassignment: cannot read unanswered tasks"),
    };
    for task in unanswered {
        if let Some(agent) = task.agent_id.clone() {
            put_back(inner, &task, &agent, Why::Unanswered(after)).await;
        }
    }
}

/// A duration as a notice says it: "45 s", "5 min".
pub(crate) fn humanize(d: Duration) -> String {
    match d.as_secs() {
        s if s < 60 => format!("{s} s"),
        s => format!("{} min", s / 60),
    }
}
