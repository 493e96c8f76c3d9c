use super::*;
use kefu_proto::v1::ClientCommand;
use kefu_register::memory::MemoryRegister;

fn member(id: &str) -> Member {
    Member {
        id: id.into(),
        role: "worker".into(),
        addr: format!("127.0.0.1:1/{id}"),
    }
}

/// A stream to `id` that never connects; what is put on it is read
/// from the returned receiver.
fn stream(id: &str, queue: usize) -> (Arc<Stream>, mpsc::Receiver<FrameRequest>) {
    let channel = Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
    let client = WorkerClient::with_interceptor(channel, auth::Attach::new(None));
    let (tx, rx) = mpsc::channel(queue);
    (Arc::new(Stream::new(member(id), client, tx)), rx)
}

/// A frame of `shard` told apart by `label` (a typing notice to it).
fn frame(shard: u32, label: &str) -> FrameRequest {
    let typing = kefu_protocol::Command::Typing {
        task_id: None,
        to: Some(label.into()),
    };
    FrameRequest {
        shard,
        command: ClientCommand::from_command(typing),
        ..FrameRequest::default()
    }
}

fn label(frame: &FrameRequest) -> String {
    match frame.command.clone().and_then(|c| c.into_command()) {
        Some(kefu_protocol::Command::Typing { to: Some(to), .. }) => to,
        other => panic!("not a test frame: {other:?}"),
    }
}

/// A link following `register`, not started: the test puts streams in.
fn link(register: Arc<MemoryRegister>) -> RingLink {
    RingLink {
        register,
        secret: None,
        queue: WORKER_QUEUE,
        state: Arc::default(),
        changed: Arc::default(),
        refreshing: Arc::default(),
        register_outage: Arc::new(Outage::new("test")),
        lifecycle: Lifecycle::new(),
    }
}

/// Workers `a` and `b` on a link, `b` alone in the register (so a
/// refresh drops `a`), and a shard `a` owns while both are up.
struct Pair {
    link: RingLink,
    a: Arc<Stream>,
    /// Kept open: with it closed, `a` would look broken.
    a_rx: mpsc::Receiver<FrameRequest>,
    b_rx: mpsc::Receiver<FrameRequest>,
    shard: u32,
}

async fn two_workers() -> Pair {
    two_workers_queueing(WORKER_QUEUE).await
}

/// [`two_workers`] with room for `a_queue` frames on `a`'s queue.
async fn two_workers_queueing(a_queue: usize) -> Pair {
    let register = Arc::new(MemoryRegister::new());
    register
        .keep_alive(member("b"), Duration::from_secs(60))
        .await
        .expect("b joins");
    let link = link(register);
    let (a, a_rx) = stream("a", a_queue);
    let (b, b_rx) = stream("b", WORKER_QUEUE);
    let shard = (0..)
        .find(|s| Ring::new(["a", "b"]).owner(*s) == Some("a"))
        .expect("a owns some shard");
    {
        let mut state = link.state.write().unwrap();
        state.streams.insert("a".into(), a);
        state.streams.insert("b".into(), b);
        state.ring = Ring::new(["a", "b"]);
    }
    let a = link.state.read().unwrap().streams["a"].clone();
    Pair {
        link,
        a,
        a_rx,
        b_rx,
        shard,
    }
}

#[tokio::test]
async fn a_broken_worker_s_frames_go_again_before_newer_frames_of_their_shard() {
    let mut pair = two_workers().await;
    let (link, a, shard) = (pair.link.clone(), pair.a.clone(), pair.shard);
    for text in ["old-1", "old-2", "old-3"] {
        link.submit(frame(shard, text)).await.expect("placed on a");
    }
    assert_eq!(a.in_flight.lock().unwrap().len(), 3);

    // a's stream breaks: the refresh moves its shards to b and sends
    // its frames again; a newer frame of the shard comes at once.
    a.broken.store(true, Ordering::Relaxed);
    link.refresh().await;
    link.submit(frame(shard, "new-4"))
        .await
        .expect("placed on b");

    let mut order = Vec::new();
    while order.len() < 4 {
        let f = tokio::time::timeout(Duration::from_secs(5), pair.b_rx.recv())
            .await
            .expect("four frames reach b")
            .expect("b's stream open");
        order.push(label(&f));
    }
    assert_eq!(order, ["old-1", "old-2", "old-3", "new-4"]);
    assert!(link.state.read().unwrap().replaying.is_empty());
}

