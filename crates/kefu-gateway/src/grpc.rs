//! The `Gateway` gRPC service: workers deliver pushes through it.

use crate::Gateway;
use kefu_proto::v1::gateway_server;
use kefu_proto::v1::{PushBatch, PushReply};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl gateway_server::Gateway for Gateway {
    async fn deliver(&self, request: Request<PushBatch>) -> Result<Response<PushReply>, Status> {
        Gateway::deliver(self, request.into_inner());
        Ok(Response::new(PushReply {}))
    }
}
