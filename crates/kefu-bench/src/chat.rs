//! `kefu bench chat`: customers send, agents receive and confirm (and reply
//! with `--replies`), against one or more gateways.
//!
//! Every customer first sends one opening message and waits for its ack, one
//! customer after another, so tasks spread over the agents. Then for
//! `--duration` each customer keeps `--window` sends unacknowledged (closed
//! loop) or sends at its share of `--rate` (open loop). After the window the
//! generator waits `--grace` for the last acks and deliveries, then counts:
//! a message acked but never delivered is lost; one delivered twice to the
//! agents is a duplicate; a send neither acked nor refused is unanswered.

use super::cpu::CpuClock;
use super::report::{histogram, print, Results};
use super::{duration, spawn_relay, token, ws_config, Gateways};
use clap::Args;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use kefu_protocol::Role;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Debug, Clone)]
pub struct ChatOptions {
    #[command(flatten)]
    pub gateways: Gateways,
    /// Customers, each sending to one agent.
    #[arg(long, env = "KEFU_CUSTOMERS", default_value_t = 50)]
    pub customers: usize,
    /// Agents; each customer writes to one of them.
    #[arg(long, env = "KEFU_AGENTS", default_value_t = 50)]
    pub agents: usize,
    /// Unacknowledged sends each customer keeps in flight (closed loop).
    #[arg(long, env = "KEFU_WINDOW", default_value_t = 16)]
    pub window: usize,
    /// Messages per second over all customers (open loop, instead of --window).
    #[arg(long, env = "KEFU_RATE")]
    pub rate: Option<f64>,
    /// How long to send (10s, 1m).
    #[arg(long, env = "KEFU_DURATION", value_parser = duration, default_value = "10s")]
    pub duration: Duration,
    /// Bytes of text per message.
    #[arg(long, env = "KEFU_SIZE", default_value_t = 64)]
    pub size: usize,
    /// Agents answer every message they receive.
    #[arg(long, env = "KEFU_REPLIES")]
    pub replies: bool,
    /// First run the same load against `kefu bench relay`, and report ratios.
    #[arg(long, env = "KEFU_RELAY")]
    pub relay: bool,
    /// The target's process ids, comma-separated (every `kefu` of a
    /// cluster, its database and Redis): their processor time during the
    /// run is reported beside the generator's.
    #[arg(long, env = "KEFU_SERVER_PID", value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// How long to wait for acks and deliveries after the window.
    #[arg(long, env = "KEFU_GRACE", value_parser = duration, default_value = "5s")]
    pub grace: Duration,
    /// Print the results as JSON.
    #[arg(long, env = "KEFU_JSON")]
    pub json: bool,
}

/// What the generator reads of a frame it receives: borrowed fields, the
/// rest skipped unread, so that reading stays a small part of its work.
#[derive(serde::Deserialize)]
struct Seen<'a> {
    #[serde(default)]
    category: &'a str,
    action: Option<&'a str>,
    #[serde(borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    id: Option<i64>,
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ext: Option<&'a serde_json::value::RawValue>,
}

impl Seen<'_> {
    /// The code of an error ack; the `ext` of others is not read.
    fn error_code(&self) -> Option<String> {
        let ext = self.ext?.get();
        if !ext.contains("\"error\"") {
            return None;
        }
        let ext: Value = serde_json::from_str(ext).ok()?;
        ext["error"]["code"].as_str().map(str::to_owned)
    }
}

/// What one send became.
#[derive(Clone, Copy)]
struct Fate {
    sent: Instant,
    acked: bool,
    delivered: u32,
}

/// What became of each send, per customer and indexed by the send's
/// number: the client_msg_id `m{run}-{customer}-{n}` names its slot, so
/// the generator keeps no map of millions of strings (a map's inserts,
/// hashing and growth were a fifth of its processor time).
struct Fates {
    /// `m{run}-`.
    prefix: String,
    customers: Vec<Mutex<Vec<Fate>>>,
}

impl Fates {
    fn new(run: &str, customers: usize) -> Fates {
        Fates {
            prefix: format!("m{run}-"),
            customers: (0..customers).map(|_| Mutex::default()).collect(),
        }
    }

    /// Records customer `i`'s next send, sent now; returns its client_msg_id.
    fn sent(&self, i: usize) -> String {
        let mut fates = lock(&self.customers[i]);
        fates.push(Fate {
            sent: Instant::now(),
            acked: false,
            delivered: 0,
        });
        format!("{}{i}-{}", self.prefix, fates.len())
    }

