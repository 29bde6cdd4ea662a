//! `wait_for` steps on a server: the file (`tail -F`, which follows it across rotation) or
//! the command's output is read line by line on the controller; the first line that
//! matches ends the command and the step, and so does the end of the wait.

use std::collections::VecDeque;
use std::time::Duration;

use ordo_jobs::template::Var;
use ordo_jobs::{WaitFor, WaitFrom, WaitSource};
use regex::{Regex, RegexBuilder};
use tokio::sync::mpsc;

use super::node::NodeRun;
use super::step::{StepOutcome, StepRun};
use crate::session::lines::LineSplitter;
use crate::session::{ExecEvent, ExitStatus, Session, TransportError};

/// The environment variable that holds the followed file's path (never pasted in code).
const FILE_VAR: &str = "ORDO_WAIT_FILE";
/// How many of the last lines read a failed wait shows.
const LAST_LINES: usize = 20;
/// A compiled pattern may take this much memory at most.
const REGEX_SIZE: usize = 1 << 20;

/// A `wait_for` step as it runs on one server.
pub(super) struct WaitPlan {
    regex: Regex,
    /// The pattern as the job writes it (its template), for messages.
    shown: String,
    within: Duration,
    /// What is read, for messages: the file's path or `the command's output`.
    what: String,
}

/// Why the wait ended without a match.
enum Stop {
    Within,
    StepTimeout(Duration),
}

/// The shell text that follows the file of a `wait_for` step (its path is in the step's
/// environment), or `None` for a command (its own text runs).
pub(super) fn follow_text(w: &WaitFor) -> Option<String> {
    match &w.source {
        WaitSource::File(_) => Some(format!(
            "exec tail -n {} -F -- \"${FILE_VAR}\"",
            match w.from {
                WaitFrom::Start => "+1",
                WaitFrom::End => "0",
            }
        )),
        WaitSource::Command(_) => None,
    }
}

