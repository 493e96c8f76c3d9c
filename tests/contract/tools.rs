//! The operator's tools against a real server: `kefu bench` and `--config`.

use crate::support::server::KEFU;
use crate::support::*;
use std::process::Command;

/// Starts `kefu serve` as `command` says (stdout is taken), waits for its
/// serving line, and returns the running child, killed on drop, or None
/// when it ended without serving.
fn serve_started(mut command: Command) -> Option<Running> {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kefu serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let serving = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("serving on"));
    let running = Running(child);
    serving.then_some(running)
}

/// A `kefu serve` killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(KEFU)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run kefu")
}

#[tokio::test]
async fn a_short_bench_run_reports_zero_loss_for_kefu_and_the_relay() {
    let server = Server::start().await;
    let args = [
        "--customers",
        "3",
        "--agents",
        "3",
        // Open loop, well under the per-connection frame limit (500/s):
        // a closed loop's pace is the server's, and a fast enough server
        // would be refused with `rate_limited`.
        "--rate",
        "300",
        "--duration",
        "1s",
        "--grace",
        "3s",
        "--relay",
    ];
    let report = bench_json(&server, "chat", &args).await;
    for target in ["kefu", "relay"] {
        let r = &report[target];
        assert!(
            r["sent"].as_u64().unwrap_or(0) > 0,
            "{target} sent nothing: {r}"
        );
        assert_eq!(r["acked"], r["sent"], "{target}: every send acked: {r}");
        assert_eq!(
            r["delivered"], r["acked"],
            "{target}: every ack delivered: {r}"
        );
        for zero in ["lost", "duplicates", "unanswered"] {
            assert_eq!(r[zero], 0, "{target} {zero}: {r}");
        }
        assert_eq!(
            r["send_lag"]["count"], r["sent"],
            "{target}: the open loop reports every send's lag: {r}"
        );
    }
    assert!(report["ratio_of_relay"].as_f64().unwrap_or(0.0) > 0.0);
}

/// Runs `kefu bench SCENARIO --json` against `server` with `args` added,
/// and returns its report.
async fn bench_json(server: &Server, scenario: &str, args: &[&str]) -> Value {
    let mut all: Vec<String> = [
        "bench",
        scenario,
        "--url",
        &server.ws_url(),
        "--secret",
        server.secret().expect("a chosen secret"),
        "--json",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    all.extend(args.iter().map(|a| a.to_string()));
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .expect("bench ran");
    assert!(
        output.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

/// `kefu bench open` with a 5 s grace.
async fn bench_open(server: &Server, args: &[&str]) -> Value {
    let mut all = vec!["--grace", "5s"];
    all.extend(args);
    bench_json(server, "open", &all).await
}

#[tokio::test]
async fn bench_open_counts_the_queue_and_times_each_hand_off() {
    // 2 agents of 2: 4 customers served at once, 3 told to wait; two ends
    // each hand a slot to the head of the queue.
    let server = Server::builder().max_tasks_per_agent(2).start().await;
    let r = bench_open(
        &server,
        &[
            "--agents",
            "2",
            "--customers",
            "7",
            "--capacity",
            "2",
            "--handoffs",
            "2",
        ],
    )
    .await;
    assert_eq!(r["opened"], 7, "{r}");
    assert_eq!(r["unanswered"], 0, "{r}");
    assert_eq!(r["queued_customers"], 3, "{r}");
    assert_eq!(r["capacity_violations"], 0, "{r}");
    assert_eq!(r["first_messages_duplicated"], 0, "{r}");
    assert_eq!(r["handoffs"], 2, "{r}");
    assert_eq!(r["handoffs_failed"], 0, "{r}");
}

#[tokio::test]
async fn bench_open_counts_an_agent_given_more_than_the_capacity_it_was_told() {
    // The server allows 2 per agent; told 1, the bench must see both agents over.
    let server = Server::builder().max_tasks_per_agent(2).start().await;
    let r = bench_open(
        &server,
        &["--agents", "2", "--customers", "4", "--capacity", "1"],
    )
    .await;
    assert_eq!(r["opened"], 4, "{r}");
    assert_eq!(r["capacity_violations"], 2, "{r}");
}

#[tokio::test]
async fn a_config_file_sets_options_and_the_environment_and_flags_win_over_it() {
    let server = Server::start().await;
    let secret = server.secret().expect("a chosen secret").to_owned();
    let config = server.data_dir().join("kefu.toml");
    std::fs::write(&config, format!("secret = \"{secret}\"\nttl = \"2h\"\n"))
        .expect("write config");
    let config = config.display().to_string();

    let from_file = run(&[
        "token", "--config", &config, "--user", "a1", "--role", "agent",
    ]);
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    let token = String::from_utf8(from_file.stdout)
        .expect("ASCII")
        .trim()
        .to_owned();
    let (status, _) = server.get("/api/unread", &token).await;
    assert_eq!(
        status, 200,
        "a token signed with the file's secret is accepted"
    );

    let flag = run(&[
        "token", "--config", &config, "--secret", "another", "--user", "a1", "--role", "agent",
    ]);
    let token = String::from_utf8(flag.stdout)
        .expect("ASCII")
        .trim()
        .to_owned();
    let (status, _) = server.get("/api/unread", &token).await;
    assert_eq!(
        status, 401,
        "--secret on the command line wins over the file"
    );

    let from_env = Command::new(KEFU)
        .args([
            "token", "--config", &config, "--user", "a1", "--role", "agent",
        ])
        .env("KEFU_SECRET", "another")
        .output()
        .expect("run kefu");
    let token = String::from_utf8(from_env.stdout)
        .expect("ASCII")
        .trim()
        .to_owned();
    let (status, _) = server.get("/api/unread", &token).await;
    assert_eq!(status, 401, "KEFU_SECRET wins over the file");
}

#[test]
fn serve_keeps_its_data_dir_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let parent = crate::support::backend::TempDir::new();
    let dir = parent.path().join("fresh");
    let mut command = Command::new(KEFU);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stderr(std::process::Stdio::null());
    let serving = serve_started(command);
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    };
    let modes = (
        mode(""),
        mode("kefu.db"),
        mode("kefu.db-wal"),
        mode("secret"),
    );
    assert!(serving.is_some(), "kefu serve did not start");
    assert_eq!(
        modes,
        (0o700, 0o600, 0o600, 0o600),
        "dir, database, WAL, secret"
    );
}

/// `kefu serve`'s log, written to a file, with `extra` options.
fn serve_log(extra: &[&str]) -> String {
    let dir = crate::support::backend::TempDir::new();
    let log = dir.path().join("stderr.log");
    let mut command = Command::new(KEFU);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).expect("a log file"));
    let serving = serve_started(command);
    assert!(serving.is_some(), "kefu serve did not start");
    drop(serving);
    std::fs::read_to_string(log).expect("the log")
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let log = serve_log(&[]);
    assert!(log.contains("serving"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in:\n{log}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let log = serve_log(&["--log-format", "json"]);
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value["level"].is_string(), "{line}");
    }
}

