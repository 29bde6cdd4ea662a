//! One execution of a job, from the first row to the last notification: the same path for
//! `controller run`, schedules, file triggers, follow-up jobs, job steps and retries.
//!
//! A job without job steps is one pass of the engine over its servers. Job steps split it
//! into phases: the server steps before a job step finish on every server, then the other
//! job runs once (a child execution), then the next server steps start.

mod chain;
pub mod instance;
pub mod notify;
mod prepare;
mod record;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use ordo_inventory::Inventory;
use ordo_jobs::{Job, JobSet, MailWhen, NotifyEvent, OptionValues};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::BadInput;
use crate::config::ProjectConfig;
use crate::engine::{self, Event, NodeResult, NodeStatus, RunRequest, now_ms};
use crate::output::{Terminal, summary_table};
use crate::store::{ExecutionRow, NodeRow, Store};

use chain::{Phase, follow_ups, merge, phases, run_child};
use prepare::read_scripts;
pub use prepare::{execution_id, record_refused, select_nodes, transport_settings};
pub use report::summary_json;

/// What every execution of this process shares.
pub struct Env {
    pub cfg: ProjectConfig,
    pub inventory: Inventory,
    pub jobs: JobSet,
    /// Transfer partners, by name.
    pub profiles: std::collections::BTreeMap<String, ordo_jobs::transfer::Profile>,
    pub store: Store,
    /// This controller process: the owner of the executions it runs.
    pub instance: String,
}

/// How an execution is asked for.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The execution ID to use (a schedule decides it before starting); new otherwise.
    pub id: Option<String>,
    pub options: OptionValues,
    /// Another filter, and-ed with the job's targets (`--limit`).
    pub limit: Option<String>,
    /// Only these servers (retry of the failed ones).
    pub only_nodes: Option<Vec<String>>,
    pub parallelism: Option<usize>,
    pub accept_new_host_keys: bool,
    pub no_mail: bool,
    /// manual, schedule, watch, follow-up, job-step, retry.
    pub cause: String,
    pub fire_key: Option<String>,
    pub retry_of: Option<String>,
    pub parent_id: Option<String>,
    pub started_by: String,
    /// Live output on the terminal (`controller run`).
    pub terminal: bool,
    pub progress: bool,
    /// How deep in follow-ups and job steps (cycles are refused at load; this is a guard).
    pub depth: u32,
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: String,
    pub job: String,
    pub status: String,
    pub results: Vec<NodeResult>,
    pub archive: Option<PathBuf>,
    pub collected: usize,
    pub table: String,
    pub started_at: i64,
    pub finished_at: i64,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }
}

const MAX_DEPTH: u32 = 16;

