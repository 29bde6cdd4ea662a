//! One execution of a job, from the first row to the last notification: the same path for
//! `controller run`, schedules, file triggers, follow-up jobs, job steps and retries.
//!
//! A job without job steps is one pass of the engine over its servers. Job steps split it
//! into phases: the server steps before a job step finish on every server, then the other
//! job runs once (a child execution), then the next server steps start.
//!
//! [`execute`] reads as its phases: [`admit`] (every check, the plan), `start` (rows,
//! folders, the start notification), `run_phases` (transfer, server passes, job steps),
//! `finish` (summaries, archive, mail, last row, notification), then the follow-ups.

mod admit;
mod chain;
mod finish;
pub mod notify;
mod phases;
pub mod plan;
mod prepare;
pub mod reap;
pub mod record;
mod report;
mod rerun;
mod transfer_phase;
pub mod values;

use std::path::PathBuf;
use std::sync::Arc;

use ordo_jobs::{Job, OptionValues};
use tokio_util::sync::CancellationToken;

use crate::fanout::NodeResult;
use crate::project::Env;
use crate::store::ExecutionStatus;

pub use admit::{Admitted, Readied, admit, ready};
pub use plan::Plan;
pub use prepare::{execution_id, record_refused};
pub use report::summary_json;
pub use rerun::{first_failed_member, group_progress, retry_launch};

/// How an execution is asked for.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The execution ID to use (a schedule decides it before starting); new otherwise.
    pub id: Option<String>,
    pub options: OptionValues,
    /// Another filter, and-ed with the job's targets (`--limit`).
    pub limit: Option<String>,
    /// Only these servers (retry of the failed ones).
    pub only_nodes: Option<Vec<String>>,
    pub parallelism: Option<usize>,
    pub accept_new_host_keys: bool,
    pub no_mail: bool,
    /// manual, schedule, watch, follow-up, job-step, retry.
    pub cause: String,
    pub fire_key: Option<String>,
    pub retry_of: Option<String>,
    pub parent_id: Option<String>,
    pub started_by: String,
    /// The account that started it (API or console), inherited by follow-ups and job steps.
    pub account: String,
    /// Live output on the terminal (`controller run`).
    pub terminal: bool,
    pub progress: bool,
    /// How deep in follow-ups and job steps (cycles are refused at load; this is a guard).
    pub depth: u32,
    /// A sending scenario only checks its deposits' acknowledgements and deadlines (what
    /// `serve` starts when a deadline passes); nothing is sent.
    pub acks_only: bool,
    /// A group retried from its first failed member: the steps before this index are
    /// not run again (they succeeded in `retry_of`).
    pub resume_from: Option<usize>,
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: String,
    pub job: String,
    pub status: ExecutionStatus,
    pub results: Vec<NodeResult>,
    pub archive: Option<PathBuf>,
    pub collected: usize,
    pub table: String,
    pub started_at: i64,
    pub finished_at: i64,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status.succeeded()
    }
}

/// Admits `job` for `launch` (see [`admit`]) and runs it; a `BadInput` error means
/// nothing was started or recorded.
pub async fn execute(
    env: Arc<Env>,
    job: Arc<Job>,
    launch: Launch,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let admitted = admit(&env, job, launch).await?;
    run_admitted(env, admitted, cancel).await
}

/// Runs an admitted run and records everything: its rows, its phases, its end, then its
/// follow-ups.
pub async fn run_admitted(
    env: Arc<Env>,
    admitted: Admitted,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let Admitted {
        job,
        launch,
        plan,
        scripts,
        transports,
    } = admitted;
    let mut run = phases::Running::start(&env, plan, &launch, scripts, transports).await?;
    // `executions abort`, the API and the console stop it through this token.
    let _abortable = env.aborts.register(&run.id, cancel.clone());
    run.run_phases(&cancel).await?;
    let outcome = run.finish(&cancel).await?;
    if launch.terminal {
        report::print_end(&outcome);
    }
    chain::follow_ups(&env, &job, &launch, &outcome, &cancel).await;
    Ok(outcome)
}

/// A job's option values checked and completed; when an option reads its allowed values
/// from a file or a command (`values_from`: up to 60 s), on the values' own pool (see
/// [`values`]), so a slow command never holds the scheduler, the API or a login.
pub async fn resolve_options(
    job: &Job,
    given: Vec<(String, String)>,
) -> Result<OptionValues, ordo_jobs::OptionErrors> {
    if job.options.iter().all(|o| o.values_from.is_none()) {
        return ordo_jobs::resolve_options(job, &given);
    }
    let job = job.clone();
    values::on_pool(move || ordo_jobs::resolve_options(&job, &given))
        .await
        .unwrap_or_else(|| {
            Err(ordo_jobs::OptionErrors(vec![ordo_jobs::OptionError {
                option: String::new(),
                message: "the option values could not be read".into(),
            }]))
        })
}
