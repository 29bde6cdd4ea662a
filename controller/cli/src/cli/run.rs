//! `controller run <job>`: run on every selected server, collect, archive, mail, record;
//! then the job's follow-ups.

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{BadInput, Cli, EXIT_FAILED, EXIT_OK};
use crate::actions::Actor;
use crate::actions::runs::{self, StartRun};
use crate::exec::Admitted;
use crate::exec::{self, Launch, Plan};
use crate::process as instance;
use crate::project::{Env, Loaded};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub which: super::opts::JobArgs,
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

pub async fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<i32> {
    let a = &args.which;
    let (loaded, job) = Loaded::for_job(super::config(cli)?, &a.job)?;
    let given = a.opts.given(&job)?;
    // Bad input is refused before the history is touched (the action checks again, and
    // records the run, once the database is open).
    let options = ordo_jobs::resolve_options(&job, &given).map_err(|e| BadInput(e.join("\n")))?;
    let probe = Launch {
        options,
        limit: a.limit.clone(),
        parallelism: a.parallelism,
        ..Launch::default()
    };
    Plan::new(&loaded.inventory, job.clone(), &probe)?;
    let req = StartRun {
        job: job.name.clone(),
        options: given,
        limit: a.limit.clone(),
        cause: "manual".into(),
    };
    let base = Launch {
        parallelism: a.parallelism,
        accept_new_host_keys: args.accept_new_host_keys,
        no_mail: args.no_mail,
        terminal: true,
        progress: !args.no_progress,
        ..Launch::default()
    };
    run_in_foreground(loaded, Admit::Start(req, base)).await
}

/// Which run to admit once the history is open.
pub(super) enum Admit {
    /// A job now.
    Start(StartRun, Launch),
    /// A recorded execution again.
    Retry {
        id: String,
        failed_only: bool,
        overrides: Vec<(String, String)>,
        base: Launch,
    },
}

/// Opens the store, registers this process, admits the run through the same action as
/// the API and the console (it is audited as the command line's), runs it, and maps the
/// outcome to an exit code.
pub(super) async fn run_in_foreground(loaded: Loaded, admit: Admit) -> anyhow::Result<i32> {
    let dead_after = loaded.cfg.serve.dead_after;
    let (env, me) = Env::open(loaded, "run").await?;
    if let Err(e) = instance::sweep(&env.store, dead_after).await {
        tracing::warn!("cannot check for interrupted executions: {e}");
    }
    let cli = Actor::cli();
    let admitted = match admit {
        Admit::Start(req, base) => runs::start(&env, &cli, req, base).await,
        Admit::Retry {
            id,
            failed_only,
            overrides,
            base,
        } => runs::retry(&env, &cli, &id, failed_only, &overrides, base).await,
    };
    let admitted = match admitted {
        Ok(a) => a,
        Err(e) => {
            me.retire().await;
            env.store.close().await;
            return Err(super::action_error(e));
        }
    };
    if let Some(of) = &admitted.launch.retry_of {
        let status = match env.store.find_execution(of).await {
            Ok(e) => format!(" ({})", e.status),
            Err(_) => String::new(),
        };
        say_retry(&admitted, &status);
    }
    // What runs killed outright left on their servers is stopped beside this run.
    let reaping = {
        let env = env.clone();
        tokio::spawn(async move { exec::reap::stop_leftovers(&env).await })
    };
    let cancel = CancellationToken::new();
    tokio::spawn(stop_on_signals(cancel.clone()));
    let outcome = exec::run_admitted(env.clone(), admitted, cancel).await;
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

/// What a retry runs again: the failed servers, or a group from a member.
fn say_retry(a: &Admitted, status: &str) {
    let of = a.launch.retry_of.as_deref().unwrap_or_default();
    match a.launch.resume_from {
        Some(i) => say!(
            "retrying execution {of}{status} from {}: the members before it succeeded",
            a.job.steps[i].label(i)
        ),
        None => {
            let servers: Vec<&str> = a.plan.nodes.iter().map(|n| n.name.as_str()).collect();
            say!(
                "retrying execution {of}{status} on {} server(s): {}",
                servers.len(),
                servers.join(", ")
            )
        }
    }
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
