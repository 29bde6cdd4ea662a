//! `agent`: parse arguments, set up logging, run.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "agent",
    version,
    about = "ordo agent: runs the controller's jobs on this server, over gRPC with mutual TLS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The configuration file, shared by `run` and `check-config`.
#[derive(Args, Debug)]
struct ConfigArg {
    #[arg(
        short,
        long,
        env = "ORDO_AGENT_CONFIG",
        default_value = "/etc/ordo-agent/agent.yaml"
    )]
    config: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve until stopped (SIGINT or SIGTERM).
    Run(ConfigArg),
    /// Check the configuration file and its TLS files; report every problem.
    CheckConfig(ConfigArg),
    /// Make this agent's private key and certificate signing request, for
    /// `controller pki sign`. The key stays here.
    Enroll {
        /// The agent's name: the server's name in the controller's inventory.
        #[arg(long)]
        name: String,
        /// The folder for agent.key and agent.csr (then agent.pem and ca.pem).
        #[arg(long, default_value = "/etc/ordo-agent")]
        dir: PathBuf,
        /// More DNS names for the certificate (repeatable).
        #[arg(long = "dns")]
        dns: Vec<String>,
    },
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ORDO_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::CheckConfig(ConfigArg { config }) => {
            match ordo_agent::AgentConfig::load(&config) {
                Ok(cfg) => match std::fs::read(&cfg.cert)
                    .map_err(anyhow::Error::from)
                    .and_then(|c| ordo_agent::cert_info(&c))
                {
                    Ok((cn, _)) if cn != cfg.name => {
                        eprintln!(
                            "{}: the certificate is for `{cn}`, but `name` is `{}`",
                            cfg.cert.display(),
                            cfg.name
                        );
                        2
                    }
                    Ok(_) => {
                        println!("ok: agent `{}` on {}", cfg.name, cfg.listen);
                        0
                    }
                    Err(e) => {
                        eprintln!("{}: {e:#}", cfg.cert.display());
                        2
                    }
                },
                Err(d) => {
                    eprintln!("{d}");
                    2
                }
            }
        }
        Command::Enroll { name, dir, dns } => {
            match ordo_agent::enroll::make_request(&dir, &name, &dns) {
                Ok(r) => {
                    println!("private key: {} (stays here)", r.key.display());
                    println!("signing request: {}", r.csr.display());
                    println!(
                        "next: on the controller, `controller pki sign agent.csr`, then copy back agent.pem and ca.pem into {}",
                        dir.display()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    2
                }
            }
        }
        Command::Run(ConfigArg { config }) => {
            let cfg = match ordo_agent::AgentConfig::load(&config) {
                Ok(c) => c,
                Err(d) => {
                    eprintln!("{d}");
                    std::process::exit(2);
                }
            };
            // One thread does the agent's own work (TLS, HTTP/2, starting commands and
            // pumping their output): an agent is I/O bound, and a fleet of them shares the
            // server with the jobs they run. File I/O goes to tokio's blocking pool.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(ordo_agent::run(cfg, shutdown_signal())) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    1
                }
            }
        }
    };
    std::process::exit(code);
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
}
