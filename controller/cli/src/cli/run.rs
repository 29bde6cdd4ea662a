//! `controller run <job>`: run on every selected server, collect, archive, mail, record;
//! then the job's follow-ups.

use std::sync::Arc;

use clap::Args;
use ordo_jobs::Job;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{Cli, EXIT_FAILED, EXIT_OK};
use crate::exec::{self, Launch, Plan};
use crate::project::instance;
use crate::project::{Env, Loaded};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The job's name (its path under the jobs folder, without extension).
    pub job: String,
    #[command(flatten)]
    pub opts: super::opts::OptArgs,
    /// Narrow the job's targets with another filter.
    #[arg(short, long)]
    pub limit: Option<String>,
    /// Override the job's parallelism (servers at once).
    #[arg(short, long)]
    pub parallelism: Option<usize>,
    /// Trust and record host keys not yet in known_hosts (a changed key is still refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Do not send the job's mail.
    #[arg(long)]
    pub no_mail: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn run(cli: &Cli, a: &RunArgs) -> anyhow::Result<i32> {
    let (loaded, job) = Loaded::for_job(super::config(cli)?, &a.job)?;
    let options = a.opts.resolve(&job)?;
    let launch = Launch {
        options,
        limit: a.limit.clone(),
        parallelism: a.parallelism,
        accept_new_host_keys: a.accept_new_host_keys,
        no_mail: a.no_mail,
        cause: "manual".into(),
        started_by: crate::transport::current_user(),
        terminal: true,
        progress: !a.no_progress,
        ..Launch::default()
    };
    run_in_foreground(loaded, job, launch).await
}

/// Refuses bad input (no server matches...) before touching the database; then opens
/// the store, registers this process, runs, and maps the outcome to an exit code.
pub(super) async fn run_in_foreground(
    loaded: Loaded,
    job: Arc<Job>,
    launch: Launch,
) -> anyhow::Result<i32> {
    Plan::new(&loaded.inventory, job.clone(), &launch)?;
    let dead_after = loaded.cfg.serve.dead_after;
    let (env, me) = Env::open(loaded, "run").await?;
    if let Err(e) = instance::sweep(&env.store, dead_after).await {
        tracing::warn!("cannot check for interrupted executions: {e}");
    }
    // What runs killed outright left on their servers is stopped beside this run.
    let reaping = {
        let env = env.clone();
        tokio::spawn(async move { exec::reap::stop_leftovers(&env).await })
    };
    let cancel = CancellationToken::new();
    tokio::spawn(stop_on_signals(cancel.clone()));
    let outcome = exec::execute(env.clone(), job, launch, cancel).await;
    // A server that does not answer is left for the next run or `serve` (it is recorded).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), reaping).await;
    me.retire().await;
    env.store.close().await;
    let outcome = outcome?;
    Ok(if outcome.succeeded() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// Ctrl-C, SIGTERM (a shutdown, `kill`) and SIGHUP (the terminal closed) stop the job on
/// every server and record the run as aborted; a second Ctrl-C quits at once.
async fn stop_on_signals(cancel: CancellationToken) {
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    let why = tokio::select! {
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => "interrupted",
            Err(_) => return,
        },
        _ = term.recv() => "terminated (SIGTERM)",
        _ = hup.recv() => "hung up (SIGHUP)",
    };
    eprintln!("\n{why}: stopping the job on every server (Ctrl-C again to quit at once)");
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}
