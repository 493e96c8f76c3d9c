//! Kefu's worker: the business role. It stores, routes, counts and assigns.
//!
//! Gateways hand it client frames ([`Worker::submit`]), connection events
//! ([`Worker::connection`]) and HTTP calls ([`Worker::api`]), over gRPC in a
//! cluster ([`grpc`]) or in-process under `kefu serve`. It answers by pushing
//! frames to the gateways that hold the recipients, found in the register.
//!
//! # Layout
//! - [`lane`]: per-shard ordering; consecutive sends pipeline into group commit.
//! - [`messages`]: send, receive, read, revoke, delete, typing.
//! - [`tasks`]: opening, transfer, end, rating.
//! - `dispatch`: the one place that picks agents: load index, queue,
//!   positions; on the worker owning shard 0 of the ring.
//! - `reassign`: tasks of agents offline too long go back to the queue.
//! - `abandon`: waiting customers gone too long leave the queue.
//! - `sign_out`: signed-out tokens and disabled agents refused, their
//!   connections closed.
//! - [`api`]: the HTTP calls, as JSON.
//! - `notices`: system messages (toasts, assess), for tasks and the sweeps.
//! - [`outbox`]: pushes gathered per gateway, then delivered.
//! - [`view`]: stored rows as client frames.
//! - [`grpc`]: the `Worker` gRPC service.
//! - [`gateways`]: pushes to gateways over gRPC, in a cluster.
//! - [`metrics`]: counters and histograms.

#![forbid(unsafe_code)]

mod abandon;
pub mod api;
mod dispatch;
pub mod gateways;
pub mod grpc;
pub mod lane;
pub mod messages;
pub mod metrics;
mod notices;
pub(crate) mod outbox;
mod reassign;
mod sign_out;
pub mod tasks;
pub mod view;

use kefu_lifecycle::Lifecycle;
use kefu_proto::v1::{ApiCall, ApiReply, ConnectionEvent, FrameRequest, PushBatch, Session};
use kefu_protocol::{Command, ErrorCode, ProtocolError, Role};
use kefu_register::Register;
use kefu_store::{Store, Writer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Pushes handed to a gateway link: [`Pushed::wait`] resolves once they have
/// left this worker.
pub struct Pushed(futures::future::BoxFuture<'static, ()>);

impl Pushed {
    pub fn new(sent: impl std::future::Future<Output = ()> + Send + 'static) -> Pushed {
        Pushed(Box::pin(sent))
    }

    pub async fn wait(self) {
        self.0.await
    }
}

/// A [`Pushed`] for pushes already gone, or for none.
pub fn pushed() -> Pushed {
    Pushed::new(std::future::ready(()))
}

/// How a worker reaches gateways.
#[async_trait::async_trait]
pub trait GatewayLink: Send + Sync + 'static {
    /// Hands pushes to one gateway; the returned future resolves once they
    /// have left this worker. A gateway that is gone drops them (the
    /// undelivered marks in the database keep what matters).
    async fn deliver(&self, gateway_id: &str, batch: PushBatch) -> Pushed;
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub id: String,
    /// Open tasks an agent may hold before new ones wait.
    pub max_tasks_per_agent: i64,
    /// How long a sender may revoke a message.
    pub revoke_window: Duration,
    /// Parallel ordered lanes; a shard always maps to the same lane.
    pub lanes: usize,
    /// Frames one lane holds before their submitters wait.
    pub lane_queue: usize,
    /// Most messages per group-commit transaction.
    pub max_batch: usize,
    /// An agent with no connection for this long loses their open tasks to
    /// the queue. Zero: never.
    pub reassign_offline_after: Duration,
    /// A task whose customer's message has waited this long for an answer
    /// goes back to the queue. Zero: never.
    pub reassign_unanswered_after: Duration,
    /// A waiting customer with no connection for this long leaves the
    /// queue. Zero: never.
    pub queue_abandon_after: Duration,
    /// Waiting tasks opened from one client address, at most. Zero: no
    /// limit.
    pub max_waiting_per_ip: u64,
    /// Bytes one user may upload in 24 hours. Zero: no limit.
    pub upload_quota: u64,
    /// Uploads older than this are deleted. Zero: kept for ever.
    pub file_retention: Duration,
    /// The secret workers present to each other (the cluster secret).
    pub peer_secret: Option<PeerSecret>,
}

/// The cluster secret, kept out of logs.
#[derive(Clone)]
pub struct PeerSecret(pub String);

impl std::fmt::Debug for PeerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerSecret(..)")
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: "worker-1".into(),
            max_tasks_per_agent: 10,
            revoke_window: Duration::from_secs(120),
            lanes: 32,
            lane_queue: lane::LANE_QUEUE,
            max_batch: 1024,
            reassign_offline_after: Duration::from_secs(300),
            reassign_unanswered_after: Duration::ZERO,
            queue_abandon_after: Duration::from_secs(600),
            max_waiting_per_ip: 20,
            upload_quota: 1 << 30,
            file_retention: Duration::ZERO,
            peer_secret: None,
        }
    }
}

