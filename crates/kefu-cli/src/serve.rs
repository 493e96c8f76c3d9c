//! `kefu serve`: gateway, worker and register in one process, on embedded
//! SQLite and the in-memory register, wired in-process.

use crate::local::{LocalGateways, LocalWorker};
use crate::options::ServeOptions;
use anyhow::Context;
use kefu_gateway::{Gateway, GatewayConfig};
use kefu_lifecycle::Lifecycle;
use kefu_register::{Member, MemoryRegister, Register};
use kefu_worker::{Worker, WorkerConfig};
use std::sync::Arc;
use std::time::Duration;

/// Membership lease: renewed every third of it.
const LEASE: Duration = Duration::from_secs(10);

pub async fn run(opts: ServeOptions) -> anyhow::Result<()> {
    let secret = crate::secret::load_or_create(opts.secret.as_deref(), &opts.data_dir)?;
    let url = match &opts.database_url {
        Some(url) => url.clone(),
        None => crate::tools::sqlite_url(&opts.data_dir)?,
    };
    let store = kefu_store::Store::connect_with(&url, opts.worker.durability())
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("migrating the database")?;

    let register: Arc<dyn Register> = Arc::new(MemoryRegister::new());
    let gateways = LocalGateways::default();
    let worker_config = opts.worker.worker_config(WorkerConfig::default().id);
    // Each role owns its loops and jobs, stopped in turn at the end.
    let (gateway_role, worker_role) = (Lifecycle::new(), Lifecycle::new());
    let worker = Worker::start(
        worker_config,
        store,
        register.clone(),
        Arc::new(gateways.clone()),
        worker_role.clone(),
    );
    let mut gateway_config = GatewayConfig {
        pages: opts.web.pages()?,
        public_url: opts.web.public_url()?,
        allowed_origins: opts.web.allowed_origins()?,
        ..opts
            .gateway
            .gateway_config(GatewayConfig::default().id, secret)
    };
    opts.client_limits.apply(&mut gateway_config);
    gateway_config.server.tls = opts.tls.load(&gateway_role)?;
    let scheme = if gateway_config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let gateway = Gateway::new(
        gateway_config,
        Arc::new(LocalWorker(worker.clone())),
        register.clone(),
        gateway_role.clone(),
    );
    gateways.add(gateway.clone());
    let member = Member {
        id: gateway.id().to_owned(),
        role: "gateway".into(),
        addr: "in-process".into(),
    };
    gateway_role.spawn_loop(keep_alive(register.clone(), member.clone()));
    worker_role.spawn_loop(keep_alive(
        register.clone(),
        Member {
            id: worker.id().to_owned(),
            role: "worker".into(),
            addr: "in-process".into(),
        },
    ));

    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %opts.data_dir.display(), "serving");
    println!("kefu serving on {scheme}://{addr}");
    kefu_gateway::http::serve(listener, gateway.clone(), shutdown_signal()).await?;
    tracing::info!("draining");
    let deadline = tokio::time::Instant::now() + opts.drain.drain_timeout;
    gateway.all_closed(left(deadline)).await;
    let _ = register.leave(&member.id).await;
    let gateway_stopped = gateway_role.stop(left(deadline)).await;
    worker.drain(left(deadline)).await;
    let worker_stopped = worker_role.stop(left(deadline)).await;
    if !(gateway_stopped && worker_stopped) {
        tracing::warn!("tasks still running at the drain timeout; stopping anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

/// What is left of the drain until `deadline`.
pub fn left(deadline: tokio::time::Instant) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now())
}

async fn keep_alive(register: Arc<dyn Register>, member: Member) {
    loop {
        if let Err(e) = register.keep_alive(member.clone(), LEASE).await {
            tracing::warn!(error = %e, "keep-alive failed");
        }
        tokio::time::sleep(LEASE / 3).await;
    }
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
