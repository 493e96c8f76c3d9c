//! Kefu's register: which gateways and workers are alive, and which gateway
//! holds which client connection.
//!
//! Gateways announce the connections they accept and keep their membership
//! alive; workers ask where a user's devices are before they push, so a push
//! goes only to the gateways that hold the recipient. Gateways also read the
//! worker membership to build their [`ring::Ring`].
//!
//! # Layout
//! - [`Register`]: the trait every backend implements.
//! - [`memory`]: one process, used by `kefu serve` and by a single `kefu register`.
//! - [`redis`]: shared by several register replicas, no single point of failure.
//! - [`grpc`]: the `Register` gRPC service and [`grpc::RemoteRegister`], the
//!   client gateways and workers use.
//! - [`ring`]: consistent hashing of shards onto workers.
//! - [`outage`]: logging a dependency that keeps failing, once and not per call.

#![forbid(unsafe_code)]

pub mod grpc;
pub mod memory;
pub mod outage;
pub mod redis;
pub mod ring;

pub use grpc::RemoteRegister;
pub use kefu_proto::v1::{Location, Member};
pub use memory::MemoryRegister;
pub use redis::RedisRegister;
pub use ring::Ring;

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RegisterError {
    #[error("register unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = RegisterError> = std::result::Result<T, E>;

/// Membership with leases, and the client location table.
#[async_trait::async_trait]
pub trait Register: Send + Sync + 'static {
    /// Joins or renews a member for `ttl`; a member not renewed disappears.
    /// Returns true when the member was not known: it joined, or the
    /// register lost its state, and a gateway must announce its connections
    /// again.
    async fn keep_alive(&self, member: Member, ttl: Duration) -> Result<bool>;
    /// Leaves at once (a clean shutdown).
    async fn leave(&self, member_id: &str) -> Result<()>;
    /// Live members of a role ("gateway" or "worker"), sorted by id.
    async fn members(&self, role: &str) -> Result<Vec<Member>>;
    /// Records connections a gateway holds.
    async fn announce(&self, locations: Vec<Location>) -> Result<()>;
    /// Forgets connections a gateway closed.
    async fn withdraw(&self, locations: Vec<Location>) -> Result<()>;
    /// Every known connection of these users.
    async fn locate(&self, user_ids: &[String]) -> Result<Vec<Location>>;
}

/// For tests: connection `conn` of `user`, in `role`, on `gateway`, from a PC.
#[cfg(test)]
pub(crate) fn test_location(user: &str, gateway: &str, conn: &str, role: &str) -> Location {
    Location {
        user_id: user.into(),
        gateway_id: gateway.into(),
        conn_id: conn.into(),
        device: "pc".into(),
        role: role.into(),
    }
}
