//! The cluster roles as separate processes: `kefu register`, `kefu worker`,
//! `kefu gateway`. Each joins the register with a lease it renews, and
//! leaves it on SIGTERM.

use crate::options::{GatewayOptions, RegisterOptions, WorkerOptions};
use crate::serve::{left, shutdown_signal};
use anyhow::Context;
use kefu_gateway::workers::{RingLink, MAX_MESSAGE};
use kefu_gateway::Gateway;
use kefu_lifecycle::Lifecycle;
use kefu_proto::auth;
use kefu_register::grpc::RegisterService;
use kefu_register::outage::Outage;
use kefu_register::{Member, MemoryRegister, RedisRegister, Register, RemoteRegister};
use kefu_worker::gateways::RemoteGateways;
use kefu_worker::Worker;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Membership lease; renewed every third of it, so a dead member is gone
/// within 10 s.
pub const LEASE: Duration = Duration::from_secs(10);

pub async fn register(opts: RegisterOptions) -> anyhow::Result<()> {
    let role = Lifecycle::new();
    let (listener, starting) = bind_twice(&opts.listen)?;
    let addr = listener.local_addr()?;
    let secret = opts.cluster.secret(addr)?;
    let backend: Arc<dyn Register> = match &opts.redis_url {
        Some(url) => {
            let what = format!("Redis at {}", kefu_store::redacted(url));
            let connect = || RedisRegister::with_prefix(url, &opts.redis_prefix);
            let redis = while_starting(starting, &what, retrying(&what, any_error, connect));
            let Some(redis) = redis.await? else {
                tracing::info!("stopped");
                return Ok(());
            };
            role.spawn_loop(sweep(redis.clone(), what));
            Arc::new(redis)
        }
        None => {
            drop(starting);
            Arc::new(MemoryRegister::new())
        }
    };
    let service = kefu_proto::v1::register_server::RegisterServer::with_interceptor(
        RegisterService::new(backend),
        auth::Check::new(secret.as_deref()),
    );
    let app = with_ops_routes(tonic::service::Routes::new(service).into_axum_router());
    println!("kefu register serving on {addr}");
    serve_until(listener, app, shutdown_signal()).await;
    // Its only task is the sweep, a loop: nothing to wait for.
    if !role.stop(Duration::from_secs(1)).await {
        tracing::warn!("tasks still running at the drain timeout; stopping anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

/// gRPC plus `/healthz` (the process lives), `/readyz` (it serves) and
/// `/metrics` on one port.
fn with_ops_routes(grpc: axum::Router) -> axum::Router {
    use axum::routing::get;
    grpc.route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route(
            "/metrics",
            get(|| async {
                prometheus::TextEncoder::new()
                    .encode_to_string(&prometheus::gather())
                    .unwrap_or_default()
            }),
        )
}

/// Serves until `stop` resolves, then gives open connections (long-lived
/// gRPC streams among them) two seconds before returning.
async fn serve_until(
    listener: TcpListener,
    app: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop.await;
        let _ = stopped_tx.send(());
    });
    let mut server = std::pin::pin!(std::future::IntoFuture::into_future(server));
    tokio::select! {
        result = &mut server => {
            if let Err(e) = result {
                tracing::error!(error = %e, "server failed");
            }
        }
        _ = async {
            let _ = stopped_rx.await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        } => {}
    }
}

/// A member id unique to this start, so a restarted process never inherits
/// the locations its previous life left in the register.
fn unique_id(role: &str, advertise: &str) -> String {
    format!("{role}-{advertise}-{}", kefu_protocol::now_ms())
}

async fn sweep(redis: RedisRegister, what: String) {
    let outage = Outage::new(what);
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        match redis.sweep().await {
            Ok(()) => outage.recovered(),
            Err(e) => outage.failed(&e),
        };
    }
}

/// The role's port, bound once and opened twice: one copy answers health
/// checks while the role waits for its dependencies ([`while_starting`]),
/// the other then serves for real, so the port never closes in between.
fn bind_twice(listen: &str) -> anyhow::Result<(TcpListener, TcpListener)> {
    let bound = std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    bound.set_nonblocking(true)?;
    let copy = bound.try_clone()?;
    Ok((TcpListener::from_std(bound)?, TcpListener::from_std(copy)?))
}

/// Runs `work` (connecting to the role's dependencies) while `listener`
/// answers `/healthz` with 200 (the process lives) and `/readyz` with 503
/// naming what it waits for, so an orchestrator neither restarts a process
/// that waits for its database nor sends it traffic.
async fn while_starting<T>(
    listener: TcpListener,
    waiting_for: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    use axum::routing::get;
    let not_ready = format!("not ready: waiting for {waiting_for}\n");
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let body = not_ready.clone();
                async move { (axum::http::StatusCode::SERVICE_UNAVAILABLE, body) }
            }),
        );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(std::future::IntoFuture::into_future(
        axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        }),
    ));
    let out = work.await;
    let _ = stop.send(());
    // A health check still open is not waited for long.
    if tokio::time::timeout(Duration::from_secs(1), server)
        .await
        .is_err()
    {
        tracing::debug!("a health check outlived the start");
    }
    out
}

