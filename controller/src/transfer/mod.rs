//! Transfer scenarios (`kind: transfer` jobs), run by the controller as one execution:
//!
//! send: check acknowledgements of earlier deposits; then for every file matching the
//! pattern in the source folder, in order: move it to the backup folder (collision
//! policy), build its payload (gzip, segments + manifest), put it at the partner with
//! retries and backoff (SFTP resumes where it stopped), pause `delay`, next file.
//! receive: fetch every file waiting in the partner's inbox into `received/<profile>/`,
//! named by the profile's template with a record number kept across runs.
//!
//! Every step goes to `last.log` (this run), `YYYYMMDD.log` (the day), the execution's log
//! and the `transfers` table.

mod deposit;
pub mod files;
mod log;
mod receive;
mod source;

use std::path::PathBuf;
use std::time::Duration;

use ordo_jobs::Job;
use ordo_jobs::transfer::{AckMode, Direction, Profile, Protocol, TransferSpec};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::project::Env;
use crate::store::TransferRow;

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

/// Runs the scenario once as execution `execution_id`.
pub async fn run(
    env: &Env,
    job: &Job,
    spec: &TransferSpec,
    execution_id: &str,
    terminal: bool,
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
            if spec.active {
                send(
                    env,
                    job,
                    spec,
                    profile,
                    execution_id,
                    &dir,
                    &mut log,
                    &mut out,
                    cancel,
                )
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
                receive::receive(env, job, spec, profile, execution_id, &mut log, &mut out).await?;
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

#[allow(clippy::too_many_arguments)]
async fn send(
    env: &Env,
    job: &Job,
    spec: &TransferSpec,
    profile: &Profile,
    execution_id: &str,
    dir: &std::path::Path,
    log: &mut log::ScenarioLog<'_>,
    out: &mut TransferOutcome,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let mut link: Option<deposit::Link> = None;
    if profile.ack.is_some() {
        receive::check_acks(env, job, profile, &mut link, log, out).await;
    }
    let source = match source::Source::open(env, spec.on.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            log.line(format!("cannot reach the files' server: {e}"))
                .await;
            out.failed += 1;
            return Ok(());
        }
    };
    let found = match source.find(&spec.source, &spec.matcher).await {
        Ok(f) => f,
        Err(e) => {
            log.line(format!(
                "cannot read {}{}: {e}",
                source.prefix(),
                spec.source.display()
            ))
            .await;
            out.failed += 1;
            source.close().await;
            return Ok(());
        }
    };
    if found.is_empty() {
        log.quiet("no file to send").await;
    }
    let delay = spec.delay.unwrap_or(profile.delay);
    let retry = spec.retry.unwrap_or(profile.retry);
    for (i, f) in found.iter().enumerate() {
        if cancel.is_cancelled() {
            log.line("stopped: the rest waits for the next run").await;
            break;
        }
        if i > 0 && !delay.is_zero() {
            log.line(format!(
                "waiting {} before the next file",
                humantime::format_duration(delay)
            ))
            .await;
            if !sleep_or_cancel(delay, cancel).await {
                log.line("stopped: the rest waits for the next run").await;
                break;
            }
        }
        let now = now_ms();
        let mut row = TransferRow {
            id: uuid::Uuid::now_v7().to_string(),
            scenario: job.name.clone(),
            profile: profile.name.clone(),
            direction: "send".into(),
            execution_id: execution_id.to_string(),
            file_name: f.name.clone(),
            source_path: f.path.display().to_string(),
            size: f.size as i64,
            segments: 1,
            created_at: now,
            updated_at: now,
            ..TransferRow::default()
        };
        let target = match source.backup(f, &spec.backup, spec.collision).await {
            Ok((source::Backed::Moved { shown, overwrote }, target)) => {
                row.stored_path = shown.clone();
                row.status = "prepared".into();
                (target, shown, overwrote)
            }
            Ok((source::Backed::Skipped, _)) => {
                let why = format!(
                    "{p}{} already holds {} (collision: skip): left in {p}{}, not sent",
                    spec.backup.display(),
                    f.name,
                    spec.source.display(),
                    p = source.prefix()
                );
                give_up(env, log, &mut row, "skipped", why).await?;
                out.skipped += 1;
                continue;
            }
            Err(e) => {
                give_up(env, log, &mut row, "failed", e).await?;
                out.failed += 1;
                continue;
            }
        };
        let (target, shown, overwrote) = target;
        let work = dir.join("work").join(&row.id);
        let local = match source.local_copy(&target, f.size, &work).await {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&work);
                give_up(
                    env,
                    log,
                    &mut row,
                    "failed",
                    format!("{e}; the file stays in {shown}"),
                )
                .await?;
                out.failed += 1;
                continue;
            }
        };
        row.sha256 = files::sha256_file(&local).unwrap_or_default();
        env.store.save_transfer(&row).await?;
        log.line(format!(
            "{}: prepared: moved to {shown}{} ({} bytes, sha256 {})",
            f.name,
            if overwrote { " (overwritten)" } else { "" },
            f.size,
            &row.sha256[..row.sha256.len().min(16)]
        ))
        .await;
        let pieces = {
            let (t, n, c, s, w) = (
                local.clone(),
                f.name.clone(),
                spec.compress,
                spec.segment_size,
                work.clone(),
            );
            tokio::task::spawn_blocking(move || files::payload(&t, &n, c, s, &w)).await?
        };
        let pieces = match pieces {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&work);
                give_up(
                    env,
                    log,
                    &mut row,
                    "failed",
                    format!("cannot build the payload: {e}"),
                )
                .await?;
                out.failed += 1;
                continue;
            }
        };
        if pieces.len() > 1 || spec.compress {
            row.segments = pieces.len() as i64;
            log.line(format!(
                "{}: payload: {}",
                f.name,
                pieces
                    .iter()
                    .map(|p| format!("{} ({} bytes)", p.name, p.size))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await;
        }
        let mut remotes = Vec::new();
        let mut failure: Option<String> = None;
        for (k, piece) in pieces.iter().enumerate() {
            let mut attempt = 0;
            loop {
                attempt += 1;
                row.attempts += 1;
                if link.is_none() {
                    match deposit::Link::open(profile).await {
                        Ok(l) => link = Some(l),
                        Err(e) => {
                            if attempt >= retry.attempts || cancel.is_cancelled() {
                                failure = Some(format!("connection: {e}"));
                                break;
                            }
                            let pause = retry.pause(attempt + 1);
                            log.line(format!(
                                "{}: attempt {attempt} of {}: connection: {e}; next in {}",
                                f.name,
                                retry.attempts,
                                humantime::format_duration(pause)
                            ))
                            .await;
                            if !sleep_or_cancel(pause, cancel).await {
                                failure = Some("stopped".into());
                                break;
                            }
                            continue;
                        }
                    }
                }
                let parts = deposit::MailParts {
                    scenario: &job.name,
                    file: &f.name,
                    part: format!("{}/{}", k + 1, pieces.len()),
                };
                let Some(l) = link.as_mut() else { continue };
                match deposit::deposit(l, profile, piece, &env.cfg, parts).await {
                    Ok(d) => {
                        if let Some(note) = &d.note {
                            log.line(format!("{}: {} {note}", f.name, piece.name)).await;
                        }
                        remotes.push(d.remote);
                        break;
                    }
                    Err(e) => {
                        // A broken connection is reopened on the next attempt.
                        if let Some(l) = link.take() {
                            l.close().await;
                        }
                        if attempt >= retry.attempts || cancel.is_cancelled() {
                            failure = Some(e);
                            break;
                        }
                        let pause = retry.pause(attempt + 1);
                        log.line(format!(
                            "{}: attempt {attempt} of {}: {e}; next in {}",
                            f.name,
                            retry.attempts,
                            humantime::format_duration(pause)
                        ))
                        .await;
                        if !sleep_or_cancel(pause, cancel).await {
                            failure = Some(format!("{e}; stopped"));
                            break;
                        }
                    }
                }
            }
            if failure.is_some() {
                break;
            }
        }
        row.updated_at = now_ms();
        match failure {
            Some(e) => {
                row.status = "failed".into();
                row.error = Some(e.clone());
                log.line(format!(
                    "{}: failed after {} attempt(s): {e}; the file stays in {shown}",
                    f.name, row.attempts,
                ))
                .await;
                out.failed += 1;
            }
            None => {
                row.remote = Some(remotes.join(", "));
                row.deposited_at = Some(row.updated_at);
                row.status = "deposited".into();
                log.line(format!("{}: deposited: {}", f.name, remotes.join(", ")))
                    .await;
                // Delivered: the partner holds the whole file (size checked), or its
                // server took it (HTTP success, SMTP relay).
                let verified = match (&profile.protocol, link.as_ref()) {
                    (Protocol::Sftp { .. } | Protocol::Folder { .. }, Some(l)) => {
                        let last = pieces.last().map(|p| (p.name.clone(), p.size));
                        match last {
                            Some((n, size)) => match deposit::remote_size(l, profile, &n).await {
                                Ok(Some(s)) if s == size => Ok(()),
                                Ok(Some(s)) => Err(format!(
                                    "{n} has {s} bytes at the partner, expected {size}"
                                )),
                                Ok(None)
                                    if profile
                                        .ack
                                        .as_ref()
                                        .is_some_and(|a| a.mode == AckMode::Consumed) =>
                                {
                                    Ok(())
                                }
                                Ok(None) => Err(format!("{n} is not at the partner")),
                                Err(e) => Err(e),
                            },
                            None => Ok(()),
                        }
                    }
                    _ => Ok(()),
                };
                match verified {
                    Ok(()) => {
                        row.status = "delivered".into();
                        row.delivered_at = Some(now_ms());
                        log.line(format!("{}: delivered", f.name)).await;
                        out.sent += 1;
                    }
                    Err(e) => {
                        row.status = "failed".into();
                        row.error = Some(format!("not delivered: {e}"));
                        log.line(format!("{}: failed: not delivered: {e}", f.name))
                            .await;
                        out.failed += 1;
                    }
                }
            }
        }
        env.store.save_transfer(&row).await?;
        let _ = std::fs::remove_dir_all(&work);
    }
    if let Some(l) = link {
        l.close().await;
    }
    source.close().await;
    Ok(())
}
