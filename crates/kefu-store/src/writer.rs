//! Group commit: many new messages per transaction, each answered only after
//! its row is committed.
//!
//! One writer task per store drains its queue into a batch, inserts the
//! messages whose `(sender, client_msg_id)` is not stored yet (a resend gets
//! the first row back) with their undelivered marks in one transaction,
//! deletes the marks of the receipts queued meanwhile, commits, then answers
//! every job in the order it was queued. Receipts that come alone while
//! messages are flowing wait a moment (`Hold`) for a message to share its
//! commit. If the batch fails (on MySQL, a race on the unique index with
//! another worker), each job is retried alone so one bad row cannot fail
//! its neighbours.
//!
//! A batch is written by `direct` (SQLite, on the writer's own connection)
//! or `pool` (through the store's pool), from the statements of `sql` and
//! with the dedup and answers of `batch`.

use crate::entity::{message, task};
use crate::tasks::Assigned;
use crate::{Result, Store, StoreError};
use sea_orm::DbBackend;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};

mod batch;
mod direct;
mod pool;
mod sql;
mod wal_sync;

pub(crate) use sql::new_task_row;

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub task_id: i64,
    pub sender: String,
    pub recipient: String,
    pub category: String,
    pub style: String,
    pub kind: String,
    pub content: String,
    pub url: Option<String>,
    pub quote: Option<i64>,
    pub ext: Option<String>,
    pub client_msg_id: Option<String>,
    pub created_at: i64,
    /// Users who have not received it yet: it waits for them in
    /// `/api/offline` until one of their devices confirms it.
    pub undelivered_for: Vec<String>,
}

/// A committed message; `duplicate` when the row existed before this write.
#[derive(Debug, Clone)]
pub struct Written {
    pub message: message::Model,
    pub duplicate: bool,
}

/// A task to open for a customer's first message.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub customer: String,
    /// Recorded as the customer's name (an agent's row is left alone).
    pub name: String,
    pub shard: u32,
    /// Assigned at once, or waiting (None).
    pub agent: Option<String>,
    pub client_ip: Option<String>,
    /// With an agent: open it waiting instead when they already hold this
    /// many open tasks (checked on their locked row; not on SQLite, whose
    /// one writer makes opens take turns).
    pub capacity: Option<i64>,
}

/// Where a job's caller waits for its result.
type Answer<T> = oneshot::Sender<Result<T>>;

enum Job {
    Message {
        message: Box<NewMessage>,
        reply: Answer<Written>,
    },
    Open {
        task: Box<NewTask>,
        reply: Answer<task::Model>,
    },
    /// Writes of the store's callers (SQLite only), in one transaction.
    Guarded {
        steps: Vec<Guarded>,
        reply: Answer<Vec<u64>>,
    },
    /// A device of `user` received these messages.
    Confirm { user: String, ids: Vec<i64> },
}

/// A task to give to an agent: a waiting one (`from` None) or one moving
/// from agent `from`; see [`Store::try_assign_task`].
#[derive(Debug, Clone)]
pub struct Assignment {
    pub task_id: i64,
    pub agent: String,
    pub from: Option<String>,
    pub capacity: Option<i64>,
}

/// One step of a guarded write: `change`, then `then` only if `change`
/// touched a row.
pub(crate) struct Guarded {
    change: sea_orm::Statement,
    then: Option<sea_orm::Statement>,
}

/// Handle to the group-commit task.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// On SQLite the task writes below run on the writer's connection
    /// too; on a server database they go to this store straight, beside
    /// the batches, as its row locks make them take turns.
    store: Store,
}

/// Answer to one enqueued message, resolved after commit.
pub type Pending = oneshot::Receiver<Result<Written>>;

impl Writer {
    /// Starts the writer; it stops when every handle is dropped, after
    /// committing what was queued.
    ///
    /// The writer gets a thread of its own and a connection of its own. On
    /// SQLite it runs its statements as calls on that thread
    /// (`writer/direct.rs`): through the pool, a batch was a dozen round
    /// trips to the thread of an sqlx connection. On a server database the
    /// thread's runtime opens the connection and drives its socket: on the
    /// shared runtime each of a batch's dozen answers waited its turn
    /// behind every connection's tasks, and a batch of a busy worker took
    /// twice as long (docs/benchmarks.md, ninth session).
    pub fn start(store: Store, max_batch: usize) -> Writer {
        Self::start_on(store, max_batch, true)
    }

