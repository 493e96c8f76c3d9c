//! Group commit: many new messages per transaction, each answered only after
//! its row is committed.
//!
//! One writer task per store drains its queue into a batch, inserts the
//! messages whose `(sender, client_msg_id)` is not stored yet (a resend gets
//! the first row back) with their undelivered marks in one transaction,
//! deletes the marks of the receipts queued meanwhile, commits, then answers
//! every job in the order it was queued. If the batch fails (on MySQL, a
//! race on the unique index with another worker), each job is retried alone
//! so one bad row cannot fail its neighbours.

use crate::entity::message;
use crate::{Result, Store, StoreError};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryResult, Statement,
    TransactionTrait,
};
use std::collections::{HashMap, HashSet};
use tokio::sync::{mpsc, oneshot};

mod direct;
mod sql;

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

enum Job {
    Message {
        message: Box<NewMessage>,
        reply: oneshot::Sender<Result<Written>>,
    },
    /// A device of `user` received these messages.
    Confirm { user: String, ids: Vec<i64> },
}

/// Handle to the group-commit task.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

/// Answer to one enqueued message, resolved after commit.
pub type Pending = oneshot::Receiver<Result<Written>>;

impl Writer {
    /// Starts the writer; it stops when every handle is dropped, after
    /// committing what was queued.
    ///
    /// On SQLite the writer gets a thread of its own and a connection of
    /// its own, and runs its statements as calls on that thread
    /// ([`direct`]). Through the pool, a batch was a dozen round trips to
    /// the thread of an sqlx connection, and on the shared runtime each
    /// answer also waited its turn behind the connections' tasks. A server
    /// database's sockets belong to the runtime that opened them, so there
    /// the writer stays on it and uses the pool.
    pub fn start(store: Store, max_batch: usize) -> Writer {
        Self::start_on(store, max_batch, true)
    }

    /// Like [`Writer::start`]; `direct: false` keeps an SQLite writer on
    /// the pool, as when its own connection cannot be opened.
    pub(crate) fn start_on(store: Store, max_batch: usize, direct: bool) -> Writer {
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let target = match &store.sqlite {
            Some(file) if direct => match direct::Direct::open(file) {
                Ok(conn) => Target::Sqlite(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "the writer's SQLite connection did not open; it uses the pool");
                    Target::Pool(store.clone())
                }
            },
            _ => Target::Pool(store.clone()),
        };
        let task = run(target, rx, max_batch.max(1));
        let on_shared_runtime = match store.backend() {
            DbBackend::Sqlite => own_thread(task).err().map(|(e, task)| {
                tracing::warn!(error = %e, "no thread for the writer; it shares the runtime");
                task
            }),
            _ => Some(task),
        };
        if let Some(task) = on_shared_runtime {
            tokio::spawn(task);
        }
        Writer { tx }
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
    /// answer, so they ride along with the messages' commits.
    pub async fn confirm(&self, user: &str, ids: Vec<i64>) -> Result<()> {
        self.tx
            .send(Job::Confirm {
                user: user.to_owned(),
                ids,
            })
            .await
            .map_err(|_| StoreError::WriterStopped)
    }

    /// Queues a message and waits for its commit.
    pub async fn write(&self, message: NewMessage) -> Result<Written> {
        self.enqueue(message)
            .await?
            .await
            .map_err(|_| StoreError::WriterStopped)?
    }
}

/// Runs `task` on a new thread with a runtime of its own, or gives it back.
fn own_thread<F>(task: F) -> std::result::Result<(), (std::io::Error, F)>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Err((e, task)),
    };
    // The task moves into the thread only if the thread starts.
    let (give, take) = std::sync::mpsc::sync_channel::<F>(1);
    let spawned = std::thread::Builder::new()
        .name("kefu-writer".into())
        .spawn(move || {
            if let Ok(task) = take.recv() {
                runtime.block_on(task);
            }
        });
    match spawned {
        Ok(_) => {
            let _ = give.send(task);
            Ok(())
        }
        Err(e) => Err((e, task)),
    }
}

