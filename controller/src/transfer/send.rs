//! Sending a scenario's files, in named phases: check earlier deposits' acknowledgements,
//! find the files, then for each one in order (paced by `delay`): back it up, build its
//! payload, deposit every piece with retries, verify the delivery, record it.

use std::path::{Path, PathBuf};

use ordo_jobs::Job;
use ordo_jobs::transfer::{AckMode, Profile, Protocol, TransferSpec};
use tokio_util::sync::CancellationToken;

use super::files::{Found, Piece};
use super::log::ScenarioLog;
use super::source::{Backed, Source};
use super::{TransferOutcome, deposit, files, give_up, receive, sleep_or_cancel};
use crate::clock::now_ms;
use crate::project::Env;
use crate::store::TransferRow;

/// One run of a sending scenario.
pub(super) struct Sending<'a, 'l> {
    pub(super) env: &'a Env,
    pub(super) job: &'a Job,
    pub(super) spec: &'a TransferSpec,
    pub(super) profile: &'a Profile,
    pub(super) execution_id: &'a str,
    /// The scenario's folder (logs, work copies).
    pub(super) dir: &'a Path,
    pub(super) log: &'a mut ScenarioLog<'l>,
    pub(super) out: &'a mut TransferOutcome,
    pub(super) cancel: &'a CancellationToken,
}

/// A file moved to the backup folder: where to read it from, as shown to people.
struct Backup {
    target: PathBuf,
    shown: String,
    overwrote: bool,
}

const STOPPED: &str = "stopped: the rest waits for the next run";

impl Sending<'_, '_> {
    pub(super) async fn run(mut self) -> anyhow::Result<()> {
        // The partner connection, kept from file to file and reopened after a failure.
        let mut link: Option<deposit::Link> = None;
        if self.profile.ack.is_some() {
            receive::check_acks(
                self.env,
                self.job,
                self.profile,
                &mut link,
                self.log,
                self.out,
            )
            .await;
        }
        let Some((source, found)) = self.find().await else {
            return Ok(());
        };
        if found.is_empty() {
            self.log.quiet("no file to send").await;
        }
        let delay = self.spec.delay.unwrap_or(self.profile.delay);
        for (i, f) in found.iter().enumerate() {
            if self.cancel.is_cancelled() {
                self.log.line(STOPPED).await;
                break;
            }
            if i > 0 && !delay.is_zero() {
                self.log
                    .line(format!(
                        "waiting {} before the next file",
                        humantime::format_duration(delay)
                    ))
                    .await;
                if !sleep_or_cancel(delay, self.cancel).await {
                    self.log.line(STOPPED).await;
                    break;
                }
            }
            self.send_file(&source, f, &mut link).await?;
        }
        if let Some(l) = link {
            l.close().await;
        }
        source.close().await;
        Ok(())
    }

    /// The files to send now, where they are; `None` (and a failure counted) when they
    /// cannot be read.
    async fn find(&mut self) -> Option<(Source, Vec<Found>)> {
        let source = match Source::open(self.env, self.spec.on.as_deref()).await {
            Ok(s) => s,
            Err(e) => {
                self.log
                    .line(format!("cannot reach the files' server: {e}"))
                    .await;
                self.out.failed += 1;
                return None;
            }
        };
        match source.find(&self.spec.source, &self.spec.matcher).await {
            Ok(found) => Some((source, found)),
            Err(e) => {
                self.log
                    .line(format!(
                        "cannot read {}{}: {e}",
                        source.prefix(),
                        self.spec.source.display()
                    ))
                    .await;
                self.out.failed += 1;
                source.close().await;
                None
            }
        }
    }

