//! The store on every backend: SQLite always (its writer on a connection of
//! its own, and on the pool as when that cannot open), MySQL and PostgreSQL
//! when `KEFU_TEST_MYSQL_URL` / `KEFU_TEST_POSTGRES_URL` name a server.

use crate::messages::QUEUE_PLACE;
use crate::writer::Hold;
use crate::{NewMessage, NewTask, Store, Writer};
use kefu_protocol::token::SYSTEM_USER;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

pub(crate) struct TestDb {
    pub(crate) url: String,
    _dir: Option<tempdir::Dir>,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn unique() -> String {
    format!("kefu_t_{:016x}", rand::random::<u64>())
}

/// A fresh database on `backend`, or None (printed) when its URL is not set.
pub(crate) fn database(backend: &str) -> Option<TestDb> {
    match backend {
        "sqlite" | "sqlite_pool" => {
            let dir = std::env::temp_dir().join(unique());
            std::fs::create_dir_all(&dir).expect("temp dir");
            Some(TestDb {
                url: format!("sqlite://{}/kefu.db?mode=rwc", dir.display()),
                _dir: Some(tempdir::Dir(dir)),
            })
        }
        other => {
            // Ignored at build time unless the URL is set (build.rs).
            let var = format!("KEFU_TEST_{}_URL", other.to_uppercase());
            let base = std::env::var(&var).unwrap_or_else(|_| {
                panic!("{var} is not set: this test needs the server it names")
            });
            let (server, _) = base.rsplit_once('/').expect("url with a database name");
            Some(TestDb {
                url: format!("{server}/{}", unique()),
                _dir: None,
            })
        }
    }
}

async fn fresh(backend: &str) -> Option<(Store, TestDb)> {
    let db = database(backend)?;
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
        .migrate()
        .await
        .expect("migrating twice changes nothing");
    Some((store, db))
}

/// The writer `backend` is tested with.
fn writer(store: &Store, backend: &str, max_batch: usize) -> Writer {
    Writer::start_on(store.clone(), max_batch, backend != "sqlite_pool")
}

pub(crate) async fn cleanup(db: TestDb) {
    if !db.url.starts_with("sqlite:") {
        crate::drop_database(&db.url).await.expect("drop database");
    }
}

pub(crate) fn message(sender: &str, client_msg_id: &str, task_id: i64) -> NewMessage {
    NewMessage {
        task_id,
        sender: sender.into(),
        recipient: "agent-1".into(),
        category: "customer".into(),
        style: "normal".into(),
        kind: "text".into(),
        content: format!("hello {client_msg_id}"),
        url: None,
        quote: None,
        ext: None,
        client_msg_id: Some(client_msg_id.into()),
        created_at: kefu_protocol::now_ms(),
        undelivered_for: vec!["agent-1".into()],
    }
}

/// A fresh database on `backend` with one task of customer "cust" on shard
/// 7, assigned to "agent-1"; None when the backend's URL is not set.
pub(crate) async fn fresh_with_task(
    backend: &str,
) -> Option<(Store, TestDb, crate::entity::task::Model)> {
    let (store, db) = fresh(backend).await?;
    let task = store
        .create_task("cust", 7, Some("agent-1"), None)
        .await
        .expect("task");
    Some((store, db, task))
}

async fn group_commit_keeps_order_and_dedups(backend: &str) {
    let Some((store, db, task)) = fresh_with_task(backend).await else {
        return;
    };
    assert_eq!(kefu_protocol::shard::of_task(task.id), 7);
    let writer = writer(&store, backend, 64);
    let mut pending = Vec::new();
    for i in 0..100 {
        pending.push(
            writer
                .enqueue(message("cust", &format!("m{}", i % 60), task.id))
                .await
                .expect("queued"),
        );
    }
    let mut ids = Vec::new();
    let mut duplicates = 0;
    for (i, p) in pending.into_iter().enumerate() {
        let w = p.await.expect("answered").expect("written");
        assert_eq!(w.message.client_msg_id, Some(format!("m{}", i % 60)));
        if w.duplicate {
            duplicates += 1;
            assert_eq!(w.message.id, ids[i % 60], "a resend gets the first row");
        } else {
            ids.push(w.message.id);
        }
    }
    assert_eq!(duplicates, 40, "m0..m39 were sent twice");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids increase in send order"
    );
    let again = writer
        .write(message("cust", "m5", task.id))
        .await
        .expect("written");
    assert!(again.duplicate);
    assert_eq!(again.message.id, ids[5]);
    // Stored keys and new ones queued together: the resends get their first
    // rows, the new messages rows of their own, in order.
    let mut mixed = Vec::new();
    for cmid in ["m1", "n1", "m2", "n2", "n3"] {
        mixed.push(
            writer
                .enqueue(message("cust", cmid, task.id))
                .await
                .expect("queued"),
        );
    }
    let mut answers = Vec::new();
    for p in mixed {
        answers.push(p.await.expect("answered").expect("written"));
    }
    assert!(answers[0].duplicate && answers[2].duplicate);
    assert_eq!(
        (answers[0].message.id, answers[2].message.id),
        (ids[1], ids[2])
    );
    let new: Vec<i64> = [1, 3, 4].map(|i| answers[i].message.id).to_vec();
    assert!([1, 3, 4].iter().all(|&i| !answers[i].duplicate));
    assert!(new[0] > ids[59] && new.windows(2).all(|w| w[0] < w[1]));
    for (i, cmid) in [(1, "n1"), (3, "n2"), (4, "n3")] {
        assert_eq!(answers[i].message.client_msg_id.as_deref(), Some(cmid));
    }
    ids.extend(new);
    let history = store
        .history(task.id, None, 500, "agent-1")
        .await
        .expect("history");
    assert_eq!(history.len(), 63);
    let offline = store.offline("agent-1", 0, 500).await.expect("offline");
    assert_eq!(offline.len(), 63);
    store
        .confirm("agent-1", &[ids[0], ids[1]])
        .await
        .expect("confirm");
    assert_eq!(offline_len(&store, "agent-1").await, 61);
    // Receipts through the writer are committed even with no message to
    // share a transaction with.
    writer
        .confirm("agent-1", vec![ids[2], ids[3], ids[4]])
        .await
        .expect("queued");
    wait_offline_len(&store, "agent-1", 58).await;
    writer
        .confirm("agent-1", vec![ids[5]])
        .await
        .expect("queued");
    wait_offline_len(&store, "agent-1", 57).await;
    cleanup(db).await;
}

