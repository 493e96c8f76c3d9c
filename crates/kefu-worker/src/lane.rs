//! Per-shard ordering.
//!
//! Each lane runs one job at a time, in submission order. A send's job only
//! checks and queues its message for group commit, then hands back the rest
//! (ack and fan-out, after the commit) to run in order while the lane takes
//! the next job: consecutive sends of a conversation share one transaction.
//! Any other job first waits for the lane's queued sends to finish, so a
//! read or revoke never overtakes the send it refers to.

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use std::future::Future;
use tokio::sync::mpsc;

/// What a send job leaves to do after its commit.
pub type AfterCommit = BoxFuture<'static, ()>;

enum Job {
    Pipelined(BoxFuture<'static, Option<AfterCommit>>),
    Ordered(BoxFuture<'static, ()>),
}

pub struct Lane {
    tx: mpsc::Sender<Job>,
}

/// Jobs a lane holds before submitters wait.
const DEPTH: usize = 4096;

impl Lane {
    pub fn start() -> Lane {
        let (tx, rx) = mpsc::channel(DEPTH);
        tokio::spawn(run(rx));
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

async fn run(mut rx: mpsc::Receiver<Job>) {
    let mut tails: FuturesOrdered<AfterCommit> = FuturesOrdered::new();
    loop {
        tokio::select! {
            biased;
            Some(()) = tails.next(), if !tails.is_empty() => {}
            job = rx.recv() => match job {
                Some(Job::Pipelined(head)) => {
                    if let Some(tail) = head.await {
                        tails.push_back(tail);
                    }
                }
                Some(Job::Ordered(job)) => {
                    while tails.next().await.is_some() {}
                    job.await;
                }
                None => break,
            },
        }
    }
    while tails.next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn an_ordered_job_waits_for_earlier_send_tails() {
        let lane = Lane::start();
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let log = log.clone();
            lane.pipelined(async move {
                let tail: AfterCommit = Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(10 * (3 - i))).await;
                    log.lock().unwrap().push(format!("send{i}"));
                });
                Some(tail)
            })
            .await;
        }
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let l = log.clone();
        lane.ordered(async move {
            l.lock().unwrap().push("read".into());
            let _ = done_tx.send(());
        })
        .await;
        done_rx.await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            vec!["send0", "send1", "send2", "read"]
        );
    }
}
