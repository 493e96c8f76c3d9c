//! The HTTP calls a gateway forwards, answered as JSON.
//!
//! The gateway has checked the token; here each call checks what the caller
//! may see or change.

use crate::{sign_out, store_error, tasks, view, Inner, Sender};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use kefu_proto::v1::{ApiReply, ApiRequest};
use kefu_protocol::{shard, ErrorCode, ProtocolError, Role};
use kefu_store::entity::file;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

mod desk;

type Reply = Result<(u16, Value), ProtocolError>;

pub(crate) async fn handle(inner: &Arc<Inner>, request: ApiRequest) -> ApiReply {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let query = parse_query(&request.query);
    if let ("GET", ["files", key]) = (request.method.as_str(), segments.as_slice()) {
        let chunk = query.get("chunk").and_then(|c| c.parse::<i32>().ok());
        return file(inner, key, chunk).await;
    }
    let result = match (request.method.as_str(), segments.as_slice()) {
        ("POST", ["api", "login"]) => login(inner, &request.body).await,
        _ => match Sender::from_session(request.session.clone()) {
            Err(e) => Err(e),
            Ok(sender) => match entitled(inner, &sender).await {
                Err(e) => Err(e),
                Ok(()) => route(inner, &sender, &request, &segments, &query).await,
            },
        },
    };
    match result {
        Ok((status, body)) => ApiReply {
            status: status as u32,
            content_type: "application/json".into(),
            body: body.to_string().into(),
            ..ApiReply::default()
        },
        Err(e) => error_reply(e),
    }
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

async fn route(
    inner: &Arc<Inner>,
    sender: &Sender,
    request: &ApiRequest,
    segments: &[&str],
    query: &HashMap<String, String>,
) -> Reply {
    match (request.method.as_str(), segments) {
        ("GET", ["api", "offline"]) => offline(inner, sender, query).await,
        ("GET", ["api", "unread"]) => unread(inner, sender).await,
        ("GET", ["api", "contacts"]) => contacts(inner, sender, query).await,
        ("GET", ["api", "agents"]) => agents(inner, sender).await,
        ("GET", ["api", "tasks"]) => desk::customer_tasks(inner, sender, query).await,
        ("GET", ["api", "customers", id]) => desk::customer(inner, sender, id).await,
        ("GET", ["api", "queue"]) => desk::queue(inner, sender).await,
        (method, ["api", "quick-replies", rest @ ..]) => {
            desk::quick_replies(inner, sender, method, rest, &request.body).await
        }
        ("PUT", ["api", "agents", "me", "status"]) => {
            set_status(inner, sender, &request.body).await
        }
        ("POST", ["api", "upload"]) => upload(inner, sender, request, query).await,
        ("POST", ["api", "upload", "parts"]) => upload_part(inner, sender, request, query).await,
        ("DELETE", ["api", "upload", "parts"]) => abandon_upload(inner, query).await,
        ("POST", ["api", "refresh"]) => refresh(inner, sender).await,
        ("POST", ["api", "logout"]) => logout(inner, sender).await,
        ("POST", ["api", "agents", id, change]) => account_change(inner, sender, id, change).await,
        (method, ["api", "tasks", id, rest @ ..]) => {
            let task_id: i64 = id
                .parse()
                .map_err(|_| ProtocolError::bad_request("task id must be a number"))?;
            match (method, rest) {
                ("GET", ["messages"]) => history(inner, sender, task_id, query).await,
                ("POST", ["transfer"]) => {
                    #[derive(Deserialize)]
                    struct Body {
                        to_agent: String,
                        #[serde(default)]
                        reason: Option<String>,
                    }
                    let body: Body = json_body(&request.body)?;
                    in_lane(inner, sender, task_id, move |i, s| async move {
                        let reason = body.reason.as_deref();
                        tasks::transfer(&i, &s, task_id, &body.to_agent, reason).await
                    })
                    .await
                }
                ("POST", ["end"]) => {
                    in_lane(inner, sender, task_id, move |i, s| async move {
                        tasks::end(&i, &s, task_id).await
                    })
                    .await
                }
                ("POST", ["rating"]) => {
                    #[derive(Deserialize)]
                    struct Body {
                        score: i64,
                        #[serde(default)]
                        comment: String,
                    }
                    let body: Body = json_body(&request.body)?;
                    let value =
                        tasks::rate(inner, sender, task_id, body.score, &body.comment).await?;
                    Ok((201, value))
                }
                _ => Err(ProtocolError::not_found("no such endpoint")),
            }
        }
        _ => Err(ProtocolError::not_found("no such endpoint")),
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
    Ok((200, value))
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ProtocolError> {
    serde_json::from_slice(body)
        .map_err(|e| ProtocolError::bad_request(format!("bad JSON body: {e}")))
}

/// The query string's parameters, decoded (`+` and `%XX`); the last of a
/// repeated name wins.
fn parse_query(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A number from the query string, within bounds.
fn number(
    query: &HashMap<String, String>,
    name: &str,
    default: i64,
    max: i64,
) -> Result<i64, ProtocolError> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| ProtocolError::bad_request(format!("{name} must be a number")))?;
            if n < 0 {
                return Err(ProtocolError::bad_request(format!(
                    "{name} must not be negative"
                )));
            }
            Ok(n.min(max))
        }
    }
}

