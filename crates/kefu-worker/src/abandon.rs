//! Abandoned waits: a waiting task whose customer has had no connection for
//! `queue_abandon_after` leaves the queue, so customers who left do not
//! hold a place ahead of those still waiting ("you are number 142 in line"
//! behind throwaway visitors). The task ends with a notice the customer
//! sees if they come back; writing again opens a new task.
//!
//! Like reassignment, every worker sweeps the whole queue; ending a task is
//! a conditional update (only a task still waiting), so when two workers
//! sweep at once only one ends it, and a task assigned meanwhile is left
//! alone. How long a customer has been gone is each worker's own
//! observation.

use crate::notices::system_message;
use crate::{tasks, Inner};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts the sweep, unless it is off (a zero duration).
pub(crate) fn start(inner: Arc<Inner>) {
    let after = inner.config.queue_abandon_after;
    crate::reassign::every_quarter_of(after, inner, |inner, gone: &mut HashMap<i64, Instant>| {
        Box::pin(async move { sweep(&inner, inner.config.queue_abandon_after, gone).await })
    });
}

async fn sweep(inner: &Arc<Inner>, after: Duration, gone_since: &mut HashMap<i64, Instant>) {
    let waiting = match inner.store.waiting_tasks().await {
        Ok(waiting) => waiting,
        Err(e) => return tracing::debug!(error = %e, "abandoned waits: cannot read the queue"),
    };
    let customers: Vec<String> = waiting.iter().map(|t| t.customer_id.clone()).collect();
    // Without the register nobody can be told gone: skip the round.
    let online: HashSet<String> = match inner.register.locate(&customers).await {
        Ok(locations) => locations.into_iter().map(|l| l.user_id).collect(),
        Err(_) => return,
    };
    let now = Instant::now();
    let gone: Vec<_> = waiting
        .into_iter()
        .filter(|t| !online.contains(&t.customer_id))
        .collect();
    let gone_ids: HashSet<i64> = gone.iter().map(|t| t.id).collect();
    gone_since.retain(|id, _| gone_ids.contains(id));
    for task in gone {
        let since = *gone_since.entry(task.id).or_insert(now);
        if now.duration_since(since) < after {
            continue;
        }
        gone_since.remove(&task.id);
        match inner.store.abandon_waiting_task(task.id).await {
            Ok(true) => {}
            // Assigned, ended or abandoned by another worker meanwhile.
            Ok(false) => continue,
            Err(e) => {
                tracing::debug!(error = %e, task_id = task.id, "abandoned waits: cannot end");
                continue;
            }
        }
        inner.tasks.forget(&task);
        tasks::released(inner, task.id, None).await;
        tracing::info!(
            task_id = task.id,
            customer = %task.customer_id,
            "task left the queue: its customer has been gone for {}",
            crate::reassign::humanize(after)
        );
        let ext = json!({"event": "abandoned", "task_id": task.id});
        let text = "You left the queue while you were away. Write again and we will find \
                    you an agent."
            .to_owned();
        system_message(inner, task.id, &task.customer_id, "toast", text, ext).await;
    }
}
