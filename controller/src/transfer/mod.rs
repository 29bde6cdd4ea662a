//! Transfer scenarios (`kind: transfer` jobs), run by the controller as one execution:
//!
//! send: check acknowledgements of earlier deposits; then for every file matching the
//! pattern in the source folder, in order: move it to the backup folder (collision
//! policy), build its payload (gzip, segments + manifest), put it at the partner with
//! retries and backoff (SFTP resumes where it stopped), pause `delay`, next file.
//! receive: fetch every file waiting in the partner's inbox into `received/<profile>/`,
//! named by the profile's template with a record number kept across runs.
//!
//! `send.rs` sends, `receive.rs` acknowledges and retrieves, `deposit.rs` speaks each
//! protocol. Every step goes to `last.log` (this run), `YYYYMMDD.log` (the day), the execution's log
//! and the `transfers` table.

mod deadlines;
mod deliver;
mod deposit;

pub mod files;
mod http;
mod log;
mod receive;
mod send;
mod source;

use std::path::PathBuf;
use std::time::Duration;

use ordo_jobs::Job;
use ordo_jobs::transfer::{Direction, TransferSpec};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::project::Env;
use crate::store::TransferRow;

/// Where a piece ended up at the partner, and a note for the log (resumed at byte N...).
pub struct Deposited {
    pub remote: String,
    pub note: Option<String>,
}

pub use deadlines::due_for_ack_check;

/// How a transfer run went.
#[derive(Debug, Default, Clone)]
pub struct TransferOutcome {
    pub sent: usize,
    pub failed: usize,
    pub skipped: usize,
    pub received: usize,
    pub acknowledged: usize,
    pub unacknowledged: usize,
}

impl TransferOutcome {
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.unacknowledged == 0
    }

    pub fn summary(&self, direction: Direction) -> String {
        match direction {
            Direction::Send => format!(
                "{} sent, {} failed, {} skipped, {} acknowledged, {} unacknowledged",
                self.sent, self.failed, self.skipped, self.acknowledged, self.unacknowledged
            ),
            Direction::Receive => format!("{} received, {} failed", self.received, self.failed),
        }
    }
}

/// The folder of a scenario's logs and work files.
pub fn scenario_dir(env: &Env, job: &Job, spec: &TransferSpec) -> PathBuf {
    spec.log_dir.clone().unwrap_or_else(|| {
        env.cfg
            .data_dir
            .join("transfers")
            .join(job.name.replace('/', "_"))
    })
}

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

/// Runs the scenario once as execution `execution_id` (with `acks_only`, a sending
/// scenario only checks its deposits' acknowledgements and deadlines).
pub async fn run(
    env: &Env,
    job: &Job,
    spec: &TransferSpec,
    execution_id: &str,
    terminal: bool,
    acks_only: bool,
    cancel: &CancellationToken,
) -> anyhow::Result<TransferOutcome> {
    let profile = env.profiles.get(&spec.profile).ok_or_else(|| {
        anyhow::anyhow!(
            "profile `{}` does not exist in {}",
            spec.profile,
            env.cfg.profiles.display()
        )
    })?;
    let dir = scenario_dir(env, job, spec);
    let mut log = log::ScenarioLog::open(env, &dir, execution_id, terminal).await?;
    let mut out = TransferOutcome::default();
    match spec.direction {
        Direction::Send => {
            log.quiet(format!(
                "run {execution_id}: scenario {} sends {}/{} with profile {} ({})",
                job.name,
                spec.source.display(),
                spec.pattern,
                profile.name,
                profile.protocol.describe()
            ))
            .await;
            if acks_only {
                log.quiet("acknowledgement deadlines only").await;
                let mut link = None;
                receive::check_acks(env, job, profile, &mut link, &mut log, &mut out, cancel).await;
                if let Some(l) = link {
                    l.close().await;
                }
            } else if spec.active {
                send::Sending {
                    env,
                    job,
                    spec,
                    profile,
                    execution_id,
                    dir: &dir,
                    log: &mut log,
                    out: &mut out,
                    cancel,
                }
                .run()
                .await?;
            } else {
                log.quiet("scenario inactive (active: false): nothing done")
                    .await;
            }
        }
        Direction::Receive => {
            log.quiet(format!(
                "run {execution_id}: scenario {} fetches from profile {} ({})",
                job.name,
                profile.name,
                profile.protocol.describe()
            ))
            .await;
            if spec.active {
                let retrieval = receive::Retrieval {
                    env,
                    job,
                    spec,
                    profile,
                    execution_id,
                    cancel,
                };
                receive::receive(retrieval, &mut log, &mut out).await?;
            } else {
                log.quiet("scenario inactive (active: false): nothing done")
                    .await;
            }
        }
    }
    log.quiet(format!("end: {}", out.summary(spec.direction)))
        .await;
    log.finish();
    Ok(out)
}

/// Ends a file's transfer before it was sent: the row keeps the status and reason, the
/// log says them.
async fn give_up(
    env: &Env,
    log: &mut log::ScenarioLog<'_>,
    row: &mut TransferRow,
    status: &str,
    why: String,
) -> anyhow::Result<()> {
    log.line(format!("{}: {status}: {why}", row.file_name))
        .await;
    row.status = status.into();
    row.error = Some(why);
    row.updated_at = now_ms();
    env.store.save_transfer(row).await?;
    Ok(())
}
