//! The writer's statements, written out instead of built through the query
//! builder: a batch of 1,024 messages is 13,000 values, and building its
//! expression tree, then its SQL, cost the writer more than SQLite spent
//! storing the rows (docs/benchmarks.md). The shapes are fixed, so the text
//! is too; only the number of rows varies.

use super::NewMessage;
use sea_orm::{DbBackend, Statement, Value};

/// The messages' columns in the order every insert binds them.
const MESSAGE_COLUMNS: &str = "task_id, sender, recipient, category, style, kind, content, \
     url, quote, ext, client_msg_id, created_at, is_read, is_revoke";
const VALUES_PER_MESSAGE: usize = 14;

/// What an insert does with a row whose `(sender, client_msg_id)` is
/// stored already.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// Fails on the unique index.
    Fail,
    /// Skips it, and the statement returns `id, sender, client_msg_id` of
    /// the rows it inserted (SQLite and PostgreSQL).
    SkipAndReturn,
    /// Skips it, returning nothing (SQLite's `INSERT OR IGNORE`). A
    /// statement that cannot fail needs no statement journal to back it
    /// out alone, which every multi-row insert that can fail does.
    Ignore,
}

/// `INSERT INTO messages … VALUES …` for `rows`, in order.
pub(super) fn insert_messages(
    backend: DbBackend,
    rows: &[&NewMessage],
    stored: Stored,
) -> Statement {
    let verb = match stored {
        Stored::Ignore => "INSERT OR IGNORE",
        Stored::Fail | Stored::SkipAndReturn => "INSERT",
    };
    let mut sql = format!("{verb} INTO messages ({MESSAGE_COLUMNS}) VALUES ");
    let mut values = Vec::with_capacity(rows.len() * VALUES_PER_MESSAGE);
    for (i, m) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        tuple(backend, &mut sql, values.len(), VALUES_PER_MESSAGE);
        values.extend([
            Value::from(m.task_id),
            Value::from(m.sender.clone()),
            Value::from(m.recipient.clone()),
            Value::from(m.category.clone()),
            Value::from(m.style.clone()),
            Value::from(m.kind.clone()),
            Value::from(m.content.clone()),
            Value::from(m.url.clone()),
            Value::from(m.quote),
            Value::from(m.ext.clone()),
            Value::from(m.client_msg_id.clone()),
            Value::from(m.created_at),
            Value::from(false),
            Value::from(false),
        ]);
    }
    if stored == Stored::SkipAndReturn {
        sql.push_str(
            " ON CONFLICT (sender, client_msg_id) DO NOTHING \
             RETURNING id, sender, client_msg_id",
        );
    }
    Statement::from_sql_and_values(backend, sql, values)
}

/// `INSERT INTO undelivered …` for `(user, message id)` marks.
pub(super) fn insert_marks(backend: DbBackend, marks: &[(&str, i64)]) -> Statement {
    let mut sql = String::from("INSERT INTO undelivered (user_id, message_id) VALUES ");
    let mut values = Vec::with_capacity(marks.len() * 2);
    for (i, &(user, id)) in marks.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        tuple(backend, &mut sql, values.len(), 2);
        values.extend([Value::from(user), Value::from(id)]);
    }
    Statement::from_sql_and_values(backend, sql, values)
}

/// `DELETE FROM undelivered` for `(user, message id)` marks.
pub(super) fn delete_marks(backend: DbBackend, marks: &[(&str, i64)]) -> Statement {
    for_any_pair(
        backend,
        "DELETE FROM undelivered WHERE ",
        ("user_id", "message_id"),
        marks,
    )
}

/// `DELETE FROM undelivered` for one user's marks of these messages. On
/// MySQL this is how receipts are deleted: the row-value IN of
/// [`delete_marks`] had MariaDB scan and lock ranges of the primary key, and
/// two workers deleting receipts at once deadlocked; `user_id = ? AND
/// message_id IN (…)` locks only the rows it deletes.
pub(super) fn delete_marks_of(backend: DbBackend, user: &str, ids: &[i64]) -> Statement {
    let mut sql = String::from("DELETE FROM undelivered WHERE user_id = ");
    placeholder(backend, &mut sql, 0);
    sql.push_str(" AND message_id IN ");
    tuple(backend, &mut sql, 1, ids.len());
    let values: Vec<Value> = std::iter::once(user.into())
        .chain(ids.iter().map(|&id| id.into()))
        .collect();
    Statement::from_sql_and_values(backend, sql, values)
}

