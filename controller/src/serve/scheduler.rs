//! The leader's loop: hold the `scheduler` lease, fire due schedules, start queued fires,
//! keep the file watchers running, purge old history.
//!
//! Exactly once: every fire is decided by inserting its row in `fires` (primary key job +
//! fire), and only the controller whose insert succeeded acts on it. A fire is owed from
//! the later of the schedule's first sight and the last decided fire, so a new leader
//! picks up where the old one stopped: fires up to `misfire_grace` late still run; older
//! ones follow the job's `missed` policy.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordo_jobs::{Job, Missed};
use tokio_util::sync::CancellationToken;

use super::fire::{Fire, decide, running, start_queued};
use super::owed::owed;
use super::watch::Watchers;
use super::{LEASE, Server, retention};
use crate::clock::now_ms;
use crate::exec::{Launch, execution_id};
use crate::store::FireRow;

const TICK: Duration = Duration::from_millis(250);
const PURGE_EVERY: Duration = Duration::from_secs(3600);

pub(super) async fn run(server: Arc<Server>, stop: CancellationToken) {
    let ttl = server.env().cfg.serve.lease_ttl;
    let renew_every = ttl / 3;
    let mut lease_until: Option<Instant> = None;
    let mut last_renew: Option<Instant> = None;
    let mut owed_from: HashMap<String, i64> = HashMap::new();
    let mut watchers = Watchers::default();
    let mut last_purge: Option<Instant> = None;
    let mut last_ack_check: Option<Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let now_i = Instant::now();
        if last_renew.is_none_or(|t| now_i.duration_since(t) >= renew_every) {
            let now = match server.store.db_now().await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("scheduler lease: {e}");
                    last_renew = Some(now_i);
                    continue;
                }
            };
            match server
                .store
                .acquire_lease(LEASE, &server.instance, now, now + ttl.as_millis() as i64)
                .await
            {
                Ok(true) => lease_until = Some(now_i + ttl),
                Ok(false) => lease_until = None,
                Err(e) => tracing::warn!("scheduler lease: {e}"),
            }
            last_renew = Some(now_i);
        }
        // Stop acting a little before the lease could be taken over.
        let leader = lease_until.is_some_and(|u| now_i + ttl / 5 < u);
        if leader != server.is_leader() {
            server
                .leader
                .store(leader, std::sync::atomic::Ordering::SeqCst);
            if leader {
                tracing::info!(instance = %server.instance, "this controller is the scheduler now");
                // The previous leader's runs, if it died, are interrupted before deciding.
                server.sweep().await;
                owed_from.clear();
                last_purge = None;
            } else {
                tracing::warn!(instance = %server.instance, "this controller is no longer the scheduler");
                watchers.stop_all();
            }
        }
        if !leader {
            continue;
        }
        let env = server.env();
        let queued = match server.store.queued_fires().await {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!("scheduler: {e}");
                continue;
            }
        };
        let queued_jobs: HashSet<String> = queued.iter().map(|f| f.job.clone()).collect();
        let off: HashSet<String> = match server.store.disabled_schedules().await {
            Ok(d) => d.into_iter().map(|(job, _, _)| job).collect(),
            Err(e) => {
                tracing::warn!("scheduler: {e}");
                continue;
            }
        };
        for job in env.jobs.jobs.values() {
            if off.contains(&job.name) {
                // Switched off: when it is on again, its fires are owed from then.
                owed_from.remove(&job.name);
                continue;
            }
            if let Some(s) = job
                .schedule
                .as_ref()
                .filter(|s| s.enabled && !s.crons.is_empty())
                && let Err(e) = fire_schedule(&server, job, s, &mut owed_from, &queued_jobs).await
            {
                tracing::warn!(job = %job.name, "scheduler: {e}");
            }
        }
        if let Err(e) = start_queued(&server, queued).await {
            tracing::warn!("scheduler: queued fires: {e}");
        }
        watchers.sync(&server, &env);
        if last_ack_check.is_none_or(|t| t.elapsed() >= env.cfg.serve.ack_check) {
            last_ack_check = Some(Instant::now());
            check_ack_deadlines(&server, &env).await;
        }
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            match retention::purge(&env.store, &env.cfg, &env.jobs, false, None).await {
                Ok(ids) if !ids.is_empty() => {
                    tracing::info!("retention: {} execution(s) purged", ids.len())
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("retention: {e}"),
            }
            match retention::purge_login_state(&env.store, &env.cfg).await {
                Ok(n) if n > 0 => tracing::debug!("retention: {n} stale login row(s) purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!("retention: login state: {e}"),
            }
        }
    }
    watchers.stop_all();
}

