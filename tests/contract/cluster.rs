//! Failures of a cluster's processes: a worker, a register replica and a
//! gateway killed with SIGKILL, Redis restarted empty. Cluster-only; they
//! need `KEFU_TEST_MYSQL_URL` and `KEFU_TEST_REDIS_URL`.

use crate::support::cluster::Redis;
use crate::support::*;
use std::collections::{BTreeMap, HashSet};

fn cluster() -> Backend {
    Backend::cluster_mysql()
}

/// A cluster whose registers share a Redis of the test's own on `host`
/// (to kill and restart), with a chat open on it.
async fn chat_on_a_redis_of_its_own(host: &str) -> (Redis, Server, Chat) {
    let database = service_url("KEFU_TEST_MYSQL_URL");
    service_url("KEFU_TEST_REDIS_URL");
    let redis = Redis::start(host);
    let backend = Backend::Cluster {
        database,
        redis: redis.url(),
    };
    let server = Server::builder().on(backend).start().await;
    let chat = Chat::open(&server).await;
    (redis, server, chat)
}

fn process<'a>(server: &'a mut Server, name: &str) -> &'a mut crate::support::cluster::Proc {
    server
        .procs()
        .iter_mut()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no process {name}"))
}

/// Sends `count` messages per customer without waiting, and returns every
/// answer: client_msg_id → the ack or error frame.
async fn answers(customer: &mut Client, prefix: &str, count: usize) -> BTreeMap<String, Value> {
    let mut answered = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    while answered.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(frame) = customer.try_recv_until(ack_of("send"), left).await else {
            break;
        };
        let cmid = frame["client_msg_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if cmid.starts_with(prefix) {
            assert!(
                answered.insert(cmid.clone(), frame).is_none(),
                "{cmid} answered twice"
            );
        }
    }
    answered
}