/// `SELECT * FROM messages` under these `(sender, client_msg_id)` keys.
pub(super) fn find_keys(backend: DbBackend, keys: &[(&str, &str)]) -> Statement {
    for_any_pair(
        backend,
        "SELECT * FROM messages WHERE ",
        ("sender", "client_msg_id"),
        keys,
    )
}

/// `head` followed by a condition true for any of `pairs` of the columns.
fn for_any_pair<X, Y>(
    backend: DbBackend,
    head: &str,
    (a, b): (&str, &str),
    pairs: &[(X, Y)],
) -> Statement
where
    X: Into<Value> + Copy,
    Y: Into<Value> + Copy,
{
    let mut sql = String::from(head);
    any_pair(backend, &mut sql, a, b, pairs.len());
    let values = pairs
        .iter()
        .flat_map(|&(x, y)| [x.into(), y.into()])
        .collect::<Vec<Value>>();
    Statement::from_sql_and_values(backend, sql, values)
}

/// A condition true for any of `n` pairs of `a` and `b`, each pair one
/// probe of a two-column index (an IN list per column would probe every a
/// with every b). MySQL gets a row-value IN, which it checks against a
/// sorted list, where `(a = x AND b = y) OR …` costs it every comparison for
/// every row; SQLite and PostgreSQL plan the OR form well.
fn any_pair(backend: DbBackend, sql: &mut String, a: &str, b: &str, n: usize) {
    if backend == DbBackend::MySql {
        sql.push_str(&format!("({a}, {b}) IN ("));
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            tuple(backend, sql, 2 * i, 2);
        }
        sql.push(')');
        return;
    }
    for i in 0..n {
        if i > 0 {
            sql.push_str(" OR ");
        }
        sql.push_str(&format!("({a} = "));
        placeholder(backend, sql, 2 * i);
        sql.push_str(&format!(" AND {b} = "));
        placeholder(backend, sql, 2 * i + 1);
        sql.push(')');
    }
}

/// `(p, p, …)` with `n` placeholders, the first for value number `first`.
fn tuple(backend: DbBackend, sql: &mut String, first: usize, n: usize) {
    sql.push('(');
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        placeholder(backend, sql, first + i);
    }
    sql.push(')');
}

/// The placeholder of value number `index` (from 0): `?`, or `$1` on
/// PostgreSQL.
fn placeholder(backend: DbBackend, sql: &mut String, index: usize) {
    use std::fmt::Write;
    match backend {
        DbBackend::Postgres => {
            let _ = write!(sql, "${}", index + 1);
        }
        _ => sql.push('?'),
    }
}

/// Records a customer, or renames one; a row of another role is left
/// alone.
pub(crate) fn record_customer(backend: DbBackend, id: &str, name: &str, now: i64) -> Statement {
    record_customers(backend, &[(id, name)], now)
}

/// Records customers (`(id, name)`, one row each), or renames them; a row
/// of another role is left alone.
pub(crate) fn record_customers(backend: DbBackend, rows: &[(&str, &str)], now: i64) -> Statement {
    let mut sql =
        String::from("INSERT INTO users (id, role, name, status, created_at, disabled) VALUES ");
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 4);
    for (i, (id, name)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        placeholder(backend, &mut sql, 4 * i);
        sql.push_str(", 'customer', ");
        placeholder(backend, &mut sql, 4 * i + 1);
        sql.push_str(", 'available', ");
        placeholder(backend, &mut sql, 4 * i + 2);
        sql.push_str(", ");
        placeholder(backend, &mut sql, 4 * i + 3);
        sql.push(')');
        values.extend([(*id).into(), (*name).into(), now.into(), false.into()]);
    }
    sql.push_str(match backend {
        DbBackend::MySql => {
            " ON DUPLICATE KEY UPDATE name = IF(role = 'customer', VALUES(name), name)"
        }
        _ => {
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name \
             WHERE users.role = 'customer'"
        }
    });
    Statement::from_sql_and_values(backend, sql, values)
}

/// Draws the next task sequence number (the statement's row id).
pub(crate) fn draw_task_sequence(backend: DbBackend, now: i64) -> Statement {
    draw_task_sequences(backend, 1, now, false)
}

