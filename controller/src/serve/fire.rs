//! Deciding one fire, of a schedule or a file trigger, exactly once: run it, queue it or
//! skip it by the job's overlap policy (the decision is a row only one controller can
//! insert), and starting the queued ones when their job has nothing running.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ordo_jobs::{Job, Overlap};

use super::Server;
use crate::clock::now_ms;
use crate::exec::{Launch, execution_id};
use crate::store::FireRow;

/// A fire to decide.
pub(super) struct Fire {
    /// `cron:<ms>`, or the file and its version for a trigger.
    pub(super) key: String,
    /// `schedule` or `watch`.
    pub(super) kind: &'static str,
    pub(super) due_at: i64,
    /// The options it runs with.
    pub(super) given: Vec<(String, String)>,
    pub(super) note: Option<String>,
    pub(super) overlap: Overlap,
    /// A fire of this job already waits in the queue.
    pub(super) queued_before: bool,
}

/// Decides one fire (schedule or file) once: run it, queue it, or skip it, by the job's
/// overlap policy; starts the run when this controller's decision is the one recorded.
pub(super) async fn decide(server: &Arc<Server>, job: &Arc<Job>, f: Fire) -> anyhow::Result<()> {
    let Fire {
        key,
        kind,
        due_at,
        given,
        note,
        overlap,
        queued_before,
    } = f;
    let running = running(server, &job.name).await?;
    let mut fire = FireRow {
        job: job.name.clone(),
        fire_key: key.clone(),
        kind: kind.into(),
        due_at,
        decided_by: server.instance.clone(),
        decided_at: now_ms(),
        options: serde_json::to_string(&given.iter().cloned().collect::<HashMap<_, _>>())?,
        note: note.clone(),
        ..FireRow::default()
    };
    let options = match crate::exec::resolve_options(job, given.clone()).await {
        Ok(o) => o,
        Err(errs) => {
            fire.decision = "failed".into();
            fire.note = Some(format!("options: {}", errs.join("; ")));
            server.store.claim_fire(&fire).await?;
            tracing::error!(job = %job.name, "{kind} fire not run: {}", errs.join("; "));
            return Ok(());
        }
    };
    fire.decision = match overlap {
        Overlap::Skip if running > 0 => "skipped",
        Overlap::Queue if running > 0 || queued_before => "queued",
        _ => "ran",
    }
    .into();
    if fire.decision == "skipped" {
        fire.note = Some(format!(
            "{}the previous run is still going (overlap: skip)",
            note.map(|n| format!("{n}; ")).unwrap_or_default()
        ));
    }
    let id = execution_id();
    if fire.decision == "ran" {
        fire.execution_id = Some(id.clone());
    }
    if !server.store.claim_fire(&fire).await? {
        return Ok(()); // decided already, by this or another controller
    }
    tracing::info!(job = %job.name, fire = %key, decision = %fire.decision, "{kind} fire");
    if fire.decision == "ran" {
        server.spawn_execution(job.clone(), launch(id, options, kind, &key));
    }
    Ok(())
}

/// Runs of the job going on here or on another live controller.
pub(super) async fn running(server: &Arc<Server>, job: &str) -> anyhow::Result<i64> {
    let dead_after = server.env().cfg.serve.dead_after.as_millis() as i64;
    let elsewhere = server
        .store
        .running_count(job, now_ms() - dead_after)
        .await?;
    Ok((server.running_here(job) as i64).max(elsewhere))
}

fn launch(id: String, options: ordo_jobs::OptionValues, kind: &str, key: &str) -> Launch {
    Launch {
        id: Some(id),
        options,
        cause: kind.into(),
        fire_key: Some(key.into()),
        started_by: format!("ordo {kind}"),
        ..Launch::default()
    }
}

/// Starts the oldest queued fire of each job that has nothing running.
pub(super) async fn start_queued(server: &Arc<Server>, queued: Vec<FireRow>) -> anyhow::Result<()> {
    let env = server.env();
    let mut started: HashSet<String> = HashSet::new();
    for f in queued {
        if started.contains(&f.job) {
            continue;
        }
        started.insert(f.job.clone());
        let Some(job) = env.jobs.get(&f.job).cloned() else {
            server
                .store
                .update_fire(
                    &f.job,
                    &f.fire_key,
                    "queued",
                    "failed",
                    None,
                    Some("the job no longer exists"),
                )
                .await?;
            continue;
        };
        if running(server, &job.name).await? > 0 {
            continue;
        }
        let given: Vec<(String, String)> =
            serde_json::from_str::<HashMap<String, String>>(&f.options)
                .unwrap_or_default()
                .into_iter()
                .collect();
        let options = match crate::exec::resolve_options(&job, given).await {
            Ok(o) => o,
            Err(errs) => {
                let why = format!("options: {}", errs.join("; "));
                server
                    .store
                    .update_fire(&f.job, &f.fire_key, "queued", "failed", None, Some(&why))
                    .await?;
                continue;
            }
        };
        let id = execution_id();
        if server
            .store
            .update_fire(&f.job, &f.fire_key, "queued", "ran", Some(&id), None)
            .await?
        {
            tracing::info!(job = %job.name, fire = %f.fire_key, "queued fire started");
            server.spawn_execution(job, launch(id, options, &f.kind, &f.fire_key));
        }
    }
    Ok(())
}
