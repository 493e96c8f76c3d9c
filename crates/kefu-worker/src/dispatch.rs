//! The dispatcher: the one place that picks an agent for a task.
//!
//! It runs on one worker, the owner of [`DISPATCH_SHARD`] on the ring of
//! live workers (under `kefu serve`, the only worker). Every other worker
//! sends it the events that move the queue over the `Dispatch` RPC: a
//! customer's first message (open), a transfer's slot (reserve), a task
//! leaving its agent or the queue (released), a task put back (queued), an
//! agent connecting, leaving or changing status. The owner keeps agents'
//! load, status and presence and the queue as an [`index::Index`], so an
//! event costs O(log n), and it alone reserves slots, so picks are atomic
//! across workers. The database stays the truth: the owner reads the index
//! from it when it takes over, and the writes check capacity again (a
//! locked agent row), so two owners during a hand-over cannot push an agent
//! past capacity.
//!
//! A worker that cannot reach the owner (it died and the ring has not
//! moved yet) opens the task waiting; the next owner reads it back.

pub(crate) mod index;
mod owner;

use crate::Inner;
use kefu_proto::auth;
use kefu_proto::v1::dispatch_request::Event as Wire;
use kefu_proto::v1::worker_client::WorkerClient;
use kefu_proto::v1::{
    DispatchReply, DispatchRequest, Member, OpenTask, OpenedTask, TaskQueued, TaskReleased,
};
use kefu_register::Ring;
use kefu_store::entity::task;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub(crate) use owner::Owner;

/// The shard whose owner on the ring is the dispatcher.
pub const DISPATCH_SHARD: u32 = 0;
/// How often the worker membership is read, to follow the dispatcher.
const FOLLOW: Duration = Duration::from_millis(500);
/// How long an event tries to reach a dispatcher before giving up.
const REACH: Duration = Duration::from_secs(3);

type Client = WorkerClient<InterceptedService<Channel, auth::Attach>>;

/// An event for the dispatcher.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Open {
        customer: String,
        name: String,
        shard: u32,
        client_ip: Option<String>,
        /// Sent again after a call whose answer was lost.
        again: bool,
    },
    Reserve {
        agent: String,
    },
    Released {
        task_id: i64,
        agent: Option<String>,
    },
    Queued {
        task_id: i64,
        reason: Option<String>,
        /// The agent it was taken from.
        from: Option<String>,
    },
    AgentChanged {
        agent: String,
    },
}

/// The dispatcher's answer.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Opened(task::Model),
    Reserved(bool),
    Done,
    /// This worker is not the dispatcher.
    NotOwner,
    /// The dispatcher could not write the change (the database failed).
    Failed(String),
}

/// Where the dispatcher is, as this worker last read the ring.
#[derive(Clone)]
enum Place {
    Here,
    There(Box<(Member, Client)>),
    Unknown,
}

/// This worker's way to the dispatcher, and the dispatcher itself when it
/// is here.
pub(crate) struct Dispatch {
    me: String,
    secret: Option<String>,
    place: RwLock<Place>,
    pub(crate) owner: Owner,
    /// Tells waiting events that the dispatcher moved.
    moved: tokio::sync::Notify,
}

impl Dispatch {
    pub(crate) fn new(me: String, secret: Option<String>, capacity: i64) -> Dispatch {
        Dispatch {
            me,
            secret,
            place: RwLock::new(Place::Unknown),
            owner: Owner::new(capacity),
            moved: tokio::sync::Notify::new(),
        }
    }

    /// Follows the worker membership: becomes the dispatcher when this
    /// worker owns [`DISPATCH_SHARD`], and stops being it when not.
    pub(crate) fn start(inner: Weak<Inner>, lifecycle: &kefu_lifecycle::Lifecycle) {
        lifecycle.spawn_loop(async move {
            let mut ticker = tokio::time::interval(FOLLOW);
            loop {
                ticker.tick().await;
                let Some(inner) = inner.upgrade() else { return };
                inner.dispatch.follow(&inner).await;
            }
        });
    }

    async fn follow(&self, inner: &Arc<Inner>) {
        let members = match inner.register.members("worker").await {
            Ok(members) => members,
            // Keep the last view: the register may be back soon.
            Err(_) => return,
        };
        // No member yet (this worker's own lease is on its way): no
        // dispatcher rather than two.
        let ring = Ring::new(members.iter().map(|m| &m.id));
        let Some(owner) = ring.owner(DISPATCH_SHARD).map(str::to_owned) else {
            return;
        };
        let current = self.place.read().unwrap_or_else(|p| p.into_inner()).clone();
        let next = if owner == self.me {
            Place::Here
        } else {
            let Some(member) = members.into_iter().find(|m| m.id == owner) else {
                return;
            };
            if let Place::There(there) = &current {
                let (known, _) = &**there;
                if known.id == member.id && known.addr == member.addr {
                    return;
                }
            }
            match connect(&member, self.secret.as_deref()) {
                Ok(client) => Place::There(Box::new((member, client))),
                Err(e) => {
                    tracing::warn!(worker = %member.id, error = %e, "dispatcher not reachable");
                    Place::Unknown
                }
            }
        };
        let was_here = matches!(current, Place::Here);
        match &next {
            Place::Here if !was_here => {
                tracing::info!(worker = %self.me, "this worker is now the dispatcher");
                self.owner.take_over(inner.clone());
            }
            Place::Here => {}
            _ => self.owner.resign_if_owner(),
        }
        *self.place.write().unwrap_or_else(|p| p.into_inner()) = next;
        self.moved.notify_waiters();
    }

