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
    TransactionTrait,
};

/// Whether one multi-row INSERT gets consecutive ids. SQLite and PostgreSQL
/// return them; MySQL reports the first, and InnoDB hands out consecutive ids
/// to a multi-row insert unless `innodb_autoinc_lock_mode` is 2.
pub(super) async fn ids_are_consecutive(store: &Store) -> bool {
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

/// Writes a batch and its receipts in one transaction, returning one result
/// per message in order.
///
/// A message whose key is already stored, or appears earlier in the batch,
/// is not inserted: it gets the first row back, marked duplicate. On SQLite
/// and PostgreSQL the insert itself skips stored keys (`ON CONFLICT DO
/// NOTHING`) and says which rows it took, so a batch of new messages costs
/// no lookup; MySQL cannot say, so its batches look their keys up first.
pub(super) async fn write_batch(
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
