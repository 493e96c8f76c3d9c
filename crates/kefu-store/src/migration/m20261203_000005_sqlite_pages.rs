//! Fewer pages per SQLite commit: every commit of a message wrote, besides
//! the message and its indexes, the `sqlite_sequence` row that
//! `AUTOINCREMENT` keeps for `messages`, and the undelivered marks twice,
//! once in the table and once in its primary-key index. Two of the eight
//! or so pages a commit writes to the WAL and syncs (docs/benchmarks.md).
//!
//! On SQLite, `messages.id` becomes the table's plain rowid: a new row
//! takes the largest id plus one, which is the same sequence as long as
//! no message row is ever deleted (none is; hiding one for a user is a
//! row of `message_deletes`). `undelivered` becomes a `WITHOUT ROWID`
//! table, stored in its primary key's order only. MySQL and PostgreSQL are
//! untouched: their tables are already stored by primary key, and their
//! sequences are not rows of a table.
//!
//! SQLite changes neither in place, so each table is rebuilt (its rows
//! copied, ids kept) in one transaction: on a large database the upgrade
//! takes as long as copying its messages once.

use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000005_sqlite_pages"
    }
}

/// The `messages` table as the first migration made it, but for its id.
fn messages_table(id: &str) -> String {
    format!(
        r#"CREATE TABLE "messages" ( "id" {id}, "task_id" bigint NOT NULL, "sender" varchar(128) NOT NULL, "recipient" varchar(128) NOT NULL, "category" varchar(16) NOT NULL, "style" varchar(16) NOT NULL, "kind" varchar(16) NOT NULL, "content" text NOT NULL, "url" varchar(2048) NULL, "quote" bigint NULL, "ext" text NULL, "client_msg_id" varchar(64) NULL, "created_at" bigint NOT NULL, "is_read" boolean NOT NULL, "is_revoke" boolean NOT NULL )"#
    )
}

const MESSAGES_INDEXES: [&str; 3] = [
    r#"CREATE UNIQUE INDEX "uq_messages_client_msg" ON "messages" ("sender", "client_msg_id")"#,
    r#"CREATE INDEX "idx_messages_task" ON "messages" ("task_id", "id")"#,
    r#"CREATE INDEX "idx_messages_unread" ON "messages" ("recipient", "is_read", "task_id")"#,
];

fn undelivered_table(rowid: bool) -> String {
    let without = if rowid { "" } else { " WITHOUT ROWID" };
    format!(
        r#"CREATE TABLE "undelivered" ( "user_id" varchar(128) NOT NULL, "message_id" bigint NOT NULL, PRIMARY KEY ("user_id", "message_id") ){without}"#
    )
}

