//! This controller process as the database knows it: a row refreshed every few seconds.
//! Executions name their owner; when an owner stops refreshing (or is a process of this
//! host that no longer exists), its running executions are marked interrupted.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::store::Store;

/// How often a controller refreshes its row.
pub const HEARTBEAT: Duration = Duration::from_secs(3);

pub struct Instance {
    pub id: String,
    store: Store,
    stop: CancellationToken,
}

impl Instance {
    /// Registers this process (`<host>:<pid>:<role>`) and keeps its row fresh.
    pub async fn register(store: &Store, role: &str) -> anyhow::Result<Instance> {
        let host = crate::project::hostname();
        let pid = std::process::id();
        let id = format!("{host}:{pid}:{role}");
        store
            .heartbeat(&id, &host, i64::from(pid), role, now_ms())
            .await?;
        let stop = CancellationToken::new();
        let (s, i, st, role) = (store.clone(), id.clone(), stop.clone(), role.to_string());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = s.heartbeat(&i, &host, i64::from(pid), &role, now_ms()).await {
                            tracing::warn!("heartbeat: {e}");
                        }
                    }
                    _ = st.cancelled() => break,
                }
            }
        });
        Ok(Instance {
            id,
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

/// Owners that are processes of this host and no longer exist.
pub fn dead_local_owners(known: &[(String, String, i64, String, i64)]) -> Vec<String> {
    let host = crate::project::hostname();
    known
        .iter()
        .filter(|(_, h, pid, _, _)| {
            *h == host && !std::path::Path::new(&format!("/proc/{pid}")).exists()
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
