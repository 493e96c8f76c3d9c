//! `kefu`: one binary for every role of the cluster and its tools.

#![forbid(unsafe_code)]

mod bench;
mod cluster;
mod local;
mod options;
mod secret;
mod serve;
mod tools;

use clap::Parser;

/// mimalloc: the hot path allocates many small short-lived buffers; the
/// system allocator spent a fifth of the server's time on them.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use options::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if let Err(e) = options::load_config_file() {
        eprintln!("kefu: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    init_logs(&cli.log_format);
    let result = match cli.command {
        Command::Serve(opts) => serve::run(opts).await,
        Command::Register(opts) => cluster::register(opts).await,
        Command::Worker(opts) => cluster::worker(opts).await,
        Command::Gateway(opts) => cluster::gateway(opts).await,
        Command::Migrate(opts) => tools::migrate(opts).await,
        Command::Token(opts) => tools::token(opts),
        Command::Agent(opts) => tools::agent(opts).await,
        Command::Bench(opts) => bench::run(opts).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kefu: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr: `RUST_LOG` filters (info by default); colour only when
/// stderr is a terminal, so files, journald and `docker logs` get plain text.
fn init_logs(format: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