#[tokio::test]
#[cfg_attr(
    not(all(kefu_test_mysql, kefu_test_redis)),
    ignore = "needs KEFU_TEST_MYSQL_URL and KEFU_TEST_REDIS_URL"
)]
async fn a_worker_killed_under_load_loses_duplicates_and_reorders_nothing_and_every_send_is_answered(
) {
    let backend = cluster();
    let mut server = Server::builder().on(backend).start().await;
    let mut agent = server.agent("a1").await;
    // Two customers on the worker to kill and two on the other, whatever
    // the hash: the killed worker always holds conversations.
    let doomed = crate::support::cluster::worker_id("127.0.0.4");
    let (mut on_doomed, mut on_other) = (Vec::new(), Vec::new());
    for i in 0.. {
        let id = format!("c{i}");
        let side = if crate::support::cluster::owner_of(&id) == doomed {
            &mut on_doomed
        } else {
            &mut on_other
        };
        if side.len() < 2 {
            side.push(id);
        }
        if on_doomed.len() == 2 && on_other.len() == 2 {
            break;
        }
    }
    let names: Vec<String> = on_doomed.into_iter().chain(on_other).collect();
    let mut customers = Vec::new();
    for name in &names {
        let chat = Chat::with_agent(&server, name, agent).await;
        agent = chat.agent;
        customers.push(chat.customer);
    }
    // Half the sends before the kill, half while the stream breaks and
    // the in-flight frames are sent again: newer frames of a moved shard
    // must not overtake them.
    const COUNT: usize = 150;
    let send = |i: usize, n: usize| {
        json!({"category": "customer", "action": "send",
            "content": format!("c{i} load {n}"), "client_msg_id": format!("load-{n:03}")})
        .to_string()
    };
    for (i, customer) in customers.iter_mut().enumerate() {
        for n in 0..COUNT / 2 {
            assert!(customer.try_send_raw(&send(i, n)).await);
        }
    }
    process(&mut server, "worker 127.0.0.4").kill9();
    // Paced, so that sends keep arriving while the gateway notices the
    // break and sends the in-flight ones again.
    for n in COUNT / 2..COUNT {
        for (i, customer) in customers.iter_mut().enumerate() {
            assert!(customer.try_send_raw(&send(i, n)).await);
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }

    let mut acked: Vec<(String, Acked)> = Vec::new();
    for (i, customer) in customers.iter_mut().enumerate() {
        let got = answers(customer, "load-", COUNT).await;
        assert_eq!(
            got.len(),
            COUNT,
            "{}: every send is answered, ack or error",
            names[i]
        );
        // A conversation's acked sends are stored in the order sent
        // (client_msg_ids sort in that order).
        let ids: Vec<(String, i64)> = got
            .iter()
            .filter(|(_, frame)| frame["ext"].get("error").is_none())
            .map(|(cmid, frame)| (cmid.clone(), Acked::from(frame).id))
            .collect();
        for pair in ids.windows(2) {
            assert!(
                pair[0].1 < pair[1].1,
                "{}: {} (id {}) was stored after {} (id {})",
                names[i],
                pair[0].0,
                pair[0].1,
                pair[1].0,
                pair[1].1
            );
        }
        for (cmid, frame) in got {
            if frame["ext"].get("error").is_none() {
                acked.push((format!("{} {cmid}", names[i]), Acked::from(&frame)));
            }
        }
    }
    println!(
        "{} of {} sends acked, the rest refused",
        acked.len(),
        4 * COUNT
    );
    assert!(!acked.is_empty(), "the surviving worker acked messages");

    // Every acked message is stored once, in its customer's task.
    let admin = server.admin_token();
    let mut tasks: HashSet<i64> = acked.iter().map(|(_, a)| a.task_id).collect();
    let mut stored: Vec<Value> = Vec::new();
    for task in tasks.drain() {
        stored.extend(server.full_history(&admin, task).await);
    }
    for (what, ack) in &acked {
        let copies = stored.iter().filter(|m| m["id"] == ack.id).count();
        assert_eq!(copies, 1, "{what} (id {}) is stored exactly once", ack.id);
    }
    // One row per (sender, client_msg_id): nothing stored twice.
    let mut sent: Vec<(String, String)> = stored
        .iter()
        .filter(|m| m["client_msg_id"].is_string())
        .map(|m| (m["from"].to_string(), m["client_msg_id"].to_string()))
        .collect();
    let total = sent.len();
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), total, "no message is stored twice");

    // And every acked message reaches the agent.
    let mut missing: HashSet<i64> = acked.iter().map(|(_, a)| a.id).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(push) = agent.try_recv_until(is_chat_message, left).await else {
            break;
        };
        if let Some(id) = push["id"].as_i64() {
            missing.remove(&id);
        }
    }
    if !missing.is_empty() {
        // Pushes lost with the worker wait in /api/offline.
        let token = server.token("a1", "agent");
        for m in server.offline(&token).await {
            if let Some(id) = m["id"].as_i64() {
                missing.remove(&id);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "acked messages never delivered: {missing:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(all(kefu_test_mysql, kefu_test_redis)),
    ignore = "needs KEFU_TEST_MYSQL_URL and KEFU_TEST_REDIS_URL"
)]
async fn the_cluster_carries_on_without_a_register_replica_and_a_gateway() {
    let backend = cluster();
    let mut server = Server::builder().on(backend).start().await;
    process(&mut server, "register 127.0.0.2").kill9();
    process(&mut server, "gateway 127.0.0.6").kill9();

    // New connections go to the surviving gateway; it finds the workers and
    // the workers find it through the surviving register.
    let mut chat = Chat::open(&server).await;
    let reply = chat.agent.say_to("c1", "a-1", "still here").await;
    chat.customer.recv_until(push_of(reply.id), WAIT).await;
    let (status, agents) = server.get("/api/agents", &server.admin_token()).await;
    assert_eq!(status, 200);
    assert_eq!(agents["agents"][0]["online"], true, "{agents}");
}

#[tokio::test]
#[cfg_attr(
    not(all(kefu_test_mysql, kefu_test_redis)),
    ignore = "needs KEFU_TEST_MYSQL_URL and KEFU_TEST_REDIS_URL"
)]
async fn locations_come_back_after_redis_restarts_empty() {
    let (mut redis, server, mut chat) = chat_on_a_redis_of_its_own("127.0.0.8").await;

    redis.restart_empty();

    // The gateways' next keep-alive finds the register forgot them, and they
    // announce their connections again: pushes reach the agent live.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        n += 1;
        let sent = chat
            .customer
            .say(&format!("after-{n}"), "are you there?")
            .await;
        if chat
            .agent
            .try_recv_until(push_of(sent.id), Duration::from_secs(1))
            .await
            .is_some()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pushes never reached the agent again"
        );
    }
    let admin = server.admin_token();
    eventually(
        "the agent shows online again",
        Duration::from_secs(10),
        || async {
            let (_, agents) = server.get("/api/agents", &admin).await;
            (agents["agents"][0]["online"] == true).then_some(())
        },
    )
    .await;
}

