//! An execution while it runs: started (rows, folders, start notification), then its
//! phases (a transfer, passes of the engine over the servers, job steps).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use ordo_jobs::{NotifyEvent, OnFailure};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::chain::{Phase, merge, phases, run_child};
use super::notify::Notifier;
use super::{Launch, Plan, execution_id, record};
use crate::fanout::{self, Event, NodeResult, NodeStatus, RunRequest};
use crate::project::Env;
use crate::session::Settings;
use crate::store::write_retry::write_retrying;
use crate::store::{ExecutionRow, ExecutionStatus, NodeRow, Store};
use crate::terminal::{MemberLine, Terminal};

/// One execution between its first row and its last.
pub(super) struct Running<'a> {
    pub(super) env: &'a Arc<Env>,
    pub(super) launch: &'a Launch,
    pub(super) plan: Plan,
    pub(super) id: String,
    pub(super) exec_dir: PathBuf,
    pub(super) row: ExecutionRow,
    pub(super) notifier: Notifier,
    /// Stops the late watch once the execution ended.
    pub(super) finished: CancellationToken,
    pub(super) timed_out: bool,
    /// Each selected server's result so far (index = plan.nodes).
    pub(super) merged: Vec<Option<NodeResult>>,
    /// Why a transfer or a job step failed the execution.
    pub(super) step_error: Option<String>,
    pub(super) transfer_summary: Option<String>,
    /// The job steps' outcomes, in order (a group's summary).
    pub(super) members: Vec<MemberLine>,
    script_files: Vec<Option<Vec<u8>>>,
    transports: Settings,
    store: Store,
}