/// Starts an acknowledgements-only run of each sending scenario with a deposit past its
/// deadline (unless one of its runs is going on): the deadline is kept on this clock.
async fn check_ack_deadlines(server: &Arc<Server>, env: &crate::project::Env) {
    for job in crate::transfer::due_for_ack_check(env).await {
        match running(server, &job.name).await {
            Ok(0) => {}
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(job = %job.name, "acknowledgement deadlines: {e}");
                continue;
            }
        }
        tracing::info!(job = %job.name, "a deposit is past its acknowledgement deadline: checking");
        server.spawn_execution(
            job,
            Launch {
                id: Some(execution_id()),
                cause: "ack-deadline".into(),
                started_by: "serve".into(),
                acks_only: true,
                ..Launch::default()
            },
        );
    }
}

async fn fire_schedule(
    server: &Arc<Server>,
    job: &Arc<Job>,
    s: &ordo_jobs::Schedule,
    owed_from: &mut HashMap<String, i64>,
    queued_jobs: &HashSet<String>,
) -> anyhow::Result<()> {
    let env = server.env();
    let tz = s.timezone.unwrap_or(env.cfg.serve.timezone);
    let now = now_ms();
    let mut from = match owed_from.get(&job.name) {
        Some(f) => *f,
        None => {
            let since = server.store.schedule_since(&job.name, now).await?;
            let last = server
                .store
                .last_fire(&job.name, "schedule")
                .await?
                .map(|f| f.due_at);
            since.max(last.unwrap_or(i64::MIN))
        }
    };
    let grace = env.cfg.serve.misfire_grace.as_millis() as i64;
    let o = owed(s, from, now, grace, tz);
    if let Some((latest, n)) = o.missed {
        let note = format!(
            "{n} fire(s) missed while no controller fired schedules, the latest at {}",
            crate::clock::zoned_time(latest, tz)
        );
        match s.missed {
            Missed::CatchUp => {
                let fire = Fire {
                    key: format!("cron:{latest}"),
                    kind: "schedule",
                    due_at: latest,
                    given: s.options.clone().into_iter().collect(),
                    note: Some(format!("catch-up: {note}")),
                    overlap: s.overlap,
                    queued_before: queued_jobs.contains(&job.name),
                };
                decide(server, job, fire).await?;
            }
            Missed::Skip => {
                tracing::warn!(job = %job.name, "{note}: skipped (missed: skip)");
                server
                    .store
                    .claim_fire(&FireRow {
                        job: job.name.clone(),
                        fire_key: format!("cron:{latest}"),
                        kind: "schedule".into(),
                        due_at: latest,
                        decision: "missed".into(),
                        decided_by: server.instance.clone(),
                        decided_at: now,
                        options: "{}".into(),
                        note: Some(note),
                        ..FireRow::default()
                    })
                    .await?;
            }
        }
    }
    for t in o.due {
        let fire = Fire {
            key: format!("cron:{t}"),
            kind: "schedule",
            due_at: t,
            given: s.options.clone().into_iter().collect(),
            note: None,
            overlap: s.overlap,
            queued_before: queued_jobs.contains(&job.name),
        };
        decide(server, job, fire).await?;
    }
    from = o.next_from;
    owed_from.insert(job.name.clone(), from);
    Ok(())
}
