//! Running one step's command on a server: its output as lines, its timeout, and the
//! collect that may ride on the same command (shell transports, last step), and the
//! judging of its outcome.

use std::time::Instant;

use ordo_jobs::Step;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::node::NodeRun;
use super::step::{StepOutcome, StepRun};
use super::wait_for::WaitPlan;
use super::{Event, NodeStatus};
use crate::collect::{self, CollectPlan, CollectSink};
use crate::session::lines::{LineSplitter, MarkedLines, Piece};
use crate::session::{
    CollectRequest, ExecEvent, ExitStatus, FetchEvent, Session, TransportError, collect_note,
};

/// A collect that runs in the last step's own command (shell transports): the marker
/// that separates the step's output from the collect's, and the folder it removes.
pub(super) struct MergedCollect<'a> {
    pub(super) plan: &'a CollectPlan,
    pub(super) marker: String,
    pub(super) cleanup: Option<&'a str>,
}

impl NodeRun<'_> {
    /// Runs one step; a timeout or a stop cancels the exec, and the transport kills the
    /// step's whole process tree. With `merged`, the collect runs in the same command once
    /// the step succeeded (its outcome is then the step's success, and the collect is
    /// reported and recorded in `collected_with_step`).
    pub(super) async fn run_step(
        &mut self,
        session: &Session,
        run: &StepRun<'_>,
        merged: Option<MergedCollect<'_>>,
    ) -> StepOutcome {
        let (step, timeout) = (run.number, run.timeout);
        let token = self.req.cancel.child_token();
        // Cancelled when the step is over (the command may still be collecting).
        let done = CancellationToken::new();
        // Cancelled when the command is over (step and collect).
        let finished = CancellationToken::new();
        let (tx, mut rx) = mpsc::channel::<ExecEvent>(256);
        let mut timed_out = None;
        let mut collect_timed_out = None;
        let exec = async {
            let tx = tx;
            let r = match &merged {
                Some(m) => {
                    let collect = CollectRequest {
                        patterns: &m.plan.patterns,
                        max_file_size: m.plan.max_file_size,
                        cleanup: m.cleanup,
                    };
                    session
                        .exec_then_collect(&run.cmd, &collect, &m.marker, &tx, &token)
                        .await
                }
                None => session.exec(&run.cmd, &tx, &token).await,
            };
            done.cancel();
            finished.cancel();
            r
        };
        let timer = async {
            match timeout {
                Some(t) => tokio::select! {
                    _ = tokio::time::sleep(t) => { timed_out = Some(t); token.cancel(); return; }
                    _ = done.cancelled() => {}
                },
                None => done.cancelled().await,
            }
            // The step is over; the collect in the same command has a timeout of its own.
            if let Some(m) = &merged {
                collect::timer(m.plan.timeout, &finished, &token, &mut collect_timed_out).await;
            }
        };
        let consume = async {
            let marker = merged.as_ref().map(|m| m.marker.clone());
            let (mut out, mut err) = (MarkedLines::new(marker.clone()), MarkedLines::new(marker));
            let mut notes = LineSplitter::default();
            let mut sink: Option<CollectSink> = None;
            while let Some(ev) = rx.recv().await {
                let (pieces, stderr) = match &ev {
                    ExecEvent::Stdout(b) => (out.push(b), false),
                    ExecEvent::Stderr(b) => (err.push(b), true),
                    ExecEvent::Started { .. } => {
                        self.running(session, ev).await;
                        continue;
                    }
                };
                if out.found() {
                    done.cancel();
                }
                for piece in pieces {
                    match (piece, &merged) {
                        (Piece::Line(line), _) => self.line(step, stderr, line).await,
                        (Piece::After(b), Some(m)) => {
                            let sink = match sink {
                                Some(ref mut s) => s,
                                None => sink.insert(self.collect_sink(m.plan).await),
                            };
                            if !stderr {
                                sink.event(FetchEvent::Tar(b)).await;
                                continue;
                            }
                            for ev in notes.push(&b).into_iter().filter_map(collect_note) {
                                sink.event(ev).await;
                            }
                        }
                        (Piece::After(_), None) => {}
                    }
                }
            }
            for (s, stderr) in [(&mut out, false), (&mut err, true)] {
                for line in s.finish() {
                    self.line(step, stderr, line).await;
                }
            }
            match &merged {
                Some(m) if out.found() => {
                    let mut sink = match sink {
                        Some(s) => s,
                        None => self.collect_sink(m.plan).await,
                    };
                    for ev in notes.finish().into_iter().filter_map(collect_note) {
                        sink.event(ev).await;
                    }
                    Some((sink, m.cleanup.is_some()))
                }
                _ => None,
            }
        };
        let (result, (), collected) = tokio::join!(exec, timer, consume);
        if let Some((sink, cleans)) = collected {
            let received = sink.finish().await;
            let status = result.map(|st| (st, cleans));
            self.collected_with_step = Some(
                self.report_collect(status, received, collect_timed_out)
                    .await,
            );
            return StepOutcome::Exited(ExitStatus::Code(0));
        }
        match result {
            Ok(st) => StepOutcome::Exited(st),
            Err(TransportError::Cancelled) => match timed_out {
                Some(t) => StepOutcome::StepTimeout(t),
                None => StepOutcome::Cancelled,
            },
            Err(e @ TransportError::Refused { .. }) => StepOutcome::Refused(e.to_string()),
            Err(e) => StepOutcome::Lost(e.to_string()),
        }
    }
}

