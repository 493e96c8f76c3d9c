//! A batch through the store's pool: MySQL and PostgreSQL, and SQLite when
//! the writer has no connection of its own.

use super::batch::{
    answers, confirmed, first_occurrences, inserted_and_skipped, key, marks, padded, returned_ids,
    shaped, Key, TakenRow, ROWS_PER_STATEMENT,
};
use super::{sql, NewMessage, Written};
use crate::entity::{message, task};
use crate::{Result, Store, StoreError};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryResult, Statement,
};
use std::collections::HashMap;

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
    /// reported (MySQL); stored keys are looked up only when the insert
    /// fails on them.
    Consecutive,
    /// One row at a time (MySQL with `innodb_autoinc_lock_mode = 2`, where
    /// a multi-row insert's ids need not be consecutive).
    OneByOne,
}

impl Pool {
    pub async fn new(store: Store) -> Pool {
        Self::beside(store.clone(), &store).await
    }

    /// A pool writing through `store` as `shared` inserts: the writer's own
    /// connection opens at its first batch, so the server is asked through
    /// the connections that found it at start.
    pub async fn beside(store: Store, shared: &Store) -> Pool {
        let insert = insert_of(shared).await;
        Pool { store, insert }
    }

    /// Guarded steps in one transaction (SQLite's writer on the pool).
    pub async fn guarded(&self, steps: &[super::Guarded]) -> Result<Vec<u64>> {
        let txn = self.store.db.begin().await?;
        let mut changed = Vec::with_capacity(steps.len());
        for step in steps {
            let n = txn.execute(step.change.clone()).await?.rows_affected();
            if n > 0 {
                if let Some(then) = &step.then {
                    txn.execute(then.clone()).await?;
                }
            }
            changed.push(n);
        }
        txn.commit().await?;
        Ok(changed)
    }

    /// Opens tasks in one transaction; if it fails (a deadlock with an
    /// assignment locking agents in another order), each in a transaction
    /// of its own.
    pub async fn open_tasks(&self, tasks: &[super::NewTask]) -> Vec<Result<task::Model>> {
        match self.open_together(tasks).await {
            Ok(rows) => rows.into_iter().map(Ok).collect(),
            Err(e) if e.is_unreachable() || tasks.len() == 1 => {
                let e = e.to_string();
                tasks
                    .iter()
                    .map(|_| Err(StoreError::Conflict(format!("cannot open the task: {e}"))))
                    .collect()
            }
            Err(_) => {
                let mut out = Vec::with_capacity(tasks.len());
                for t in tasks {
                    out.push(
                        self.open_together(std::slice::from_ref(t))
                            .await
                            .map(|mut r| r.remove(0)),
                    );
                }
                out
            }
        }
    }

