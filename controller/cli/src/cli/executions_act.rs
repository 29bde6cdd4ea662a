//! `controller executions retry|abort`: acting on a recorded execution, through the same
//! actions as the API and the console.

use super::EXIT_OK;
use super::run::Admit;
use crate::actions::{Actor, runs};
use crate::exec::Launch;
use crate::project::{Loaded, ProjectConfig};
use crate::store::{ExecutionRow, Store};

/// `executions retry`: the recorded job, options and servers, run again in the foreground.
pub(super) async fn retry(
    cfg: ProjectConfig,
    e: ExecutionRow,
    failed_only: bool,
    opts: &super::opts::OptArgs,
    (accept_new_host_keys, no_mail, no_progress): (bool, bool, bool),
) -> anyhow::Result<i32> {
    let (loaded, job) = Loaded::for_job(cfg, &e.job)?;
    let overrides = opts.given(&job)?;
    let base = Launch {
        accept_new_host_keys,
        no_mail,
        terminal: true,
        progress: !no_progress,
        ..Launch::default()
    };
    let admit = Admit::Retry {
        id: e.id,
        failed_only,
        overrides,
        base,
    };
    super::run::run_in_foreground(loaded, admit).await
}

/// `executions abort`: asks, then waits (a minute at most) for the run to end.
pub(super) async fn abort(store: &Store, id: &str) -> anyhow::Result<i32> {
    let e = runs::abort(store, &Default::default(), &Actor::cli(), id)
        .await
        .map_err(super::action_error)?;
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
