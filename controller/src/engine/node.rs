//! One server's part of a run: connect once, upload every script, run the steps in order,
//! collect, clean up.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ordo_inventory::Node;
use ordo_jobs::{Context, RunAsMethod, StepAction};
use ordo_proto::shell::{self, RunAsSpec, SwitchMethod};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;

use super::{Event, NodeResult, NodeStatus, RunRequest};
use crate::clock::now_ms;
use crate::collect;
use crate::transport::lines::{LineSplitter, MarkedLines, Piece};
use crate::transport::{
    CollectRequest, ExecEvent, ExitStatus, FetchEvent, Session, TransportError, collect_note,
};

struct NodeRun<'a> {
    req: &'a RunRequest,
    node: &'a Node,
    events: &'a mpsc::Sender<Event>,
    result: NodeResult,
    /// Whether the run folder was made on the server (steps that cannot run inline).
    uploaded: bool,
    /// Set when the collect ran in the last step's command: whether it removed the run
    /// folder.
    collected_with_step: Option<bool>,
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
    fn cx(&self) -> Context<'_> {
        Context::execution(
            &self.req.options.values,
            &self.req.job.name,
            &self.req.execution_id,
            None,
        )
        .on_node(self.node)
    }

    fn fail(&mut self, status: NodeStatus, error: impl Into<String>) {
        self.result.status = status;
        self.result.error = Some(self.req.options.mask(&error.into()));
    }

    async fn warn(&mut self, message: String) {
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

    fn cancelled_status(&self) -> NodeStatus {
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
        if !cleaned && let Err(e) = session.remove_dir(&run_dir).await {
            self.warn(format!("cleanup of {run_dir} failed: {e}")).await;
        }
        session.close().await;
    }

    /// The run-as target for a step, or `None` when no switch is needed.
    fn run_as(
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
        let method = match spec.method {
            RunAsMethod::Sudo => SwitchMethod::Sudo,
            RunAsMethod::Su => SwitchMethod::Su,
            RunAsMethod::SudoSu => SwitchMethod::SudoSu,
        };
        Ok(Some(RunAsSpec { user, method }))
    }

    /// Uploads the scripts and runs the steps; true when every step succeeded.
    async fn upload_and_run(
        &mut self,
        session: &Session,
        run_dir: &str,
        merged: Option<(&CollectPlan, String)>,
    ) -> bool {
        let job = self.req.job.clone();
        // Build every script for this server first: a template error fails the server
        // before anything runs on it.
        // Plain shell scripts run inline (`sh -c TEXT`): no upload, no run folder, one
        // command fewer on the server. Others are uploaded into the run folder.
        let mut files = Vec::new();
        let mut inline: Vec<Option<(&'static str, String)>> = vec![None; job.steps.len()];
        for (i, step) in job
            .steps
            .iter()
            .enumerate()
            .take(self.req.steps.end)
            .skip(self.req.steps.start)
        {
            let text: Vec<u8> = match &step.action {
                StepAction::Script(t) | StepAction::Command(t) => match t.expand(&self.cx()) {
                    Ok(s) => s.into_bytes(),
                    Err(e) => {
                        self.fail(NodeStatus::Failed, format!("{}: {e}", step.label(i)));
                        return false;
                    }
                },
                StepAction::ScriptFile(_) => self.req.script_files[i].clone().unwrap_or_default(),
                StepAction::Job(_) => {
                    self.fail(
                        NodeStatus::Failed,
                        format!(
                            "{}: a job step runs on the controller, not on a server",
                            step.label(i)
                        ),
                    );
                    return false;
                }
            };
            if let Some(interp) = shell::inline_interpreter(&text) {
                let t = String::from_utf8_lossy(&text).into_owned();
                // Quoted twice more on the way (sudo, the login shell): stay well under
                // the 128 KiB a command-line argument may hold.
                if shell::quote(&shell::quote(&shell::quote(&t))).len() < 100 * 1024 {
                    inline[i] = Some((interp, t));
                    continue;
                }
            }
            let text = if text.starts_with(b"#!") {
                text
            } else {
                [b"#!/bin/sh\n".as_slice(), &text].concat()
            };
            files.push((format!("step-{}", i + 1), text));
        }
        if !files.is_empty() {
            self.uploaded = true;
            match session.upload(run_dir, files, &self.req.cancel).await {
                Ok(()) => {}
                Err(TransportError::Cancelled) => {
                    let st = self.cancelled_status();
                    self.fail(st, "cancelled during upload");
                    return false;
                }
                Err(e @ TransportError::Io(_)) => {
                    self.fail(NodeStatus::Failed, e.to_string());
                    return false;
                }
                Err(e) => {
                    self.fail(NodeStatus::Unreachable, format!("upload failed: {e}"));
                    return false;
                }
            }
        }
        let mut env: Vec<(String, String)> = vec![
            ("ORDO_JOB".into(), job.name.clone()),
            ("ORDO_EXECUTION_ID".into(), self.req.execution_id.clone()),
            ("ORDO_NODE_NAME".into(), self.node.name.clone()),
            ("ORDO_NODE_HOST".into(), self.node.host.clone()),
        ];
        for (k, v) in &self.req.options.values {
            env.push((format!("ORDO_OPTION_{}", env_name(k)), v.clone()));
        }
        for (k, v) in &self.node.attributes {
            env.push((format!("ORDO_NODE_ATTR_{}", env_name(k)), v.clone()));
        }
        for (k, t) in &job.env {
            match t.expand(&self.cx()) {
                Ok(v) => env.push((k.clone(), v)),
                Err(e) => {
                    self.fail(NodeStatus::Failed, format!("env {k}: {e}"));
                    return false;
                }
            }
        }
        let workdir = match &job.workdir {
            Some(t) => match t.expand(&self.cx()) {
                Ok(w) => Some(shell::quote(&w)),
                Err(e) => {
                    self.fail(NodeStatus::Failed, format!("workdir: {e}"));
                    return false;
                }
            },
            None => None,
        };
        let mut all_ok = true;
        for (i, step) in job
            .steps
            .iter()
            .enumerate()
            .take(self.req.steps.end)
            .skip(self.req.steps.start)
        {
            self.result.step_reached = i + 1;
            let args: Result<Vec<String>, String> =
                step.args.iter().map(|a| a.expand(&self.cx())).collect();
            let run_as = self.run_as(session, step.run_as.as_ref().or(job.run_as.as_ref()));
            let (args, run_as) = match (args, run_as) {
                (Ok(a), Ok(r)) => (a, r),
                (Err(e), _) | (_, Err(e)) => {
                    self.fail(NodeStatus::Failed, format!("{}: {e}", step.label(i)));
                    return false;
                }
            };
            let command = match &inline[i] {
                Some((interp, text)) => {
                    shell::inline_step_script(interp, text, &args, workdir.as_deref())
                }
                None => shell::step_script(
                    &format!("{run_dir}/step-{}", i + 1),
                    &args,
                    workdir.as_deref(),
                ),
            };
            let _ = self
                .events
                .send(Event::StepStarted {
                    node: self.node.name.clone(),
                    step: i + 1,
                })
                .await;
            let mut attempt = 0;
            let outcome = loop {
                let started = Instant::now();
                let with_collect = merged.as_ref().filter(|_| i + 1 == self.req.steps.end).map(
                    |(plan, marker)| MergedCollect {
                        plan,
                        marker: marker.clone(),
                        cleanup: Some(run_dir).filter(|_| self.uploaded),
                    },
                );
                let outcome = self
                    .run_step(
                        session,
                        i + 1,
                        &command,
                        &env,
                        step.timeout,
                        run_as.as_ref(),
                        with_collect,
                    )
                    .await;
                let _ = self
                    .events
                    .send(Event::StepDone {
                        node: self.node.name.clone(),
                        step: i + 1,
                        name: step.name.clone(),
                        outcome: outcome.describe(),
                        duration: started.elapsed(),
                    })
                    .await;
                match &outcome {
                    StepOutcome::Exited(st)
                        if !st.success()
                            && attempt < step.retries
                            && !self.req.cancel.is_cancelled() =>
                    {
                        attempt += 1;
                        self.warn(format!(
                            "{} {st}; retry {attempt} of {} in {:?}",
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
                    _ => break outcome,
                }
            };
            match outcome {
                StepOutcome::Exited(st) => {
                    self.result.exit_code = st.code();
                    if !st.success() {
                        if step.allow_failure {
                            self.warn(format!("{} {st} (allowed to fail)", step.label(i)))
                                .await;
                            continue;
                        }
                        self.fail(
                            NodeStatus::Failed,
                            format!("{} failed: {st}", step.label(i)),
                        );
                        all_ok = false;
                        break;
                    }
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
                    return false;
                }
                StepOutcome::Cancelled => {
                    let st = self.cancelled_status();
                    self.fail(st, format!("{} was stopped", step.label(i)));
                    return false;
                }
                StepOutcome::Lost(e) => {
                    self.fail(
                        NodeStatus::Unreachable,
                        format!("{}: connection lost: {e}", step.label(i)),
                    );
                    return false;
                }
            }
        }
        all_ok
    }

    /// Runs one step; a timeout or a stop cancels the exec, and the transport kills the
    /// step's whole process tree. With `merged`, the collect runs in the same command once
    /// the step succeeded (its outcome is then the step's success, and the collect is
    /// reported and recorded in `collected_with_step`).
    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        &mut self,
        session: &Session,
        step: usize,
        command: &str,
        env: &[(String, String)],
        timeout: Option<Duration>,
        run_as: Option<&RunAsSpec>,
        merged: Option<MergedCollect<'_>>,
    ) -> StepOutcome {
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
                        .exec_then_collect(command, env, run_as, &collect, &m.marker, &tx, &token)
                        .await
                }
                None => session.exec(command, env, run_as, &tx, &token).await,
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
                collect_timer(m.plan.timeout, &finished, &token, &mut collect_timed_out).await;
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
            Err(e) => StepOutcome::Lost(e.to_string()),
        }
    }

    async fn line(&self, step: usize, stderr: bool, line: String) {
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

    /// The globs to collect, expanded for this server, and who reads them.
    fn collect_plan(
        &self,
        session: &Session,
        spec: &ordo_jobs::CollectSpec,
    ) -> Result<CollectPlan, String> {
        let patterns = spec
            .paths
            .iter()
            .map(|t| t.expand(&self.cx()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let run_as = if spec.run_as {
            self.run_as(session, self.req.job.run_as.as_ref())?
        } else {
            None
        };
        Ok(CollectPlan {
            patterns,
            run_as,
            max_file_size: spec.max_file_size,
            max_total_size: spec.max_total_size,
            timeout: spec.timeout,
        })
    }

    async fn collect_sink(&self, plan: &CollectPlan) -> CollectSink {
        CollectSink::start(
            self.req.exec_dir.join(self.node.folder_name()),
            &plan.patterns,
            plan.max_total_size,
            plan.max_file_size,
        )
        .await
    }

    /// Collects into the server's folder with a command of its own; true when the run
    /// folder was removed with it.
    async fn collect(&mut self, session: &Session, plan: &CollectPlan, run_dir: &str) -> bool {
        let mut sink = self.collect_sink(plan).await;
        let (tx, mut rx) = mpsc::channel::<FetchEvent>(64);
        // Ctrl-C or the job's timeout stop the collect, and so does its own timeout.
        let token = self.req.cancel.child_token();
        let fetched = CancellationToken::new();
        let mut timed_out = None;
        let fetch = async {
            let tx = tx;
            let r = session
                .fetch(
                    &plan.patterns,
                    plan.max_file_size,
                    plan.run_as.as_ref(),
                    Some(run_dir).filter(|_| self.uploaded),
                    &tx,
                    &token,
                )
                .await;
            fetched.cancel();
            r
        };
        let timer = collect_timer(plan.timeout, &fetched, &token, &mut timed_out);
        let route = async {
            while let Some(ev) = rx.recv().await {
                sink.event(ev).await;
            }
        };
        let (status, (), ()) = tokio::join!(fetch, timer, route);
        let received = sink.finish().await;
        self.report_collect(status, received, timed_out).await
    }

    /// Reports a finished collect; true when the run folder was removed with it.
    async fn report_collect(
        &mut self,
        status: Result<(ExitStatus, bool), TransportError>,
        received: Received,
        timed_out: Option<Duration>,
    ) -> bool {
        for note in received.notes {
            self.warn(note).await;
        }
        if let Some(t) = timed_out {
            self.warn(format!(
                "collect timed out after {} (collect: timeout) and was stopped; files received whole are kept",
                humantime::format_duration(t)
            ))
            .await;
        }
        let cleaned = match status {
            Err(TransportError::Cancelled) if timed_out.is_some() => false,
            Ok((st, cleaned)) => {
                if !st.success() {
                    self.warn(format!("collect command ended with {st}")).await;
                }
                cleaned
            }
            Err(e) => {
                self.warn(format!("collect failed: {e}")).await;
                false
            }
        };
        match received.unpacked {
            Ok(Ok(u)) => {
                for w in u.warnings {
                    self.warn(w).await;
                }
                self.result.bytes = u.files.iter().map(|f| f.size).sum();
                self.result.files = u.files;
            }
            Ok(Err(e)) => {
                self.warn(format!(
                    "collect: cannot unpack into {}: {e}",
                    received.dest.display()
                ))
                .await
            }
            Err(e) => self.warn(format!("collect: {e}")).await,
        }
        if self.result.files.is_empty() {
            let _ = std::fs::remove_dir(&received.dest);
        }
        let _ = self
            .events
            .send(Event::Collected {
                node: self.node.name.clone(),
                files: self.result.files.len(),
            })
            .await;
        cleaned
    }
}

/// Cancels `token` when `limit` passes before `over` is cancelled, and says so in
/// `timed_out`.
async fn collect_timer(
    limit: Duration,
    over: &CancellationToken,
    token: &CancellationToken,
    timed_out: &mut Option<Duration>,
) {
    tokio::select! {
        _ = tokio::time::sleep(limit) => {
            *timed_out = Some(limit);
            token.cancel();
        }
        _ = over.cancelled() => {}
    }
}

/// What a server's collect reads.
struct CollectPlan {
    patterns: Vec<String>,
    run_as: Option<RunAsSpec>,
    max_file_size: u64,
    max_total_size: u64,
    timeout: Duration,
}

/// A collect that runs in the last step's own command (shell transports): the marker
/// that separates the step's output from the collect's, and the folder it removes.
struct MergedCollect<'a> {
    plan: &'a CollectPlan,
    marker: String,
    cleanup: Option<&'a str>,
}

/// Collect streams unpacked at once, in the whole process. Each holds a thread of the
/// blocking pool (16 in the binary) for as long as its server sends, which over a slow
/// link can be minutes; the other threads stay free for DNS lookups (a lookup waiting for
/// a thread would count against `connect_timeout`), the archive and transfers. Further
/// collects wait their turn, and their servers with them (SSH flow control).
static UNPACK_SLOTS: Semaphore = Semaphore::const_new(12);

/// The receiving end of a collect: the tar stream is unpacked into the server's folder as
/// it arrives (on a blocking thread, once one of [`UNPACK_SLOTS`] is free), notes are kept
/// for the report.
struct CollectSink {
    data_tx: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    unpacker: tokio::task::JoinHandle<std::io::Result<collect::Unpacked>>,
    notes: Vec<String>,
    max_file_size: u64,
    dest: std::path::PathBuf,
}

/// What a collect received.
struct Received {
    notes: Vec<String>,
    unpacked: Result<std::io::Result<collect::Unpacked>, tokio::task::JoinError>,
    dest: std::path::PathBuf,
}

impl CollectSink {
    async fn start(
        dest: std::path::PathBuf,
        patterns: &[String],
        max_total: u64,
        max_file_size: u64,
    ) -> Self {
        let bases: Vec<String> = patterns
            .iter()
            .map(|p| shell::glob_base(p).to_string())
            .collect();
        let (data_tx, data_rx) = mpsc::channel::<std::io::Result<Bytes>>(64);
        let dest2 = dest.clone();
        // Never closed: the permit is always granted, in turn.
        let slot = UNPACK_SLOTS.acquire().await.ok();
        let unpacker = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let reader = SyncIoBridge::new(StreamReader::new(
                tokio_stream::wrappers::ReceiverStream::new(data_rx),
            ));
            std::fs::create_dir_all(&dest2)?;
            collect::unpack(reader, &dest2, &bases, max_total)
        });
        CollectSink {
            data_tx: Some(data_tx),
            unpacker,
            notes: Vec::new(),
            max_file_size,
            dest,
        }
    }

    async fn event(&mut self, ev: FetchEvent) {
        match ev {
            FetchEvent::Tar(b) => {
                if let Some(d) = &self.data_tx
                    && d.send(Ok(b)).await.is_err()
                {
                    self.data_tx = None;
                }
            }
            FetchEvent::TooBig(f) => self.notes.push(format!(
                "{f}: not collected: larger than the per-file limit ({})",
                ordo_jobs::units::format_size(self.max_file_size)
            )),
            FetchEvent::Note(n) => self.notes.push(format!("collect: {n}")),
        }
    }

    async fn finish(mut self) -> Received {
        self.data_tx = None;
        Received {
            notes: self.notes,
            unpacked: self.unpacker.await,
            dest: self.dest,
        }
    }
}

enum StepOutcome {
    Exited(ExitStatus),
    StepTimeout(Duration),
    Cancelled,
    Lost(String),
}

impl StepOutcome {
    fn describe(&self) -> String {
        match self {
            StepOutcome::Exited(st) => st.to_string(),
            StepOutcome::StepTimeout(t) => {
                format!("timed out after {}", humantime::format_duration(*t))
            }
            StepOutcome::Cancelled => "stopped".into(),
            StepOutcome::Lost(e) => format!("connection lost: {e}"),
        }
    }
}

/// `my-opt.x` becomes `MY_OPT_X`.
fn env_name(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl NodeStatus {
    pub fn is_ok(self) -> bool {
        self == NodeStatus::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects whose servers are slow to send never hold every thread of the blocking
    /// pool: a DNS lookup (counted in the connect timeout) still gets one at once.
    #[test]
    fn slow_collects_leave_threads_for_lookups() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(16)
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            // 20 collects whose servers send nothing yet.
            let starts: Vec<_> = (0..20)
                .map(|i| {
                    let dest = dir.path().join(format!("s{i}"));
                    tokio::spawn(async move {
                        CollectSink::start(dest, &["/tmp/f".into()], 1 << 20, 0).await
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let lookup = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::lookup_host("localhost:22"),
            )
            .await
            .map(|r| r.map(|addrs| addrs.count()));
            assert!(
                matches!(lookup, Ok(Ok(n)) if n > 0),
                "the lookup waited for a blocking thread: {lookup:?}"
            );
            // Every collect still runs, in turn, when the earlier ones end.
            for start in starts {
                let received = start.await.unwrap().finish().await;
                let unpacked = received.unpacked.unwrap().unwrap();
                assert!(unpacked.files.is_empty());
                assert!(received.dest.is_dir());
            }
        });
    }
}