    /// Calls `f` with the fate of the send `cmid` names, if it is one.
    fn with<R>(&self, cmid: &str, f: impl FnOnce(&mut Fate) -> R) -> Option<R> {
        let (i, n) = cmid.strip_prefix(&self.prefix)?.split_once('-')?;
        let (i, n): (usize, usize) = (i.parse().ok()?, n.parse().ok()?);
        let mut fates = lock(self.customers.get(i)?);
        fates.get_mut(n.checked_sub(1)?).map(f)
    }

    fn each(&self, mut f: impl FnMut(&Fate)) {
        for customer in &self.customers {
            lock(customer).iter().for_each(&mut f);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Shared {
    fates: Fates,
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    delivered_in_window: AtomicU64,
    duplicates: AtomicU64,
    errors: Mutex<HashMap<String, u64>>,
}

pub async fn run(opts: ChatOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        opts.customers > 0 && opts.agents > 0,
        "need customers and agents"
    );
    let baseline = if opts.relay {
        let (mut child, url) = spawn_relay().await?;
        let relay_opts = ChatOptions {
            gateways: Gateways {
                url: vec![url],
                ..opts.gateways.clone()
            },
            server_pid: child.id().into_iter().collect(),
            ..opts.clone()
        };
        let r = measure(&relay_opts, "relay").await;
        let _ = child.kill().await;
        Some(r?)
    } else {
        None
    };
    let kefu = measure(&opts, "kefu").await?;
    print(opts.json, &kefu, baseline.as_ref());
    Ok(())
}

async fn measure(opts: &ChatOptions, label: &str) -> anyhow::Result<Results> {
    let run = format!("{:08x}", rand::random::<u32>());
    let shared = Arc::new(Shared {
        fates: Fates::new(&run, opts.customers),
        sent: AtomicU64::default(),
        acked: AtomicU64::default(),
        delivered: AtomicU64::default(),
        delivered_in_window: AtomicU64::default(),
        duplicates: AtomicU64::default(),
        errors: Mutex::default(),
    });
    let payload: String = "x".repeat(opts.size);
    let agent_ids: Vec<String> = (0..opts.agents)
        .map(|i| format!("bench-{run}-a{i}"))
        .collect();
    eprintln!(
        "{label}: connecting {} agents and {} customers",
        opts.agents, opts.customers
    );
    let window_end = Arc::new(Mutex::new(None::<Instant>));
    let (finish, finished) = tokio::sync::watch::channel(false);
    let mut agents = Vec::new();
    for (i, id) in agent_ids.iter().enumerate() {
        let url = &opts.gateways.url[i % opts.gateways.url.len()];
        let ws = connect(url, &token(&opts.gateways.secret, id, Role::Agent)?).await?;
        let task = agent(
            ws,
            shared.clone(),
            opts.replies,
            window_end.clone(),
            finished.clone(),
        );
        agents.push(tokio::spawn(task));
    }
    let mut customers = Vec::new();
    for i in 0..opts.customers {
        let id = format!("bench-{run}-c{i}");
        let url = &opts.gateways.url[(i + opts.agents) % opts.gateways.url.len()];
        let mut ws = connect(url, &token(&opts.gateways.secret, &id, Role::Customer)?).await?;
        let to = &agent_ids[i % agent_ids.len()];
        open(&mut ws, to).await?;
        // The histograms (~140 KB each) are made now, not in the customer's
        // task: 500 of them made at the window's start stalled the generator
        // itself for ~85 ms, which showed as every target's max latency.
        customers.push((ws, to.clone(), [histogram(), histogram()]));
    }
    eprintln!("{label}: all connected; measuring for {:?}", opts.duration);
    let start = Instant::now();
    let stop = start + opts.duration;
    *window_end.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop);
    let per_customer_rate = opts.rate.map(|r| r / opts.customers as f64);
    let progress = tokio::spawn(progress(shared.clone(), label.to_owned()));
    let clock = CpuClock::start(&opts.server_pid);
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(stop).await;
        clock.share()
    });
    let tasks: Vec<_> = customers
        .into_iter()
        .enumerate()
        .map(|(i, (ws, to, histograms))| {
            let plan = Plan {
                customer: i,
                prefix: format!("m{run}-{i}-"),
                to,
                payload: payload.clone(),
                window: opts.window.max(1),
                rate: per_customer_rate,
                // Open-loop senders start spread over one period, so the
                // load is steady rather than every customer at one instant.
                phase: per_customer_rate
                    .map(|r| {
                        Duration::from_secs_f64(i as f64 / opts.customers as f64 / r.max(0.001))
                    })
                    .unwrap_or_default(),
                stop,
                end: stop + opts.grace,
            };
            tokio::spawn(customer(ws, plan, histograms, shared.clone()))
        })
        .collect();
    let [mut ack, mut send_lag] = [histogram(), histogram()];
    for t in tasks {
        if let Ok([a, l]) = t.await {
            let _ = ack.add(a);
            let _ = send_lag.add(l);
        }
    }
    // Deliveries may trail the last ack a little.
    let settle = Instant::now() + Duration::from_millis(500).min(opts.grace);
    tokio::time::sleep_until(settle).await;
    progress.abort();
    let _ = finish.send(true);
    let mut delivery = histogram();
    for a in agents {
        if let Ok(h) = a.await {
            let _ = delivery.add(h);
        }
    }
    let send_lag = opts.rate.is_some().then_some(send_lag);
    let mut results = results(label, opts, &shared, [ack, delivery], send_lag);
    results.cpu = cpu.await.ok();
    Ok(results)
}

