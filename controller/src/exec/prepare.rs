//! Before a run: the scripts' contents, the execution's ID and first row; and the record
//! of an execution that could not start.

use ordo_jobs::{Job, StepAction};

use super::Launch;
use crate::clock::now_ms;
use crate::project::{BadInput, Env};
use crate::store::{ExecutionRow, ExecutionStatus};

/// The largest `script_file` a step may have.
const MAX_SCRIPT: u64 = 16 * 1024 * 1024;

pub(super) fn read_scripts(job: &Job) -> Result<Vec<Option<Vec<u8>>>, BadInput> {
    job.steps
        .iter()
        .map(|s| match &s.action {
            StepAction::ScriptFile(p) => ordo_inventory::read_bounded(p, MAX_SCRIPT)
                .map(Some)
                .map_err(|e| {
                    BadInput(format!(
                        "{}: step `{}`: cannot read script_file {}: {e}",
                        job.file.display(),
                        s.name,
                        p.display()
                    ))
                }),
            _ => Ok(None),
        })
        .collect()
}

/// `20261124-070512-4813fa`: date, time, milliseconds (so IDs sort by time even within
/// one second), then three random hex digits.
pub fn execution_id() -> String {
    let now = chrono::Local::now();
    let u = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "{}-{:03}{}",
        now.format("%Y%m%d-%H%M%S"),
        now.timestamp_subsec_millis().min(999),
        &u[u.len() - 3..]
    )
}

/// The first row of an execution of `job_name` for `launch`: running, now.
pub(super) fn execution_row(
    env: &Env,
    id: &str,
    job_name: &str,
    launch: &Launch,
) -> anyhow::Result<ExecutionRow> {
    Ok(ExecutionRow {
        id: id.to_string(),
        job: job_name.to_string(),
        status: ExecutionStatus::Running,
        options: serde_json::to_string(&launch.options.masked())?,
        started_at: now_ms(),
        started_by: launch.started_by.clone(),
        cause: launch.cause.clone(),
        owner: env.instance.clone(),
        fire_key: launch.fire_key.clone(),
        retry_of: launch.retry_of.clone(),
        parent_id: launch.parent_id.clone(),
        account: launch.account.clone(),
        resumed_from: launch.resume_from.map(|i| i as i64),
        ..ExecutionRow::default()
    })
}

/// Records an execution that could not start (no server matches, a script file is
/// missing, a follow-up's options are wrong): the history shows why.
pub async fn record_refused(
    env: &Env,
    job_name: &str,
    launch: &Launch,
    why: &str,
) -> anyhow::Result<String> {
    let id = launch.id.clone().unwrap_or_else(execution_id);
    let row = ExecutionRow {
        targets: env
            .jobs
            .get(job_name)
            .map(|job| super::plan::targets_text(job, launch.limit.as_deref()))
            .unwrap_or_default(),
        ..execution_row(env, &id, job_name, launch)?
    };
    env.store.insert_execution(&row).await?;
    let done = ExecutionRow {
        status: ExecutionStatus::Failed,
        finished_at: Some(row.started_at),
        error: Some(format!("not started: {why}")),
        ..row
    };
    env.store.finish_execution(&done).await?;
    Ok(id)
}
