//! Retention: finished executions beyond a job's `max_count`, or older than its
//! `max_age`, are deleted with their files (defaults in ordo.yaml `serve: retention`);
//! what logins leave behind (ended sessions, used or expired codes, waits long over,
//! replay-guard rows past their validity) is deleted too.

use crate::clock::now_ms;
use ordo_jobs::JobSet;

use crate::project::ProjectConfig;
use crate::store::Store;

/// Purges by each job's retention; returns the executions purged (or that would be, with
/// `dry_run`).
pub async fn purge(
    store: &Store,
    cfg: &ProjectConfig,
    jobs: &JobSet,
    dry_run: bool,
    only_job: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let now = now_ms();
    let default = cfg.serve.retention;
    let mut out = Vec::new();
    for job in store.jobs_with_history().await? {
        if only_job.is_some_and(|j| j != job) {
            continue;
        }
        let own = jobs.get(&job).and_then(|j| j.retention);
        let max_count = own.and_then(|r| r.max_count).or(default.max_count);
        let max_age = own.and_then(|r| r.max_age).or(default.max_age);
        let older_than = max_age.map(|a| now - a.as_millis() as i64);
        let ids = store
            .purgeable(&job, max_count.map(|c| c as i64), older_than)
            .await?;
        if !dry_run {
            for id in &ids {
                let dir = cfg.data_dir.join("executions").join(id);
                if let Err(e) = std::fs::remove_dir_all(&dir)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(execution = %id, "retention: cannot remove {}: {e}", dir.display());
                    continue;
                }
                store.delete_execution(id).await?;
            }
            if let Some(t) = older_than {
                store.purge_fires(&job, t).await?;
            }
        }
        out.extend(ids);
    }
    Ok(out)
}

/// Deletes the login state nobody can use any more: sessions idle past their limit (and
/// a day), codes past their tickets' ends, waits over for a day, replay-guard rows past
/// their validity.
pub async fn purge_login_state(store: &Store, cfg: &ProjectConfig) -> anyhow::Result<u64> {
    let now = now_ms();
    let idle = cfg.serve.auth.session_idle.as_millis() as i64;
    let stale = now - idle.max(86_400_000);
    Ok(store.purge_login_state(now, stale).await?)
}
