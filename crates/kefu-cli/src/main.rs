//! `kefu`: one binary for every role of the cluster and its tools.

#![forbid(unsafe_code)]

mod cluster;
mod local;
mod options;
mod secret;
mod serve;
mod tools;

use clap::FromArgMatches;

/// jemalloc: the hot path allocates many small short-lived buffers, most
/// freed on a different thread from the one that allocated them (the writer's
/// thread, the runtime's two). The system allocator spent a fifth of the
/// server's time on them; mimalloc a quarter of a cluster worker's, in
/// cache misses on the blocks its free lists link through, which
/// jemalloc's thread caches (arrays of pointers) do not touch
/// (docs/benchmarks.md).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use options::{Cli, Command};

/// Reads the options (a config file's values become the defaults of the
/// options they name), then starts the runtime.
fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let ignored = options::strip_foreign_options(&mut args);
    let config = match options::load_config_file(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kefu: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let parsed = config
        .command()
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if let Some(source) = config.explain(&e, &args) {
                eprintln!("\n{source}");
            }
            return std::process::ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    init_logs(&cli.log_format);
    for warning in ignored {
        tracing::warn!("{warning}");
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kefu: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if matches!(
        cli.command,
        Command::Serve(_) | Command::Register(_) | Command::Worker(_) | Command::Gateway(_)
    ) {
        tracing::info!(threads = runtime.metrics().num_workers(), "runtime started");
    }
    let result = runtime.block_on(run(cli.command));
    drop(runtime);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Each cause once: drivers repeat theirs inside their own message.
            let error: &(dyn std::error::Error + 'static) = e.as_ref();
            eprintln!("kefu: {}", kefu_register::outage::error_chain(error));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(opts) => serve::run(opts).await,
        Command::Register(opts) => cluster::register(opts).await,
        Command::Worker(opts) => cluster::worker(opts).await,
        Command::Gateway(opts) => cluster::gateway(opts).await,
        Command::Migrate(opts) => tools::migrate(opts).await,
        Command::Token(opts) => tools::token(opts),
        Command::Agent(opts) => tools::agent(opts).await,
        #[cfg(feature = "bench")]
        Command::Bench(opts) => kefu_bench::run(opts).await,
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
