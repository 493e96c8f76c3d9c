//! The cluster's way from a gateway to the workers.
//!
//! Each frame goes to the owner of its shard on a consistent-hash [`Ring`]
//! of the live workers, over one long-lived `Frames` stream per worker, so a
//! shard's frames arrive in order. Every frame stays in its stream's
//! in-flight table until the worker reports it handled. When a worker
//! leaves the ring (its stream broke, or it left the register to drain), a
//! newer frame of a shard it still holds frames of waits until those are
//! settled, so none overtakes them: a draining worker finishes them; a
//! broken one's are sent again, in order, to the shards' new owners. The
//! database's dedup on `(sender, client_msg_id)` makes a repeated send
//! safe, and the connection passes on only one answer per send.

use crate::{LinkError, WorkerLink};
use kefu_lifecycle::Lifecycle;
use kefu_proto::auth;
use kefu_proto::v1::worker_client::WorkerClient;
use kefu_proto::v1::{ApiCall, ApiReply, ConnectionEvent, FrameRequest, Member};
use kefu_register::outage::Outage;
use kefu_register::{Register, Ring};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

type Client = WorkerClient<InterceptedService<Channel, auth::Attach>>;

/// How often membership is read from the register.
const REFRESH: Duration = Duration::from_millis(500);
/// How long a frame waits for some worker to own its shard.
const NO_WORKER_WAIT: Duration = Duration::from_secs(15);
/// How long a draining worker has to finish the frames it holds before
/// they are sent elsewhere.
const LEFT_WAIT: Duration = Duration::from_secs(10);
/// Largest gRPC message: the largest answer is a page of `/api/offline`,
/// up to 500 messages of up to `--max-frame-bytes` each. Files go in
/// pieces of [`kefu_protocol::FILE_CHUNK_BYTES`].
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

struct Stream {
    member: Member,
    client: Client,
    /// Bounded: when the worker falls this far behind, the connections
    /// submitting to it wait (as they wait for a full lane in `serve`).
    tx: mpsc::Sender<FrameRequest>,
    in_flight: Mutex<BTreeMap<u64, FrameRequest>>,
    next_seq: AtomicU64,
    /// Told when frames leave `in_flight` or the stream breaks.
    settled: tokio::sync::Notify,
    /// Set once a departed worker's frames are settled: the stream's
    /// request side ends, which tells the worker this gateway is done.
    closing: tokio::sync::watch::Sender<bool>,
    broken: AtomicBool,
    /// The worker left the register (it drains): its stream ending is
    /// orderly, not a failure to warn about.
    left: AtomicBool,
}

impl Stream {
    fn new(member: Member, client: Client, tx: mpsc::Sender<FrameRequest>) -> Stream {
        Stream {
            member,
            client,
            tx,
            in_flight: Mutex::new(BTreeMap::new()),
            next_seq: AtomicU64::new(1),
            settled: tokio::sync::Notify::new(),
            closing: tokio::sync::watch::Sender::new(false),
            broken: AtomicBool::new(false),
            left: AtomicBool::new(false),
        }
    }

