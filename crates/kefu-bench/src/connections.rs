//! `kefu bench connections`: many idle authenticated connections, spread
//! over local source addresses 127.0.0.x so one process is not limited by
//! one address's ephemeral ports; reports the connection rate, failures by
//! reason and, given the server's pid, its memory per connection.
//!
//! One process may hold at most its open-file limit of sockets (20,000 on
//! this project's machines): run several generators for more.

use super::{duration, spawn_relay, token, ws_config};
use clap::Args;
use futures::StreamExt;
use kefu_protocol::Role;
use serde_json::json;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Debug, Clone)]
pub struct ConnectionsOptions {
    /// The gateway's WebSocket URL.
    #[arg(long, env = "KEFU_URL", default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// The gateway's token secret.
    #[arg(long, env = "KEFU_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Connections to open.
    #[arg(long, env = "KEFU_COUNT", default_value_t = 1000)]
    pub count: usize,
    /// New connections per second, at most.
    #[arg(long, env = "KEFU_RATE", default_value_t = 10_000.0)]
    pub rate: f64,
    /// Handshakes in progress at once, at most.
    #[arg(long, env = "KEFU_CONCURRENCY", default_value_t = 128)]
    pub concurrency: usize,
    /// How long to hold the connections open once all are up.
    #[arg(long, env = "KEFU_HOLD", value_parser = duration, default_value = "3s")]
    pub hold: Duration,
    /// The server's process id, to read its resident memory.
    #[arg(long, env = "KEFU_PID")]
    pub pid: Option<u32>,
    /// Spread over source addresses 127.0.0.2 … 127.0.0.(1+N).
    #[arg(long, env = "KEFU_SOURCES", default_value_t = 16)]
    pub sources: u8,
    /// First measure `kefu bench relay` the same way.
    #[arg(long, env = "KEFU_RELAY")]
    pub relay: bool,
    /// Print the results as JSON.
    #[arg(long, env = "KEFU_JSON")]
    pub json: bool,
}

struct Outcome {
    label: String,
    established: usize,
    failures: HashMap<String, usize>,
    per_second: f64,
    bytes_per_conn: Option<f64>,
}

pub async fn run(opts: ConnectionsOptions) -> anyhow::Result<()> {
    let mut outcomes = Vec::new();
    if opts.relay {
        let (mut child, url) = spawn_relay().await?;
        let relay_opts = ConnectionsOptions {
            url,
            pid: child.id(),
            ..opts.clone()
        };
        outcomes.push(measure(&relay_opts, "relay").await?);
        let _ = child.kill().await;
    }
    outcomes.push(measure(&opts, "kefu").await?);
    if opts.json {
        let list: Vec<_> = outcomes
            .iter()
            .map(|o| {
                json!({"target": o.label, "established": o.established, "failures": o.failures,
                "per_second": o.per_second, "bytes_per_connection": o.bytes_per_conn})
            })
            .collect();
        println!("{}", json!({ "results": list }));
    } else {
        for o in &outcomes {
            let memory = o.bytes_per_conn.map_or("n/a (no --pid)".to_owned(), |b| {
                format!("{:.0} B ({:.2} KiB)", b, b / 1024.0)
            });
            println!(
                "{:<6} established {:>6}  at {:>8.0}/s  failures {:?}  server memory per connection {memory}",
                o.label, o.established, o.per_second, o.failures
            );
        }
    }
    Ok(())
}

fn rss_bytes(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

fn target(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow::anyhow!("--url must be ws://HOST:PORT/PATH"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    hostport
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {hostport}"))
}

type Conn = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn open_one(
    url: &str,
    addr: SocketAddr,
    source: Ipv4Addr,
    token: &str,
) -> Result<Conn, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {}", e.kind()))?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(source), 0))
        .map_err(|e| format!("bind: {}", e.kind()))?;
    let tcp = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(
        format!("{url}?token={token}"),
        tcp,
        Some(ws_config()),
    )
    .await
    .map_err(|e| format!("handshake: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if !t.contains("\"error\"") => Ok(ws),
        Ok(Some(Ok(_))) => Err("auth refused".into()),
        Ok(_) => Err("closed before auth".into()),
        Err(_) => Err("auth timeout".into()),
    }
}

async fn measure(opts: &ConnectionsOptions, label: &str) -> anyhow::Result<Outcome> {
    let addr = target(&opts.url)?;
    let run = format!("{:08x}", rand::random::<u32>());
    let before = opts.pid.and_then(rss_bytes);
    let gate = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let interval = Duration::from_secs_f64(1.0 / opts.rate.max(1.0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(opts.count);
    for i in 0..opts.count {
        tokio::time::sleep_until(started + interval * i as u32).await;
        let permit = gate.clone().acquire_owned().await?;
        let source = Ipv4Addr::new(127, 0, 0, 2 + (i % opts.sources.max(1) as usize) as u8);
        let token = token(
            &opts.secret,
            &format!("bench-{run}-idle{i}"),
            Role::Customer,
        )?;
        let url = opts.url.clone();
        tasks.push(tokio::spawn(async move {
            let result = open_one(&url, addr, source, &token).await;
            drop(permit);
            result
        }));
        if i > 0 && i % 5000 == 0 {
            eprintln!("{label}: {i} connections started");
        }
    }
    let mut conns = Vec::with_capacity(opts.count);
    let mut failures: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        match t.await {
            Ok(Ok(c)) => conns.push(c),
            Ok(Err(reason)) => *failures.entry(reason).or_default() += 1,
            Err(e) => *failures.entry(e.to_string()).or_default() += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = opts.pid.and_then(rss_bytes);
    let established = conns.len();
    eprintln!(
        "{label}: {established} connections up in {elapsed:.2} s; holding {:?}",
        opts.hold
    );
    tokio::time::sleep(opts.hold).await;
    drop(conns);
    let bytes_per_conn = match (before, after) {
        (Some(b), Some(a)) if established > 0 => Some((a - b) / established as f64),
        _ => None,
    };
    Ok(Outcome {
        label: label.to_owned(),
        established,
        failures,
        per_second: established as f64 / elapsed.max(1e-9),
        bytes_per_conn,
    })
}