/// A worker; cheap to clone.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: WorkerConfig,
    /// Gateways' `Frames` streams open on this worker.
    pub(crate) frame_streams: tokio::sync::watch::Sender<usize>,
    pub(crate) store: Store,
    pub(crate) writer: Writer,
    /// Where tasks are opened (a batch per transaction), assigned, ended
    /// and handed their waiting messages: the message writer on SQLite
    /// (its one connection takes every write, so none waits in SQLite's
    /// busy sleeps), a writer of its own on a server database, so opens do
    /// not wait behind message batches.
    pub(crate) task_writer: Writer,
    pub(crate) register: Arc<dyn Register>,
    pub(crate) gateways: Arc<dyn GatewayLink>,
    /// The worker's loops and jobs, stopped by whoever started it, after
    /// [`Worker::drain`].
    pub(crate) lifecycle: Lifecycle,
    pub(crate) lanes: Vec<lane::Lane>,
    pub(crate) dispatch: dispatch::Dispatch,
    pub(crate) tasks: tasks::TaskCache,
    /// Failed lookups of recipients, logged once and not per message.
    pub(crate) locate_outage: kefu_register::outage::Outage,
    /// The ids of agents, so that a customer token for one is refused
    /// without a query per connection.
    pub(crate) agent_ids: AgentIds,
    pub(crate) sign_outs: sign_out::SignOuts,
}

/// Agent ids as last read from the database, read again when older than
/// [`AgentIds::FRESH`] (another worker may have recorded a new agent).
#[derive(Default)]
pub(crate) struct AgentIds {
    ids: tokio::sync::RwLock<(
        std::collections::HashSet<String>,
        Option<tokio::time::Instant>,
    )>,
}

impl AgentIds {
    const FRESH: Duration = Duration::from_secs(30);

    pub(crate) async fn contains(&self, store: &Store, id: &str) -> kefu_store::Result<bool> {
        {
            let (ids, read_at) = &*self.ids.read().await;
            if read_at.is_some_and(|t| t.elapsed() < Self::FRESH) {
                return Ok(ids.contains(id));
            }
        }
        let mut guard = self.ids.write().await;
        // Another caller may have read them while this one waited.
        if guard.1.is_some_and(|t| t.elapsed() < Self::FRESH) {
            return Ok(guard.0.contains(id));
        }
        let agents = store.agents().await?;
        *guard = (
            agents.into_iter().map(|a| a.id).collect(),
            Some(tokio::time::Instant::now()),
        );
        Ok(guard.0.contains(id))
    }

    pub(crate) async fn add(&self, id: &str) {
        self.ids.write().await.0.insert(id.to_owned());
    }
}

/// A frame's sender as the worker sees it.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    pub session: Session,
    pub role: Role,
}

impl Sender {
    pub(crate) fn user(&self) -> &str {
        &self.session.user_id
    }

    fn from_session(session: Option<Session>) -> Result<Sender, ProtocolError> {
        let session =
            session.ok_or_else(|| ProtocolError::new(ErrorCode::Unauthorized, "no session"))?;
        let role =
            Role::parse(&session.role).ok_or_else(|| ProtocolError::bad_request("unknown role"))?;
        Ok(Sender { session, role })
    }
}