/// The ids `user` has offline.
async fn offline_ids(store: &Store, user: &str) -> Vec<i64> {
    let offline = store.offline(user, 0, 500).await.expect("offline");
    offline.into_iter().map(|s| s.message.id).collect()
}

pub(crate) async fn offline_len(store: &Store, user: &str) -> usize {
    offline_ids(store, user).await.len()
}

/// Waits, at most 5 s, until `user` has `n` offline messages.
async fn wait_offline_len(store: &Store, user: &str, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while offline_len(store, user).await != n {
        assert!(
            std::time::Instant::now() < deadline,
            "{user} never had {n} offline messages"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

async fn read_revoke_delete_and_unread(backend: &str) {
    let Some((store, db)) = fresh(backend).await else {
        return;
    };
    let task = store
        .create_task("cust", 1, Some("agent-1"), None)
        .await
        .expect("task");
    let writer = writer(&store, backend, 8);
    let a = writer
        .write(message("cust", "a", task.id))
        .await
        .expect("a")
        .message;
    let b = writer
        .write(message("cust", "b", task.id))
        .await
        .expect("b")
        .message;
    let unread = store.unread_by_task("agent-1").await.expect("unread");
    assert_eq!(unread.get(&task.id), Some(&2));
    assert_eq!(
        store
            .mark_read(task.id, "agent-1", a.id)
            .await
            .expect("read"),
        1
    );
    assert_eq!(
        store
            .unread_by_task("agent-1")
            .await
            .expect("unread")
            .get(&task.id),
        Some(&1)
    );
    store.revoke(b.id).await.expect("revoke");
    store.delete_for(a.id, "agent-1").await.expect("delete");
    store
        .delete_for(a.id, "agent-1")
        .await
        .expect("deleting twice is fine");
    let agent_view = store
        .history(task.id, None, 50, "agent-1")
        .await
        .expect("history");
    assert!(agent_view[0].deleted);
    assert!(agent_view[1].message.is_revoke);
    let customer_view = store
        .history(task.id, None, 50, "cust")
        .await
        .expect("history");
    assert!(!customer_view[0].deleted);
    let page = store
        .history(task.id, Some(b.id), 50, "cust")
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    cleanup(db).await;
}

async fn tasks_queue_end_and_rate(backend: &str) {
    let Some((store, db)) = fresh(backend).await else {
        return;
    };
    let first = store.create_task("c1", 1, None, None).await.expect("task");
    let second = store.create_task("c2", 2, None, None).await.expect("task");
    let waiting: Vec<i64> = store
        .waiting_tasks()
        .await
        .expect("queue")
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(waiting, vec![first.id, second.id]);
    store
        .assign_task(first.id, "a1", None)
        .await
        .expect("assign");
    assert!(
        store.assign_task(first.id, "a2", None).await.is_err(),
        "a task taken from the queue is not taken again"
    );
    assert!(
        store.assign_task(first.id, "a2", Some("a9")).await.is_err(),
        "a transfer from an agent who no longer has it fails"
    );
    assert_eq!(
        store.open_task_counts().await.expect("counts").get("a1"),
        Some(&1)
    );
    assert!(store.was_assigned(first.id, "a1").await.expect("assigned"));
    assert_eq!(
        store.live_task_of("c1").await.expect("live").map(|t| t.id),
        Some(first.id)
    );
    assert!(
        store.rate_task(first.id, 5, "").await.is_err(),
        "not ended yet"
    );
    store.end_task(first.id).await.expect("end");
    assert!(store.end_task(first.id).await.is_err(), "ends once");
    assert!(store.live_task_of("c1").await.expect("live").is_none());
    store.rate_task(first.id, 4, "good").await.expect("rate");
    assert!(
        store.rate_task(first.id, 5, "again").await.is_err(),
        "rates once"
    );
    store
        .upsert_user("c1", "customer", "Carl")
        .await
        .expect("user");
    store
        .upsert_user("c1", "customer", "Carla")
        .await
        .expect("rename");
    assert_eq!(
        store
            .user("c1")
            .await
            .expect("user")
            .map(|u| u.name)
            .as_deref(),
        Some("Carla")
    );
    let taken = store
        .upsert_user("c1", "agent", "Mallory")
        .await
        .expect_err("a customer's id is not an agent's");
    assert!(matches!(taken, crate::StoreError::RoleTaken { ref role, .. } if role == "customer"));
    assert!(store.create_agent("c1", "Mallory", "hash").await.is_err());
    assert_eq!(
        store
            .user("c1")
            .await
            .expect("user")
            .map(|u| u.role)
            .as_deref(),
        Some("customer")
    );
    cleanup(db).await;
}

async fn files_round_trip(backend: &str) {
    let Some((store, db)) = fresh(backend).await else {
        return;
    };
    let data: Vec<u8> = (0..1_300_000u32).map(|i| (i % 251) as u8).collect();
    let meta = crate::entity::file::Model {
        key: "k1".into(),
        owner: "u".into(),
        content_type: "application/octet-stream".into(),
        kind: "file".into(),
        size: data.len() as i64,
        created_at: 0,
    };
    store.put_file(meta.clone(), &data).await.expect("put");
    let (_, back) = store.file("k1").await.expect("get").expect("exists");
    assert_eq!(back, data);
    assert!(store.file("nope").await.expect("get").is_none());
    let second = crate::entity::file::Model {
        key: "k2".into(),
        created_at: 10,
        ..meta
    };
    store.put_file(second, &data).await.expect("put");
    let owner = "u";
    let since = |ms| store.bytes_uploaded_since(owner, ms);
    assert_eq!(since(0).await.expect("sum"), 2 * data.len() as u64);
    assert_eq!(since(5).await.expect("sum"), data.len() as u64);
    assert_eq!(
        store.bytes_uploaded_since("nobody", 0).await.expect("sum"),
        0
    );
    assert_eq!(store.delete_files_before(5).await.expect("delete"), 1);
    assert!(
        store.file("k1").await.expect("get").is_none(),
        "old file gone"
    );
    assert!(
        store.file_chunk("k1", 0).await.expect("chunk").is_none(),
        "with its chunks"
    );
    assert!(
        store.file("k2").await.expect("get").is_some(),
        "a newer one stays"
    );
    cleanup(db).await;
}

/// An upload arrives in parts, is a file only once committed, cannot be
/// appended to after, and the parts of one never committed are swept.
async fn uploads_in_parts(backend: &str) {
    let Some((store, db)) = fresh(backend).await else {
        return;
    };
    let meta = |key: &str, size: i64| crate::entity::file::Model {
        key: key.into(),
        owner: "u".into(),
        content_type: "application/octet-stream".into(),
        kind: "file".into(),
        size,
        created_at: 0,
    };
    let (old, new) = (
        "0000000000010000000000000000000a",
        "0000000000090000000000000000000b",
    );
    store
        .put_file_part(old, 0, &[1; 100])
        .await
        .expect("part 0");
    store.put_file_part(old, 1, &[2; 50]).await.expect("part 1");
    assert!(
        store.file_meta(old).await.expect("meta").is_none(),
        "not a file yet"
    );
    let missing = store.commit_file(meta(old, 150), 3).await;
    assert!(
        matches!(missing, Err(crate::StoreError::Conflict(_))),
        "{missing:?}"
    );
    store.commit_file(meta(old, 150), 2).await.expect("commit");
    let (_, data) = store.file(old).await.expect("get").expect("a file now");
    assert_eq!(data.len(), 150);
    let appended = store.put_file_part(old, 2, &[3; 10]).await;
    assert!(
        matches!(appended, Err(crate::StoreError::Conflict(_))),
        "{appended:?}"
    );

    // Begun before the sweep's cutoff, never committed: swept. The
    // committed one and a newer one stay.
    let (abandoned, recent) = ("0000000000020000000000000000000c", new);
    store
        .put_file_part(abandoned, 0, &[4; 10])
        .await
        .expect("part");
    store
        .put_file_part(recent, 0, &[5; 10])
        .await
        .expect("part");
    let cutoff = "000000000008";
    assert_eq!(
        store.delete_abandoned_parts(cutoff).await.expect("sweep"),
        1
    );
    assert!(store
        .file_chunk(abandoned, 0)
        .await
        .expect("chunk")
        .is_none());
    assert!(store.file_chunk(recent, 0).await.expect("chunk").is_some());
    assert!(store.file(old).await.expect("get").is_some());
    store.delete_file_parts(recent).await.expect("abandon");
    assert!(store.file_chunk(recent, 0).await.expect("chunk").is_none());
    store
        .delete_file_parts(old)
        .await
        .expect("a committed file is kept");
    assert!(store.file(old).await.expect("get").is_some());
    cleanup(db).await;
}

/// Signing out and disabling are recorded and read back by time.
async fn sign_outs_are_read_back_by_time(backend: &str) {
    let Some((store, db)) = fresh(backend).await else {
        return;
    };
    store
        .create_agent("a1", "Ann", "hash")
        .await
        .expect("agent");
    let start = kefu_protocol::now_ms();
    let at = store
        .revoke_tokens("c1", "customer", "Cy")
        .await
        .expect("revoke");
    assert!(at >= start);
    assert_eq!(
        store
            .user("c1")
            .await
            .expect("user")
            .map(|u| u.role)
            .as_deref(),
        Some("customer"),
        "an unknown user is recorded"
    );
    store.set_agent_disabled("a1", true).await.expect("disable");
    let missing = store.set_agent_disabled("nobody", true).await;
    assert!(
        matches!(missing, Err(crate::StoreError::NotFound(_))),
        "{missing:?}"
    );
    let mut seen = store.sign_outs_since(start).await.expect("read");
    seen.sort();
    let who: Vec<_> = seen
        .iter()
        .map(|(id, _, disabled)| (id.as_str(), *disabled))
        .collect();
    assert_eq!(who, [("a1", true), ("c1", false)]);
    assert!(store
        .sign_outs_since(i64::MAX)
        .await
        .expect("read")
        .is_empty());
    store.set_agent_disabled("a1", false).await.expect("enable");
    assert!(!store.user("a1").await.expect("user").expect("a1").disabled);
    cleanup(db).await;
}

#[test]
fn only_a_plain_sqlite_file_gets_a_writer_connection_of_its_own() {
    assert!(crate::plain_file("sqlite:///var/kefu/kefu.db?mode=rwc"));
    assert!(crate::plain_file("sqlite://kefu.db"));
    for shared_or_different in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://?mode=memory",
        "sqlite:///var/kefu/kefu.db?mode=ro",
        "sqlite:///var/kefu/kefu.db?mode=rwc&vfs=unix-dotfile",
        "sqlite:///var/kefu/kefu.db?cache=shared",
    ] {
        assert!(
            !crate::plain_file(shared_or_different),
            "{shared_or_different}"
        );
    }
}

/// A task is unanswered once a customer message has waited past the
/// cutoff with no agent message at or after it, and its agent has held it
/// since before the cutoff.
async fn unanswered_tasks_are_found_by_the_oldest_waiting_message(backend: &str) {
    let Some((store, db)) = fresh(backend).await else {
        return;
    };
    let writer = writer(&store, backend, 64);
    let write = |task_id: i64, sender: &str, category: &str, at: i64, id: &str| {
        let m = NewMessage {
            category: category.into(),
            created_at: at,
            ..message(sender, id, task_id)
        };
        let writer = &writer;
        async move { writer.write(m).await.expect("written") }
    };
    let silent = store
        .create_task("c1", 1, Some("a1"), None)
        .await
        .expect("task");
    let answered = store
        .create_task("c2", 1, Some("a1"), None)
        .await
        .expect("task");
    let recent = store
        .create_task("c3", 1, Some("a1"), None)
        .await
        .expect("task");
    let waiting = store.create_task("c4", 1, None, None).await.expect("task");
    // Messages after the assignments, and a cutoff after most of them.
    let at = kefu_protocol::now_ms() + 1_000;
    write(silent.id, "c1", "customer", at, "s1").await;
    write(silent.id, "a1", "manager", at + 1_000, "s2").await;
    write(silent.id, "c1", "customer", at + 2_000, "s3").await;
    write(answered.id, "c2", "customer", at, "a1").await;
    write(answered.id, "a1", "manager", at + 4_000, "a2").await;
    write(recent.id, "c3", "customer", at + 5_000, "r1").await;
    write(waiting.id, "c4", "customer", at, "w1").await;

    let found: Vec<i64> = store
        .unanswered_tasks(at + 3_000)
        .await
        .expect("unanswered")
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(found, vec![silent.id]);
    let before_assignment: Vec<_> = store
        .unanswered_tasks(silent.created_at - 1)
        .await
        .expect("unanswered");
    assert!(before_assignment.is_empty(), "{before_assignment:?}");
    cleanup(db).await;
}

/// A dispatcher taking over reads the last place each waiting task was
/// told from the queue notices in its history, and nothing else.
async fn the_last_queue_place_told_is_read_from_the_notices(backend: &str) {
    let Some((store, db)) = fresh(backend).await else {
        return;
    };
    let writer = writer(&store, backend, 8);
    let (told_twice, never_told, other) = (
        store.create_task("c1", 1, None, None).await.expect("task"),
        store.create_task("c2", 1, None, None).await.expect("task"),
        store.create_task("c3", 1, None, None).await.expect("task"),
    );
    let notice = |task_id: i64, to: &str, ext: serde_json::Value| NewMessage {
        sender: SYSTEM_USER.into(),
        recipient: to.into(),
        category: "system".into(),
        style: "toast".into(),
        ext: Some(ext.to_string()),
        client_msg_id: None,
        undelivered_for: vec![to.into()],
        ..message(SYSTEM_USER, "", task_id)
    };
    for (task, to, ext) in [
        (
            &told_twice,
            "c1",
            json!({"event": "queued", QUEUE_PLACE: 5}),
        ),
        (
            &told_twice,
            "c1",
            json!({"event": "queued", QUEUE_PLACE: 2}),
        ),
        (&other, "c3", json!({"event": "transferred"})),
    ] {
        writer
            .write(notice(task.id, to, ext))
            .await
            .expect("notice");
    }
    // A customer's own text that looks like a notice is not one.
    let mimic = NewMessage {
        ext: Some(json!({QUEUE_PLACE: 1}).to_string()),
        ..message("c2", "mimic", never_told.id)
    };
    writer.write(mimic).await.expect("mimic");

    let told = store
        .queue_places_told(&[told_twice.id, never_told.id, other.id])
        .await
        .expect("told");
    assert_eq!(told, HashMap::from([(told_twice.id, 2)]));
    assert!(store.queue_places_told(&[]).await.expect("none").is_empty());
    cleanup(db).await;
}

/// Opens queued together are written in one transaction: each gets its own
/// id, its customer is recorded (an agent's name is left alone), and on a
/// server database an agent is given no more than the capacity asked.
async fn tasks_opened_together_keep_ids_names_and_capacity(backend: &str) {
    let Some((store, db)) = fresh(backend).await else {
        return;
    };
    store
        .upsert_user("a1", "agent", "Alice")
        .await
        .expect("agent");
    let writer = writer(&store, backend, 64);
    let open = |i: usize| {
        let writer = writer.clone();
        let customer = if i == 5 {
            "a1".to_owned()
        } else {
            format!("c{i}")
        };
        async move {
            writer
                .open_task(NewTask {
                    customer,
                    name: format!("Guest {i}"),
                    shard: i as u32,
                    agent: Some("a1".into()),
                    client_ip: None,
                    capacity: Some(2),
                })
                .await
                .expect("opened")
        }
    };
    let rows = futures::future::join_all((0..6).map(open)).await;
    let mut ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6, "one id each");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(kefu_protocol::shard::of_task(row.id), i as u32);
        let stored = store.task(row.id).await.expect("task").expect("stored");
        assert_eq!(&stored, row, "the answer is the row");
    }
    let assigned = rows.iter().filter(|t| t.agent_id.is_some()).count();
    if backend.starts_with("sqlite") {
        assert_eq!(assigned, 6, "SQLite leaves capacity to the dispatcher");
    } else {
        assert_eq!(assigned, 2, "{rows:?}");
        assert!(rows
            .iter()
            .all(|t| (t.status == "open") == t.agent_id.is_some()));
    }
    let names = store
        .users(&["c0".into(), "a1".into()])
        .await
        .expect("users");
    let name = |id: &str| names.iter().find(|u| u.id == id).map(|u| u.name.clone());
    assert_eq!(name("c0").as_deref(), Some("Guest 0"));
    assert_eq!(
        name("a1").as_deref(),
        Some("Alice"),
        "an agent keeps their name"
    );
    cleanup(db).await;
}

