//! A Kefu cluster as real processes on loopback: two registers sharing one
//! Redis (under a key prefix of the test's own), two workers on one server
//! database, two gateways. [`super::Server`] runs one of these in place of
//! `kefu serve` for [`super::Backend::Cluster`], and hands each new client
//! connection to the next gateway, so a user's devices sit on different
//! gateways.

use super::server::KEFU;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const STARTUP: Duration = Duration::from_secs(30);

/// One process of the cluster.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub addr: String,
}

impl Proc {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn sigterm(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

/// A process never outlives its test, even one that panicked.
impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Where and how a cluster runs.
pub struct ClusterSpec {
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub secret: String,
    /// Options for workers and gateways (limits, timeouts).
    pub args: Vec<String>,
}

/// Starts `kefu ARGS` and waits for the line starting with `ready`, whose
/// last word is the address it serves on.
pub fn spawn(name: &str, args: &[String], ready: &str, log: &Path) -> Proc {
    let log_file = std::fs::File::create(log).expect("create a process log");
    let mut child = Command::new(KEFU)
        .args(args)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn kefu {name}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let ready = ready.to_owned();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with(&ready) {
                if let Some(tx) = tx.take() {
                    let addr = line.rsplit(' ').next().unwrap_or_default();
                    let _ = tx.send(addr.trim_start_matches("http://").to_owned());
                }
            }
        }
    });
    match rx.recv_timeout(STARTUP) {
        Ok(addr) => Proc {
            name: name.to_owned(),
            child: Some(child),
            addr,
        },
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("kefu {name} did not start within {STARTUP:?}; its log:\n{log}");
        }
    }
}

/// The secret every role of one test cluster shares.
fn cluster_secret(spec: &ClusterSpec) -> Vec<String> {
    strings(&["--cluster-secret", &format!("{}-cluster", spec.secret)])
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub fn register(spec: &ClusterSpec, host: &str, dir: &Path, generation: u32) -> Proc {
    let mut args = strings(&["register", "--listen", &format!("{host}:0")]);
    args.extend(cluster_secret(spec));
    args.extend(strings(&[
        "--redis-url",
        &spec.redis_url,
        "--redis-prefix",
        &spec.redis_prefix,
    ]));
    let log = dir.join(format!("register-{host}-{generation}.log"));
    spawn(
        &format!("register {host}"),
        &args,
        "kefu register serving on",
        &log,
    )
}

/// The id of the test cluster's worker on `host`.
pub fn worker_id(host: &str) -> String {
    format!("worker-{host}")
}

/// The worker of the test cluster (on 127.0.0.4 and .5) that owns `user`'s
/// conversations while both are up.
pub fn owner_of(user: &str) -> String {
    let ring = kefu_register::Ring::new([worker_id("127.0.0.4"), worker_id("127.0.0.5")]);
    let shard = kefu_protocol::shard::of_user(user);
    ring.owner(shard).unwrap_or_default().to_owned()
}

pub fn worker(
    spec: &ClusterSpec,
    registers: &str,
    host: &str,
    dir: &Path,
    generation: u32,
) -> Proc {
    let mut args = strings(&[
        "worker",
        "--register",
        registers,
        "--listen",
        &format!("{host}:0"),
        // Named by host, so a test can tell which worker owns a shard.
        "--id",
        &worker_id(host),
    ]);
    args.extend(strings(&["--database-url", &spec.database_url]));
    args.extend(cluster_secret(spec));
    args.extend(strings(&[
        "--redis-url",
        &spec.redis_url,
        "--redis-prefix",
        &spec.redis_prefix,
    ]));
    args.extend(spec.args.iter().cloned());
    let log = dir.join(format!("worker-{host}-{generation}.log"));
    spawn(&format!("worker {host}"), &args, "kefu worker", &log)
}

pub fn gateway(
    spec: &ClusterSpec,
    registers: &str,
    host: &str,
    dir: &Path,
    generation: u32,
) -> Proc {
    let mut args = strings(&[
        "gateway",
        "--register",
        registers,
        "--listen",
        &format!("{host}:0"),
    ]);
    args.extend(strings(&["--secret", &spec.secret]));
    args.extend(strings(&["--internal-listen", &format!("{host}:0")]));
    args.extend(cluster_secret(spec));
    args.extend(spec.args.iter().cloned());
    let log = dir.join(format!("gateway-{host}-{generation}.log"));
    spawn(&format!("gateway {host}"), &args, "kefu serving on", &log)
}

/// The whole cluster: registers first (the others need their addresses),
/// then workers, then gateways once some worker has joined.
pub fn start(spec: &ClusterSpec, dir: &Path, generation: u32) -> Vec<Proc> {
    let registers = vec![
        register(spec, "127.0.0.2", dir, generation),
        register(spec, "127.0.0.3", dir, generation),
    ];
    let urls = registers
        .iter()
        .map(|r| format!("http://{}", r.addr))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = registers;
    procs.push(worker(spec, &urls, "127.0.0.4", dir, generation));
    procs.push(worker(spec, &urls, "127.0.0.5", dir, generation));
    procs.push(gateway(spec, &urls, "127.0.0.6", dir, generation));
    procs.push(gateway(spec, &urls, "127.0.0.7", dir, generation));
    procs
}

/// The register URLs of a running cluster, for starting more members.
pub fn register_urls(procs: &[Proc]) -> String {
    procs
        .iter()
        .filter(|p| p.name.starts_with("register"))
        .map(|p| format!("http://{}", p.addr))
        .collect::<Vec<_>>()
        .join(",")
}

/// A Redis of a test's own, to restart empty under a running cluster.
pub struct Redis {
    child: Option<Child>,
    host: String,
    port: u16,
}

impl Redis {
    pub fn start(host: &str) -> Redis {
        let port = std::net::TcpListener::bind((host, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut redis = Redis {
            child: None,
            host: host.to_owned(),
            port,
        };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://{}:{}", self.host, self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", &self.host, "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + STARTUP;
        while std::net::TcpStream::connect((self.host.as_str(), self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, then a fresh, empty Redis on the same port.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGKILL: an outage, until [`Redis::start_empty`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A fresh, empty Redis on the same port, after [`Redis::kill`].
    pub fn start_empty(&mut self) {
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