    /// A batch of opens in one transaction, a few statements for the whole
    /// batch: the customers, the agents' capacity (their rows locked in id
    /// order, their open tasks counted once), the sequence numbers, the
    /// tasks and their agents.
    async fn open_together(&self, tasks: &[super::NewTask]) -> Result<Vec<task::Model>> {
        let backend = self.store.backend();
        let now = kefu_protocol::now_ms();
        let txn = self.store.db.begin().await?;
        let mut customers: Vec<(&str, &str)> = tasks
            .iter()
            .filter(|t| !t.name.is_empty())
            .map(|t| (t.customer.as_str(), t.name.as_str()))
            .collect();
        // One row per customer: PostgreSQL refuses to update a row twice in
        // one statement.
        customers.reverse();
        let mut seen = std::collections::HashSet::new();
        customers.retain(|(id, _)| seen.insert(*id));
        for chunk in customers.chunks(ROWS_PER_STATEMENT) {
            txn.execute(sql::record_customers(backend, chunk, now))
                .await?;
        }
        let agents = self.room_of(&txn, tasks).await?;
        let seqs = draw_sequences(&txn, self.insert, tasks.len(), now).await?;
        let mut left = agents;
        let rows: Vec<task::Model> = tasks
            .iter()
            .zip(seqs)
            .map(|(t, seq)| {
                let agent = t.agent.clone().filter(|a| match left.get_mut(a) {
                    Some(room) if *room > 0 => {
                        *room -= 1;
                        true
                    }
                    Some(_) => false,
                    // Not checked: no capacity asked, or SQLite.
                    None => true,
                });
                sql::new_task_row(&super::NewTask { agent, ..t.clone() }, seq, now)
            })
            .collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            for statement in sql::insert_tasks(backend, chunk) {
                txn.execute(statement).await?;
            }
        }
        txn.commit().await?;
        Ok(rows)
    }

    /// The open slots of the agents the batch would assign with a capacity,
    /// their rows locked until the transaction ends (in id order, as every
    /// batch locks them, so two batches cannot deadlock on each other).
    async fn room_of(
        &self,
        txn: &DatabaseTransaction,
        tasks: &[super::NewTask],
    ) -> Result<HashMap<String, i64>> {
        let backend = self.store.backend();
        if backend == DbBackend::Sqlite {
            return Ok(HashMap::new());
        }
        let mut capacity: HashMap<String, i64> = HashMap::new();
        for t in tasks {
            if let (Some(agent), Some(cap)) = (&t.agent, t.capacity) {
                capacity.insert(agent.clone(), cap);
            }
        }
        if capacity.is_empty() {
            return Ok(capacity);
        }
        let mut ids: Vec<&String> = capacity.keys().collect();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            txn.query_all(sql::lock_users(backend, chunk)).await?;
        }
        let mut open: HashMap<String, i64> = HashMap::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            for row in txn.query_all(sql::count_open_tasks(backend, chunk)).await? {
                let agent: String = row.try_get("", "agent_id")?;
                let n: i64 = row.try_get("", "n")?;
                open.insert(agent, n);
            }
        }
        Ok(capacity
            .into_iter()
            .map(|(agent, cap)| {
                let used = open.get(&agent).copied().unwrap_or(0);
                (agent, (cap - used).max(0))
            })
            .collect())
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
        let stored = match self.insert {
            Insert::SkipAndReturn => Vec::new(),
            // Most batches hold no resend of a stored key, so they go in
            // without the lookup (a seventh of the cluster's statements);
            // one that does fails on the unique index, changes nothing,
            // and is written again after the lookup.
            Insert::Consecutive => match self.write_with(batch, receipts, Vec::new()).await {
                Err(e) if is_duplicate_key(&e) => existing(&self.store.db, keys(batch)).await?,
                written => return written,
            },
            Insert::OneByOne => existing(&self.store.db, keys(batch)).await?,
        };
        self.write_with(batch, receipts, stored).await
    }

    /// [`Pool::write_batch`] once the batch's `stored` keys are known (none
    /// where the insert skips them itself, or is to fail on them).
    async fn write_with(
        &self,
        batch: &[&NewMessage],
        receipts: &[(String, Vec<i64>)],
        mut stored: Vec<message::Model>,
    ) -> Result<Vec<Written>> {
        let db = &self.store.db;
        let backend = self.store.backend();
        let fresh = first_occurrences(batch, &stored);
        let txn = db.begin().await?;
        let ids = match insert(&txn, &fresh, self.insert).await {
            Ok(ids) => ids,
            Err(e) => {
                // At once, not when the connection is next used: the rows
                // inserted so far hold their keys' locks until then, and
                // the batch's next attempt inserts the same keys.
                let _ = txn.rollback().await;
                return Err(e);
            }
        };
        let (inserted, skipped) = inserted_and_skipped(&fresh, ids);
        if !skipped.is_empty() {
            stored.extend(existing(&txn, skipped.into_iter()).await?);
        }
        for chunk in shaped(&marks(&inserted)) {
            txn.execute(sql::insert_marks(backend, chunk)).await?;
        }
        if backend == DbBackend::MySql {
            let mut by_user: HashMap<&str, Vec<i64>> = HashMap::new();
            for (user, ids) in receipts {
                by_user.entry(user).or_default().extend(ids);
            }
            let mut users: Vec<_> = by_user.into_iter().collect();
            users.sort_unstable();
            for (user, mut ids) in users {
                ids.sort_unstable();
                for chunk in padded(&ids) {
                    txn.execute(sql::delete_marks_of(backend, user, &chunk))
                        .await?;
                }
            }
        } else {
            for chunk in padded(&confirmed(receipts)) {
                txn.execute(sql::delete_marks(backend, &chunk)).await?;
            }
        }
        txn.commit().await?;
        answers(batch, inserted, &stored)
    }
}