async fn a_hand_off_through_the_writer_ends_assigns_and_claims_once(backend: &str) {
    use crate::tasks::Assigned;
    use crate::writer::Assignment;
    let Some((store, db)) = fresh(backend).await else {
        return;
    };
    for agent in ["a1", "a2"] {
        store
            .upsert_user(agent, "agent", agent)
            .await
            .expect("agent");
    }
    let writer = writer(&store, backend, 64);
    let served = store
        .create_task("c1", 1, Some("a1"), None)
        .await
        .expect("task");
    let waiting = store.create_task("c2", 2, None, None).await.expect("task");
    let held = store
        .create_task("c3", 3, Some("a2"), None)
        .await
        .expect("task");
    let later = store.create_task("c4", 4, None, None).await.expect("task");
    let stored_while_waiting = NewMessage {
        recipient: String::new(),
        undelivered_for: Vec::new(),
        ..message("c2", "w1", waiting.id)
    };
    let w = writer.write(stored_while_waiting).await.expect("stored");

    writer.end_task(served.id).await.expect("end");
    assert!(
        writer.end_task(served.id).await.is_err(),
        "a task ends once"
    );
    assert!(store.live_task_of("c1").await.expect("live").is_none());

    let give = |task_id: i64, agent: &str, capacity: i64| Assignment {
        task_id,
        agent: agent.into(),
        from: None,
        capacity: Some(capacity),
    };
    let first = writer.assign_task(give(waiting.id, "a1", 1)).await;
    assert_eq!(first.expect("assign"), Assigned::Yes);
    let again = writer.assign_task(give(waiting.id, "a2", 5)).await;
    assert_eq!(again.expect("assign"), Assigned::TaskMoved, "taken once");
    assert!(store
        .was_assigned(waiting.id, "a1")
        .await
        .expect("assigned"));
    let full = writer
        .assign_task(give(later.id, "a2", 1))
        .await
        .expect("assign");
    if backend.starts_with("sqlite") {
        assert_eq!(
            full,
            Assigned::Yes,
            "SQLite leaves capacity to the dispatcher"
        );
    } else {
        assert_eq!(full, Assigned::AgentFull, "a2 holds {}", held.id);
    }

    let claimed = writer
        .claim_waiting_messages(waiting.id, "a1")
        .await
        .expect("claim");
    let ids: Vec<(i64, &str)> = claimed
        .iter()
        .map(|m| (m.id, m.recipient.as_str()))
        .collect();
    assert_eq!(ids, vec![(w.message.id, "a1")]);
    let twice = writer
        .claim_waiting_messages(waiting.id, "a2")
        .await
        .expect("claim");
    assert!(twice.is_empty(), "claimed once: {twice:?}");
    assert_eq!(offline_len(&store, "a1").await, 1, "a1 has it to receive");
    assert_eq!(offline_len(&store, "a2").await, 0);
    cleanup(db).await;
}

