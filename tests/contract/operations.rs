//! What an operator meets first: configuration mistakes, dependencies that
//! do not answer, and the log lines both produce. Every process here is a
//! real `kefu` on loopback; the dependencies are ports nothing listens on.

use crate::support::backend::TempDir;
use crate::support::server::KEFU;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs `kefu args` to its end with a clean environment of options.
fn kefu(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(KEFU);
    command.args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run kefu")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_unknown_config_key_is_refused_with_the_nearest_valid_one() {
    let dir = TempDir::new();
    let config = dir.path().join("kefu.toml");
    std::fs::write(&config, "idle_timout = \"90s\"\n").expect("write config");
    let out = kefu(&["serve", "--config", &config.display().to_string()], &[]);
    let text = stderr(&out);
    assert!(!out.status.success(), "started despite a misspelt key");
    assert!(
        text.contains("unknown key \"idle_timout\"")
            && text.contains("did you mean \"idle_timeout\""),
        "{text}"
    );
}

#[test]
fn a_bad_value_says_whether_it_came_from_the_environment_or_the_file() {
    let out = kefu(
        &["token", "--user", "a", "--role", "agent", "--secret", "s"],
        &[("KEFU_TTL", "soon")],
    );
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("KEFU_TTL=soon") && text.contains("environment"),
        "{text}"
    );

    let dir = TempDir::new();
    let config = dir.path().join("kefu.toml");
    std::fs::write(&config, "ttl = \"later\"\n").expect("write config");
    let path = config.display().to_string();
    let out = kefu(
        &[
            "token", "--config", &path, "--user", "a", "--role", "agent", "--secret", "s",
        ],
        &[],
    );
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("key \"ttl\"") && text.contains(&path),
        "{text}"
    );
}

