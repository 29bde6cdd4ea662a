//! A server's steps, in named phases: build every script (a template error fails the
//! server before anything runs on it), upload those that cannot run inline, prepare the
//! steps' environment, then run each step with its retries and judge its outcome.

use ordo_jobs::template::{Var, env_name};
use ordo_jobs::{ShellVars, Step, StepAction, Template};
use ordo_proto::shell::{self, RunAsSpec};

use super::node::NodeRun;
use super::step::StepRun;
use super::wait_for::{WaitPlan, follow_text};
use super::{Event, NodeStatus};
use crate::collect::CollectPlan;
use crate::session::{Command, Session, TransportError};

/// One server's scripts: plain shell text runs inline (`sh -c TEXT`: no upload, no run
/// folder, one command fewer on the server); the rest is uploaded into the run folder.
struct Scripts {
    /// `step-N` files for the run folder.
    files: Vec<(String, Vec<u8>)>,
    /// Per step index: the interpreter and text of a step that runs inline.
    inline: Vec<Option<(&'static str, String)>>,
}

/// One step's command, the user it runs as, and its environment.
struct StepCommand {
    command: String,
    run_as: Option<RunAsSpec>,
    env: StepEnv,
    /// For a `wait_for` step: what it waits for on this server.
    wait: Option<WaitPlan>,
}

/// What every step of a server gets: its environment variables and working folder.
struct StepEnv {
    vars: Vec<(String, String)>,
    /// Already quoted for the shell.
    workdir: Option<String>,
}

impl NodeRun<'_> {
    /// Uploads the scripts and runs the steps; true when every step succeeded.
    pub(super) async fn upload_and_run(
        &mut self,
        session: &Session,
        run_dir: &str,
        merged: Option<(&CollectPlan, String)>,
    ) -> bool {
        let Some(env) = self.step_env() else {
            return false;
        };
        // Template variables in shell text become references to these variables.
        let mut shell_vars = ShellVars::new(env.vars);
        let Some(scripts) = self.build_scripts(&mut shell_vars) else {
            return false;
        };
        let env = StepEnv {
            vars: shell_vars.into_vars(),
            workdir: env.workdir,
        };
        if !self.upload(session, run_dir, scripts.files).await {
            return false;
        }
        let job = self.req.job.clone();
        for (i, step) in job
            .steps
            .iter()
            .enumerate()
            .take(self.req.steps.end)
            .skip(self.req.steps.start)
        {
            self.result.step_reached = i + 1;
            let Some(StepCommand {
                command,
                run_as,
                env,
                wait,
            }) = self.step_command(session, i, step, &scripts.inline, run_dir, &env)
            else {
                return false;
            };
            let _ = self
                .events
                .send(Event::StepStarted {
                    node: self.node.name.clone(),
                    step: i + 1,
                })
                .await;
            let run = StepRun {
                number: i + 1,
                cmd: Command {
                    text: &command,
                    env: &env.vars,
                    run_as: run_as.as_ref(),
                },
                timeout: step.timeout,
            };
            let outcome = self
                .attempts(session, step, &run, run_dir, (&merged, wait.as_ref()))
                .await;
            if !self.judge(i, step, outcome).await {
                return false;
            }
        }
        true
    }