impl NodeRun<'_> {
    /// The step's pattern, wait and file for this server; the file's path is added to
    /// `vars`.
    pub(super) fn wait_plan(
        &self,
        w: &WaitFor,
        vars: &mut Vec<(String, String)>,
    ) -> Result<WaitPlan, String> {
        let cx = self.cx();
        let text = w
            .pattern
            .expand_regex(&cx)
            .map_err(|e| format!("wait_for: pattern: {e}"))?;
        // Logs and errors show the pattern as written (its template), never expanded: the
        // values in it may be secrets.
        let shown = w.pattern.source().to_string();
        let regex = RegexBuilder::new(&text)
            .size_limit(REGEX_SIZE)
            .build()
            .map_err(|e| {
                let why = match e {
                    regex::Error::CompiledTooBig(_) => "too large once expanded",
                    _ => "not a regular expression once expanded",
                };
                format!("wait_for: pattern /{shown}/: {why}")
            })?;
        let within = w
            .within
            .expand(&cx)
            .map_err(|e| format!("wait_for: within: {e}"))?;
        let within = ordo_jobs::units::parse_duration(&within)
            .map_err(|e| format!("wait_for: within: {e}"))?;
        let what = match &w.source {
            WaitSource::File(f) => {
                let path = f.expand(&cx).map_err(|e| format!("wait_for: file: {e}"))?;
                vars.push((FILE_VAR.into(), path.clone()));
                path
            }
            WaitSource::Command(_) => "the command's output".into(),
        };
        Ok(WaitPlan {
            regex,
            shown,
            within,
            what,
        })
    }

    /// Runs a `wait_for` step: success at the first line of the command's standard output
    /// that matches (the line and its named groups are kept for the later steps);
    /// otherwise the last lines read are shown.
    pub(super) async fn run_wait(
        &mut self,
        session: &Session,
        run: &StepRun<'_>,
        plan: &WaitPlan,
    ) -> StepOutcome {
        let (step, timeout) = (run.number, run.timeout);
        let wait = humantime::format_duration(plan.within);
        self.line(
            step,
            false,
            format!(
                "wait_for: waiting up to {wait} for a line matching /{}/ in {}",
                plan.shown, plan.what
            ),
        )
        .await;
        let token = self.req.cancel.child_token();
        let (tx, mut rx) = mpsc::channel::<ExecEvent>(256);
        let exec = async {
            let tx = tx;
            session.exec(&run.cmd, &tx, &token).await
        };
        let watch = async {
            let (mut out, mut err) = (LineSplitter::default(), LineSplitter::default());
            let mut last: VecDeque<String> = VecDeque::new();
            let mut found: Option<(String, Vec<(String, String)>)> = None;
            let mut stop = None;
            let within = tokio::time::sleep(plan.within);
            let step_timeout = async {
                match timeout {
                    Some(t) => tokio::time::sleep(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(within, step_timeout);
            loop {
                let idle = found.is_none() && stop.is_none();
                tokio::select! {
                    ev = rx.recv() => {
                        let Some(ev) = ev else { break };
                        if !idle {
                            continue;
                        }
                        let (lines, stderr) = match &ev {
                            ExecEvent::Stdout(b) => (out.push(b), false),
                            ExecEvent::Stderr(b) => (err.push(b), true),
                            ExecEvent::Started { .. } => {
                                self.running(session, ev).await;
                                continue;
                            }
                        };
                        if let Some(f) = self.scan(plan, lines, stderr, &mut last) {
                            found = Some(f);
                            token.cancel();
                        }
                    }
                    _ = &mut within, if idle => {
                        stop = Some(Stop::Within);
                        token.cancel();
                    }
                    _ = &mut step_timeout, if idle => {
                        stop = timeout.map(Stop::StepTimeout);
                        token.cancel();
                    }
                }
            }
            if found.is_none() && stop.is_none() {
                found = self.scan(plan, out.finish().into_iter().collect(), false, &mut last);
                self.scan(plan, err.finish().into_iter().collect(), true, &mut last);
            }
            (found, stop, last)
        };
        let (result, (found, stop, last)) = tokio::join!(exec, watch);
        if let Some((line, groups)) = found {
            self.line(step, false, line.clone()).await;
            self.keep_match(step, line, groups);
            return StepOutcome::Exited(ExitStatus::Code(0));
        }
        let why = match (stop, result) {
            (Some(Stop::StepTimeout(t)), _) => return StepOutcome::StepTimeout(t),
            (_, _) if self.req.cancel.is_cancelled() => return StepOutcome::Cancelled,
            (Some(Stop::Within), _) => format!(
                "no line matched /{}/ in {} within {wait}",
                plan.shown, plan.what
            ),
            (None, Ok(st)) => format!(
                "{} ended ({st}) before a line matched /{}/",
                plan.what, plan.shown
            ),
            (None, Err(e @ TransportError::Refused { .. })) => {
                return StepOutcome::Refused(e.to_string());
            }
            (None, Err(TransportError::Cancelled)) => return StepOutcome::Cancelled,
            (None, Err(e)) => return StepOutcome::Lost(e.to_string()),
        };
        if last.is_empty() {
            self.line(step, true, format!("wait_for: {why}; no line was read"))
                .await;
        } else {
            self.line(
                step,
                true,
                format!("wait_for: {why}; the last {} line(s) read:", last.len()),
            )
            .await;
            for l in last {
                self.line(step, true, l).await;
            }
        }
        StepOutcome::NoMatch(why)
    }

    /// Looks for the first matching line of standard output among `lines`, keeping the
    /// last lines read; the line and its named groups when one matched.
    fn scan(
        &self,
        plan: &WaitPlan,
        lines: Vec<String>,
        stderr: bool,
        last: &mut VecDeque<String>,
    ) -> Option<(String, Vec<(String, String)>)> {
        for line in lines {
            if !stderr && let Some(c) = plan.regex.captures(&line) {
                let groups = plan
                    .regex
                    .capture_names()
                    .flatten()
                    .map(|g| {
                        let v = c.name(g).map_or("", |m| m.as_str()).to_string();
                        (g.to_string(), v)
                    })
                    .collect();
                return Some((line, groups));
            }
            if last.len() == LAST_LINES {
                last.pop_front();
            }
            last.push_back(line);
        }
        None
    }

    /// Keeps what step `step` matched: `${step.N.match[.NAME]}` for the later steps'
    /// templates, `ORDO_STEP_N_MATCH[_NAME]` in their environment.
    fn keep_match(&mut self, step: usize, line: String, groups: Vec<(String, String)>) {
        let whole = std::iter::once((None, line));
        for (group, value) in whole.chain(groups.into_iter().map(|(g, v)| (Some(g), v))) {
            let var = Var::StepMatch {
                step,
                group: group.clone(),
            };
            self.match_env.retain(|(k, _)| *k != var.env_name());
            self.match_env.push((var.env_name(), value.clone()));
            self.matches
                .insert(Var::match_key(step, group.as_deref()), value);
        }
    }
}
