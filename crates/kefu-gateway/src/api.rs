//! The JSON API: each endpoint's path, query and body are checked here,
//! once, and sent to a worker as a typed call on the shard it is about (a
//! task's calls on the task's shard, the rest on the caller's). The worker
//! checks who may do it and answers.

use crate::http::{error, Refusal};
use crate::Inner;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::Router;
use kefu_proto::v1::account_change::Change;
use kefu_proto::v1::api_call::Call;
use kefu_proto::v1::api_reply::Reply;
use kefu_proto::v1::{self, ApiCall, ApiReply};
use kefu_protocol::{shard, token, Claims, ErrorCode, ProtocolError};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The API's routes that a worker answers, each needing a bearer token.
pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/api/logout", post(logout))
        .route("/api/offline", get(offline))
        .route("/api/unread", get(unread))
        .route("/api/contacts", get(contacts))
        .route("/api/agents", get(agents))
        .route("/api/agents/me/status", put(set_status))
        .route("/api/agents/{id}/{change}", post(account_change))
        .route("/api/tasks", get(customer_tasks))
        .route("/api/customers/{id}", get(customer))
        .route("/api/queue", get(queue))
        .route(
            "/api/quick-replies",
            get(quick_replies).post(add_quick_reply),
        )
        .route(
            "/api/quick-replies/{id}",
            put(update_quick_reply).delete(delete_quick_reply),
        )
        .route("/api/tasks/{id}/messages", get(history))
        .route("/api/tasks/{id}/transfer", post(transfer))
        .route("/api/tasks/{id}/end", post(end))
        .route("/api/tasks/{id}/rating", post(rate))
        .route("/api/{*rest}", any(unknown))
}

/// An unknown API path: 404, after the token check.
async fn unknown(_: Caller) -> Response {
    error(ErrorCode::NotFound, "no such endpoint")
}

/// The caller, from `Authorization: Bearer TOKEN`: refused with 401 before
/// anything else of the request is looked at.
pub(crate) struct Caller(pub Claims);

impl FromRequestParts<Arc<Inner>> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, inner: &Arc<Inner>) -> Result<Self, Refusal> {
        let missing = || Refusal(ErrorCode::Unauthorized, "missing bearer token".into());
        let value = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(missing)?;
        token::verify(&inner.config.secret, token.trim())
            .map(Caller)
            .map_err(|e| Refusal(ErrorCode::Unauthorized, e.to_string()))
    }
}

impl Caller {
    /// A call on the caller's own shard.
    fn call(&self, inner: &Inner, call: Call) -> ApiCall {
        self.call_on(inner, shard::of_user(&self.0.sub), call)
    }

    fn call_on(&self, inner: &Inner, shard: u32, call: Call) -> ApiCall {
        ApiCall {
            session: Some(inner.session(&self.0)),
            shard,
            call: Some(call),
        }
    }

    /// A call about a task, on the task's shard: after the task's frames.
    fn task_call(&self, inner: &Inner, task_id: i64, call: Call) -> ApiCall {
        self.call_on(inner, shard::of_task(task_id), call)
    }
}

/// Sends a call to its shard's worker; a link failure is 503.
pub(crate) async fn forward(inner: &Inner, call: ApiCall) -> Result<ApiReply, Response> {
    inner
        .workers
        .api(call)
        .await
        .map_err(|e| error(ErrorCode::Unavailable, &e.to_string()))
}

/// A worker's answer to a call whose answer the client gets as is.
async fn answer(inner: &Inner, call: ApiCall) -> Response {
    match forward(inner, call).await {
        Ok(reply) => respond(reply),
        Err(r) => r,
    }
}

/// The client's response to a worker's reply: its JSON, its refusal, or
/// 500 for a typed reply only the gateway itself reads.
pub(crate) fn respond(reply: ApiReply) -> Response {
    match reply.reply {
        Some(Reply::Json(json)) => {
            let status = axum::http::StatusCode::from_u16(json.status as u16)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                json.body,
            )
                .into_response()
        }
        Some(Reply::Error(e)) => refused(e),
        _ => error(ErrorCode::Internal, "unexpected reply from the worker"),
    }
}