/// Replaces `table` by one made with `create`, rows and ids kept, then
/// makes `indexes` on it.
fn rebuild(table: &str, create: &str, indexes: &[&str]) -> Vec<String> {
    let old = format!("{table}_before_m5");
    let mut steps = vec![
        format!(r#"ALTER TABLE "{table}" RENAME TO "{old}""#),
        create.to_owned(),
        format!(r#"INSERT INTO "{table}" SELECT * FROM "{old}""#),
        // Dropping the old table drops its indexes, freeing their names,
        // and its `AUTOINCREMENT` sequence, which the rename carried over.
        format!(r#"DROP TABLE "{old}""#),
    ];
    steps.extend(indexes.iter().map(|i| (*i).to_owned()));
    steps
}

/// Runs `steps` in one transaction, on SQLite only.
async fn on_sqlite(m: &SchemaManager<'_>, steps: Vec<String>) -> Result<(), DbErr> {
    if m.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    let txn = m.get_connection().begin().await?;
    for step in steps {
        txn.execute_unprepared(&step).await?;
    }
    txn.commit().await?;
    // The copy went through the WAL, which would otherwise keep its size
    // (that of the tables) on disk until the database is next closed.
    m.get_connection()
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .map(drop)
}

/// The steps to the lean tables (`lean`) or back to the first migration's.
fn steps(lean: bool) -> Vec<String> {
    let id = if lean {
        "integer NOT NULL PRIMARY KEY"
    } else {
        // Copying rows with their ids into an AUTOINCREMENT table sets its
        // sequence to the largest.
        "integer NOT NULL PRIMARY KEY AUTOINCREMENT"
    };
    let mut steps = rebuild("messages", &messages_table(id), &MESSAGES_INDEXES);
    steps.extend(rebuild("undelivered", &undelivered_table(!lean), &[]));
    steps
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        on_sqlite(m, steps(true)).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        on_sqlite(m, steps(false)).await
    }
}

#[cfg(test)]
mod tests {
    use crate::migration::Migrator;
    use crate::{NewMessage, Store, Writer};
    use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
    use sea_orm_migration::MigratorTrait;

    /// The first column of every row `sql` returns.
    async fn column<T: sea_orm::TryGetable>(db: &DatabaseConnection, sql: &str) -> Vec<T> {
        let rows = db
            .query_all(Statement::from_string(DbBackend::Sqlite, sql))
            .await
            .expect("query");
        rows.iter()
            .map(|r| r.try_get_by_index::<T>(0).expect("a value"))
            .collect()
    }

    async fn table_sql(db: &DatabaseConnection, table: &str) -> String {
        let sql =
            format!("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{table}'");
        column::<String>(db, &sql).await.pop().expect("the table")
    }

    /// The sequence `AUTOINCREMENT` keeps for `messages`, if any.
    async fn sequence(db: &DatabaseConnection) -> Option<i64> {
        column::<i64>(
            db,
            "SELECT seq FROM sqlite_sequence WHERE name = 'messages'",
        )
        .await
        .pop()
    }

    async fn run(db: &DatabaseConnection, sql: &str) {
        db.execute_unprepared(sql).await.expect(sql);
    }

    /// A database at the previous migration, holding messages and marks,
    /// upgrades with every row and id kept; a new message then takes the
    /// next id, and the marks still count; going back down restores the
    /// sequence.
    #[tokio::test]
    async fn sqlite_upgrades_keeping_rows_and_ids_and_goes_back() {
        let file = crate::tests::database("sqlite").expect("SQLite needs no server");
        let store = Store::connect(&file.url).await.expect("connect");
        let db = store.connection();
        Migrator::up(db, Some(4)).await.expect("up to the fourth");
        let task = store
            .create_task("c", 1, Some("agent-1"), None)
            .await
            .expect("task");
        let t = task.id;
        for id in [3, 7, 41] {
            run(
                db,
                &format!(
                    "INSERT INTO messages (id, task_id, sender, recipient, category, style, kind, \
                     content, client_msg_id, created_at, is_read, is_revoke) \
                     VALUES ({id}, {t}, 'c', 'agent-1', 'customer', 'normal', 'text', 'm{id}', 'k{id}', \
                     1, false, false)"
                ),
            )
            .await;
        }
        run(
            db,
            "INSERT INTO undelivered VALUES ('agent-1', 7), ('agent-1', 41)",
        )
        .await;
        assert!(table_sql(db, "messages").await.contains("AUTOINCREMENT"));
        assert_eq!(sequence(db).await, Some(41));

        store.migrate().await.expect("upgrade");
        let messages = table_sql(db, "messages").await;
        assert!(
            messages.contains(r#""id" integer NOT NULL PRIMARY KEY,"#),
            "{messages}"
        );
        assert!(table_sql(db, "undelivered")
            .await
            .ends_with("WITHOUT ROWID"));
        assert_eq!(sequence(db).await, None);
        let indexes: Vec<String> = column(
            db,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' \
             ORDER BY name",
        )
        .await;
        assert_eq!(
            indexes,
            [
                "idx_messages_task",
                "idx_messages_unread",
                "uq_messages_client_msg"
            ]
            .map(String::from)
        );
        assert_eq!(
            column::<i64>(db, "SELECT id FROM messages ORDER BY id").await,
            [3, 7, 41]
        );
        let offline: Vec<i64> = store
            .offline("agent-1", 0, 10)
            .await
            .expect("offline")
            .iter()
            .map(|m| m.message.id)
            .collect();
        assert_eq!(offline, [7, 41]);

        let writer = Writer::start(store.clone(), 8);
        let new = crate::tests::message("c", "k42", t);
        let written = writer.write(new.clone()).await.expect("write");
        assert_eq!(written.message.id, 42, "the largest id plus one");
        let resent = writer
            .write(NewMessage {
                client_msg_id: Some("k7".into()),
                ..new
            })
            .await
            .expect("a resend");
        assert!(resent.duplicate);
        assert_eq!(resent.message.id, 7);
        assert_eq!(
            store
                .offline("agent-1", 0, 10)
                .await
                .expect("offline")
                .len(),
            3
        );
        drop(writer);

        Migrator::down(db, Some(1)).await.expect("down one");
        assert!(table_sql(db, "messages").await.contains("AUTOINCREMENT"));
        assert!(!table_sql(db, "undelivered").await.contains("WITHOUT ROWID"));
        assert_eq!(sequence(db).await, Some(42));
        assert_eq!(
            column::<i64>(db, "SELECT message_id FROM undelivered").await,
            [7, 41, 42]
        );
    }
}
