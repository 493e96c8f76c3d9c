//! The in-process wiring of `kefu serve`: the gateway reaches the worker,
//! and the worker the gateway, through the same gRPC service traits a
//! cluster serves over the network, called directly.

use dashmap::DashMap;
use kefu_gateway::{Gateway, LinkError, WorkerLink};
use kefu_proto::v1::gateway_server::Gateway as GatewayService;
use kefu_proto::v1::worker_server::Worker as WorkerService;
use kefu_proto::v1::{ApiCall, ApiReply, ConnectionEvent, FrameRequest, PushBatch};
use kefu_worker::{GatewayLink, Worker};
use std::sync::Arc;
use tonic::Request;

/// The gateway's way to the one in-process worker.
pub struct LocalWorker(pub Worker);

fn link_error(status: tonic::Status) -> LinkError {
    LinkError(status.message().to_owned())
}

#[async_trait::async_trait]
impl WorkerLink for LocalWorker {
    /// Straight into the worker's lanes: a full lane makes the connection
    /// wait, as a full stream to a worker does in a cluster.
    async fn submit(&self, request: FrameRequest) -> Result<(), LinkError> {
        self.0.submit(request).await;
        Ok(())
    }

    async fn connection(&self, event: ConnectionEvent) -> Result<(), LinkError> {
        WorkerService::connection(&self.0, Request::new(event))
            .await
            .map(|_| ())
            .map_err(link_error)
    }

    async fn api(&self, request: ApiCall) -> Result<ApiReply, LinkError> {
        WorkerService::api(&self.0, Request::new(request))
            .await
            .map(|r| r.into_inner())
            .map_err(link_error)
    }
}

/// The worker's way to in-process gateways, by id.
#[derive(Default, Clone)]
pub struct LocalGateways(Arc<DashMap<String, Gateway>>);

impl LocalGateways {
    pub fn add(&self, gateway: Gateway) {
        self.0.insert(gateway.id().to_owned(), gateway);
    }
}

#[async_trait::async_trait]
impl GatewayLink for LocalGateways {
    /// Delivers at once: in-process, the push has left when this returns.
    async fn deliver(&self, gateway_id: &str, batch: PushBatch) -> kefu_worker::Pushed {
        let Some(gateway) = self.0.get(gateway_id).map(|g| g.clone()) else {
            tracing::warn!(gateway_id, "push for an unknown gateway dropped");
            return kefu_worker::pushed();
        };
        if let Err(status) = GatewayService::deliver(&gateway, Request::new(batch)).await {
            tracing::warn!(%status, gateway_id, "push failed");
        }
        kefu_worker::pushed()
    }
}