pub(crate) fn refused(e: v1::ApiError) -> Response {
    let e = ProtocolError::from(e);
    error(e.code, &e.message)
}

/// A JSON request body, or 400 saying what is wrong with it.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body)
        .map_err(|e| Refusal(ErrorCode::BadRequest, format!("bad JSON body: {e}")))
}

/// A query string's parameters, decoded (`+` and `%XX`); the last of a
/// repeated name wins.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(query: Option<String>) -> Params {
        let query = query.unwrap_or_default();
        Params(
            form_urlencoded::parse(query.as_bytes())
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A number, when given: not negative, capped at `max`.
    fn number(&self, name: &str, max: i64) -> Result<Option<i64>, Refusal> {
        let Some(v) = self.0.get(name) else {
            return Ok(None);
        };
        let bad = |why: &str| Refusal(ErrorCode::BadRequest, format!("{name} {why}"));
        let n: i64 = v.parse().map_err(|_| bad("must be a number"))?;
        if n < 0 {
            return Err(bad("must not be negative"));
        }
        Ok(Some(n.min(max)))
    }

    /// A page size: `default` when not given, at least 1, at most `max`.
    fn limit(&self, default: u32, max: u32) -> Result<u32, Refusal> {
        let n = self.number("limit", i64::from(max))?;
        Ok(n.map_or(default, |n| n as u32).max(1))
    }
}

/// The task id of a `/api/tasks/{id}/…` path, after the caller.
struct TaskPath(i64);

impl FromRequestParts<Arc<Inner>> for TaskPath {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, inner: &Arc<Inner>) -> Result<Self, Refusal> {
        let not_a_number = || Refusal(ErrorCode::BadRequest, "task id must be a number".into());
        let Path(id) = Path::<String>::from_request_parts(parts, inner)
            .await
            .map_err(|_| not_a_number())?;
        id.parse().map(TaskPath).map_err(|_| not_a_number())
    }
}

type Answer = Result<Response, Refusal>;

async fn logout(State(inner): State<Arc<Inner>>, caller: Caller) -> Response {
    answer(&inner, caller.call(&inner, Call::Logout(v1::NoArgs {}))).await
}

/// `GET /api/offline[?after=ID&limit=N]`.
async fn offline(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Answer {
    let params = Params::parse(query);
    let call = Call::Offline(v1::Offline {
        after: params.number("after", i64::MAX)?.unwrap_or(0),
        limit: params.limit(100, 500)?,
    });
    Ok(answer(&inner, caller.call(&inner, call)).await)
}

async fn unread(State(inner): State<Arc<Inner>>, caller: Caller) -> Response {
    answer(&inner, caller.call(&inner, Call::Unread(v1::NoArgs {}))).await
}

/// `GET /api/contacts[?q=TEXT]`.
async fn contacts(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query);
    let query = params.text("q").unwrap_or("").to_owned();
    let call = Call::Contacts(v1::Contacts { query });
    answer(&inner, caller.call(&inner, call)).await
}

async fn agents(State(inner): State<Arc<Inner>>, caller: Caller) -> Response {
    answer(&inner, caller.call(&inner, Call::Agents(v1::NoArgs {}))).await
}

/// `PUT /api/agents/me/status {"status": "available" | "away"}`.
async fn set_status(State(inner): State<Arc<Inner>>, caller: Caller, body: Bytes) -> Answer {
    #[derive(Deserialize)]
    struct Body {
        status: String,
    }
    let Body { status } = json_body(&body)?;
    if status != "available" && status != "away" {
        return Err(Refusal(
            ErrorCode::BadRequest,
            "status must be available or away".into(),
        ));
    }
    let call = Call::SetStatus(v1::AgentStatus { status });
    Ok(answer(&inner, caller.call(&inner, call)).await)
}

