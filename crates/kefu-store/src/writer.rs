//! Group commit: many new messages per transaction, each answered only after
//! its row is committed.
//!
//! One writer task per store drains its queue into a batch, looks up which
//! `(sender, client_msg_id)` pairs already exist (a resend gets the first
//! row back), inserts the rest with their undelivered marks in one
//! transaction, commits, then answers every job in the order it was queued.
//! If the batch fails (a race on the unique index with another worker), each
//! job is retried alone so one bad row cannot fail its neighbours.

use crate::entity::{message, undelivered};
use crate::{Result, Store, StoreError};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend,
    EntityTrait, QueryFilter, Statement, TransactionTrait,
};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

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
    pub fn start(store: Store, max_batch: usize) -> Writer {
        let (tx, rx) = mpsc::channel(max_batch * 4);
        tokio::spawn(run(store, rx, max_batch.max(1)));
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

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs = Vec::with_capacity(max_batch);
    let consecutive_ids = ids_are_consecutive(&store).await;
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
        let result = write_batch(&store, &batch, &receipts, consecutive_ids).await;
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
                    let result = write_batch(&store, &[message], &[], consecutive_ids)
                        .await
                        .map(|mut w| w.remove(0));
                    let _ = reply.send(result);
                }
                if let Err(e) = write_batch(&store, &[], &receipts, consecutive_ids).await {
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

type Key = (String, String);

fn key(m: &NewMessage) -> Option<Key> {
    m.client_msg_id
        .as_ref()
        .map(|c| (m.sender.clone(), c.clone()))
}

/// Writes a batch and its receipts in one transaction, returning one result
/// per message in order.
async fn write_batch(
    store: &Store,
    batch: &[&NewMessage],
    receipts: &[(String, Vec<i64>)],
    consecutive_ids: bool,
) -> Result<Vec<Written>> {
    let mut known = existing(store, batch).await?;
    // Which messages are new, first occurrence only.
    let mut fresh: Vec<usize> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, m) in batch.iter().enumerate() {
        match key(m) {
            Some(k) if known.contains_key(&k) || !seen.insert(k.clone()) => {}
            _ => fresh.push(i),
        }
    }
    let txn = store.db.begin().await?;
    let rows: Vec<&NewMessage> = fresh.iter().map(|&i| batch[i]).collect();
    let ids = insert(&txn, &rows, consecutive_ids).await?;
    let mut marks = Vec::new();
    let mut models: HashMap<usize, message::Model> = HashMap::new();
    for (&i, id) in fresh.iter().zip(ids) {
        let m = batch[i];
        marks.extend(m.undelivered_for.iter().map(|u| undelivered::ActiveModel {
            user_id: Set(u.clone()),
            message_id: Set(id),
        }));
        let model = model(id, m);
        if let Some(k) = key(m) {
            known.insert(k, model.clone());
        }
        models.insert(i, model);
    }
    if !marks.is_empty() {
        undelivered::Entity::insert_many(marks)
            .exec_without_returning(&txn)
            .await?;
    }
    // Every receipt of the batch in a few statements, not one per frame:
    // agents confirm every few milliseconds, so frames outnumber batches.
    let pairs: Vec<(&str, i64)> = receipts
        .iter()
        .flat_map(|(user, ids)| ids.iter().map(move |&id| (user.as_str(), id)))
        .collect();
    for chunk in pairs.chunks(ROWS_PER_INSERT) {
        let any = any_pair(
            undelivered::Column::UserId,
            undelivered::Column::MessageId,
            chunk.iter().copied(),
        );
        undelivered::Entity::delete_many()
            .filter(any)
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    let written = batch
        .iter()
        .enumerate()
        .map(|(i, m)| match models.remove(&i) {
            Some(message) => Written {
                message,
                duplicate: false,
            },
            None => Written {
                message: key(m)
                    .and_then(|k| known.get(&k).cloned())
                    .unwrap_or_else(|| model(0, m)),
                duplicate: true,
            },
        })
        .collect();
    Ok(written)
}

/// Rows that already exist for the batch's `(sender, client_msg_id)` pairs.
async fn existing(store: &Store, batch: &[&NewMessage]) -> Result<HashMap<Key, message::Model>> {
    let keys: Vec<Key> = batch.iter().filter_map(|m| key(m)).collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let mut rows = Vec::new();
    for chunk in keys.chunks(ROWS_PER_INSERT) {
        let pairs = any_pair(
            message::Column::Sender,
            message::Column::ClientMsgId,
            chunk.iter().map(|(s, c)| (s.as_str(), c.as_str())),
        );
        rows.extend(message::Entity::find().filter(pairs).all(&store.db).await?);
    }
    Ok(rows
        .into_iter()
        .filter_map(|r| r.client_msg_id.clone().map(|c| ((r.sender.clone(), c), r)))
        .collect())
}

/// `(a = x AND b = y) OR …` over the pairs: each pair one probe of a
/// two-column index, where an IN list per column would probe every x with
/// every y.
fn any_pair<A, B, X, Y>(a: A, b: B, pairs: impl IntoIterator<Item = (X, Y)>) -> Condition
where
    A: ColumnTrait,
    B: ColumnTrait,
    X: Into<sea_orm::Value>,
    Y: Into<sea_orm::Value>,
{
    pairs.into_iter().fold(Condition::any(), |any, (x, y)| {
        any.add(a.eq(x).and(b.eq(y)))
    })
}

fn active(m: &NewMessage) -> message::ActiveModel {
    message::ActiveModel {
        id: Default::default(),
        task_id: Set(m.task_id),
        sender: Set(m.sender.clone()),
        recipient: Set(m.recipient.clone()),
        category: Set(m.category.clone()),
        style: Set(m.style.clone()),
        kind: Set(m.kind.clone()),
        content: Set(m.content.clone()),
        url: Set(m.url.clone()),
        quote: Set(m.quote),
        ext: Set(m.ext.clone()),
        client_msg_id: Set(m.client_msg_id.clone()),
        created_at: Set(m.created_at),
        is_read: Set(false),
        is_revoke: Set(false),
    }
}

/// Rows per INSERT statement, well under every backend's parameter limit.
const ROWS_PER_INSERT: usize = 100;

/// Inserts rows in order and returns their ids, which increase in that order.
async fn insert(
    txn: &DatabaseTransaction,
    rows: &[&NewMessage],
    consecutive_ids: bool,
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let many = message::Entity::insert_many(chunk.iter().map(|m| active(m)));
        match txn.get_database_backend() {
            DbBackend::Sqlite | DbBackend::Postgres => {
                let mut keys: Vec<i64> = many.exec_with_returning_keys(txn).await?;
                // RETURNING's row order is not promised; the ids' order is.
                keys.sort_unstable();
                ids.extend(keys);
            }
            DbBackend::MySql if consecutive_ids => {
                let first = many.exec(txn).await?.last_insert_id;
                ids.extend(first..first + chunk.len() as i64);
            }
            DbBackend::MySql => {
                for m in chunk {
                    ids.push(
                        message::Entity::insert(active(m))
                            .exec(txn)
                            .await?
                            .last_insert_id,
                    );
                }
            }
        }
    }
    Ok(ids)
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
