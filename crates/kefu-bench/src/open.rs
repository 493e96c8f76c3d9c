//! `kefu bench open`: new conversations. `--agents` agents are online;
//! `--customers` new customers, connected beforehand, each send their first
//! message (which opens a task and assigns an agent) at `--rate` per second
//! or all at once, then one follow-up. Reports opens per second, the ack
//! latency of first messages and of follow-ups, queue toasts ("all our
//! agents are busy"), and afterwards: capacity violations (an agent given
//! more than `--capacity` tasks), first messages lost, duplicated or left
//! unanswered. With `--handoffs K` and customers left waiting, it then ends
//! K tasks one at a time, each by its agent over HTTP, and times each end
//! until the customer at the head of the queue is told who serves them.

use super::chat::{connect, Ws};
use super::report::{histogram, latency_row, percentiles};
use super::{duration, token, Gateways};
use clap::Args;
use dashmap::{DashMap, DashSet};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use kefu_protocol::Role;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Debug, Clone)]
pub struct OpenOptions {
    #[command(flatten)]
    pub gateways: Gateways,
    /// Agents online before the customers arrive.
    #[arg(long, env = "KEFU_AGENTS", default_value_t = 100)]
    pub agents: usize,
    /// New customers, each opening one conversation.
    #[arg(long, env = "KEFU_CUSTOMERS", default_value_t = 100)]
    pub customers: usize,
    /// First messages per second; unset: all at once.
    #[arg(long, env = "KEFU_RATE")]
    pub rate: Option<f64>,
    /// The server's --max-tasks-per-agent, to count violations.
    #[arg(long, env = "KEFU_CAPACITY", default_value_t = 10)]
    pub capacity: usize,
    /// After the opens, tasks to end one at a time, timing each until a
    /// waiting customer is told who took them (needs customers beyond
    /// agents x capacity).
    #[arg(long, env = "KEFU_HANDOFFS", default_value_t = 0)]
    pub handoffs: usize,
    /// How long to wait for the last acks, toasts and deliveries.
    #[arg(long, env = "KEFU_GRACE", value_parser = duration, default_value = "10s")]
    pub grace: Duration,
    /// Print the results as JSON.
    #[arg(long, env = "KEFU_JSON")]
    pub json: bool,
}

#[derive(Default)]
struct Shared {
    /// First messages acked, and refused.
    acked: AtomicU64,
    refused: AtomicU64,
    /// Follow-ups acked.
    followed: AtomicU64,
    /// Customers told to wait in line, and all queue toasts.
    queued_customers: AtomicU64,
    queue_toasts: AtomicU64,
    /// Message id -> how many agent pushes carried it.
    delivered: DashMap<i64, u32>,
    /// First messages' ids, as acked.
    first_ids: DashSet<i64>,
    /// Agent -> the tasks it was given (its set is written in place: a
    /// cloned `DashSet` is a copy).
    tasks_of: DashMap<String, DashSet<i64>>,
    first_ack: Mutex<Option<Histogram<u64>>>,
    follow_ack: Mutex<Option<Histogram<u64>>>,
    /// End request sent -> the waiting customer told who serves them.
    handoff: Mutex<Option<Histogram<u64>>>,
    /// Ends refused, or not followed by an assignment within the grace.
    handoffs_failed: AtomicU64,
    last_ack: Mutex<Option<Instant>>,
}

pub async fn run(opts: OpenOptions) -> anyhow::Result<()> {
    anyhow::ensure!(!opts.gateways.url.is_empty(), "need a --url");
    let run = format!("{:08x}", rand::random::<u32>());
    let shared = Arc::new(Shared {
        first_ack: Mutex::new(Some(histogram())),
        follow_ack: Mutex::new(Some(histogram())),
        handoff: Mutex::new(Some(histogram())),
        ..Shared::default()
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    eprintln!("connecting {} agents", opts.agents);
    let mut agents = Vec::new();
    let mut desks = Vec::new();
    for i in 0..opts.agents {
        let id = format!("bench-{run}-a{i}");
        let url = &opts.gateways.url[i % opts.gateways.url.len()];
        let token = token(&opts.gateways.secret, &id, Role::Agent)?;
        let ws = connect(url, &token).await?;
        agents.push(tokio::spawn(agent(
            ws,
            id.clone(),
            shared.clone(),
            stopped.clone(),
        )));
        desks.push(Desk {
            id,
            api: api_base(url)?,
            token,
        });
    }
    eprintln!("connecting {} customers", opts.customers);
    let mut sockets = Vec::with_capacity(opts.customers);
    for i in 0..opts.customers {
        let id = format!("bench-{run}-c{i}");
        let url = &opts.gateways.url[i % opts.gateways.url.len()];
        sockets.push(connect(url, &token(&opts.gateways.secret, &id, Role::Customer)?).await?);
    }
    eprintln!("opening {} conversations", opts.customers);
    let start = Instant::now() + Duration::from_millis(200);
    let customers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let at = match opts.rate {
                Some(rate) if rate > 0.0 => start + Duration::from_secs_f64(i as f64 / rate),
                _ => start,
            };
            tokio::spawn(customer(ws, at, opts.grace, shared.clone()))
        })
        .collect();
    let mut waiting = Vec::new();
    for c in customers {
        if let Ok(Some(ws)) = c.await {
            waiting.push(ws);
        }
    }
    // Deliveries of the last first messages.
    tokio::time::sleep(Duration::from_millis(500)).await;
    if opts.handoffs > 0 {
        hand_off(&opts, &desks, waiting, &shared, stopped.clone()).await?;
    }
    let _ = stop.send(true);
    for a in agents {
        let _ = a.await;
    }
    report(&opts, &shared, start);
    Ok(())
}