/// `POST /api/agents/{id}/disable`, `/enable` and `/sign-out`, for admins.
async fn account_change(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((agent_id, change)): Path<(String, String)>,
) -> Answer {
    let change = match change.as_str() {
        "disable" => Change::Disable,
        "enable" => Change::Enable,
        "sign-out" => Change::SignOut,
        _ => return Err(Refusal(ErrorCode::NotFound, "no such endpoint".into())),
    };
    let call = Call::AccountChange(v1::AccountChange {
        agent_id,
        change: change as i32,
    });
    Ok(answer(&inner, caller.call(&inner, call)).await)
}

/// `GET /api/tasks[?customer=ID]`.
async fn customer_tasks(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query);
    let customer = params.text("customer").map(str::to_owned);
    let call = Call::CustomerTasks(v1::CustomerTasks { customer });
    answer(&inner, caller.call(&inner, call)).await
}

async fn customer(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let call = Call::Customer(v1::CustomerId { id });
    answer(&inner, caller.call(&inner, call)).await
}

async fn queue(State(inner): State<Arc<Inner>>, caller: Caller) -> Response {
    answer(&inner, caller.call(&inner, Call::Queue(v1::NoArgs {}))).await
}

/// How long a quick reply's title and content may be.
const MAX_TITLE_CHARS: usize = 64;
const MAX_CONTENT_CHARS: usize = 2_000;

/// A quick reply's body: title and content trimmed, present, within their
/// lengths, without NUL.
fn quick_reply_text(body: &[u8]) -> Result<v1::QuickReplyText, Refusal> {
    #[derive(Deserialize)]
    struct Body {
        title: String,
        content: String,
    }
    let Body { title, content } = json_body(body)?;
    let (title, content) = (title.trim().to_owned(), content.trim().to_owned());
    let bad = |why: String| Err(Refusal(ErrorCode::BadRequest, why));
    if title.is_empty() || content.is_empty() {
        return bad("title and content are required".into());
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return bad(format!("title is over {MAX_TITLE_CHARS} characters"));
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return bad(format!("content is over {MAX_CONTENT_CHARS} characters"));
    }
    if title.contains('\0') || content.contains('\0') {
        return bad("text may not contain NUL".into());
    }
    Ok(v1::QuickReplyText { title, content })
}

fn quick_reply_id(id: &str) -> Result<i64, Refusal> {
    id.parse().map_err(|_| {
        Refusal(
            ErrorCode::BadRequest,
            "quick reply id must be a number".into(),
        )
    })
}

async fn quick_replies(State(inner): State<Arc<Inner>>, caller: Caller) -> Response {
    let call = Call::QuickReplies(v1::NoArgs {});
    answer(&inner, caller.call(&inner, call)).await
}

async fn add_quick_reply(State(inner): State<Arc<Inner>>, caller: Caller, body: Bytes) -> Answer {
    let call = Call::AddQuickReply(quick_reply_text(&body)?);
    Ok(answer(&inner, caller.call(&inner, call)).await)
}

async fn update_quick_reply(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let id = quick_reply_id(&id)?;
    let text = Some(quick_reply_text(&body)?);
    let call = Call::UpdateQuickReply(v1::QuickReplyEdit { id, text });
    Ok(answer(&inner, caller.call(&inner, call)).await)
}

