//! Prints a run's events (when on a terminal) and records them: log lines, each server's
//! progress and result, in batches.

use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::fanout::{Event, NodeResult};
use crate::session::agent::AgentSeen;
use crate::store::write_retry::write_retrying;
use crate::store::{AgentRow, Batch, CollectedFile, LogLine, NodeRow, RunningGroup, Store};
use crate::terminal::Terminal;

/// Everything is written in one transaction per tick (250 ms), or sooner when 1,000
/// lines wait: a server's start, steps, result and files cost no write of their own.
pub(super) async fn observe(
    mut rx: mpsc::Receiver<Event>,
    store: Store,
    id: String,
    mut term: Option<Terminal>,
) -> anyhow::Result<()> {
    let mut batch = Batch::default();
    // Continue numbering after earlier phases of the same execution.
    let mut seq = write_retrying("the run's output", || store.last_log_seq(&id)).await?;
    let mut failed = 0usize;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = tick.tick() => {
                let b = std::mem::take(&mut batch);
                write_retrying("the run's output", || store.record(&id, &b)).await?;
                continue;
            }
        };
        let Some(ev) = ev else { break };
        if let Event::NodeDone(r) = &ev
            && !r.status.is_ok()
        {
            failed += 1;
        }
        if let Some(t) = term.as_mut() {
            t.event(&ev, failed);
            if rx.is_empty() {
                t.flush();
            }
        }
        match ev {
            Event::Line {
                node,
                step,
                stderr,
                ts,
                line,
            } => {
                seq += 1;
                batch.logs.push(LogLine {
                    seq,
                    node,
                    step: step as i64,
                    stream: if stderr { "stderr" } else { "stdout" }.into(),
                    ts,
                    line,
                });
                if batch.logs.len() >= 1000 {
                    let b = std::mem::take(&mut batch);
                    write_retrying("the run's output", || store.record(&id, &b)).await?;
                }
            }
            Event::Warning { node, message } => {
                seq += 1;
                batch.logs.push(LogLine {
                    seq,
                    node,
                    step: 0,
                    stream: "ordo".into(),
                    ts: now_ms(),
                    line: format!("warning: {message}"),
                });
            }
            Event::StepStarted { node, step } => {
                batch.progress.push((node, step as i64, now_ms()));
            }
            Event::AgentSeen(a) => batch.agents.push(agent_row(a)),
            // Written at once, not with the next batch: a controller killed in between
            // would leave it unknown.
            Event::Running {
                node,
                pid,
                start,
                kill_as,
                local,
            } => {
                let g = RunningGroup {
                    execution_id: id.clone(),
                    node,
                    pid: i64::from(pid),
                    start_time: start,
                    kill_as: kill_as.unwrap_or_default(),
                    host: if local {
                        crate::process::hostname()
                    } else {
                        String::new()
                    },
                    tries: 0,
                };
                write_retrying("the run's output", || store.record_group(&g)).await?;
            }
            Event::NodeDone(r) => {
                let files: Vec<CollectedFile> = r
                    .files
                    .iter()
                    .map(|f| CollectedFile {
                        node: r.node.clone(),
                        remote_path: f.remote_path.clone(),
                        local_path: f.local_path.clone(),
                        size: f.size as i64,
                    })
                    .collect();
                batch.done.push((node_row(&id, &r), files));
            }
            _ => {}
        }
    }
    write_retrying("the run's output", || store.record(&id, &batch)).await?;
    if let Some(t) = term.as_mut() {
        t.finish();
    }
    Ok(())
}

pub(super) fn node_row(id: &str, r: &NodeResult) -> NodeRow {
    NodeRow {
        execution_id: id.to_string(),
        node: r.node.clone(),
        host: r.host.clone(),
        transport: r.transport.as_str().into(),
        status: r.status.as_str().into(),
        exit_code: r.exit_code.map(i64::from),
        step_reached: r.step_reached as i64,
        started_at: r.started_at,
        finished_at: r.finished_at,
        files: r.files.len() as i64,
        bytes: r.bytes as i64,
        error: r.error.clone(),
    }
}

/// An agent's answer as the history keeps it.
pub fn agent_row(a: AgentSeen) -> AgentRow {
    AgentRow {
        name: a.node,
        address: a.address,
        version: a.version,
        run_user: a.run_user,
        cert_not_after: a.cert_not_after,
        last_contact: a.at,
    }
}