async fn offline(inner: &Inner, sender: &Sender, query: &HashMap<String, String>) -> Reply {
    let after = number(query, "after", 0, i64::MAX)?;
    let limit = number(query, "limit", 100, 500)?.max(1);
    let rows = inner
        .store
        .offline(sender.user(), after, limit as u64)
        .await
        .map_err(store_error)?;
    let messages: Vec<_> = rows
        .iter()
        .map(|s| view::message_frame(&s.message, s.deleted))
        .collect();
    Ok((200, json!({"messages": messages})))
}

async fn history(
    inner: &Inner,
    sender: &Sender,
    task_id: i64,
    query: &HashMap<String, String>,
) -> Reply {
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
    let before = query
        .get("before")
        .map(|_| number(query, "before", 0, i64::MAX))
        .transpose()?;
    let limit = number(query, "limit", 50, 200)?.max(1);
    // Admins audit the whole task; a participant sees the notices meant
    // for them, not the other side's.
    let (store, viewer, page) = (&inner.store, sender.user(), limit as u64);
    let rows = if sender.role == Role::Admin {
        store.history(task_id, before, page, viewer).await
    } else {
        store
            .participant_history(task_id, before, page, viewer)
            .await
    }
    .map_err(store_error)?;
    let messages: Vec<_> = rows
        .iter()
        .map(|s| view::message_frame(&s.message, s.deleted))
        .collect();
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.first().map(|s| s.message.id))
        .flatten();
    Ok((
        200,
        json!({"task_id": task_id, "messages": messages, "next_before": next_before}),
    ))
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
    Ok((200, json!({"total": total, "by_task": by_task})))
}

const DAY_MS: i64 = 24 * 3600 * 1000;

async fn contacts(inner: &Inner, sender: &Sender, query: &HashMap<String, String>) -> Reply {
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
    let q = query
        .get("q")
        .map(|q| q.to_lowercase())
        .filter(|q| !q.is_empty());
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
    Ok((200, json!({"contacts": contacts})))
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
    Ok((200, json!({"agents": list})))
}

async fn set_status(inner: &Arc<Inner>, sender: &Sender, body: &[u8]) -> Reply {
    #[derive(Deserialize)]
    struct Body {
        status: String,
    }
    if sender.role != Role::Agent {
        return Err(ProtocolError::forbidden("only agents have a status"));
    }
    let body: Body = json_body(body)?;
    if body.status != "available" && body.status != "away" {
        return Err(ProtocolError::bad_request(
            "status must be available or away",
        ));
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
        .set_agent_status(sender.user(), &body.status)
        .await
        .map_err(store_error)?;
    let changed = crate::dispatch::Event::AgentChanged {
        agent: sender.user().to_owned(),
    };
    inner.dispatch.send(inner, changed).await;
    Ok((
        200,
        json!({"user_id": sender.user(), "status": body.status}),
    ))
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

async fn login(inner: &Inner, body: &[u8]) -> Reply {
    #[derive(Deserialize)]
    struct Body {
        username: String,
        password: String,
    }
    let body: Body = json_body(body)?;
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
            Ok((200, signed_in(&user.id, &user.name, user.tokens_revoked_at)))
        }
        _ => Err(wrong()),
    }
}

/// What the gateway needs to mint a user's tokens; `issued_at` after their
/// last sign-out, so that the new tokens count.
fn signed_in(id: &str, name: &str, signed_out_ms: Option<i64>) -> Value {
    json!({
        "user_id": id,
        "name": name,
        "issued_at": sign_out::issue_after(signed_out_ms),
    })
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
        (_, Some(user)) => Ok((200, signed_in(&user.id, &user.name, user.tokens_revoked_at))),
        (Role::Agent, None) => Err(ProtocolError::new(
            ErrorCode::Unauthorized,
            "this agent account no longer exists",
        )),
        (_, None) => Ok((200, signed_in(sender.user(), &sender.session.name, None))),
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
    Ok((200, json!({"signed_out": true})))
}

/// `POST /api/agents/{id}/disable`, `/enable` and `/sign-out`, for admins.
async fn account_change(inner: &Inner, sender: &Sender, id: &str, change: &str) -> Reply {
    if sender.role != Role::Admin {
        return Err(ProtocolError::forbidden(
            "only an admin may change accounts",
        ));
    }
    let agent = inner
        .store
        .user(id)
        .await
        .map_err(store_error)?
        .filter(|u| u.role == "agent")
        .ok_or_else(|| ProtocolError::not_found("no such agent"))?;
    let disabled = match change {
        "disable" => true,
        "enable" => false,
        "sign-out" => agent.disabled,
        _ => return Err(ProtocolError::not_found("no such endpoint")),
    };
    let at_ms = inner
        .store
        .set_agent_disabled(id, disabled)
        .await
        .map_err(store_error)?;
    sign_out::signed_out(inner, id, sign_out::SignedOut { at_ms, disabled }).await;
    Ok((200, json!({"user_id": id, "disabled": disabled})))
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

fn upload_key_param(query: &HashMap<String, String>) -> Result<Option<&str>, ProtocolError> {
    match query.get("key") {
        None => Ok(None),
        Some(key) if key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()) => Ok(Some(key)),
        Some(_) => Err(ProtocolError::bad_request("bad upload key")),
    }
}

