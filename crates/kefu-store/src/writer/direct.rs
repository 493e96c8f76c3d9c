//! The writer's own SQLite connection, called from the writer's thread.
//!
//! Through the pool, each statement of a batch is a hand-off to the thread
//! of an sqlx connection and back, a dozen per batch, and those thread
//! switches rather than SQLite's B-trees were most of a batch's time
//! (docs/benchmarks.md). Here a statement is a function call on the thread
//! that runs the writer, which has nothing else to do meanwhile. The
//! statements are the pool's (`sql`), bound from the same values.

use super::batch::{
    answers, confirmed, first_occurrences, inserted_and_skipped, key, marks, Key,
    ROWS_PER_STATEMENT,
};
use super::wal_sync::{self, WalSync};
use super::{sql, NewMessage, Written};
use crate::entity::{message, task};
use crate::{Durability, Result, SqliteFile, StoreError};
use rusqlite::types::{Null, ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection, ToSql, TransactionBehavior};
use sea_orm::{DbBackend, Statement, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Statement texts kept prepared: four shapes (the insert, marks in and
/// out, the key lookup), one text per chunk length.
const STATEMENT_CACHE: usize = 4 * ROWS_PER_STATEMENT + 16;

pub(super) struct Direct {
    conn: Connection,
    /// Syncs the WAL when commits do not (`synchronous=NORMAL`); dropped
    /// after the connection, so the last commits are synced too.
    #[cfg_attr(not(test), allow(dead_code, reason = "held for its thread"))]
    wal_sync: Option<WalSync>,
}

impl Direct {
    /// Opens `file` as the pool does (WAL, the same `synchronous` and
    /// checkpoint interval, waiting up to 30 s for another writer).
    pub fn open(file: &SqliteFile) -> Result<Direct> {
        let conn = Connection::open(&file.path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal(mode));
        }
        for (name, value) in file.durability.sqlite_pragmas() {
            conn.pragma_update(None, name, value)?;
        }
        conn.pragma_update(None, "foreign_keys", "on")?;
        // A statement's journal (which backs out a failed multi-row insert
        // alone) in memory, not in a temporary file: writing that file was
        // an eighth of this thread's processor time (docs/benchmarks.md).
        conn.pragma_update(None, "temp_store", "memory")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let wal_sync = match file.durability {
            Durability::PowerLoss => None,
            // Without it commits are as durable, only checkpoints slower.
            Durability::ProcessCrash => WalSync::start(&file.path, wal_sync::EVERY)
                .inspect_err(|e| tracing::warn!(error = %e, "no thread to sync the WAL"))
                .ok(),
        };
        Ok(Direct { conn, wal_sync })
    }

    /// Opens tasks in one transaction: records each customer (an agent's
    /// row keeps its name), draws the task's sequence number, inserts the
    /// task and, when it is assigned, its agent.
    pub fn open_tasks(&mut self, tasks: &[super::NewTask]) -> Result<Vec<task::Model>> {
        let txn = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rows = Vec::with_capacity(tasks.len());
        for t in tasks {
            let now = kefu_protocol::now_ms();
            if !t.name.is_empty() {
                execute(
                    &txn,
                    &sql::record_customer(DbBackend::Sqlite, &t.customer, &t.name, now),
                )?;
            }
            execute(&txn, &sql::draw_task_sequence(DbBackend::Sqlite, now))?;
            let row = sql::new_task_row(t, txn.last_insert_rowid(), now);
            for statement in sql::insert_tasks(DbBackend::Sqlite, std::slice::from_ref(&row)) {
                execute(&txn, &statement)?;
            }
            rows.push(row);
        }
        txn.commit()?;
        Ok(rows)
    }

    /// Guarded steps in one transaction: rows changed per step.
    pub fn guarded(&mut self, steps: &[super::Guarded]) -> Result<Vec<u64>> {
        let txn = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed = Vec::with_capacity(steps.len());
        for step in steps {
            let n = execute(&txn, &step.change)?;
            if n > 0 {
                if let Some(then) = &step.then {
                    execute(&txn, then)?;
                }
            }
            changed.push(n as u64);
        }
        txn.commit()?;
        Ok(changed)
    }

    /// The pool's `write_batch`, on this connection: new messages (a stored
    /// key gets its first row back), their marks and the receipts in one
    /// transaction, one answer per message in order.
    pub fn write_batch(
        &mut self,
        batch: &[&NewMessage],
        receipts: &[(String, Vec<i64>)],
    ) -> Result<Vec<Written>> {
        let fresh = first_occurrences(batch, &[]);
        // IMMEDIATE: the write lock is taken (or waited for) at BEGIN.
        let txn = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(fresh.len());
        for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
            ids.extend(insert(&txn, chunk)?);
        }
        let (inserted, skipped) = inserted_and_skipped(&fresh, ids);
        let stored = existing(&txn, &skipped)?;
        for chunk in marks(&inserted).chunks(ROWS_PER_STATEMENT) {
            execute(&txn, &sql::insert_marks(DbBackend::Sqlite, chunk))?;
        }
        for chunk in confirmed(receipts).chunks(ROWS_PER_STATEMENT) {
            execute(&txn, &sql::delete_marks(DbBackend::Sqlite, chunk))?;
        }
        txn.commit()?;
        answers(batch, inserted, &stored)
    }
}