/// `kefu agent add` on the data dir of a running `kefu serve`, as the
/// README's first steps do: the server goes on storing messages. (A
/// migration lock taken on the database file itself once made the server's
/// SQLite lose its locks, and every send after an `agent add` failed with
/// `storage unavailable`.)
#[tokio::test]
async fn agents_added_beside_a_running_server_leave_its_storage_working() {
    let server = Server::start().await;
    server.add_agent("alice", "Alice", "alice-pw-1");
    let mut chat = Chat::between(&server, "c1", "alice").await;
    for n in 0..8 {
        server.add_agent(&format!("agent-{n}"), "Another", "another-pw-1");
        let sent = chat
            .customer
            .send_text(&format!("after-add-{n}"), "still stored?")
            .await;
        assert!(
            sent["ext"]["error"].is_null(),
            "a send after agent add {n} failed: {sent}"
        );
        chat.agent.recv_until(push_of(int(&sent, "id")), WAIT).await;
    }
    let login = json!({"username": "agent-7", "password": "another-pw-1"});
    let (status, body) = server
        .request(reqwest::Method::POST, "/api/login", None, Some(login))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The README's first command: `kefu serve` with no options, its data in
/// `./kefu-data` below the current directory (a relative SQLite path).
#[test]
fn serve_with_no_options_starts_in_the_current_directory() {
    let dir = crate::support::backend::TempDir::new();
    let log = dir.path().join("stderr.log");
    let mut command = Command::new(KEFU);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stderr(std::fs::File::create(&log).expect("a log file"));
    let serving = serve_started(command);
    assert!(
        serving.is_some(),
        "kefu serve did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(dir.path().join("kefu-data/kefu.db").exists());
}

/// `--threads` (and `KEFU_THREADS`) set how many threads run a process's
/// async work, so that roles sharing a small machine need not each start
/// one per core; the log says how many run.
#[test]
fn threads_sets_the_runtime_threads() {
    let log = serve_log(&["--threads", "1"]);
    assert!(log.contains("runtime started threads=1"), "{log}");
    let log = serve_log(&["--threads", "3"]);
    assert!(log.contains("runtime started threads=3"), "{log}");
}

/// A server on one runtime thread stores and delivers as on several.
#[tokio::test]
async fn one_runtime_thread_serves() {
    let server = Server::builder().env("KEFU_THREADS", "1").start().await;
    server.add_agent("alice", "Alice", "alice-pw-1");
    let mut chat = Chat::between(&server, "c1", "alice").await;
    for n in 0..4 {
        let sent = chat
            .customer
            .send_text(&format!("one-thread-{n}"), "hello")
            .await;
        assert!(sent["ext"]["error"].is_null(), "{sent}");
        chat.agent.recv_until(push_of(int(&sent, "id")), WAIT).await;
    }
}

#[test]
fn zero_threads_is_refused_before_anything_starts() {
    let out = run(&["serve", "--threads", "0", "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("invalid value '0' for '--threads") && stderr.contains("at least 1 thread"),
        "{stderr}"
    );
}
