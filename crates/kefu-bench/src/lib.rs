//! `kefu bench`: the load generator. Its targets are gateways; every figure
//! it prints can be set beside the same load on `kefu bench relay`, a
//! minimal in-memory WebSocket relay, measured in the same run.
//!
//! - [`chat`]: customers and agents exchanging messages, closed or open loop.
//! - [`connections`]: many idle authenticated connections, and what each costs.
//! - [`open`]: new conversations arriving: opens per second, queue toasts,
//!   capacity held.
//! - [`relay`]: the baseline relay server.
//! - [`report`]: histograms, progress lines and the final table.

pub mod chat;
pub mod connections;
pub mod cpu;
pub mod open;
pub mod relay;
pub mod report;

use clap::{Args, Subcommand};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct BenchOptions {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Customers send, agents receive (and optionally reply); reports
    /// throughput, latency, loss and duplicates.
    Chat(chat::ChatOptions),
    /// Opens many idle authenticated connections; reports rate, failures and
    /// server memory per connection.
    Connections(connections::ConnectionsOptions),
    /// Agents online, new customers opening conversations at a rate (or all
    /// at once); reports opens per second, first-message latency, queue
    /// toasts and capacity violations.
    Open(open::OpenOptions),
    /// Runs the baseline relay: in memory, no auth check, no storage.
    Relay(relay::RelayOptions),
}

pub async fn run(opts: BenchOptions) -> anyhow::Result<()> {
    match opts.command {
        BenchCommand::Chat(o) => chat::run(o).await,
        BenchCommand::Connections(o) => connections::run(o).await,
        BenchCommand::Open(o) => open::run(o).await,
        BenchCommand::Relay(o) => relay::run(o).await,
    }
}

/// The WebSocket settings of every socket the bench opens, client or relay:
/// tungstenite's default 128 KiB read buffer per socket would make the
/// generator the bottleneck at 19,000 sockets, and the relay no fair
/// memory baseline.
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096)
}

pub(crate) use kefu_protocol::duration::parse as duration;

/// The gateways a scenario loads.
#[derive(Args, Debug, Clone)]
pub struct Gateways {
    /// Gateway WebSocket URLs, comma-separated; clients spread over them.
    #[arg(
        long,
        env = "KEFU_URL",
        value_delimiter = ',',
        default_value = "ws://127.0.0.1:8080/ws"
    )]
    pub url: Vec<String>,
    /// The gateways' token secret.
    #[arg(long, env = "KEFU_SECRET", hide_env_values = true)]
    pub secret: String,
}

/// Signs a bench token with the target's secret.
pub fn token(secret: &str, user: &str, role: kefu_protocol::Role) -> anyhow::Result<String> {
    let claims = kefu_protocol::Claims {
        device: Some("bench".into()),
        ..kefu_protocol::Claims::new(
            user,
            role,
            kefu_protocol::token::expiry_after(Duration::from_secs(24 * 3600)),
        )
    };
    Ok(kefu_protocol::token::sign(secret.as_bytes(), &claims)?)
}

/// Starts `kefu bench relay` as a child process on a free loopback port and
/// returns it with its WebSocket URL.
pub async fn spawn_relay() -> anyhow::Result<(tokio::process::Child, String)> {
    use tokio::io::AsyncBufReadExt;
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["bench", "relay", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("relay has no stdout"))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await??
        .ok_or_else(|| anyhow::anyhow!("relay exited"))?;
    let addr = line
        .strip_prefix("relay listening on ")
        .ok_or_else(|| anyhow::anyhow!("unexpected relay output {line:?}"))?;
    Ok((child, format!("ws://{addr}/ws")))
}