/// How long a customer listens for queue notices after its last ack.
const TOAST_WAIT: Duration = Duration::from_secs(1);

fn send(cmid: &str, content: &str) -> Message {
    let frame = json!({
        "category": "customer", "action": "send", "kind": "text",
        "content": content, "client_msg_id": cmid,
    });
    Message::text(frame.to_string())
}

/// A new customer: at `at` the first message, then a follow-up once it is
/// acked; records both acks and any queue toast until `grace` after.
/// Returns the connection of a customer left waiting in line.
async fn customer(mut ws: Ws, at: Instant, grace: Duration, shared: Arc<Shared>) -> Option<Ws> {
    tokio::time::sleep_until(at).await;
    let sent = Instant::now();
    if ws
        .send(send("first", "hello, I have a question"))
        .await
        .is_err()
    {
        return None;
    }
    let mut deadline = sent + grace;
    let mut queued = false;
    let mut assigned = false;
    let mut follow_sent: Option<Instant> = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        let Message::Text(text) = msg else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if frame["category"] == "ack" && frame["action"] == "send" {
            let now = Instant::now();
            let refused = !frame["ext"]["error"].is_null();
            match frame["client_msg_id"].as_str() {
                Some("first") if refused => {
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some("first") => {
                    shared.acked.fetch_add(1, Ordering::Relaxed);
                    record(&shared.first_ack, now - sent);
                    *shared.last_ack.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
                    if let Some(id) = frame["id"].as_i64() {
                        shared.first_ids.insert(id);
                    }
                    follow_sent = Some(now);
                    if ws.send(send("second", "and one more thing")).await.is_err() {
                        break;
                    }
                }
                Some("second") if !refused => {
                    shared.followed.fetch_add(1, Ordering::Relaxed);
                    if let Some(at) = follow_sent {
                        record(&shared.follow_ack, now - at);
                    }
                    // Queue notices may follow the acks: listen a while
                    // longer, so none goes uncounted.
                    deadline = deadline.min(now + TOAST_WAIT);
                }
                _ => {}
            }
        } else if frame["ext"]["event"] == "assigned" {
            assigned = true;
        } else if frame["ext"]["event"] == "queued" {
            shared.queue_toasts.fetch_add(1, Ordering::Relaxed);
            if !queued {
                queued = true;
                shared.queued_customers.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if queued && !assigned {
        return Some(ws);
    }
    let _ = ws.close(None).await;
    None
}

/// An agent's way to the HTTP API.
struct Desk {
    id: String,
    api: String,
    token: String,
}

/// `ws://host:port/ws` -> `http://host:port`.
fn api_base(ws_url: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(ws_url)?;
    let scheme = if url.scheme() == "wss" {
        "https"
    } else {
        "http"
    };
    url.set_scheme(scheme)
        .map_err(|()| anyhow::anyhow!("cannot make an http URL of {ws_url}"))?;
    url.set_path("");
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Ends tasks one at a time, each by its agent (round the desks, so the
/// ends land on every gateway and worker), and times each end until a
/// customer left waiting hears they were assigned.
async fn hand_off(
    opts: &OpenOptions,
    desks: &[Desk],
    waiting: Vec<Ws>,
    shared: &Shared,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let rounds = opts.handoffs.min(waiting.len());
    eprintln!("{} customers waiting; handing off {rounds}", waiting.len());
    let (told, mut assigned) = tokio::sync::mpsc::unbounded_channel();
    for ws in waiting {
        tokio::spawn(listen_for_assignment(ws, told.clone(), stop.clone()));
    }
    let http = reqwest::Client::new();
    let mut next = 0;
    for _ in 0..rounds {
        let Some((desk, task)) = (0..desks.len()).find_map(|k| {
            let desk = &desks[(next + k) % desks.len()];
            let tasks = shared.tasks_of.get(&desk.id)?;
            let task = *tasks.iter().next()?;
            tasks.remove(&task);
            next = (next + k + 1) % desks.len();
            Some((desk, task))
        }) else {
            break;
        };
        while assigned.try_recv().is_ok() {}
        let sent = Instant::now();
        let ended = http
            .post(format!("{}/api/tasks/{task}/end", desk.api))
            .bearer_auth(&desk.token)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if !ended {
            shared.handoffs_failed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match tokio::time::timeout(opts.grace, assigned.recv()).await {
            Ok(Some(at)) => record(&shared.handoff, at - sent),
            _ => {
                shared.handoffs_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// A waiting customer: reports the moment they are told who serves them.
async fn listen_for_assignment(
    mut ws: Ws,
    told: tokio::sync::mpsc::UnboundedSender<Instant>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while let Some(frame) = next_frame(&mut ws, &mut stop).await {
        if frame["ext"]["event"] == "assigned" {
            let _ = told.send(Instant::now());
        }
    }
    let _ = ws.close(None).await;
}

/// The next text frame, as JSON (null if it is not); None once the run
/// stops or the socket closes.
async fn next_frame(ws: &mut Ws, stop: &mut tokio::sync::watch::Receiver<bool>) -> Option<Value> {
    let msg = tokio::select! {
        m = ws.next() => m,
        _ = stop.changed() => return None,
    };
    let Some(Ok(Message::Text(text))) = msg else {
        return None;
    };
    Some(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn record(h: &Mutex<Option<Histogram<u64>>>, took: Duration) {
    if let Some(h) = h.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let _ = h.record(took.as_micros().max(1) as u64);
    }
}

/// An agent: confirms what it is pushed and notes which tasks it was given.
async fn agent(
    mut ws: Ws,
    me: String,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    shared.tasks_of.entry(me.clone()).or_default();
    while let Some(frame) = next_frame(&mut ws, &mut stop).await {
        if frame["category"] != "customer" {
            continue;
        }
        if let (Some(id), Some(task)) = (frame["id"].as_i64(), frame["task_id"].as_i64()) {
            if let Some(tasks) = shared.tasks_of.get(&me) {
                tasks.insert(task);
            }
            *shared.delivered.entry(id).or_insert(0) += 1;
            let receipt = json!({"category": "receive", "ext": {"ids": [id]}});
            let _ = ws.send(Message::text(receipt.to_string())).await;
        }
    }
    let _ = ws.close(None).await;
}

fn report(opts: &OpenOptions, shared: &Shared, start: Instant) {
    let acked = shared.acked.load(Ordering::Relaxed);
    let refused = shared.refused.load(Ordering::Relaxed);
    let unanswered = opts.customers as u64 - acked - refused;
    let first_ids: Vec<i64> = shared.first_ids.iter().map(|i| *i).collect();
    let copies = |id: &i64| shared.delivered.get(id).map_or(0, |n| *n);
    let undelivered = first_ids.iter().filter(|id| copies(id) == 0).count() as u64;
    let duplicated = first_ids.iter().filter(|id| copies(id) > 1).count() as u64;
    let violations = shared
        .tasks_of
        .iter()
        .filter(|t| t.value().len() > opts.capacity)
        .count();
    let queued = shared.queued_customers.load(Ordering::Relaxed);
    let last = shared
        .last_ack
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(start);
    let opens_per_sec = acked as f64
        / last
            .saturating_duration_since(start)
            .as_secs_f64()
            .max(1e-3);
    let take = |h: &Mutex<Option<Histogram<u64>>>| {
        h.lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(histogram)
    };
    let (first, follow) = (take(&shared.first_ack), take(&shared.follow_ack));
    let handoff = take(&shared.handoff);
    let handoffs_failed = shared.handoffs_failed.load(Ordering::Relaxed);
    if opts.json {
        let out = json!({
            "agents": opts.agents, "customers": opts.customers, "rate": opts.rate,
            "opened": acked, "refused": refused, "unanswered": unanswered,
            "opens_per_sec": opens_per_sec,
            "queued_customers": queued,
            "queue_toasts": shared.queue_toasts.load(Ordering::Relaxed),
            "capacity_violations": violations,
            "first_messages_undelivered": undelivered,
            "first_messages_duplicated": duplicated,
            "first_ack": percentiles(&first),
            "follow_up_ack": percentiles(&follow),
            "handoffs": handoff.len(),
            "handoffs_failed": handoffs_failed,
            "handoff": percentiles(&handoff),
        });
        println!("{out}");
        return;
    }
    println!(
        "opened {acked} of {} conversations ({refused} refused, {unanswered} unanswered), {opens_per_sec:.0} per second",
        opts.customers
    );
    println!(
        "customers told to wait in line {queued} ({} toasts); agents over capacity {violations}",
        shared.queue_toasts.load(Ordering::Relaxed)
    );
    println!(
        "first messages never delivered {undelivered} (waiting ones included), delivered twice {duplicated}"
    );
    println!("{}", latency_row("first-message ack", &first));
    println!("{}", latency_row("follow-up ack", &follow));
    if opts.handoffs > 0 {
        println!(
            "hand-offs timed {} ({handoffs_failed} failed or unanswered)",
            handoff.len()
        );
        println!(
            "{}",
            latency_row("end -> waiting customer assigned", &handoff)
        );
    }
}
