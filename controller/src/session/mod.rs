//! How the controller reaches a server: one [`Session`] per server per run, over SSH, an
//! agent (gRPC with mutual TLS), or locally. Every transport does the same four things:
//!
//! - `exec`: run a shell script text as a user, stdin in, stdout/stderr streamed back;
//!   cancelling it kills the command's whole process tree;
//! - `upload`: write the run's scripts into a fresh folder;
//! - `fetch`: stream back the files matching globs as a tar, with the same rules everywhere;
//! - `remove_dir`: clean up.
//!
//! SSH and local do all four with the shell commands of [`ordo_proto::shell`]; the agent
//! does them natively.

pub mod agent;
mod agent_settings;
mod agent_tls;
mod error;
mod events;
mod known_hosts;
pub mod lines;
mod local;
pub mod settings;
mod ssh;

use bytes::Bytes;
use ordo_inventory::{Node, Transport};
use ordo_proto::shell::{self, RunAsSpec};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use agent::AgentSession;
pub use agent_settings::AgentSettings;
pub use error::TransportError;
pub use events::{CollectRequest, Command, ExecEvent, ExitStatus, FetchEvent, collect_note};
pub use local::{LocalSession, current_user};
pub use ssh::{SshSession, SshSettings};

/// Settings for every transport of a run; each is loaded only when a server needs it.
#[derive(Clone, Default)]
pub struct Settings {
    pub ssh: Option<SshSettings>,
    pub agent: Option<AgentSettings>,
}

/// An open connection to one server.
pub enum Session {
    Ssh(SshSession),
    Local(LocalSession),
    Agent(AgentSession),
}

impl Session {
    pub async fn connect(node: &Node, settings: &Settings) -> Result<Session, TransportError> {
        match node.transport {
            Transport::Local => Ok(Session::Local(LocalSession::new())),
            Transport::Ssh => match &settings.ssh {
                Some(ssh) => Ok(Session::Ssh(SshSession::connect(node, ssh).await?)),
                None => Err(TransportError::NoKey("SSH settings were not loaded".into())),
            },
            Transport::Agent => match &settings.agent {
                Some(a) => Ok(Session::Agent(AgentSession::connect(node, a).await?)),
                None => Err(TransportError::AgentSetup(
                    "agent settings were not loaded".into(),
                )),
            },
        }
    }

    /// The user commands run as when no run-as is asked for.
    pub fn login_user(&self) -> &str {
        match self {
            Session::Ssh(s) => s.user(),
            Session::Local(s) => s.user(),
            Session::Agent(s) => s.user(),
        }
    }

    /// Runs `cmd` (shell script text, its environment, as its user), streams output
    /// into `out`. When `cancel` fires, the command's whole process tree is stopped and
    /// `Cancelled` returned.
    pub async fn exec(
        &self,
        cmd: &Command<'_>,
        out: &mpsc::Sender<ExecEvent>,
        cancel: &CancellationToken,
    ) -> Result<ExitStatus, TransportError> {
        match self {
            // The agent sets the variables itself; the shells read them from stdin.
            Session::Agent(a) => {
                let user = cmd.run_as.map(|r| r.user.as_str());
                a.exec(cmd.text, cmd.env, Bytes::new(), user, out, cancel)
                    .await
            }
            _ => {
                let stdin = Bytes::from(shell::env_block(cmd.env));
                let full = shell::with_pid_marker(&shell::as_user(cmd.text, cmd.run_as));
                self.shell_exec(&full, stdin, cmd.run_as, out, cancel).await
            }
        }
    }

    /// Whether [`Session::exec_then_collect`] can collect in the step's own command
    /// (SSH and local; an agent collects natively, without a command).
    pub fn collects_with_step(&self) -> bool {
        !matches!(self, Session::Agent(_))
    }

    /// A step and, when it succeeds, the collect after it, in one command (one command
    /// fewer per server). The collect reads as the login user; with `cleanup` it also
    /// removes that folder. The collect's output follows `marker` (see
    /// [`shell::as_user_then`]): the caller splits the stream there and knows from it
    /// whether the collect ran. Shell transports only (see `collects_with_step`).
    pub async fn exec_then_collect(
        &self,
        cmd: &Command<'_>,
        collect: &CollectRequest<'_>,
        marker: &str,
        out: &mpsc::Sender<ExecEvent>,
        cancel: &CancellationToken,
    ) -> Result<ExitStatus, TransportError> {
        let then = shell::collect_script(
            collect.patterns,
            collect.max_file_size,
            collect.cleanup.map(shell::cleanup_command).as_deref(),
        );
        let full =
            shell::with_pid_marker(&shell::as_user_then(cmd.text, cmd.run_as, &then, marker));
        let stdin = Bytes::from(shell::env_block(cmd.env));
        self.shell_exec(&full, stdin, cmd.run_as, out, cancel).await
    }