impl Worker {
    /// Starts a worker on a migrated store; its loops and jobs run in
    /// `lifecycle`.
    pub fn start(
        config: WorkerConfig,
        store: Store,
        register: Arc<dyn Register>,
        gateways: Arc<dyn GatewayLink>,
        lifecycle: Lifecycle,
    ) -> Worker {
        metrics::init();
        let writer = Writer::start(store.clone(), config.max_batch);
        let task_writer = if store.is_sqlite() {
            writer.clone()
        } else {
            Writer::start(store.clone(), config.max_batch)
        };
        let lanes = (0..config.lanes.max(1))
            .map(|_| lane::Lane::start(&lifecycle, config.lane_queue))
            .collect();
        let dispatch = dispatch::Dispatch::new(
            config.id.clone(),
            config.peer_secret.as_ref().map(|s| s.0.clone()),
            config.max_tasks_per_agent,
        );
        let inner = Arc::new(Inner {
            dispatch,
            frame_streams: tokio::sync::watch::Sender::new(0),
            config,
            store,
            writer,
            task_writer,
            register,
            gateways,
            lifecycle,
            lanes,
            tasks: tasks::TaskCache::default(),
            agent_ids: AgentIds::default(),
            sign_outs: sign_out::SignOuts::default(),
            locate_outage: kefu_register::outage::Outage::new(
                "the register (locating recipients; their pushes are skipped and they read \
                 the messages from /api/offline)",
            ),
        });
        dispatch::Dispatch::start(Arc::downgrade(&inner), &inner.lifecycle);
        reassign::start(inner.clone());
        reassign::start_unanswered(inner.clone());
        abandon::start(inner.clone());
        sign_out::start(inner.clone());
        let sweeper = inner.clone();
        inner.lifecycle.spawn_loop(async move {
            let mut every = tokio::time::interval(Duration::from_secs(600));
            loop {
                every.tick().await;
                if sweeper.store.reachable() {
                    api::delete_abandoned_uploads(&sweeper).await;
                }
            }
        });
        reassign::every_quarter_of(
            inner.config.file_retention,
            inner.clone(),
            |inner, (): &mut ()| Box::pin(async move { api::delete_old_files(&inner).await }),
        );
        Worker { inner }
    }

    pub fn id(&self) -> &str {
        &self.inner.config.id
    }

    /// Takes one client frame. Frames of one shard are handled in the order
    /// they are submitted; the answer (an ack, an error) is pushed back.
    pub async fn submit(&self, request: FrameRequest) {
        drop(self.submit_tracked(request).await);
    }

