//! The dispatcher on the worker that owns it: the index, the writes that
//! follow its decisions, and the queue-position notices.
//!
//! Decisions are made under one short lock on the index; the database
//! writes, the notices and the hand-over of waiting messages run after it,
//! so a customer's first message never waits for other customers'
//! assignments or notices. Positions are told by one task that wakes when
//! the queue moved and tells each change once, lowest last.

use super::index::{Agent, Index, Place, Waiting};
use super::{Event, Outcome};
use crate::notices::{self, Transfer};
use crate::Inner;
use futures::StreamExt;
use kefu_store::entity::task;
use kefu_store::messages::QUEUE_PLACE;
use kefu_store::tasks::{Assigned, WAITING};
use kefu_store::users::AVAILABLE;
use kefu_store::writer::Assignment;
use kefu_store::NewTask;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How long an event waits for a dispatcher that is reading its index.
const TAKING_OVER: Duration = Duration::from_secs(5);
/// How often the dispatcher compares its index with the database; the
/// first times come sooner, for events sent to the previous dispatcher
/// while the ring moved.
const RECONCILE: Duration = Duration::from_secs(5);
const RECONCILE_FIRST: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// A waiting task younger than this may still be on its way into the
/// index; reconciling leaves it to the event that opens it.
const SETTLE_MS: i64 = 2_000;
/// How long positions wait for opens still being written.
const SETTLING: Duration = Duration::from_millis(500);
/// Queue-position notices written at once.
const TELLING: usize = 64;

enum State {
    /// Not the dispatcher.
    Off,
    /// Reading the index from the database.
    Building,
    Ready(Box<Index>),
}

pub(crate) struct Owner {
    capacity: i64,
    state: Mutex<State>,
    /// Bumped at every take-over and resignation; the loops of an older
    /// term stop.
    term: AtomicU64,
    ready: Notify,
    tell: Notify,
    /// A wait told to an open was written (or failed): the index may have
    /// stopped settling.
    waits_written: Notify,
}

impl Owner {
    pub(crate) fn new(capacity: i64) -> Owner {
        Owner {
            capacity,
            state: Mutex::new(State::Off),
            term: AtomicU64::new(0),
            ready: Notify::new(),
            tell: Notify::new(),
            waits_written: Notify::new(),
        }
    }

