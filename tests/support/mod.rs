//! The black-box harness: a real `kefu serve` process, WebSocket clients and
//! HTTP calls, nothing else. Tests only see what a browser or an operator's
//! backend would see.
//!
//! # Layout
//! - [`backend`]: [`Backend`] (SQLite, MySQL, PostgreSQL), a database of its
//!   own per server, temporary data dirs.
//! - [`server`]: [`Server`], a `kefu serve` child process on port 0 with its own
//!   data dir, its tokens, `kefu agent add`, kill -9 / SIGTERM / restart.
//! - [`http`]: the server's HTTP API: requests with a bearer token, uploads,
//!   history and offline pages.
//! - [`client`]: [`Client`], one authenticated WebSocket connection with
//!   bounded waits, a backlog of frames seen but not yet asked for, and
//!   optional automatic `receive` confirmations.
//! - [`frames`]: reading frames and HTTP bodies: field getters, predicates for
//!   `recv_until`, the success/error ack checks.
//! - [`postgres`]: a PostgreSQL server of the test's own, to crash and
//!   restart for outage tests.
//! - [`chat`]: [`Chat`], the common opening: an agent online and a customer
//!   whose first message opened a task.

#![allow(dead_code)]

pub mod backend;
pub mod chat;
pub mod client;
pub mod cluster;
pub mod frames;
pub mod http;
pub mod postgres;
pub mod server;

pub use backend::{service_url, Backend};
pub use chat::Chat;
pub use client::{Client, WAIT};
pub use frames::*;
pub use http::upload_head;
pub use server::{forged, Server};

pub use serde_json::{json, Value};
pub use std::time::Duration;

/// Milliseconds since the Unix epoch, comparable with the server's `created_at`
/// (both run on this machine).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Polls `check` until it returns `Some` or `timeout` passes; for state that
/// settles after a frame that has no ack (a `receive`, a disconnect).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not so within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}