#[tokio::test]
async fn a_draining_worker_finishes_its_frames_before_newer_ones_go_elsewhere() {
    let mut pair = two_workers().await;
    let (link, a, shard) = (pair.link.clone(), pair.a.clone(), pair.shard);
    for text in ["old-1", "old-2"] {
        link.submit(frame(shard, text)).await.expect("placed on a");
    }

    // a left the register (it drains); its stream stays up.
    link.refresh().await;
    let newer = tokio::spawn({
        let link = link.clone();
        async move { link.submit(frame(shard, "new-3")).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!newer.is_finished(), "the newer frame waits for a's two");
    // a reports both handled.
    a.in_flight.lock().unwrap().clear();
    a.settled.notify_waiters();
    newer.await.expect("joined").expect("then placed on b");
    assert!(
        *a.closing.borrow(),
        "a's stream closes once its frames settled, telling a this gateway is done"
    );

    let first = tokio::time::timeout(Duration::from_secs(5), pair.b_rx.recv())
        .await
        .expect("a frame reaches b")
        .expect("b's stream open");
    assert_eq!(label(&first), "new-3", "a's frames were not sent again");
    assert!(link.state.read().unwrap().replaying.is_empty());
}

/// A frame waiting for room on a worker's queue when the worker leaves
/// goes to the next owner once the worker's older frames settle, and not
/// on the departed worker's queue as well.
#[tokio::test]
async fn a_call_of_a_shard_waits_for_its_frames_on_a_departed_worker() {
    let pair = two_workers().await;
    let (link, a, shard) = (pair.link.clone(), pair.a.clone(), pair.shard);
    link.submit(frame(shard, "old-1"))
        .await
        .expect("placed on a");

    // a left the register (it drains) with the frame unanswered.
    link.refresh().await;
    let call = tokio::spawn({
        let link = link.clone();
        async move {
            link.unary(shard, |client| async move {
                let _ = client;
                Ok(tonic::Response::new(()))
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !call.is_finished(),
        "an end or a history read waits for old-1"
    );
    a.in_flight.lock().unwrap().clear();
    a.settled.notify_waiters();
    call.await.expect("joined").expect("then it runs, on b");
}

#[tokio::test]
async fn a_frame_waiting_for_a_worker_that_leaves_goes_to_the_next_owner_only() {
    let mut pair = two_workers_queueing(1).await;
    let (link, a, shard) = (pair.link.clone(), pair.a.clone(), pair.shard);
    link.submit(frame(shard, "old-1"))
        .await
        .expect("placed on a");
    let newer = tokio::spawn({
        let link = link.clone();
        async move { link.submit(frame(shard, "new-2")).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!newer.is_finished(), "new-2 waits for room on a's queue");

    // a leaves the register (it drains), then takes old-1: new-2 gets its
    // room on a, sees a gone, and waits for old-1 to settle.
    link.refresh().await;
    assert_eq!(label(&pair.a_rx.recv().await.expect("a's queue")), "old-1");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        pair.a_rx.try_recv().is_err(),
        "new-2 was not put on a's queue"
    );
    let in_flight: Vec<String> = a.in_flight.lock().unwrap().values().map(label).collect();
    assert_eq!(in_flight, ["old-1"]);
    assert!(!newer.is_finished(), "new-2 waits for a's old frames");

    // a reports old-1 handled: new-2 goes to b.
    a.in_flight.lock().unwrap().clear();
    a.settled.notify_waiters();
    newer.await.expect("joined").expect("placed on b");
    let first = tokio::time::timeout(Duration::from_secs(5), pair.b_rx.recv())
        .await
        .expect("a frame reaches b")
        .expect("b's stream open");
    assert_eq!(label(&first), "new-2");
    assert!(link.state.read().unwrap().replaying.is_empty());
}

/// The ring's refresh is a loop of the gateway's lifecycle: stopping
/// the lifecycle ends it, and then nothing holds the link.
#[tokio::test]
async fn stopping_its_lifecycle_ends_the_rings_refresh() {
    let role = Lifecycle::new();
    let link = RingLink::start(Arc::new(MemoryRegister::new()), None, 4, role.clone());
    let state = Arc::downgrade(&link.state);
    drop(link);
    assert_eq!(role.running(), 1);
    assert!(role.stop(Duration::from_secs(5)).await);
    assert!(state.upgrade().is_none(), "nothing holds the ring");
}

#[tokio::test]
async fn a_full_worker_queue_makes_the_submitter_wait_until_the_worker_takes_one() {
    let link = link(Arc::new(MemoryRegister::new()));
    let (w, mut w_rx) = stream("w", 2);
    {
        let mut state = link.state.write().unwrap();
        state.streams.insert("w".into(), w.clone());
        state.ring = Ring::new(["w"]);
    }
    for text in ["1", "2"] {
        link.submit(frame(7, text)).await.expect("queued");
    }
    let third = tokio::spawn({
        let link = link.clone();
        async move { link.submit(frame(7, "3")).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!third.is_finished(), "a third frame waits for room");
    assert_eq!(
        w.in_flight.lock().unwrap().len(),
        2,
        "and is not in flight yet"
    );
    let first = w_rx.recv().await.expect("the worker takes one");
    assert_eq!(label(&first), "1");
    third.await.expect("joined").expect("then it is queued");
    let seqs: Vec<u64> = w.in_flight.lock().unwrap().keys().copied().collect();
    assert_eq!(seqs, [1, 2, 3]);
}