    /// Like [`Writer::start`]; `direct: false` keeps an SQLite writer on
    /// the pool, as when its own connection cannot be opened.
    pub(crate) fn start_on(store: Store, max_batch: usize, direct: bool) -> Writer {
        Self::start_holding(store, max_batch, direct, Hold::DEFAULT)
    }

    /// Like [`Writer::start_on`], receipts held as `hold` says.
    pub(crate) fn start_holding(
        store: Store,
        max_batch: usize,
        direct: bool,
        hold: Hold,
    ) -> Writer {
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let backend = store.backend();
        let handle_store = store.clone();
        // Its own SQLite connection blocks the thread it runs on, so the
        // task gets one only on a thread of its own.
        let task =
            move |own_thread: bool| run(store, direct && own_thread, rx, max_batch.max(1), hold);
        if !direct && backend != DbBackend::Sqlite {
            tokio::spawn(task(false));
        } else if let Err((e, task)) = own_thread(task) {
            tracing::warn!(error = %e, "no thread for the writer; it shares the runtime");
            tokio::spawn(task(false));
        }
        Writer {
            tx,
            store: handle_store,
        }
    }

    /// Queues a message. Messages queued by one caller are committed in that
    /// order, so their ids increase in that order.
    pub async fn enqueue(&self, message: NewMessage) -> Result<Pending> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Message {
                message: Box::new(message),
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(rx)
    }

    /// Queues a delivery receipt: the messages leave `user`'s undelivered
    /// set in the next transaction. Receipts are frequent and need no
    /// answer, so they ride along with the messages' commits, waiting up to
    /// 2 ms for one while messages are flowing (`Hold`).
    pub async fn confirm(&self, user: &str, ids: Vec<i64>) -> Result<()> {
        self.tx
            .send(Job::Confirm {
                user: user.to_owned(),
                ids,
            })
            .await
            .map_err(|_| StoreError::WriterStopped)
    }

    /// Opens a task (and records its customer) in one transaction with the
    /// other tasks opened meanwhile, one commit for them all. On SQLite the
    /// transaction runs on the writer's own connection: on another it would
    /// wait for the writer's lock, in SQLite's busy sleeps, behind every
    /// message batch.
    pub async fn open_task(&self, task: NewTask) -> Result<task::Model> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Open {
                task: Box::new(task),
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        rx.await.map_err(|_| StoreError::WriterStopped)?
    }

    // The task writes of a hand-off from the queue (end, assign, hand over
    // the waiting messages). On SQLite they run on the writer's connection
    // between its batches, for the reason opens do: on a connection of the
    // pool each waited for the writer's lock in SQLite's busy sleeps, 2 to
    // 55 ms for an end, most of a hand-off's time.

    /// Gives a task to an agent: [`Store::try_assign_task`]. (SQLite checks
    /// no capacity: its one dispatcher makes assignments take turns.)
    pub async fn assign_task(&self, a: Assignment) -> Result<Assigned> {
        if !self.store.is_sqlite() {
            return self
                .store
                .try_assign_task(a.task_id, &a.agent, a.from.as_deref(), a.capacity)
                .await;
        }
        let b = DbBackend::Sqlite;
        let now = kefu_protocol::now_ms();
        let step = Guarded {
            change: crate::tasks::assign_statement(b, a.task_id, &a.agent, a.from.as_deref()),
            then: Some(crate::tasks::task_agent_statement(
                b, a.task_id, &a.agent, now,
            )),
        };
        Ok(match self.guarded(vec![step]).await?[..] {
            [0] => Assigned::TaskMoved,
            _ => Assigned::Yes,
        })
    }

    /// Ends a live task: [`Store::end_task`].
    pub async fn end_task(&self, id: i64) -> Result<()> {
        if !self.store.is_sqlite() {
            return self.store.end_task(id).await;
        }
        let step = Guarded {
            change: crate::tasks::end_statement(DbBackend::Sqlite, id, kefu_protocol::now_ms()),
            then: None,
        };
        match self.guarded(vec![step]).await?[..] {
            [0] => Err(crate::tasks::not_live(id)),
            _ => Ok(()),
        }
    }

