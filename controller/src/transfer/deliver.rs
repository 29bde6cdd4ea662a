//! The second half of sending one file: from its backup to the partner. Its payload
//! (gzip, segments), every piece deposited with retries and backoff (a broken connection
//! is reopened), the delivery verified, the row recorded.

use std::path::Path;

use ordo_jobs::transfer::{AckMode, Profile, Protocol};

use super::files::{Found, Piece};
use super::send::{Backup, Sending};
use super::source::Source;
use super::{deposit, files, give_up, sleep_or_cancel};
use crate::clock::now_ms;
use crate::store::TransferRow;

/// A transfer's working folder, removed when the transfer is over, however it ended.
struct WorkDir(std::path::PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Sending<'_, '_> {
    /// From the backup to the partner: payload, deposit, verification, record.
    pub(super) async fn deliver(
        &mut self,
        source: &Source,
        f: &Found,
        backup: Backup,
        mut row: TransferRow,
        link: &mut Option<deposit::Link>,
    ) -> anyhow::Result<()> {
        let work = self.dir.join("work").join(&row.id);
        // The copies and payloads in `work` go on every way out, errors included.
        let _cleanup = WorkDir(work.clone());
        let Some(pieces) = self.prepare(source, f, &backup, &work, &mut row).await? else {
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
        let (mut name, mut compress, segment) =
            (f.name.clone(), self.spec.compress, self.spec.segment_size);
        let mut local = local;
        if !self.profile.encrypt.is_empty() {
            match self.seal(&local, &name, compress, work).await {
                Ok((sealed, sealed_name)) => {
                    (local, name, compress) = (sealed, sealed_name, false);
                }
                Err(e) => {
                    let why = format!(
                        "not encrypted, so not sent: {e}; the file stays in {}",
                        backup.shown
                    );
                    give_up(self.env, self.log, row, "failed", why).await?;
                    self.out.failed += 1;
                    return Ok(None);
                }
            }
        }
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

    /// The file (gzipped first when the scenario compresses) encrypted to the profile's
    /// keys and every backup key: `<name>[.gz].p7m` in `work`.
    async fn seal(
        &self,
        local: &Path,
        name: &str,
        compress: bool,
        work: &Path,
    ) -> Result<(std::path::PathBuf, String), String> {
        let names: Vec<&str> = self
            .profile
            .encrypt
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let (certs, _) = crate::pki::keys::recipients(&self.env.store, &names, now_ms()).await?;
        let (local, name, work) = (local.to_path_buf(), name.to_string(), work.to_path_buf());
        tokio::task::spawn_blocking(move || {
            let mut data = std::fs::read(&local).map_err(|e| e.to_string())?;
            let mut out_name = name;
            if compress {
                use std::io::Write;
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(&data).map_err(|e| e.to_string())?;
                data = enc.finish().map_err(|e| e.to_string())?;
                out_name.push_str(".gz");
            }
            out_name.push_str(".p7m");
            let der = crate::pki::cms::encrypt(&data, &certs).map_err(|e| e.to_string())?;
            std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
            let path = work.join(&out_name);
            std::fs::write(&path, der).map_err(|e| e.to_string())?;
            Ok((path, out_name))
        })
        .await
        .map_err(|e| e.to_string())?
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
