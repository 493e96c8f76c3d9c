//! The HTTP calls a gateway sends, typed, answered as JSON.
//!
//! The gateway has checked the token and the call's shape (its path, query
//! and body); here each call checks what the caller may see or change.

use crate::{sign_out, store_error, tasks, view, Inner, Sender};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use kefu_proto::v1::account_change::Change;
use kefu_proto::v1::api_call::Call;
use kefu_proto::v1::api_reply::Reply as Typed;
use kefu_proto::v1::{self, ApiCall, ApiReply};
use kefu_protocol::{shard, ErrorCode, ProtocolError, Role};
use kefu_store::entity::file;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

mod desk;

type Reply = Result<ApiReply, ProtocolError>;

/// 200 with `body`.
fn ok(body: Value) -> Reply {
    Ok(ApiReply::json(200, body.to_string()))
}

/// 201 with `body`.
fn created(body: Value) -> Reply {
    Ok(ApiReply::json(201, body.to_string()))
}

fn typed(reply: Typed) -> Reply {
    Ok(ApiReply { reply: Some(reply) })
}

pub(crate) async fn handle(inner: &Arc<Inner>, call: ApiCall) -> ApiReply {
    let result = match call.call {
        None => Err(ProtocolError::bad_request("an empty call")),
        // The two calls without a caller.
        Some(Call::Login(login)) => self::login(inner, login).await,
        Some(Call::FileChunk(chunk)) => file(inner, chunk).await,
        Some(c) => match Sender::from_session(call.session) {
            Err(e) => Err(e),
            Ok(sender) => match entitled(inner, &sender).await {
                Err(e) => Err(e),
                Ok(()) => route(inner, &sender, c).await,
            },
        },
    };
    result.unwrap_or_else(ApiReply::from)
}

/// Whether the caller's token still speaks for its user: not signed out,
/// and a customer's not naming an agent.
async fn entitled(inner: &Inner, sender: &Sender) -> Result<(), ProtocolError> {
    let issued_at = sender.session.issued_at;
    if let Some(refused) = inner.sign_outs.refusal(sender.user(), issued_at) {
        return Err(refused);
    }
    if sender.role == Role::Customer {
        inner
            .customer_may_use(sender.user())
            .await
            .map_err(store_error)?;
    }
    Ok(())
}

async fn route(inner: &Arc<Inner>, sender: &Sender, call: Call) -> Reply {
    match call {
        Call::Offline(q) => offline(inner, sender, q).await,
        Call::Unread(_) => unread(inner, sender).await,
        Call::Contacts(q) => contacts(inner, sender, &q.query).await,
        Call::Agents(_) => agents(inner, sender).await,
        Call::SetStatus(s) => set_status(inner, sender, s.status).await,
        Call::AccountChange(c) => account_change(inner, sender, c).await,
        Call::CustomerTasks(q) => desk::customer_tasks(inner, sender, q.customer).await,
        Call::Customer(c) => desk::customer(inner, sender, &c.id).await,
        Call::Queue(_) => desk::queue(inner, sender).await,
        Call::QuickReplies(_) => desk::quick_replies(inner, sender).await,
        Call::AddQuickReply(text) => desk::add_quick_reply(inner, sender, text).await,
        Call::UpdateQuickReply(edit) => desk::update_quick_reply(inner, sender, edit).await,
        Call::DeleteQuickReply(r) => desk::delete_quick_reply(inner, sender, r.id).await,
        Call::History(q) => history(inner, sender, q).await,
        Call::Transfer(t) => {
            let task_id = t.task_id;
            in_lane(inner, sender, task_id, move |i, s| async move {
                let reason = t.reason.as_deref();
                tasks::transfer(&i, &s, task_id, &t.to_agent, reason).await
            })
            .await
        }
        Call::End(t) => {
            let task_id = t.task_id;
            in_lane(inner, sender, task_id, move |i, s| async move {
                tasks::end(&i, &s, task_id).await
            })
            .await
        }
        Call::Rate(r) => created(tasks::rate(inner, sender, r.task_id, r.score, &r.comment).await?),
        Call::UploadPart(part) => upload_part(inner, sender, part).await,
        Call::UploadCommit(commit) => upload(inner, sender, commit).await,
        Call::UploadAbandon(u) => abandon_upload(inner, &u.key).await,
        Call::Refresh(_) => refresh(inner, sender).await,
        Call::Logout(_) => logout(inner, sender).await,
        Call::Login(_) | Call::FileChunk(_) => {
            Err(ProtocolError::bad_request("this call takes no session"))
        }
    }
}