    /// Gives the task's agent the messages stored while it waited:
    /// [`Store::claim_waiting_messages`].
    pub async fn claim_waiting_messages(
        &self,
        task_id: i64,
        agent: &str,
    ) -> Result<Vec<message::Model>> {
        if !self.store.is_sqlite() {
            return self.store.claim_waiting_messages(task_id, agent).await;
        }
        let unclaimed = self.store.unclaimed_messages(task_id).await?;
        if unclaimed.is_empty() {
            return Ok(unclaimed);
        }
        let steps = unclaimed
            .iter()
            .map(|m| {
                let (change, then) =
                    crate::messages::claim_statements(DbBackend::Sqlite, m.id, agent);
                Guarded {
                    change,
                    then: Some(then),
                }
            })
            .collect();
        let changed = self.guarded(steps).await?;
        Ok(unclaimed
            .into_iter()
            .zip(changed)
            .filter(|(_, n)| *n > 0)
            .map(|(mut m, _)| {
                m.recipient = agent.to_owned();
                m
            })
            .collect())
    }

    async fn guarded(&self, steps: Vec<Guarded>) -> Result<Vec<u64>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Guarded { steps, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        rx.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Queues a message and waits for its commit.
    pub async fn write(&self, message: NewMessage) -> Result<Written> {
        self.enqueue(message)
            .await?
            .await
            .map_err(|_| StoreError::WriterStopped)?
    }
}

/// Runs the task `make(true)` on a new thread with a runtime of its own,
/// or gives `make` back.
fn own_thread<M, F>(make: M) -> std::result::Result<(), (std::io::Error, M)>
where
    M: FnOnce(bool) -> F + Send + 'static,
    F: std::future::Future<Output = ()>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Err((e, make)),
    };
    // The task moves into the thread only if the thread starts.
    let (give, take) = std::sync::mpsc::sync_channel::<M>(1);
    let spawned = std::thread::Builder::new()
        .name("kefu-writer".into())
        .spawn(move || {
            if let Ok(make) = take.recv() {
                runtime.block_on(make(true));
            }
        });
    match spawned {
        Ok(_) => {
            let _ = give.send(make);
            Ok(())
        }
        Err(e) => Err((e, make)),
    }
}

/// Where the writer's batches go.
enum Target {
    /// The store's pool: MySQL, PostgreSQL, or SQLite as a fallback.
    Pool(pool::Pool),
    /// The writer's own SQLite connection.
    Sqlite(direct::Direct),
}

impl Target {
    /// The writer's own connection to the store's SQLite file when `direct`
    /// and it opens, else the pool.
    async fn new(store: Store, direct: bool) -> Target {
        if direct {
            match store.writer_store().await {
                Some(Ok(own)) => return Target::Pool(pool::Pool::beside(own, &store).await),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the writer's own connection cannot be made; it uses the pool");
                }
                None => {}
            }
        }
        if let Some(file) = store.sqlite.as_ref().filter(|_| direct) {
            match direct::Direct::open(file) {
                Ok(conn) => return Target::Sqlite(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "the writer's SQLite connection did not open; it uses the pool");
                }
            }
        }
        Target::Pool(pool::Pool::new(store).await)
    }

    /// Opens tasks in one transaction, one result per task in order.
    async fn open(&mut self, tasks: &[NewTask]) -> Vec<Result<task::Model>> {
        match self {
            Target::Pool(pool) => pool.open_tasks(tasks).await,
            Target::Sqlite(conn) => match conn.open_tasks(tasks) {
                Ok(rows) => rows.into_iter().map(Ok).collect(),
                Err(e) => {
                    let e = e.to_string();
                    tasks
                        .iter()
                        .map(|_| Err(StoreError::Conflict(format!("cannot open the task: {e}"))))
                        .collect()
                }
            },
        }
    }

    /// Runs guarded steps in one transaction: rows changed per step.
    async fn guarded(&mut self, steps: &[Guarded]) -> Result<Vec<u64>> {
        match self {
            Target::Pool(pool) => pool.guarded(steps).await,
            Target::Sqlite(conn) => conn.guarded(steps),
        }
    }

    async fn write(
        &mut self,
        batch: &[&NewMessage],
        receipts: &[(String, Vec<i64>)],
    ) -> Result<Vec<Written>> {
        match self {
            Target::Pool(pool) => pool.write_batch(batch, receipts).await,
            Target::Sqlite(conn) => conn.write_batch(batch, receipts),
        }
    }
}

/// When receipts that come alone wait for a message to share its commit.
/// At a steady 2,000 messages a second nearly half the writer's commits
/// held receipts only, each with its own `fsync`, and the messages queued
/// behind them waited (docs/benchmarks.md). A receipt needs no answer; its
/// mark stays in `/api/offline` that much longer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hold {
    /// How long they wait at most.
    pub wait: Duration,
    /// They wait only while messages are flowing: a batch of them was
    /// committed this recently. Otherwise they are committed at once.
    pub flowing: Duration,
}

