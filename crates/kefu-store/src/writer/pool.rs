//! A batch through the store's pool: MySQL and PostgreSQL, and SQLite when
//! the writer has no connection of its own.

use super::batch::{
    answers, confirmed, first_occurrences, inserted_and_skipped, key, marks, returned_ids, Key,
    TakenRow, ROWS_PER_STATEMENT,
};
use super::{sql, NewMessage, Written};
use crate::entity::message;
use crate::{Result, Store};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryResult, Statement,
};

/// The writer's way into the store's pool, and how its backend inserts.
pub(super) struct Pool {
    store: Store,
    insert: Insert,
}

/// How a backend inserts a chunk and learns the new rows' ids.
#[derive(Clone, Copy)]
enum Insert {
    /// Skipping stored keys and returning the rows taken (SQLite,
    /// PostgreSQL): a batch of new messages needs no lookup first.
    SkipAndReturn,
    /// One multi-row insert whose ids are consecutive from the first one
    /// reported (MySQL); stored keys are looked up before.
    Consecutive,
    /// One row at a time (MySQL with `innodb_autoinc_lock_mode = 2`, where
    /// a multi-row insert's ids need not be consecutive).
    OneByOne,
}

impl Pool {
    pub async fn new(store: Store) -> Pool {
        let insert = match store.backend() {
            DbBackend::MySql if ids_are_consecutive(&store).await => Insert::Consecutive,
            DbBackend::MySql => Insert::OneByOne,
            _ => Insert::SkipAndReturn,
        };
        Pool { store, insert }
    }

    /// Opens tasks, each in a transaction of its own (as
    /// [`Store::open_task`]).
    pub async fn open_tasks(
        &self,
        tasks: &[super::NewTask],
    ) -> Vec<Result<crate::entity::task::Model>> {
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(self.store.open_task(t, None).await);
        }
        out
    }

    /// Writes a batch and its receipts in one transaction, returning one
    /// result per message in order.
    ///
    /// A message whose key is already stored, or appears earlier in the
    /// batch, is not inserted: it gets the first row back, marked duplicate.
    pub async fn write_batch(
        &self,
        batch: &[&NewMessage],
        receipts: &[(String, Vec<i64>)],
    ) -> Result<Vec<Written>> {
        let db = &self.store.db;
        let backend = self.store.backend();
        let mut stored = match self.insert {
            Insert::SkipAndReturn => Vec::new(),
            Insert::Consecutive | Insert::OneByOne => {
                existing(db, batch.iter().filter_map(|m| key(m))).await?
            }
        };
        let fresh = first_occurrences(batch, &stored);
        let txn = db.begin().await?;
        let ids = insert(&txn, &fresh, self.insert).await?;
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
}

/// Whether one multi-row INSERT on MySQL gets consecutive ids: InnoDB hands
/// them out so unless `innodb_autoinc_lock_mode` is 2.
async fn ids_are_consecutive(store: &Store) -> bool {
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

/// Inserts rows in order and returns their ids, which increase in that
/// order; `None` for a row whose key was already stored (skipped).
async fn insert(
    txn: &DatabaseTransaction,
    rows: &[&NewMessage],
    how: Insert,
) -> Result<Vec<Option<i64>>> {
    let backend = txn.get_database_backend();
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        match how {
            Insert::SkipAndReturn => {
                let statement = sql::insert_messages(backend, chunk, sql::Stored::SkipAndReturn);
                let returned = txn.query_all(statement).await?;
                ids.extend(returned_ids(chunk, taken_rows(&returned)?)?);
            }
            Insert::Consecutive => {
                let statement = sql::insert_messages(backend, chunk, sql::Stored::Fail);
                let first = txn.execute(statement).await?.last_insert_id() as i64;
                ids.extend((first..first + chunk.len() as i64).map(Some));
            }
            Insert::OneByOne => {
                for &m in chunk {
                    let one = sql::insert_messages(backend, &[m], sql::Stored::Fail);
                    ids.push(Some(txn.execute(one).await?.last_insert_id() as i64));
                }
            }
        }
    }
    Ok(ids)
}

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