    /// One file, from backup to delivery; its row records each stage.
    async fn send_file(
        &mut self,
        source: &Source,
        f: &Found,
        link: &mut Option<deposit::Link>,
    ) -> anyhow::Result<()> {
        let now = now_ms();
        let mut row = TransferRow {
            id: uuid::Uuid::now_v7().to_string(),
            scenario: self.job.name.clone(),
            profile: self.profile.name.clone(),
            direction: "send".into(),
            execution_id: self.execution_id.to_string(),
            file_name: f.name.clone(),
            source_path: f.path.display().to_string(),
            size: f.size as i64,
            segments: 1,
            created_at: now,
            updated_at: now,
            ..TransferRow::default()
        };
        let Some(backup) = self.backup(source, f, &mut row).await? else {
            return Ok(());
        };
        let work = self.dir.join("work").join(&row.id);
        let Some(pieces) = self.prepare(source, f, &backup, &work, &mut row).await? else {
            let _ = std::fs::remove_dir_all(&work);
            return Ok(());
        };
        let deposited = self.deposit_all(f, &pieces, link, &mut row).await;
        row.updated_at = now_ms();
        match deposited {
            Err(e) => {
                row.status = "failed".into();
                row.error = Some(e.clone());
                self.log
                    .line(format!(
                        "{}: failed after {} attempt(s): {e}; the file stays in {}",
                        f.name, row.attempts, backup.shown
                    ))
                    .await;
                self.out.failed += 1;
            }
            Ok(remotes) => {
                row.remote = Some(remotes.join(", "));
                row.deposited_at = Some(row.updated_at);
                row.status = "deposited".into();
                self.log
                    .line(format!("{}: deposited: {}", f.name, remotes.join(", ")))
                    .await;
                match self.verify(&pieces, link.as_ref()).await {
                    Ok(()) => {
                        row.status = "delivered".into();
                        row.delivered_at = Some(now_ms());
                        self.log.line(format!("{}: delivered", f.name)).await;
                        self.out.sent += 1;
                    }
                    Err(e) => {
                        row.status = "failed".into();
                        row.error = Some(format!("not delivered: {e}"));
                        self.log
                            .line(format!("{}: failed: not delivered: {e}", f.name))
                            .await;
                        self.out.failed += 1;
                    }
                }
            }
        }
        self.env.store.save_transfer(&row).await?;
        let _ = std::fs::remove_dir_all(&work);
        Ok(())
    }

    /// Moves the file to the backup folder by the collision policy; `None` when it is
    /// not sent (skipped or failed, recorded).
    async fn backup(
        &mut self,
        source: &Source,
        f: &Found,
        row: &mut TransferRow,
    ) -> anyhow::Result<Option<Backup>> {
        let spec = self.spec;
        match source.backup(f, &spec.backup, spec.collision).await {
            Ok((Backed::Moved { shown, overwrote }, target)) => {
                row.stored_path = shown.clone();
                row.status = "prepared".into();
                Ok(Some(Backup {
                    target,
                    shown,
                    overwrote,
                }))
            }
            Ok((Backed::Skipped, _)) => {
                let why = format!(
                    "{p}{} already holds {} (collision: skip): left in {p}{}, not sent",
                    spec.backup.display(),
                    f.name,
                    spec.source.display(),
                    p = source.prefix()
                );
                give_up(self.env, self.log, row, "skipped", why).await?;
                self.out.skipped += 1;
                Ok(None)
            }
            Err(e) => {
                give_up(self.env, self.log, row, "failed", e).await?;
                self.out.failed += 1;
                Ok(None)
            }
        }
    }

