//! Mails the SMTP relay could not take: kept in `<outbox>/pending/` (the message as
//! `<id>.eml`, its envelope as `<id>.envelope`: the sender, then one recipient a line),
//! and sent by `controller serve` when the relay answers again.

use std::path::{Path, PathBuf};

use lettre::address::Envelope;
use lettre::{Address, AsyncTransport};

use super::MailError;
use crate::project::MailConfig;

/// The folder of the mails waiting for the relay.
pub fn pending_dir(outbox: &Path) -> PathBuf {
    outbox.join("pending")
}

/// Keeps a mail the relay did not take; returns its `.eml`.
pub(super) async fn keep(
    outbox: &Path,
    envelope: &Envelope,
    raw: &[u8],
) -> Result<PathBuf, MailError> {
    let dir = pending_dir(outbox);
    let err = |reason: String| MailError::Outbox {
        dir: dir.display().to_string(),
        reason,
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| err(e.to_string()))?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let mut lines = vec![envelope.from().map(|a| a.to_string()).unwrap_or_default()];
    lines.extend(envelope.to().iter().map(|a| a.to_string()));
    let eml = dir.join(format!("{id}.eml"));
    // The envelope last: a mail is pending once both files are there.
    tokio::fs::write(&eml, raw)
        .await
        .map_err(|e| err(e.to_string()))?;
    tokio::fs::write(dir.join(format!("{id}.envelope")), lines.join("\n"))
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok(eml)
}

/// Sends every pending mail the relay takes now; returns how many went and how many
/// still wait. Nothing is removed before the relay accepted it.
pub async fn flush(cfg: &MailConfig) -> (usize, usize) {
    let Some(smtp) = &cfg.smtp else {
        return (0, 0);
    };
    let dir = pending_dir(&cfg.outbox);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return (0, 0);
    };
    let mut ids: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "envelope"))
        .collect();
    ids.sort();
    let (mut sent, mut left) = (0, 0);
    let transport = match super::relay(smtp) {
        Ok((t, _)) => t,
        Err(e) => {
            tracing::warn!("pending mails: {e}");
            return (0, ids.len());
        }
    };
    for envelope_path in ids {
        let eml = envelope_path.with_extension("eml");
        let (Ok(text), Ok(raw)) = (std::fs::read_to_string(&envelope_path), std::fs::read(&eml))
        else {
            left += 1;
            continue;
        };
        let mut lines = text.lines();
        let from = lines.next().and_then(|a| a.parse::<Address>().ok());
        let to: Vec<Address> = lines.filter_map(|a| a.parse().ok()).collect();
        let Ok(envelope) = Envelope::new(from, to) else {
            tracing::warn!(
                "pending mail {}: its envelope cannot be read",
                eml.display()
            );
            left += 1;
            continue;
        };
        let tried = tokio::time::timeout(smtp.timeout, transport.send_raw(&envelope, &raw)).await;
        match tried {
            Ok(Ok(_)) => {
                let _ = std::fs::remove_file(&envelope_path);
                let _ = std::fs::remove_file(&eml);
                tracing::info!("pending mail {} sent through {}", eml.display(), smtp.host);
                sent += 1;
            }
            Ok(Err(e)) => {
                tracing::debug!("pending mail {}: {e}", eml.display());
                left += 1;
            }
            Err(_) => {
                tracing::debug!(
                    "pending mail {}: no answer from {}",
                    eml.display(),
                    smtp.host
                );
                left += 1;
            }
        }
    }
    (sent, left)
}