fn results(
    label: &str,
    opts: &ChatOptions,
    shared: &Shared,
    [ack, delivery]: [Histogram<u64>; 2],
    send_lag: Option<Histogram<u64>>,
) -> Results {
    let mut lost = 0;
    let mut answered = 0;
    shared.fates.each(|f| {
        if f.acked && f.delivered == 0 {
            lost += 1;
        }
        if f.acked {
            answered += 1;
        }
    });
    let errors = shared
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let refused: u64 = errors.values().sum();
    let sent = shared.sent.load(Ordering::Relaxed);
    Results {
        target: label.to_owned(),
        sent,
        acked: shared.acked.load(Ordering::Relaxed),
        delivered: shared.delivered.load(Ordering::Relaxed),
        lost,
        duplicates: shared.duplicates.load(Ordering::Relaxed),
        unanswered: sent.saturating_sub(answered + refused),
        errors,
        delivered_per_sec: shared.delivered_in_window.load(Ordering::Relaxed) as f64
            / opts.duration.as_secs_f64(),
        ack,
        delivery,
        send_lag,
        cpu: None,
    }
}

pub(super) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(super) async fn connect(url: &str, token: &str) -> anyhow::Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("{url}?token={token}"),
        Some(ws_config()),
        true,
    )
    .await?;
    let mut ws = ws;
    // The auth ack.
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"auth\"") && !t.contains("\"error\"") => {
            Ok(ws)
        }
        other => anyhow::bail!("authentication failed: {other:?}"),
    }
}

fn send_frame(cmid: &str, to: &str, payload: &str) -> String {
    format!(
        r#"{{"category":"customer","action":"send","kind":"text","content":"{payload}","to":"{to}","client_msg_id":"{cmid}"}}"#
    )
}

/// The opening message, acked before the load starts.
async fn open(ws: &mut Ws, to: &str) -> anyhow::Result<()> {
    let cmid = format!("open-{:016x}", rand::random::<u64>());
    ws.send(Message::text(send_frame(&cmid, to, "hello")))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = msg? {
            let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
            if v["category"] == "ack" && v["client_msg_id"] == cmid.as_str() {
                anyhow::ensure!(v["ext"]["error"].is_null(), "opening message refused: {t}");
                return Ok(());
            }
        }
    }
    anyhow::bail!("no ack for the opening message")
}

struct Plan {
    customer: usize,
    /// Of this customer's client_msg_ids.
    prefix: String,
    to: String,
    payload: String,
    window: usize,
    rate: Option<f64>,
    phase: Duration,
    stop: Instant,
    end: Instant,
}

