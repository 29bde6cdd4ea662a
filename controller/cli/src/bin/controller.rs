//! `controller`: parse arguments, set up logging, run, exit with the run's code.

use clap::Parser;
use ordo_cli::cli::{self, BadInput, EXIT_BAD_INPUT, EXIT_ERROR};

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = cli::Cli::parse();
    // `serve` tells what it does; one-shot commands only warn.
    let default_level = match args.command {
        cli::Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ORDO_LOG")
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    // `serve` (API, scheduler, several jobs at once) runs on every core. One-shot commands
    // run on one thread: a fleet run's work is waiting on its servers, and with one thread
    // nothing is handed between threads (on 1000 servers: about a fifth less CPU, a few MiB
    // less memory, the same wall time; see docs/benchmarks.md). CPU-heavy work (unpacking
    // collected files, the archive) goes to the blocking pool either way: a few threads
    // are enough, and each costs a stack and a malloc arena (1000 servers collecting at
    // once would otherwise start up to 512 of them).
    let mut builder = match args.command {
        cli::Command::Serve(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().max_blocking_threads(16).build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(EXIT_ERROR);
        }
    };
    let code = match runtime.block_on(cli::main(args)) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<BadInput>() {
            Some(b) => {
                eprintln!("{b}");
                EXIT_BAD_INPUT
            }
            None => {
                eprintln!("error: {e:#}");
                EXIT_ERROR
            }
        },
    };
    drop(runtime);
    std::process::exit(code);
}
