//! `controller`: parse arguments, set up logging, run, exit with the run's code.

use clap::Parser;
use ordo_controller::cli::{self, BadInput, EXIT_BAD_INPUT, EXIT_ERROR};

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
    // Blocking work (unpacking collected files, archives) is short: a few threads are
    // enough, and each thread costs a stack and a malloc arena (1000 servers collecting at
    // once would otherwise start up to 512 of them).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
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
