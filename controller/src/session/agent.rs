//! The `agent` transport: gRPC with mutual TLS to the ordo agent on the server.

use std::time::Duration;

use bytes::Bytes;
use ordo_inventory::Node;
use ordo_proto::agent::agent_client::AgentClient;
use ordo_proto::agent::{
    ExecInput, ExecStart, FetchRequest, HealthRequest, HealthResponse, KillRequest, UploadHeader,
    UploadInput, exec_input, exec_output, fetch_chunk, upload_input,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::agent_settings::channels;
use super::{AgentSettings, ExecEvent, ExitStatus, FetchEvent, TransportError};

/// The agents' default port.
pub const DEFAULT_PORT: u16 = 7443;
const CHUNK: usize = 64 * 1024;

/// An agent as it answered its health check when we connected.
#[derive(Debug, Clone)]
pub struct AgentSeen {
    pub node: String,
    pub address: String,
    pub version: String,
    /// The user the agent runs as.
    pub run_user: String,
    /// Its certificate's expiry (Unix ms).
    pub cert_not_after: i64,
    pub at: i64,
}

pub struct AgentSession {
    client: AgentClient<Channel>,
    addr: String,
    health: HealthResponse,
}

impl AgentSession {
    pub async fn connect(node: &Node, s: &AgentSettings) -> Result<AgentSession, TransportError> {
        let port = node.port.unwrap_or(DEFAULT_PORT);
        let host = if node.host.contains(':') {
            format!("[{}]", node.host)
        } else {
            node.host.clone()
        };
        let addr = format!("{host}:{port}");
        let err = |reason: String| TransportError::Agent {
            addr: addr.clone(),
            reason,
        };
        let key = (addr.clone(), node.name.clone(), s.fingerprint.clone());
        let cached = channels()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(channel) = cached {
            let mut client = AgentClient::new(channel).max_decoding_message_size(16 << 20);
            match tokio::time::timeout(s.connect_timeout, client.health(HealthRequest {})).await {
                Ok(Ok(health)) => {
                    return Ok(AgentSession {
                        client,
                        addr,
                        health: health.into_inner(),
                    });
                }
                // Gone or restarted with another certificate: connect afresh.
                _ => {
                    channels()
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                }
            }
        }
        // The agent's certificate must be for the server's name in the inventory (and,
        // with a CRL, not revoked).
        let connecting = match &s.crl_tls {
            Some(crl_tls) => {
                let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| err(e.to_string()))?
                    .connect_timeout(s.connect_timeout)
                    .http2_keep_alive_interval(Duration::from_secs(30));
                futures::future::Either::Left(crl_tls.channel(
                    endpoint,
                    addr.clone(),
                    node.name.clone(),
                ))
            }
            None => {
                let tls = ClientTlsConfig::new()
                    .ca_certificate(s.ca.clone())
                    .identity(s.identity.clone())
                    .domain_name(node.name.clone());
                let endpoint = Endpoint::from_shared(format!("https://{addr}"))
                    .map_err(|e| err(e.to_string()))?
                    .tls_config(tls)
                    .map_err(|e| err(e.to_string()))?
                    .connect_timeout(s.connect_timeout)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30));
                futures::future::Either::Right(async move { endpoint.connect().await })
            }
        };
        let channel = tokio::time::timeout(s.connect_timeout, connecting)
            .await
            .map_err(|_| TransportError::ConnectTimeout {
                addr: addr.clone(),
                secs: s.connect_timeout.as_secs(),
            })?
            .map_err(|e| TransportError::Connect {
                addr: addr.clone(),
                reason: describe(&e),
            })?;
        channels()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, channel.clone());
        let mut client = AgentClient::new(channel).max_decoding_message_size(16 << 20);
        let health = client
            .health(HealthRequest {})
            .await
            .map_err(|e| err(format!("health check refused: {}", e.message())))?
            .into_inner();
        Ok(AgentSession {
            client,
            addr,
            health,
        })
    }

    pub fn user(&self) -> &str {
        &self.health.user
    }

    pub fn health(&self) -> &HealthResponse {
        &self.health
    }

    /// What this contact tells of the agent, for the history.
    pub fn seen(&self, node: &Node) -> AgentSeen {
        AgentSeen {
            node: node.name.clone(),
            address: self.addr.clone(),
            version: self.health.version.clone(),
            run_user: self.health.user.clone(),
            cert_not_after: self.health.certificate_not_after,
            at: crate::clock::now_ms(),
        }
    }

    fn status_err(&self, what: &str, e: tonic::Status) -> TransportError {
        let (addr, reason) = (self.addr.clone(), format!("{what}: {}", e.message()));
        match e.code() {
            tonic::Code::PermissionDenied
            | tonic::Code::InvalidArgument
            | tonic::Code::FailedPrecondition => TransportError::Refused { addr, reason },
            _ => TransportError::Agent { addr, reason },
        }
    }

    pub async fn exec(
        &self,
        command: &str,
        env: &[(String, String)],
        stdin: Bytes,
        run_as: Option<&str>,
        out: &mpsc::Sender<ExecEvent>,
        cancel: &CancellationToken,
    ) -> Result<ExitStatus, TransportError> {
        let exec_id = uuid::Uuid::now_v7().to_string();
        let (tx, rx) = mpsc::channel::<ExecInput>(4);
        let start = ExecStart {
            command: command.to_string(),
            run_as: run_as.unwrap_or_default().to_string(),
            env: env.iter().cloned().collect(),
            exec_id: exec_id.clone(),
            ..Default::default()
        };
        let msg = |m| ExecInput { msg: Some(m) };
        let _ = tx.send(msg(exec_input::Msg::Start(start))).await;
        // Without stdin the whole request is two messages, sent at once; otherwise a task
        // streams stdin while the output comes back.
        let feeder = if stdin.is_empty() {
            let _ = tx.send(msg(exec_input::Msg::CloseStdin(true))).await;
            drop(tx);
            None
        } else {
            Some(tokio::spawn(async move {
                for chunk in stdin.chunks(CHUNK) {
                    if tx
                        .send(msg(exec_input::Msg::Stdin(chunk.to_vec())))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = tx.send(msg(exec_input::Msg::CloseStdin(true))).await;
            }))
        };
        let stop_feeder = || {
            if let Some(f) = &feeder {
                f.abort();
            }
        };
        let mut client = self.client.clone();
        let call = client.exec(ReceiverStream::new(rx));
        let mut stream = tokio::select! {
            r = call => r.map_err(|e| self.status_err("exec", e))?.into_inner(),
            _ = cancel.cancelled() => { stop_feeder(); return Err(TransportError::Cancelled); }
        };
        let mut status = ExitStatus::Unknown;
        loop {
            let next = tokio::select! {
                m = stream.message() => m,
                _ = cancel.cancelled() => {
                    // Ask for the kill explicitly, and wait for the agent to confirm the end.
                    let mut c = self.client.clone();
                    let _ = c.kill(KillRequest { exec_id: exec_id.clone(), grace_secs: 0 }).await;
                    let _ = tokio::time::timeout(Duration::from_secs(10), async { while let Ok(Some(_)) = stream.message().await {} }).await;
                    stop_feeder();
                    return Err(TransportError::Cancelled);
                }
            };
            match next {
                Ok(Some(m)) => match m.msg {
                    Some(exec_output::Msg::Stdout(d)) => {
                        let _ = out.send(ExecEvent::Stdout(Bytes::from(d))).await;
                    }
                    Some(exec_output::Msg::Stderr(d)) => {
                        let _ = out.send(ExecEvent::Stderr(Bytes::from(d))).await;
                    }
                    Some(exec_output::Msg::Exit(e)) => {
                        status = match (e.code, e.signal.as_str()) {
                            (Some(c), _) => ExitStatus::Code(c),
                            (None, "") => ExitStatus::Unknown,
                            (None, sig) => ExitStatus::Signal(sig.to_string()),
                        };
                    }
                    None => {}
                },
                Ok(None) => break,
                Err(e) => return Err(self.status_err("exec", e)),
            }
        }
        stop_feeder();
        Ok(status)
    }

    pub async fn upload(
        &self,
        dir: &str,
        files: Vec<(String, Vec<u8>)>,
        owner: Option<&str>,
    ) -> Result<(), TransportError> {
        for (name, data) in files {
            let (tx, rx) = mpsc::channel::<UploadInput>(4);
            let header = UploadHeader {
                path: format!("{}/{name}", dir.trim_end_matches('/')),
                mode: 0o755,
                create_dirs: true,
                run_as: owner.unwrap_or_default().to_string(),
            };
            let feeder = tokio::spawn(async move {
                let _ = tx
                    .send(UploadInput {
                        msg: Some(upload_input::Msg::Header(header)),
                    })
                    .await;
                for chunk in data.chunks(CHUNK) {
                    if tx
                        .send(UploadInput {
                            msg: Some(upload_input::Msg::Data(chunk.to_vec())),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
            let mut client = self.client.clone();
            let r = client.upload(ReceiverStream::new(rx)).await;
            feeder.abort();
            r.map_err(|e| self.status_err(&format!("upload of {name}"), e))?;
        }
        Ok(())
    }

    pub async fn fetch(
        &self,
        patterns: &[String],
        max_file_size: u64,
        run_as: Option<&str>,
        out: &mpsc::Sender<FetchEvent>,
    ) -> Result<ExitStatus, TransportError> {
        let mut client = self.client.clone();
        let req = FetchRequest {
            patterns: patterns.to_vec(),
            run_as: run_as.unwrap_or_default().to_string(),
            max_file_size,
        };
        let mut stream = client
            .fetch(req)
            .await
            .map_err(|e| self.status_err("fetch", e))?
            .into_inner();
        loop {
            match stream.message().await {
                Ok(Some(c)) => {
                    let ev = match c.msg {
                        Some(fetch_chunk::Msg::Tar(d)) => FetchEvent::Tar(Bytes::from(d)),
                        Some(fetch_chunk::Msg::Skipped(s)) => FetchEvent::TooBig(s.path),
                        Some(fetch_chunk::Msg::Note(n)) => FetchEvent::Note(n),
                        None => continue,
                    };
                    if out.send(ev).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(self.status_err("fetch", e)),
            }
        }
        Ok(ExitStatus::Code(0))
    }
}

/// A transport error with its causes (tonic keeps them in its source chain), each said once:
/// "tcp connect error: Connection refused (os error 111)".
fn describe(e: &tonic::transport::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
        src = s.source();
    }
    if parts.len() > 1 && parts[0] == "transport error" {
        parts.remove(0);
    }
    parts.join(": ")
}