/// Receipts that come alone while messages flow wait for the next message
/// and go out with its commit; at the batch's bound, when the writer stops,
/// and when no message is flowing they are committed without one.
async fn receipts_wait_for_messages_only_while_they_flow(backend: &str) {
    let Some((store, db, task)) = fresh_with_task(backend).await else {
        return;
    };
    let long = Duration::from_secs(60);
    let direct = backend != "sqlite_pool";
    let holding = Hold {
        wait: long,
        flowing: long,
    };
    let writer = Writer::start_holding(store.clone(), 3, direct, holding);
    let mut ids = Vec::new();
    for i in 0..4 {
        let m = message("cust", &format!("m{i}"), task.id);
        ids.push(writer.write(m).await.expect("written").message.id);
    }
    writer
        .confirm("agent-1", vec![ids[0]])
        .await
        .expect("queued");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(offline_ids(&store, "agent-1").await, ids, "held");
    let m4 = writer
        .write(message("cust", "m4", task.id))
        .await
        .expect("written");
    ids.push(m4.message.id);
    assert_eq!(
        offline_ids(&store, "agent-1").await,
        ids[1..],
        "committed with the next message"
    );
    // Three receipts fill a batch of three.
    for &id in &ids[1..4] {
        writer.confirm("agent-1", vec![id]).await.expect("queued");
    }
    wait_offline_len(&store, "agent-1", 1).await;
    // Held when the writer's last handle goes: committed as it stops.
    writer
        .confirm("agent-1", vec![ids[4]])
        .await
        .expect("queued");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(offline_len(&store, "agent-1").await, 1, "held");
    drop(writer);
    wait_offline_len(&store, "agent-1", 0).await;
    // No message flowing: at once, however long they may wait.
    let idle = Hold {
        wait: long,
        flowing: Duration::ZERO,
    };
    let writer = Writer::start_holding(store.clone(), 3, direct, idle);
    let m5 = writer
        .write(message("cust", "m5", task.id))
        .await
        .expect("written");
    writer
        .confirm("agent-1", vec![m5.message.id])
        .await
        .expect("queued");
    wait_offline_len(&store, "agent-1", 0).await;
    cleanup(db).await;
}

