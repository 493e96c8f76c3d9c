//! Every command and option; each option also reads `KEFU_<OPTION>`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kefu",
    version,
    about = "Kefu: a customer-service messaging system"
)]
pub struct Cli {
    /// A TOML file of options (`listen = "..."`, `database_url = "..."`);
    /// environment variables and flags win over it.
    #[arg(long, env = "KEFU_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Log lines as plain text (coloured only on a terminal) or as JSON
    /// objects, one per line, for log collectors.
    #[arg(long, env = "KEFU_LOG_FORMAT", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Threads that run this process's network and business work (default:
    /// one per core). Fewer suit a container's processor limit or roles
    /// that share a machine (docs/operations.md, "Threads").
    #[arg(long, env = "KEFU_THREADS", global = true, value_parser = thread_count)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--threads`: a whole number of at least one.
fn thread_count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("at least 1 thread is needed (leave it unset for one per core)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number of threads, such as 1 or 4".into()),
    }
}

/// The options of a `--config` file. They become the defaults of the
/// command's arguments, so clap ranks them below the environment and the
/// flags: flag > `KEFU_<OPTION>` > file > built-in default. Nothing is
/// written into the process's environment.
#[derive(Default)]
pub struct ConfigFile {
    pub path: Option<String>,
    /// `(long option name, key as written, values)` for every key.
    values: Vec<(String, String, Vec<String>)>,
}

/// Reads `--config FILE` (or `KEFU_CONFIG`) before clap parses the rest.
/// A key that no command takes is an error naming the nearest one that
/// exists.
pub fn load_config_file(args: &[String]) -> anyhow::Result<ConfigFile> {
    let from_flag = args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--config=").map(str::to_owned).or_else(|| {
            (a == "--config")
                .then(|| args.get(i + 1).cloned())
                .flatten()
        })
    });
    let Some(path) = from_flag.or_else(|| std::env::var("KEFU_CONFIG").ok()) else {
        return Ok(ConfigFile::default());
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
    ConfigFile::parse(path, &text)
}

impl ConfigFile {
    /// The file `path` holding `text`.
    fn parse(path: String, text: &str) -> anyhow::Result<ConfigFile> {
        let table: toml::Table = text
            .parse()
            .map_err(|e| anyhow::anyhow!("parsing {path}: {e}"))?;
        let known = option_names();
        let mut values = Vec::new();
        for (key, value) in table {
            let name = key.replace('_', "-");
            if !known.contains(&name) {
                let nearest = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(k, &name), k))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .filter(|(score, _)| *score > 0.8)
                    .map(|(_, k)| format!("; did you mean {:?}?", k.replace('-', "_")))
                    .unwrap_or_default();
                anyhow::bail!("{path}: unknown key {key:?}{nearest}");
            }
            let text = |v: toml::Value| match v {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            let items = match value {
                toml::Value::Array(items) => items.into_iter().map(text).collect(),
                one => vec![text(one)],
            };
            values.push((name, key, items));
        }
        Ok(ConfigFile {
            path: Some(path),
            values,
        })
    }

    /// The command line parser, with this file's values as the defaults of
    /// the options they name, in every command that has them.
    pub fn command(&self) -> clap::Command {
        self.with_defaults(<Cli as clap::CommandFactory>::command())
    }

    fn with_defaults(&self, mut cmd: clap::Command) -> clap::Command {
        let given: Vec<(clap::Id, Vec<String>)> = cmd
            .get_arguments()
            .filter_map(|arg| {
                let long = arg.get_long()?;
                let (_, _, values) = self.values.iter().find(|(name, _, _)| name == long)?;
                Some((arg.get_id().clone(), values.clone()))
            })
            .collect();
        for (id, values) in given {
            // clap checks a required option against the command line and
            // the environment only; the file's value fills it as well.
            cmd = cmd.mut_arg(id, |arg| arg.default_values(values).required(false));
        }
        let subcommands: Vec<String> = cmd
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .collect();
        for name in subcommands {
            cmd = cmd.mut_subcommand(name, |sub| self.with_defaults(sub));
        }
        cmd
    }

    /// A clap error, with a line saying where a bad value came from when it
    /// was not on the command line: the environment or this file.
    pub fn explain(&self, error: &clap::Error, args: &[String]) -> Option<String> {
        use clap::error::{ContextKind, ContextValue};
        let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
            return None;
        };
        let long = arg.split_whitespace().next()?.strip_prefix("--")?;
        let flag = format!("--{long}");
        if args
            .iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        {
            return None;
        }
        let var = format!("KEFU_{}", long.to_uppercase().replace('-', "_"));
        if let Ok(value) = std::env::var(&var) {
            return Some(format!(
                "the value came from the environment: {var}={value}"
            ));
        }
        let (_, key, values) = self.values.iter().find(|(name, _, _)| name == long)?;
        Some(format!(
            "the value {:?} came from key {key:?} of {}",
            values.join(","),
            self.path.as_deref().unwrap_or("the config file")
        ))
    }
}