/// Where the writer's batches go.
enum Target {
    /// The store's pool: MySQL, PostgreSQL, or SQLite as a fallback.
    Pool(Store),
    /// The writer's own SQLite connection.
    Sqlite(direct::Direct),
}

impl Target {
    async fn write(
        &mut self,
        batch: &[&NewMessage],
        receipts: &[(String, Vec<i64>)],
        consecutive_ids: bool,
    ) -> Result<Vec<Written>> {
        match self {
            Target::Pool(store) => write_batch(store, batch, receipts, consecutive_ids).await,
            Target::Sqlite(conn) => conn.write_batch(batch, receipts),
        }
    }
}

async fn run(mut target: Target, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs = Vec::with_capacity(max_batch);
    let consecutive_ids = match &target {
        Target::Pool(store) => ids_are_consecutive(store).await,
        Target::Sqlite(_) => true,
    };
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let mut messages = Vec::new();
        let mut replies = Vec::new();
        let mut receipts = Vec::new();
        for job in jobs.drain(..) {
            match job {
                Job::Message { message, reply } => {
                    messages.push(*message);
                    replies.push(reply);
                }
                Job::Confirm { user, ids } => receipts.push((user, ids)),
            }
        }
        let batch: Vec<&NewMessage> = messages.iter().collect();
        let started = std::time::Instant::now();
        let result = target.write(&batch, &receipts, consecutive_ids).await;
        crate::metrics::BATCH_MESSAGES.observe(batch.len() as f64);
        crate::metrics::BATCH_SECONDS.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(written) => {
                for (reply, w) in replies.into_iter().zip(written) {
                    let _ = reply.send(Ok(w));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "batch write failed, retrying one by one");
                for (message, reply) in batch.iter().zip(replies) {
                    let result = target
                        .write(&[message], &[], consecutive_ids)
                        .await
                        .map(|mut w| w.remove(0));
                    let _ = reply.send(result);
                }
                if let Err(e) = target.write(&[], &receipts, consecutive_ids).await {
                    tracing::warn!(error = %e, "receipts lost; the messages stay offline");
                }
            }
        }
    }
}

/// Whether one multi-row INSERT gets consecutive ids. SQLite and PostgreSQL
/// return them; MySQL reports the first, and InnoDB hands out consecutive ids
/// to a multi-row insert unless `innodb_autoinc_lock_mode` is 2.
async fn ids_are_consecutive(store: &Store) -> bool {
    if store.backend() != DbBackend::MySql {
        return true;
    }
    let row = store
        .db
        .query_one(Statement::from_string(
            DbBackend::MySql,
            "SELECT @@innodb_autoinc_lock_mode AS mode",
        ))
        .await;
    match row {
        Ok(Some(row)) => row
            .try_get::<i64>("", "mode")
            .map(|m| m < 2)
            .unwrap_or(false),
        _ => false,
    }
}

/// A message's dedup key, `(sender, client_msg_id)`.
type Key<'a> = (&'a str, &'a str);

fn key(m: &NewMessage) -> Option<Key<'_>> {
    m.client_msg_id.as_deref().map(|c| (m.sender.as_str(), c))
}

fn stored_key(m: &message::Model) -> Option<Key<'_>> {
    m.client_msg_id.as_deref().map(|c| (m.sender.as_str(), c))
}