async fn delete_quick_reply(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer {
    let id = quick_reply_id(&id)?;
    let call = Call::DeleteQuickReply(v1::QuickReplyId { id });
    Ok(answer(&inner, caller.call(&inner, call)).await)
}

/// `GET /api/tasks/{id}/messages[?before=ID&limit=N]`.
async fn history(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    TaskPath(task_id): TaskPath,
    RawQuery(query): RawQuery,
) -> Answer {
    let params = Params::parse(query);
    let call = Call::History(v1::History {
        task_id,
        before: params.number("before", i64::MAX)?,
        limit: params.limit(50, 200)?,
    });
    Ok(answer(&inner, caller.task_call(&inner, task_id, call)).await)
}

/// `POST /api/tasks/{id}/transfer {"to_agent": ID, "reason"?: TEXT}`.
async fn transfer(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    TaskPath(task_id): TaskPath,
    body: Bytes,
) -> Answer {
    #[derive(Deserialize)]
    struct Body {
        to_agent: String,
        #[serde(default)]
        reason: Option<String>,
    }
    let Body { to_agent, reason } = json_body(&body)?;
    let call = Call::Transfer(v1::Transfer {
        task_id,
        to_agent,
        reason,
    });
    Ok(answer(&inner, caller.task_call(&inner, task_id, call)).await)
}

async fn end(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    TaskPath(task_id): TaskPath,
) -> Response {
    let call = Call::End(v1::TaskId { task_id });
    answer(&inner, caller.task_call(&inner, task_id, call)).await
}

/// `POST /api/tasks/{id}/rating {"score": 1..5, "comment"?: TEXT}`.
async fn rate(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    TaskPath(task_id): TaskPath,
    body: Bytes,
) -> Answer {
    #[derive(Deserialize)]
    struct Body {
        score: i64,
        #[serde(default)]
        comment: String,
    }
    let Body { score, comment } = json_body(&body)?;
    let call = Call::Rate(v1::Rating {
        task_id,
        score,
        comment,
    });
    Ok(answer(&inner, caller.task_call(&inner, task_id, call)).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_string_is_decoded_and_nameless_pairs_dropped() {
        let params = Params::parse(Some(
            "q=%E5%AE%A2%E6%9C%8D+a&limit=5&=x&flag&limit=7".into(),
        ));
        assert_eq!(params.text("q"), Some("客服 a"));
        assert_eq!(params.text("limit"), Some("7"), "the last wins");
        assert_eq!(params.text("flag"), Some(""));
        assert_eq!(params.0.len(), 3);
        assert_eq!(params.limit(1, 5).ok(), Some(5), "capped");
        assert!(params.number("q", 5).is_err());
    }

    #[test]
    fn numbers_in_a_query_are_checked() {
        let message = |query: &str, name: &str| {
            Params::parse(Some(query.into()))
                .number(name, 100)
                .err()
                .map(|Refusal(code, why)| (code, why))
        };
        let bad = |why: &str| Some((ErrorCode::BadRequest, why.to_owned()));
        assert_eq!(message("after=x", "after"), bad("after must be a number"));
        assert_eq!(
            message("after=-1", "after"),
            bad("after must not be negative")
        );
        assert_eq!(message("after=1.5", "after"), bad("after must be a number"));
        assert_eq!(message("", "after"), None);
        let params = Params::parse(Some("limit=0".into()));
        assert_eq!(params.limit(50, 200).ok(), Some(1), "at least one");
        assert_eq!(Params::parse(None).limit(50, 200).ok(), Some(50));
    }

    #[test]
    fn a_quick_reply_is_trimmed_and_bounded() {
        let text = quick_reply_text(br#"{"title":" Hi ","content":" Hello \n"}"#).ok();
        assert_eq!(
            text.map(|t| (t.title, t.content)),
            Some(("Hi".into(), "Hello".into()))
        );
        let refused = |body: String| quick_reply_text(body.as_bytes()).err().map(|r| r.1);
        assert_eq!(
            refused(r#"{"title":"  ","content":"x"}"#.into()).as_deref(),
            Some("title and content are required")
        );
        let long = "x".repeat(MAX_TITLE_CHARS + 1);
        assert_eq!(
            refused(format!(r#"{{"title":"{long}","content":"x"}}"#)).as_deref(),
            Some("title is over 64 characters")
        );
        assert_eq!(
            refused(r#"{"title":"a\u0000","content":"x"}"#.into()).as_deref(),
            Some("text may not contain NUL")
        );
        assert!(refused("{".into()).is_some_and(|m| m.starts_with("bad JSON body")));
    }
}
