//! `controller run <job>`: run on every selected server, collect, archive, mail, record;
//! then the job's follow-ups.

use std::sync::Arc;

use clap::Args;
use ordo_jobs::Job;
use tokio_util::sync::CancellationToken;

use super::{Cli, EXIT_FAILED, EXIT_OK};
use crate::config::ProjectConfig;
use crate::exec::instance::{self, Instance};
use crate::exec::{self, Env, Launch};
use crate::store::Store;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The job's name (its path under the jobs folder, without extension).
    pub job: String,
    /// An option value, NAME=VALUE (repeatable).
    #[arg(short = 'o', long = "opt")]
    pub opts: Vec<String>,
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
    let cfg = super::config(cli)?;
    let inv = super::inventory(&cfg)?;
    let (jobs, job) = super::job_in_set(&cfg, &a.job)?;
    let options = super::options(&job, &a.opts)?;
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
    // Refuse bad input (no server matches...) before touching the database.
    exec::select_nodes(&inv, &job, &launch)?;
    run_in_foreground(cfg, inv, jobs, job, launch).await
}

/// Opens the store, registers this process, runs, and maps the outcome to an exit code.
pub(super) async fn run_in_foreground(
    cfg: ProjectConfig,
    inventory: ordo_inventory::Inventory,
    jobs: ordo_jobs::JobSet,
    job: Arc<Job>,
    launch: Launch,
) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        anyhow::anyhow!("cannot create data folder {}: {e}", cfg.data_dir.display())
    })?;
    let profiles = super::profiles(&cfg, &jobs)?;
    let store = Store::open(&super::database_url(&cfg)).await?;
    let me = Instance::register(&store, "run").await?;
    if let Err(e) = instance::sweep(&store, cfg.serve.dead_after).await {
        tracing::warn!("cannot check for interrupted executions: {e}");
    }
    let env = Arc::new(Env {
        cfg,
        inventory,
        jobs,
        profiles,
        store: store.clone(),
        instance: me.id.clone(),
    });
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\ninterrupted: stopping the job on every server (Ctrl-C again to quit at once)"
                );
                cancel.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let outcome = exec::execute(env, job, launch, cancel).await;
    me.retire().await;
    store.close().await;
    let outcome = outcome?;
    Ok(if outcome.succeeded() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}