    /// A plain command over SSH or locally, as the login user.
    /// Runs `command` as the login user; on an agent as `agent_user` (or the agent's own
    /// user), which the agent's policy must allow.
    async fn raw_exec(
        &self,
        command: &str,
        stdin: Bytes,
        agent_user: Option<&str>,
        out: &mpsc::Sender<ExecEvent>,
        cancel: &CancellationToken,
    ) -> Result<ExitStatus, TransportError> {
        match self {
            Session::Ssh(s) => s.exec(command, stdin, out, cancel).await,
            Session::Local(s) => s.exec(command, stdin, out, cancel).await,
            Session::Agent(a) => a.exec(command, &[], stdin, agent_user, out, cancel).await,
        }
    }

    /// exec for the shell transports of a command made with the pid marker: the marker is
    /// taken off stderr, and on cancel the marked process group and session are killed.
    async fn shell_exec(
        &self,
        full: &str,
        stdin: Bytes,
        run_as: Option<&RunAsSpec>,
        out: &mpsc::Sender<ExecEvent>,
        cancel: &CancellationToken,
    ) -> Result<ExitStatus, TransportError> {
        let (tx, mut rx) = mpsc::channel::<ExecEvent>(64);
        let mut pid: Option<u32> = None;
        // As root (the login user is root, or `su`) no switch is needed to signal.
        let kill_as = run_as
            .filter(|_| self.login_user() != "root")
            .map(|r| r.user.clone());
        let run = async move {
            let tx = tx;
            self.raw_exec(full, stdin, None, &tx, cancel).await
        };
        let forward = async {
            // The marker is the first line on stderr; everything else goes through.
            let mut head: Option<Vec<u8>> = Some(Vec::new());
            while let Some(ev) = rx.recv().await {
                let ev = match (ev, head.as_mut()) {
                    (ExecEvent::Stderr(b), Some(buf)) => {
                        buf.extend_from_slice(&b);
                        let Some(nl) = buf.iter().position(|c| *c == b'\n') else {
                            if buf.len() < 64 {
                                continue;
                            }
                            let all = head.take().unwrap_or_default();
                            let _ = out.send(ExecEvent::Stderr(Bytes::from(all))).await;
                            continue;
                        };
                        let all = head.take().unwrap_or_default();
                        let line = String::from_utf8_lossy(&all[..nl]);
                        match line.strip_prefix(shell::PID_MARKER) {
                            Some(p) => {
                                if let Some((p, start)) = shell::parse_pid_marker(p) {
                                    pid = Some(p);
                                    let started = ExecEvent::Started {
                                        pid: p,
                                        start,
                                        kill_as: kill_as.clone(),
                                    };
                                    let _ = out.send(started).await;
                                }
                            }
                            None => {
                                let _ = out
                                    .send(ExecEvent::Stderr(Bytes::copy_from_slice(&all[..=nl])))
                                    .await;
                            }
                        }
                        if all.len() <= nl + 1 {
                            continue;
                        }
                        ExecEvent::Stderr(Bytes::copy_from_slice(&all[nl + 1..]))
                    }
                    (ev, _) => ev,
                };
                if out.send(ev).await.is_err() {
                    break;
                }
            }
        };
        let (result, ()) = tokio::join!(run, forward);
        if let Err(TransportError::Cancelled) = &result {
            let user = run_as
                .filter(|_| self.login_user() != "root")
                .map(|r| r.user.as_str());
            if let Some(kill) = pid.and_then(|p| shell::kill_command(p, 2, user)) {
                let never = CancellationToken::new();
                if let Err(e) = exec_collect(self, &kill, Bytes::new(), &never).await {
                    tracing::warn!(error = %e, "could not stop the remote processes");
                }
            }
        }
        result
    }

    /// Makes `dir` (which must not exist) and writes `files` (name, content) into it, mode 0755.
    /// Writes `files` into the new run folder `dir`: as the login user over SSH and
    /// locally; on an agent, owned by `agent_user` (the run's user), as its policy wants.
    pub async fn upload(
        &self,
        dir: &str,
        files: Vec<(String, Vec<u8>)>,
        agent_user: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<(), TransportError> {
        if let Session::Agent(a) = self {
            return a.upload(dir, files, agent_user).await;
        }
        let mut bundle = tar::Builder::new(Vec::new());
        for (name, data) in &files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
            bundle.append_data(&mut h, name, &data[..])?;
        }
        let bundle = Bytes::from(bundle.into_inner()?);
        let (st, _, err) = exec_collect(self, &shell::upload_command(dir), bundle, cancel).await?;
        if !st.success() {
            return Err(TransportError::Io(std::io::Error::other(format!(
                "upload to {dir} failed ({st}): {}",
                String::from_utf8_lossy(&err).trim()
            ))));
        }
        Ok(())
    }