    /// A local copy of the backed-up file, its checksum recorded, and its payload
    /// (gzip, segments + manifest) in `work`; `None` when it failed (recorded).
    async fn prepare(
        &mut self,
        source: &Source,
        f: &Found,
        backup: &Backup,
        work: &Path,
        row: &mut TransferRow,
    ) -> anyhow::Result<Option<Vec<Piece>>> {
        let local = match source.local_copy(&backup.target, f.size, work).await {
            Ok(p) => p,
            Err(e) => {
                let why = format!("{e}; the file stays in {}", backup.shown);
                give_up(self.env, self.log, row, "failed", why).await?;
                self.out.failed += 1;
                return Ok(None);
            }
        };
        row.sha256 = files::sha256_file(&local).unwrap_or_default();
        self.env.store.save_transfer(row).await?;
        self.log
            .line(format!(
                "{}: prepared: moved to {}{} ({} bytes, sha256 {})",
                f.name,
                backup.shown,
                if backup.overwrote {
                    " (overwritten)"
                } else {
                    ""
                },
                f.size,
                &row.sha256[..row.sha256.len().min(16)]
            ))
            .await;
        let (name, compress, segment) =
            (f.name.clone(), self.spec.compress, self.spec.segment_size);
        let w = work.to_path_buf();
        let built = tokio::task::spawn_blocking(move || {
            files::payload(&local, &name, compress, segment, &w)
        })
        .await?;
        let pieces = match built {
            Ok(p) => p,
            Err(e) => {
                let why = format!("cannot build the payload: {e}");
                give_up(self.env, self.log, row, "failed", why).await?;
                self.out.failed += 1;
                return Ok(None);
            }
        };
        if pieces.len() > 1 || self.spec.compress {
            row.segments = pieces.len() as i64;
            self.log
                .line(format!(
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
        Ok(Some(pieces))
    }

    /// Puts every piece at the partner, each with its retries; the remote names, or why
    /// it failed (the pieces after a failed one are not sent).
    async fn deposit_all(
        &mut self,
        f: &Found,
        pieces: &[Piece],
        link: &mut Option<deposit::Link>,
        row: &mut TransferRow,
    ) -> Result<Vec<String>, String> {
        let mut remotes = Vec::new();
        for (k, piece) in pieces.iter().enumerate() {
            let part = format!("{}/{}", k + 1, pieces.len());
            remotes.push(self.deposit_piece(f, piece, part, link, row).await?);
        }
        Ok(remotes)
    }

    /// One piece, retried with backoff; a broken connection is reopened on the next try.
    async fn deposit_piece(
        &mut self,
        f: &Found,
        piece: &Piece,
        part: String,
        link: &mut Option<deposit::Link>,
        row: &mut TransferRow,
    ) -> Result<String, String> {
        let retry = self.spec.retry.unwrap_or(self.profile.retry);
        let mut attempt = 0;
        loop {
            attempt += 1;
            row.attempts += 1;
            let parts = deposit::MailParts {
                scenario: &self.job.name,
                file: &f.name,
                part: part.clone(),
            };
            // A connection that cannot be made is retried like a failed deposit, but a
            // stop then says only "stopped" (nothing was sent on it).
            let (tried, connected) = match connect(link, self.profile).await {
                Ok(l) => (
                    deposit::deposit(l, self.profile, piece, &self.env.cfg, parts).await,
                    true,
                ),
                Err(e) => (Err(format!("connection: {e}")), false),
            };
            let e = match tried {
                Ok(d) => {
                    if let Some(note) = &d.note {
                        self.log
                            .line(format!("{}: {} {note}", f.name, piece.name))
                            .await;
                    }
                    return Ok(d.remote);
                }
                Err(e) => e,
            };
            if let Some(l) = link.take() {
                l.close().await;
            }
            if attempt >= retry.attempts || self.cancel.is_cancelled() {
                return Err(e);
            }
            let pause = retry.pause(attempt + 1);
            self.log
                .line(format!(
                    "{}: attempt {attempt} of {}: {e}; next in {}",
                    f.name,
                    retry.attempts,
                    humantime::format_duration(pause)
                ))
                .await;
            if !sleep_or_cancel(pause, self.cancel).await {
                return Err(if connected {
                    format!("{e}; stopped")
                } else {
                    "stopped".to_string()
                });
            }
        }
    }

    /// Delivered: the partner holds the whole file (its last piece's size checked over
    /// SFTP or in the folder), or its server took it (HTTP success, SMTP relay).
    async fn verify(&self, pieces: &[Piece], link: Option<&deposit::Link>) -> Result<(), String> {
        let profile = self.profile;
        let (Protocol::Sftp { .. } | Protocol::Folder { .. }, Some(l)) = (&profile.protocol, link)
        else {
            return Ok(());
        };
        let Some(last) = pieces.last() else {
            return Ok(());
        };
        let (n, size) = (&last.name, last.size);
        match deposit::remote_size(l, profile, n).await {
            Ok(Some(s)) if s == size => Ok(()),
            Ok(Some(s)) => Err(format!("{n} has {s} bytes at the partner, expected {size}")),
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
        }
    }
}

/// The open connection to the partner, opened now if there is none.
async fn connect<'l>(
    link: &'l mut Option<deposit::Link>,
    profile: &Profile,
) -> Result<&'l mut deposit::Link, String> {
    if link.is_none() {
        *link = Some(deposit::Link::open(profile).await?);
    }
    link.as_mut().ok_or_else(|| "no connection".to_string())
}