/// Connects to a dependency of a long-running role, again and again until
/// it answers: one log line per failed attempt, naming it, its address,
/// the reason and the wait before the next (1 s doubling to 30 s). Each
/// attempt gives up within seconds. An error `transient` says will not
/// pass by waiting (a malformed URL, a wrong password) ends the role at
/// once. `Ok(None)` when SIGTERM or Ctrl-C came first.
async fn retrying<T, E, F, Fut>(
    what: &str,
    transient: fn(&E) -> bool,
    mut connect: F,
) -> anyhow::Result<Option<T>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut wait = Duration::from_secs(1);
    let stop = shutdown_signal();
    let mut stop = std::pin::pin!(stop);
    for attempt in 1u32.. {
        let error = tokio::select! {
            result = connect() => match result {
                Ok(value) => {
                    if attempt > 1 {
                        tracing::info!("reached {what} at attempt {attempt}");
                    }
                    return Ok(Some(value));
                }
                Err(e) if !transient(&e) => anyhow::bail!("{what}: {e}"),
                Err(e) => e.to_string(),
            },
            _ = &mut stop => return Ok(None),
        };
        tracing::warn!(
            "cannot reach {what}: {error}; retrying in {}s (attempt {attempt})",
            wait.as_secs()
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return Ok(None),
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
    Ok(None)
}

/// Every Redis error is waited out: the register reports them all as one kind.
fn any_error<E>(_: &E) -> bool {
    true
}

fn remote_register(urls: &[String], secret: &Option<String>) -> anyhow::Result<Arc<dyn Register>> {
    Ok(Arc::new(RemoteRegister::new(urls, secret.as_deref())?))
}

/// How many renewals pass between two announcements of every connection
/// (about 30 s), which mend any announce that failed on connect.
const ANNOUNCE_EVERY: u32 = 9;

/// Keeps a membership lease. `announce` runs when the register did not know
/// the member (it restarted empty, or the lease lapsed), and every
/// [`ANNOUNCE_EVERY`] renewals.
async fn keep_alive<F, Fut>(register: Arc<dyn Register>, member: Member, announce: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut renewals = 0u32;
    let outage = Outage::new("the register (keeping this member alive)");
    loop {
        let renewed = register.keep_alive(member.clone(), LEASE).await;
        // While the register fails, try every second: the first renewal
        // after it is back (perhaps empty) re-announces every connection.
        let next = match &renewed {
            Ok(_) => {
                outage.recovered();
                LEASE / 3
            }
            Err(e) => {
                outage.failed(e);
                RETRY_RENEWAL
            }
        };
        match renewed {
            Ok(true) if renewals > 0 => {
                tracing::warn!(member = %member.id, "register did not know us; announcing again");
                announce().await;
            }
            Ok(_) if renewals > 0 && renewals.is_multiple_of(ANNOUNCE_EVERY) => announce().await,
            Ok(_) | Err(_) => {}
        }
        renewals += 1;
        tokio::time::sleep(next).await;
    }
}

/// How soon a failed renewal is tried again.
const RETRY_RENEWAL: Duration = Duration::from_secs(1);

pub async fn worker(opts: WorkerOptions) -> anyhow::Result<()> {
    let (listener, starting) = bind_twice(&opts.listen)?;
    let addr = listener.local_addr()?;
    let secret = opts.cluster.secret(addr)?;
    let remote = remote_register(&opts.register, &secret)?;
    let database = format!(
        "the database at {}",
        kefu_store::redacted(&opts.database_url)
    );
    let dependencies = async {
        let unreachable = kefu_store::StoreError::is_unreachable;
        let store = retrying(&database, unreachable, || async {
            let store =
                kefu_store::Store::connect_with(&opts.database_url, opts.tuning.durability())
                    .await?;
            store.migrate().await?;
            Ok::<_, kefu_store::StoreError>(store)
        })
        .await?;
        let Some(store) = store else {
            return Ok(None);
        };
        let register: Arc<dyn Register> = match &opts.redis_url {
            Some(url) => {
                let what = format!("Redis at {}", kefu_store::redacted(url));
                let redis = retrying(&what, any_error, || {
                    RedisRegister::with_prefix(url, &opts.redis_prefix)
                });
                let Some(redis) = redis.await? else {
                    return Ok(None);
                };
                Arc::new(redis)
            }
            None => remote.clone(),
        };
        anyhow::Ok(Some((store, register)))
    };
    let waiting_for = match &opts.redis_url {
        Some(url) => format!("{database} and Redis at {}", kefu_store::redacted(url)),
        None => database.clone(),
    };
    let Some((store, register)) = while_starting(starting, &waiting_for, dependencies).await?
    else {
        tracing::info!("stopped");
        return Ok(());
    };
    let advertise = opts.advertise.clone().unwrap_or_else(|| addr.to_string());
    let id = opts
        .id
        .clone()
        .unwrap_or_else(|| unique_id("worker", &advertise));
    let role = Lifecycle::new();
    let gateways = RemoteGateways::new(
        register.clone(),
        secret.clone(),
        opts.gateway_queue,
        role.clone(),
    );
    let worker_config = kefu_worker::WorkerConfig {
        peer_secret: secret.clone().map(kefu_worker::PeerSecret),
        ..opts.tuning.worker_config(id.clone())
    };
    let worker = Worker::start(
        worker_config,
        store,
        register,
        Arc::new(gateways),
        role.clone(),
    );
    let member = Member {
        id: id.clone(),
        role: "worker".into(),
        addr: advertise,
    };
    let service = tonic::service::interceptor::InterceptedService::new(
        kefu_proto::v1::worker_server::WorkerServer::new(worker.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        auth::Check::new(secret.as_deref()),
    );
    let lease = role.child();
    lease.spawn_loop(keep_alive(remote.clone(), member.clone(), || async {}));
    let app = with_ops_routes(tonic::service::Routes::new(service).into_axum_router());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    role.spawn(serve_until(listener, app, async move {
        let _ = stop_rx.await;
    }));
    println!("kefu worker {id} serving on {addr}");
    shutdown_signal().await;
    // Leave first, so gateways move this worker's shards; then finish what
    // was taken; then close the streams.
    tracing::info!("draining");
    let deadline = tokio::time::Instant::now() + opts.drain.drain_timeout;
    lease.cancel();
    let _ = remote.leave(&member.id).await;
    // Each gateway notices within 500 ms, lets this worker finish the
    // frames it sent here, then closes its stream.
    if !worker.frame_streams_closed(left(deadline)).await {
        tracing::warn!("a gateway kept its stream open; draining anyway");
    }
    worker.drain(left(deadline)).await;
    let _ = stop_tx.send(());
    // The server gives its open calls two more seconds.
    if !role.stop(left(deadline) + Duration::from_secs(2)).await {
        tracing::warn!("tasks still running at the drain timeout; stopping anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

pub async fn gateway(opts: GatewayOptions) -> anyhow::Result<()> {
    let token_secret = crate::options::checked_secret(&opts.secret, "--secret")?;
    let listener = TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    // By default beside the clients' port, on a port the system picks, so
    // that several gateways share a host without settings.
    let internal_listen = opts
        .internal_listen
        .clone()
        .unwrap_or_else(|| std::net::SocketAddr::new(addr.ip(), 0).to_string());
    let internal = TcpListener::bind(&internal_listen)
        .await
        .with_context(|| format!("binding {internal_listen}"))?;
    let internal_addr = internal.local_addr()?;
    let secret = opts.cluster.secret(internal_addr)?;
    let register = remote_register(&opts.register, &secret)?;
    let advertise = opts
        .advertise
        .clone()
        .unwrap_or_else(|| internal_addr.to_string());
    let id = opts
        .id
        .clone()
        .unwrap_or_else(|| unique_id("gateway", &advertise));
    let role = Lifecycle::new();
    let workers = RingLink::start(
        register.clone(),
        secret.clone(),
        opts.worker_queue,
        role.clone(),
    );
    workers.refresh().await;
    let mut config = kefu_gateway::GatewayConfig {
        pages: opts.web.pages()?,
        public_url: opts.web.public_url()?,
        allowed_origins: opts.web.allowed_origins()?,
        ..opts.tuning.gateway_config(id.clone(), token_secret)
    };
    opts.client_limits.apply(&mut config);
    config.server.tls = opts.tls.load(&role)?;
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let gateway = Gateway::new(config, Arc::new(workers), register.clone(), role.clone());
    let member = Member {
        id: id.clone(),
        role: "gateway".into(),
        addr: advertise,
    };
    let announcer = gateway.clone();
    let lease = role.child();
    lease.spawn_loop(keep_alive(register.clone(), member.clone(), move || {
        let gateway = announcer.clone();
        async move { gateway.announce_all().await }
    }));
    // Workers push through the internal port until the clients are gone.
    let grpc = kefu_proto::v1::gateway_server::GatewayServer::with_interceptor(
        gateway.clone(),
        auth::Check::new(secret.as_deref()),
    );
    let internal_app = with_ops_routes(tonic::service::Routes::new(grpc).into_axum_router());
    let (stop_internal, internal_stop) = tokio::sync::oneshot::channel::<()>();
    role.spawn(serve_until(internal, internal_app, async move {
        let _ = internal_stop.await;
    }));
    tracing::info!(%internal_addr, "workers push through the internal listener");
    println!("kefu serving on {scheme}://{addr}");
    kefu_gateway::http::serve(listener, gateway.clone(), shutdown_signal()).await?;
    let deadline = tokio::time::Instant::now() + opts.drain.drain_timeout;
    gateway.all_closed(left(deadline)).await;
    lease.cancel();
    let _ = register.leave(&member.id).await;
    let _ = stop_internal.send(());
    // The internal server gives its open calls two more seconds.
    if !role.stop(left(deadline) + Duration::from_secs(2)).await {
        tracing::warn!("tasks still running at the drain timeout; stopping anyway");
    }
    tracing::info!("stopped");
    Ok(())
}