impl<'a> Running<'a> {
    /// The folders and rows, then the start notification (what could refuse the run was
    /// checked when it was admitted).
    pub(super) async fn start(
        env: &'a Arc<Env>,
        plan: Plan,
        launch: &'a Launch,
        script_files: Vec<Option<Vec<u8>>>,
        transports: Settings,
    ) -> anyhow::Result<Running<'a>> {
        let id = launch.id.clone().unwrap_or_else(execution_id);
        let exec_dir = env.cfg.data_dir.join("executions").join(&id);
        std::fs::create_dir_all(&exec_dir)
            .with_context(|| format!("cannot create {}", exec_dir.display()))?;
        let row = ExecutionRow {
            targets: plan.targets.clone(),
            nodes_total: plan.nodes.len() as i64,
            test: plan.job.test,
            ..super::prepare::execution_row(env, &id, &plan.job.name, launch)?
        };
        let store = env.store.clone();
        store.insert_execution(&row).await?;
        let pending: Vec<NodeRow> = plan
            .nodes
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
        let job = &plan.job;
        if launch.terminal && job.transfer.is_some() {
            say!("execution {id}: transfer scenario {}", job.name);
        } else if launch.terminal && !job.runs_on_servers() {
            let members = job
                .steps
                .iter()
                .filter(|s| matches!(s.action, ordo_jobs::StepAction::Job(_)))
                .count();
            say!("execution {id}: group job {} of {members} job(s)", job.name);
        } else if launch.terminal {
            say!(
                "execution {id}: job {} on {} server(s), {} at once",
                job.name,
                plan.nodes.len(),
                plan.at_once()
            );
        }
        tracing::info!(execution = %id, job = %job.name, cause = %launch.cause, servers = plan.nodes.len(), "execution started");
        let notifier = Notifier::new(
            env.clone(),
            job.clone(),
            id.clone(),
            launch.options.clone(),
            launch.account.clone(),
        );
        notifier
            .send(NotifyEvent::Start, ExecutionStatus::Running, None)
            .await;
        let finished = CancellationToken::new();
        notifier.watch_late(row.started_at, finished.clone());
        Ok(Running {
            env,
            launch,
            merged: vec![None; plan.nodes.len()],
            plan,
            id,
            exec_dir,
            row,
            notifier,
            finished,
            timed_out: false,
            step_error: None,
            transfer_summary: None,
            members: Vec::new(),
            script_files,
            transports,
            store,
        })
    }

    /// The transfer (for a scenario), then each phase in order; stops at an abort, a
    /// failed job step, or when no server is left to go on.
    pub(super) async fn run_phases(&mut self, cancel: &CancellationToken) -> anyhow::Result<()> {
        let job = self.plan.job.clone();
        if let Some(spec) = &job.transfer {
            self.run_transfer(&job, spec, cancel).await;
        }
        let mut alive: Vec<usize> = (0..self.plan.nodes.len()).collect();
        let resume = self.launch.resume_from.unwrap_or(0);
        let mut failed_members = Vec::new();
        for phase in phases(&job) {
            if cancel.is_cancelled() || self.step_error.is_some() {
                break;
            }
            match phase {
                Phase::Job(i, r) if i < resume => {
                    self.members.push(MemberLine {
                        step: job.steps[i].label(i),
                        job: r.job.clone(),
                        execution: self.launch.retry_of.clone().unwrap_or_default(),
                        status: "succeeded before".into(),
                    });
                    if self.launch.terminal {
                        say!(
                            "{} (job {}): succeeded in execution {}, not run again",
                            job.steps[i].label(i),
                            r.job,
                            self.launch.retry_of.as_deref().unwrap_or("-")
                        );
                    }
                }
                Phase::Servers(steps) if steps.end <= resume => {}
                Phase::Servers(steps) => {
                    if alive.is_empty() {
                        break;
                    }
                    alive = self.servers_pass(&alive, steps, cancel).await?;
                }
                Phase::Job(step_index, r) => {
                    let step = &job.steps[step_index];
                    let what = format!("step {} (job {})", step_index + 1, r.job);
                    let child = run_child(self.env, &job, &r, self.launch, &self.id, None, cancel);
                    let ran = child.await;
                    self.members.push(MemberLine {
                        step: step.label(step_index),
                        job: r.job.clone(),
                        execution: ran.as_ref().map_or("-".into(), |c| c.id.clone()),
                        status: match &ran {
                            Ok(c) => c.status.to_string(),
                            Err(e) => format!("not run: {e:#}"),
                        },
                    });
                    let failure = match ran {
                        Ok(child) if child.succeeded() => None,
                        Ok(child) => {
                            Some(format!("{what}: execution {} {}", child.id, child.status))
                        }
                        Err(e) => Some(format!("{what}: {e:#}")),
                    };
                    match failure {
                        Some(f) if step.allow_failure => {
                            tracing::warn!(execution = %self.id, "{f} (allowed to fail)")
                        }
                        Some(f) if job.members_on_failure == OnFailure::Continue => {
                            failed_members.push(f)
                        }
                        Some(f) => self.step_error = Some(f),
                        None => {}
                    }
                }
            }
        }
        for (i, s) in job.steps.iter().enumerate() {
            if let ordo_jobs::StepAction::Job(r) = &s.action
                && !self.members.iter().any(|m| m.step == s.label(i))
            {
                self.members.push(MemberLine {
                    step: s.label(i),
                    job: r.job.clone(),
                    execution: "-".into(),
                    status: "not run".into(),
                });
            }
        }
        if self.step_error.is_none() && !failed_members.is_empty() {
            self.step_error = Some(failed_members.join("; "));
        }
        Ok(())
    }

    /// One pass of the engine over the servers still going (`alive`, indexes into the
    /// plan); returns those that succeeded and may go on.
    async fn servers_pass(
        &mut self,
        alive: &[usize],
        steps: std::ops::Range<usize>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Vec<usize>> {
        let nodes = &self.plan.nodes;
        let req = Arc::new(RunRequest {
            job: self.plan.job.clone(),
            options: self.launch.options.clone(),
            nodes: alive.iter().map(|i| nodes[*i].clone()).collect(),
            execution_id: self.id.clone(),
            exec_dir: self.exec_dir.clone(),
            transports: self.transports.clone(),
            parallelism: self.plan.parallelism,
            script_files: self.script_files.clone(),
            steps,
            cancel: cancel.child_token(),
            timed_out: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel::<Event>(1024);
        let width = nodes.iter().map(|n| n.name.len()).max().unwrap_or(4);
        let term = self
            .launch
            .terminal
            .then(|| Terminal::new(req.nodes.len(), width, self.launch.progress));
        let observer = tokio::spawn(record::observe(
            rx,
            self.store.clone(),
            self.id.clone(),
            term,
        ));
        let results = fanout::run(req.clone(), tx).await;
        observer.await.context("the event recorder stopped")??;
        if req.timed_out.load(Ordering::SeqCst) {
            self.timed_out = true;
        }
        let mut still = Vec::new();
        for (slot, r) in alive.iter().zip(results) {
            let ok = r.status.is_ok();
            self.merged[*slot] = Some(match self.merged[*slot].take() {
                None => r,
                Some(prev) => merge(prev, r),
            });
            if ok {
                still.push(*slot);
            }
        }
        if still.len() < alive.len() && self.plan.job.on_failure == OnFailure::Stop {
            still.clear();
        }
        Ok(still)
    }

    /// Every server's result; those that never ran a phase (stopped, or a failed job
    /// step before them) are recorded as aborted or skipped.
    pub(super) async fn results(
        &mut self,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Vec<NodeResult>> {
        let results: Vec<NodeResult> = std::mem::take(&mut self.merged)
            .into_iter()
            .zip(&self.plan.nodes)
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
            let row = record::node_row(&self.id, r);
            let store = &self.store;
            write_retrying("a server's result", || store.upsert_node(&row)).await?;
        }
        Ok(results)
    }
}
