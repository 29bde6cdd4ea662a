//! `controller executions retry|abort`: acting on a recorded execution.

use super::{BadInput, EXIT_OK};
use crate::project::ProjectConfig;
use crate::store::ExecutionRow;

/// `executions retry`: the recorded job, options and servers, run again in the foreground.
pub(super) async fn retry(
    cfg: ProjectConfig,
    e: ExecutionRow,
    (nodes, children): (Vec<crate::store::NodeRow>, Vec<ExecutionRow>),
    failed_only: bool,
    opts: &super::opts::OptArgs,
    (accept_new_host_keys, no_mail, no_progress): (bool, bool, bool),
) -> anyhow::Result<i32> {
    let (loaded, job) = crate::project::Loaded::for_job(cfg, &e.job)?;
    let overrides = opts.given(&job)?;
    let launch =
        crate::exec::retry_launch(&job, &e, (&nodes, &children), failed_only, &overrides).await?;
    let servers = launch.only_nodes.clone().unwrap_or_default();
    match launch.resume_from {
        Some(i) => say!(
            "retrying execution {} ({}) from {}: the members before it succeeded",
            e.id,
            e.status,
            job.steps[i].label(i)
        ),
        None => say!(
            "retrying execution {} ({}) on {} server(s): {}",
            e.id,
            e.status,
            servers.len(),
            servers.join(", ")
        ),
    }
    let launch = crate::exec::Launch {
        accept_new_host_keys,
        no_mail,
        started_by: crate::transport::current_user(),
        terminal: true,
        progress: !no_progress,
        ..launch
    };
    super::run::run_in_foreground(loaded, job, launch).await
}

/// `executions abort`: asks, then waits (a minute at most) for the run to end.
pub(super) async fn abort(store: &crate::store::Store, id: &str) -> anyhow::Result<i32> {
    let e = store.find_execution(id).await?;
    if !e.status.is_running() {
        return Err(BadInput(format!(
            "execution {} is not running: it ended {}",
            e.id, e.status
        ))
        .into());
    }
    let me = format!("{} (cli)", crate::transport::current_user());
    store
        .request_abort(&e.id, &me, crate::clock::now_ms())
        .await?;
    crate::auth::audit(store, &me, "", "abort", &format!("{} {}", e.job, e.id), "").await;
    say!(
        "abort of {} ({}) asked to controller {}",
        e.id,
        e.job,
        e.owner
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let now = store.find_execution(&e.id).await?;
        if !now.status.is_running() {
            say!("execution {} {}", now.id, now.status);
            return Ok(EXIT_OK);
        }
        if std::time::Instant::now() > deadline {
            say!(
                "execution {} still running after 60 s: is its controller ({}) alive?",
                e.id,
                e.owner
            );
            return Ok(super::EXIT_FAILED);
        }
    }
}
