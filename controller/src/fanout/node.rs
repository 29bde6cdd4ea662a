//! One server's part of a run: connect, the steps (`steps.rs`, `step_exec.rs`), the
//! collect (`collecting.rs`), cleanup. The state of that work is a [`NodeRun`].

use std::sync::atomic::Ordering;

use ordo_inventory::Node;
use ordo_jobs::{Context, RunAsMethod};
use ordo_proto::shell::{RunAsSpec, SwitchMethod};
use tokio::sync::mpsc;

use super::{Event, NodeResult, NodeStatus, RunRequest};
use crate::clock::now_ms;
use crate::session::{ExecEvent, Session, TransportError};

pub(super) struct NodeRun<'a> {
    pub(super) req: &'a RunRequest,
    pub(super) node: &'a Node,
    pub(super) events: &'a mpsc::Sender<Event>,
    pub(super) result: NodeResult,
    /// Whether the run folder was made on the server (steps that cannot run inline).
    pub(super) uploaded: bool,
    /// Set when the collect ran in the last step's command: whether it removed the run
    /// folder.
    pub(super) collected_with_step: Option<bool>,
    /// What this server's `wait_for` steps matched (`${step.N.match...}`) and the same as
    /// environment variables.
    pub(super) matches: std::collections::BTreeMap<String, String>,
    pub(super) match_env: Vec<(String, String)>,
}

pub(super) async fn run_node(
    req: &RunRequest,
    node: &Node,
    events: &mpsc::Sender<Event>,
) -> NodeResult {
    let mut run = NodeRun {
        req,
        node,
        events,
        result: NodeResult::new(node),
        uploaded: false,
        collected_with_step: None,
        matches: Default::default(),
        match_env: Vec::new(),
    };
    run.result.started_at = Some(now_ms());
    let _ = events
        .send(Event::NodeStarted {
            node: node.name.clone(),
        })
        .await;
    run.go().await;
    run.result.finished_at = Some(now_ms());
    run.result
}

impl NodeRun<'_> {
    pub(super) fn cx(&self) -> Context<'_> {
        Context {
            step_matches: Some(&self.matches),
            ..Context::execution(
                &self.req.options.values,
                &self.req.job.name,
                &self.req.execution_id,
                None,
            )
            .on_node(self.node)
        }
    }

    pub(super) fn fail(&mut self, status: NodeStatus, error: impl Into<String>) {
        self.result.status = status;
        self.result.error = Some(self.req.options.mask(&error.into()));
    }

    pub(super) async fn warn(&mut self, message: String) {
        let message = self.req.options.mask(&message);
        let _ = self
            .events
            .send(Event::Warning {
                node: self.node.name.clone(),
                message: message.clone(),
            })
            .await;
        self.result.warnings.push(message);
    }

    pub(super) fn cancelled_status(&self) -> NodeStatus {
        if self.req.timed_out.load(Ordering::SeqCst) {
            NodeStatus::TimedOut
        } else {
            NodeStatus::Aborted
        }
    }

    async fn go(&mut self) {
        let session = tokio::select! {
            s = Session::connect(self.node, &self.req.transports) => s,
            _ = self.req.cancel.cancelled() => Err(TransportError::Cancelled),
        };
        let session = match session {
            Ok(s) => s,
            Err(TransportError::Cancelled) => {
                let st = self.cancelled_status();
                return self.fail(st, "cancelled before the connection was made");
            }
            Err(e) => return self.fail(NodeStatus::Unreachable, e.to_string()),
        };
        if let Session::Agent(a) = &session {
            let _ = self.events.send(Event::AgentSeen(a.seen(self.node))).await;
        }
        let run_dir = format!(
            "{}/ordo-{}-{}",
            self.req.job.remote_dir.trim_end_matches('/'),
            self.req.execution_id,
            self.node.folder_name()
        );
        let collect_spec = self
            .req
            .job
            .collect
            .clone()
            .filter(|_| self.req.steps.end == self.req.job.steps.len());
        let plan = match &collect_spec {
            Some(spec) => self.collect_plan(&session, spec),
            None => Err(String::new()),
        };
        // Collecting as the login user over a shell transport rides on the last step's
        // command when that step succeeds; otherwise it is a command of its own.
        let merged = plan
            .as_ref()
            .ok()
            .filter(|p| p.run_as.is_none() && session.collects_with_step())
            .map(|p| (p, format!("ordo-collect-{}", uuid::Uuid::now_v7().simple())));
        let steps_ok = self.upload_and_run(&session, &run_dir, merged).await;
        let mut cleaned = !self.uploaded;
        if let Some(c) = self.collected_with_step {
            cleaned = c || !self.uploaded;
        } else if let Some(spec) = collect_spec
            && (steps_ok || spec.on_failure)
            && !self.req.cancel.is_cancelled()
        {
            cleaned = match &plan {
                Ok(plan) => self.collect(&session, plan, &run_dir).await || !self.uploaded,
                Err(e) => {
                    self.warn(format!("collect: {e}")).await;
                    false
                }
            };
        }
        let owner = self.agent_owner(&session);
        if !cleaned && let Err(e) = session.remove_dir(&run_dir, owner.as_deref()).await {
            self.warn(format!("cleanup of {run_dir} failed: {e}")).await;
        }
        session.close().await;
    }

    /// On an agent, the user the run's folder and files belong to and its collect and
    /// cleanup run as: the job's run-as user (`None`: the agent's own user). An agent's
    /// policy allows only its listed users; nothing implicitly runs as root there.
    pub(super) fn agent_owner(&self, session: &Session) -> Option<String> {
        if !matches!(session, Session::Agent(_)) {
            return None;
        }
        self.run_as(session, self.req.job.run_as.as_ref())
            .ok()
            .flatten()
            .map(|r| r.user)
    }

    /// The run-as target for a step, or `None` when no switch is needed.
    pub(super) fn run_as(
        &self,
        session: &Session,
        spec: Option<&ordo_jobs::RunAs>,
    ) -> Result<Option<RunAsSpec>, String> {
        let Some(spec) = spec else { return Ok(None) };
        let user = spec
            .user
            .expand(&self.cx())
            .map_err(|e| format!("run_as: {e}"))?;
        if user.is_empty() || (user == session.login_user() && spec.method != RunAsMethod::SudoSu) {
            return Ok(None);
        }
        ordo_proto::shell::check_user_name(&user).map_err(|e| format!("run_as: {e}"))?;
        let method = match spec.method {
            RunAsMethod::Sudo => SwitchMethod::Sudo,
            RunAsMethod::Su => SwitchMethod::Su,
            RunAsMethod::SudoSu => SwitchMethod::SudoSu,
        };
        Ok(Some(RunAsSpec { user, method }))
    }

    /// Records the process group a step runs in (see [`Event::Running`]).
    pub(super) async fn running(&self, session: &Session, ev: ExecEvent) {
        if let ExecEvent::Started {
            pid,
            start,
            kill_as,
        } = ev
        {
            let _ = self
                .events
                .send(Event::Running {
                    node: self.node.name.clone(),
                    pid,
                    start,
                    kill_as,
                    local: matches!(session, Session::Local(_)),
                })
                .await;
        }
    }

    pub(super) async fn line(&self, step: usize, stderr: bool, line: String) {
        let _ = self
            .events
            .send(Event::Line {
                node: self.node.name.clone(),
                step,
                stderr,
                ts: now_ms(),
                line: self.req.options.mask(&line),
            })
            .await;
    }
}

impl NodeStatus {
    pub fn is_ok(self) -> bool {
        self == NodeStatus::Succeeded
    }
}