impl NodeRun<'_> {
    /// Records a step's outcome on the server's result; true when the next step may run
    /// (after a failure, the collect may still run: `on_failure`).
    pub(super) async fn judge(&mut self, i: usize, step: &Step, outcome: StepOutcome) -> bool {
        match outcome {
            StepOutcome::Exited(st) => {
                self.result.exit_code = st.code();
                if st.success() {
                    return true;
                }
                if step.allow_failure {
                    self.warn(format!("{} {st} (allowed to fail)", step.label(i)))
                        .await;
                    return true;
                }
                self.fail(
                    NodeStatus::Failed,
                    format!("{} failed: {st}", step.label(i)),
                );
                false
            }
            StepOutcome::StepTimeout(t) => {
                self.fail(
                    NodeStatus::TimedOut,
                    format!(
                        "{} timed out after {}",
                        step.label(i),
                        humantime::format_duration(t)
                    ),
                );
                false
            }
            StepOutcome::Cancelled => {
                let st = self.cancelled_status();
                self.fail(st, format!("{} was stopped", step.label(i)));
                false
            }
            StepOutcome::Refused(e) => {
                self.fail(NodeStatus::Failed, format!("{}: {e}", step.label(i)));
                false
            }
            StepOutcome::NoMatch(e) if step.allow_failure => {
                self.warn(format!("{}: {e} (allowed to fail)", step.label(i)))
                    .await;
                true
            }
            StepOutcome::NoMatch(e) => {
                self.fail(NodeStatus::Failed, format!("{}: {e}", step.label(i)));
                false
            }
            StepOutcome::Lost(e) => {
                self.fail(
                    NodeStatus::Unreachable,
                    format!("{}: connection lost: {e}", step.label(i)),
                );
                false
            }
        }
    }
}

impl NodeRun<'_> {
    /// Runs `step` as `run` says, again after a failure while it has retries left.
    pub(super) async fn attempts(
        &mut self,
        session: &Session,
        step: &Step,
        run: &StepRun<'_>,
        run_dir: &str,
        (merged, wait): (&Option<(&CollectPlan, String)>, Option<&WaitPlan>),
    ) -> StepOutcome {
        let i = run.number - 1;
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            let with_collect =
                merged
                    .as_ref()
                    .filter(|_| i + 1 == self.req.steps.end)
                    .map(|(plan, marker)| MergedCollect {
                        plan,
                        marker: marker.clone(),
                        cleanup: Some(run_dir).filter(|_| self.uploaded),
                    });
            let outcome = match wait {
                Some(plan) => self.run_wait(session, run, plan).await,
                None => self.run_step(session, run, with_collect).await,
            };
            let _ = self
                .events
                .send(Event::StepDone {
                    node: self.node.name.clone(),
                    step: i + 1,
                    label: step.label(i),
                    outcome: outcome.describe(),
                    duration: started.elapsed(),
                })
                .await;
            let failed = match &outcome {
                StepOutcome::Exited(st) if !st.success() => Some(st.to_string()),
                StepOutcome::NoMatch(why) => Some(why.clone()),
                _ => None,
            };
            match failed {
                Some(why) if attempt < step.retries && !self.req.cancel.is_cancelled() => {
                    attempt += 1;
                    self.warn(format!(
                        "{} {why}; retry {attempt} of {} in {:?}",
                        step.label(i),
                        step.retries,
                        step.retry_delay
                    ))
                    .await;
                    tokio::select! {
                        _ = tokio::time::sleep(step.retry_delay) => {}
                        _ = self.req.cancel.cancelled() => {}
                    }
                }
                _ => return outcome,
            }
        }
    }
}
