//! A `kefu serve` child process: started on port 0 in its own data dir, killed
//! (and waited for) when the handle drops.

use super::backend::{unique_hex, Backend, TempDir};
use super::client::Client;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `RUST_BACKTRACE` for the server: off, so that a panic's message stays in
/// the printed log tail, unless `KEFU_TEST_SERVER_BACKTRACE` asks for one.
fn server_backtrace() -> String {
    std::env::var("KEFU_TEST_SERVER_BACKTRACE").unwrap_or_else(|_| "0".into())
}

/// The binary under test.
pub const KEFU: &str = env!("CARGO_BIN_EXE_kefu");

/// How long `kefu serve` may take to print its serving line.
const STARTUP: Duration = Duration::from_secs(30);

/// `token` with one character of its signature changed.
pub fn forged(token: &str) -> String {
    let sig_start = token.rfind('.').expect("a JWT has three parts") + 1;
    // A middle character: all six of its bits belong to the signature.
    let at = sig_start + 5;
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("a token is ASCII")
}

/// Options for one `kefu serve`.
pub struct ServerBuilder {
    backend: Backend,
    args: Vec<String>,
    env: Vec<(String, String)>,
    with_secret: bool,
}

impl ServerBuilder {
    pub fn on(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Any `kefu serve` option, e.g. `arg("--idle-timeout", "2s")`.
    pub fn arg(mut self, name: &str, value: &str) -> Self {
        self.args.push(name.to_owned());
        self.args.push(value.to_owned());
        self
    }

    /// An environment variable for the process, e.g. `KEFU_IDLE_TIMEOUT`.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn idle_timeout(self, duration: &str) -> Self {
        self.arg("--idle-timeout", duration)
    }

    pub fn revoke_window(self, duration: &str) -> Self {
        self.arg("--revoke-window", duration)
    }

    pub fn max_tasks_per_agent(self, n: u32) -> Self {
        self.arg("--max-tasks-per-agent", &n.to_string())
    }

    pub fn max_frame_bytes(self, n: usize) -> Self {
        self.arg("--max-frame-bytes", &n.to_string())
    }

    pub fn max_upload_bytes(self, n: usize) -> Self {
        self.arg("--max-upload-bytes", &n.to_string())
    }

    /// Starts without `--secret`: the server generates one into its data dir,
    /// and tokens are minted with `--data-dir`.
    pub fn without_secret(mut self) -> Self {
        self.with_secret = false;
        self
    }

    pub async fn start(self) -> Server {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("build an HTTP client");
        let redis = match &self.backend {
            Backend::Cluster { redis, .. } => Some(redis.clone()),
            _ => None,
        };
        let mut server = Server {
            dir: TempDir::new(),
            // A cluster's gateways always take --secret.
            secret: (self.with_secret || redis.is_some())
                .then(|| format!("secret-{}{}", unique_hex(), unique_hex())),
            database_url: self.backend.fresh_database_url(),
            redis,
            redis_prefix: format!("kefu-test-{}:", unique_hex()),
            procs: Vec::new(),
            next_gateway: std::sync::atomic::AtomicUsize::new(0),
            args: self.args,
            env: self.env,
            child: None,
            addr: String::new(),
            generation: 0,
            http,
        };
        server.spawn();
        server
    }
}

/// A running `kefu serve`.
pub struct Server {
    dir: TempDir,
    secret: Option<String>,
    database_url: Option<String>,
    /// Set for a cluster: its processes, and the Redis its registers share.
    redis: Option<String>,
    redis_prefix: String,
    procs: Vec<super::cluster::Proc>,
    next_gateway: std::sync::atomic::AtomicUsize,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    addr: String,
    generation: u32,
    pub(super) http: reqwest::Client,
}