/// The writer has a connection of its own (SQLite's, or on a server
/// database one opened on the writer's thread): it commits while every
/// connection of the shared pool is taken, as under a burst of reads.
async fn the_writer_needs_no_connection_of_the_shared_pool(backend: &str) {
    let Some((store, db, task)) = fresh_with_task(backend).await else {
        return;
    };
    let writer = writer(&store, backend, 16);
    let mut held = Vec::new();
    while let Ok(Ok(txn)) = tokio::time::timeout(Duration::from_secs(2), store.db.begin()).await {
        held.push(txn);
    }
    assert!(!held.is_empty(), "the pool gave no connection");
    let written = tokio::time::timeout(
        Duration::from_secs(10),
        writer.write(message("cust", "while-held", task.id)),
    )
    .await
    .expect("the writer did not wait for the shared pool")
    .expect("the message is written");
    drop(held);
    let history = store
        .history(task.id, None, 10, "agent-1")
        .await
        .expect("history");
    assert!(history.iter().any(|m| m.message.id == written.message.id));
    drop(writer);
    cleanup(db).await;
}

#[tokio::test]
async fn the_writer_needs_no_connection_of_the_shared_pool_sqlite() {
    the_writer_needs_no_connection_of_the_shared_pool("sqlite").await;
}

#[tokio::test]
#[cfg_attr(not(kefu_test_mysql), ignore = "needs KEFU_TEST_MYSQL_URL")]
async fn the_writer_needs_no_connection_of_the_shared_pool_mysql() {
    the_writer_needs_no_connection_of_the_shared_pool("mysql").await;
}

