//! Per-shard ordering.
//!
//! Each lane runs one job at a time, in submission order. A send's job only
//! checks and queues its message for group commit, then hands back the rest
//! (ack and fan-out, after the commit), which the lane's tail task runs in
//! order while the lane takes the next job: consecutive sends of a
//! conversation share one transaction. Any other job first waits for the
//! lane's queued tails to finish, so a read or revoke never overtakes the
//! send it refers to.
//!
//! Tails run in a task of their own, not beside the heads in one select: a
//! tail that holds a database connection must keep making progress while a
//! head waits for a connection, or the pool deadlocks.

use futures::future::BoxFuture;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

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
    let (tails, tail_rx) = mpsc::unbounded_channel::<AfterCommit>();
    let tail_task = tokio::spawn(run_tails(tail_rx));
    while let Some(job) = rx.recv().await {
        match job {
            Job::Pipelined(head) => {
                if let Some(tail) = head.await {
                    let _ = tails.send(tail);
                }
            }
            Job::Ordered(job) => {
                let (done, tails_done) = oneshot::channel();
                let _ = tails.send(Box::pin(async move {
                    let _ = done.send(());
                }));
                let _ = tails_done.await;
                job.await;
            }
        }
    }
    drop(tails);
    let _ = tail_task.await;
}

async fn run_tails(mut rx: mpsc::UnboundedReceiver<AfterCommit>) {
    while let Some(tail) = rx.recv().await {
        tail.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_head_waiting_for_what_a_tail_holds_does_not_deadlock() {
        // One permit, as a one-connection pool: the tail takes it across an
        // await, the next head needs it.
        let pool = Arc::new(tokio::sync::Semaphore::new(1));
        let lane = Lane::start();
        let p = pool.clone();
        lane.pipelined(async move {
            let tail: AfterCommit = Box::pin(async move {
                let _conn = p.acquire().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            });
            Some(tail)
        })
        .await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let p = pool.clone();
        lane.pipelined(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let _conn = p.acquire().await.unwrap();
            let _ = tx.send(());
            None
        })
        .await;
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("no deadlock")
            .unwrap();
    }

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