/// `n` new task sequence numbers: one multi-row insert where the backend
/// tells its ids, else one insert each.
async fn draw_sequences(
    txn: &DatabaseTransaction,
    insert: Insert,
    n: usize,
    now: i64,
) -> Result<Vec<i64>> {
    let backend = txn.get_database_backend();
    let mut seqs = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let k = left.min(ROWS_PER_STATEMENT);
        left -= k;
        match (backend, insert) {
            (DbBackend::Postgres, _) => {
                let statement = sql::draw_task_sequences(backend, k, now, true);
                let mut ids = Vec::with_capacity(k);
                for row in txn.query_all(statement).await? {
                    ids.push(row.try_get::<i64>("", "id")?);
                }
                ids.sort_unstable();
                seqs.extend(ids);
            }
            (DbBackend::MySql, Insert::Consecutive) => {
                let statement = sql::draw_task_sequences(backend, k, now, false);
                let first = txn.execute(statement).await?.last_insert_id() as i64;
                seqs.extend(first..first + k as i64);
            }
            _ => {
                for _ in 0..k {
                    let statement = sql::draw_task_sequences(backend, 1, now, false);
                    seqs.push(txn.execute(statement).await?.last_insert_id() as i64);
                }
            }
        }
    }
    Ok(seqs)
}

/// How `store`'s server lets a multi-row insert tell its ids.
async fn insert_of(store: &Store) -> Insert {
    match store.backend() {
        DbBackend::MySql if ids_are_consecutive(store).await => Insert::Consecutive,
        DbBackend::MySql => Insert::OneByOne,
        _ => Insert::SkipAndReturn,
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
    for chunk in padded(&keys) {
        let statement = sql::find_keys(db.get_database_backend(), &chunk);
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
    for chunk in shaped(rows) {
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

/// The keys of a batch's messages that have one.
fn keys<'a>(batch: &'a [&NewMessage]) -> impl Iterator<Item = Key<'a>> {
    batch.iter().filter_map(|m| key(m))
}

/// A statement refused for a key the unique index already holds.
fn is_duplicate_key(e: &StoreError) -> bool {
    let StoreError::Db(e) = e else {
        return false;
    };
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{cleanup, fresh_with_task, message, offline_len};

    /// A batch holding a resend of a stored key, behind a full chunk of new
    /// messages: on MySQL its first insert fails on the unique index after
    /// that chunk went in, and is written again after the lookup; nothing
    /// of the failed attempt is left, and the batch's receipts count once.
    async fn a_resend_behind_a_full_chunk_gets_its_first_row(backend: &str) {
        let Some((store, db, task)) = fresh_with_task(backend).await else {
            return;
        };
        let pool = Pool::new(store.clone()).await;
        let first: Vec<NewMessage> = (0..3)
            .map(|i| message("cust", &format!("s{i}"), task.id))
            .collect();
        let stored = pool
            .write_batch(&first.iter().collect::<Vec<_>>(), &[])
            .await
            .expect("first batch");
        let mut batch: Vec<NewMessage> = (0..ROWS_PER_STATEMENT + 6)
            .map(|i| message("cust", &format!("n{i}"), task.id))
            .collect();
        batch.push(message("cust", "s1", task.id));
        let receipt = vec![("agent-1".to_owned(), vec![stored[0].message.id])];
        let written = pool
            .write_batch(&batch.iter().collect::<Vec<_>>(), &receipt)
            .await
            .expect("a batch with a resend is written");
        let (resend, new) = written.split_last().expect("answers");
        assert!(resend.duplicate);
        assert_eq!(resend.message.id, stored[1].message.id);
        assert!(new.iter().all(|w| !w.duplicate));
        assert!(new[0].message.id > stored[2].message.id);
        assert!(new.windows(2).all(|w| w[0].message.id < w[1].message.id));
        for (w, m) in new.iter().zip(&batch) {
            assert_eq!(w.message.client_msg_id, m.client_msg_id);
        }
        let history = store
            .history(task.id, None, 500, "agent-1")
            .await
            .expect("history");
        assert_eq!(history.len(), 3 + new.len(), "no row twice, none lost");
        assert_eq!(offline_len(&store, "agent-1").await, 2 + new.len());
        cleanup(db).await;
    }

    #[tokio::test]
    async fn sqlite_pool() {
        a_resend_behind_a_full_chunk_gets_its_first_row("sqlite_pool").await;
    }

    #[tokio::test]
    #[cfg_attr(not(kefu_test_mysql), ignore = "needs KEFU_TEST_MYSQL_URL")]
    async fn mysql() {
        a_resend_behind_a_full_chunk_gets_its_first_row("mysql").await;
    }

    #[tokio::test]
    #[cfg_attr(not(kefu_test_postgres), ignore = "needs KEFU_TEST_POSTGRES_URL")]
    async fn postgres() {
        a_resend_behind_a_full_chunk_gets_its_first_row("postgres").await;
    }
}
