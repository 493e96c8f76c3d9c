//! One model for stopping a role (gateway, worker, register).
//!
//! A role owns a [`Lifecycle`]: a cancellation token and a task tracker
//! (`tokio_util`). Every task it starts goes through it, as one of two
//! kinds:
//!
//! - a **loop** ([`Lifecycle::spawn_loop`]) runs until the role stops and
//!   is dropped at its next await once the role is cancelled: lease
//!   renewals, sweeps, the ring's refresh, a lane's runner;
//! - a **job** ([`Lifecycle::spawn`]) is work under way that must finish (a
//!   frame's answer on its way, a resubmission): it is never cancelled.
//!
//! Stopping is [`Lifecycle::stop`]: cancel, then wait for the tracker,
//! within the drain timeout. What a role must finish before that (its
//! connections closed, its lanes empty) it waits for on events of its own;
//! nothing polls and no sleep stands in for a hand-off.

#![forbid(unsafe_code)]

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

/// A role's background tasks and the signal that stops them; cheap to
/// clone, every clone the same role.
#[derive(Clone, Default)]
pub struct Lifecycle {
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Lifecycle {
    pub fn new() -> Lifecycle {
        Lifecycle::default()
    }

    /// Starts a loop that runs until the role stops.
    pub fn spawn_loop<F>(&self, run: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = run => {}
            }
        })
    }

    /// Starts a job that must finish; [`Lifecycle::stop`] waits for it.
    pub fn spawn<F>(&self, job: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(job)
    }

    /// A part of the role that can be stopped on its own ([`Lifecycle::cancel`],
    /// e.g. a lease given up before the drain) and stops with the role; its
    /// tasks count as the role's.
    pub fn child(&self) -> Lifecycle {
        Lifecycle {
            cancel: self.cancel.child_token(),
            tracker: self.tracker.clone(),
        }
    }

    /// Ends this part's loops (all of them, for the role itself) without
    /// waiting.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Resolves once the role is stopping.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    pub fn is_stopping(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Cancels the loops, then waits, at most `timeout`, until every task
    /// has ended; true if all did. Tasks started afterwards are still
    /// tracked, and a loop started afterwards ends at once.
    pub async fn stop(&self, timeout: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        let ended = tokio::time::timeout(timeout, self.tracker.wait()).await;
        self.tracker.reopen();
        ended.is_ok()
    }

    /// Tasks still running (loops and jobs).
    pub fn running(&self) -> usize {
        self.tracker.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn stop_ends_the_loops_and_waits_for_the_jobs() {
        let role = Lifecycle::new();
        role.spawn_loop(std::future::pending());
        let finished = Arc::new(AtomicBool::new(false));
        role.spawn({
            let finished = finished.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                finished.store(true, Ordering::SeqCst);
            }
        });
        assert_eq!(role.running(), 2);
        assert!(role.stop(Duration::from_secs(1)).await);
        assert!(finished.load(Ordering::SeqCst), "the job ran to its end");
        assert!(role.is_stopping());
        assert_eq!(role.running(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_outlives_the_timeout_makes_stop_say_so() {
        let role = Lifecycle::new();
        role.spawn(std::future::pending::<()>());
        assert!(!role.stop(Duration::from_millis(100)).await);
        assert_eq!(role.running(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_part_stops_alone_and_with_the_role() {
        let role = Lifecycle::new();
        let (lease, other) = (role.child(), role.child());
        let renewals = lease.spawn_loop(std::future::pending());
        let sweeps = other.spawn_loop(std::future::pending());
        lease.cancel();
        renewals.await.expect("the lease's loop ended");
        assert!(!role.is_stopping());
        assert_eq!(role.running(), 1, "the other part still runs");
        assert!(role.stop(Duration::from_millis(10)).await);
        assert!(sweeps.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_started_while_stopping_ends_at_once() {
        let role = Lifecycle::new();
        assert!(role.stop(Duration::from_millis(10)).await);
        let late = role.spawn_loop(std::future::pending());
        tokio::time::timeout(Duration::from_millis(10), late)
            .await
            .expect("ended")
            .expect("not panicked");
    }
}
