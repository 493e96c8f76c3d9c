//! Per-shard ordering.
//!
//! Each lane runs one job at a time, in submission order. A send's job only
//! checks and queues its message for group commit, then hands back the rest
//! (ack and fan-out, after the commit), which the lane's tail task runs in
//! order while the lane takes the next job: consecutive sends of a
//! conversation share one transaction. The tail task waits for several
//! tails' commits and recipient lookups at once; only their acks and
//! fan-outs take turns. Any other job first waits for the
//! lane's queued tails to finish, so a read or revoke never overtakes the
//! send it refers to.
//!
//! Tails run in a task of their own, not beside the heads in one select: a
//! tail that holds a database connection must keep making progress while a
//! head waits for a connection, or the pool deadlocks.

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use kefu_lifecycle::Lifecycle;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// What a send job leaves to do after its commit, in two steps: the first
/// (waiting for the commit, looking recipients up) may overlap the lane's
/// other tails; the [`Finish`] it yields runs in the lane's order.
pub type AfterCommit = BoxFuture<'static, Finish>;

/// A tail's ordered step: handing its pushes over. A send's own step
/// yields what it pushed (`Finish<Pushed>`); the lane runs `Finish<()>`.
pub struct Finish<T = ()>(BoxFuture<'static, T>);

impl<T> Finish<T> {
    pub fn new(step: impl Future<Output = T> + Send + 'static) -> Finish<T> {
        Finish(Box::pin(step))
    }

    pub async fn run(self) -> T {
        self.0.await
    }
}

/// Tails of one lane whose first steps run at once: a conversation's sends
/// look their recipients up together, in one register round trip, instead
/// of one after the other.
const OVERLAPPING_TAILS: usize = 64;

enum Job {
    Pipelined(BoxFuture<'static, Option<AfterCommit>>),
    Ordered(BoxFuture<'static, ()>),
}

pub struct Lane {
    tx: mpsc::Sender<Job>,
}

/// Jobs a lane holds before submitters wait, by default
/// (`--lane-queue`).
pub const LANE_QUEUE: usize = 4096;

impl Lane {
    /// Starts the lane's runner as a loop of the worker's `lifecycle`;
    /// past `depth` queued jobs (at least one) a submitter waits. Tails
    /// are held to the same depth past the [`OVERLAPPING_TAILS`] started:
    /// when their commits or lookups stall, the lane stops taking jobs
    /// and its submitters wait, instead of tails piling up.
    pub fn start(lifecycle: &Lifecycle, depth: usize) -> Lane {
        let depth = depth.max(1);
        let (tx, rx) = mpsc::channel(depth);
        lifecycle.spawn_loop(run(rx, depth, lifecycle.clone()));
        Lane { tx }
    }

    /// A job whose tail may overlap later jobs (sends).
    pub async fn pipelined<F>(&self, job: F)
    where
        F: Future<Output = Option<AfterCommit>> + Send + 'static,
    {
        let _ = self.tx.send(Job::Pipelined(Box::pin(job))).await;
    }

    /// A job that runs alone, after everything before it finished.
    pub async fn ordered<F>(&self, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let _ = self.tx.send(Job::Ordered(Box::pin(job))).await;
    }
}

async fn run(mut rx: mpsc::Receiver<Job>, depth: usize, lifecycle: Lifecycle) {
    let (tails, tail_rx) = mpsc::channel::<AfterCommit>(depth);
    let tail_task = lifecycle.spawn_loop(run_tails(tail_rx));
    while let Some(job) = rx.recv().await {
        match job {
            Job::Pipelined(head) => {
                if let Some(tail) = head.await {
                    let _ = tails.send(tail).await;
                }
            }
            Job::Ordered(job) => {
                let (done, tails_done) = oneshot::channel();
                let marker: AfterCommit = Box::pin(async move {
                    Finish::new(async move {
                        let _ = done.send(());
                    })
                });
                let _ = tails.send(marker).await;
                let _ = tails_done.await;
                job.await;
            }
        }
    }
    drop(tails);
    let _ = tail_task.await;
}

/// Runs the first steps of up to [`OVERLAPPING_TAILS`] tails at once and
/// their finishes one at a time, in the order the tails came.
async fn run_tails(mut rx: mpsc::Receiver<AfterCommit>) {
    let mut started: FuturesOrdered<AfterCommit> = FuturesOrdered::new();
    let mut open = true;
    while open || !started.is_empty() {
        tokio::select! {
            biased;
            Some(finish) = started.next(), if !started.is_empty() => finish.run().await,
            tail = rx.recv(), if open && started.len() < OVERLAPPING_TAILS => match tail {
                Some(tail) => started.push_back(tail),
                None => open = false,
            },
        }
    }
}

#[cfg(test)]
mod tests;