#[tokio::test]
#[cfg_attr(not(kefu_test_postgres), ignore = "needs KEFU_TEST_POSTGRES_URL")]
async fn the_writer_needs_no_connection_of_the_shared_pool_postgres() {
    the_writer_needs_no_connection_of_the_shared_pool("postgres").await;
}

macro_rules! on_every_backend {
    ($($name:ident),*) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name("sqlite").await })* }
        mod sqlite_pool { $(#[tokio::test] async fn $name() { super::$name("sqlite_pool").await })* }
        mod mysql { $(
            #[tokio::test]
            #[cfg_attr(not(kefu_test_mysql), ignore = "needs KEFU_TEST_MYSQL_URL")]
            async fn $name() { super::$name("mysql").await }
        )* }
        mod postgres { $(
            #[tokio::test]
            #[cfg_attr(not(kefu_test_postgres), ignore = "needs KEFU_TEST_POSTGRES_URL")]
            async fn $name() { super::$name("postgres").await }
        )* }
    };
}

on_every_backend!(
    group_commit_keeps_order_and_dedups,
    read_revoke_delete_and_unread,
    tasks_queue_end_and_rate,
    files_round_trip,
    uploads_in_parts,
    sign_outs_are_read_back_by_time,
    unanswered_tasks_are_found_by_the_oldest_waiting_message,
    tasks_opened_together_keep_ids_names_and_capacity,
    a_hand_off_through_the_writer_ends_assigns_and_claims_once,
    receipts_wait_for_messages_only_while_they_flow,
    the_last_queue_place_told_is_read_from_the_notices
);