/// Runs `job` for `launch` and records everything; a `BadInput` error means nothing was
/// started or recorded.
pub async fn execute(
    env: Arc<Env>,
    job: Arc<Job>,
    launch: Launch,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    if launch.depth > MAX_DEPTH {
        return Err(BadInput(format!(
            "job {}: follow-ups and job steps nested deeper than {MAX_DEPTH}",
            job.name
        ))
        .into());
    }
    let nodes = select_nodes(&env.inventory, &job, &launch)?;
    let script_files = read_scripts(&job)?;
    let transports = transport_settings(&env.cfg, &nodes, launch.accept_new_host_keys)?;
    let cfg = &env.cfg;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data folder {}", cfg.data_dir.display()))?;

    let id = launch.id.clone().unwrap_or_else(execution_id);
    let exec_dir = cfg.data_dir.join("executions").join(&id);
    std::fs::create_dir_all(&exec_dir)
        .with_context(|| format!("cannot create {}", exec_dir.display()))?;
    let mut row = ExecutionRow {
        id: id.clone(),
        job: job.name.clone(),
        status: "running".into(),
        options: serde_json::to_string(&launch.options.masked())?,
        targets: match (&launch.limit, job.runs_on_servers()) {
            (_, false) => String::new(),
            (Some(l), true) => format!("({}) and ({l})", job.targets),
            (None, true) => job.targets.to_string(),
        },
        started_at: now_ms(),
        nodes_total: nodes.len() as i64,
        started_by: launch.started_by.clone(),
        cause: launch.cause.clone(),
        owner: env.instance.clone(),
        fire_key: launch.fire_key.clone(),
        retry_of: launch.retry_of.clone(),
        parent_id: launch.parent_id.clone(),
        ..ExecutionRow::default()
    };
    let store = env.store.clone();
    store.insert_execution(&row).await?;
    let pending: Vec<NodeRow> = nodes
        .iter()
        .map(|n| NodeRow {
            execution_id: id.clone(),
            node: n.name.clone(),
            host: n.host.clone(),
            transport: n.transport.as_str().into(),
            ..NodeRow::default()
        })
        .collect();
    store.insert_pending_nodes(&pending).await?;
    let parallelism = launch.parallelism.unwrap_or(job.parallelism).max(1);
    if launch.terminal && job.transfer.is_some() {
        say!("execution {id}: transfer scenario {}", job.name);
    } else if launch.terminal {
        say!(
            "execution {id}: job {} on {} server(s), {} at once",
            job.name,
            nodes.len(),
            parallelism.min(nodes.len())
        );
    }
    tracing::info!(execution = %id, job = %job.name, cause = %launch.cause, servers = nodes.len(), "execution started");

    let notifier =
        notify::Notifier::new(env.clone(), job.clone(), id.clone(), launch.options.clone());
    notifier.send(NotifyEvent::Start, "running", None).await;
    let finished = CancellationToken::new();
    notifier.watch_late(row.started_at, finished.clone());

    let timed_out = Arc::new(AtomicBool::new(false));
    let phases = phases(&job);
    let mut merged: Vec<Option<NodeResult>> = vec![None; nodes.len()];
    let mut alive: Vec<usize> = (0..nodes.len()).collect();
    let mut job_step_error: Option<String> = None;
    let width = nodes.iter().map(|n| n.name.len()).max().unwrap_or(4);
    let mut transfer_summary = None;
    if let Some(spec) = &job.transfer {
        match crate::transfer::run(&env, &job, spec, &id, launch.terminal, &cancel).await {
            Ok(o) => {
                if !o.ok() {
                    job_step_error = Some(format!("transfer: {}", o.summary(spec.direction)));
                }
                transfer_summary = Some(o.summary(spec.direction));
            }
            Err(e) => job_step_error = Some(format!("transfer: {e:#}")),
        }
    }
    for phase in phases {
        if cancel.is_cancelled() || job_step_error.is_some() {
            break;
        }
        match phase {
            Phase::Servers(range) => {
                if alive.is_empty() {
                    break;
                }
                let req = Arc::new(RunRequest {
                    job: job.clone(),
                    options: launch.options.clone(),
                    nodes: alive.iter().map(|i| nodes[*i].clone()).collect(),
                    execution_id: id.clone(),
                    exec_dir: exec_dir.clone(),
                    transports: transports.clone(),
                    parallelism,
                    script_files: script_files.clone(),
                    steps: range,
                    cancel: cancel.child_token(),
                    timed_out: AtomicBool::new(false),
                });
                let (tx, rx) = mpsc::channel::<Event>(1024);
                let term = launch
                    .terminal
                    .then(|| Terminal::new(req.nodes.len(), width, launch.progress));
                let observer = tokio::spawn(record::observe(rx, store.clone(), id.clone(), term));
                let results = engine::run(req.clone(), tx).await;
                observer.await.context("the event recorder stopped")??;
                if req.timed_out.load(Ordering::SeqCst) {
                    timed_out.store(true, Ordering::SeqCst);
                }
                let mut still = Vec::new();
                for (slot, r) in alive.iter().zip(results) {
                    let ok = r.status.is_ok();
                    merged[*slot] = Some(match merged[*slot].take() {
                        None => r,
                        Some(prev) => merge(prev, r),
                    });
                    if ok {
                        still.push(*slot);
                    }
                }
                if still.len() < alive.len() && job.on_failure == ordo_jobs::OnFailure::Stop {
                    alive.clear();
                } else {
                    alive = still;
                }
            }
            Phase::Job(step_index, r) => {
                let step = &job.steps[step_index];
                match run_child(&env, &job, &r, &launch, &id, None, &cancel).await {
                    Ok(child) if child.succeeded() => {}
                    Ok(child) if step.allow_failure => {
                        tracing::warn!(execution = %id, child = %child.id, "job step {} ({}) {} (allowed to fail)", step_index + 1, r.job, child.status);
                    }
                    Ok(child) => {
                        job_step_error = Some(format!(
                            "step {} (job {}): execution {} {}",
                            step_index + 1,
                            r.job,
                            child.id,
                            child.status
                        ))
                    }
                    Err(e) if step.allow_failure => {
                        tracing::warn!(execution = %id, "job step {} ({}): {e:#} (allowed to fail)", step_index + 1, r.job);
                    }
                    Err(e) => {
                        job_step_error =
                            Some(format!("step {} (job {}): {e:#}", step_index + 1, r.job))
                    }
                }
            }
        }
    }
    // Servers that never ran a phase (stopped, or a failed job step before them).
    let results: Vec<NodeResult> = merged
        .into_iter()
        .zip(&nodes)
        .map(|(r, n)| {
            r.unwrap_or_else(|| {
                let mut r = NodeResult::not_started(n);
                r.status = if cancel.is_cancelled() {
                    NodeStatus::Aborted
                } else {
                    NodeStatus::Skipped
                };
                r.error = Some("not started: the run stopped before this server".into());
                r
            })
        })
        .collect();
    for r in results.iter().filter(|r| r.started_at.is_none()) {
        store.upsert_node(&record::node_row(&id, r)).await?;
    }
    finished.cancel();

    let failed = results.iter().filter(|r| !r.status.is_ok()).count();
    let status = if timed_out.load(Ordering::SeqCst) {
        "timed-out"
    } else if cancel.is_cancelled() {
        "aborted"
    } else if failed > 0 || job_step_error.is_some() {
        "failed"
    } else {
        "succeeded"
    };
    row.error = job_step_error.clone();
    let table = match &transfer_summary {
        Some(t) => format!("transfer: {t}"),
        None => summary_table(&results),
    };
    report::write_summaries(&exec_dir, &job, &id, status, &results, &table)?;
    let collected: usize = results.iter().map(|r| r.files.len()).sum();
    let archive_path = if job.archive && job.runs_on_servers() {
        let (dir, name) = (
            exec_dir.clone(),
            format!("{}-{id}", job.name.replace('/', "_")),
        );
        match tokio::task::spawn_blocking(move || crate::archive::build(&dir, &name)).await? {
            Ok(p) => Some(p),
            Err(e) => {
                row.error = Some(format!("archive: {e}"));
                tracing::error!(execution = %id, "archive failed: {e}");
                None
            }
        }
    } else {
        None
    };

    if let (Some(spec), false) = (&job.mail, launch.no_mail) {
        let wanted = match spec.when {
            MailWhen::Always => true,
            MailWhen::OnFailure => status != "succeeded",
            MailWhen::OnSuccess => status == "succeeded",
            MailWhen::Never => false,
        };
        if wanted && (spec.send_empty || collected > 0) {
            match report::send_mail(
                cfg,
                &job,
                spec,
                &launch.options,
                &id,
                status,
                &table,
                archive_path.as_ref(),
            )
            .await
            {
                Ok(where_) => {
                    if launch.terminal {
                        say!("mail sent: {where_}");
                    }
                    row.mail = Some(where_);
                }
                Err(e) => {
                    eprintln!("{e}");
                    row.mail = Some(format!("not sent: {e}"));
                }
            }
        } else if wanted {
            row.mail = Some("not sent: nothing was collected (send_empty: false)".into());
            if launch.terminal {
                say!("mail not sent: nothing was collected");
            }
        }
    }

    row.status = status.into();
    row.finished_at = Some(now_ms());
    row.nodes_ok = (results.len() - failed) as i64;
    row.nodes_failed = failed as i64;
    row.archive = archive_path.as_ref().map(|p| p.display().to_string());
    store.finish_execution(&row).await?;
    tracing::info!(execution = %id, job = %job.name, status, "execution finished");
    let event = if status == "succeeded" {
        NotifyEvent::Success
    } else {
        NotifyEvent::Failure
    };
    notifier.send(event, status, Some(&table)).await;

    let outcome = Outcome {
        id: id.clone(),
        job: job.name.clone(),
        status: status.to_string(),
        results,
        archive: archive_path,
        collected,
        table,
        started_at: row.started_at,
        finished_at: row.finished_at.unwrap_or(row.started_at),
    };
    if launch.terminal {
        report::print_end(&outcome);
    }
    follow_ups(&env, &job, &launch, &outcome, &cancel).await;
    Ok(outcome)
}
