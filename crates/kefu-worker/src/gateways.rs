//! The cluster's way from a worker to the gateways: the `Deliver` call on
//! the gateway named by the register, found by id.
//!
//! Each gateway has one queue and one sender task: the sender folds whatever
//! has queued up meanwhile into one `Deliver` call, so lanes pushing at once
//! share a round trip. A caller's push counts as delivered only once its
//! call returned: a frame is reported handled to its gateway only after its
//! ack left this worker, or the gateway would not retry it should this
//! worker die. One queue per gateway keeps pushes in order.
//!
//! A queue holds at most `queue` pushes: one gateway that stops taking
//! them must not stall every conversation of this worker, so a push that
//! finds its queue full is dropped and counted. It is not lost: the message
//! stays stored and marked undelivered, and the client gets it from its
//! retransmission on reconnect or from `/api/offline` (a dropped ack is
//! answered again when the client resends). A queue whose gateway left the
//! membership is dropped with what it holds, at the next sweep.

use crate::GatewayLink;
use dashmap::DashMap;
use kefu_proto::auth;
use kefu_proto::v1::gateway_client::GatewayClient;
use kefu_proto::v1::PushBatch;
use kefu_register::outage::Outage;
use kefu_register::Register;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

type Client = GatewayClient<InterceptedService<Channel, auth::Attach>>;

pub struct RemoteGateways {
    inner: Arc<Inner>,
    /// gateway id → its push queue.
    queues: Arc<DashMap<String, mpsc::Sender<Queued>>>,
    /// Pushes one gateway's queue holds.
    queue: usize,
    /// The worker's: the sweep and each gateway's sender are its loops.
    lifecycle: kefu_lifecycle::Lifecycle,
}

/// How often queues of departed gateways are looked for.
const SWEEP: Duration = Duration::from_secs(5);

/// Pushes queued for one gateway unless told otherwise.
pub const GATEWAY_QUEUE: usize = 4096;

struct Inner {
    register: Arc<dyn Register>,
    secret: Option<String>,
    /// gateway id → (address, client).
    clients: DashMap<String, (String, Client)>,
    /// The register's failures, logged once and not per push.
    register_outage: Outage,
}

/// A push waiting for its gateway's sender, and who to tell once it is sent.
type Queued = (PushBatch, oneshot::Sender<()>);

/// Pushes folded into one call at most.
const MAX_FOLD: usize = 1024;

impl RemoteGateways {
    /// Pushes through the gateways the register names, at most `queue`
    /// waiting for each; the queues of departed gateways are swept.
    pub fn new(
        register: Arc<dyn Register>,
        secret: Option<String>,
        queue: usize,
        lifecycle: kefu_lifecycle::Lifecycle,
    ) -> RemoteGateways {
        let gateways = RemoteGateways {
            inner: Arc::new(Inner {
                register,
                secret,
                clients: DashMap::new(),
                register_outage: Outage::new("the register (reading gateways)"),
            }),
            queues: Arc::default(),
            queue: queue.max(1),
            lifecycle,
        };
        let (inner, queues) = (
            Arc::downgrade(&gateways.inner),
            Arc::downgrade(&gateways.queues),
        );
        gateways.lifecycle.spawn_loop(async move {
            loop {
                tokio::time::sleep(SWEEP).await;
                let (Some(inner), Some(queues)) = (inner.upgrade(), queues.upgrade()) else {
                    return;
                };
                sweep(&inner, &queues).await;
            }
        });
        gateways
    }
}

/// Drops the queue (and the client) of every gateway that is no longer a
/// member; their sender tasks end once they have tried what they hold.
async fn sweep(inner: &Inner, queues: &DashMap<String, mpsc::Sender<Queued>>) {
    let Ok(members) = inner.register.members("gateway").await else {
        return;
    };
    let live: std::collections::HashSet<String> = members.into_iter().map(|m| m.id).collect();
    queues.retain(|id, _| {
        let keep = live.contains(id);
        if !keep {
            tracing::info!(gateway_id = %id, "gateway left; its push queue is dropped");
            inner.clients.remove(id);
        }
        keep
    });
}

