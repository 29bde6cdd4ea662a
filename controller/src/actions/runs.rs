//! Runs: start a job now, run a recorded execution again, abort one. Starting and
//! retrying check who may run the job and its options, then *admit* the run
//! ([`exec::admit`]: the plan, scripts, keys, transports) and audit it; the caller runs the
//! [`Admitted`] run its way (the web hands it to `serve`, the command line runs it in the
//! foreground). Every caller records the same `started_by` (the actor's label) and
//! account.

use std::sync::Arc;

use ordo_jobs::Job;

use super::{ActionError, ActionResult, Actor};
use crate::clock::now_ms;
use crate::exec::{self, Admitted, Launch, execution_id, retry_launch};
use crate::process::Aborts;
use crate::project::Env;
use crate::store::{ExecutionRow, Store};

/// A job the actor may read (else not found: jobs outside its projects do not exist for
/// it) and run (else forbidden).
pub fn runnable(env: &Env, a: &Actor, name: &str) -> ActionResult<Arc<Job>> {
    let job = env
        .jobs
        .get(name)
        .filter(|_| a.who.can_read_job(name))
        .cloned()
        .ok_or_else(|| ActionError::NotFound(format!("no job `{name}`")))?;
    if !a.who.can_run_job(name) {
        return Err(ActionError::Forbidden(format!(
            "{} may not run `{name}`",
            a.who.name
        )));
    }
    Ok(job)
}

/// An execution the actor may see (else not found).
pub async fn visible(store: &Store, a: &Actor, id: &str) -> ActionResult<ExecutionRow> {
    let e = store.find_execution(id).await?;
    if a.who.is_cli() || a.who.sees(&e) {
        Ok(e)
    } else {
        Err(ActionError::NotFound(format!(
            "no execution matches `{id}`"
        )))
    }
}

/// What starting a run takes (everything else of the launch is the caller's: terminal,
/// progress, host keys...).
#[derive(Debug, Clone, Default)]
pub struct StartRun {
    pub job: String,
    /// Option values as given (checked here).
    pub options: Vec<(String, String)>,
    /// Only the servers matching this filter too.
    pub limit: Option<String>,
    /// manual, api, console...
    pub cause: String,
}

/// Admits a run of a job now.
pub async fn start(env: &Env, a: &Actor, req: StartRun, base: Launch) -> ActionResult<Admitted> {
    let job = runnable(env, a, &req.job)?;
    let options = crate::exec::resolve_options(&job, req.options)
        .await
        .map_err(ActionError::Options)?;
    let launch = Launch {
        id: Some(execution_id()),
        options,
        limit: req.limit,
        cause: req.cause,
        ..base
    };
    admit(env, a, job, launch, "run", "").await
}

/// Admits a recorded execution again: every server, or the failed ones (a group from its
/// first failed member), with its recorded options and `overrides`.
pub async fn retry(
    env: &Env,
    a: &Actor,
    id: &str,
    failed_only: bool,
    overrides: &[(String, String)],
    base: Launch,
) -> ActionResult<Admitted> {
    let e = visible(&env.store, a, id).await?;
    let job = runnable(env, a, &e.job)?;
    let nodes = env.store.nodes(&e.id).await?;
    let children = env.store.children(&e.id).await?;
    let launch = retry_launch(&job, &e, (&nodes, &children), failed_only, overrides)
        .await
        .map_err(|b| ActionError::Refused(b.0))?;
    let launch = Launch {
        id: Some(execution_id()),
        accept_new_host_keys: base.accept_new_host_keys,
        no_mail: base.no_mail,
        terminal: base.terminal,
        progress: base.progress,
        ..launch
    };
    admit(env, a, job, launch, "retry", &format!("of {}", e.id)).await
}

/// The checks every start shares: the plan (servers, `--limit`, `run_as`), who starts it,
/// and the audit row.
async fn admit(
    env: &Env,
    a: &Actor,
    job: Arc<Job>,
    launch: Launch,
    action: &str,
    note: &str,
) -> ActionResult<Admitted> {
    let launch = Launch {
        started_by: a.who.label(),
        // The command line's runs belong to no account (as schedules' do).
        account: if a.who.is_cli() {
            String::new()
        } else {
            a.who.name.clone()
        },
        ..launch
    };
    let admitted = exec::admit(env, job, launch)
        .await
        .map_err(|b| ActionError::Refused(b.0))?;
    let (job, launch) = (&admitted.job, &admitted.launch);
    let id = admitted.id();
    let options = serde_json::to_string(&launch.options.masked()).unwrap_or_default();
    let detail = if note.is_empty() {
        options
    } else {
        format!("{note} {options}")
    };
    a.audit(&env.store, action, &format!("{} {id}", job.name), &detail)
        .await;
    Ok(admitted)
}

/// Asks for a running execution to stop, on whichever controller runs it (the remote
/// processes are killed as on a timeout); it ends `aborted`, recording who asked. `here`:
/// what runs in this process (stopped at once; another controller sees the request).
pub async fn abort(
    store: &Store,
    here: &Aborts,
    a: &Actor,
    id: &str,
) -> ActionResult<ExecutionRow> {
    let e = visible(store, a, id).await?;
    if !a.who.can_run_job(&e.job) {
        return Err(ActionError::Forbidden(format!(
            "{} may not abort runs of `{}`",
            a.who.name, e.job
        )));
    }
    if !e.status.is_running() {
        return Err(ActionError::Conflict(format!(
            "execution {} is not running: it ended {}",
            e.id, e.status
        )));
    }
    store.request_abort(&e.id, &a.who.label(), now_ms()).await?;
    here.abort_here(&e.id);
    a.audit(store, "abort", &format!("{} {}", e.job, e.id), "")
        .await;
    Ok(e)
}
