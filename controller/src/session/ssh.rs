//! The `ssh` transport: one russh connection per server per run, key authentication only,
//! host keys checked against known_hosts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Disconnect};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use ordo_inventory::Node;

use super::known_hosts::{KnownHosts, Verdict};
use super::{ExecEvent, ExitStatus, TransportError};

/// SSH settings shared by every connection of a run.
#[derive(Clone)]
pub struct SshSettings {
    pub default_user: String,
    /// Private keys, tried in order; loaded once per run.
    pub keys: Arc<Vec<(PathBuf, Arc<PrivateKey>)>>,
    /// Read once per run; every connection checks against this copy.
    pub known_hosts: Arc<KnownHosts>,
    pub accept_new_host_keys: bool,
    pub connect_timeout: Duration,
    /// Attempts for connections that are refused or dropped during the handshake.
    pub connect_attempts: u32,
    pub config: Arc<client::Config>,
}

impl SshSettings {
    pub fn new(
        default_user: String,
        identities: &[PathBuf],
        known_hosts: PathBuf,
        accept_new_host_keys: bool,
        connect_timeout: Duration,
        connect_attempts: u32,
    ) -> Result<Self, TransportError> {
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        for path in identities {
            match russh::keys::load_secret_key(path, None) {
                Ok(k) => keys.push((path.clone(), Arc::new(k))),
                Err(e) if path.exists() => problems.push(format!("{}: {e}", path.display())),
                Err(_) => {}
            }
        }
        if keys.is_empty() {
            let tried: Vec<String> = identities.iter().map(|p| p.display().to_string()).collect();
            let mut msg = format!("tried {}", tried.join(", "));
            if !problems.is_empty() {
                msg.push_str(&format!(" ({})", problems.join("; ")));
            }
            return Err(TransportError::NoKey(msg));
        }
        let mut preferred = russh::Preferred::default();
        // curve25519 first: OpenSSH spends about a third less CPU on it than on the
        // post-quantum hybrid (see docs/benchmarks.md); both are offered.
        let mut kex: Vec<russh::kex::Name> = vec![russh::kex::CURVE25519];
        kex.extend(
            preferred
                .kex
                .iter()
                .filter(|k| **k != russh::kex::CURVE25519)
                .cloned(),
        );
        preferred.kex = kex.into();
        let config = client::Config {
            inactivity_timeout: Some(Duration::from_secs(3600)),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 4,
            nodelay: true,
            preferred,
            ..Default::default()
        };
        let known_hosts = KnownHosts::load(&known_hosts).map_err(|e| {
            TransportError::Ssh(format!("cannot read {}: {e}", known_hosts.display()))
        })?;
        Ok(SshSettings {
            default_user,
            keys: Arc::new(keys),
            known_hosts: Arc::new(known_hosts),
            accept_new_host_keys,
            connect_timeout,
            connect_attempts: connect_attempts.max(1),
            config: Arc::new(config),
        })
    }
}

#[derive(Debug)]
enum HostKeyProblem {
    Unknown(String),
    Changed(String, usize),
    Other(String),
}

struct Client {
    host: String,
    port: u16,
    known_hosts: Arc<KnownHosts>,
    accept_new: bool,
    problem: Arc<Mutex<Option<HostKeyProblem>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            self.record(HostKeyProblem::Other(
                "host certificates are not supported yet".into(),
            ));
            return Ok(false);
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        match self.known_hosts.check(&self.host, self.port, key) {
            Verdict::Known => Ok(true),
            Verdict::Unknown if self.accept_new => {
                match self.known_hosts.learn(&self.host, self.port, key) {
                    Ok(()) => {
                        tracing::info!(host = %self.host, %fingerprint, "learned new host key");
                        Ok(true)
                    }
                    Err(e) => {
                        self.record(HostKeyProblem::Other(format!(
                            "cannot record host key in {}: {e}",
                            self.known_hosts.path().display()
                        )));
                        Ok(false)
                    }
                }
            }
            Verdict::Unknown => {
                self.record(HostKeyProblem::Unknown(fingerprint));
                Ok(false)
            }
            Verdict::Changed(line) => {
                self.record(HostKeyProblem::Changed(fingerprint, line));
                Ok(false)
            }
            Verdict::Revoked(line) => {
                self.record(HostKeyProblem::Other(format!(
                    "host key {fingerprint} is marked @revoked in {} line {line}; refusing to connect",
                    self.known_hosts.path().display()
                )));
                Ok(false)
            }
        }
    }
}

impl Client {
    fn record(&self, p: HostKeyProblem) {
        // A plain mutex: held only to store a value, never across an await.
        *self.problem.lock().expect("poisoned") = Some(p);
    }
}

pub struct SshSession {
    handle: Handle<Client>,
    user: String,
}

impl SshSession {
    pub fn user(&self) -> &str {
        &self.user
    }