/// Runs a task change in the task's lane, after the frames before it.
async fn in_lane<F, Fut>(inner: &Arc<Inner>, sender: &Sender, task_id: i64, job: F) -> Reply
where
    F: FnOnce(Arc<Inner>, Sender) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Value, ProtocolError>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let lane = &inner.lanes[shard::of_task(task_id) as usize % inner.lanes.len()];
    let (i, s) = (inner.clone(), sender.clone());
    lane.ordered(async move {
        let _ = tx.send(job(i, s).await);
    })
    .await;
    let value = rx
        .await
        .map_err(|_| ProtocolError::new(ErrorCode::Unavailable, "worker is shutting down"))??;
    ok(value)
}

async fn offline(inner: &Inner, sender: &Sender, q: v1::Offline) -> Reply {
    let rows = inner
        .store
        .offline(sender.user(), q.after, u64::from(q.limit.max(1)))
        .await
        .map_err(store_error)?;
    let messages: Vec<_> = rows
        .iter()
        .map(|s| view::message_frame(&s.message, s.deleted))
        .collect();
    ok(json!({"messages": messages}))
}

async fn history(inner: &Inner, sender: &Sender, q: v1::History) -> Reply {
    let task_id = q.task_id;
    let task = inner
        .store
        .task(task_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ProtocolError::not_found("no such task"))?;
    let allowed = match sender.role {
        Role::Admin => true,
        Role::Customer => task.customer_id == sender.user(),
        Role::Agent => inner
            .store
            .was_assigned(task_id, sender.user())
            .await
            .map_err(store_error)?,
    };
    if !allowed {
        return Err(ProtocolError::forbidden(
            "only the task's participants may read it",
        ));
    }
    let limit = q.limit.max(1);
    // Admins audit the whole task; a participant sees the notices meant
    // for them, not the other side's.
    let (store, viewer, page) = (&inner.store, sender.user(), u64::from(limit));
    let rows = if sender.role == Role::Admin {
        store.history(task_id, q.before, page, viewer).await
    } else {
        store
            .participant_history(task_id, q.before, page, viewer)
            .await
    }
    .map_err(store_error)?;
    let messages: Vec<_> = rows
        .iter()
        .map(|s| view::message_frame(&s.message, s.deleted))
        .collect();
    let next_before = (rows.len() as u64 == page)
        .then(|| rows.first().map(|s| s.message.id))
        .flatten();
    ok(json!({"task_id": task_id, "messages": messages, "next_before": next_before}))
}

async fn unread(inner: &Inner, sender: &Sender) -> Reply {
    let by_task = inner
        .store
        .unread_by_task(sender.user())
        .await
        .map_err(store_error)?;
    let total: i64 = by_task.values().sum();
    let by_task: serde_json::Map<String, Value> = by_task
        .into_iter()
        .map(|(t, n)| (t.to_string(), json!(n)))
        .collect();
    ok(json!({"total": total, "by_task": by_task}))
}

const DAY_MS: i64 = 24 * 3600 * 1000;

async fn contacts(inner: &Inner, sender: &Sender, query: &str) -> Reply {
    if sender.role == Role::Customer {
        return Err(ProtocolError::forbidden("contacts are for agents"));
    }
    let tasks = inner
        .store
        .contact_tasks(sender.user(), kefu_protocol::now_ms() - DAY_MS)
        .await
        .map_err(store_error)?;
    // Newest task first: one entry per customer, from their newest task.
    let mut seen = std::collections::HashSet::new();
    let tasks: Vec<_> = tasks
        .into_iter()
        .filter(|t| seen.insert(t.customer_id.clone()))
        .collect();
    let customers: Vec<String> = tasks.iter().map(|t| t.customer_id.clone()).collect();
    let task_ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
    let names: HashMap<String, String> = inner
        .store
        .users(&customers)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let online = tasks::online(inner, &customers).await;
    let unread = inner
        .store
        .unread_by_task(sender.user())
        .await
        .map_err(store_error)?;
    let last = inner
        .store
        .last_messages(&task_ids, sender.user())
        .await
        .map_err(store_error)?;
    let q = Some(query.to_lowercase()).filter(|q| !q.is_empty());
    let mut contacts = Vec::new();
    for task in &tasks {
        let name = names
            .get(&task.customer_id)
            .cloned()
            .unwrap_or_else(|| task.customer_id.clone());
        let last_message = last.get(&task.id).map(|m| view::message_frame(m, false));
        if let Some(q) = &q {
            let text = last_message
                .as_ref()
                .and_then(|m| m.content.clone())
                .unwrap_or_default();
            let hay = [task.customer_id.as_str(), name.as_str(), text.as_str()];
            if !hay.iter().any(|h| h.to_lowercase().contains(q.as_str())) {
                continue;
            }
        }
        contacts.push(json!({
            "user_id": task.customer_id,
            "name": name,
            "task_id": task.id,
            "task_status": task.status,
            "online": online.contains(&task.customer_id),
            "unread": unread.get(&task.id).copied().unwrap_or(0),
            "last_message": last_message,
        }));
    }
    ok(json!({"contacts": contacts}))
}