    /// Sends an event to the dispatcher, wherever it is, trying for a
    /// while when it is moving. None when no dispatcher answered.
    pub(crate) async fn send(&self, inner: &Arc<Inner>, mut event: Event) -> Option<Outcome> {
        let deadline = tokio::time::Instant::now() + REACH;
        loop {
            let place = self.place.read().unwrap_or_else(|p| p.into_inner()).clone();
            let outcome = match place {
                Place::Here => Some(self.owner.handle(inner, event.clone()).await),
                Place::There(there) => {
                    let (member, mut client) = *there;
                    match client.dispatch(to_wire(event.clone())).await {
                        Ok(reply) => Some(from_wire(&event, reply.into_inner())),
                        Err(status) => {
                            tracing::debug!(worker = %member.id, %status, "dispatcher call failed");
                            // It may have been carried out: say so next time.
                            if let Event::Open { again, .. } = &mut event {
                                *again = true;
                            }
                            None
                        }
                    }
                }
                Place::Unknown => {
                    // Read the ring now rather than at the next tick.
                    self.follow(inner).await;
                    None
                }
            };
            match outcome {
                Some(Outcome::NotOwner) | None => {}
                Some(outcome) => return Some(outcome),
            }
            let wait = tokio::time::sleep_until(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(50)),
            );
            tokio::select! {
                _ = self.moved.notified() => {}
                _ = wait => {}
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(?event, "no dispatcher answered");
                return None;
            }
        }
    }

    /// An event from another worker, over the `Dispatch` RPC.
    pub(crate) async fn handle_remote(
        &self,
        inner: &Arc<Inner>,
        request: DispatchRequest,
    ) -> DispatchReply {
        let Some(event) = request.event.map(from_request) else {
            return DispatchReply::default();
        };
        let here = matches!(
            *self.place.read().unwrap_or_else(|p| p.into_inner()),
            Place::Here
        );
        let outcome = if here {
            self.owner.handle(inner, event).await
        } else {
            Outcome::NotOwner
        };
        to_reply(outcome)
    }
}

fn connect(member: &Member, secret: Option<&str>) -> Result<Client, String> {
    let url = kefu_proto::grpc_url(&member.addr);
    let channel = Endpoint::from_shared(url)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(WorkerClient::with_interceptor(
        channel,
        auth::Attach::new(secret),
    ))
}

fn to_wire(event: Event) -> DispatchRequest {
    let event = match event {
        Event::Open {
            customer,
            name,
            shard,
            client_ip,
            again,
        } => Wire::Open(OpenTask {
            customer_id: customer,
            name,
            shard,
            client_ip: client_ip.unwrap_or_default(),
            again,
        }),
        Event::Reserve { agent } => Wire::Reserve(agent),
        Event::Released { task_id, agent } => Wire::Released(TaskReleased {
            task_id,
            agent_id: agent.unwrap_or_default(),
        }),
        Event::Queued {
            task_id,
            reason,
            from,
        } => Wire::Queued(TaskQueued {
            task_id,
            reason: reason.unwrap_or_default(),
            from_agent: from.unwrap_or_default(),
        }),
        Event::AgentChanged { agent } => Wire::AgentChanged(agent),
    };
    DispatchRequest { event: Some(event) }
}

fn from_request(event: Wire) -> Event {
    let some = |s: String| (!s.is_empty()).then_some(s);
    match event {
        Wire::Open(open) => Event::Open {
            customer: open.customer_id,
            name: open.name,
            again: open.again,
            shard: open.shard,
            client_ip: some(open.client_ip),
        },
        Wire::Reserve(agent) => Event::Reserve { agent },
        Wire::Released(r) => Event::Released {
            task_id: r.task_id,
            agent: some(r.agent_id),
        },
        Wire::Queued(q) => Event::Queued {
            task_id: q.task_id,
            reason: some(q.reason),
            from: some(q.from_agent),
        },
        Wire::AgentChanged(agent) => Event::AgentChanged { agent },
    }
}

fn to_reply(outcome: Outcome) -> DispatchReply {
    match outcome {
        Outcome::Opened(t) => DispatchReply {
            task: Some(OpenedTask {
                id: t.id,
                customer_id: t.customer_id,
                agent_id: t.agent_id.unwrap_or_default(),
                status: t.status,
                created_at: t.created_at,
                client_ip: t.client_ip.unwrap_or_default(),
            }),
            ..DispatchReply::default()
        },
        Outcome::Reserved(reserved) => DispatchReply {
            reserved,
            ..DispatchReply::default()
        },
        Outcome::Done => DispatchReply::default(),
        Outcome::NotOwner => DispatchReply {
            not_owner: true,
            ..DispatchReply::default()
        },
        Outcome::Failed(error) => DispatchReply {
            error,
            ..DispatchReply::default()
        },
    }
}

fn from_wire(event: &Event, reply: DispatchReply) -> Outcome {
    if reply.not_owner {
        return Outcome::NotOwner;
    }
    if !reply.error.is_empty() {
        return Outcome::Failed(reply.error);
    }
    match event {
        Event::Open { .. } => match reply.task {
            Some(t) => Outcome::Opened(task::Model {
                id: t.id,
                customer_id: t.customer_id,
                agent_id: (!t.agent_id.is_empty()).then_some(t.agent_id),
                status: t.status,
                created_at: t.created_at,
                ended_at: None,
                rating_score: None,
                rating_comment: None,
                client_ip: (!t.client_ip.is_empty()).then_some(t.client_ip),
            }),
            // The dispatcher could not write the task.
            None => Outcome::NotOwner,
        },
        Event::Reserve { .. } => Outcome::Reserved(reply.reserved),
        _ => Outcome::Done,
    }
}
