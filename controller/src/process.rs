//! This controller process (not the project): its row in the database, refreshed every few
//! seconds (executions name their owner; when an owner stops refreshing, or is a process
//! of this host that no longer exists, its running executions are marked interrupted);
//! the executions it runs, each stoppable by an abort asked from anywhere; its host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::store::Store;

/// How often a controller refreshes its row.
pub const HEARTBEAT: Duration = Duration::from_secs(3);
/// How often a controller looks for aborts asked for its executions.
pub const ABORT_POLL: Duration = Duration::from_secs(1);

/// The name of the host this process runs on.
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The executions running in this process, each with the token that stops it. Owned by
/// the process's [`Instance`] and shared with its `Env`s (a reload keeps it).
#[derive(Default)]
pub struct Aborts {
    // A std Mutex: held to insert, remove or clone a token, never across an await.
    running: Mutex<HashMap<String, CancellationToken>>,
}

/// While it lives, an abort asked for its execution (by any controller, through the
/// database, or by [`Aborts::abort_here`]) cancels its token.
pub struct Abortable {
    aborts: Arc<Aborts>,
    id: String,
}

impl Aborts {
    /// Registers execution `id` as running here, stopped by `token`.
    pub fn register(self: &Arc<Self>, id: &str, token: CancellationToken) -> Abortable {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), token);
        Abortable {
            aborts: self.clone(),
            id: id.to_string(),
        }
    }

    /// Stops execution `id` if it runs in this process; false when it does not.
    pub fn abort_here(&self, id: &str) -> bool {
        let token = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        token.map(|t| t.cancel()).is_some()
    }

    fn is_empty(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

impl Drop for Abortable {
    fn drop(&mut self) {
        self.aborts
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

pub struct Instance {
    pub id: String,
    /// What runs here, for aborts.
    pub aborts: Arc<Aborts>,
    store: Store,
    stop: CancellationToken,
}

impl Instance {
    /// Registers this process (`<host>:<pid>:<role>:<start>`) and keeps its row fresh.
    /// `<start>` (when the process started, see [`start_ticks`]) makes the id unique per
    /// process start: a container restarted with the same pid is another instance, and
    /// the runs of the one before it are swept as soon as it is seen dead.
    pub async fn register(store: &Store, role: &str) -> anyhow::Result<Instance> {
        let host = hostname();
        let pid = std::process::id();
        let start = start_ticks(pid).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
        let id = format!("{host}:{pid}:{role}:{start}");
        store
            .heartbeat(&id, &host, i64::from(pid), role, now_ms())
            .await?;
        let stop = CancellationToken::new();
        let aborts = Arc::new(Aborts::default());
        let (s, i, st, role) = (store.clone(), id.clone(), stop.clone(), role.to_string());
        let a = aborts.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            let mut poll = tokio::time::interval(ABORT_POLL);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = s.heartbeat(&i, &host, i64::from(pid), &role, now_ms()).await {
                            tracing::warn!("heartbeat: {e}");
                        }
                    }
                    _ = poll.tick() => abort_requested(&s, &i, &a).await,
                    _ = st.cancelled() => break,
                }
            }
        });
        Ok(Instance {
            id,
            aborts,
            store: store.clone(),
            stop,
        })
    }

    /// Stops refreshing and removes the row (a clean exit: nothing of ours is running).
    pub async fn retire(&self) {
        self.stop.cancel();
        let _ = self.store.forget_controller(&self.id).await;
    }
}

/// Stops the executions of this process someone asked to abort.
async fn abort_requested(store: &Store, me: &str, aborts: &Aborts) {
    if aborts.is_empty() {
        return;
    }
    match store.aborts_for(me).await {
        Ok(asked) => {
            for (id, by) in asked {
                if aborts.abort_here(&id) {
                    tracing::warn!(execution = %id, "aborted by {by}");
                }
            }
        }
        Err(e) => tracing::warn!("looking for aborts: {e}"),
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`, field 22):
/// with the pid, it names one process start.
pub fn start_ticks(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Owners that are processes of this host and no longer exist: their pid is gone, or is
/// another process now (its start differs from the one in the instance id).
pub fn dead_local_owners(known: &[(String, String, i64, String, i64)]) -> Vec<String> {
    let host = hostname();
    known
        .iter()
        .filter(|(id, h, pid, _, _)| {
            if *h != host {
                return false;
            }
            let recorded = id.rsplit(':').next().unwrap_or_default();
            match u32::try_from(*pid).ok().and_then(start_ticks) {
                None => true,
                // Ids of older versions end with the role: only a missing pid tells.
                Some(now) => recorded.chars().all(|c| c.is_ascii_digit()) && now != recorded,
            }
        })
        .map(|(i, ..)| i.clone())
        .collect()
}

/// Marks interrupted the running executions whose controller is gone; returns them.
pub async fn sweep(
    store: &Store,
    dead_after: Duration,
) -> anyhow::Result<Vec<crate::store::ExecutionRow>> {
    let known = store.controllers().await?;
    let dead = dead_local_owners(&known);
    let now = now_ms();
    let marked = store
        .interrupt_orphans(now - dead_after.as_millis() as i64, &dead, now)
        .await?;
    for e in &marked {
        tracing::warn!(execution = %e.id, job = %e.job, owner = %e.owner, "marked interrupted: its controller stopped during the run");
    }
    for d in dead {
        store.forget_controller(&d).await?;
    }
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_dead_when_its_pid_is_gone_or_started_again() {
        let host = hostname();
        let me = std::process::id();
        let start = start_ticks(me).expect("this process's start");
        let row = |id: String, pid: u32| (id, host.clone(), i64::from(pid), "run".to_string(), 0);
        let alive = row(format!("{host}:{me}:run:{start}"), me);
        let restarted = row(format!("{host}:{me}:run:1"), me);
        let gone = row(format!("{host}:4194304:run:5"), 4_194_304);
        let elsewhere = (
            format!("other:{me}:run:1"),
            "other".to_string(),
            i64::from(me),
            "run".to_string(),
            0,
        );
        let dead = dead_local_owners(&[alive.clone(), restarted.clone(), gone.clone(), elsewhere]);
        assert_eq!(dead, vec![restarted.0, gone.0]);
    }
}