/// Workers push through a port of the gateway's own: the public one answers
/// the internal service's paths like any unknown path.
#[tokio::test]
#[cfg_attr(
    not(all(kefu_test_mysql, kefu_test_redis)),
    ignore = "needs KEFU_TEST_MYSQL_URL and KEFU_TEST_REDIS_URL"
)]
async fn the_clients_port_does_not_serve_the_internal_push_service() {
    let backend = cluster();
    let server = Server::start_on(backend).await;

    let response = reqwest::Client::new()
        .post(format!("{}/kefu.v1.Gateway/Deliver", server.url()))
        .header("content-type", "application/grpc")
        .body(vec![0u8; 5])
        .send()
        .await
        .expect("the request completes");

    assert_eq!(response.status().as_u16(), 404);
}

/// The contract's commands carry no cluster secret, so a cluster starts
/// without one; each role says loudly that it is unprotected.
#[test]
fn a_cluster_role_without_a_secret_warns_that_it_is_unprotected() {
    use crate::support::cluster::spawn;
    let dir = crate::support::backend::TempDir::new();
    let log = dir.path().join("register.log");
    let args: Vec<String> = ["register", "--listen", "127.0.0.1:0"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let register = spawn("register", &args, "kefu register serving on", &log);

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("no --cluster-secret"), "{text}");
    drop(register);
}

/// An internal port other machines could reach, with no cluster secret:
/// anyone there could push messages to clients, so the role refuses to
/// start and says what to set (on loopback it only warns, above).
#[test]
fn a_cluster_role_reachable_from_other_machines_without_a_secret_refuses_to_start() {
    let runs: [&[&str]; 2] = [
        &["register", "--listen", "0.0.0.0:0"],
        &[
            "worker",
            "--register",
            "http://127.0.0.1:9",
            "--listen",
            "0.0.0.0:0",
            "--database-url",
            "sqlite::memory:",
        ],
    ];
    for args in runs {
        let output = std::process::Command::new(crate::support::server::KEFU)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run kefu");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} started: {stderr}");
        assert!(
            stderr.contains("no --cluster-secret")
                && stderr.contains("--insecure-no-cluster-secret"),
            "{args:?}: {stderr}"
        );
    }
}

const LONE_SECRET: &str = "a-client-token-secret-of-enough-length";

/// A register and a gateway, and no worker.
fn lone_gateway(dir: &crate::support::backend::TempDir) -> [crate::support::cluster::Proc; 2] {
    use crate::support::cluster::spawn;
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let register = spawn(
        "register",
        &args(&[
            "register",
            "--listen",
            "127.0.0.1:0",
            "--insecure-no-cluster-secret",
        ]),
        "kefu register serving on",
        &dir.path().join("register.log"),
    );
    let gateway = spawn(
        "gateway",
        &args(&[
            "gateway",
            "--register",
            &format!("http://{}", register.addr),
            "--listen",
            "127.0.0.1:0",
            "--internal-listen",
            "127.0.0.1:0",
            "--secret",
            LONE_SECRET,
            "--insecure-no-cluster-secret",
        ]),
        "kefu serving on",
        &dir.path().join("gateway.log"),
    );
    [register, gateway]
}