/// Draws `n` task sequence numbers in one insert, returning their ids when
/// `returning` (PostgreSQL).
pub(crate) fn draw_task_sequences(
    backend: DbBackend,
    n: usize,
    now: i64,
    returning: bool,
) -> Statement {
    let mut sql = String::from("INSERT INTO task_sequence (created_at) VALUES ");
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        tuple(backend, &mut sql, i, 1);
    }
    if returning {
        sql.push_str(" RETURNING id");
    }
    let values: Vec<Value> = (0..n).map(|_| now.into()).collect();
    Statement::from_sql_and_values(backend, sql, values)
}

/// `SELECT id FROM users WHERE id IN (…) ORDER BY id FOR UPDATE`.
pub(crate) fn lock_users(backend: DbBackend, ids: &[String]) -> Statement {
    let mut sql = String::from("SELECT id FROM users WHERE id IN ");
    tuple(backend, &mut sql, 0, ids.len());
    sql.push_str(" ORDER BY id FOR UPDATE");
    let values: Vec<Value> = ids.iter().map(|id| id.clone().into()).collect();
    Statement::from_sql_and_values(backend, sql, values)
}

/// Open tasks per agent among `ids`: rows of `agent_id`, `n`.
pub(crate) fn count_open_tasks(backend: DbBackend, ids: &[String]) -> Statement {
    let mut sql = String::from(
        "SELECT agent_id, COUNT(*) AS n FROM tasks WHERE status = 'open' AND agent_id IN ",
    );
    tuple(backend, &mut sql, 0, ids.len());
    sql.push_str(" GROUP BY agent_id");
    let values: Vec<Value> = ids.iter().map(|id| id.clone().into()).collect();
    Statement::from_sql_and_values(backend, sql, values)
}

/// Inserts tasks and, for those assigned, their agents.
pub(crate) fn insert_tasks(
    backend: DbBackend,
    rows: &[crate::entity::task::Model],
) -> Vec<Statement> {
    let mut sql = String::from(
        "INSERT INTO tasks (id, customer_id, agent_id, status, created_at, client_ip) VALUES ",
    );
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 6);
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        tuple(backend, &mut sql, 6 * i, 6);
        values.extend([
            row.id.into(),
            row.customer_id.clone().into(),
            row.agent_id.clone().into(),
            row.status.clone().into(),
            row.created_at.into(),
            row.client_ip.clone().into(),
        ]);
    }
    let mut out = vec![Statement::from_sql_and_values(backend, sql, values)];
    let assigned: Vec<_> = rows.iter().filter(|r| r.agent_id.is_some()).collect();
    if !assigned.is_empty() {
        let mut sql =
            String::from("INSERT INTO task_agents (task_id, agent_id, assigned_at) VALUES ");
        let mut values: Vec<Value> = Vec::with_capacity(assigned.len() * 3);
        for (i, row) in assigned.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            tuple(backend, &mut sql, 3 * i, 3);
            values.extend([
                row.id.into(),
                row.agent_id.clone().into(),
                row.created_at.into(),
            ]);
        }
        out.push(Statement::from_sql_and_values(backend, sql, values));
    }
    out
}

/// The row of a task opened with sequence number `seq`.
pub(crate) fn new_task_row(t: &super::NewTask, seq: i64, now: i64) -> crate::entity::task::Model {
    crate::entity::task::Model {
        id: kefu_protocol::shard::task_id(seq, t.shard),
        customer_id: t.customer.clone(),
        agent_id: t.agent.clone(),
        status: if t.agent.is_some() {
            crate::tasks::OPEN
        } else {
            crate::tasks::WAITING
        }
        .to_owned(),
        created_at: now,
        ended_at: None,
        rating_score: None,
        rating_comment: None,
        client_ip: t.client_ip.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_on_postgres_only() {
        let marks = [("a", 1), ("b", 2)];
        assert_eq!(
            insert_marks(DbBackend::Postgres, &marks).sql,
            "INSERT INTO undelivered (user_id, message_id) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(
            delete_marks(DbBackend::Postgres, &marks).sql,
            "DELETE FROM undelivered WHERE (user_id = $1 AND message_id = $2) \
             OR (user_id = $3 AND message_id = $4)"
        );
        assert_eq!(
            delete_marks(DbBackend::MySql, &marks).sql,
            "DELETE FROM undelivered WHERE (user_id, message_id) IN ((?, ?), (?, ?))"
        );
        assert_eq!(
            delete_marks_of(DbBackend::MySql, "a", &[1, 2]).sql,
            "DELETE FROM undelivered WHERE user_id = ? AND message_id IN (?, ?)"
        );
    }
}