    /// Like [`Worker::submit`]; the receiver yields, once the frame is
    /// handled (stored, answered), a future that resolves when its pushes
    /// have left this worker. Until then a gateway keeps the frame, to retry
    /// it elsewhere if this worker dies. Lanes do not wait for the pushes.
    pub async fn submit_tracked(&self, request: FrameRequest) -> oneshot::Receiver<Pushed> {
        let (done, handled) = oneshot::channel();
        metrics::FRAMES.inc();
        let sender = match Sender::from_session(request.session) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "frame without a valid session");
                let _ = done.send(pushed());
                return handled;
            }
        };
        // A connection that outlived its user's sign-out (its close is on
        // its way, or was lost with the register) sends nothing more.
        let signed_out = self
            .inner
            .sign_outs
            .refusal(sender.user(), sender.session.issued_at);
        if let Some(e) = signed_out {
            refuse_connection(&self.inner, &sender, e, sign_out::SIGNED_OUT_CLOSE).await;
            let _ = done.send(pushed());
            return handled;
        }
        // The gateway checked the frame; what arrives is the command.
        let Some(command) = request.command.and_then(|c| c.into_command()) else {
            tracing::warn!(conn = %sender.session.conn_id, "frame without a command");
            let _ = done.send(pushed());
            return handled;
        };
        let lane = &self.inner.lanes[request.shard as usize % self.inner.lanes.len()];
        let inner = self.inner.clone();
        match command {
            Command::Send(send) => {
                lane.pipelined(async move {
                    match messages::send(inner, sender, send).await {
                        Some(tail) => Some(Box::pin(async move {
                            let fan_out = tail.await;
                            lane::Finish::new(async move {
                                let _ = done.send(fan_out.run().await);
                            })
                        }) as lane::AfterCommit),
                        None => {
                            let _ = done.send(pushed());
                            None
                        }
                    }
                })
                .await
            }
            Command::Receive { ids } => {
                if messages::receive(&inner, &sender, ids.clone()).await {
                    // Telling the user's devices waits on the register and
                    // their gateways: the frames behind this one must not.
                    let lifecycle = inner.lifecycle.clone();
                    lifecycle.spawn(async move {
                        let sent = messages::announce_confirmed(&inner, &sender, ids).await;
                        let _ = done.send(sent);
                    });
                } else {
                    let _ = done.send(pushed());
                }
            }
            other => {
                lane.ordered(async move {
                    messages::other(inner, sender, other).await;
                    let _ = done.send(pushed());
                })
                .await
            }
        }
        handled
    }

    /// A client connected or disconnected: agents become known and online,
    /// and the waiting queue may move.
    pub async fn connection(&self, event: ConnectionEvent) {
        let Ok(sender) = Sender::from_session(event.session) else {
            return;
        };
        if !event.connected {
            if sender.role == Role::Agent {
                self.agent_changed(sender.user()).await;
            }
            return;
        }
        let signed_out = self
            .inner
            .sign_outs
            .refusal(sender.user(), sender.session.issued_at);
        if let Some(e) = signed_out {
            tracing::info!(user = sender.user(), conn = %sender.session.conn_id, "{}; connection closed", e.message);
            return refuse_connection(&self.inner, &sender, e, sign_out::SIGNED_OUT_CLOSE).await;
        }
        let recorded = match sender.role {
            Role::Agent => {
                let name = if sender.session.name.is_empty() {
                    sender.user()
                } else {
                    &sender.session.name
                };
                let recorded = self
                    .inner
                    .store
                    .upsert_user(sender.user(), "agent", name)
                    .await;
                if recorded.is_ok() {
                    self.inner.agent_ids.add(sender.user()).await;
                }
                recorded
            }
            Role::Customer => self.inner.customer_may_use(sender.user()).await,
            Role::Admin => Ok(()),
        };
        match recorded {
            Ok(()) if sender.role == Role::Agent => self.agent_changed(sender.user()).await,
            Ok(()) => {}
            Err(e @ kefu_store::StoreError::RoleTaken { .. }) => {
                tracing::warn!(user = sender.user(), conn = %sender.session.conn_id, "{e}; connection closed");
                let error = ProtocolError::forbidden(format!("{e}; this token cannot use it"));
                refuse_connection(&self.inner, &sender, error, ROLE_TAKEN_CLOSE).await
            }
            Err(e) => {
                tracing::warn!(error = %e, user = sender.user(), "cannot check the user's role")
            }
        }
    }

    /// Waits, at most `timeout`, until no gateway has a `Frames` stream
    /// open here: after this worker left the register, each gateway closes
    /// its stream once the frames it sent here are settled. True if none is
    /// left open.
    pub async fn frame_streams_closed(&self, timeout: Duration) -> bool {
        let mut open = self.inner.frame_streams.subscribe();
        let closed = tokio::time::timeout(timeout, open.wait_for(|n| *n == 0)).await;
        closed.is_ok()
    }

    /// Waits, at most `timeout`, until every frame taken so far is answered:
    /// every lane has run its queued jobs and their commits.
    pub async fn drain(&self, timeout: Duration) {
        let all = futures::future::join_all(self.inner.lanes.iter().map(|lane| async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            lane.ordered(async move {
                let _ = tx.send(());
            })
            .await;
            let _ = rx.await;
        }));
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("drain timed out with work in flight");
        }
    }

    /// An agent connected, left or changed: the dispatcher reads them again.
    async fn agent_changed(&self, agent: &str) {
        let event = dispatch::Event::AgentChanged {
            agent: agent.to_owned(),
        };
        self.inner.dispatch.send(&self.inner, event).await;
    }

    /// An event for the dispatcher from another worker.
    pub async fn dispatch_event(
        &self,
        request: kefu_proto::v1::DispatchRequest,
    ) -> kefu_proto::v1::DispatchReply {
        self.inner
            .dispatch
            .handle_remote(&self.inner, request)
            .await
    }

    /// One HTTP call from a gateway.
    pub async fn api(&self, call: ApiCall) -> ApiReply {
        api::handle(&self.inner, call).await
    }
}

