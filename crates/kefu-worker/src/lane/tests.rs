use super::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn a_head_waiting_for_what_a_tail_holds_does_not_deadlock() {
    // One permit, as a one-connection pool: the tail takes it across an
    // await, the next head needs it.
    let pool = Arc::new(tokio::sync::Semaphore::new(1));
    let lane = Lane::start(&Lifecycle::new(), LANE_QUEUE);
    let p = pool.clone();
    lane.pipelined(async move {
        let tail: AfterCommit = Box::pin(async move {
            Finish::new(async move {
                let _conn = p.acquire().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            })
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
async fn tails_wait_together_and_finish_in_order() {
    let lane = Lane::start(&Lifecycle::new(), LANE_QUEUE);
    let log = Arc::new(Mutex::new(Vec::new()));
    let started = tokio::time::Instant::now();
    for i in 0..3u64 {
        let log = log.clone();
        lane.pipelined(async move {
            let tail: AfterCommit = Box::pin(async move {
                // The last tail's wait is the shortest.
                tokio::time::sleep(Duration::from_millis(100 - 10 * i)).await;
                Finish::new(async move {
                    log.lock().unwrap().push((i, started.elapsed()));
                })
            });
            Some(tail)
        })
        .await;
    }
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    lane.ordered(async move {
        let _ = done_tx.send(());
    })
    .await;
    done_rx.await.unwrap();
    let log = log.lock().unwrap();
    let order: Vec<u64> = log.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, vec![0, 1, 2]);
    // One after the other, the waits would take 270 ms.
    assert!(log.iter().all(|(_, at)| *at < Duration::from_millis(110)));
}

#[tokio::test(start_paused = true)]
async fn an_ordered_job_waits_for_earlier_send_tails() {
    let lane = Lane::start(&Lifecycle::new(), LANE_QUEUE);
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..3 {
        let log = log.clone();
        lane.pipelined(async move {
            let tail: AfterCommit = Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(10 * (3 - i))).await;
                Finish::new(async move {
                    log.lock().unwrap().push(format!("send{i}"));
                })
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

#[tokio::test(start_paused = true)]
async fn a_full_lane_makes_the_submitter_wait_until_the_lane_takes_a_job() {
    let lane = Arc::new(Lane::start(&Lifecycle::new(), 2));
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    let ran = Arc::new(Mutex::new(Vec::new()));
    // The runner takes the first job and stays in it; two more fill the
    // queue.
    lane.ordered(async move {
        let _ = held.await;
    })
    .await;
    for i in 0..2 {
        let ran = ran.clone();
        lane.ordered(async move { ran.lock().unwrap().push(i) })
            .await;
    }
    let third = tokio::spawn({
        let (lane, ran) = (lane.clone(), ran.clone());
        async move {
            lane.ordered(async move { ran.lock().unwrap().push(2) })
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!third.is_finished(), "a job past the queue's two waits");
    assert!(ran.lock().unwrap().is_empty());

    release.send(()).unwrap();
    third.await.expect("then it is queued");
    let (done, all_ran) = tokio::sync::oneshot::channel();
    lane.ordered(async move {
        let _ = done.send(());
    })
    .await;
    all_ran.await.expect("the lane runs on");
    assert_eq!(*ran.lock().unwrap(), [0, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn tails_that_cannot_finish_stop_the_lane_taking_jobs() {
    let lane = Arc::new(Lane::start(&Lifecycle::new(), 1));
    let (release, held) = tokio::sync::watch::channel(false);
    let finished = Arc::new(Mutex::new(0usize));
    let stalled_send = |lane: Arc<Lane>| {
        let (mut held, finished) = (held.clone(), finished.clone());
        async move {
            lane.pipelined(async move {
                let tail: AfterCommit = Box::pin(async move {
                    let _ = held.wait_for(|released| *released).await;
                    Finish::new(async move { *finished.lock().unwrap() += 1 })
                });
                Some(tail)
            })
            .await
        }
    };
    // Taken in: the tails started, one more queued behind them, one the
    // runner holds while it waits to queue its tail, one in the job queue.
    let taken = OVERLAPPING_TAILS + 3;
    for _ in 0..taken {
        stalled_send(lane.clone()).await;
    }
    let next = tokio::spawn(stalled_send(lane.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!next.is_finished(), "a job past the held tails waits");

    release.send(true).unwrap();
    next.await.expect("then it is taken");
    let (done, all_ran) = tokio::sync::oneshot::channel();
    lane.ordered(async move {
        let _ = done.send(());
    })
    .await;
    all_ran.await.expect("the lane runs on");
    assert_eq!(*finished.lock().unwrap(), taken + 1);
}