/// A customer: sends on its plan, records each ack's latency and, in the
/// open loop, how late each send left against its schedule.
async fn customer(
    ws: Ws,
    plan: Plan,
    [mut ack_latency, mut send_lag]: [Histogram<u64>; 2],
    shared: Arc<Shared>,
) -> [Histogram<u64>; 2] {
    let (mut sink, mut stream) = ws.split();
    let mut in_flight = 0usize;
    let mut ticker = plan.rate.map(|r| {
        let period = Duration::from_secs_f64(1.0 / r.max(0.001));
        tokio::time::interval_at(Instant::now() + plan.phase, period)
    });
    let next_send = || {
        let cmid = shared.fates.sent(plan.customer);
        shared.sent.fetch_add(1, Ordering::Relaxed);
        Message::text(send_frame(&cmid, &plan.to, &plan.payload))
    };
    if ticker.is_none() {
        for _ in 0..plan.window {
            if sink.send(next_send()).await.is_err() {
                return [ack_latency, send_lag];
            }
            in_flight += 1;
        }
    }
    loop {
        let sending = Instant::now() < plan.stop;
        if !sending && in_flight == 0 {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(plan.end) => break,
            due = async { ticker.as_mut().expect("ticker").tick().await }, if sending && ticker.is_some() => {
                let _ = send_lag.record(due.elapsed().as_micros() as u64);
                if sink.send(next_send()).await.is_err() {
                    break;
                }
                in_flight += 1;
            }
            msg = stream.next() => {
                let Some(Ok(Message::Text(text))) = msg else {
                    if matches!(msg, None | Some(Err(_))) { break; }
                    continue;
                };
                let Ok(seen) = serde_json::from_str::<Seen>(&text) else { continue };
                if seen.category != "ack" || seen.action != Some("send") {
                    continue;
                }
                let Some(cmid) = seen.client_msg_id.as_deref() else { continue };
                if !cmid.starts_with(&plan.prefix) {
                    continue;
                }
                in_flight = in_flight.saturating_sub(1);
                if let Some(code) = seen.error_code() {
                    *shared.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(code).or_default() += 1;
                } else {
                    let first = shared.fates.with(cmid, |fate| {
                        let first = !fate.acked;
                        fate.acked = true;
                        first.then_some(fate.sent)
                    });
                    if let Some(Some(sent)) = first {
                        shared.acked.fetch_add(1, Ordering::Relaxed);
                        let _ = ack_latency.record(sent.elapsed().as_micros() as u64);
                    }
                }
                if ticker.is_none() && Instant::now() < plan.stop {
                    if sink.send(next_send()).await.is_err() {
                        break;
                    }
                    in_flight += 1;
                }
            }
        }
    }
    let _ = sink.close().await;
    [ack_latency, send_lag]
}

/// An agent: records each delivery, confirms in batches, replies if asked.
async fn agent(
    ws: Ws,
    shared: Arc<Shared>,
    replies: bool,
    window_end: Arc<Mutex<Option<Instant>>>,
    mut finished: tokio::sync::watch::Receiver<bool>,
) -> Histogram<u64> {
    let (mut sink, mut stream) = ws.split();
    let mut latency = histogram();
    let mut receipts: Vec<i64> = Vec::new();
    let mut flush = tokio::time::interval(Duration::from_millis(5));
    loop {
        tokio::select! {
            _ = finished.changed() => break,
            _ = flush.tick(), if !receipts.is_empty() => {
                let frame = json!({"category": "receive", "ext": {"ids": receipts}}).to_string();
                receipts.clear();
                if sink.send(Message::text(frame)).await.is_err() {
                    break;
                }
            }
            msg = stream.next() => {
                let Some(Ok(Message::Text(text))) = msg else {
                    if matches!(msg, None | Some(Err(_))) { break; }
                    continue;
                };
                let Ok(seen) = serde_json::from_str::<Seen>(&text) else { continue };
                if seen.action != Some("send") || seen.category != "customer" {
                    continue;
                }
                if let Some(id) = seen.id {
                    receipts.push(id);
                }
                let Some(cmid) = seen.client_msg_id.as_deref() else { continue };
                let seen_before = shared.fates.with(cmid, |fate| {
                    fate.delivered += 1;
                    (fate.delivered > 1, fate.sent)
                });
                match seen_before {
                    Some((false, sent)) => {
                        shared.delivered.fetch_add(1, Ordering::Relaxed);
                        let end = *window_end.lock().unwrap_or_else(|p| p.into_inner());
                        if end.is_some_and(|e| Instant::now() <= e) {
                            shared.delivered_in_window.fetch_add(1, Ordering::Relaxed);
                        }
                        let _ = latency.record(sent.elapsed().as_micros() as u64);
                    }
                    Some((true, _)) => {
                        shared.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {}
                }
                if replies {
                    if let Some(from) = seen.from.as_deref() {
                        let reply = json!({"category": "manager", "action": "send", "to": from, "content": "ok",
                            "client_msg_id": format!("r-{cmid}")});
                        if sink.send(Message::text(reply.to_string())).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
    }
    let _ = sink.close().await;
    latency
}

async fn progress(shared: Arc<Shared>, label: String) {
    let started = Instant::now();
    let mut last = (0, 0);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = shared.sent.load(Ordering::Relaxed);
        let delivered = shared.delivered.load(Ordering::Relaxed);
        eprintln!(
            "{label}: {:>4.0}s  sent {:>9}/s  delivered {:>9}/s",
            started.elapsed().as_secs_f64(),
            sent - last.0,
            delivered - last.1
        );
        last = (sent, delivered);
    }
}