/// `/healthz` says the process serves; `/readyz` also that a worker can take
/// frames, so a load balancer sends no client to a gateway without one.
#[tokio::test]
async fn a_gateway_without_workers_is_live_but_not_ready() {
    let dir = crate::support::backend::TempDir::new();
    let [_register, gateway] = lone_gateway(&dir);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{}{path}", gateway.addr)).send();

    let live = get("/healthz").await.expect("answers");
    let ready = get("/readyz").await.expect("answers");

    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(ready.status().as_u16(), 503);
    let body: Value = ready.json().await.expect("a JSON body");
    assert_eq!(body["reason"], "no worker has joined", "{body}");
}

/// The gateway checks a call's path, query and body itself, once, and
/// sends the worker a typed call: a malformed call is refused with what is
/// wrong even when no worker is there to ask, and only a well-formed one
/// needs a worker (503 here).
#[tokio::test]
async fn the_gateway_refuses_a_malformed_call_without_asking_a_worker() {
    let dir = crate::support::backend::TempDir::new();
    let [_register, gateway] = lone_gateway(&dir);
    let token = |role: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kefu"))
            .args([
                "token",
                "--user",
                "a1",
                "--role",
                role,
                "--secret",
                LONE_SECRET,
            ])
            .output()
            .expect("run kefu token");
        String::from_utf8(output.stdout)
            .expect("a token")
            .trim()
            .to_owned()
    };
    let agent = token("agent");
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<&str>| {
        let mut request = http
            .request(method, format!("http://{}{path}", gateway.addr))
            .bearer_auth(&agent);
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("a JSON body");
            (
                status,
                body["error"]["message"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    use reqwest::Method;
    #[rustfmt::skip]
    let cases = [
        (Method::GET, "/api/offline?limit=many", None, 400, "limit must be a number"),
        (Method::GET, "/api/offline?after=-5", None, 400, "after must not be negative"),
        (Method::GET, "/api/tasks/x/messages", None, 400, "task id must be a number"),
        (Method::GET, "/api/tasks/7/messages?before=y", None, 400, "before must be a number"),
        (Method::POST, "/api/tasks/7/rating", Some("{\"score\":"), 400, "bad JSON body"),
        (Method::POST, "/api/tasks/7/transfer", Some("{}"), 400, "bad JSON body"),
        (Method::PUT, "/api/agents/me/status", Some(r#"{"status":"asleep"}"#), 400, "status must be available or away"),
        (Method::POST, "/api/quick-replies", Some(r#"{"title":" ","content":"x"}"#), 400, "title and content are required"),
        (Method::DELETE, "/api/quick-replies/first", None, 400, "quick reply id must be a number"),
        (Method::POST, "/api/agents/a2/promote", None, 404, "no such endpoint"),
        (Method::GET, "/api/nothing-here", None, 404, "no such endpoint"),
        // Only the gateway's own routes reach a login or an upload's parts.
        (Method::POST, "/api/login/", Some("{}"), 404, "no such endpoint"),
        (Method::POST, "/api/upload/", None, 404, "no such endpoint"),
        (Method::POST, "/api/upload/parts", None, 404, "no such endpoint"),
        (Method::GET, "/api/tasks/7/end", None, 405, "method not allowed here"),
        (Method::GET, "/files/not-a-key", None, 404, "no such file"),
        // Well formed: only a worker can answer, and none joins within
        // the gateway's 15 s wait.
        (Method::GET, "/api/tasks/7/messages?limit=5", None, 503, ""),
    ];
    for (method, path, body, status, message) in cases {
        let (got, why) = call(method.clone(), path, body).await;
        assert_eq!(got, status, "{method} {path}: {why}");
        assert!(why.starts_with(message), "{method} {path}: {why}");
    }
}

/// A worker stopped with SIGTERM leaves the register and drains: an orderly
/// departure, which the gateways log as such and not as a broken stream (it
/// used to be a WARN with h2's "BrokenPipe"), while chats carry on.
#[tokio::test]
#[cfg_attr(
    not(all(kefu_test_mysql, kefu_test_redis)),
    ignore = "needs KEFU_TEST_MYSQL_URL and KEFU_TEST_REDIS_URL"
)]
async fn a_draining_worker_is_no_warning_in_the_gateways_logs() {
    let mut server = Server::builder().on(cluster()).start().await;
    let mut chat = Chat::open(&server).await;
    let worker = process(&mut server, "worker 127.0.0.4");
    worker.sigterm();
    let child = worker.child.as_mut().expect("the worker runs");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let stopped = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            _ if tokio::time::Instant::now() > deadline => break None,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(
        stopped.is_some_and(|s| s.success()),
        "the worker drains and exits 0"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    let acked = chat.customer.say("after-drain", "still there?").await;
    chat.agent
        .recv_until(push_of(acked.id), Duration::from_secs(10))
        .await;
    for host in ["127.0.0.6", "127.0.0.7"] {
        let log = std::fs::read_to_string(server.data_dir().join(format!("gateway-{host}-1.log")))
            .expect("the gateway's log");
        let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
        assert!(warnings.is_empty(), "gateway {host} warned:\n{log}");
    }
}

/// Redis killed for five seconds under a chat, then back empty. Every send
/// is still answered promptly during the outage (stored and acknowledged,
/// not pushed: the recipient reads it from /api/offline), and live
/// delivery resumes within seconds of Redis returning. It used to take two
/// minutes for the first ack to come back.
#[tokio::test]
#[cfg_attr(
    not(all(kefu_test_mysql, kefu_test_redis)),
    ignore = "needs KEFU_TEST_MYSQL_URL and KEFU_TEST_REDIS_URL"
)]
async fn a_redis_outage_delays_no_ack_and_delivery_resumes_within_seconds() {
    let (mut redis, _server, mut chat) = chat_on_a_redis_of_its_own("127.0.0.9").await;

    redis.kill();
    let outage = tokio::time::Instant::now();
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    while outage.elapsed() < Duration::from_secs(5) {
        n += 1;
        let sent = tokio::time::Instant::now();
        let cmid = format!("during-{n}");
        chat.customer
            .send_json(json!({
                "category": "customer", "action": "send", "kind": "text",
                "content": "hello?", "client_msg_id": cmid,
            }))
            .await;
        let answer = chat
            .customer
            .try_recv_until(
                |f| f["action"] == "send" && f["client_msg_id"] == cmid.as_str(),
                Duration::from_secs(10),
            )
            .await;
        assert!(answer.is_some(), "send {n} unanswered during the outage");
        slowest = slowest.max(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{n} sends during the outage, slowest answer {slowest:?}");
    assert!(slowest < Duration::from_secs(3), "an ack took {slowest:?}");

    redis.start_empty();
    let back = tokio::time::Instant::now();
    loop {
        n += 1;
        let sent = chat.customer.say(&format!("after-{n}"), "there?").await;
        if chat
            .agent
            .try_recv_until(push_of(sent.id), Duration::from_millis(500))
            .await
            .is_some()
        {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "no live delivery 15 s after Redis came back"
        );
    }
    println!(
        "live delivery resumed {:?} after Redis came back",
        back.elapsed()
    );
    assert!(
        back.elapsed() < Duration::from_secs(5),
        "resumed after {:?}",
        back.elapsed()
    );
}
