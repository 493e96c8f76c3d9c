//! The `Worker` gRPC service: how gateways reach a worker in a cluster, and
//! the trait `kefu serve` calls in-process.

use crate::Worker;
use kefu_proto::v1::worker_server;
use kefu_proto::v1::{
    ApiCall, ApiReply, ConnectionEvent, DispatchReply, DispatchRequest, EventReply, FrameRequest,
    FramesDone,
};
use std::pin::Pin;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// One gateway's `Frames` stream, counted while open (however its task
/// ends).
struct OpenStream(tokio::sync::watch::Sender<usize>);

impl OpenStream {
    fn count(streams: &tokio::sync::watch::Sender<usize>) -> OpenStream {
        streams.send_modify(|n| *n += 1);
        OpenStream(streams.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

#[tonic::async_trait]
impl worker_server::Worker for Worker {
    type FramesStream = Pin<Box<dyn Stream<Item = Result<FramesDone, Status>> + Send>>;

    /// Frames in submission order; each frame's `seq` comes back once the
    /// frame is fully handled. Pushes go through the gateways' `Deliver`.
    async fn frames(
        &self,
        request: Request<Streaming<FrameRequest>>,
    ) -> Result<Response<Self::FramesStream>, Status> {
        let mut incoming = request.into_inner();
        let worker = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<FramesDone, Status>>(1024);
        let lifecycle = self.inner.lifecycle.clone();
        // A loop: once the worker stops, it reads no more frames; the
        // gateway sends what was not done to the shard's next owner.
        lifecycle.clone().spawn_loop(async move {
            let _open = OpenStream::count(&worker.inner.frame_streams);
            while let Some(frame) = incoming.next().await {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(status) => {
                        tracing::debug!(%status, "frame stream ended");
                        break;
                    }
                };
                let seq = frame.seq;
                let handled = worker.submit_tracked(frame).await;
                let tx = tx.clone();
                lifecycle.spawn(async move {
                    if let Ok(sent) = handled.await {
                        sent.wait().await;
                    }
                    let _ = tx.send(Ok(FramesDone { seqs: vec![seq] })).await;
                });
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn connection(
        &self,
        request: Request<ConnectionEvent>,
    ) -> Result<Response<EventReply>, Status> {
        Worker::connection(self, request.into_inner()).await;
        Ok(Response::new(EventReply {}))
    }

    async fn api(&self, request: Request<ApiCall>) -> Result<Response<ApiReply>, Status> {
        Ok(Response::new(Worker::api(self, request.into_inner()).await))
    }

    /// An event for the dispatcher, from another worker.
    async fn dispatch(
        &self,
        request: Request<DispatchRequest>,
    ) -> Result<Response<DispatchReply>, Status> {
        Ok(Response::new(
            self.dispatch_event(request.into_inner()).await,
        ))
    }
}
