//! The gateway's HTTP side: the WebSocket upgrade, sign-in (visitor, login,
//! refresh), uploads and file downloads, health and metrics; the rest of
//! the JSON API is in `api`.

use crate::api;
use crate::{conn, Gateway, Inner};
use axum::body::{Body, Bytes};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, Multipart, Path, Query, State, WebSocketUpgrade,
};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use kefu_proto::v1::api_call::Call;
use kefu_proto::v1::api_reply::Reply;
use kefu_proto::v1::{self, ApiCall, ApiReply};
use kefu_protocol::{shard, token, Claims, ErrorCode, Role};
use serde::Deserialize;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

/// Serves HTTP and WebSocket on `listener` until `shutdown` resolves, then
/// stops accepting and closes every WebSocket with 1001; HTTP requests
/// under way finish as jobs of the gateway's role (its stop waits for
/// them within the drain timeout).
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(gateway.clone()), gateway, shutdown).await
}

async fn serve_router(
    listener: TcpListener,
    app: Router,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = gateway.clone();
    let limits = gateway.inner.config.server.clone();
    let role = gateway.inner.lifecycle.clone();
    crate::server::serve(listener, app, limits, &role, async move {
        shutdown.await;
        drain.drain();
    })
    .await
}

pub fn router(gateway: Gateway) -> Router {
    routes(gateway).fallback(not_found)
}

async fn method_not_allowed() -> Response {
    let mut response = error(ErrorCode::BadRequest, "method not allowed here");
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

async fn not_found() -> Response {
    error(ErrorCode::NotFound, "no such endpoint")
}

fn routes(gateway: Gateway) -> Router {
    let upload_limit = gateway.inner.config.max_upload_bytes + 64 * 1024;
    let api = Router::new()
        .route("/api/visitor", post(visitor))
        .route("/api/login", post(login))
        .route("/api/refresh", post(refresh))
        .route(
            "/api/upload",
            post(upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        // The pieces of an upload are the gateway's own calls to a worker:
        // a client storing pieces itself would get round the upload limits.
        .route("/api/upload/{*rest}", any(not_found))
        .merge(crate::api::routes())
        .route("/files/{key}", get(file))
        // Before the layers below, so that CORS answers the preflight of
        // a route without OPTIONS (the router-wide fallback set later
        // would replace this one, unlayered).
        .method_not_allowed_fallback(method_not_allowed)
        // Answers are data, never pages to frame or to sniff as markup.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ));
    let api = match &gateway.inner.config.allowed_origins {
        Some(origins) => api.layer(cors(origins.clone())),
        None => api,
    };
    let routes = Router::new()
        .route("/ws", get(websocket))
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .merge(gateway.inner.config.pages.router())
        .method_not_allowed_fallback(method_not_allowed)
        // A request body that stops arriving is cut, and the request fails.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            gateway.inner.config.body_timeout,
        ));
    // Served over TLS: browsers are told to come back only that way.
    let routes = if gateway.inner.config.server.tls.is_some() {
        routes.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        routes
    };
    routes.with_state(gateway.inner)
}

/// CORS for `--allowed-origins`: their pages may call the API with a
/// bearer token (no cookies are involved), and their preflight requests are
/// answered, not refused as unauthenticated.
fn cors(origins: kefu_web::policy::Origins) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| origins.allows(o))
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

/// Whether a WebSocket upgrade may go ahead: no `Origin` (not a browser),
/// this server's own origin, or, with `--allowed-origins`, a listed site.
/// Without the list any site may connect, as a token is needed anyway.
fn origin_allowed(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(origins) = &inner.config.allowed_origins else {
        return true;
    };
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
        });
    own || origins.allows(origin)
}

pub(crate) fn error(code: ErrorCode, message: &str) -> Response {
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        code.http_body(message),
    )
        .into_response()
}