async fn agents(inner: &Inner, sender: &Sender) -> Reply {
    if sender.role == Role::Customer {
        return Err(ProtocolError::forbidden(
            "the agent list is for agents and admins",
        ));
    }
    let agents = inner.store.agents().await.map_err(store_error)?;
    let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
    let online = tasks::online(inner, &ids).await;
    let open = inner.store.open_task_counts().await.map_err(store_error)?;
    let list: Vec<Value> = agents
        .into_iter()
        .map(|a| {
            json!({
                "user_id": a.id,
                "name": a.name,
                "status": a.status,
                "online": online.contains(&a.id),
                "open_tasks": open.get(&a.id).copied().unwrap_or(0),
                "capacity": inner.config.max_tasks_per_agent,
            })
        })
        .collect();
    ok(json!({"agents": list}))
}

async fn set_status(inner: &Arc<Inner>, sender: &Sender, status: String) -> Reply {
    if sender.role != Role::Agent {
        return Err(ProtocolError::forbidden("only agents have a status"));
    }
    let name = if sender.session.name.is_empty() {
        sender.user()
    } else {
        &sender.session.name
    };
    if inner
        .store
        .user(sender.user())
        .await
        .map_err(store_error)?
        .is_none()
    {
        inner
            .store
            .upsert_user(sender.user(), "agent", name)
            .await
            .map_err(store_error)?;
    }
    inner
        .store
        .set_agent_status(sender.user(), &status)
        .await
        .map_err(store_error)?;
    let changed = crate::dispatch::Event::AgentChanged {
        agent: sender.user().to_owned(),
    };
    inner.dispatch.send(inner, changed).await;
    ok(json!({"user_id": sender.user(), "status": status}))
}

/// Password checks running at once. Argon2 takes tens of milliseconds of
/// CPU: on the async runtime a burst of logins stalled every connection;
/// on the blocking pool without a bound it would take every core.
static PASSWORD_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The hash checked when there is no account, so that an unknown name takes
/// as long to refuse as a wrong password and names cannot be probed.
static NO_ACCOUNT: LazyLock<String> = LazyLock::new(|| {
    use argon2::password_hash::{rand_core::OsRng, SaltString};
    use argon2::PasswordHasher;
    Argon2::default()
        .hash_password(
            b"no account has this password",
            &SaltString::generate(&mut OsRng),
        )
        .map(|h| h.to_string())
        .unwrap_or_default()
});

async fn login(inner: &Inner, body: v1::Login) -> Reply {
    let wrong = || ProtocolError::new(ErrorCode::Unauthorized, "wrong username or password");
    let user = inner
        .store
        .user(&body.username)
        .await
        .map_err(store_error)?
        .filter(|u| u.role == "agent");
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| NO_ACCOUNT.clone());
    let _permit = PASSWORD_CHECKS
        .acquire()
        .await
        .map_err(|_| ProtocolError::new(ErrorCode::Unavailable, "shutting down"))?;
    let verified = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(body.password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    match user {
        Some(user) if verified && user.disabled => Err(ProtocolError::forbidden(
            "this account is disabled; ask an administrator",
        )),
        Some(user) if verified => {
            // A new account is known to this worker's check of customer
            // tokens from its first sign-in, not at the next re-read.
            inner.agent_ids.add(&user.id).await;
            signed_in(&user.id, &user.name, user.tokens_revoked_at)
        }
        _ => Err(wrong()),
    }
}

/// What the gateway needs to mint a user's tokens; `issued_at` after their
/// last sign-out, so that the new tokens count.
fn signed_in(id: &str, name: &str, signed_out_ms: Option<i64>) -> Reply {
    typed(Typed::SignedIn(v1::SignedIn {
        user_id: id.to_owned(),
        name: name.to_owned(),
        issued_at: sign_out::issue_after(signed_out_ms),
    }))
}

