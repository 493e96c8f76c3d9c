//! The cluster's way from a worker to the gateways: the `Deliver` call on
//! the gateway named by the register, found by id.
//!
//! Each gateway has one queue and one sender task: a push is queued and the
//! caller moves on; the sender folds whatever has queued up meanwhile into
//! one `Deliver` call. One queue per gateway keeps pushes in order.

use crate::GatewayLink;
use dashmap::DashMap;
use kefu_proto::auth;
use kefu_proto::v1::gateway_client::GatewayClient;
use kefu_proto::v1::PushBatch;
use kefu_register::Register;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

type Client = GatewayClient<InterceptedService<Channel, auth::Attach>>;

pub struct RemoteGateways {
    inner: Arc<Inner>,
    /// gateway id → its push queue.
    queues: DashMap<String, mpsc::UnboundedSender<PushBatch>>,
}

struct Inner {
    register: Arc<dyn Register>,
    secret: Option<String>,
    /// gateway id → (address, client).
    clients: DashMap<String, (String, Client)>,
}

/// Pushes folded into one call at most.
const MAX_FOLD: usize = 1024;

impl RemoteGateways {
    pub fn new(register: Arc<dyn Register>, secret: Option<String>) -> RemoteGateways {
        RemoteGateways {
            inner: Arc::new(Inner {
                register,
                secret,
                clients: DashMap::new(),
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
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read gateways");
                return None;
            }
        };
        let member = members.into_iter().find(|m| m.id == gateway_id)?;
        let url = if member.addr.contains("://") {
            member.addr.clone()
        } else {
            format!("http://{}", member.addr)
        };
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

async fn send_loop(
    inner: Arc<Inner>,
    gateway_id: String,
    mut rx: mpsc::UnboundedReceiver<PushBatch>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        while batch.pushes.len() < MAX_FOLD {
            match rx.try_recv() {
                Ok(more) => batch.pushes.extend(more.pushes),
                Err(_) => break,
            }
        }
        let Some(mut client) = inner.client(&gateway_id).await else {
            tracing::warn!(gateway_id, "push for an unknown gateway dropped");
            continue;
        };
        if let Err(status) = client.deliver(batch).await {
            // Forget the client: the gateway may come back at another address.
            inner.clients.remove(&gateway_id);
            tracing::warn!(gateway_id, %status, "push failed");
        }
    }
}

#[async_trait::async_trait]
impl GatewayLink for RemoteGateways {
    async fn deliver(&self, gateway_id: &str, batch: PushBatch) {
        let queue = self
            .queues
            .entry(gateway_id.to_owned())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(send_loop(self.inner.clone(), gateway_id.to_owned(), rx));
                tx
            })
            .clone();
        let _ = queue.send(batch);
    }
}
