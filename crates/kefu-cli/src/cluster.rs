//! The cluster roles as separate processes: `kefu register`, `kefu worker`,
//! `kefu gateway`. Each joins the register with a lease it renews, and
//! leaves it on SIGTERM.

use crate::options::{GatewayOptions, RegisterOptions, WorkerOptions};
use crate::serve::shutdown_signal;
use anyhow::Context;
use kefu_gateway::workers::{RingLink, MAX_MESSAGE};
use kefu_gateway::Gateway;
use kefu_proto::auth;
use kefu_register::grpc::RegisterService;
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
    let secret = opts.cluster.secret();
    let backend: Arc<dyn Register> = match &opts.redis_url {
        Some(url) => {
            let redis = RedisRegister::with_prefix(url, &opts.redis_prefix)
                .await
                .context("connecting to Redis")?;
            tokio::spawn(sweep(redis.clone()));
            Arc::new(redis)
        }
        None => Arc::new(MemoryRegister::new()),
    };
    let listener = TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let service = kefu_proto::v1::register_server::RegisterServer::with_interceptor(
        RegisterService::new(backend),
        auth::Check::new(secret.as_deref()),
    );
    let app = with_ops_routes(tonic::service::Routes::new(service).into_axum_router());
    println!("kefu register serving on {addr}");
    let server = tokio::spawn(serve_until(listener, app, shutdown_signal()));
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

/// gRPC plus `/healthz` and `/metrics` on one port.
fn with_ops_routes(grpc: axum::Router) -> axum::Router {
    use axum::routing::get;
    grpc.route("/healthz", get(|| async { "ok" })).route(
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

async fn sweep(redis: RedisRegister) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if let Err(e) = redis.sweep().await {
            tracing::warn!(error = %e, "sweep failed");
        }
    }
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
    loop {
        match register.keep_alive(member.clone(), LEASE).await {
            Ok(true) if renewals > 0 => {
                tracing::warn!(member = %member.id, "register did not know us; announcing again");
                announce().await;
            }
            Ok(_) if renewals > 0 && renewals.is_multiple_of(ANNOUNCE_EVERY) => announce().await,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "keep-alive failed"),
        }
        renewals += 1;
        tokio::time::sleep(LEASE / 3).await;
    }
}

pub async fn worker(opts: WorkerOptions) -> anyhow::Result<()> {
    let secret = opts.cluster.secret();
    let store = kefu_store::Store::connect(&opts.database_url)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("migrating the database")?;
    let remote = remote_register(&opts.register, &secret)?;
    let register: Arc<dyn Register> = match &opts.redis_url {
        Some(url) => Arc::new(
            RedisRegister::with_prefix(url, &opts.redis_prefix)
                .await
                .context("connecting to Redis")?,
        ),
        None => remote.clone(),
    };
    let listener = TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let advertise = opts.advertise.clone().unwrap_or_else(|| addr.to_string());
    let id = opts
        .id
        .clone()
        .unwrap_or_else(|| unique_id("worker", &advertise));
    let gateways = RemoteGateways::new(register.clone(), secret.clone());
    let worker = Worker::start(
        opts.tuning.worker_config(id.clone()),
        store,
        register,
        Arc::new(gateways),
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
    let lease = tokio::spawn(keep_alive(remote.clone(), member.clone(), || async {}));
    let app = with_ops_routes(tonic::service::Routes::new(service).into_axum_router());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(listener, app, async move {
        let _ = stop_rx.await;
    }));
    println!("kefu worker {id} serving on {addr}");
    shutdown_signal().await;
    // Leave first, so gateways move this worker's shards; then finish what
    // was taken; then close the streams.
    tracing::info!("draining");
    lease.abort();
    let _ = remote.leave(&member.id).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    worker.drain(opts.tuning.drain_timeout).await;
    let _ = stop_tx.send(());
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

pub async fn gateway(opts: GatewayOptions) -> anyhow::Result<()> {
    anyhow::ensure!(!opts.secret.is_empty(), "--secret must not be empty");
    let secret = opts.cluster.secret();
    let register = remote_register(&opts.register, &secret)?;
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
    let advertise = opts
        .advertise
        .clone()
        .unwrap_or_else(|| internal_addr.to_string());
    let id = opts
        .id
        .clone()
        .unwrap_or_else(|| unique_id("gateway", &advertise));
    let workers = RingLink::start(register.clone(), secret.clone());
    workers.refresh().await;
    let mut config = kefu_gateway::GatewayConfig {
        pages: opts.web.pages()?,
        public_url: opts.web.public_url()?,
        ..opts
            .tuning
            .gateway_config(id.clone(), opts.secret.as_bytes().to_vec())
    };
    opts.client_limits.apply(&mut config);
    let gateway = Gateway::new(config, Arc::new(workers), register.clone());
    let member = Member {
        id: id.clone(),
        role: "gateway".into(),
        addr: advertise,
    };
    let announcer = gateway.clone();
    let lease = tokio::spawn(keep_alive(register.clone(), member.clone(), move || {
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
    let internal_server = tokio::spawn(serve_until(internal, internal_app, async move {
        let _ = internal_stop.await;
    }));
    tracing::info!(%internal_addr, "workers push through the internal listener");
    println!("kefu serving on http://{addr}");
    kefu_gateway::http::serve(listener, gateway.clone(), shutdown_signal()).await?;
    let deadline = tokio::time::Instant::now() + opts.tuning.drain_timeout;
    while gateway.connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lease.abort();
    let _ = register.leave(&member.id).await;
    let _ = stop_internal.send(());
    let _ = internal_server.await;
    tracing::info!("stopped");
    Ok(())
}