    /// Streams the files matching `patterns`, read as `run_as`, as a tar into `out`.
    /// With `cleanup`, a shell transport also removes that folder in the same command when
    /// it can (reading as the login user): the returned flag says whether it did.
    /// `cancel` stops it on the server (the shell command's process tree is killed).
    pub async fn fetch(
        &self,
        patterns: &[String],
        max_file_size: u64,
        run_as: Option<&RunAsSpec>,
        cleanup: Option<&str>,
        out: &mpsc::Sender<FetchEvent>,
        cancel: &CancellationToken,
    ) -> Result<(ExitStatus, bool), TransportError> {
        if let Session::Agent(a) = self {
            // Dropping the gRPC stream cancels it; the agent stops its tar.
            let st = tokio::select! {
                st = a.fetch(
                    patterns,
                    max_file_size,
                    run_as.map(|r| r.user.as_str()),
                    out,
                ) => st?,
                _ = cancel.cancelled() => return Err(TransportError::Cancelled),
            };
            return Ok((st, false));
        }
        let (tx, mut rx) = mpsc::channel::<ExecEvent>(64);
        let then = cleanup
            .filter(|_| run_as.is_none())
            .map(shell::cleanup_command);
        let cleaned = then.is_some();
        let command = shell::collect_script(patterns, max_file_size, then.as_deref());
        let run = async move {
            let tx = tx;
            let cmd = Command {
                run_as,
                ..Command::plain(&command)
            };
            self.exec(&cmd, &tx, cancel).await
        };
        let route = async {
            let mut notes = lines::LineSplitter::default();
            let mut lines = Vec::new();
            while let Some(ev) = rx.recv().await {
                match ev {
                    ExecEvent::Stdout(b) => {
                        let _ = out.send(FetchEvent::Tar(b)).await;
                    }
                    ExecEvent::Stderr(b) => lines.extend(notes.push(&b)),
                    ExecEvent::Started { .. } => {}
                }
            }
            lines.extend(notes.finish());
            for ev in lines.into_iter().filter_map(collect_note) {
                let _ = out.send(ev).await;
            }
        };
        let (status, ()) = tokio::join!(run, route);
        Ok((status?, cleaned))
    }

    /// Removes a folder made by `upload`.
    /// Removes the run folder: as the login user, or on an agent as `agent_user` (who
    /// owns what the agent uploaded).
    pub async fn remove_dir(
        &self,
        dir: &str,
        agent_user: Option<&str>,
    ) -> Result<(), TransportError> {
        let never = CancellationToken::new();
        let command = shell::cleanup_command(dir);
        let (st, _, err) =
            exec_collect_as(self, &command, Bytes::new(), agent_user, &never).await?;
        if st.success() {
            Ok(())
        } else {
            Err(TransportError::Io(std::io::Error::other(
                String::from_utf8_lossy(&err).trim().to_string(),
            )))
        }
    }

    pub async fn close(self) {
        match self {
            Session::Ssh(s) => s.close().await,
            Session::Agent(_) | Session::Local(_) => {}
        }
    }
}

/// Runs a housekeeping command as the login user and collects its whole output.
pub async fn exec_collect(
    session: &Session,
    command: &str,
    stdin: Bytes,
    cancel: &CancellationToken,
) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), TransportError> {
    exec_collect_as(session, command, stdin, None, cancel).await
}

/// [`exec_collect`], on an agent as `agent_user`.
async fn exec_collect_as(
    session: &Session,
    command: &str,
    stdin: Bytes,
    agent_user: Option<&str>,
    cancel: &CancellationToken,
) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), TransportError> {
    let (tx, mut rx) = mpsc::channel(64);
    let gather = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        while let Some(ev) = rx.recv().await {
            match ev {
                ExecEvent::Stdout(b) => o.extend_from_slice(&b),
                ExecEvent::Stderr(b) => e.extend_from_slice(&b),
                ExecEvent::Started { .. } => {}
            }
        }
        (o, e)
    };
    let run = async move {
        let tx = tx;
        session
            .raw_exec(command, stdin, agent_user, &tx, cancel)
            .await
    };
    let (status, (o, e)) = tokio::join!(run, gather);
    Ok((status?, o, e))
}