/// The long name of every option of every command, as `idle-timeout`.
fn option_names() -> std::collections::BTreeSet<String> {
    fn walk(cmd: &clap::Command, names: &mut std::collections::BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                names.insert(long.to_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, names);
        }
    }
    let mut names = std::collections::BTreeSet::new();
    walk(&<Cli as clap::CommandFactory>::command(), &mut names);
    names.remove("help");
    names.remove("version");
    names.remove("config");
    names
}

/// Takes out of `args` the options of other commands that the command
/// being run does not use (`kefu gateway --max-tasks-per-agent 2`), so that
/// one set of options can be given to every role of a cluster, as scripts
/// and test harnesses do; returns a warning for each. `--help` still lists
/// only the command's own options.
pub fn strip_foreign_options(args: &mut Vec<String>) -> Vec<String> {
    let cli = <Cli as clap::CommandFactory>::command();
    let Some((position, command)) = args
        .iter()
        .enumerate()
        .skip(1)
        .find_map(|(i, a)| cli.find_subcommand(a).map(|c| (i, c.clone())))
    else {
        return Vec::new();
    };
    // Commands with subcommands of their own (agent, bench) are left alone.
    if command.has_subcommands() {
        return Vec::new();
    }
    let own: std::collections::HashSet<&str> = command
        .get_arguments()
        .chain(cli.get_arguments())
        .filter_map(|a| a.get_long())
        .collect();
    let mut foreign: std::collections::BTreeMap<String, (bool, Vec<String>)> = Default::default();
    for other in cli.get_subcommands() {
        for arg in other.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if own.contains(long) {
                continue;
            }
            let entry = foreign
                .entry(long.to_owned())
                .or_insert((arg.get_action().takes_values(), Vec::new()));
            entry.1.push(other.get_name().to_owned());
        }
    }
    let mut warnings = Vec::new();
    let mut i = position + 1;
    while i < args.len() {
        let Some(name) = args[i].strip_prefix("--") else {
            i += 1;
            continue;
        };
        let (long, inline_value) = match name.split_once('=') {
            Some((long, _)) => (long, true),
            None => (name, false),
        };
        match foreign.get(long) {
            Some((takes_value, users)) => {
                warnings.push(format!(
                    "{} does not use --{long} (an option of {}); ignored",
                    command.get_name(),
                    users.join(", ")
                ));
                let values = usize::from(*takes_value && !inline_value && i + 1 < args.len());
                args.drain(i..=i + values);
            }
            None => i += 1,
        }
    }
    warnings
}

#[derive(Subcommand)]
pub enum Command {
    /// Everything in one process: gateway, worker and register, on the
    /// embedded SQLite unless --database-url names another database.
    Serve(ServeOptions),
    /// Creates or upgrades the database schema.
    Migrate(MigrateOptions),
    /// The register service: membership and client locations (gRPC).
    Register(RegisterOptions),
    /// A business worker (gRPC).
    Worker(WorkerOptions),
    /// A gateway: WebSocket and HTTP for clients.
    Gateway(GatewayOptions),
    /// Prints a signed client token.
    Token(TokenOptions),
    /// Manages agent accounts.
    Agent(AgentOptions),
    /// The load generator; gateways are its target.
    #[cfg(feature = "bench")]
    Bench(kefu_bench::BenchOptions),
}

/// `10.0.0.0/8`, or one address as a range of one.
fn ip_range(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is neither an IP address nor a CIDR range"))
}

pub use kefu_protocol::duration::parse as duration;

/// The smallest secret accepted without a warning: 32 bytes, as
/// `openssl rand -hex 32` makes (64 characters).
pub const SECRET_MIN_BYTES: usize = 32;

/// Checks a secret given as `flag`: an empty one is refused, a short one
/// (guessable by brute force) is accepted with a warning, since tests and
/// first tries use short ones.
pub fn checked_secret(secret: &str, flag: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        !secret.is_empty(),
        "{flag} is empty; make a secret with `openssl rand -hex 32`"
    );
    warn_if_short(secret, flag);
    Ok(secret.as_bytes().to_vec())
}