/// Inserts rows in order and returns their ids; `None` for a row whose key
/// was already stored. `INSERT OR IGNORE` skips a stored key instead of
/// failing, so SQLite keeps no statement journal for it (5% of this
/// thread's time while it did, docs/benchmarks.md). `messages.id` is the
/// table's rowid without `AUTOINCREMENT` (migration
/// m20261203_000005_sqlite_pages): each inserted row takes the largest id
/// plus one, from the database's one writer, so the rows this statement
/// inserted hold the ids up to the last insert's, in order, and a skipped
/// row takes none. When some were skipped, the keys are looked up to tell
/// which.
fn insert(conn: &Connection, rows: &[&NewMessage]) -> Result<Vec<Option<i64>>> {
    let statement = sql::insert_messages(DbBackend::Sqlite, rows, sql::Stored::Ignore);
    let taken = execute(conn, &statement)?;
    // The last insert's id; another statement's when none was taken.
    let last = conn.last_insert_rowid();
    if taken == rows.len() {
        let n = rows.len() as i64;
        return Ok((last - n + 1..=last).map(Some).collect());
    }
    let keys: Vec<Key> = rows.iter().filter_map(|m| key(m)).collect();
    let found = existing(conn, &keys)?;
    let stored: HashMap<Key, i64> = found
        .iter()
        .filter_map(|r| Some(((r.sender.as_str(), r.client_msg_id.as_deref()?), r.id)))
        .collect();
    if taken == 0 {
        // Every row was a stored key: a keyless row is always inserted.
        return rows
            .iter()
            .map(|m| match key(m).map(|k| stored.contains_key(&k)) {
                Some(true) => Ok(None),
                _ => Err(StoreError::Conflict(
                    "an insert skipped a row it was given".into(),
                )),
            })
            .collect();
    }
    let first = last - taken as i64 + 1;
    let mut next = first;
    let ids = rows
        .iter()
        .map(|m| {
            let before = key(m).map(|k| stored.get(&k).copied());
            if let Some(Some(id)) = before {
                if id < first {
                    return Ok(None);
                }
            }
            let id = next;
            next += 1;
            match before {
                None => Ok(Some(id)),
                Some(Some(row)) if row == id => Ok(Some(id)),
                Some(_) => Err(StoreError::Conflict(
                    "a message's row is not the one its insert took".into(),
                )),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if ids.iter().flatten().count() != taken {
        return Err(StoreError::Conflict(
            "an insert took rows it was not given".into(),
        ));
    }
    Ok(ids)
}

/// Stored rows under these keys.
fn existing(conn: &Connection, keys: &[Key]) -> Result<Vec<message::Model>> {
    let mut rows = Vec::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let find = sql::find_keys(DbBackend::Sqlite, chunk);
        let mut statement = conn.prepare_cached(&find.sql)?;
        let found = statement.query_map(params_from_iter(values(&find)), row)?;
        for r in found {
            rows.push(r?);
        }
    }
    Ok(rows)
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<message::Model> {
    Ok(message::Model {
        id: r.get("id")?,
        task_id: r.get("task_id")?,
        sender: r.get("sender")?,
        recipient: r.get("recipient")?,
        category: r.get("category")?,
        style: r.get("style")?,
        kind: r.get("kind")?,
        content: r.get("content")?,
        url: r.get("url")?,
        quote: r.get("quote")?,
        ext: r.get("ext")?,
        client_msg_id: r.get("client_msg_id")?,
        created_at: r.get("created_at")?,
        is_read: r.get("is_read")?,
        is_revoke: r.get("is_revoke")?,
    })
}

fn execute(conn: &Connection, statement: &Statement) -> rusqlite::Result<usize> {
    conn.prepare_cached(&statement.sql)?
        .execute(params_from_iter(values(statement)))
}

fn values(statement: &Statement) -> impl Iterator<Item = Bound<'_>> {
    statement.values.iter().flat_map(|v| v.0.iter()).map(Bound)
}

/// A statement's value, bound by reference.
struct Bound<'a>(&'a Value);

impl ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::BigInt(Some(v)) => ToSqlOutput::from(*v),
            Value::Int(Some(v)) => ToSqlOutput::from(*v),
            Value::Bool(Some(v)) => ToSqlOutput::from(*v),
            Value::String(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::BigInt(None) | Value::Int(None) | Value::Bool(None) | Value::String(None) => {
                ToSqlOutput::from(Null)
            }
            other => {
                let unsupported = format!("no SQLite binding for {other:?}");
                return Err(rusqlite::Error::ToSqlConversionFailure(unsupported.into()));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use sea_orm::ConnectionTrait;

    fn message(task_id: i64, client_msg_id: &str) -> NewMessage {
        NewMessage {
            task_id,
            sender: "c".into(),
            recipient: "a".into(),
            category: "customer".into(),
            style: "normal".into(),
            kind: "text".into(),
            content: "hi".into(),
            url: None,
            quote: None,
            ext: None,
            client_msg_id: Some(client_msg_id.into()),
            created_at: 1,
            undelivered_for: vec!["a".into()],
        }
    }

    /// A pragma's value on one of the pool's connections.
    async fn pool_pragma(store: &Store, name: &str) -> i64 {
        store
            .connection()
            .query_one(sea_orm::Statement::from_string(
                DbBackend::Sqlite,
                format!("PRAGMA {name}"),
            ))
            .await
            .expect("pragma")
            .expect("a row")
            .try_get_by_index(0)
            .expect("a number")
    }

    /// The connection opens on the store's file with its durability and
    /// checkpoint interval, as the pool's do, and what it commits, the
    /// pool reads.
    #[tokio::test]
    async fn writes_the_file_the_pool_reads() {
        let dir = std::env::temp_dir().join(format!("kefu_direct_{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}/kefu.db?mode=rwc", dir.display());
        let store = Store::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let file = store
            .sqlite
            .clone()
            .expect("an SQLite store knows its file");
        assert_eq!(file.path, dir.join("kefu.db"));
        let mut direct = Direct::open(&file).expect("open");
        let pragma = |name: &str| -> i64 {
            direct
                .conn
                .pragma_query_value(None, name, |r| r.get(0))
                .expect("pragma")
        };
        let (synchronous, temp_store) = (pragma("synchronous"), pragma("temp_store"));
        let checkpoint = pragma("wal_autocheckpoint");
        assert_eq!(synchronous, 2, "FULL");
        assert_eq!(temp_store, 2, "statement journals in memory");
        assert_eq!(checkpoint, i64::from(crate::WAL_CHECKPOINT_PAGES));
        assert!(direct.wal_sync.is_none(), "every commit syncs itself");
        assert_eq!(pool_pragma(&store, "synchronous").await, synchronous);
        assert_eq!(pool_pragma(&store, "wal_autocheckpoint").await, checkpoint);
        let task = store
            .create_task("c", 1, Some("a"), None)
            .await
            .expect("task");
        let new = message(task.id, "x1");
        let written = direct.write_batch(&[&new, &new], &[]).expect("write");
        assert!(!written[0].duplicate && written[1].duplicate);
        assert_eq!(written[0].message, written[1].message);
        let again = direct.write_batch(&[&new], &[]).expect("resend");
        assert!(again[0].duplicate, "found through the unique index");
        assert_eq!(again[0].message, written[0].message);
        // Stored keys among new rows, keyless ones included: each new row
        // gets its own id, each stored one its first row.
        let keyless = |content: &str| NewMessage {
            client_msg_id: None,
            content: content.into(),
            ..message(task.id, "")
        };
        let (k1, k2) = (keyless("k1"), keyless("k2"));
        let (x2, x3) = (message(task.id, "x2"), message(task.id, "x3"));
        let mixed = direct
            .write_batch(&[&k1, &new, &x2, &k2, &x3, &new], &[])
            .expect("mixed");
        let duplicates: Vec<bool> = mixed.iter().map(|w| w.duplicate).collect();
        assert_eq!(duplicates, [false, true, false, false, false, true]);
        assert_eq!(mixed[1].message, written[0].message);
        assert_eq!(mixed[5].message, written[0].message);
        let stored = store
            .history(task.id, None, 10, "a")
            .await
            .expect("history");
        assert_eq!(stored.len(), 5);
        for answer in [&mixed[0], &mixed[2], &mixed[3], &mixed[4]] {
            let row = stored
                .iter()
                .find(|v| v.message.id == answer.message.id)
                .expect("the answered id is stored");
            assert_eq!(row.message.content, answer.message.content);
            assert_eq!(row.message.client_msg_id, answer.message.client_msg_id);
        }
        assert_eq!(store.offline("a", 0, 10).await.expect("offline").len(), 5);
        let all: Vec<i64> = stored.iter().map(|v| v.message.id).collect();
        direct
            .write_batch(&[], &[("a".into(), all)])
            .expect("receipt");
        assert!(store.offline("a", 0, 10).await.expect("offline").is_empty());
        drop(direct);
        let crash_safe = SqliteFile {
            durability: crate::Durability::ProcessCrash,
            ..file
        };
        let normal = Direct::open(&crash_safe).expect("open");
        let synchronous: i64 = normal
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("pragma");
        assert_eq!(
            synchronous, 1,
            "NORMAL when the store survives process crashes only"
        );
        assert!(normal.wal_sync.is_some(), "the WAL is synced beside it");
        drop(normal);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An in-memory database lives in the pool's connections only, so its
    /// writer stays on the pool.
    #[tokio::test]
    async fn an_in_memory_store_writes_through_the_pool() {
        let store = Store::connect("sqlite::memory:").await.expect("connect");
        assert!(store.sqlite.is_none());
        store.migrate().await.expect("migrate");
        let task = store
            .create_task("c", 1, Some("a"), None)
            .await
            .expect("task");
        let writer = crate::Writer::start(store.clone(), 8);
        let written = writer.write(message(task.id, "m1")).await.expect("write");
        let history = store
            .history(task.id, None, 10, "a")
            .await
            .expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].message.id, written.message.id);
    }
}