impl Server {
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            backend: Backend::Sqlite,
            args: Vec::new(),
            env: Vec::new(),
            with_secret: true,
        }
    }

    /// A server with default options on SQLite.
    pub async fn start() -> Server {
        Server::builder().start().await
    }

    /// A server with default options on `backend`.
    pub async fn start_on(backend: Backend) -> Server {
        Server::builder().on(backend).start().await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.next_addr())
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.next_addr())
    }

    /// The socket address of (one of) the server's client ports, for tests
    /// that speak TCP below HTTP.
    pub fn socket_addr(&self) -> std::net::SocketAddr {
        self.next_addr().parse().expect("a socket address")
    }

    /// The server's address; for a cluster, its gateways in turn, so one
    /// user's devices land on different gateways.
    fn next_addr(&self) -> String {
        let gateways: Vec<&str> = self
            .procs
            .iter()
            .filter(|p| p.name.starts_with("gateway") && p.child.is_some())
            .map(|p| p.addr.as_str())
            .collect();
        if gateways.is_empty() {
            return self.addr.clone();
        }
        let n = self
            .next_gateway
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        gateways[n % gateways.len()].to_owned()
    }

    /// Whether this is a cluster rather than one `kefu serve`.
    pub fn is_cluster(&self) -> bool {
        self.redis.is_some()
    }

    /// A cluster's processes (registers, workers, gateways).
    pub fn procs(&mut self) -> &mut Vec<super::cluster::Proc> {
        &mut self.procs
    }

    fn cluster_spec(&self) -> Option<super::cluster::ClusterSpec> {
        Some(super::cluster::ClusterSpec {
            database_url: self.database_url.clone()?,
            redis_url: self.redis.clone()?,
            redis_prefix: self.redis_prefix.clone(),
            secret: self.secret.clone()?,
            args: self.args.clone(),
        })
    }

    /// The token secret, when the test chose it.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("serve-{}.log", self.generation))
    }

    fn spawn(&mut self) {
        self.generation += 1;
        if let Some(spec) = self.cluster_spec() {
            self.procs = super::cluster::start(&spec, self.dir.path(), self.generation);
            self.addr = self.next_addr();
            return;
        }
        let log = std::fs::File::create(self.log_path()).expect("create the server log");
        let mut cmd = Command::new(KEFU);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(self.dir.path());
        if let Some(secret) = &self.secret {
            cmd.args(["--secret", secret]);
        }
        if let Some(url) = &self.database_url {
            cmd.args(["--database-url", url]);
        }
        cmd.args(&self.args)
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", server_backtrace())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd.spawn().expect("spawn kefu serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps draining stdout after the serving line, so the child never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.trim().strip_prefix("kefu serving on http://") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.trim_end_matches('/').to_owned());
                    }
                }
            }
        });
        match rx.recv_timeout(STARTUP) {
            Ok(addr) => {
                self.addr = addr;
                self.child = Some(child);
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "kefu serve did not print `kefu serving on http://...` within {STARTUP:?} \
                     (exit: {status:?}); its log:\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// Any panics of the current process, then the last lines it wrote to
    /// stderr.
    pub fn log_tail(&self) -> String {
        if self.is_cluster() {
            let mut out = String::new();
            for entry in std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    out.push_str(&format!("== {} ==\n", path.display()));
                    out.push_str(&lines[lines.len().saturating_sub(15)..].join("\n"));
                    out.push('\n');
                }
            }
            return out;
        }
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let mut tail: Vec<&str> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if line.contains("panicked at") {
                tail.extend(lines.iter().skip(i).take(2));
            }
        }
        tail.extend(&lines[lines.len().saturating_sub(40)..]);
        tail.join("\n")
    }

    pub fn pid(&self) -> u32 {
        if let Some(gateway) = self.procs.iter().find(|p| p.name.starts_with("gateway")) {
            return gateway.pid().expect("the gateway is running");
        }
        self.child.as_ref().expect("the server is running").id()
    }

    /// `kill -9`: no chance to drain anything.
    pub fn kill9(&mut self) {
        for p in &mut self.procs {
            p.kill9();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns at once; see [`Server::wait_exit`].
    pub fn sigterm(&self) {
        if self.is_cluster() {
            // Gateways first, as a rolling stop would.
            for p in self.procs.iter().rev() {
                p.sigterm();
            }
            return;
        }
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit by itself; `None` if it did not within
    /// `timeout` (it is then killed).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.is_cluster() {
            let deadline = Instant::now() + timeout;
            let mut worst = None;
            for p in &mut self.procs {
                let Some(mut child) = p.child.take() else {
                    continue;
                };
                let status = loop {
                    if let Ok(Some(status)) = child.try_wait() {
                        break Some(status);
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                };
                match status {
                    None => return None,
                    Some(s) if !s.success() || worst.is_none() => worst = Some(s),
                    Some(_) => {}
                }
            }
            return worst;
        }
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a new process on the same data dir, database and options (on a
    /// new port). The old one must have been stopped.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    fn secret_args(&self) -> Vec<String> {
        match &self.secret {
            Some(secret) => vec!["--secret".into(), secret.clone()],
            None => vec!["--data-dir".into(), self.dir.path().display().to_string()],
        }
    }

    /// A token minted by `kefu token` with this server's secret.
    pub fn token(&self, user: &str, role: &str) -> String {
        self.token_with(user, role, &[])
    }

    /// A token with extra `kefu token` options, e.g. `&["--device", "phone"]`.
    pub fn token_with(&self, user: &str, role: &str, extra: &[&str]) -> String {
        let output = Command::new(KEFU)
            .args(["token", "--user", user, "--role", role])
            .args(self.secret_args())
            .args(extra)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run kefu token");
        assert!(
            output.status.success(),
            "kefu token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("a token is ASCII")
            .trim()
            .to_owned()
    }

    /// A token whose exp has passed (waits until it has).
    pub async fn expired_token(&self, user: &str, role: &str) -> String {
        let token = self.token_with(user, role, &["--ttl", "0s"]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        token
    }

    /// `kefu agent add`, the password fed on stdin with a trailing newline.
    pub fn add_agent(&self, id: &str, name: &str, password: &str) {
        let args = ["add", "--id", id, "--name", name, "--password-stdin"];
        let mut child = self
            .agent_command(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kefu agent add");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write the password");
        let output = child.wait_with_output().expect("wait for kefu agent add");
        assert!(
            output.status.success(),
            "kefu agent add failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `kefu agent SUBCOMMAND --id ID` on this server's database (disable,
    /// enable, sign-out), beside the running server.
    pub fn agent_tool(&self, subcommand: &str, id: &str) {
        let output = self
            .agent_command(&[subcommand, "--id", id])
            .output()
            .expect("run kefu agent");
        assert!(
            output.status.success(),
            "kefu agent {subcommand} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `kefu agent ARGS` on this server's database.
    fn agent_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(KEFU);
        cmd.arg("agent").args(args).env("RUST_LOG", "warn");
        match &self.database_url {
            Some(url) => cmd.args(["--database-url", url]),
            None => cmd.arg("--data-dir").arg(self.dir.path()),
        };
        cmd
    }

    /// A connection for `user` that confirms every push it sees.
    pub async fn connect_as(&self, user: &str, role: &str, device: &str) -> Client {
        let token = self.token_with(user, role, &["--device", device]);
        Client::connect(self, &token).await.confirming()
    }

    pub async fn customer(&self, id: &str) -> Client {
        self.connect_as(id, "customer", "pc").await
    }

    pub async fn customer_on(&self, id: &str, device: &str) -> Client {
        self.connect_as(id, "customer", device).await
    }

    pub async fn agent(&self, id: &str) -> Client {
        self.connect_as(id, "agent", "pc").await
    }

    pub async fn agent_on(&self, id: &str, device: &str) -> Client {
        self.connect_as(id, "agent", device).await
    }

    pub fn admin_token(&self) -> String {
        self.token("admin-1", "admin")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for p in &mut self.procs {
            p.kill9();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let (Some(url), false) = (&self.database_url, std::thread::panicking()) {
            super::backend::drop_database(url);
        }
        if let Some(url) = &self.redis {
            if let Err(e) = kefu_register::redis::delete_prefix(url, &self.redis_prefix) {
                eprintln!(
                    "could not delete the test's Redis keys {}*: {e}",
                    self.redis_prefix
                );
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "---- kefu serve stderr (last lines of {}) ----\n{}",
                self.log_path().display(),
                self.log_tail()
            );
        }
    }
}
