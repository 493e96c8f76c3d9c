//! The register over gRPC: [`RegisterService`] serves any backend;
//! [`RemoteRegister`] is the client, failing over between register replicas.

use crate::{Location, Member, Register, RegisterError, Result};
use kefu_proto::auth;
use kefu_proto::v1::register_client::RegisterClient;
use kefu_proto::v1::register_server;
use kefu_proto::v1::{Lease, ListRequest, LocateRequest, Locations, Members, RegisterReply};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

/// Serves a register backend.
pub struct RegisterService {
    backend: Arc<dyn Register>,
}

impl RegisterService {
    pub fn new(backend: Arc<dyn Register>) -> RegisterService {
        RegisterService { backend }
    }
}

fn status(e: RegisterError) -> Status {
    Status::unavailable(e.to_string())
}

#[tonic::async_trait]
impl register_server::Register for RegisterService {
    async fn keep_alive(&self, request: Request<Lease>) -> Result<Response<RegisterReply>, Status> {
        let lease = request.into_inner();
        let member = lease
            .member
            .ok_or_else(|| Status::invalid_argument("lease without member"))?;
        let ttl = Duration::from_millis(lease.ttl_ms.clamp(1_000, 60_000) as u64);
        let rejoined = self.backend.keep_alive(member, ttl).await.map_err(status)?;
        Ok(Response::new(RegisterReply { rejoined }))
    }

    async fn leave(&self, request: Request<Member>) -> Result<Response<RegisterReply>, Status> {
        self.backend
            .leave(&request.into_inner().id)
            .await
            .map_err(status)?;
        Ok(Response::new(RegisterReply::default()))
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<Members>, Status> {
        let members = self
            .backend
            .members(&request.into_inner().role)
            .await
            .map_err(status)?;
        Ok(Response::new(Members { members }))
    }

    async fn announce(
        &self,
        request: Request<Locations>,
    ) -> Result<Response<RegisterReply>, Status> {
        self.backend
            .announce(request.into_inner().locations)
            .await
            .map_err(status)?;
        Ok(Response::new(RegisterReply::default()))
    }

    async fn withdraw(
        &self,
        request: Request<Locations>,
    ) -> Result<Response<RegisterReply>, Status> {
        self.backend
            .withdraw(request.into_inner().locations)
            .await
            .map_err(status)?;
        Ok(Response::new(RegisterReply::default()))
    }

    async fn locate(&self, request: Request<LocateRequest>) -> Result<Response<Locations>, Status> {
        let locations = self
            .backend
            .locate(&request.into_inner().user_ids)
            .await
            .map_err(status)?;
        Ok(Response::new(Locations { locations }))
    }
}

type Client = RegisterClient<InterceptedService<Channel, auth::Attach>>;

/// A register reached over gRPC. With several replicas, each call goes to
/// the last one that answered and fails over to the others in turn.
pub struct RemoteRegister {
    clients: Vec<Client>,
    /// The URL of each client, for errors.
    addresses: Vec<String>,
    preferred: AtomicUsize,
}

impl RemoteRegister {
    /// `urls`: one or more register addresses (`http://host:port`).
    pub fn new(urls: &[String], secret: Option<&str>) -> Result<RemoteRegister> {
        if urls.is_empty() {
            return Err(RegisterError::Unavailable(
                "no register address given".into(),
            ));
        }
        let mut clients = Vec::new();
        let mut addresses = Vec::new();
        for url in urls {
            let url = kefu_proto::grpc_url(url);
            let channel = Endpoint::from_shared(url.clone())
                .map_err(|e| RegisterError::Unavailable(format!("{url}: {e}")))?
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(3))
                .tcp_nodelay(true)
                .connect_lazy();
            addresses.push(url);
            clients.push(RegisterClient::with_interceptor(
                channel,
                auth::Attach::new(secret),
            ));
        }
        Ok(RemoteRegister {
            clients,
            addresses,
            preferred: AtomicUsize::new(0),
        })
    }

    /// Runs `call` against the preferred replica, then the others.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<Response<T>, Status>>,
    {
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..self.clients.len() {
            let index = (start + i) % self.clients.len();
            match call(self.clients[index].clone()).await {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(response.into_inner());
                }
                Err(status) => {
                    last = Some(format!(
                        "{}: {}",
                        self.addresses[index],
                        crate::outage::status_chain(&status)
                    ))
                }
            }
        }
        Err(RegisterError::Unavailable(last.unwrap_or_default()))
    }
}

#[async_trait::async_trait]
impl Register for RemoteRegister {
    async fn keep_alive(&self, member: Member, ttl: Duration) -> Result<bool> {
        let lease = Lease {
            member: Some(member),
            ttl_ms: ttl.as_millis() as u32,
        };
        let reply = self
            .call(|mut c| {
                let lease = lease.clone();
                async move { c.keep_alive(lease).await }
            })
            .await?;
        Ok(reply.rejoined)
    }

    async fn leave(&self, member_id: &str) -> Result<()> {
        let member = Member {
            id: member_id.to_owned(),
            ..Member::default()
        };
        self.call(|mut c| {
            let member = member.clone();
            async move { c.leave(member).await }
        })
        .await
        .map(|_| ())
    }

    async fn members(&self, role: &str) -> Result<Vec<Member>> {
        let request = ListRequest {
            role: role.to_owned(),
        };
        let reply = self
            .call(|mut c| {
                let request = request.clone();
                async move { c.list(request).await }
            })
            .await?;
        Ok(reply.members)
    }

    async fn announce(&self, locations: Vec<Location>) -> Result<()> {
        let request = Locations { locations };
        self.call(|mut c| {
            let request = request.clone();
            async move { c.announce(request).await }
        })
        .await
        .map(|_| ())
    }

    async fn withdraw(&self, locations: Vec<Location>) -> Result<()> {
        let request = Locations { locations };
        self.call(|mut c| {
            let request = request.clone();
            async move { c.withdraw(request).await }
        })
        .await
        .map(|_| ())
    }

    async fn locate(&self, user_ids: &[String]) -> Result<Vec<Location>> {
        let request = LocateRequest {
            user_ids: user_ids.to_vec(),
        };
        let reply = self
            .call(|mut c| {
                let request = request.clone();
                async move { c.locate(request).await }
            })
            .await?;
        Ok(reply.locations)
    }
}