/// Writes a batch and its receipts in one transaction, returning one result
/// per message in order.
///
/// A message whose key is already stored, or appears earlier in the batch,
/// is not inserted: it gets the first row back, marked duplicate. On SQLite
/// and PostgreSQL the insert itself skips stored keys (`ON CONFLICT DO
/// NOTHING`) and says which rows it took, so a batch of new messages costs
/// no lookup; MySQL cannot say, so its batches look their keys up first.
async fn write_batch(
    store: &Store,
    batch: &[&NewMessage],
    receipts: &[(String, Vec<i64>)],
    consecutive_ids: bool,
) -> Result<Vec<Written>> {
    let backend = store.backend();
    let skip_stored = backend != DbBackend::MySql;
    let mut stored = if skip_stored {
        Vec::new()
    } else {
        existing(&store.db, batch.iter().filter_map(|m| key(m))).await?
    };
    let fresh = first_occurrences(batch, &stored);
    let txn = store.db.begin().await?;
    let ids = insert(&txn, &fresh, skip_stored, consecutive_ids).await?;
    let (inserted, skipped) = inserted_and_skipped(&fresh, ids);
    if !skipped.is_empty() {
        stored.extend(existing(&txn, skipped.into_iter()).await?);
    }
    for chunk in marks(&inserted).chunks(ROWS_PER_STATEMENT) {
        txn.execute(sql::insert_marks(backend, chunk)).await?;
    }
    for chunk in confirmed(receipts).chunks(ROWS_PER_STATEMENT) {
        txn.execute(sql::delete_marks(backend, chunk)).await?;
    }
    txn.commit().await?;
    answers(batch, inserted, &stored)
}

/// The first occurrence in the batch of each key not among `stored`, and
/// every message without a key.
fn first_occurrences<'a>(
    batch: &[&'a NewMessage],
    stored: &[message::Model],
) -> Vec<&'a NewMessage> {
    let mut seen: HashSet<Key> = stored.iter().filter_map(stored_key).collect();
    batch
        .iter()
        .copied()
        .filter(|m| key(m).is_none_or(|k| seen.insert(k)))
        .collect()
}

/// Pairs each inserted message with its new row, and lists the keys an
/// insert skipped as already stored (`None` ids).
fn inserted_and_skipped<'a>(
    fresh: &[&'a NewMessage],
    ids: Vec<Option<i64>>,
) -> (Vec<(&'a NewMessage, message::Model)>, Vec<Key<'a>>) {
    let mut inserted = Vec::with_capacity(fresh.len());
    let mut skipped = Vec::new();
    for (&m, id) in fresh.iter().zip(ids) {
        match id {
            Some(id) => inserted.push((m, model(id, m))),
            None => skipped.extend(key(m)),
        }
    }
    (inserted, skipped)
}

/// The undelivered marks of new rows: one per recipient who has not got it.
fn marks<'a>(inserted: &[(&'a NewMessage, message::Model)]) -> Vec<(&'a str, i64)> {
    inserted
        .iter()
        .flat_map(|(m, row)| m.undelivered_for.iter().map(|u| (u.as_str(), row.id)))
        .collect()
}

/// Every receipt of the batch as `(user, message id)` marks to delete, for
/// a few statements rather than one per frame: agents confirm every few
/// milliseconds, so frames outnumber batches.
fn confirmed(receipts: &[(String, Vec<i64>)]) -> Vec<(&str, i64)> {
    receipts
        .iter()
        .flat_map(|(user, ids)| ids.iter().map(move |&id| (user.as_str(), id)))
        .collect()
}

/// One answer per message of the batch, in order: its new row, or the row
/// first stored under its key (earlier in this batch, or before it).
fn answers(
    batch: &[&NewMessage],
    inserted: Vec<(&NewMessage, message::Model)>,
    stored: &[message::Model],
) -> Result<Vec<Written>> {
    let stored: HashMap<Key, &message::Model> = stored
        .iter()
        .filter_map(|row| Some((stored_key(row)?, row)))
        .collect();
    let missing = || StoreError::Conflict("a resent message's first row is missing".into());
    // Keys inserted by this batch → the index of their answer.
    let mut first_in_batch: HashMap<Key, usize> = HashMap::new();
    let mut inserted = inserted.into_iter().peekable();
    let mut answers: Vec<Written> = Vec::with_capacity(batch.len());
    for &m in batch {
        if let Some((_, row)) = inserted.next_if(|(new, _)| std::ptr::eq(*new, m)) {
            if let Some(k) = key(m) {
                first_in_batch.insert(k, answers.len());
            }
            answers.push(Written {
                message: row,
                duplicate: false,
            });
            continue;
        }
        let k = key(m).ok_or_else(missing)?;
        let first = match first_in_batch.get(&k) {
            Some(&i) => answers[i].message.clone(),
            None => stored.get(&k).map(|&row| row.clone()).ok_or_else(missing)?,
        };
        answers.push(Written {
            message: first,
            duplicate: true,
        });
    }
    Ok(answers)
}

