//! What a controller killed outright (SIGKILL, a crash, the machine's power) left running
//! on its servers: each server's current step was recorded with its process group when
//! it started ([`crate::store::RunningGroup`]); once the execution reads `interrupted`,
//! the next `controller run` or `serve` connects to that server and stops the group (as
//! an agent stops its own after a restart). A process given the same pid since is told
//! apart by its start time and left alone.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use ordo_inventory::Transport;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::project::Env;
use crate::session::{Session, exec_collect};
use crate::store::RunningGroup;

/// Groups handled per pass, and servers contacted at once.
const PER_PASS: i64 = 500;
const AT_ONCE: usize = 16;
/// A server that does not answer is tried again later, with a growing pause; after this
/// many tries the group is given up (and said so in the log).
const MAX_TRIES: i64 = 12;
/// How long one server may take (connection and kill).
const PER_SERVER: Duration = Duration::from_secs(60);

/// Stops the process groups that interrupted executions left; returns how many were
/// stopped (or found gone).
pub async fn stop_leftovers(env: &Env) -> usize {
    let rows = match env.store.leftover_groups(now_ms(), PER_PASS).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("cannot read what interrupted runs left running: {e}");
            return 0;
        }
    };
    if rows.is_empty() {
        return 0;
    }
    let host = crate::process::hostname();
    let results = futures::stream::iter(rows)
        .map(|g| {
            let host = host.clone();
            async move { stop_one(env, &host, g).await }
        })
        .buffer_unordered(AT_ONCE)
        .collect::<Vec<bool>>()
        .await;
    results.into_iter().filter(|ok| *ok).count()
}

async fn stop_one(env: &Env, host: &str, g: RunningGroup) -> bool {
    let (id, server) = (g.execution_id.as_str(), g.node.as_str());
    let Some(node) = env.inventory.nodes.iter().find(|n| n.name == g.node) else {
        tracing::warn!(
            execution = id,
            node = server,
            "what this interrupted run left running cannot be stopped: the server is no longer in the inventory"
        );
        let _ = env.store.forget_group(id, server).await;
        return false;
    };
    if node.transport == Transport::Local && g.host != host {
        // Another controller's own machine: its pids mean nothing here.
        return false;
    }
    if g.start_time.is_empty() {
        // A server that did not tell the start time (no /proc): a pid alone could be
        // another process's by now, so nothing is signalled.
        tracing::warn!(
            execution = id,
            node = server,
            "what this interrupted run left running (process group {}) cannot be told from other processes on this server: stop it by hand",
            g.pid
        );
        let _ = env.store.forget_group(id, server).await;
        return false;
    }
    let kill_as = Some(g.kill_as.as_str()).filter(|k| !k.is_empty());
    let Some(kill) = u32::try_from(g.pid)
        .ok()
        .and_then(|pid| ordo_proto::shell::kill_command_started(pid, &g.start_time, 2, kill_as))
    else {
        let _ = env.store.forget_group(id, server).await;
        return false;
    };
    let attempt = async {
        let settings =
            crate::session::settings::for_nodes(&env.cfg, std::slice::from_ref(node), false)
                .map_err(|e| e.0)?;
        let session = Session::connect(node, &settings)
            .await
            .map_err(|e| e.to_string())?;
        let never = CancellationToken::new();
        let r = exec_collect(&session, &kill, Bytes::new(), &never)
            .await
            .map_err(|e| e.to_string());
        session.close().await;
        r
    };
    match tokio::time::timeout(PER_SERVER, attempt).await {
        Ok(Ok((st, _, _))) if st.success() => {
            tracing::info!(
                execution = id,
                node = server,
                "stopped what this interrupted run left running (process group {})",
                g.pid
            );
            let _ = env.store.forget_group(id, server).await;
            true
        }
        outcome => {
            let why = match outcome {
                Ok(Ok((st, _, err))) => {
                    format!("{st}: {}", String::from_utf8_lossy(&err).trim())
                }
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {}s", PER_SERVER.as_secs()),
            };
            if g.tries + 1 >= MAX_TRIES {
                tracing::error!(
                    execution = id,
                    node = server,
                    "gave up stopping what this interrupted run left running (process group {}): {why}",
                    g.pid
                );
                let _ = env.store.forget_group(id, server).await;
            } else {
                // 1, 2, 4 ... minutes, an hour at most.
                let pause = (60_000i64 << g.tries.min(6)).min(3_600_000);
                tracing::warn!(
                    execution = id,
                    node = server,
                    "cannot stop yet what this interrupted run left running: {why}; trying again later"
                );
                let _ = env
                    .store
                    .retry_group_later(id, server, now_ms() + pause)
                    .await;
            }
            false
        }
    }
}
