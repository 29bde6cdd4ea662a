//! The `ordo.agent.v1.Agent` service.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::Stream;
use ordo_proto::agent::agent_server::Agent;
use ordo_proto::agent::{
    ExecInput, ExecOutput, ExitStatus, FetchChunk, FetchRequest, FetchSkipped, HealthRequest,
    HealthResponse, KillRequest, KillResult, UploadInput, UploadResult, exec_input, exec_output,
    fetch_chunk, upload_input,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::config::AgentConfig;
use crate::orphans::RunningGroups;
use crate::policy;
use crate::process::{self, SpawnError};
use crate::upload::{self, RunFolders};

type OutStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Output chunks in flight per command: with 32 KiB reads, at most ~1 MiB buffered.
const CHANNEL_DEPTH: usize = 32;
const READ_SIZE: usize = 32 * 1024;

pub struct AgentService {
    cfg: Arc<AgentConfig>,
    started: Instant,
    running: Arc<AtomicU32>,
    limit: Arc<Semaphore>,
    /// Kill switches of the running commands, by exec id. A plain mutex: held only to
    /// insert, remove or look up, never across an await.
    kills: Arc<Mutex<HashMap<String, CancellationToken>>>,
    cert_not_after: i64,
    folders: RunFolders,
    groups: Arc<RunningGroups>,
}

impl AgentService {
    pub fn new(cfg: Arc<AgentConfig>, cert_not_after: i64, groups: Arc<RunningGroups>) -> Self {
        AgentService {
            groups,
            limit: Arc::new(Semaphore::new(cfg.max_concurrent)),
            cfg,
            started: Instant::now(),
            running: Arc::new(AtomicU32::new(0)),
            kills: Arc::new(Mutex::new(HashMap::new())),
            cert_not_after,
            folders: RunFolders::default(),
        }
    }

    /// The user a request runs as, checked against `allowed_users` (an empty `run_as` is
    /// the agent's own user, which must be allowed too).
    fn check_user(&self, run_as: &str) -> Result<policy::Effective, Status> {
        policy::effective_user(&self.cfg, run_as).map_err(Status::from)
    }
}

/// Forwards a pipe into the response channel in bounded chunks.
async fn pump(
    mut r: impl tokio::io::AsyncRead + Unpin,
    tx: mpsc::Sender<Result<ExecOutput, Status>>,
    stderr: bool,
) {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let data = buf[..n].to_vec();
                let msg = if stderr {
                    exec_output::Msg::Stderr(data)
                } else {
                    exec_output::Msg::Stdout(data)
                };
                if tx.send(Ok(ExecOutput { msg: Some(msg) })).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        Ok(Response::new(HealthResponse {
            name: self.cfg.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            running: self.running.load(Ordering::SeqCst),
            max_concurrent: self.cfg.max_concurrent as u32,
            allowed_users: self.cfg.allowed_users.clone(),
            user: process::own_user(),
            certificate_not_after: self.cert_not_after,
        }))
    }

    type ExecStream = OutStream<ExecOutput>;

    async fn exec(
        &self,
        request: Request<Streaming<ExecInput>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let mut input = request.into_inner();
        let start = match input.message().await? {
            Some(ExecInput {
                msg: Some(exec_input::Msg::Start(s)),
            }) => s,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message of Exec must be `start`",
                ));
            }
        };
        let user = self.check_user(&start.run_as)?;
        let env: Vec<(String, String)> = start.env.into_iter().collect();
        policy::check_env(&env).map_err(Status::invalid_argument)?;
        let mut cmd = process::shell(
            &start.command,
            user.account.as_ref(),
            &env,
            Some(&start.workdir),
        )
        .map_err(Status::from)?;
        let permit = self
            .limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the agent is stopping"))?;
        let mut child = cmd.spawn().map_err(|e| Status::from(SpawnError::Io(e)))?;
        let leader = child.id().unwrap_or_default();
        self.groups.started(leader);
        let groups = self.groups.clone();
        let kill = CancellationToken::new();
        if !start.exec_id.is_empty() {
            self.kills
                .lock()
                .expect("poisoned")
                .insert(start.exec_id.clone(), kill.clone());
        }
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let (running, kills, grace) = (
            self.running.clone(),
            self.kills.clone(),
            self.cfg.kill_grace,
        );
        running.fetch_add(1, Ordering::SeqCst);
        let exec_id = start.exec_id.clone();
        let timeout =
            (start.timeout_secs > 0).then(|| Duration::from_secs(u64::from(start.timeout_secs)));
        tokio::spawn(async move {
            let _permit = permit;
            let mut stdin = child.stdin.take();
            let feed = async {
                while let Ok(Some(msg)) = input.message().await {
                    match msg.msg {
                        Some(exec_input::Msg::Stdin(data)) => {
                            if let Some(s) = stdin.as_mut()
                                && s.write_all(&data).await.is_err()
                            {
                                stdin = None;
                            }
                        }
                        Some(exec_input::Msg::CloseStdin(_)) => break,
                        _ => {}
                    }
                }
                // The caller's stream ended (or broke): the command has all its input.
                drop(stdin);
            };
            let out = pump(child.stdout.take().expect("piped"), tx.clone(), false);
            let err = pump(child.stderr.take().expect("piped"), tx.clone(), true);
            let io = async { tokio::join!(out, err) };
            let gone = tx.clone();
            // Ends when the command is done, or must be stopped.
            let outcome = tokio::select! {
                ((), _) = async { tokio::join!(feed, io) } => "done",
                _ = kill.cancelled() => "killed",
                _ = async { match timeout { Some(t) => tokio::time::sleep(t).await, None => std::future::pending().await } } => "timed-out",
                _ = gone.closed() => "caller-gone",
            };
            if outcome != "done" {
                process::stop_group(&mut child, grace).await;
            }
            let status = child.wait().await;
            groups.ended(leader);
            let mut exit = ExitStatus {
                timed_out: outcome == "timed-out",
                killed: outcome == "killed",
                ..Default::default()
            };
            if let Ok(st) = status {
                exit.code = st.code();
                if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&st) {
                    exit.signal = process::signal_name(sig);
                }
            }
            let _ = tx
                .send(Ok(ExecOutput {
                    msg: Some(exec_output::Msg::Exit(exit)),
                }))
                .await;
            if !exec_id.is_empty() {
                kills.lock().expect("poisoned").remove(&exec_id);
            }
            running.fetch_sub(1, Ordering::SeqCst);
            if outcome == "caller-gone" {
                tracing::warn!(
                    exec_id,
                    "the controller went away: the command's process group was stopped"
                );
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn upload(
        &self,
        request: Request<Streaming<UploadInput>>,
    ) -> Result<Response<UploadResult>, Status> {
        let mut input = request.into_inner();
        let header = match input.message().await? {
            Some(UploadInput {
                msg: Some(upload_input::Msg::Header(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message of Upload must be `header`",
                ));
            }
        };
        let bytes = upload::receive(&self.cfg, &self.folders, header, input).await?;
        Ok(Response::new(UploadResult { bytes }))
    }

    type FetchStream = OutStream<FetchChunk>;

    async fn fetch(
        &self,
        request: Request<FetchRequest>,
    ) -> Result<Response<Self::FetchStream>, Status> {
        let req = request.into_inner();
        let user = self.check_user(&req.run_as)?;
        if req.patterns.iter().any(|p| !p.starts_with('/')) {
            return Err(Status::invalid_argument("fetch: patterns must be absolute"));
        }
        let script = ordo_proto::shell::collect_script(&req.patterns, req.max_file_size, None);
        let mut child = process::shell(&script, user.account.as_ref(), &[], None)
            .map_err(Status::from)?
            .spawn()
            .map_err(|e| Status::from(SpawnError::Io(e)))?;
        let leader = child.id().unwrap_or_default();
        self.groups.started(leader);
        let groups = self.groups.clone();
        drop(child.stdin.take());
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let max = req.max_file_size;
        tokio::spawn(async move {
            let mut stdout = child.stdout.take().expect("piped");
            let mut stderr = child.stderr.take().expect("piped");
            let tar_tx = tx.clone();
            let data = async move {
                let mut buf = vec![0u8; READ_SIZE];
                loop {
                    match stdout.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let msg = FetchChunk {
                                msg: Some(fetch_chunk::Msg::Tar(buf[..n].to_vec())),
                            };
                            if tar_tx.send(Ok(msg)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            };
            let mut notes = Vec::new();
            let closed = tx.clone();
            tokio::select! {
                _ = async { tokio::join!(data, stderr.read_to_end(&mut notes)) } => {}
                // The controller stopped the collect (its timeout, Ctrl-C): a tar stuck on
                // a file (a hung network mount) would otherwise never end.
                _ = closed.closed() => {
                    process::stop_group(&mut child, Duration::from_secs(2)).await;
                    let _ = child.wait().await;
                    groups.ended(leader);
                    return;
                }
            }
            for line in String::from_utf8_lossy(&notes).lines() {
                let msg = match line.strip_prefix(ordo_proto::shell::TOO_BIG_MARKER) {
                    Some(path) => fetch_chunk::Msg::Skipped(FetchSkipped {
                        path: path.to_string(),
                        reason: format!("larger than {max} bytes"),
                    }),
                    None if line.contains("Removing leading") || line.trim().is_empty() => continue,
                    None => fetch_chunk::Msg::Note(line.to_string()),
                };
                let _ = tx.send(Ok(FetchChunk { msg: Some(msg) })).await;
            }
            let waited = child.wait().await;
            groups.ended(leader);
            match waited {
                Ok(st) if !st.success() => {
                    let _ = tx
                        .send(Err(Status::internal(format!(
                            "collecting files ended with {st}"
                        ))))
                        .await;
                }
                Err(e) => {
                    let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                }
                Ok(_) => {}
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn kill(&self, request: Request<KillRequest>) -> Result<Response<KillResult>, Status> {
        let id = request.into_inner().exec_id;
        let token = self.kills.lock().expect("poisoned").get(&id).cloned();
        if let Some(t) = &token {
            t.cancel();
        }
        Ok(Response::new(KillResult {
            found: token.is_some(),
        }))
    }
}