    /// The worker left or its stream broke: frames go to the next owner.
    fn out_of_ring(&self) -> bool {
        self.left.load(Ordering::Relaxed) || self.broken.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct State {
    ring: Ring,
    streams: HashMap<String, Arc<Stream>>,
    /// Shards with frames on a departed worker's stream not yet settled,
    /// and how many departed streams hold some: newer frames of these
    /// shards wait.
    replaying: HashMap<u32, usize>,
}

/// Frames a gateway queues for one worker unless told otherwise.
pub const WORKER_QUEUE: usize = 4096;

/// Workers by consistent hashing; see the module docs.
#[derive(Clone)]
pub struct RingLink {
    register: Arc<dyn Register>,
    secret: Option<String>,
    /// Frames queued per worker stream before submitters wait.
    queue: usize,
    state: Arc<RwLock<State>>,
    /// Tells waiting submitters that the ring changed.
    changed: Arc<tokio::sync::Notify>,
    /// One refresh at a time, so a worker never gets two streams.
    refreshing: Arc<tokio::sync::Mutex<()>>,
    /// The register's failures, logged once and not every refresh.
    register_outage: Arc<Outage>,
    /// The gateway's: the refresh and each worker stream are its loops,
    /// a hand-over its job.
    lifecycle: Lifecycle,
}

impl RingLink {
    /// Starts following the register's worker membership; at most `queue`
    /// frames wait for one worker before submitters wait too.
    pub fn start(
        register: Arc<dyn Register>,
        secret: Option<String>,
        queue: usize,
        lifecycle: Lifecycle,
    ) -> RingLink {
        let link = RingLink {
            register,
            secret,
            queue: queue.max(1),
            state: Arc::default(),
            changed: Arc::default(),
            refreshing: Arc::default(),
            register_outage: Arc::new(Outage::new("the register (reading workers)")),
            lifecycle,
        };
        let follower = link.clone();
        link.lifecycle.spawn_loop(async move {
            loop {
                follower.refresh().await;
                tokio::time::sleep(REFRESH).await;
            }
        });
        link
    }

    /// Rebuilds the ring from the register: new workers get a stream,
    /// departed or broken ones leave. A worker joins the ring only once a
    /// connection to it succeeds, so a worker that died keeps no shards
    /// while its lease runs out.
    pub async fn refresh(&self) {
        let _one_at_a_time = self.refreshing.lock().await;
        let members = match self.register.members("worker").await {
            Ok(m) => {
                self.register_outage.recovered();
                m
            }
            Err(e) => {
                self.register_outage
                    .failed(&format!("{e}; keeping the ring"));
                return;
            }
        };
        let mut orphans: Vec<(Arc<Stream>, BTreeSet<u32>)> = Vec::new();
        let wanted: Vec<Member> = {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            let live: HashMap<&str, &Member> = members.iter().map(|m| (m.id.as_str(), m)).collect();
            let gone: Vec<String> = state
                .streams
                .iter()
                .filter(|(id, s)| {
                    s.broken.load(Ordering::Relaxed)
                        || live
                            .get(id.as_str())
                            .is_none_or(|m| m.addr != s.member.addr)
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                if let Some(stream) = state.streams.remove(&id) {
                    if !stream.broken.load(Ordering::Relaxed) {
                        stream.left.store(true, Ordering::Relaxed);
                        tracing::info!(worker = %id, "worker left; moving its shards");
                    }
                    let shards: BTreeSet<u32> = stream
                        .in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .values()
                        .map(|f| f.shard)
                        .collect();
                    // Held before the new ring is seen: from here on a newer
                    // frame of these shards waits until the old ones settle.
                    for shard in &shards {
                        *state.replaying.entry(*shard).or_default() += 1;
                    }
                    // A worker that left waits for its stream to close.
                    if !shards.is_empty() || stream.left.load(Ordering::Relaxed) {
                        orphans.push((stream, shards));
                    }
                }
            }
            let ring = Ring::new(state.streams.keys());
            state.ring = ring;
            members
                .iter()
                .filter(|m| !state.streams.contains_key(&m.id))
                .cloned()
                .collect()
        };
        let mut opened = Vec::new();
        for member in &wanted {
            match self.open(member).await {
                Ok(stream) => opened.push(stream),
                Err(e) => tracing::debug!(worker = %member.id, error = %e, "worker not reachable"),
            }
        }
        if !opened.is_empty() {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            for stream in opened {
                state.streams.insert(stream.member.id.clone(), stream);
            }
            let ring = Ring::new(state.streams.keys());
            state.ring = ring;
        }
        self.changed.notify_waiters();
        if !orphans.is_empty() {
            // Not under the refresh lock: resubmitting may wait for a worker
            // to join, which takes a refresh.
            let link = self.clone();
            self.lifecycle.spawn(async move {
                for (stream, shards) in orphans {
                    link.hand_over(&stream, shards).await;
                }
            });
        }
    }

    async fn open(&self, member: &Member) -> Result<Arc<Stream>, String> {
        let url = kefu_proto::grpc_url(&member.addr);
        let channel = Endpoint::from_shared(url)
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let client =
            WorkerClient::with_interceptor(channel, auth::Attach::new(self.secret.as_deref()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE);
        let (tx, rx) = mpsc::channel(self.queue);
        let stream = Arc::new(Stream::new(member.clone(), client.clone(), tx));
        let run = run_stream(self.clone(), stream.clone(), client, rx);
        self.lifecycle.spawn_loop(run);
        Ok(stream)
    }

    /// The stream of the worker owning `shard`, waiting a while for one
    /// (and, for a new frame or call, until the shard's older frames are
    /// resent).
    async fn owner(&self, shard: u32, new_frame: bool) -> Result<Arc<Stream>, LinkError> {
        let deadline = tokio::time::Instant::now() + NO_WORKER_WAIT;
        loop {
            let changed = self.changed.notified();
            {
                let state = self.state.read().unwrap_or_else(|p| p.into_inner());
                let held = new_frame && state.replaying.contains_key(&shard);
                let owner = state.ring.owner(shard).filter(|_| !held);
                if let Some(stream) = owner.and_then(|id| state.streams.get(id)) {
                    if !stream.broken.load(Ordering::Relaxed) {
                        return Ok(stream.clone());
                    }
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(LinkError("no live worker".into()));
            }
        }
    }

    /// A stream broke: its worker leaves the ring and its frames go elsewhere.
    fn broke(&self, stream: &Arc<Stream>) {
        let was_broken = stream.broken.swap(true, Ordering::Relaxed);
        stream.settled.notify_waiters();
        if was_broken || stream.left.load(Ordering::Relaxed) {
            return;
        }
        tracing::warn!(worker = %stream.member.id, "worker stream broke; moving its shards");
        let link = self.clone();
        self.lifecycle.spawn(async move { link.refresh().await });
    }

    /// Settles a departed worker's in-flight frames, then lets newer
    /// frames of `shards` go: a worker that left to drain gets a while to
    /// finish them; what it has not finished, or a broken stream held, is
    /// sent again in order.
    async fn hand_over(&self, stream: &Stream, shards: BTreeSet<u32>) {
        let deadline = tokio::time::Instant::now() + LEFT_WAIT;
        loop {
            let settled = stream.settled.notified();
            let empty = stream
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty();
            if empty || stream.broken.load(Ordering::Relaxed) {
                break;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                break;
            }
        }
        let frames =
            std::mem::take(&mut *stream.in_flight.lock().unwrap_or_else(|p| p.into_inner()));
        if !frames.is_empty() {
            tracing::warn!(worker = %stream.member.id, frames = frames.len(), "retrying in-flight frames");
        }
        for frame in frames.into_values() {
            if let Err(e) = self.place(frame, false).await {
                tracing::error!(error = %e, "in-flight frame lost its worker");
            }
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        for shard in shards {
            if let Some(holders) = state.replaying.get_mut(&shard) {
                *holders -= 1;
                if *holders == 0 {
                    state.replaying.remove(&shard);
                }
            }
        }
        drop(state);
        self.changed.notify_waiters();
        stream.closing.send_replace(true);
    }

    /// Puts a frame on the stream of its shard's owner, in the order of
    /// calls for that shard.
    async fn place(&self, mut request: FrameRequest, new_frame: bool) -> Result<(), LinkError> {
        loop {
            let stream = self.owner(request.shard, new_frame).await?;
            // A place in the queue first, then the sequence number: frames
            // get numbers in the order they enter the queue.
            let Ok(permit) = stream.tx.reserve().await else {
                self.broke(&stream);
                continue;
            };
            // The worker may have left or broken while the frame waited
            // for room: then it goes to the next owner, not on this queue
            // as well (the ring changed with the flag).
            if stream.out_of_ring() {
                continue;
            }
            let seq = stream.next_seq.fetch_add(1, Ordering::Relaxed);
            request.seq = seq;
            // Kept until the worker answers, to be sent again if it fails.
            stream
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(seq, request.clone());
            permit.send(request);
            let sent = !stream.tx.is_closed();
            if sent && !stream.out_of_ring() {
                return Ok(());
            }
            // The stream died or left under us: take the frame back and go
            // again, unless its in-flight frames were taken already, this
            // one with them, to be sent again in order.
            let taken_back = stream
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&seq);
            if !sent || stream.broken.load(Ordering::Relaxed) {
                self.broke(&stream);
            }
            match taken_back {
                Some(back) => request = back,
                None => return Ok(()),
            }
        }
    }

    /// Runs a unary call on the shard's owner, failing over once. Like a
    /// new frame it waits until the shard's frames held by a departed
    /// worker are settled, so that an `end` or a history read does not
    /// overtake a message sent before it.
    async fn unary<T, F, Fut>(&self, shard: u32, call: F) -> Result<T, LinkError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut last = String::new();
        for _ in 0..3 {
            let stream = self.owner(shard, true).await?;
            match call(stream.client.clone()).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(status)
                    if status.code() == tonic::Code::Unavailable
                        || status.code() == tonic::Code::Unknown =>
                {
                    last = status.message().to_owned();
                    self.broke(&stream);
                }
                Err(status) => return Err(LinkError(status.message().to_owned())),
            }
        }
        Err(LinkError(last))
    }
}

async fn run_stream(
    link: RingLink,
    stream: Arc<Stream>,
    mut client: Client,
    rx: mpsc::Receiver<FrameRequest>,
) {
    let mut closing = stream.closing.subscribe();
    let outgoing = futures::StreamExt::take_until(
        tokio_stream::wrappers::ReceiverStream::new(rx),
        async move {
            let _ = closing.wait_for(|closed| *closed).await;
        },
    );
    match client.frames(outgoing).await {
        Ok(response) => {
            let mut done = response.into_inner();
            while let Some(item) = done.next().await {
                match item {
                    Ok(batch) => {
                        let mut in_flight =
                            stream.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                        for seq in batch.seqs {
                            in_flight.remove(&seq);
                        }
                        drop(in_flight);
                        stream.settled.notify_waiters();
                    }
                    Err(status) if stream.left.load(Ordering::Relaxed) => {
                        tracing::debug!(worker = %stream.member.id, %status, "stream of a departed worker closed");
                        break;
                    }
                    Err(status) => {
                        tracing::warn!(worker = %stream.member.id, %status, "worker stream failed");
                        break;
                    }
                }
            }
        }
        Err(status) => {
            tracing::warn!(worker = %stream.member.id, %status, "cannot open worker stream")
        }
    }
    link.broke(&stream);
}

#[async_trait::async_trait]
impl WorkerLink for RingLink {
    fn ready(&self) -> bool {
        self.state
            .read()
            .map(|state| !state.ring.is_empty())
            .unwrap_or(false)
    }

    async fn submit(&self, request: FrameRequest) -> Result<(), LinkError> {
        self.place(request, true).await
    }

    async fn connection(&self, event: ConnectionEvent) -> Result<(), LinkError> {
        let shard = event.shard;
        self.unary(shard, |mut c| {
            let event = event.clone();
            async move { c.connection(event).await }
        })
        .await
        .map(|_| ())
    }

    async fn api(&self, request: ApiCall) -> Result<ApiReply, LinkError> {
        let shard = request.shard;
        self.unary(shard, |mut c| {
            let request = request.clone();
            async move { c.api(request).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests;
