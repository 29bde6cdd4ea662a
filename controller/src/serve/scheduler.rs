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

use ordo_jobs::{Job, Missed, Overlap};
use tokio_util::sync::CancellationToken;

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
        for job in env.jobs.jobs.values() {
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
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            match retention::purge(&env, false, None).await {
                Ok(ids) if !ids.is_empty() => {
                    tracing::info!("retention: {} execution(s) purged", ids.len())
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("retention: {e}"),
            }
        }
    }
    watchers.stop_all();
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
                decide(
                    server,
                    job,
                    format!("cron:{latest}"),
                    "schedule",
                    latest,
                    s.options.clone().into_iter().collect(),
                    Some(format!("catch-up: {note}")),
                    s.overlap,
                    queued_jobs.contains(&job.name),
                )
                .await?;
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
        decide(
            server,
            job,
            format!("cron:{t}"),
            "schedule",
            t,
            s.options.clone().into_iter().collect(),
            None,
            s.overlap,
            queued_jobs.contains(&job.name),
        )
        .await?;
    }
    from = o.next_from;
    owed_from.insert(job.name.clone(), from);
    Ok(())
}

/// What a schedule owes between `from` (the last decided fire, or first sight) and `now`.
#[derive(Debug, PartialEq)]
pub(super) struct Owed {
    /// Fires more than `grace` late: the latest and how many (counted up to 100 000).
    missed: Option<(i64, usize)>,
    /// Fires to decide now, oldest first (at most 100 a tick).
    due: Vec<i64>,
    /// Where the next tick starts.
    next_from: i64,
}

pub(super) fn owed(
    s: &ordo_jobs::Schedule,
    from: i64,
    now: i64,
    grace_ms: i64,
    tz: chrono_tz::Tz,
) -> Owed {
    let mut from = from;
    let mut missed = None;
    let boundary = now - grace_ms;
    if from < boundary {
        if let Some(latest) = s.latest_at_or_before(boundary, tz).filter(|t| *t > from) {
            missed = Some((latest, s.count_between(from, boundary, 100_000, tz)));
        }
        from = boundary;
    }
    let due = s.fires_between(from, now, 100, tz);
    let next_from = due.last().copied().unwrap_or(from);
    Owed {
        missed,
        due,
        next_from,
    }
}

/// Decides one fire (schedule or file) once: run it, queue it, or skip it, by the job's
/// overlap policy; starts the run when this controller's decision is the one recorded.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide(
    server: &Arc<Server>,
    job: &Arc<Job>,
    key: String,
    kind: &str,
    due_at: i64,
    given: Vec<(String, String)>,
    note: Option<String>,
    overlap: Overlap,
    queued_before: bool,
) -> anyhow::Result<()> {
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
    let options = match ordo_jobs::resolve_options(job, &given) {
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
async fn running(server: &Arc<Server>, job: &str) -> anyhow::Result<i64> {
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
async fn start_queued(server: &Arc<Server>, queued: Vec<FireRow>) -> anyhow::Result<()> {
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
        let options = match ordo_jobs::resolve_options(&job, &given) {
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

#[cfg(test)]
mod tests {
    //! The scheduling decisions on an injected clock: no waiting, exact instants.

    use chrono::TimeZone;
    use ordo_jobs::schedule::{CronExpr, Schedule, Syntax};

    use super::*;

    fn sched(expr: &str) -> Schedule {
        Schedule {
            crons: vec![CronExpr::parse(expr, Syntax::Cron).unwrap()],
            syntax: Syntax::Cron,
            timezone: None,
            options: Default::default(),
            overlap: Overlap::Skip,
            missed: Missed::Skip,
            enabled: true,
        }
    }

    fn at(tz: chrono_tz::Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, s)
            .earliest()
            .unwrap()
            .timestamp_millis()
    }

    const MIN: i64 = 60_000;

    #[test]
    fn a_fire_a_little_late_runs_late() {
        // The leader died just before 02:00; its successor looks at 02:00:05.
        let tz = chrono_tz::UTC;
        let s = sched("0 2 * * *");
        let from = at(tz, 2026, 11, 23, 2, 0, 0);
        let now = at(tz, 2026, 11, 24, 2, 0, 5);
        let o = owed(&s, from, now, MIN, tz);
        assert_eq!(o.missed, None);
        assert_eq!(o.due, [at(tz, 2026, 11, 24, 2, 0, 0)]);
        assert_eq!(o.next_from, o.due[0]);
    }

    #[test]
    fn fires_older_than_the_grace_are_missed_and_counted() {
        // Down from Friday to Monday 09:00: three 02:00 fires missed, none due.
        let tz = chrono_tz::UTC;
        let s = sched("0 2 * * *");
        let from = at(tz, 2026, 11, 20, 2, 0, 0);
        let now = at(tz, 2026, 11, 23, 9, 0, 0);
        let o = owed(&s, from, now, MIN, tz);
        assert_eq!(o.missed, Some((at(tz, 2026, 11, 23, 2, 0, 0), 3)));
        assert!(o.due.is_empty());
        assert_eq!(o.next_from, now - MIN);
        // The next tick owes nothing more.
        let again = owed(&s, o.next_from, now + 250, MIN, tz);
        assert_eq!((again.missed, again.due.len()), (None, 0));
    }

    #[test]
    fn nothing_is_owed_before_first_sight_and_each_fire_once() {
        let tz = chrono_tz::UTC;
        let s = sched("*/5 * * * *");
        let first_sight = at(tz, 2026, 11, 24, 10, 2, 0);
        let o = owed(&s, first_sight, at(tz, 2026, 11, 24, 10, 4, 59), MIN, tz);
        assert!(o.due.is_empty() && o.missed.is_none());
        let o = owed(&s, o.next_from, at(tz, 2026, 11, 24, 10, 5, 0), MIN, tz);
        assert_eq!(o.due, [at(tz, 2026, 11, 24, 10, 5, 0)]);
        let o = owed(
            &s,
            o.next_from,
            at(tz, 2026, 11, 24, 10, 5, 0) + 250,
            MIN,
            tz,
        );
        assert!(o.due.is_empty(), "decided once");
    }

    #[test]
    fn a_dst_gap_fire_is_owed_once_at_the_first_valid_time() {
        // Europe/Paris, 29 March 2026: 02:30 does not exist; it is owed at 03:00 CEST.
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let s = sched("30 2 * * *");
        let from = at(tz, 2026, 3, 28, 2, 30, 0);
        let now = at(tz, 2026, 3, 29, 3, 0, 10);
        let o = owed(&s, from, now, MIN, tz);
        assert_eq!(o.due, [at(tz, 2026, 3, 29, 3, 0, 0)]);
        assert_eq!(o.missed, None);
    }

    #[test]
    fn a_fall_back_fixed_time_is_owed_once() {
        // Europe/Paris, 25 October 2026: 02:30 happens twice; one fire over the night.
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let s = sched("30 2 * * *");
        let from = at(tz, 2026, 10, 25, 0, 0, 0);
        let mut t = from;
        let mut fired = Vec::new();
        // A tick every minute through the night.
        for minute in 1..=(6 * 60) {
            let now = from + minute * MIN;
            let o = owed(&s, t, now, MIN, tz);
            fired.extend(o.due);
            t = o.next_from;
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
    }
}
