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
mod source;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use ordo_jobs::Job;
use ordo_jobs::transfer::{AckMode, Collision, Direction, Profile, Protocol, TransferSpec};
use tokio_util::sync::CancellationToken;

use crate::engine::now_ms;
use crate::exec::Env;
use crate::store::{LogLine, TransferRow};

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

/// The scenario's human-readable log: `last.log` is the last run that did something
/// (sent, failed, skipped, acknowledged or received a file), `YYYYMMDD.log` the day's such
/// runs; a run that found nothing only goes to the execution's log. Every line also goes
/// to the execution's log (and the terminal).
struct ScenarioLog<'a> {
    env: &'a Env,
    execution_id: &'a str,
    dir: PathBuf,
    /// Lines waiting for the first event, then the open files.
    pending: Vec<String>,
    files: Option<(std::fs::File, std::fs::File)>,
    seq: i64,
    terminal: bool,
}

impl<'a> ScenarioLog<'a> {
    async fn open(
        env: &'a Env,
        dir: &std::path::Path,
        execution_id: &'a str,
        terminal: bool,
    ) -> anyhow::Result<ScenarioLog<'a>> {
        std::fs::create_dir_all(dir)?;
        let seq = env.store.last_log_seq(execution_id).await?;
        Ok(ScenarioLog {
            env,
            execution_id,
            dir: dir.to_path_buf(),
            pending: Vec::new(),
            files: None,
            seq,
            terminal,
        })
    }

    /// A line that makes the run worth `last.log`.
    async fn line(&mut self, text: impl Into<String>) {
        self.write(text.into(), true).await
    }

    /// A line that alone does not (the header, "no file to send", the end).
    async fn quiet(&mut self, text: impl Into<String>) {
        self.write(text.into(), false).await
    }

    async fn write(&mut self, text: String, event: bool) {
        let now = chrono::Local::now();
        let stamped = format!("{} {text}\n", now.format("%Y-%m-%d %H:%M:%S"));
        if self.files.is_none() && event {
            match self.open_files() {
                Ok(f) => self.files = Some(f),
                Err(e) => tracing::warn!("transfer log in {}: {e}", self.dir.display()),
            }
        }
        match self.files.as_mut() {
            Some((last, day)) => {
                let _ = last.write_all(stamped.as_bytes());
                let _ = day.write_all(stamped.as_bytes());
            }
            None => self.pending.push(stamped),
        }
        if self.terminal {
            say!("{} {text}", now.format("%H:%M:%S"));
        }
        self.seq += 1;
        let l = LogLine {
            seq: self.seq,
            node: "transfer".into(),
            step: 0,
            stream: "stdout".into(),
            ts: now.timestamp_millis(),
            line: text,
        };
        if let Err(e) = self.env.store.insert_logs(self.execution_id, &[l]).await {
            tracing::warn!("transfer log: {e}");
        }
    }

    fn open_files(&mut self) -> std::io::Result<(std::fs::File, std::fs::File)> {
        let mut last = std::fs::File::create(self.dir.join("last.log"))?;
        let mut day = std::fs::OpenOptions::new().create(true).append(true).open(
            self.dir
                .join(format!("{}.log", chrono::Local::now().format("%Y%m%d"))),
        )?;
        for l in self.pending.drain(..) {
            last.write_all(l.as_bytes())?;
            day.write_all(l.as_bytes())?;
        }
        Ok((last, day))
    }

    fn finish(&mut self) {
        if let Some((last, day)) = &self.files {
            let _ = last.sync_all();
            let _ = day.sync_all();
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
    let mut log = ScenarioLog::open(env, &dir, execution_id, terminal).await?;
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
                receive(env, job, spec, profile, execution_id, &mut log, &mut out).await?;
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

#[allow(clippy::too_many_arguments)]
async fn send(
    env: &Env,
    job: &Job,
    spec: &TransferSpec,
    profile: &Profile,
    execution_id: &str,
    dir: &std::path::Path,
    log: &mut ScenarioLog<'_>,
    out: &mut TransferOutcome,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let mut link: Option<deposit::Link> = None;
    if profile.ack.is_some() {
        check_acks(env, job, profile, &mut link, log, out).await;
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
                row.status = "skipped".into();
                row.error = Some(format!(
                    "{p}{} already holds {} (collision: skip): left in {p}{}, not sent",
                    spec.backup.display(),
                    f.name,
                    spec.source.display(),
                    p = source.prefix()
                ));
                log.line(format!(
                    "{}: skipped: {}",
                    f.name,
                    row.error.as_deref().unwrap_or("")
                ))
                .await;
                env.store.save_transfer(&row).await?;
                out.skipped += 1;
                continue;
            }
            Err(e) => {
                row.status = "failed".into();
                row.error = Some(e);
                log.line(format!(
                    "{}: failed: {}",
                    f.name,
                    row.error.as_deref().unwrap_or("")
                ))
                .await;
                env.store.save_transfer(&row).await?;
                out.failed += 1;
                continue;
            }
        };
        let (target, shown, overwrote) = target;
        let work = dir.join("work").join(&row.id);
        let local = match source.local_copy(&target, f.size, &work).await {
            Ok(p) => p,
            Err(e) => {
                row.status = "failed".into();
                row.error = Some(format!("{e}; the file stays in {shown}"));
                log.line(format!(
                    "{}: failed: {}",
                    f.name,
                    row.error.as_deref().unwrap_or("")
                ))
                .await;
                env.store.save_transfer(&row).await?;
                out.failed += 1;
                let _ = std::fs::remove_dir_all(&work);
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
                row.status = "failed".into();
                row.error = Some(format!("cannot build the payload: {e}"));
                log.line(format!(
                    "{}: failed: {}",
                    f.name,
                    row.error.as_deref().unwrap_or("")
                ))
                .await;
                row.updated_at = now_ms();
                env.store.save_transfer(&row).await?;
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

/// Acknowledgements of earlier deposits (`consumed`: the partner took the file; `file`:
/// an ack file appeared), and those past the deadline.
async fn check_acks(
    env: &Env,
    job: &Job,
    profile: &Profile,
    link: &mut Option<deposit::Link>,
    log: &mut ScenarioLog<'_>,
    out: &mut TransferOutcome,
) {
    let Some(ack) = &profile.ack else { return };
    let waiting = match env
        .store
        .transfers(
            Some(&job.name),
            &["delivered".into(), "deposited".into()],
            10_000,
        )
        .await
    {
        Ok(w) => w,
        Err(e) => {
            log.line(format!("acknowledgements not checked: {e}")).await;
            return;
        }
    };
    if waiting.is_empty() {
        return;
    }
    if link.is_none() {
        match deposit::Link::open(profile).await {
            Ok(l) => *link = Some(l),
            Err(e) => {
                log.line(format!("acknowledgements not checked: {e}")).await;
                return;
            }
        }
    }
    let Some(l) = link.as_ref() else { return };
    let now = now_ms();
    for mut t in waiting {
        let deposited_name = t
            .remote
            .as_deref()
            .and_then(|r| r.split(", ").last())
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or(&t.file_name)
            .to_string();
        let acked = match &ack.mode {
            AckMode::Consumed => deposit::remote_size(l, profile, &deposited_name)
                .await
                .map(|s| s.is_none()),
            AckMode::File(pattern) => {
                deposit::remote_size(l, profile, &pattern.replace("{name}", &deposited_name))
                    .await
                    .map(|s| s.is_some())
            }
        };
        match acked {
            Ok(true) => {
                t.status = "acknowledged".into();
                t.acknowledged_at = Some(now);
                t.updated_at = now;
                log.line(format!("{}: acknowledged (transfer {})", t.file_name, t.id))
                    .await;
                out.acknowledged += 1;
            }
            Ok(false)
                if now - t.deposited_at.unwrap_or(t.created_at)
                    > ack.deadline.as_millis() as i64 =>
            {
                t.status = "unacknowledged".into();
                t.updated_at = now;
                t.error = Some(format!(
                    "no acknowledgement within {} of the deposit",
                    humantime::format_duration(ack.deadline)
                ));
                log.line(format!(
                    "{}: unacknowledged: {}",
                    t.file_name,
                    t.error.as_deref().unwrap_or("")
                ))
                .await;
                out.unacknowledged += 1;
            }
            Ok(false) => continue,
            Err(e) => {
                log.line(format!("{}: acknowledgement not checked: {e}", t.file_name))
                    .await;
                continue;
            }
        }
        if let Err(e) = env.store.save_transfer(&t).await {
            tracing::warn!("transfer {}: {e}", t.id);
        }
    }
}

async fn receive(
    env: &Env,
    job: &Job,
    spec: &TransferSpec,
    profile: &Profile,
    execution_id: &str,
    log: &mut ScenarioLog<'_>,
    out: &mut TransferOutcome,
) -> anyhow::Result<()> {
    let Protocol::Sftp {
        inbox,
        delete_after_fetch,
        ..
    } = &profile.protocol
    else {
        log.line(format!(
            "profile {}: retrieval works with sftp partners",
            profile.name
        ))
        .await;
        out.failed += 1;
        return Ok(());
    };
    let Some(inbox) = inbox else {
        log.line(format!(
            "profile {}: no `sftp: inbox` to fetch from",
            profile.name
        ))
        .await;
        out.failed += 1;
        return Ok(());
    };
    let dest_dir = profile
        .receiving
        .dir
        .clone()
        .unwrap_or_else(|| env.cfg.data_dir.join("received").join(&profile.name));
    std::fs::create_dir_all(&dest_dir)?;
    let link = match deposit::Link::open(profile).await {
        Ok(l) => l,
        Err(e) => {
            log.line(format!("cannot reach the partner: {e}")).await;
            out.failed += 1;
            return Ok(());
        }
    };
    let deposit::Link::Sftp { sftp, .. } = &link else {
        return Ok(());
    };
    let mut waiting: Vec<(String, u64)> = match sftp.read_dir(inbox.clone()).await {
        Ok(rd) => rd
            .filter(|e| e.file_type().is_file() && spec.matcher.is_match(e.file_name()))
            .map(|e| (e.file_name(), e.metadata().size.unwrap_or(0)))
            .collect(),
        Err(e) => {
            log.line(format!("cannot list {inbox}: {e}")).await;
            out.failed += 1;
            link.close().await;
            return Ok(());
        }
    };
    waiting.sort();
    if waiting.is_empty() {
        log.quiet(format!("nothing waiting in {inbox}")).await;
    }
    for (name, size) in waiting {
        let record = env.store.next_record(&profile.name).await? as u64;
        let now = chrono::Local::now();
        let mut local_name = match &profile.receiving.name {
            Some(t) => ordo_jobs::transfer::fill_name_template(
                t,
                &ordo_jobs::transfer::NameParts {
                    time: now,
                    record,
                    record_width: profile.receiving.record_width,
                    profile: &profile.name,
                    name: &name,
                },
            ),
            None => name.clone(),
        };
        if profile.receiving.timestamp {
            local_name.push_str(&now.format("_%Y%m%d_%H%M%S").to_string());
        }
        // Never overwrite a file received earlier.
        let dest = files::backup_target(&dest_dir, &local_name, Collision::Increment)
            .unwrap_or_else(|| dest_dir.join(&local_name));
        let remote = format!("{inbox}/{name}");
        let ts = now_ms();
        let mut row = TransferRow {
            id: uuid::Uuid::now_v7().to_string(),
            scenario: job.name.clone(),
            profile: profile.name.clone(),
            direction: "receive".into(),
            execution_id: execution_id.to_string(),
            file_name: name.clone(),
            source_path: remote.clone(),
            stored_path: dest.display().to_string(),
            size: size as i64,
            attempts: 1,
            created_at: ts,
            updated_at: ts,
            ..TransferRow::default()
        };
        match deposit::sftp_get(sftp, &remote, &dest, size).await {
            Ok(_) => {
                row.sha256 = files::sha256_file(&dest).unwrap_or_default();
                row.status = "received".into();
                row.delivered_at = Some(now_ms());
                let mut note = String::new();
                if *delete_after_fetch {
                    match sftp.remove_file(remote.clone()).await {
                        Ok(()) => note.push_str(", removed from the partner"),
                        Err(e) => note.push_str(&format!(", left at the partner ({e})")),
                    }
                }
                log.line(format!(
                    "{name}: received as {} (record {record}, {size} bytes{note})",
                    dest.display()
                ))
                .await;
                out.received += 1;
            }
            Err(e) => {
                row.status = "failed".into();
                row.error = Some(e.clone());
                log.line(format!("{name}: failed: {e} (left at the partner)"))
                    .await;
                out.failed += 1;
            }
        }
        row.updated_at = now_ms();
        env.store.save_transfer(&row).await?;
    }
    link.close().await;
    Ok(())
}
