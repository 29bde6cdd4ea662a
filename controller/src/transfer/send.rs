//! Sending a scenario's files, in named phases: check earlier deposits' acknowledgements,
//! send again what earlier runs left undelivered, find the new files, then for each one
//! in order (paced by `delay`): back it up (never over an undelivered one), build its
//! payload, deposit every piece with retries, verify the delivery, record it.

use std::path::{Path, PathBuf};

use ordo_jobs::Job;
use ordo_jobs::transfer::{Collision, Profile, TransferSpec};
use tokio_util::sync::CancellationToken;

use super::files::Found;
use super::log::ScenarioLog;
use super::source::{Backed, Source};
use super::{TransferOutcome, deposit, give_up, receive, sleep_or_cancel};
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

/// What a run sends: a file an earlier run left undelivered, or a new one.
enum Item {
    Resume(Box<TransferRow>),
    New(Found),
}

/// A file moved to the backup folder: where to read it from, as shown to people.
pub(super) struct Backup {
    pub(super) target: PathBuf,
    pub(super) shown: String,
    pub(super) overwrote: bool,
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
                self.cancel,
            )
            .await;
        }
        let Some((source, found)) = self.find().await else {
            return Ok(());
        };
        // What earlier runs left undelivered goes first, from the backup folder (the
        // source document's "reprise des transferts"): nothing waits there for ever.
        let resumed: Vec<TransferRow> = self
            .env
            .store
            .undelivered(&self.job.name)
            .await?
            .into_iter()
            .filter(|r| r.profile == self.profile.name)
            .filter(|r| !matches!(source, Source::Local) || Path::new(&r.stored_path).is_file())
            .collect();
        if found.is_empty() && resumed.is_empty() {
            self.log.quiet("no file to send").await;
        }
        let delay = self.spec.delay.unwrap_or(self.profile.delay);
        let work = resumed
            .into_iter()
            .map(|r| Item::Resume(Box::new(r)))
            .chain(found.into_iter().map(Item::New));
        for (i, item) in work.enumerate() {
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
            match item {
                Item::Resume(row) => self.resume(&source, *row, &mut link).await?,
                Item::New(f) => self.send_file(&source, &f, &mut link).await?,
            }
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
        let source = match Source::open(self.env, self.spec.on.as_deref(), self.cancel).await {
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

    /// One new file, from backup to delivery; its row records each stage.
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
        self.deliver(source, f, backup, row, link).await
    }

    /// A file an earlier run backed up and did not deliver, sent again from its backup.
    async fn resume(
        &mut self,
        source: &Source,
        mut row: TransferRow,
        link: &mut Option<deposit::Link>,
    ) -> anyhow::Result<()> {
        let prefix = source.prefix();
        let target = PathBuf::from(
            row.stored_path
                .strip_prefix(&prefix)
                .unwrap_or(&row.stored_path),
        );
        let f = Found {
            path: target.clone(),
            name: row.file_name.clone(),
            size: u64::try_from(row.size).unwrap_or_default(),
        };
        self.log
            .line(format!(
                "{}: resumed from {} ({} in run {})",
                f.name, row.stored_path, row.status, row.execution_id
            ))
            .await;
        row.execution_id = self.execution_id.to_string();
        row.error = None;
        row.status = "prepared".into();
        let backup = Backup {
            target,
            shown: row.stored_path.clone(),
            overwrote: false,
        };
        self.deliver(source, &f, backup, row, link).await
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
        if spec.collision == Collision::Overwrite
            && let Some(earlier) = self
                .undelivered_at(source, &spec.backup.join(&f.name))
                .await?
        {
            let why = format!(
                "{p}{} holds an earlier {} not yet delivered ({}): never overwritten; the new one waits in {p}{}",
                spec.backup.display(),
                f.name,
                earlier.status,
                spec.source.display(),
                p = source.prefix()
            );
            self.log.line(format!("{}: waits: {why}", f.name)).await;
            self.out.skipped += 1;
            return Ok(None);
        }
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

    /// The undelivered send of this scenario whose backup is `target`, if any.
    async fn undelivered_at(
        &self,
        source: &Source,
        target: &Path,
    ) -> anyhow::Result<Option<TransferRow>> {
        let shown = format!("{}{}", source.prefix(), target.display());
        Ok(self
            .env
            .store
            .undelivered(&self.job.name)
            .await?
            .into_iter()
            .find(|r| r.stored_path == shown))
    }
}