impl Inner {
    /// A customer token may not carry an agent's id: it would receive what
    /// is sent to that agent. Checked against the cached agent ids, on every
    /// connection and every HTTP call of a customer.
    pub(crate) async fn customer_may_use(&self, user: &str) -> kefu_store::Result<()> {
        if self.agent_ids.contains(&self.store, user).await? {
            return Err(kefu_store::StoreError::RoleTaken {
                id: user.to_owned(),
                role: "agent".into(),
            });
        }
        Ok(())
    }
}

/// Closes a connection its token does not entitle: signed out (4401), or
/// naming a user id recorded with another role (4403: a customer token for
/// an agent's id would receive what is sent to that agent). An error ack
/// for `auth`, then the close.
async fn refuse_connection(inner: &Inner, sender: &Sender, error: ProtocolError, code: u32) {
    let mut out = outbox::Outbox::default();
    out.refuse(&sender.session, "auth", None, &error);
    out.close(&sender.session, code);
    out.send(inner).await;
}

/// The close code of a connection whose token names another role's user.
pub const ROLE_TAKEN_CLOSE: u32 = 4403;

/// What a store failure looks like to a client.
pub(crate) fn store_error(e: kefu_store::StoreError) -> ProtocolError {
    match e {
        kefu_store::StoreError::NotFound(what) => {
            ProtocolError::not_found(format!("{what} not found"))
        }
        kefu_store::StoreError::Conflict(m) => ProtocolError::new(ErrorCode::Conflict, m),
        e @ kefu_store::StoreError::RoleTaken { .. } => ProtocolError::forbidden(e.to_string()),
        kefu_store::StoreError::WriterStopped => {
            ProtocolError::new(ErrorCode::Unavailable, "storage is shutting down")
        }
        // Said once by the store's breaker, not once per request.
        e if e.is_unreachable() => {
            tracing::debug!(error = %e, "storage unreachable");
            ProtocolError::new(ErrorCode::Unavailable, "storage unavailable")
        }
        other => {
            tracing::error!(error = %other, "storage failed");
            ProtocolError::new(ErrorCode::Unavailable, "storage unavailable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kefu_register::memory::MemoryRegister;

    /// Pushes go nowhere.
    struct NoGateways;

    #[async_trait::async_trait]
    impl GatewayLink for NoGateways {
        async fn deliver(&self, _: &str, _: PushBatch) -> Pushed {
            pushed()
        }
    }

    /// Every task a worker starts is a loop or a job of its lifecycle:
    /// stopping the lifecycle ends them all, and then nothing holds the
    /// worker (no detached loop keeps its state alive).
    #[tokio::test]
    async fn stopping_its_lifecycle_ends_every_task_the_worker_started() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        store.migrate().await.expect("migrated");
        let role = Lifecycle::new();
        let config = WorkerConfig {
            // Every sweep on, so that each has started a loop.
            reassign_unanswered_after: Duration::from_secs(60),
            file_retention: Duration::from_secs(3600),
            ..WorkerConfig::default()
        };
        let worker = Worker::start(
            config,
            store,
            Arc::new(MemoryRegister::new()),
            Arc::new(NoGateways),
            role.clone(),
        );
        let state = Arc::downgrade(&worker.inner);
        drop(worker);
        assert!(role.running() > 32, "lanes and loops run");
        assert!(role.stop(Duration::from_secs(5)).await, "all ended in time");
        assert_eq!(role.running(), 0);
        assert!(state.upgrade().is_none(), "nothing holds the worker");
    }
}