    /// Runs `f` on the index; None unless this worker is the dispatcher
    /// and has read its index.
    fn with<T>(&self, f: impl FnOnce(&mut Index) -> T) -> Option<T> {
        match &mut *self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Ready(index) => Some(f(index)),
            _ => None,
        }
    }

    /// Waits, a while, for the index when it is being read; false when this
    /// worker is not the dispatcher.
    async fn ready(&self) -> bool {
        let deadline = tokio::time::Instant::now() + TAKING_OVER;
        loop {
            let notified = self.ready.notified();
            match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
                State::Off => return false,
                State::Ready(_) => return true,
                State::Building => {}
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// This worker became the dispatcher: read the index, then serve.
    pub(crate) fn take_over(&self, inner: Arc<Inner>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = State::Building;
        let term = self.term.fetch_add(1, Ordering::SeqCst) + 1;
        let lifecycle = inner.lifecycle.clone();
        lifecycle.spawn_loop(async move {
            let owner = &inner.dispatch.owner;
            loop {
                if owner.term.load(Ordering::SeqCst) != term {
                    return;
                }
                match read_index(&inner, owner.capacity).await {
                    Ok(index) => break owner.install(term, index),
                    Err(e) => {
                        tracing::warn!(error = %e, "dispatcher cannot read the queue; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            tracing::info!(
                waiting = owner.with(|i| i.waiting()).unwrap_or(0),
                "dispatcher ready"
            );
            owner.run(&inner);
            inner
                .lifecycle
                .spawn_loop(tell_positions(inner.clone(), term));
            reconcile(&inner, term).await;
        });
    }

    fn install(&self, term: u64, index: Index) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if self.term.load(Ordering::SeqCst) == term {
            *state = State::Ready(Box::new(index));
        }
        drop(state);
        self.ready.notify_waiters();
    }

    /// Another worker is the dispatcher now.
    pub(crate) fn resign_if_owner(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*state, State::Off) {
            return;
        }
        *state = State::Off;
        self.term.fetch_add(1, Ordering::SeqCst);
        drop(state);
        tracing::info!("this worker is no longer the dispatcher");
        self.ready.notify_waiters();
        self.tell.notify_one();
        self.waits_written.notify_waiters();
    }

    pub(crate) async fn handle(&self, inner: &Arc<Inner>, event: Event) -> Outcome {
        if !self.ready().await {
            return Outcome::NotOwner;
        }
        let outcome = match event {
            Event::Open {
                customer,
                name,
                shard,
                client_ip,
                again,
            } => {
                if again {
                    match inner.store.live_task_of(&customer).await {
                        Ok(Some(task)) => return Outcome::Opened(task),
                        Ok(None) => {}
                        Err(e) => return Outcome::Failed(e.to_string()),
                    }
                }
                let new = NewTask {
                    customer,
                    name,
                    shard,
                    agent: None,
                    client_ip,
                    capacity: Some(self.capacity),
                };
                self.open(inner, new).await
            }
            Event::Reserve { agent } => self.with(|i| Outcome::Reserved(i.reserve(&agent))),
            Event::Released { task_id, agent } => self.with(|i| {
                if let Some(agent) = &agent {
                    i.release(agent);
                }
                i.dequeue(task_id);
                Outcome::Done
            }),
            Event::Queued {
                task_id,
                reason,
                from,
            } => self.queued(inner, task_id, reason, from).await,
            Event::AgentChanged { agent } => self.agent_changed(inner, &agent).await,
        };
        self.run(inner);
        outcome.unwrap_or(Outcome::NotOwner)
    }

    async fn open(&self, inner: &Inner, new: NewTask) -> Option<Outcome> {
        let agent = self.with(Index::open)?;
        let new = NewTask {
            agent: agent.clone(),
            ..new
        };
        let written = inner.task_writer.open_task(new).await;
        let task = match written {
            Ok(task) => task,
            Err(e) => {
                self.with(|i| match &agent {
                    Some(agent) => i.release(agent),
                    None => i.waited(None),
                });
                self.waits_written.notify_waiters();
                return Some(Outcome::Failed(e.to_string()));
            }
        };
        self.with(|i| match (&agent, &task.agent_id) {
            (Some(_), Some(_)) => {}
            // The database found the agent full: the index was behind.
            (Some(agent), None) => {
                i.full(agent);
                i.enqueue(place_of(&task), waiting_of(&task, None));
            }
            (None, _) => i.waited(Some((place_of(&task), waiting_of(&task, None)))),
        });
        self.waits_written.notify_waiters();
        tracing::info!(task_id = task.id, customer = %task.customer_id, agent = ?task.agent_id, "task opened");
        Some(Outcome::Opened(task))
    }

    async fn queued(
        &self,
        inner: &Inner,
        task_id: i64,
        reason: Option<String>,
        from: Option<String>,
    ) -> Option<Outcome> {
        let task = match inner.store.task(task_id).await {
            Ok(task) => task,
            Err(e) => return Some(Outcome::Failed(e.to_string())),
        };
        self.with(|i| {
            if let Some(task) = task.filter(|t| t.status == WAITING) {
                let waiting = Waiting {
                    avoid: from,
                    ..waiting_of(&task, reason)
                };
                i.enqueue(place_of(&task), waiting);
            }
            Outcome::Done
        })
    }

    async fn agent_changed(&self, inner: &Inner, agent: &str) -> Option<Outcome> {
        let user = match inner.store.user(agent).await {
            Ok(user) => user,
            Err(e) => return Some(Outcome::Failed(e.to_string())),
        };
        let Some(user) = user.filter(|u| u.role == "agent") else {
            return Some(Outcome::Done);
        };
        let online = match inner.register.locate(&[agent.to_owned()]).await {
            Ok(locations) => Some(!locations.is_empty()),
            // Kept as it was; the next reconcile reads it again.
            Err(_) => None,
        };
        self.with(|i| {
            let mut known = i.agent(agent);
            known.available = user.status == AVAILABLE && !user.disabled;
            known.online = online.unwrap_or(known.online);
            i.put(agent, known);
            Outcome::Done
        })
    }

    /// Makes every assignment the index allows now; the writes and notices
    /// run on their own.
    fn run(&self, inner: &Arc<Inner>) {
        let Some(batch) = self.with(Index::assignments) else {
            return;
        };
        for (place, waiting, agent) in batch {
            inner
                .lifecycle
                .spawn(assign(inner.clone(), place, waiting, agent));
        }
        self.tell.notify_one();
    }
}

/// Writes one assignment the index made, and tells both sides; undoes it
/// in the index when the database says otherwise.
async fn assign(inner: Arc<Inner>, place: Place, waiting: Waiting, agent: String) {
    let owner = &inner.dispatch.owner;
    let task_id = waiting.task_id;
    let written = inner
        .task_writer
        .assign_task(Assignment {
            task_id,
            agent: agent.clone(),
            from: None,
            capacity: Some(owner.capacity),
        })
        .await;
    match written {
        Ok(Assigned::Yes) => {}
        Ok(Assigned::AgentFull) => {
            owner.with(|i| {
                i.full(&agent);
                i.enqueue(place, waiting);
            });
            return owner.run(&inner);
        }
        // Ended or taken meanwhile: the slot is free again.
        Ok(Assigned::TaskMoved) => {
            owner.with(|i| i.release(&agent));
            return owner.run(&inner);
        }
        Err(e) => {
            // Left in the queue; the next event or reconcile tries again.
            tracing::warn!(error = %e, task_id, agent, "cannot assign a waiting task");
            owner.with(|i| {
                i.release(&agent);
                i.enqueue(place, waiting);
            });
            return;
        }
    }
    let reassigned = waiting.reason.is_some();
    tracing::info!(task_id, agent, reassigned, "task assigned from the queue");
    let task = task::Model {
        id: task_id,
        customer_id: waiting.customer_id,
        agent_id: Some(agent.clone()),
        status: kefu_store::tasks::OPEN.into(),
        created_at: place.0,
        ended_at: None,
        rating_score: None,
        rating_comment: None,
        client_ip: None,
    };
    let how = match &waiting.reason {
        Some(reason) => Transfer::From {
            old: None,
            reason: Some(reason),
        },
        None => Transfer::Waited,
    };
    notices::on_assigned(&inner, &task, &agent, how).await;
}

fn place_of(task: &task::Model) -> Place {
    (task.created_at, task.id)
}

fn waiting_of(task: &task::Model, reason: Option<String>) -> Waiting {
    Waiting {
        task_id: task.id,
        customer_id: task.customer_id.clone(),
        reason,
        avoid: None,
    }
}

/// The index as the database and the register say: every agent's status,
/// presence and open tasks, and the waiting tasks.
async fn read_index(inner: &Inner, capacity: i64) -> Result<Index, String> {
    let (agents, waiting) = read_truth(inner).await?;
    let ids: Vec<i64> = waiting.iter().map(|(_, w)| w.task_id).collect();
    let told = inner
        .store
        .queue_places_told(&ids)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Index::rebuilt(capacity, agents, waiting, &told))
}

type Truth = (Vec<(String, Agent)>, Vec<(Place, Waiting)>);

async fn read_truth(inner: &Inner) -> Result<Truth, String> {
    let failed = |e: &dyn std::fmt::Display| e.to_string();
    let users = inner.store.agents().await.map_err(|e| failed(&e))?;
    let counts = inner
        .store
        .open_task_counts()
        .await
        .map_err(|e| failed(&e))?;
    let waiting = inner.store.waiting_tasks().await.map_err(|e| failed(&e))?;
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let online: HashSet<String> = inner
        .register
        .locate(&ids)
        .await
        .map_err(|e| failed(&e))?
        .into_iter()
        .map(|l| l.user_id)
        .collect();
    let agents = users
        .into_iter()
        .map(|u| {
            let agent = Agent {
                load: counts.get(&u.id).copied().unwrap_or(0),
                available: u.status == AVAILABLE && !u.disabled,
                online: online.contains(&u.id),
            };
            (u.id, agent)
        })
        .collect();
    let waiting = waiting
        .iter()
        .map(|t| (place_of(t), waiting_of(t, None)))
        .collect();
    Ok((agents, waiting))
}

/// Every [`RECONCILE`], compares the index with the database: presence and
/// status are taken as read; loads too when nothing changed in the index
/// while it read (otherwise a reservation not yet written would be lost);
/// waiting tasks the index does not hold are queued (one opened by a worker
/// that could not reach the dispatcher).
async fn reconcile(inner: &Arc<Inner>, term: u64) {
    let owner = &inner.dispatch.owner;
    let mut waits = RECONCILE_FIRST
        .into_iter()
        .chain(std::iter::repeat(RECONCILE));
    loop {
        tokio::time::sleep(waits.next().unwrap_or(RECONCILE)).await;
        if owner.term.load(Ordering::SeqCst) != term {
            return;
        }
        if !inner.store.reachable() {
            continue;
        }
        let Some(before) = owner.with(|i| i.generation) else {
            return;
        };
        let (agents, waiting) = match read_truth(inner).await {
            Ok(truth) => truth,
            Err(e) => {
                tracing::debug!(error = %e, "dispatcher cannot reconcile");
                continue;
            }
        };
        let settled = kefu_protocol::now_ms() - SETTLE_MS;
        owner.with(|i| {
            let quiet = i.generation == before;
            for (id, read) in agents {
                let mut agent = i.agent(&id);
                agent.online = read.online;
                agent.available = read.available;
                if quiet {
                    agent.load = read.load;
                }
                i.put(&id, agent);
            }
            for (place, waiting) in waiting {
                if place.0 < settled && !i.is_queued(waiting.task_id) {
                    i.enqueue(place, waiting);
                }
            }
        });
        owner.run(inner);
    }
}

/// Tells waiting customers their place in line, each change once, as the
/// queue moves; changes that come while a round is being written are told
/// in the next round.
async fn tell_positions(inner: Arc<Inner>, term: u64) {
    let owner = &inner.dispatch.owner;
    loop {
        owner.tell.notified().await;
        if owner.term.load(Ordering::SeqCst) != term {
            return;
        }
        // Waits written at once may land in the queue in another order
        // than they are written: tell once they are all in place (or once
        // arrivals have gone on for SETTLING, so nobody waits unheard).
        let settle_by = tokio::time::Instant::now() + SETTLING;
        loop {
            let written = owner.waits_written.notified();
            tokio::pin!(written);
            // Registered before the check, so a write in between is not missed.
            written.as_mut().enable();
            if owner.with(|i| i.settling()) != Some(true) {
                break;
            }
            if tokio::time::timeout_at(settle_by, written).await.is_err() {
                break;
            }
        }
        let Some(tells) = owner.with(Index::positions_to_tell) else {
            return;
        };
        futures::stream::iter(tells)
            .for_each_concurrent(TELLING, |tell| {
                let inner = &inner;
                async move {
                    let position = tell.position;
                    let text =
                        format!("All our agents are busy; you are number {position} in line.");
                    let ext = json!({"event": "queued", QUEUE_PLACE: position});
                    notices::system_message(
                        inner,
                        tell.task_id,
                        &tell.customer_id,
                        "toast",
                        text,
                        ext,
                    )
                    .await;
                }
            })
            .await;
    }
}