/// `POST /api/upload/parts?seq=N[&key=K]`: one piece of an upload, as the
/// gateway receives it; the first (seq 0, no key) starts the upload and
/// answers its key. Nothing is a file until `POST /api/upload` commits it.
async fn upload_part(
    inner: &Inner,
    sender: &Sender,
    request: &ApiRequest,
    query: &HashMap<String, String>,
) -> Reply {
    let seq = number(query, "seq", 0, i32::MAX as i64)? as i32;
    let key = match (upload_key_param(query)?, seq) {
        (Some(key), _) => key.to_owned(),
        (None, 0) => {
            upload_room(inner, sender, 0).await?;
            upload_key()
        }
        (None, _) => return Err(ProtocolError::bad_request("a later part needs the key")),
    };
    if request.body.is_empty() {
        return Err(ProtocolError::bad_request("an empty part"));
    }
    inner
        .store
        .put_file_part(&key, seq, &request.body)
        .await
        .map_err(store_error)?;
    Ok((200, json!({"key": key})))
}

/// `DELETE /api/upload/parts?key=K`: an upload that will not complete.
async fn abandon_upload(inner: &Inner, query: &HashMap<String, String>) -> Reply {
    let key = upload_key_param(query)?.ok_or_else(|| ProtocolError::bad_request("no key"))?;
    inner
        .store
        .delete_file_parts(key)
        .await
        .map_err(store_error)?;
    Ok((200, json!({})))
}

/// `POST /api/upload?key=K&parts=N&size=S`, the body the file's first bytes
/// (for its type): commits an upload whose parts are stored.
async fn upload(
    inner: &Inner,
    sender: &Sender,
    request: &ApiRequest,
    query: &HashMap<String, String>,
) -> Reply {
    let key = upload_key_param(query)?.ok_or_else(|| ProtocolError::bad_request("no key"))?;
    let parts = number(query, "parts", 0, i64::MAX)? as u64;
    let size = number(query, "size", 0, i64::MAX)? as u64;
    let head = &request.body;
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
    Ok((
        201,
        json!({"key": key, "url": format!("/files/{key}"), "kind": kind, "content_type": content_type}),
    ))
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

/// A file: one chunk of it when the gateway asks for `chunk` (streaming
/// it to the client), else the whole (a gateway of an earlier version).
async fn file(inner: &Inner, key: &str, chunk: Option<i32>) -> ApiReply {
    let valid = key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit());
    let found = match (valid, chunk) {
        (false, _) => Ok(None),
        (true, None) => inner.store.file(key).await,
        (true, Some(0)) => match inner.store.file_meta(key).await {
            Ok(Some(meta)) => inner
                .store
                .file_chunk(key, 0)
                .await
                .map(|data| Some((meta, data.unwrap_or_default()))),
            other => other.map(|_| None),
        },
        // A later chunk: the gateway has the metadata from the first.
        (true, Some(seq)) => {
            return match inner.store.file_chunk(key, seq).await {
                Ok(Some(data)) => ApiReply {
                    status: 200,
                    body: data.into(),
                    ..ApiReply::default()
                },
                Ok(None) => not_found_file(),
                Err(e) => error_reply(store_error(e)),
            }
        }
    };
    match found {
        Ok(Some((meta, data))) => ApiReply {
            status: 200,
            file_size: meta.size.max(0) as u64,
            content_type: meta.content_type,
            body: data.into(),
        },
        Ok(None) => not_found_file(),
        Err(e) => error_reply(store_error(e)),
    }
}

fn not_found_file() -> ApiReply {
    error_reply(ProtocolError::not_found("no such file"))
}

fn error_reply(e: ProtocolError) -> ApiReply {
    ApiReply {
        status: e.code.http_status() as u32,
        content_type: "application/json".into(),
        body: e.code.http_body(&e.message).into(),
        ..ApiReply::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_string_is_decoded_and_nameless_pairs_dropped() {
        let query = parse_query("q=%E5%AE%A2%E6%9C%8D+a&limit=5&=x&flag&limit=7");
        assert_eq!(query.get("q").map(String::as_str), Some("客服 a"));
        assert_eq!(
            query.get("limit").map(String::as_str),
            Some("7"),
            "the last wins"
        );
        assert_eq!(query.get("flag").map(String::as_str), Some(""));
        assert_eq!(query.len(), 3);
        assert_eq!(
            number(&query, "limit", 1, 5).expect("a number"),
            5,
            "capped"
        );
        assert!(number(&query, "q", 1, 5).is_err());
    }
}
