//! Acknowledgements of earlier deposits, and retrieval of the partner's files.

use ordo_jobs::Job;
use ordo_jobs::transfer::{AckMode, Collision, Profile, Protocol, TransferSpec};

use super::log::ScenarioLog;
use super::{TransferOutcome, deposit, files};
use crate::clock::now_ms;
use crate::project::Env;
use crate::store::TransferRow;
use tokio_util::sync::CancellationToken;

/// Acknowledgements of earlier deposits (`consumed`: the partner took the file; `file`:
/// an ack file appeared), and those past the deadline.
pub(super) async fn check_acks(
    env: &Env,
    job: &Job,
    profile: &Profile,
    link: &mut Option<deposit::Link>,
    log: &mut ScenarioLog<'_>,
    out: &mut TransferOutcome,
    cancel: &CancellationToken,
) {
    let Some(ack) = &profile.ack else { return };
    let waiting = match awaiting_ack(env, job).await {
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
                // Past the deadline is past the deadline: the partner being unreachable
                // is no acknowledgement.
                let now = now_ms();
                for mut t in waiting {
                    if past_deadline(&t, ack.deadline, now) {
                        let why = format!(
                            "no acknowledgement within {} of the deposit (the partner could not be reached to check: {e})",
                            humantime::format_duration(ack.deadline)
                        );
                        unacknowledged(&mut t, now, why, log, out).await;
                        if let Err(e) = env.store.save_transfer(&t).await {
                            tracing::warn!("transfer {}: {e}", t.id);
                        }
                    }
                }
                return;
            }
        }
    }
    let Some(l) = link.as_ref() else { return };
    let now = now_ms();
    for mut t in waiting {
        if cancel.is_cancelled() {
            log.line("stopped: the other acknowledgements are checked next run")
                .await;
            return;
        }
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
            Ok(false) if past_deadline(&t, ack.deadline, now) => {
                let why = format!(
                    "no acknowledgement within {} of the deposit",
                    humantime::format_duration(ack.deadline)
                );
                unacknowledged(&mut t, now, why, log, out).await;
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

/// A scenario's deposits that wait for their acknowledgement.
pub(super) async fn awaiting_ack(
    env: &Env,
    job: &Job,
) -> crate::store::StoreResult<Vec<TransferRow>> {
    env.store
        .transfers(
            Some(&job.name),
            &["delivered".into(), "deposited".into()],
            10_000,
        )
        .await
}

/// Whether a deposit's acknowledgement is overdue at `now`.
pub(super) fn past_deadline(t: &TransferRow, deadline: std::time::Duration, now: i64) -> bool {
    now - t.deposited_at.unwrap_or(t.created_at) > deadline.as_millis() as i64
}

/// Marks a deposit unacknowledged, says why in the log and counts it.
async fn unacknowledged(
    t: &mut TransferRow,
    now: i64,
    why: String,
    log: &mut ScenarioLog<'_>,
    out: &mut TransferOutcome,
) {
    log.line(format!("{}: unacknowledged: {why}", t.file_name))
        .await;
    t.status = "unacknowledged".into();
    t.updated_at = now;
    t.error = Some(why);
    out.unacknowledged += 1;
}

/// A retrieval run: what `receive` fetches, for which execution, until when.
pub(super) struct Retrieval<'a> {
    pub env: &'a Env,
    pub job: &'a Job,
    pub spec: &'a TransferSpec,
    pub profile: &'a Profile,
    pub execution_id: &'a str,
    /// An abort or the scenario's timeout: the files not fetched yet wait in the inbox.
    pub cancel: &'a CancellationToken,
}

pub(super) async fn receive(
    r: Retrieval<'_>,
    log: &mut ScenarioLog<'_>,
    out: &mut TransferOutcome,
) -> anyhow::Result<()> {
    let Retrieval {
        env,
        job,
        spec,
        profile,
        execution_id,
        cancel,
    } = r;
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
        if cancel.is_cancelled() {
            log.line(format!(
                "stopped: the rest waits in {inbox} for the next run"
            ))
            .await;
            break;
        }
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
        // An abort or the scenario's timeout stops a download under way: the file stays
        // at the partner for the next run.
        let got = tokio::select! {
            r = deposit::sftp_get(sftp, &remote, &dest, size) => r,
            () = cancel.cancelled() => {
                let _ = tokio::fs::remove_file(deposit::part_of(&dest)).await;
                Err("stopped while downloading (the run was aborted or its timeout passed)".into())
            }
        };
        match got {
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