/// `POST /api/refresh`, with the refresh token's claims as the session
/// (checked for sign-outs like any call): the name to put in the new
/// tokens. An agent's account must still exist.
async fn refresh(inner: &Inner, sender: &Sender) -> Reply {
    let user = inner.store.user(sender.user()).await.map_err(store_error)?;
    // The database, not this worker's copy of the sign-outs, which may be
    // a second behind: a refresh in that second would outlive the sign-out.
    let signed_out = user.as_ref().and_then(|u| {
        let at = sign_out::SignedOut {
            at_ms: u.tokens_revoked_at?,
            disabled: u.disabled,
        };
        sign_out::refused(at, sender.session.issued_at)
    });
    if let Some(refused) = signed_out {
        return Err(refused);
    }
    match (sender.role, user) {
        (_, Some(user)) => signed_in(&user.id, &user.name, user.tokens_revoked_at),
        (Role::Agent, None) => Err(ProtocolError::new(
            ErrorCode::Unauthorized,
            "this agent account no longer exists",
        )),
        (_, None) => signed_in(sender.user(), &sender.session.name, None),
    }
}

/// `POST /api/logout`: signs the caller out on every device.
async fn logout(inner: &Inner, sender: &Sender) -> Reply {
    let name = match sender.session.name.as_str() {
        "" => sender.user(),
        name => name,
    };
    let at_ms = inner
        .store
        .revoke_tokens(sender.user(), sender.role.as_str(), name)
        .await
        .map_err(store_error)?;
    let signed_out = sign_out::SignedOut {
        at_ms,
        disabled: false,
    };
    sign_out::signed_out(inner, sender.user(), signed_out).await;
    ok(json!({"signed_out": true}))
}

/// `POST /api/agents/{id}/disable`, `/enable` and `/sign-out`, for admins.
async fn account_change(inner: &Inner, sender: &Sender, change: v1::AccountChange) -> Reply {
    if sender.role != Role::Admin {
        return Err(ProtocolError::forbidden(
            "only an admin may change accounts",
        ));
    }
    let id = change.agent_id.as_str();
    let agent = inner
        .store
        .user(id)
        .await
        .map_err(store_error)?
        .filter(|u| u.role == "agent")
        .ok_or_else(|| ProtocolError::not_found("no such agent"))?;
    let disabled = match change.change() {
        Change::Disable => true,
        Change::Enable => false,
        Change::SignOut => agent.disabled,
        Change::Unspecified => return Err(ProtocolError::bad_request("no change named")),
    };
    let at_ms = inner
        .store
        .set_agent_disabled(id, disabled)
        .await
        .map_err(store_error)?;
    sign_out::signed_out(inner, id, sign_out::SignedOut { at_ms, disabled }).await;
    ok(json!({"user_id": id, "disabled": disabled}))
}

/// The bytes `sender` may still upload today, or 429 when none.
async fn upload_room(inner: &Inner, sender: &Sender, size: u64) -> Result<(), ProtocolError> {
    let quota = inner.config.upload_quota;
    if quota == 0 {
        return Ok(());
    }
    let since = kefu_protocol::now_ms() - 24 * 3600 * 1000;
    let used = inner
        .store
        .bytes_uploaded_since(sender.user(), since)
        .await
        .map_err(store_error)?;
    if used + size > quota || (size == 0 && used >= quota) {
        return Err(ProtocolError::new(
            ErrorCode::RateLimited,
            format!(
                "you have uploaded {} MiB in the last 24 hours; the limit is {} MiB",
                used >> 20,
                quota >> 20
            ),
        ));
    }
    Ok(())
}

/// A new upload's key: its start time (ms, 12 hex digits) then 80 random
/// bits, 32 hex digits in all. Unguessable, and sorting by key sorts by
/// start, which is how abandoned uploads are found.
fn upload_key() -> String {
    let random = rand::random::<u128>() & ((1u128 << 80) - 1);
    format!("{:012x}{random:020x}", kefu_protocol::now_ms().max(0))
}

/// `POST /api/upload/parts?seq=N[&key=K]`: one piece of an upload, as the
/// gateway receives it; the first (seq 0, no key) starts the upload and
/// answers its key. Nothing is a file until `POST /api/upload` commits it.
async fn upload_part(inner: &Inner, sender: &Sender, part: v1::UploadPart) -> Reply {
    let key = match (part.key, part.seq) {
        (Some(key), _) => key,
        (None, 0) => {
            upload_room(inner, sender, 0).await?;
            upload_key()
        }
        (None, _) => return Err(ProtocolError::bad_request("a later part needs the key")),
    };
    if part.data.is_empty() {
        return Err(ProtocolError::bad_request("an empty part"));
    }
    let seq = i32::try_from(part.seq).map_err(|_| ProtocolError::bad_request("too many parts"))?;
    inner
        .store
        .put_file_part(&key, seq, &part.data)
        .await
        .map_err(store_error)?;
    typed(Typed::UploadKey(key))
}