/// Stored rows under these keys.
async fn existing<'a>(
    db: &impl ConnectionTrait,
    keys: impl Iterator<Item = Key<'a>>,
) -> Result<Vec<message::Model>> {
    let keys: Vec<Key> = keys.collect();
    let mut rows = Vec::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let statement = sql::find_keys(db.get_database_backend(), chunk);
        rows.extend(
            message::Entity::find()
                .from_raw_sql(statement)
                .all(db)
                .await?,
        );
    }
    Ok(rows)
}

/// Rows per statement, well under every backend's parameter limit.
const ROWS_PER_STATEMENT: usize = 100;

/// Inserts rows in order and returns their ids, which increase in that
/// order; with `skip_stored`, `None` for a row whose key was already stored.
async fn insert(
    txn: &DatabaseTransaction,
    rows: &[&NewMessage],
    skip_stored: bool,
    consecutive_ids: bool,
) -> Result<Vec<Option<i64>>> {
    let backend = txn.get_database_backend();
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        match skip_stored {
            true => {
                let statement = sql::insert_messages(backend, chunk, sql::Stored::SkipAndReturn);
                let returned = txn.query_all(statement).await?;
                ids.extend(returned_ids(chunk, taken_rows(&returned)?)?);
            }
            false if consecutive_ids => {
                let statement = sql::insert_messages(backend, chunk, sql::Stored::Fail);
                let first = txn.execute(statement).await?.last_insert_id() as i64;
                ids.extend((first..first + chunk.len() as i64).map(Some));
            }
            false => {
                for &m in chunk {
                    let one = sql::insert_messages(backend, &[m], sql::Stored::Fail);
                    ids.push(Some(txn.execute(one).await?.last_insert_id() as i64));
                }
            }
        }
    }
    Ok(ids)
}

/// What an insert that skips stored keys returns of a row it took:
/// `id, sender, client_msg_id`.
type TakenRow = (i64, String, Option<String>);

fn taken_rows(returned: &[QueryResult]) -> Result<Vec<TakenRow>> {
    returned
        .iter()
        .map(|r| {
            Ok((
                r.try_get("", "id")?,
                r.try_get("", "sender")?,
                r.try_get("", "client_msg_id")?,
            ))
        })
        .collect()
}

/// Matches the rows an insert returned to the rows it was given: the ids
/// increase in the given order (RETURNING's own order is not promised), and
/// a keyed row that did not come back was skipped as already stored.
fn returned_ids(rows: &[&NewMessage], taken: Vec<TakenRow>) -> Result<Vec<Option<i64>>> {
    let taken_keys: HashSet<Key> = taken
        .iter()
        .filter_map(|(_, s, c)| Some((s.as_str(), c.as_deref()?)))
        .collect();
    let mut ids: Vec<i64> = taken.iter().map(|(id, _, _)| *id).collect();
    ids.sort_unstable();
    let mut ids = ids.into_iter();
    let matched = rows
        .iter()
        .map(|m| match key(m) {
            Some(k) if !taken_keys.contains(&k) => Some(None),
            _ => ids.next().map(Some),
        })
        .collect::<Option<Vec<_>>>();
    match matched {
        Some(matched) if ids.next().is_none() => Ok(matched),
        _ => Err(StoreError::Conflict(
            "an insert returned rows it was not given".into(),
        )),
    }
}

fn model(id: i64, m: &NewMessage) -> message::Model {
    message::Model {
        id,
        task_id: m.task_id,
        sender: m.sender.clone(),
        recipient: m.recipient.clone(),
        category: m.category.clone(),
        style: m.style.clone(),
        kind: m.kind.clone(),
        content: m.content.clone(),
        url: m.url.clone(),
        quote: m.quote,
        ext: m.ext.clone(),
        client_msg_id: m.client_msg_id.clone(),
        created_at: m.created_at,
        is_read: false,
        is_revoke: false,
    }
}
