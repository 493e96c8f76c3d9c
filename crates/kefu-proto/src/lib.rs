//! The gRPC contract between Kefu's roles, generated from `proto/kefu/v1`.
//!
//! Gateways call [`v1::worker_client::WorkerClient`] and serve
//! [`v1::gateway_server::Gateway`]; workers serve [`v1::worker_server::Worker`]
//! and call gateways; both call the register through
//! [`v1::register_client::RegisterClient`]. `kefu serve` uses the same
//! messages in-process.

#![forbid(unsafe_code)]

pub mod v1 {
    tonic::include_proto!("kefu.v1");
}