impl Hold {
    pub const DEFAULT: Hold = Hold {
        wait: Duration::from_millis(2),
        flowing: Duration::from_millis(20),
    };
}

/// The jobs of one transaction.
#[derive(Default)]
struct Batch {
    messages: Vec<NewMessage>,
    replies: Vec<Answer<Written>>,
    receipts: Vec<(String, Vec<i64>)>,
    opens: Vec<NewTask>,
    opened: Vec<Answer<task::Model>>,
    guarded: Vec<(Vec<Guarded>, Answer<Vec<u64>>)>,
}

impl Batch {
    fn add(&mut self, job: Job) {
        match job {
            Job::Message { message, reply } => {
                self.messages.push(*message);
                self.replies.push(reply);
            }
            Job::Confirm { user, ids } => self.receipts.push((user, ids)),
            Job::Open { task, reply } => {
                self.opens.push(*task);
                self.opened.push(reply);
            }
            Job::Guarded { steps, reply } => self.guarded.push((steps, reply)),
        }
    }

    /// Nothing but receipts, which could wait for more.
    fn receipts_only(&self) -> bool {
        self.messages.is_empty() && self.opens.is_empty() && self.guarded.is_empty()
    }

    /// Writes the batch and answers its jobs: tasks opened first, then the
    /// guarded steps, then the messages and receipts in one transaction.
    async fn commit(self, target: &mut Target) {
        let Batch {
            messages,
            replies,
            receipts,
            opens,
            opened,
            guarded,
        } = self;
        if !opens.is_empty() {
            for (reply, result) in opened.into_iter().zip(target.open(&opens).await) {
                let _ = reply.send(result);
            }
        }
        for (steps, reply) in guarded {
            let _ = reply.send(target.guarded(&steps).await);
        }
        if messages.is_empty() && receipts.is_empty() {
            return;
        }
        let batch: Vec<&NewMessage> = messages.iter().collect();
        let started = std::time::Instant::now();
        let result = target.write(&batch, &receipts).await;
        crate::metrics::BATCH_MESSAGES.observe(batch.len() as f64);
        crate::metrics::BATCH_SECONDS.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(written) => {
                for (reply, w) in replies.into_iter().zip(written) {
                    let _ = reply.send(Ok(w));
                }
            }
            Err(e) if e.is_unreachable() => {
                // Every message would wait for a connection in turn: answer
                // them all now, so senders hear `unavailable` at once.
                tracing::warn!(error = %e, size = batch.len(), "database unreachable, batch refused");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unreachable(e.to_string())));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "batch write failed, retrying one by one");
                for (message, reply) in batch.iter().zip(replies) {
                    let result = target.write(&[message], &[]).await.map(|mut w| w.remove(0));
                    let _ = reply.send(result);
                }
                if let Err(e) = target.write(&[], &receipts).await {
                    tracing::warn!(error = %e, "receipts lost; the messages stay offline");
                }
            }
        }
    }
}

async fn run(
    store: Store,
    direct: bool,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    hold: Hold,
) {
    let mut target = Target::new(store, direct).await;
    let mut jobs = Vec::with_capacity(max_batch);
    let mut batch = Batch::default();
    // Set while the batch's receipts wait for messages.
    let mut hold_until: Option<Instant> = None;
    let mut messages_at: Option<Instant> = None;
    loop {
        let received = match hold_until {
            Some(until) => timeout_at(until, rx.recv_many(&mut jobs, max_batch))
                .await
                .ok(),
            None => Some(rx.recv_many(&mut jobs, max_batch).await),
        };
        if received == Some(0) {
            // Every handle is gone: what is held is committed, and no more comes.
            batch.commit(&mut target).await;
            return;
        }
        for job in jobs.drain(..) {
            batch.add(job);
        }
        let flowing = messages_at.is_some_and(|at| at.elapsed() < hold.flowing);
        if received.is_some()
            && flowing
            && batch.receipts_only()
            && batch.receipts.len() < max_batch
        {
            hold_until.get_or_insert_with(|| Instant::now() + hold.wait);
            continue;
        }
        hold_until = None;
        let has_messages = !batch.messages.is_empty();
        std::mem::take(&mut batch).commit(&mut target).await;
        if has_messages {
            messages_at = Some(Instant::now());
        }
    }
}
