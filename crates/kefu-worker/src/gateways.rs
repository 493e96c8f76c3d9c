//! The cluster's way from a worker to the gateways: the `Deliver` call on
//! the gateway named by the register, found by id.

use crate::GatewayLink;
use dashmap::DashMap;
use kefu_proto::auth;
use kefu_proto::v1::gateway_client::GatewayClient;
use kefu_proto::v1::PushBatch;
use kefu_register::Register;
use std::sync::Arc;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

type Client = GatewayClient<InterceptedService<Channel, auth::Attach>>;

pub struct RemoteGateways {
    register: Arc<dyn Register>,
    secret: Option<String>,
    /// gateway id → (address, client).
    clients: DashMap<String, (String, Client)>,
}

impl RemoteGateways {
    pub fn new(register: Arc<dyn Register>, secret: Option<String>) -> RemoteGateways {
        RemoteGateways {
            register,
            secret,
            clients: DashMap::new(),
        }
    }

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

#[async_trait::async_trait]
impl GatewayLink for RemoteGateways {
    async fn deliver(&self, gateway_id: &str, batch: PushBatch) {
        let Some(mut client) = self.client(gateway_id).await else {
            return tracing::warn!(gateway_id, "push for an unknown gateway dropped");
        };
        if let Err(status) = client.deliver(batch).await {
            // Forget the client: the gateway may come back at another address.
            self.clients.remove(gateway_id);
            tracing::warn!(gateway_id, %status, "push failed");
        }
    }
}
