//! Kefu's client-facing protocol, shared by every role.
//!
//! Gateways parse and validate what a WebSocket client sends; workers build the
//! frames that go back. Both use this crate, so one place decides what a frame
//! looks like, which frames a role may send, what an error is called on the
//! wire, how a token is checked, and which shard a frame belongs to.
//!
//! # Layout
//! - [`frame`]: the JSON frame (serde), both directions.
//! - [`command`]: a parsed frame checked against the sender's identity,
//!   turned into a [`Command`].
//! - [`error`]: [`ErrorCode`], mapped to the wire, HTTP and gRPC.
//! - [`token`]: HS256 JWTs and the [`Claims`] they carry.
//! - [`shard`]: the routing shard of a user or task.
//! - [`duration`]: durations as operators write them (`90s`, `5m`, `90`).

#![forbid(unsafe_code)]

pub mod command;
pub mod duration;
pub mod error;
pub mod frame;
pub mod shard;
pub mod token;

pub use command::{Command, Limits, SendCommand};
pub use error::{ErrorCode, ProtocolError};
pub use frame::Frame;
pub use token::{Claims, Role};

/// Files move and rest in pieces of at most this much: uploads are stored a
/// piece at a time and downloads read a piece at a time, so neither holds a
/// whole file in memory.
pub const FILE_CHUNK_BYTES: usize = 512 * 1024;

/// Milliseconds since the Unix epoch, the unit of every `created_at`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