#[tokio::test]
#[cfg_attr(not(kefu_test_mysql), ignore = "needs KEFU_TEST_MYSQL_URL")]
async fn a_mariadb_url_connects_as_mysql() {
    let Some(db) = database("mysql") else { return };
    let url = db.url.replacen("mysql://", "mariadb://", 1);
    let store = Store::connect(&url)
        .await
        .expect("a mariadb:// url connects");
    store.migrate().await.expect("and migrates");
    cleanup(db).await;
}

/// Three `kefu migrate` (or workers) started at once on a fresh database:
/// without the schema lock, two of them failed on MariaDB ("Duplicate key
/// name") and on PostgreSQL (`pg_type_typname_nsp_index`).
async fn three_migrations_at_once_all_succeed(backend: &str) {
    let db = database(backend).expect("database");
    let runs = (0..3).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move {
            let store = Store::connect(&url).await.expect("connect");
            store.migrate().await
        })
    });
    for (i, run) in futures::future::join_all(runs)
        .await
        .into_iter()
        .enumerate()
    {
        run.expect("task")
            .unwrap_or_else(|e| panic!("migration {i} of 3 failed: {e}"));
    }
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("and a fourth changes nothing");
    cleanup(db).await;
}

mod concurrent_migrations {
    #[tokio::test]
    async fn sqlite() {
        super::three_migrations_at_once_all_succeed("sqlite").await
    }
    #[tokio::test]
    #[cfg_attr(not(kefu_test_mysql), ignore = "needs KEFU_TEST_MYSQL_URL")]
    async fn mysql() {
        super::three_migrations_at_once_all_succeed("mysql").await
    }
    #[tokio::test]
    #[cfg_attr(not(kefu_test_postgres), ignore = "needs KEFU_TEST_POSTGRES_URL")]
    async fn postgres() {
        super::three_migrations_at_once_all_succeed("postgres").await
    }
}

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_the_reason_within_seconds() {
    for scheme in ["mysql", "mariadb", "postgres"] {
        let port = closed_port();
        let started = std::time::Instant::now();
        let error = Store::connect(&format!("{scheme}://root:pw@127.0.0.1:{port}/kefu"))
            .await
            .expect_err("nothing listens there");
        let text = error.to_string();
        assert!(
            text.contains(&format!("127.0.0.1:{port}")) && text.contains("refused"),
            "{scheme}: {text}"
        );
        assert!(error.is_unreachable(), "{scheme}: {text}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{scheme}"
        );
    }
}

#[tokio::test]
async fn a_url_without_a_database_or_a_scheme_says_what_to_write() {
    let error = Store::connect("mysql://root:secret@127.0.0.1:3306")
        .await
        .expect_err("no database name")
        .to_string();
    assert!(error.contains("names no database"), "{error}");
    assert!(!error.contains("secret"), "the password is hidden: {error}");
    let error = Store::connect("./kefu.db")
        .await
        .expect_err("a bare path")
        .to_string();
    assert!(error.contains("sqlite://./kefu.db?mode=rwc"), "{error}");
}
