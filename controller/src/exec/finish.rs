//! The end of an execution: its status, the summaries, the archive, the mail, the last
//! row and the success or failure notification.

use ordo_jobs::{MailWhen, NotifyEvent};
use tokio_util::sync::CancellationToken;

use super::phases::Running;
use super::{Outcome, report};
use crate::clock::now_ms;
use crate::store::ExecutionStatus;
use crate::store::write_retry::write_retrying;
use crate::terminal::{members_table, summary_table};

impl Running<'_> {
    pub(super) async fn finish(mut self, cancel: &CancellationToken) -> anyhow::Result<Outcome> {
        let results = self.results(cancel).await?;
        self.finished.cancel();
        let failed = results.iter().filter(|r| !r.status.is_ok()).count();
        let status = if self.timed_out {
            ExecutionStatus::TimedOut
        } else if cancel.is_cancelled() {
            ExecutionStatus::Aborted
        } else if failed > 0 || self.step_error.is_some() {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Succeeded
        };
        self.row.error = self.step_error.clone();
        let table = match &self.transfer_summary {
            Some(t) => format!("transfer: {t}"),
            None if !self.plan.job.runs_on_servers() => members_table(&self.members),
            None => summary_table(&results),
        };
        let job = self.plan.job.clone();
        report::write_summaries(&self.exec_dir, &job, &self.id, status, &results, &table)?;
        let collected: usize = results.iter().map(|r| r.files.len()).sum();
        let archive = self.archive().await?;
        // Encryption was asked for and could not be done: no archive went out.
        let status = if !self.plan.job.encrypt.is_empty()
            && archive.is_none()
            && self.plan.job.runs_on_servers()
            && status.succeeded()
        {
            ExecutionStatus::Failed
        } else {
            status
        };
        self.mail(status, &table, collected, archive.as_ref()).await;

        self.row.status = status;
        self.row.finished_at = Some(now_ms());
        self.row.nodes_ok = (results.len() - failed) as i64;
        self.row.nodes_failed = failed as i64;
        self.row.archive = archive.as_ref().map(|p| p.display().to_string());
        let (store, row) = (&self.env.store, &self.row);
        write_retrying("the execution's end", || store.finish_execution(row)).await?;
        tracing::info!(execution = %self.id, job = %job.name, status = %status, "execution finished");
        let event = if status.succeeded() {
            NotifyEvent::Success
        } else {
            NotifyEvent::Failure
        };
        self.notifier.send(event, status, Some(&table)).await;
        Ok(Outcome {
            id: self.id.clone(),
            job: job.name.clone(),
            status,
            results,
            archive,
            collected,
            table,
            started_at: self.row.started_at,
            finished_at: self.row.finished_at.unwrap_or(self.row.started_at),
        })
    }

    /// The tar.gz of the collected files, if the job wants one; a failure is recorded on
    /// the execution and does not stop it.
    async fn archive(&mut self) -> anyhow::Result<Option<std::path::PathBuf>> {
        let job = &self.plan.job;
        if !job.archive || !job.runs_on_servers() {
            return Ok(None);
        }
        let dir = self.exec_dir.clone();
        let name = format!("{}-{}", job.name.replace('/', "_"), self.id);
        match tokio::task::spawn_blocking(move || crate::archive::build(&dir, &name)).await? {
            Ok(p) if job.encrypt.is_empty() => Ok(Some(p)),
            Ok(p) => {
                let sealed = self.encrypt(&p).await;
                // Never plain data where encryption was asked for: the archive and the
                // collected files go, whether the encryption worked or not.
                let _ = std::fs::remove_file(&p);
                self.remove_plain();
                match sealed {
                    Ok(s) => Ok(Some(s)),
                    Err(e) => {
                        let why = format!("archive: not encrypted, so not kept: {e}");
                        self.row.error = Some(match self.row.error.take() {
                            Some(before) => format!("{before}; {why}"),
                            None => why,
                        });
                        tracing::error!(execution = %self.id, "archive not encrypted: {e}");
                        Ok(None)
                    }
                }
            }
            Err(e) if !job.encrypt.is_empty() => {
                self.remove_plain();
                self.row.error = Some(format!(
                    "archive: {e}; the collected files are not kept (encryption was asked for)"
                ));
                Ok(None)
            }
            Err(e) => {
                self.row.error = Some(format!("archive: {e}"));
                tracing::error!(execution = %self.id, "archive failed: {e}");
                Ok(None)
            }
        }
    }

    /// Removes what an encrypted archive must not leave in clear: each server's collected
    /// files and any partial archive.
    fn remove_plain(&self) {
        for n in &self.plan.nodes {
            let d = self.exec_dir.join(n.folder_name());
            if d.is_dir()
                && let Err(e) = std::fs::remove_dir_all(&d)
            {
                tracing::error!(execution = %self.id, "cannot remove {}: {e}", d.display());
            }
        }
        if let Ok(rd) = std::fs::read_dir(&self.exec_dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(".part") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// `<archive>.p7m`, the archive encrypted to the job's keys and every backup key, in
    /// place of the archive.
    async fn encrypt(&self, plain: &std::path::Path) -> Result<std::path::PathBuf, String> {
        let names: Vec<&str> = self
            .plan
            .job
            .encrypt
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let now = crate::clock::now_ms();
        let (certs, warnings) = crate::pki::keys::recipients(&self.env.store, &names, now).await?;
        for w in &warnings {
            tracing::warn!(execution = %self.id, "archive: {w}");
            if self.launch.terminal {
                say!("warning: archive: {w}");
            }
        }
        let size = std::fs::metadata(plain)
            .map_err(|e| format!("{}: {e}", plain.display()))?
            .len();
        if size > crate::pki::cms::MAX_CONTENT {
            return Err(format!(
                "the archive is {} and at most {} is encrypted",
                ordo_jobs::units::format_size(size),
                ordo_jobs::units::format_size(crate::pki::cms::MAX_CONTENT)
            ));
        }
        let data = tokio::fs::read(plain)
            .await
            .map_err(|e| format!("{}: {e}", plain.display()))?;
        let der = tokio::task::spawn_blocking(move || crate::pki::cms::encrypt(&data, &certs))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let sealed = std::path::PathBuf::from(format!("{}.p7m", plain.display()));
        crate::project::write_private(&sealed, &der)
            .map_err(|e| format!("{}: {e}", sealed.display()))?;
        std::fs::remove_file(plain).map_err(|e| format!("{}: {e}", plain.display()))?;
        Ok(sealed)
    }

    /// The job's mail, when its `when` and `send_empty` say so; where it went (or why
    /// not) is recorded on the execution.
    async fn mail(
        &mut self,
        status: ExecutionStatus,
        table: &str,
        collected: usize,
        archive: Option<&std::path::PathBuf>,
    ) {
        let job = self.plan.job.clone();
        let (Some(spec), false) = (&job.mail, self.launch.no_mail) else {
            return;
        };
        let wanted = match spec.when {
            MailWhen::Always => true,
            MailWhen::OnFailure => !status.succeeded(),
            MailWhen::OnSuccess => status.succeeded(),
            MailWhen::Never => false,
        };
        let terminal = self.launch.terminal;
        if !wanted {
            return;
        }
        if !spec.send_empty && collected == 0 {
            self.row.mail = Some("not sent: nothing was collected (send_empty: false)".into());
            if terminal {
                say!("mail not sent: nothing was collected");
            }
            return;
        }
        let (cfg, options) = (&self.env.cfg, &self.launch.options);
        let sent = report::send_mail(cfg, &job, spec, options, &self.id, status, table, archive);
        match sent.await {
            Ok(where_) => {
                if terminal && where_.starts_with("not sent now") {
                    say!("mail {where_}");
                } else if terminal && cfg.mail.smtp.is_some() {
                    say!("mail sent: {where_}");
                } else if terminal {
                    say!("mail written to the outbox (no SMTP server in ordo.yaml): {where_}");
                }
                self.row.mail = Some(where_);
            }
            Err(e) => {
                eprintln!("{e}");
                self.row.mail = Some(format!("not sent: {e}"));
            }
        }
    }
}