/// `DELETE /api/upload/parts?key=K`: an upload that will not complete.
async fn abandon_upload(inner: &Inner, key: &str) -> Reply {
    inner
        .store
        .delete_file_parts(key)
        .await
        .map_err(store_error)?;
    ok(json!({}))
}

/// `POST /api/upload?key=K&parts=N&size=S`, the body the file's first bytes
/// (for its type): commits an upload whose parts are stored.
async fn upload(inner: &Inner, sender: &Sender, commit: v1::UploadCommit) -> Reply {
    let (key, parts, size, head) = (commit.key.as_str(), commit.parts, commit.size, &commit.head);
    if size == 0 || head.is_empty() {
        return Err(ProtocolError::bad_request("the file is empty"));
    }
    if let Err(over) = upload_room(inner, sender, size).await {
        let _ = inner.store.delete_file_parts(key).await;
        return Err(over);
    }
    let detected = infer::get(head);
    let kind = match detected.map(|t| t.matcher_type()) {
        Some(infer::MatcherType::Image) => "picture",
        Some(infer::MatcherType::Video) => "video",
        Some(infer::MatcherType::Audio) => "audio",
        Some(_) => "file",
        None => "unknown",
    };
    let content_type = detected.map_or("application/octet-stream", |t| t.mime_type());
    let meta = file::Model {
        key: key.to_owned(),
        owner: sender.user().to_owned(),
        content_type: content_type.to_owned(),
        kind: kind.to_owned(),
        size: size as i64,
        created_at: kefu_protocol::now_ms(),
    };
    inner
        .store
        .commit_file(meta, parts)
        .await
        .map_err(store_error)?;
    typed(Typed::StoredFile(v1::StoredFile {
        key: key.to_owned(),
        kind: kind.to_owned(),
        content_type: content_type.to_owned(),
    }))
}

/// Uploads begun this long ago and never committed are abandoned.
const ABANDONED_UPLOAD: i64 = 3600 * 1000;

/// Deletes the parts of uploads abandoned half-way (their gateway died).
pub(crate) async fn delete_abandoned_uploads(inner: &Inner) {
    let below = format!(
        "{:012x}",
        (kefu_protocol::now_ms() - ABANDONED_UPLOAD).max(0)
    );
    match inner.store.delete_abandoned_parts(&below).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(parts = n, "deleted parts of abandoned uploads"),
        Err(e) => tracing::debug!(error = %e, "cannot delete abandoned uploads"),
    }
}

/// Deletes uploads older than `--file-retention`; messages that link to
/// them then show a file that is gone (404).
pub(crate) async fn delete_old_files(inner: &Inner) {
    let cutoff = kefu_protocol::now_ms() - inner.config.file_retention.as_millis() as i64;
    match inner.store.delete_files_before(cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "deleted uploads older than the retention"),
        Err(e) => tracing::debug!(error = %e, "cannot delete old uploads"),
    }
}

/// Chunk `seq` of a file; the first also carries the file's type and size.
async fn file(inner: &Inner, chunk: v1::FileChunk) -> Reply {
    let (key, not_found) = (&chunk.key, || ProtocolError::not_found("no such file"));
    let seq = i32::try_from(chunk.seq).map_err(|_| not_found())?;
    let meta = match seq {
        0 => Some(
            inner
                .store
                .file_meta(key)
                .await
                .map_err(store_error)?
                .ok_or_else(not_found)?,
        ),
        // A later chunk: the gateway has the metadata from the first.
        _ => None,
    };
    let data = inner
        .store
        .file_chunk(key, seq)
        .await
        .map_err(store_error)?;
    let data = match (data, &meta) {
        (Some(data), _) => data,
        // A file of no chunk (none is stored empty, but the first answers).
        (None, Some(_)) => Vec::new(),
        (None, None) => return Err(not_found()),
    };
    typed(Typed::File(v1::FileData {
        content_type: meta
            .as_ref()
            .map(|m| m.content_type.clone())
            .unwrap_or_default(),
        file_size: meta.map_or(0, |m| m.size.max(0) as u64),
        data: data.into(),
    }))
}