#[test]
fn a_bare_number_is_taken_as_seconds() {
    let out = kefu(
        &[
            "token", "--user", "a", "--role", "agent", "--secret", "s", "--ttl", "90",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_empty_secret_signs_nothing_and_a_short_one_is_warned_about() {
    let out = kefu(
        &["token", "--user", "a", "--role", "agent", "--secret", ""],
        &[],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "a token was printed");
    assert!(
        stderr(&out).contains("openssl rand -hex 32"),
        "{}",
        stderr(&out)
    );

    let out = kefu(
        &[
            "token", "--user", "a", "--role", "agent", "--secret", "short",
        ],
        &[],
    );
    assert!(out.status.success());
    assert!(stderr(&out).contains("can be guessed"), "{}", stderr(&out));
}

#[test]
fn migrate_names_an_unreachable_database_and_its_reason_and_exits() {
    let port = closed_port();
    for scheme in ["mysql", "mariadb", "postgres"] {
        let url = format!("{scheme}://root:hunter2@127.0.0.1:{port}/kefu");
        let started = Instant::now();
        let out = kefu(&["migrate", "--database-url", &url], &[]);
        let text = stderr(&out);
        assert!(!out.status.success(), "{scheme}: {text}");
        assert!(
            text.contains(&format!("127.0.0.1:{port}")) && text.contains("refused"),
            "{scheme}: {text}"
        );
        assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
        assert!(!text.contains("hunter2"), "the password is printed: {text}");
        // The promise to an operator, not a performance figure.
        assert!(started.elapsed() < Duration::from_secs(5), "{scheme}");
    }
}

/// A long-running role started against dependencies that do not answer,
/// its stderr going to a file; killed on drop.
struct Waiting {
    child: Child,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Waiting {
    fn start(args: &[&str]) -> Waiting {
        let dir = TempDir::new();
        let log = dir.path().join("stderr.log");
        let child = Command::new(KEFU)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("kefu starts");
        Waiting {
            child,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it holds `needle`, within `limit`.
    fn log_once(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, and whether the process then ended within `limit`.
    fn stops_on_sigterm(&mut self, limit: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn a_worker_without_its_database_says_so_retries_and_is_live_but_not_ready() {
    let db_port = closed_port();
    let listen = format!("127.0.0.1:{}", closed_port());
    let url = format!("mysql://kefu:hunter2@127.0.0.1:{db_port}/kefu");
    let mut worker = Waiting::start(&[
        "worker",
        "--register",
        &format!("http://127.0.0.1:{}", closed_port()),
        "--database-url",
        &url,
        "--listen",
        &listen,
        "--insecure-no-cluster-secret",
    ]);
    let log = worker.log_once("retrying in", Duration::from_secs(5));
    assert!(
        log.contains(&format!(
            "cannot reach the database at mysql://kefu:***@127.0.0.1:{db_port}/kefu"
        )) && log.contains("refused")
            && log.contains("retrying in 1s (attempt 1)"),
        "{log}"
    );
    assert!(!log.contains("hunter2"), "the password is logged: {log}");
    assert_eq!(get(&listen, "/healthz").0, 200, "live while it waits");
    let (status, body) = get(&listen, "/readyz");
    assert_eq!(status, 503, "not ready while it waits: {body}");
    assert!(body.contains("waiting for the database"), "{body}");
    let log = worker.log_once("(attempt 2)", Duration::from_secs(5));
    assert!(
        log.contains("retrying in 2s (attempt 2)"),
        "backs off: {log}"
    );
    assert!(
        worker.stops_on_sigterm(Duration::from_secs(5)),
        "SIGTERM while waiting ends the worker cleanly:\n{}",
        worker.log()
    );
}

#[test]
fn a_register_without_redis_names_it_within_seconds() {
    let redis_port = closed_port();
    let listen = format!("127.0.0.1:{}", closed_port());
    let mut register = Waiting::start(&[
        "register",
        "--redis-url",
        &format!("redis://127.0.0.1:{redis_port}/13"),
        "--listen",
        &listen,
        "--insecure-no-cluster-secret",
    ]);
    let log = register.log_once("retrying in", Duration::from_secs(5));
    assert!(
        log.contains(&format!(
            "cannot reach Redis at redis://127.0.0.1:{redis_port}/13"
        )) && log.to_lowercase().contains("refused"),
        "{log}"
    );
    assert_eq!(get(&listen, "/readyz").0, 503);
    assert!(register.stops_on_sigterm(Duration::from_secs(5)));
}

#[test]
fn a_gateway_whose_register_is_down_warns_once_not_every_poll() {
    let register_port = closed_port();
    let gateway = Waiting::start(&[
        "gateway",
        "--register",
        &format!("http://127.0.0.1:{register_port}"),
        "--listen",
        "127.0.0.1:0",
        "--internal-listen",
        "127.0.0.1:0",
        "--secret",
        "a-client-token-secret-of-enough-length",
        "--insecure-no-cluster-secret",
    ]);
    let log = gateway.log_once("cannot reach the register", Duration::from_secs(5));
    assert!(
        log.contains(&format!("127.0.0.1:{register_port}")) && log.contains("refused"),
        "names the address and the reason: {log}"
    );
    // Membership is polled every 500 ms and the lease renewed every 3.3 s:
    // over 4 s that was 8 and 2 warnings, each the same.
    std::thread::sleep(Duration::from_secs(4));
    let log = gateway.log();
    let warnings = log.lines().filter(|l| l.contains("WARN")).count();
    assert!(
        warnings <= 2,
        "one warning per failing call site, not one per poll:\n{log}"
    );
}

/// PostgreSQL's notices ("relation seaql_migrations already exists,
/// skipping") were four log lines at every start.
#[test]
#[cfg_attr(not(kefu_test_postgres), ignore = "needs KEFU_TEST_POSTGRES_URL")]
fn a_second_migration_on_postgres_logs_no_notices() {
    let base = crate::support::service_url("KEFU_TEST_POSTGRES_URL");
    let url = crate::support::Backend::Postgres(base)
        .fresh_database_url()
        .expect("a database of its own");
    let mut logs = String::new();
    for _ in 0..2 {
        let out = kefu(
            &["migrate", "--database-url", &url],
            &[("RUST_LOG", "info")],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        logs.push_str(&stderr(&out));
    }
    crate::support::backend::drop_database(&url);
    assert!(logs.contains("No pending migrations"), "{logs}");
    assert!(!logs.contains("already exists"), "{logs}");
}

/// A self-signed certificate for 127.0.0.1, made by `openssl`; returns
/// (cert, key) paths.
fn make_certificate(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=kefu-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// The serial number of the certificate a TLS server presents.
fn served_serial(addr: &str) -> String {
    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut pem = String::new();
    client
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut pem)
        .expect("read");
    let _ = client.wait();
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl x509");
    use std::io::Write;
    let _ = x509.stdin.take().expect("stdin").write_all(pem.as_bytes());
    let out = x509.wait_with_output().expect("x509");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn serve_speaks_tls_with_hsts_and_takes_a_renewed_certificate_on_sighup() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new();
    let (cert, key) = make_certificate(dir.path(), "first");
    let mut child = Command::new(KEFU)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kefu serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let child = KilledOnDrop(child);
    let addr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("kefu serving on https://")
                .map(str::to_owned)
        })
        .expect("serving on https://");
    let curl = |path: &str, cacert: &std::path::Path| {
        Command::new("curl")
            .args(["-sS", "-i", "--max-time", "5", "--cacert"])
            .arg(cacert)
            .arg(format!("https://{addr}{path}"))
            .output()
            .expect("curl")
    };
    let health = curl("/healthz", &cert);
    let text = String::from_utf8_lossy(&health.stdout).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(
        text.contains("strict-transport-security: max-age=31536000"),
        "{text}"
    );
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("http://{addr}/healthz")])
        .output()
        .expect("curl");
    assert!(
        !plain.status.success(),
        "plain HTTP is not served on a TLS port"
    );

    let first = served_serial(&addr);
    let (renewed, renewed_key) = make_certificate(dir.path(), "second");
    std::fs::copy(&renewed, &cert).expect("renew cert");
    std::fs::copy(&renewed_key, &key).expect("renew key");
    let hup = |child: &KilledOnDrop| {
        let _ = Command::new("kill")
            .args(["-HUP", &child.0.id().to_string()])
            .status();
        std::thread::sleep(Duration::from_millis(500));
    };
    hup(&child);
    let second = served_serial(&addr);
    assert!(
        !first.is_empty() && first != second,
        "{first} then {second}"
    );
    assert!(curl("/healthz", &renewed).status.success());

    // A broken file on the next reload keeps the certificate in use.
    std::fs::write(&cert, "not a certificate").expect("break cert");
    hup(&child);
    assert_eq!(served_serial(&addr), second);
}

/// A child process killed when the test ends, however it ends.
struct KilledOnDrop(Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