/// A worker's answer as an HTTP response, whatever its body.
fn respond(status: u32, content_type: &str, body: Body) -> Response {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[derive(Deserialize)]
struct WsQuery {
    token: Option<String>,
    device: Option<String>,
}

/// Bytes a connection reads at a time, and keeps allocated while idle. Chat
/// frames are a few hundred bytes; a larger frame grows the buffer as it
/// comes. Against 4 KiB this saves 3 KiB per idle connection and cost no
/// measurable throughput (docs/benchmarks.md).
const READ_BUFFER: usize = 1024;

/// Bytes of frames a connection gathers before writing them to the socket
/// without waiting for its flush. The connection flushes once per run of
/// queued frames, so a burst of pushes is one `write`, not one per frame;
/// an idle connection's buffer stays as small as the last burst it wrote.
const WRITE_BUFFER: usize = 16 * 1024;

async fn websocket(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Query(q): Query<WsQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if *inner.draining.borrow() {
        return error(ErrorCode::Unavailable, "server shutting down");
    }
    if !origin_allowed(&inner, &headers) {
        return error(
            ErrorCode::Forbidden,
            "this site is not in the server's --allowed-origins",
        );
    }
    let limit = inner.config.max_frame_bytes;
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(limit * 2 + 1024)
        .max_frame_size(limit * 2 + 1024)
        .on_upgrade(move |socket| {
            let ip = limited_ip(&inner, peer, &headers);
            conn::run(inner, socket, q.token, q.device, ip)
        })
}

/// Ready for clients: not draining, and some worker to take their frames.
/// `/healthz` says only that the process serves.
async fn readyz(State(inner): State<Arc<Inner>>) -> Response {
    let reason = if *inner.draining.borrow() {
        Some("shutting down")
    } else if !inner.workers.ready() {
        Some("no worker has joined")
    } else {
        None
    };
    match reason {
        None => axum::Json(json!({"status": "ready"})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not ready", "reason": reason})),
        )
            .into_response(),
    }
}

async fn metrics() -> Response {
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode_to_string(&prometheus::gather()) {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => error(ErrorCode::Internal, &e.to_string()),
    }
}

/// An HTTP refusal, turned into the contract's JSON body at the edge.
#[derive(Debug)]
pub(crate) struct Refusal(pub ErrorCode, pub String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

/// A signed-in user's tokens: a short-lived access token and the refresh
/// token that buys the next one, as JSON with `expires_in` (seconds).
/// `issued_at` comes from the worker when the user may have signed out
/// before (tokens of that second are refused), else it is now.
fn mint(
    inner: &Inner,
    user_id: &str,
    role: Role,
    name: Option<String>,
    issued_at: Option<u64>,
) -> Result<serde_json::Value, Refusal> {
    let sign = |ttl: std::time::Duration, typ: Option<&str>| {
        let claims = Claims {
            name: name.clone(),
            iat: Some(issued_at.unwrap_or_else(token::now_secs)),
            typ: typ.map(str::to_owned),
            ..Claims::new(user_id, role, token::expiry_after(ttl))
        };
        token::sign(&inner.config.secret, &claims)
            .map_err(|e| Refusal(ErrorCode::Internal, e.to_string()))
    };
    Ok(json!({
        "user_id": user_id,
        "name": name,
        "token": sign(inner.config.token_ttl, None)?,
        "expires_in": inner.config.token_ttl.as_secs(),
        "refresh_token": sign(inner.config.refresh_ttl, Some(token::REFRESH))?,
    }))
}

/// 429 with `Retry-After` in whole seconds.
fn too_many(wait: std::time::Duration, what: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error(
        ErrorCode::RateLimited,
        &format!("too many {what}; retry in {seconds} s"),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn client_ip(inner: &Inner, peer: std::net::SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    inner.limits.client_ip(peer, forwarded)
}

/// The client's address for the worker's per-address limits, or "" when
/// exempt: loopback (a local proxy or tool) unless `--limit-loopback`.
fn limited_ip(inner: &Inner, peer: std::net::SocketAddr, headers: &HeaderMap) -> String {
    let ip = client_ip(inner, peer, headers);
    if inner.config.server.exempt_loopback(ip) {
        String::new()
    } else {
        ip.to_string()
    }
}

async fn visitor(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(wait) = inner.limits.visitor(client_ip(&inner, peer, &headers)) {
        return too_many(wait, "new visitors from this address");
    }
    #[derive(Deserialize, Default)]
    struct Body {
        name: Option<String>,
    }
    let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        match api::json_body(&body) {
            Ok(b) => b,
            Err(r) => return r.into_response(),
        }
    };
    if body.name.as_ref().is_some_and(|n| n.chars().count() > 64) {
        return error(ErrorCode::BadRequest, "name is over 64 characters");
    }
    if body.name.as_ref().is_some_and(|n| n.contains('\0')) {
        return error(
            ErrorCode::BadRequest,
            "name may not contain the NUL character",
        );
    }
    let user_id = format!("v_{:016x}", rand::random::<u64>());
    match mint(&inner, &user_id, Role::Customer, body.name.clone(), None) {
        Ok(tokens) => (StatusCode::CREATED, axum::Json(tokens)).into_response(),
        Err(r) => r.into_response(),
    }
}

/// `POST /api/refresh {"refresh_token": ...}`: a new access token and a
/// new refresh token, unless the user signed out since, or was disabled.
async fn refresh(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct Body {
        refresh_token: String,
    }
    let body: Body = match api::json_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let claims = match token::verify_refresh(&inner.config.secret, body.refresh_token.trim()) {
        Ok(c) => c,
        Err(e) => return error(ErrorCode::Unauthorized, &e.to_string()),
    };
    let call = ApiCall {
        session: Some(inner.session(&claims)),
        shard: shard::of_user(&claims.sub),
        call: Some(Call::Refresh(v1::NoArgs {})),
    };
    let user = match api::forward(&inner, call).await {
        Ok(ApiReply {
            reply: Some(Reply::SignedIn(user)),
        }) => user,
        Ok(other) => return api::respond(other),
        Err(r) => return r,
    };
    let name = (!user.name.is_empty()).then_some(user.name).or(claims.name);
    match mint(
        &inner,
        &user.user_id,
        claims.role,
        name,
        Some(user.issued_at),
    ) {
        Ok(tokens) => axum::Json(tokens).into_response(),
        Err(r) => r.into_response(),
    }
}

/// `POST /api/login {"username": ..., "password": ...}`: an agent's tokens,
/// with a back-off per address and per account after wrong passwords.
async fn login(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    #[derive(Deserialize)]
    struct Attempt {
        username: String,
        password: String,
    }
    let attempt = api::json_body::<Attempt>(&body);
    // The back-off first, keyed by the account when the body names one.
    let account = attempt
        .as_ref()
        .map(|a| a.username.clone())
        .unwrap_or_default();
    if let Err(wait) = inner
        .limits
        .login(client_ip(&inner, peer, &headers), &account)
    {
        return too_many(wait, "login attempts");
    }
    let Attempt { username, password } = match attempt {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    // On the account's shard: logins spread over the workers.
    let call = ApiCall {
        session: None,
        shard: shard::of_user(&account),
        call: Some(Call::Login(v1::Login { username, password })),
    };
    let user = match api::forward(&inner, call).await {
        Ok(ApiReply {
            reply: Some(Reply::SignedIn(user)),
        }) => user,
        Ok(ApiReply {
            reply: Some(Reply::Error(e)),
        }) => {
            if e.code == v1::ErrorCode::Unauthorized as i32 {
                inner.limits.login_result(&account, false);
            }
            return api::refused(e);
        }
        Ok(other) => return api::respond(other),
        Err(r) => return r,
    };
    inner.limits.login_result(&account, true);
    let name = Some(user.name);
    match mint(
        &inner,
        &user.user_id,
        Role::Agent,
        name,
        Some(user.issued_at),
    ) {
        Ok(tokens) => axum::Json(tokens).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn upload(
    State(inner): State<Arc<Inner>>,
    api::Caller(claims): api::Caller,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => return error(ErrorCode::BadRequest, &e.body_text()),
    };
    // Before the file is stored: a request the answer's URL cannot be built
    // for must leave nothing behind (nor count against the quota).
    let base = match public_base(&inner, &headers) {
        Ok(base) => base,
        Err(r) => return r.into_response(),
    };
    // Uploads received at once: each holds one piece in memory and keeps a
    // database writer busy.
    let Ok(_slot) = inner.uploads.clone().try_acquire_owned() else {
        crate::metrics::UPLOADS_REFUSED.inc();
        return too_many(std::time::Duration::from_secs(1), "uploads at once");
    };
    let limit = inner.config.max_upload_bytes;
    let too_large = || {
        error(
            ErrorCode::TooLarge,
            &format!("files are limited to {limit} bytes"),
        )
    };
    let mut field = loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => break field,
            Ok(Some(_)) => continue,
            Ok(None) => return error(ErrorCode::BadRequest, "multipart field `file` is missing"),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
            Err(e) => return error(ErrorCode::BadRequest, &e.body_text()),
        }
    };
    let mut upload = Upload::new(&inner, &claims);
    let mut piece = bytes::BytesMut::new();
    loop {
        let received = match field.chunk().await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
            Err(e) => return error(ErrorCode::BadRequest, &e.body_text()),
        };
        if upload.size + piece.len() + received.len() > limit {
            return too_large();
        }
        piece.extend_from_slice(&received);
        while piece.len() >= kefu_protocol::FILE_CHUNK_BYTES {
            let full = piece.split_to(kefu_protocol::FILE_CHUNK_BYTES).freeze();
            if let Err(refused) = upload.store(full).await {
                return refused;
            }
        }
    }
    if !piece.is_empty() {
        if let Err(refused) = upload.store(piece.freeze()).await {
            return refused;
        }
    }
    if upload.size == 0 {
        return error(ErrorCode::BadRequest, "the file is empty");
    }
    let stored = match upload.commit().await {
        Ok(stored) => stored,
        Err(refused) => return refused,
    };
    // A URL clients can put in <img src>.
    let body = json!({
        "key": stored.key,
        "url": format!("{base}/files/{}", stored.key),
        "kind": stored.kind,
        "content_type": stored.content_type,
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// Where clients reach this server: `--public-url` when set, else the
/// request's `Host` and `X-Forwarded-Proto`, checked, since the result goes
/// into messages other people's browsers load.
/// An upload on its way to storage, a piece at a time: the worker keeps
/// each piece as it comes, so the gateway holds one piece, not the file,
/// and nothing is a file until [`Upload::commit`].
struct Upload<'a> {
    inner: &'a Inner,
    session: v1::Session,
    shard: u32,
    /// Set by the worker when it takes the first piece.
    key: Option<String>,
    parts: u64,
    size: usize,
    /// The first bytes, from which the worker tells the file's type.
    head: Bytes,
    /// The worker made it a file: nothing to delete on drop.
    committed: bool,
}

impl<'a> Upload<'a> {
    /// Enough of a file's start to tell its type.
    const HEAD: usize = 8 * 1024;

    fn new(inner: &'a Inner, claims: &Claims) -> Upload<'a> {
        Upload {
            inner,
            session: inner.session(claims),
            shard: shard::of_user(&claims.sub),
            key: None,
            parts: 0,
            size: 0,
            head: Bytes::new(),
            committed: false,
        }
    }

    fn call(&self, call: Call) -> ApiCall {
        ApiCall {
            session: Some(self.session.clone()),
            shard: self.shard,
            call: Some(call),
        }
    }

    /// Hands one piece to the worker; a refusal is the client's answer.
    async fn store(&mut self, piece: Bytes) -> Result<(), Response> {
        if self.head.is_empty() {
            self.head = piece.slice(..piece.len().min(Self::HEAD));
        }
        let size = piece.len();
        let part = v1::UploadPart {
            key: self.key.clone(),
            seq: self.parts as u32,
            data: piece,
        };
        match api::forward(self.inner, self.call(Call::UploadPart(part))).await? {
            ApiReply {
                reply: Some(Reply::UploadKey(key)),
            } => self.key = Some(key),
            other => return Err(api::respond(other)),
        }
        self.parts += 1;
        self.size += size;
        Ok(())
    }

    /// Makes the stored pieces a file.
    async fn commit(&mut self) -> Result<v1::StoredFile, Response> {
        let commit = v1::UploadCommit {
            key: self.key.clone().unwrap_or_default(),
            parts: self.parts,
            size: self.size as u64,
            head: self.head.clone(),
        };
        match api::forward(self.inner, self.call(Call::UploadCommit(commit))).await? {
            ApiReply {
                reply: Some(Reply::StoredFile(stored)),
            } => {
                self.committed = true;
                Ok(stored)
            }
            other => Err(api::respond(other)),
        }
    }
}

/// An upload dropped before its commit, whatever the reason (a refusal,
/// the client gone, the request cancelled): its stored pieces are deleted
/// in the background (the worker's sweep deletes those a dead gateway left).
impl Drop for Upload<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take().filter(|_| !self.committed) else {
            return;
        };
        let call = self.call(Call::UploadAbandon(v1::UploadKey { key }));
        let workers = self.inner.workers.clone();
        self.inner.lifecycle.spawn(async move {
            if let Err(e) = workers.api(call).await {
                tracing::debug!(error = %e, "cannot delete an abandoned upload; the sweep will");
            }
        });
    }
}

fn public_base(inner: &Inner, headers: &HeaderMap) -> Result<String, Refusal> {
    if let Some(url) = &inner.config.public_url {
        return Ok(url.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let plain = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !plain {
        return Err(Refusal(ErrorCode::BadRequest, "bad Host header".into()));
    }
    let proto = match headers.get("x-forwarded-proto").map(|h| h.as_bytes()) {
        Some(b"https") => "https",
        _ => "http",
    };
    Ok(format!("{proto}://{host}"))
}

/// A file, streamed: its chunks are fetched from the worker one at a time
/// as the client reads, so a download that stalls holds one chunk (512 KiB)
/// in memory, not the whole file.
async fn file(State(inner): State<Arc<Inner>>, Path(key): Path<String>) -> Response {
    // Keys are what the worker made them: anything else is no file.
    if key.len() != 32 || !key.chars().all(|c| c.is_ascii_hexdigit()) {
        return error(ErrorCode::NotFound, "no such file");
    }
    let first = match api::forward(&inner, chunk_call(&key, 0)).await {
        Ok(ApiReply {
            reply: Some(Reply::File(first)),
        }) => first,
        Ok(other) => return api::respond(other),
        Err(r) => return r,
    };
    let (size, content_type) = (first.file_size, first.content_type.clone());
    let streamed = size > first.data.len() as u64;
    let body = if streamed {
        Body::from_stream(chunks(inner, key, first))
    } else {
        Body::from(first.data)
    };
    let mut response = respond(200, &content_type, body);
    // nosniff comes from the API routes' layer.
    let headers = response.headers_mut();
    if streamed {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if !shown_inline(&content_type) {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    response
}

/// The worker call for chunk `seq` of a file, on the file's shard: downloads
/// spread over the workers instead of all going to one.
fn chunk_call(key: &str, seq: u32) -> ApiCall {
    ApiCall {
        session: None,
        shard: shard::of_user(key),
        call: Some(Call::FileChunk(v1::FileChunk {
            key: key.to_owned(),
            seq,
        })),
    }
}

/// The file's bytes: the first chunk, then each next one fetched when the
/// client has taken the last, until `file_size` bytes went out.
fn chunks(
    inner: Arc<Inner>,
    key: String,
    first: v1::FileData,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let size = first.file_size;
    let state = (Some(first.data), 1u32, 0u64);
    futures::stream::unfold(state, move |(ready, seq, sent)| {
        let inner = inner.clone();
        let key = key.clone();
        async move {
            if let Some(body) = ready {
                let sent = sent + body.len() as u64;
                return Some((Ok(body), (None, seq, sent)));
            }
            if sent >= size {
                return None;
            }
            let next = match inner.workers.api(chunk_call(&key, seq)).await {
                Ok(ApiReply {
                    reply: Some(Reply::File(chunk)),
                }) if !chunk.data.is_empty() => Ok(chunk.data),
                Ok(other) => Err(format!("chunk {seq} of file {key}: {:?}", other.reply)),
                Err(e) => Err(format!("chunk {seq} of file {key}: {e}")),
            };
            match next {
                Ok(body) => {
                    let sent = sent + body.len() as u64;
                    Some((Ok(body), (None, seq + 1, sent)))
                }
                // The client sees a download cut short, not a wrong file.
                Err(e) => {
                    tracing::warn!("download cut: {e}");
                    Some((Err(std::io::Error::other(e)), (None, seq, size)))
                }
            }
        }
    })
}

/// Types a browser may show in its own tab from our origin; anything else
/// (HTML, SVG, XML, scripts, archives) is downloaded instead.
fn shown_inline(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let svg = mime.eq_ignore_ascii_case("image/svg+xml");
    (mime.starts_with("image/") && !svg)
        || mime.starts_with("audio/")
        || mime.starts_with("video/")
        || mime.eq_ignore_ascii_case("application/pdf")
}
