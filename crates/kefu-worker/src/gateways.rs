//! The cluster's way from a worker to the gateways: the `Deliver` call on
//! the gateway named by the register, found by id.
//!
//! Each gateway has one queue and one sender task: the sender folds whatever
//! has queued up meanwhile into one `Deliver` call, so lanes pushing at once
//! share a round trip. A caller's push counts as delivered only once its
//! call returned: a frame is reported handled to its gateway only after its
//! ack left this worker, or the gateway would not retry it should this
//! worker die. One queue per gateway keeps pushes in order.

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
    queues: DashMap<String, mpsc::UnboundedSender<Queued>>,
}

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
    pub fn new(register: Arc<dyn Register>, secret: Option<String>) -> RemoteGateways {
        RemoteGateways {
            inner: Arc::new(Inner {
                register,
                secret,
                clients: DashMap::new(),
                register_outage: Outage::new("the register (reading gateways)"),
            }),
            queues: DashMap::new(),
        }
    }
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

async fn send_loop(inner: Arc<Inner>, gateway_id: String, mut rx: mpsc::UnboundedReceiver<Queued>) {
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
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(send_loop(self.inner.clone(), gateway_id.to_owned(), rx));
                tx
            })
            .clone();
        let (sent, done) = oneshot::channel();
        if queue.send((batch, sent)).is_err() {
            return crate::pushed();
        }
        crate::Pushed::new(async move {
            let _ = done.await;
        })
    }
}
