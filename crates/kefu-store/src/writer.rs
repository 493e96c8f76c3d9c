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
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait,
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

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<Result<Written>>,
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
            .send(Job { message, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(rx)
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
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let batch: Vec<&NewMessage> = jobs.iter().map(|j| &j.message).collect();
        match write_batch(&store, &batch).await {
            Ok(written) => {
                for (job, w) in jobs.drain(..).zip(written) {
                    let _ = job.reply.send(Ok(w));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, size = jobs.len(), "batch write failed, retrying one by one");
                for job in jobs.drain(..) {
                    let result = write_batch(&store, &[&job.message])
                        .await
                        .map(|mut w| w.remove(0));
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

type Key = (String, String);

fn key(m: &NewMessage) -> Option<Key> {
    m.client_msg_id
        .as_ref()
        .map(|c| (m.sender.clone(), c.clone()))
}

/// Writes a batch in one transaction, returning one result per message in order.
async fn write_batch(store: &Store, batch: &[&NewMessage]) -> Result<Vec<Written>> {
    let mut known = existing(store, batch).await?;
    let txn = store.db.begin().await?;
    let mut written = Vec::with_capacity(batch.len());
    let mut marks = Vec::new();
    for m in batch {
        let k = key(m);
        if let Some(first) = k.as_ref().and_then(|k| known.get(k)) {
            written.push(Written {
                message: first.clone(),
                duplicate: true,
            });
            continue;
        }
        let id = insert(&txn, m).await?;
        let model = model(id, m);
        marks.extend(m.undelivered_for.iter().map(|u| undelivered::ActiveModel {
            user_id: Set(u.clone()),
            message_id: Set(id),
        }));
        if let Some(k) = k {
            known.insert(k, model.clone());
        }
        written.push(Written {
            message: model,
            duplicate: false,
        });
    }
    if !marks.is_empty() {
        undelivered::Entity::insert_many(marks)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(written)
}

/// Rows that already exist for the batch's `(sender, client_msg_id)` pairs.
async fn existing(store: &Store, batch: &[&NewMessage]) -> Result<HashMap<Key, message::Model>> {
    let keys: Vec<Key> = batch.iter().filter_map(|m| key(m)).collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let senders: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let ids: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    let rows = message::Entity::find()
        .filter(message::Column::Sender.is_in(senders))
        .filter(message::Column::ClientMsgId.is_in(ids))
        .all(&store.db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.client_msg_id.clone().map(|c| ((r.sender.clone(), c), r)))
        .collect())
}

async fn insert(txn: &impl ConnectionTrait, m: &NewMessage) -> Result<i64> {
    let row = message::ActiveModel {
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
    };
    Ok(message::Entity::insert(row).exec(txn).await?.last_insert_id)
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