/// A warning for a secret under [`SECRET_MIN_BYTES`].
fn warn_if_short(secret: &str, flag: &str) {
    if secret.len() < SECRET_MIN_BYTES {
        tracing::warn!(
            "{flag} is {} bytes; a secret under {SECRET_MIN_BYTES} bytes can be guessed: make \
             one with `openssl rand -hex 32`",
            secret.len()
        );
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeOptions {
    /// Address for WebSocket and HTTP clients.
    #[arg(long, env = "KEFU_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: String,
    /// Where the embedded database and the generated secret live.
    #[arg(long, env = "KEFU_DATA_DIR", default_value = "./kefu-data")]
    pub data_dir: PathBuf,
    /// Token signing secret; generated once into the data dir when absent.
    #[arg(long, env = "KEFU_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Database instead of DATA_DIR/kefu.db (sqlite://, mysql://,
    /// mariadb://, postgres://).
    #[arg(long, env = "KEFU_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub gateway: GatewayTuning,
    #[command(flatten)]
    pub worker: WorkerTuning,
    #[command(flatten)]
    pub drain: DrainOptions,
    #[command(flatten)]
    pub web: WebOptions,
    #[command(flatten)]
    pub tls: TlsOptions,
    #[command(flatten)]
    pub client_limits: ClientLimitOptions,
}

/// How a gateway serves the web pages (`/widget.js`, `/chat`, `/agent`).
#[derive(Args, Debug, Clone)]
pub struct WebOptions {
    /// Serve the web pages from this folder (a `web/` build) instead of the
    /// copy inside the binary; for front-end work.
    #[arg(long, env = "KEFU_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Sites allowed to embed the chat widget, comma-separated origins
    /// (https://shop.example.com, https://*.example.com). Unset: any site.
    #[arg(long, env = "KEFU_WIDGET_ORIGINS", value_delimiter = ',')]
    pub widget_origins: Vec<String>,
    /// Where clients reach this server (https://chat.example.com), for the
    /// URLs of uploads. Unset: each request's Host and X-Forwarded-Proto.
    #[arg(long, env = "KEFU_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Other sites whose pages may call the API (CORS) and open WebSockets,
    /// comma-separated origins (https://shop.example.com,
    /// https://*.example.com). Unset: the API answers this server's own
    /// pages only, and any page may open a WebSocket (a token is needed).
    #[arg(long, env = "KEFU_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
}

impl WebOptions {
    /// `--public-url`, checked: an http(s) origin with no path.
    pub fn public_url(&self) -> anyhow::Result<Option<String>> {
        let Some(url) = &self.public_url else {
            return Ok(None);
        };
        let url = url.trim_end_matches('/');
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let plain = rest.is_some_and(|r| {
            !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
        anyhow::ensure!(
            plain,
            "--public-url {url:?} is not an origin like https://chat.example.com"
        );
        Ok(Some(url.to_owned()))
    }

    /// `--allowed-origins`, checked; None when unset.
    pub fn allowed_origins(&self) -> anyhow::Result<Option<kefu_web::policy::Origins>> {
        if self.allowed_origins.is_empty() {
            return Ok(None);
        }
        let origins = kefu_web::policy::Origins::new(&self.allowed_origins)
            .map_err(|e| anyhow::anyhow!("--allowed-origins: {e}"))?;
        Ok(Some(origins))
    }

    pub fn pages(&self) -> anyhow::Result<kefu_web::Pages> {
        kefu_web::Pages::new(kefu_web::WebConfig {
            dir: self.web_dir.clone(),
            widget_origins: self.widget_origins.clone(),
        })
        .map_err(|e| anyhow::anyhow!("--widget-origins: {e}"))
    }
}

/// HTTPS and WSS served by the process itself, for deployments without a
/// proxy in front (`serve` and `gateway`).
#[derive(Args, Debug, Clone)]
pub struct TlsOptions {
    /// Serve HTTPS and WSS with this certificate chain (PEM); read again on
    /// SIGHUP. Needs --tls-key.
    #[arg(long, env = "KEFU_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM); read again on SIGHUP.
    #[arg(long, env = "KEFU_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsOptions {
    /// The certificate, loaded and reloaded on SIGHUP; None without one.
    pub fn load(
        &self,
        gateway: &kefu_lifecycle::Lifecycle,
    ) -> anyhow::Result<Option<std::sync::Arc<kefu_gateway::tls::Tls>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let tls = kefu_gateway::tls::Tls::load(cert, key).map_err(anyhow::Error::msg)?;
        tls.reload_on_sighup(gateway);
        Ok(Some(tls))
    }
}

/// Limits on what anyone may do without an account, per client address.
#[derive(Args, Debug, Clone)]
pub struct ClientLimitOptions {
    /// Anonymous visitors one client address may create per minute (0: no
    /// limit); more get 429 with Retry-After.
    #[arg(long, env = "KEFU_VISITORS_PER_MINUTE", default_value_t = 60)]
    pub visitors_per_minute: u32,
    /// Login attempts one client address may make per minute (0: no limit).
    #[arg(long, env = "KEFU_LOGINS_PER_MINUTE", default_value_t = 20)]
    pub logins_per_minute: u32,
    /// Wrong passwords in a row after which an account is locked: 30 s,
    /// doubling with each further failure up to 15 min.
    #[arg(long, env = "KEFU_LOGIN_FAILURES", default_value_t = 5)]
    pub login_failures: u32,
    /// Open connections one client address may hold (0: no limit); more
    /// are closed at once. Trusted proxies are not limited.
    #[arg(long, env = "KEFU_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Apply --max-connections-per-ip to loopback clients too (by default
    /// a local proxy and local tools are not capped).
    #[arg(long, env = "KEFU_LIMIT_LOOPBACK")]
    pub limit_loopback: bool,
    /// WebSocket connections one user may hold on a gateway (0: no limit);
    /// a further one gets an error ack and close code 4429.
    #[arg(long, env = "KEFU_MAX_DEVICES_PER_USER", default_value_t = 10)]
    pub max_devices_per_user: usize,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose
    /// X-Forwarded-For names the client; others are the client themselves.
    #[arg(long, env = "KEFU_TRUSTED_PROXIES", value_delimiter = ',', value_parser = ip_range)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ClientLimitOptions {
    /// Sets these limits on a gateway's configuration.
    pub fn apply(&self, config: &mut kefu_gateway::GatewayConfig) {
        config.client_limits = kefu_gateway::LimitsConfig {
            visitors_per_minute: self.visitors_per_minute,
            logins_per_minute: self.logins_per_minute,
            login_failures: self.login_failures,
            trusted_proxies: self.trusted_proxies.clone(),
        };
        config.server.max_connections_per_ip = self.max_connections_per_ip;
        config.server.limit_loopback = self.limit_loopback;
        config.max_devices_per_user = self.max_devices_per_user;
        config.server.trusted_proxies = self.trusted_proxies.clone();
    }
}

/// A gateway's limits and timeouts (`serve` and `gateway`).
#[derive(Args, Debug, Clone)]
pub struct GatewayTuning {
    /// Close connections silent for this long.
    #[arg(long, env = "KEFU_IDLE_TIMEOUT", value_parser = duration, default_value = "60s")]
    pub idle_timeout: Duration,
    /// A connection without ?token= must send its auth frame within this,
    /// or is closed with 4401.
    #[arg(long, env = "KEFU_AUTH_TIMEOUT", value_parser = duration, default_value = "10s")]
    pub auth_timeout: Duration,
    /// A push its device has not confirmed is pushed again this long
    /// after, then after waits doubling up to 60 s.
    #[arg(long, env = "KEFU_RETRANSMIT_AFTER", value_parser = duration, default_value = "5s")]
    pub retransmit_after: Duration,
    /// Largest WebSocket text frame, in bytes.
    #[arg(long, env = "KEFU_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,
    /// Frames one connection may send per second on average (twice that at
    /// once); more are refused with `rate_limited`. 0: no limit.
    #[arg(long, env = "KEFU_MAX_FRAMES_PER_SECOND", default_value_t = 500.0)]
    pub max_frames_per_second: f64,
    /// Message ids one connection may confirm per second with `receive`
    /// (twice that at once); more are refused with `rate_limited`. 0: no limit.
    #[arg(long, env = "KEFU_MAX_RECEIPTS_PER_SECOND", default_value_t = 2000.0)]
    pub max_receipts_per_second: f64,
    /// Largest upload, in bytes.
    #[arg(long, env = "KEFU_MAX_UPLOAD_BYTES", default_value_t = 20 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Uploads received at once (each is held in memory until stored; 0:
    /// no limit); more get 429 with Retry-After.
    #[arg(long, env = "KEFU_MAX_CONCURRENT_UPLOADS", default_value_t = 8)]
    pub max_concurrent_uploads: usize,
    /// Frames queued for one client connection; a client that falls this
    /// far behind is closed with 1013 and catches up from /api/offline.
    #[arg(long, env = "KEFU_SEND_QUEUE", default_value_t = 1024)]
    pub send_queue: usize,
    /// A write to a client socket that takes longer closes it (a WebSocket
    /// with 1013).
    #[arg(long, env = "KEFU_WRITE_TIMEOUT", value_parser = duration, default_value = "10s")]
    pub write_timeout: Duration,
    /// A connection must send its request headers within this.
    #[arg(long, env = "KEFU_HEADER_TIMEOUT", value_parser = duration, default_value = "10s")]
    pub header_timeout: Duration,
    /// A request body that sends nothing for this long fails the request.
    #[arg(long, env = "KEFU_BODY_TIMEOUT", value_parser = duration, default_value = "30s")]
    pub body_timeout: Duration,
    /// Lifetime of the access tokens that /api/visitor, /api/login and
    /// /api/refresh hand out.
    #[arg(long, env = "KEFU_TOKEN_TTL", value_parser = duration, default_value = "1h")]
    pub token_ttl: Duration,
    /// Lifetime of their refresh tokens, renewed at each refresh: a visitor
    /// or agent away for longer starts again (a new visitor, a new login).
    #[arg(long, env = "KEFU_REFRESH_TTL", value_parser = duration, default_value = "30d")]
    pub refresh_ttl: Duration,
}

/// A worker's business rules (`serve` and `worker`).
#[derive(Args, Debug, Clone)]
pub struct WorkerTuning {
    /// How long a sender may revoke a message.
    #[arg(long, env = "KEFU_REVOKE_WINDOW", value_parser = duration, default_value = "120s")]
    pub revoke_window: Duration,
    /// Open tasks an agent holds before new customers wait.
    #[arg(long, env = "KEFU_MAX_TASKS_PER_AGENT", default_value_t = 10)]
    pub max_tasks_per_agent: i64,
    /// An agent with no connection for this long loses their open tasks
    /// to the front of the queue; both sides are told. 0: never.
    #[arg(long, env = "KEFU_REASSIGN_OFFLINE_AFTER", value_parser = duration, default_value = "5m")]
    pub reassign_offline_after: Duration,
    /// An open task whose customer's message has waited this long for an
    /// answer goes back to the front of the queue, to another agent if one
    /// has room; both sides are told. 0: never.
    #[arg(long, env = "KEFU_REASSIGN_UNANSWERED_AFTER", value_parser = duration, default_value = "0s")]
    pub reassign_unanswered_after: Duration,
    /// A waiting customer with no connection for this long leaves the queue
    /// (their task ends; writing again opens a new one). 0: never.
    #[arg(long, env = "KEFU_QUEUE_ABANDON_AFTER", value_parser = duration, default_value = "10m")]
    pub queue_abandon_after: Duration,
    /// Waiting customers one client address may have at once (0: no
    /// limit); a further first message gets `rate_limited`. Loopback is not
    /// limited unless --limit-loopback.
    #[arg(long, env = "KEFU_MAX_WAITING_PER_IP", default_value_t = 20)]
    pub max_waiting_per_ip: u64,
    /// Bytes one user may upload in 24 hours (0: no limit); more get 429.
    #[arg(long, env = "KEFU_UPLOAD_QUOTA", default_value_t = 1 << 30)]
    pub upload_quota: u64,
    /// Uploads older than this are deleted (0: kept for ever).
    #[arg(long, env = "KEFU_FILE_RETENTION", value_parser = duration, default_value = "0")]
    pub file_retention: Duration,
    /// SQLite only: `full` syncs every commit to disk, so an acknowledged
    /// message survives a power loss too; `normal` survives a crash of the
    /// process (kill -9) and commits faster, and a crash of the machine
    /// loses at most about the last 50 ms of messages (the WAL is synced
    /// every 50 ms).
    #[arg(long, env = "KEFU_SQLITE_SYNC", default_value = "full", value_parser = ["full", "normal"])]
    pub sqlite_sync: String,
    /// Frames queued for one of the worker's 32 lanes (each a share of the
    /// conversations, handled in order); when a lane falls this far behind
    /// its senders wait: under `serve` their connections stop reading
    /// their sockets, in a cluster the worker stops reading the gateways'
    /// frame streams and their --worker-queue fills.
    #[arg(long, env = "KEFU_LANE_QUEUE", default_value_t = kefu_worker::lane::LANE_QUEUE)]
    pub lane_queue: usize,
}

/// How long a stopping process waits (`serve`, `worker`, `gateway`).
#[derive(Args, Debug, Clone)]
pub struct DrainOptions {
    /// How long to wait for in-flight work on SIGTERM.
    #[arg(long, env = "KEFU_DRAIN_TIMEOUT", value_parser = duration, default_value = "10s")]
    pub drain_timeout: Duration,
}

/// Options every cluster process shares.
#[derive(Args, Debug, Clone)]
pub struct ClusterOptions {
    /// Secret on internal gRPC calls, the same on every register, worker and
    /// gateway; calls without it are refused. Required when an internal
    /// port listens beyond loopback. Make one with `openssl rand -hex 32`.
    #[arg(long, env = "KEFU_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// Run without --cluster-secret on purpose, on a network you trust:
    /// anyone who reaches an internal port can push messages to clients.
    #[arg(long, env = "KEFU_INSECURE_NO_CLUSTER_SECRET")]
    pub insecure_no_cluster_secret: bool,
}

impl ClusterOptions {
    /// The cluster secret, given the address this process's internal gRPC
    /// listens on. Without a secret, an internal port other machines can
    /// reach is refused (unless `--insecure-no-cluster-secret`); one on
    /// loopback, as a cluster on one machine or a test has, is a warning.
    pub fn secret(&self, internal: std::net::SocketAddr) -> anyhow::Result<Option<String>> {
        match self.cluster_secret.as_deref() {
            Some(s) => {
                checked_secret(s, "--cluster-secret")?;
                Ok(Some(s.to_owned()))
            }
            None if self.insecure_no_cluster_secret => Ok(None),
            None if internal.ip().is_loopback() => {
                tracing::warn!(
                    "no --cluster-secret: internal gRPC on {internal} is not authenticated, so \
                     any local process can push messages to clients; set the same \
                     --cluster-secret (make one with `openssl rand -hex 32`) on every process"
                );
                Ok(None)
            }
            None => anyhow::bail!(
                "no --cluster-secret, and internal gRPC listens on {internal}, which other \
                 machines can reach: anyone there could push messages to clients. Set the \
                 same --cluster-secret (make one with `openssl rand -hex 32`) on every \
                 register, worker and gateway, or pass --insecure-no-cluster-secret on a \
                 network you trust"
            ),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct RegisterOptions {
    /// gRPC address.
    #[arg(long, env = "KEFU_LISTEN", default_value = "0.0.0.0:7000")]
    pub listen: String,
    /// Share state with other register replicas through this Redis.
    #[arg(long, env = "KEFU_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so clusters can share one Redis.
    #[arg(long, env = "KEFU_REDIS_PREFIX", default_value = "kefu:")]
    pub redis_prefix: String,
    #[command(flatten)]
    pub cluster: ClusterOptions,
}

#[derive(Args, Debug, Clone)]
pub struct WorkerOptions {
    /// Register address(es), comma-separated: http://host:7000,http://host2:7000
    #[arg(long, env = "KEFU_REGISTER", value_delimiter = ',', required = true)]
    pub register: Vec<String>,
    /// gRPC address.
    #[arg(long, env = "KEFU_LISTEN", default_value = "0.0.0.0:7100")]
    pub listen: String,
    /// Address other processes reach this one at (default: --listen).
    #[arg(long, env = "KEFU_ADVERTISE")]
    pub advertise: Option<String>,
    /// Unique worker id (default: worker-ADVERTISED_ADDRESS-START_MS).
    #[arg(long, env = "KEFU_ID")]
    pub id: Option<String>,
    /// Pushes queued for one gateway; past that they are dropped (the
    /// messages stay stored and reach their clients from /api/offline or
    /// the retransmission), so one stuck gateway cannot stall the worker.
    #[arg(long, env = "KEFU_GATEWAY_QUEUE", default_value_t = kefu_worker::gateways::GATEWAY_QUEUE)]
    pub gateway_queue: usize,
    /// The database (mysql://, mariadb://, postgres://, sqlite://); the
    /// worker creates or upgrades its schema at start.
    #[arg(long, env = "KEFU_DATABASE_URL")]
    pub database_url: String,
    /// Read client locations straight from the register's Redis.
    #[arg(long, env = "KEFU_REDIS_URL")]
    pub redis_url: Option<String>,
    /// The register's Redis key prefix.
    #[arg(long, env = "KEFU_REDIS_PREFIX", default_value = "kefu:")]
    pub redis_prefix: String,
    #[command(flatten)]
    pub cluster: ClusterOptions,
    #[command(flatten)]
    pub tuning: WorkerTuning,
    #[command(flatten)]
    pub drain: DrainOptions,
}

#[derive(Args, Debug, Clone)]
pub struct GatewayOptions {
    /// Register address(es), comma-separated.
    #[arg(long, env = "KEFU_REGISTER", value_delimiter = ',', required = true)]
    pub register: Vec<String>,
    /// Address for clients: WebSocket, HTTP API and web pages.
    #[arg(long, env = "KEFU_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: String,
    /// Address for workers' pushes (gRPC), never the clients' port: keep it
    /// on the cluster's private network (e.g. 10.0.0.31:7200).
    /// Default: --listen's host with a port the system picks.
    #[arg(long, env = "KEFU_INTERNAL_LISTEN")]
    pub internal_listen: Option<String>,
    /// Address workers reach this gateway's --internal-listen at (default:
    /// the bound --internal-listen address).
    #[arg(long, env = "KEFU_ADVERTISE")]
    pub advertise: Option<String>,
    /// Unique gateway id (default: gateway-ADVERTISED_ADDRESS-START_MS).
    #[arg(long, env = "KEFU_ID")]
    pub id: Option<String>,
    /// Frames queued for one worker; when a worker falls this far behind,
    /// the connections sending to it wait (and stop reading their sockets).
    #[arg(long, env = "KEFU_WORKER_QUEUE", default_value_t = kefu_gateway::workers::WORKER_QUEUE)]
    pub worker_queue: usize,
    /// Token signing secret, shared with the operator's backend.
    #[arg(long, env = "KEFU_SECRET", hide_env_values = true)]
    pub secret: String,
    #[command(flatten)]
    pub cluster: ClusterOptions,
    #[command(flatten)]
    pub tuning: GatewayTuning,
    #[command(flatten)]
    pub drain: DrainOptions,
    #[command(flatten)]
    pub web: WebOptions,
    #[command(flatten)]
    pub tls: TlsOptions,
    #[command(flatten)]
    pub client_limits: ClientLimitOptions,
}

impl GatewayTuning {
    /// A gateway's limits and timeouts from these options.
    pub fn gateway_config(&self, id: String, secret: Vec<u8>) -> kefu_gateway::GatewayConfig {
        kefu_gateway::GatewayConfig {
            id,
            secret,
            idle_timeout: self.idle_timeout,
            auth_timeout: self.auth_timeout,
            retransmit_after: self.retransmit_after,
            max_frame_bytes: self.max_frame_bytes,
            max_upload_bytes: self.max_upload_bytes,
            max_frames_per_sec: self.max_frames_per_second,
            frame_burst: 2.0 * self.max_frames_per_second,
            max_receipts_per_sec: self.max_receipts_per_second,
            send_queue: self.send_queue.max(1),
            body_timeout: self.body_timeout,
            max_concurrent_uploads: self.max_concurrent_uploads,
            token_ttl: self.token_ttl,
            refresh_ttl: self.refresh_ttl,
            server: kefu_gateway::server::ServerLimits {
                header_timeout: self.header_timeout,
                write_timeout: self.write_timeout,
                ..Default::default()
            },
            ..kefu_gateway::GatewayConfig::default()
        }
    }
}

impl WorkerTuning {
    /// A worker's rules from these options.
    pub fn worker_config(&self, id: String) -> kefu_worker::WorkerConfig {
        kefu_worker::WorkerConfig {
            id,
            max_tasks_per_agent: self.max_tasks_per_agent,
            revoke_window: self.revoke_window,
            reassign_offline_after: self.reassign_offline_after,
            reassign_unanswered_after: self.reassign_unanswered_after,
            queue_abandon_after: self.queue_abandon_after,
            max_waiting_per_ip: self.max_waiting_per_ip,
            upload_quota: self.upload_quota,
            file_retention: self.file_retention,
            lane_queue: self.lane_queue,
            ..kefu_worker::WorkerConfig::default()
        }
    }

    /// What an SQLite commit survives.
    pub fn durability(&self) -> kefu_store::Durability {
        match self.sqlite_sync.as_str() {
            "normal" => kefu_store::Durability::ProcessCrash,
            _ => kefu_store::Durability::PowerLoss,
        }
    }
}

#[derive(Args, Debug)]
pub struct MigrateOptions {
    /// The database to create or upgrade (mysql://, mariadb://,
    /// postgres://, sqlite://). Concurrent runs wait for each other.
    #[arg(long, env = "KEFU_DATABASE_URL")]
    pub database_url: String,
}

#[derive(Args, Debug)]
pub struct TokenOptions {
    /// The user id the token is for (1 to 64 bytes).
    #[arg(long, env = "KEFU_USER")]
    pub user: String,
    /// customer, agent or admin.
    #[arg(long, env = "KEFU_ROLE")]
    pub role: String,
    /// The name others see for this user.
    #[arg(long, env = "KEFU_NAME")]
    pub name: Option<String>,
    /// A label for this device, shown to the user among their devices.
    #[arg(long, env = "KEFU_DEVICE")]
    pub device: Option<String>,
    /// Lifetime, e.g. 1h, 30m, 7d.
    #[arg(long, env = "KEFU_TTL", value_parser = duration, default_value = "1h")]
    pub ttl: Duration,
    /// Read the secret generated by `kefu serve` in this data dir
    /// (--secret wins when both are given).
    #[arg(long, env = "KEFU_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The token signing secret the gateways use.
    #[arg(long, env = "KEFU_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

#[derive(Args, Debug)]
pub struct AgentOptions {
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Creates an agent account (or resets its name and password).
    Add(AgentAddOptions),
    /// Disables an account: no login, every token refused, every
    /// connection closed within seconds (the servers may keep running).
    Disable(AgentAccountOptions),
    /// Enables a disabled account; the agent logs in again.
    Enable(AgentAccountOptions),
    /// Signs an agent out on every device: their tokens so far are refused
    /// and their connections closed within seconds.
    SignOut(AgentAccountOptions),
}

#[derive(Args, Debug)]
pub struct AgentAccountOptions {
    /// The agent's user id.
    #[arg(long, env = "KEFU_ID")]
    pub id: String,
    #[command(flatten)]
    pub database: AgentDatabase,
}

/// Where the accounts are.
#[derive(Args, Debug)]
pub struct AgentDatabase {
    /// The data dir of a `kefu serve` (its embedded database); --database-url
    /// wins when both are given.
    #[arg(long, env = "KEFU_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The cluster's database (mysql://, mariadb://, postgres://, sqlite://).
    #[arg(long, env = "KEFU_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct AgentAddOptions {
    /// The agent's login and user id (1 to 64 bytes).
    #[arg(long, env = "KEFU_ID")]
    pub id: String,
    /// The name customers see.
    #[arg(long, env = "KEFU_NAME")]
    pub name: String,
    /// Read the password from the first line of standard input.
    #[arg(long, env = "KEFU_PASSWORD_STDIN", required = true)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub database: AgentDatabase,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn longs(path: &[&str]) -> Vec<String> {
        let mut cmd = Cli::command();
        for name in path {
            cmd = cmd
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("no command {name}"))
                .clone();
        }
        cmd.get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect()
    }

    #[test]
    fn every_option_of_every_command_says_what_it_does() {
        fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "kefu".into(), &mut missing);
        assert!(missing.is_empty(), "options without help: {missing:?}");
    }

    #[test]
    fn each_role_lists_only_the_options_it_uses() {
        let worker = longs(&["worker"]);
        for gateway_only in ["idle-timeout", "max-frame-bytes", "send-queue", "secret"] {
            assert!(
                !worker.iter().any(|l| l == gateway_only),
                "worker --{gateway_only}"
            );
        }
        let gateway = longs(&["gateway"]);
        for worker_only in [
            "revoke-window",
            "max-tasks-per-agent",
            "sqlite-sync",
            "database-url",
        ] {
            assert!(
                !gateway.iter().any(|l| l == worker_only),
                "gateway --{worker_only}"
            );
        }
        let serve = longs(&["serve"]);
        for both in [
            "idle-timeout",
            "revoke-window",
            "drain-timeout",
            "database-url",
        ] {
            assert!(serve.iter().any(|l| l == both), "serve --{both}");
        }
    }

    #[test]
    fn another_role_s_options_are_taken_out_with_a_warning() {
        let mut args: Vec<String> = [
            "kefu",
            "gateway",
            "--max-tasks-per-agent",
            "2",
            "--idle-timeout=5s",
            "--revoke-window=3s",
            "--secret",
            "s",
        ]
        .map(String::from)
        .to_vec();
        let warnings = strip_foreign_options(&mut args);
        assert_eq!(
            args,
            ["kefu", "gateway", "--idle-timeout=5s", "--secret", "s"].map(String::from)
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("--max-tasks-per-agent"),
            "{warnings:?}"
        );
        let mut args: Vec<String> = ["kefu", "serve", "--bogus", "1"].map(String::from).to_vec();
        assert!(strip_foreign_options(&mut args).is_empty());
        assert_eq!(args.len(), 4, "unknown options are clap's to refuse");
    }

    fn parse_with(file: &str, args: &[&str]) -> Result<Cli, clap::Error> {
        let config = ConfigFile::parse("kefu.toml".into(), file).expect("a valid file");
        let args: Vec<String> = std::iter::once("kefu")
            .chain(args.iter().copied())
            .map(str::to_owned)
            .collect();
        config
            .command()
            .try_get_matches_from(&args)
            .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
    }

    #[test]
    fn a_config_file_gives_defaults_that_flags_override() {
        let file =
            "ttl = \"2h\"\nsecret = \"from-file\"\nregister = [\"http://a:1\", \"http://b:1\"]\n";
        let token = parse_with(file, &["token", "--user", "u", "--role", "agent"]).expect("parses");
        let Command::Token(token) = token.command else {
            panic!("not the token command")
        };
        assert_eq!(token.ttl, Duration::from_secs(7200));
        assert_eq!(token.secret.as_deref(), Some("from-file"));
        let flagged = parse_with(
            file,
            &["token", "--user", "u", "--role", "agent", "--ttl", "5m"],
        );
        let Command::Token(flagged) = flagged.expect("parses").command else {
            panic!("not the token command")
        };
        assert_eq!(flagged.ttl, Duration::from_secs(300), "the flag wins");
        let worker = parse_with(file, &["worker", "--database-url", "sqlite::memory:"]);
        let Command::Worker(worker) = worker.expect("an array fills a list option").command else {
            panic!("not the worker command")
        };
        assert_eq!(worker.register, ["http://a:1", "http://b:1"]);
        assert!(
            std::env::var_os("KEFU_TTL").is_none(),
            "the file's values do not go into the environment"
        );
    }

    #[test]
    fn a_bad_value_in_the_file_is_traced_to_its_key() {
        let config = ConfigFile::parse("kefu.toml".into(), "ttl = \"soon\"\n").expect("valid");
        let args: Vec<String> = [
            "kefu", "token", "--user", "u", "--role", "agent", "--secret", "s",
        ]
        .map(str::to_owned)
        .to_vec();
        let error = match config.command().try_get_matches_from(&args) {
            Ok(_) => panic!("\"soon\" is no duration"),
            Err(e) => e,
        };
        let said = config.explain(&error, &args).expect("an explanation");
        assert!(said.contains("key \"ttl\" of kefu.toml"), "{said}");
    }

    #[test]
    fn a_config_key_is_any_command_s_option() {
        let names = option_names();
        for key in ["listen", "database-url", "idle-timeout", "redis-url", "ttl"] {
            assert!(names.contains(key), "{key}");
        }
        assert!(!names.contains("config") && !names.contains("help"));
    }
}