    pub async fn connect(node: &Node, s: &SshSettings) -> Result<SshSession, TransportError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::connect_once(node, s).await {
                Err(e) if e.is_retryable() && attempt < s.connect_attempts => {
                    // Back off: sshd drops excess concurrent handshakes (MaxStartups).
                    let jitter = u64::from(rand_u16() % 250);
                    let delay = Duration::from_millis(200 * (1 << (attempt - 1).min(5)) + jitter);
                    tracing::debug!(node = %node.name, attempt, error = %e, ?delay, "retrying connection");
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    async fn connect_once(node: &Node, s: &SshSettings) -> Result<SshSession, TransportError> {
        let port = node.port.unwrap_or(22);
        let addr = if node.host.contains(':') {
            format!("[{}]:{port}", node.host)
        } else {
            format!("{}:{port}", node.host)
        };
        let user = node.user.clone().unwrap_or_else(|| s.default_user.clone());
        let timeout_err = || TransportError::ConnectTimeout {
            addr: addr.clone(),
            secs: s.connect_timeout.as_secs(),
        };
        let stream = tokio::time::timeout(
            s.connect_timeout,
            tokio::net::TcpStream::connect((node.host.as_str(), port)),
        )
        .await
        .map_err(|_| timeout_err())?
        .map_err(|e| TransportError::Connect {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
        stream.set_nodelay(true)?;
        let problem = Arc::new(Mutex::new(None));
        let handler = Client {
            host: node.host.clone(),
            port,
            known_hosts: s.known_hosts.clone(),
            accept_new: s.accept_new_host_keys,
            problem: problem.clone(),
        };
        let connected = tokio::time::timeout(
            s.connect_timeout,
            client::connect_stream(s.config.clone(), stream, handler),
        )
        .await
        .map_err(|_| timeout_err())?;
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                let known_hosts = s.known_hosts.path().display().to_string();
                let host = addr.clone();
                return Err(match problem.lock().expect("poisoned").take() {
                    Some(HostKeyProblem::Unknown(fingerprint)) => TransportError::HostKeyUnknown {
                        host,
                        fingerprint,
                        known_hosts,
                    },
                    Some(HostKeyProblem::Changed(fingerprint, line)) => {
                        TransportError::HostKeyChanged {
                            host,
                            fingerprint,
                            known_hosts,
                            line,
                        }
                    }
                    Some(HostKeyProblem::Other(m)) => TransportError::Ssh(m),
                    None => TransportError::Connect {
                        addr,
                        reason: format!("SSH handshake failed: {e}"),
                    },
                });
            }
        };
        let mut authenticated = false;
        for (_, key) in s.keys.iter() {
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| TransportError::Ssh(e.to_string()))?
                    .flatten()
            } else {
                None
            };
            let res = handle
                .authenticate_publickey(user.clone(), PrivateKeyWithHashAlg::new(key.clone(), hash))
                .await
                .map_err(|e| TransportError::Ssh(format!("authentication: {e}")))?;
            if res.success() {
                authenticated = true;
                break;
            }
        }
        if !authenticated {
            let keys: Vec<String> = s
                .keys
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect();
            return Err(TransportError::Auth {
                user,
                addr,
                keys: keys.join(", "),
            });
        }
        Ok(SshSession { handle, user })
    }

    pub async fn exec(
        &self,
        command: &str,
        stdin: Bytes,
        out: &mpsc::Sender<ExecEvent>,
        cancel: &CancellationToken,
    ) -> Result<ExitStatus, TransportError> {
        let ssh_err = |e: russh::Error| TransportError::Ssh(e.to_string());
        let mut channel = self.handle.channel_open_session().await.map_err(ssh_err)?;
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(ssh_err)?;
        if !stdin.is_empty() {
            channel.data_bytes(stdin).await.map_err(ssh_err)?;
        }
        channel.eof().await.map_err(ssh_err)?;
        let mut status = ExitStatus::Unknown;
        loop {
            let msg = tokio::select! {
                m = channel.wait() => m,
                _ = cancel.cancelled() => {
                    let _ = channel.close().await;
                    return Err(TransportError::Cancelled);
                }
            };
            // Keep reading after the exit status: output may still follow it.
            match msg {
                None | Some(ChannelMsg::Close) => break,
                Some(ChannelMsg::Data { data }) => {
                    let _ = out.send(ExecEvent::Stdout(data)).await;
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    let _ = out.send(ExecEvent::Stderr(data)).await;
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    status = ExitStatus::Code(exit_status as i32)
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    status = ExitStatus::Signal(format!("{signal_name:?}"))
                }
                Some(ChannelMsg::Failure) => {
                    return Err(TransportError::Ssh(
                        "the server refused to run the command".into(),
                    ));
                }
                Some(_) => {}
            }
        }
        if status == ExitStatus::Unknown {
            // The connection or the session died under the command (a server going down,
            // sshd killed): that is a lost server, not a failed step.
            return Err(TransportError::Ssh(
                "the connection ended before the command's exit status".into(),
            ));
        }
        Ok(status)
    }

    /// An SFTP session on this connection (the `sftp` subsystem).
    pub async fn sftp(&self) -> Result<russh_sftp::client::SftpSession, TransportError> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| TransportError::Ssh(format!("sftp channel: {e}")))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| TransportError::Ssh(format!("sftp subsystem: {e}")))?;
        russh_sftp::client::SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| TransportError::Ssh(format!("sftp: {e}")))
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (nanos >> 16)) as u16
}