impl Inner {
    async fn client(&self, gateway_id: &str) -> Option<Client> {
        if let Some(entry) = self.clients.get(gateway_id) {
            return Some(entry.1.clone());
        }
        let members = match self.register.members("gateway").await {
            Ok(m) => {
                self.register_outage.recovered();
                m
            }
            Err(e) => {
                self.register_outage.failed(&e);
                return None;
            }
        };
        let member = members.into_iter().find(|m| m.id == gateway_id)?;
        let url = kefu_proto::grpc_url(&member.addr);
        let channel = Endpoint::from_shared(url)
            .ok()?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy();
        let client =
            GatewayClient::with_interceptor(channel, auth::Attach::new(self.secret.as_deref()));
        self.clients
            .insert(gateway_id.to_owned(), (member.addr, client.clone()));
        Some(client)
    }
}

async fn send_loop(inner: Arc<Inner>, gateway_id: String, mut rx: mpsc::Receiver<Queued>) {
    while let Some((first, sent)) = rx.recv().await {
        let mut batch = first;
        let mut waiting = vec![sent];
        while batch.pushes.len() < MAX_FOLD {
            match rx.try_recv() {
                Ok((more, sent)) => {
                    batch.pushes.extend(more.pushes);
                    waiting.push(sent);
                }
                Err(_) => break,
            }
        }
        match inner.client(&gateway_id).await {
            Some(mut client) => {
                if let Err(status) = client.deliver(batch).await {
                    // Forget the client: the gateway may come back elsewhere.
                    inner.clients.remove(&gateway_id);
                    tracing::warn!(gateway_id, %status, "push failed");
                }
            }
            None => tracing::warn!(gateway_id, "push for an unknown gateway dropped"),
        }
        for sent in waiting {
            let _ = sent.send(());
        }
    }
}

#[async_trait::async_trait]
impl GatewayLink for RemoteGateways {
    async fn deliver(&self, gateway_id: &str, batch: PushBatch) -> crate::Pushed {
        let queue = self
            .queues
            .entry(gateway_id.to_owned())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(self.queue);
                let sender = send_loop(self.inner.clone(), gateway_id.to_owned(), rx);
                self.lifecycle.spawn_loop(sender);
                tx
            })
            .clone();
        let (sent, done) = oneshot::channel();
        if let Err(e) = queue.try_send((batch, sent)) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                crate::metrics::PUSHES_DROPPED.inc();
                tracing::debug!(gateway_id, "push queue full; push dropped");
            }
            return crate::pushed();
        }
        crate::Pushed::new(async move {
            let _ = done.await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kefu_proto::v1::Member;
    use kefu_register::memory::MemoryRegister;

    #[tokio::test]
    async fn a_full_gateway_queue_drops_pushes_and_a_departed_gateway_loses_its_queue() {
        // A gateway that accepts connections and never answers: its sender
        // is stuck on the first push.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = silent.local_addr().expect("addr").to_string();
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                sockets.push(socket);
            }
        });
        let register = Arc::new(MemoryRegister::new());
        let member = Member {
            id: "g".into(),
            role: "gateway".into(),
            addr,
        };
        register
            .keep_alive(member, Duration::from_secs(60))
            .await
            .expect("g joins");
        let gateways = RemoteGateways::new(register.clone(), None, 2, Default::default());
        let dropped = crate::metrics::PUSHES_DROPPED.get();
        let mut pending = vec![gateways.deliver("g", PushBatch::default()).await];
        // The sender takes the first and is stuck on it.
        let queue = gateways.queues.get("g").expect("a queue").clone();
        tokio::time::timeout(Duration::from_secs(5), async {
            while queue.capacity() < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the sender takes the first push");
        for _ in 0..2 {
            pending.push(gateways.deliver("g", PushBatch::default()).await);
        }
        assert_eq!(
            crate::metrics::PUSHES_DROPPED.get(),
            dropped,
            "one sending, two queued"
        );
        let fourth = gateways.deliver("g", PushBatch::default()).await;
        assert_eq!(
            crate::metrics::PUSHES_DROPPED.get(),
            dropped + 1,
            "the fourth is dropped"
        );
        tokio::time::timeout(Duration::from_millis(100), fourth.wait())
            .await
            .expect("a dropped push does not hold its caller");

        register.leave("g").await.expect("g leaves");
        sweep(&gateways.inner, &gateways.queues).await;
        assert!(
            gateways.queues.is_empty(),
            "the departed gateway's queue is gone"
        );
        held.abort();
    }
}