    /// Every script of this pass, expanded for this server: in shell text a template
    /// variable is a reference to an environment variable (added to `vars`), never its
    /// value pasted into the code; a script in another language reads the environment.
    fn build_scripts(&mut self, vars: &mut ShellVars) -> Option<Scripts> {
        let job = self.req.job.clone();
        let mut scripts = Scripts {
            files: Vec::new(),
            inline: vec![None; job.steps.len()],
        };
        for (i, step) in job
            .steps
            .iter()
            .enumerate()
            .take(self.req.steps.end)
            .skip(self.req.steps.start)
        {
            let text: Vec<u8> = match &step.action {
                StepAction::WaitFor(w) if follow_text(w).is_some() => {
                    follow_text(w).unwrap_or_default().into_bytes()
                }
                StepAction::WaitFor(w) => match &w.source {
                    ordo_jobs::WaitSource::Command(t) => match self.shell_text(t, vars) {
                        Ok(s) => s.into_bytes(),
                        Err(e) => {
                            self.fail(NodeStatus::Failed, format!("{}: {e}", step.label(i)));
                            return None;
                        }
                    },
                    ordo_jobs::WaitSource::File(_) => Vec::new(),
                },
                StepAction::Script(t) | StepAction::Command(t) => match self.shell_text(t, vars) {
                    Ok(s) => s.into_bytes(),
                    Err(e) => {
                        self.fail(NodeStatus::Failed, format!("{}: {e}", step.label(i)));
                        return None;
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
                    return None;
                }
            };
            if let Some(interp) = shell::inline_interpreter(&text) {
                let t = String::from_utf8_lossy(&text).into_owned();
                // Quoted twice more on the way (sudo, the login shell): stay well under
                // the 128 KiB a command-line argument may hold.
                if shell::quote(&shell::quote(&shell::quote(&t))).len() < 100 * 1024 {
                    scripts.inline[i] = Some((interp, t));
                    continue;
                }
            }
            let text = if text.starts_with(b"#!") {
                text
            } else {
                [b"#!/bin/sh\n".as_slice(), &text].concat()
            };
            scripts.files.push((format!("step-{}", i + 1), text));
        }
        Some(scripts)
    }

    /// A `command:` or `script:` expanded for this server (see [`Self::build_scripts`]).
    fn shell_text(&self, t: &Template, vars: &mut ShellVars) -> Result<String, String> {
        if shell::is_shell_script(t.source().as_bytes()) {
            return t.expand_shell(&self.cx(), vars);
        }
        match t.vars().next() {
            None => t.expand(&self.cx()),
            Some(v) => Err(format!(
                "`${{{v}}}` in a script that is not a shell script: a value is never pasted into code; read ${} from the environment instead",
                v.env_name()
            )),
        }
    }

    /// Uploads the scripts that cannot run inline into the run folder (nothing to do
    /// when there is none); false when the server failed.
    async fn upload(
        &mut self,
        session: &Session,
        run_dir: &str,
        files: Vec<(String, Vec<u8>)>,
    ) -> bool {
        if files.is_empty() {
            return true;
        }
        self.uploaded = true;
        let owner = self.agent_owner(session);
        match session
            .upload(run_dir, files, owner.as_deref(), &self.req.cancel)
            .await
        {
            Ok(()) => true,
            Err(TransportError::Cancelled) => {
                let st = self.cancelled_status();
                self.fail(st, "cancelled during upload");
                false
            }
            Err(e @ (TransportError::Io(_) | TransportError::Refused { .. })) => {
                self.fail(NodeStatus::Failed, e.to_string());
                false
            }
            Err(e) => {
                self.fail(NodeStatus::Unreachable, format!("upload failed: {e}"));
                false
            }
        }
    }

    /// `ORDO_*` variables, options, node attributes and the job's `env`, and the
    /// working folder.
    fn step_env(&mut self) -> Option<StepEnv> {
        let job = self.req.job.clone();
        let mut vars: Vec<(String, String)> = vec![
            ("ORDO_JOB".into(), job.name.clone()),
            ("ORDO_EXECUTION_ID".into(), self.req.execution_id.clone()),
            ("ORDO_NODE_NAME".into(), self.node.name.clone()),
            ("ORDO_NODE_HOST".into(), self.node.host.clone()),
        ];
        if let Some(port) = self.node.port {
            vars.push(("ORDO_NODE_PORT".into(), port.to_string()));
        }
        if let Some(user) = &self.node.user {
            vars.push(("ORDO_NODE_USER".into(), user.clone()));
        }
        for (k, v) in &self.req.options.values {
            vars.push((format!("ORDO_OPTION_{}", env_name(k)), v.clone()));
        }
        for (k, v) in &self.node.attributes {
            vars.push((format!("ORDO_NODE_ATTR_{}", env_name(k)), v.clone()));
        }
        for (k, t) in &job.env {
            match t.expand(&self.cx()) {
                Ok(v) => vars.push((k.clone(), v)),
                Err(e) => {
                    self.fail(NodeStatus::Failed, format!("env {k}: {e}"));
                    return None;
                }
            }
        }
        let workdir = match &job.workdir {
            Some(t) => match t.expand(&self.cx()) {
                Ok(w) => Some(shell::quote(&w)),
                Err(e) => {
                    self.fail(NodeStatus::Failed, format!("workdir: {e}"));
                    return None;
                }
            },
            None => None,
        };
        Some(StepEnv { vars, workdir })
    }

    /// The command that runs step `i` on this server, the user it runs as, and its
    /// environment: the arguments travel there (`ORDO_ARG_n`), never in the command's
    /// text. A script that is exec'd (bash, uploaded) has them in its own argv, where `ps`
    /// shows them: a secret option may not be one of its arguments.
    fn step_command(
        &mut self,
        session: &Session,
        i: usize,
        step: &Step,
        inline: &[Option<(&'static str, String)>],
        run_dir: &str,
        env: &StepEnv,
    ) -> Option<StepCommand> {
        let in_this_shell = matches!(&inline[i], Some((interp, _)) if *interp == "/bin/sh");
        if !in_this_shell
            && let Some(secret) = step
                .args
                .iter()
                .flat_map(|a| a.vars())
                .find_map(|v| self.secret_option(v))
        {
            self.fail(
                NodeStatus::Failed,
                format!(
                    "{}: args: option `{secret}` is secret, and this script's arguments show in `ps` on the server: read ${} in the script instead",
                    step.label(i),
                    Var::Option(secret.clone()).env_name()
                ),
            );
            return None;
        }
        let args: Result<Vec<String>, String> =
            step.args.iter().map(|a| a.expand(&self.cx())).collect();
        let run_as = self.run_as(
            session,
            step.run_as.as_ref().or(self.req.job.run_as.as_ref()),
        );
        let (args, run_as) = match (args, run_as) {
            (Ok(a), Ok(r)) => (a, r),
            (Err(e), _) | (_, Err(e)) => {
                self.fail(NodeStatus::Failed, format!("{}: {e}", step.label(i)));
                return None;
            }
        };
        let workdir = env.workdir.as_deref();
        let command = match &inline[i] {
            Some((interp, text)) => shell::inline_step_script(interp, text, args.len(), workdir),
            None => shell::step_script(&format!("{run_dir}/step-{}", i + 1), args.len(), workdir),
        };
        let mut vars = env.vars.clone();
        // What earlier `wait_for` steps matched, in place of the empty values the scripts
        // were built with.
        for (k, v) in &self.match_env {
            match vars.iter_mut().find(|(name, _)| name == k) {
                Some(slot) => slot.1 = v.clone(),
                None => vars.push((k.clone(), v.clone())),
            }
        }
        let wait = match &step.action {
            StepAction::WaitFor(w) => match self.wait_plan(w, &mut vars) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.fail(NodeStatus::Failed, format!("{}: {e}", step.label(i)));
                    return None;
                }
            },
            _ => None,
        };
        vars.extend(
            args.into_iter()
                .enumerate()
                .map(|(n, a)| (shell::arg_var(n + 1), a)),
        );
        Some(StepCommand {
            command,
            run_as,
            env: StepEnv {
                vars,
                workdir: env.workdir.clone(),
            },
            wait,
        })
    }

    /// The name of the job's option `v` refers to, if that option is secret.
    fn secret_option(&self, v: &Var) -> Option<String> {
        match v {
            Var::Option(n)
                if self
                    .req
                    .job
                    .options
                    .iter()
                    .any(|o| o.name == *n && o.secret) =>
            {
                Some(n.clone())
            }
            _ => None,
        }
    }
}
