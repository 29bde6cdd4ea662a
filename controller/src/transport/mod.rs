//! How the controller reaches a server. Every transport offers one primitive, `exec`: run
//! a shell command string with some stdin, stream stdout and stderr, return the exit status.
//! A run is built from that alone (see [`crate::remote`]); one session per server per run.

mod local;
mod ssh;

use std::fmt;

use bytes::Bytes;
use ordo_inventory::{Node, Transport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use local::{LocalSession, current_user};
pub use ssh::{SshSession, SshSettings};

/// A chunk of a command's output.
#[derive(Debug, Clone)]
pub enum ExecEvent {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(String),
    /// The channel closed without an exit status.
    Unknown,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }

    /// The exit code to record: the code, 128+n style for signals is not known, so -1.
    pub fn code(&self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
            ExitStatus::Unknown => f.write_str("ended without an exit status"),
        }
    }
}

/// Why a server could not be reached or a command not run.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection to {addr} timed out after {secs} s")]
    ConnectTimeout { addr: String, secs: u64 },
    #[error(
        "host key of {host} is not known ({fingerprint}); refusing to connect. Check it, then add it to {known_hosts} or run with --accept-new-host-keys"
    )]
    HostKeyUnknown {
        host: String,
        fingerprint: String,
        known_hosts: String,
    },
    #[error(
        "HOST KEY OF {host} HAS CHANGED (now {fingerprint}; {known_hosts} line {line} has another): refusing to connect; someone may be intercepting the connection"
    )]
    HostKeyChanged {
        host: String,
        fingerprint: String,
        known_hosts: String,
        line: usize,
    },
    #[error("authentication refused for user `{user}` on {addr} (tried {keys})")]
    Auth {
        user: String,
        addr: String,
        keys: String,
    },
    #[error("no SSH private key found: {0}")]
    NoKey(String),
    #[error("ssh: {0}")]
    Ssh(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cancelled")]
    Cancelled,
    #[error("transport `{0}` is not available in this build")]
    Unsupported(&'static str),
}

impl TransportError {
    /// Worth another try with backoff (refused or dropped handshakes, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransportError::Connect { .. } | TransportError::ConnectTimeout { .. }
        )
    }
}

/// An open connection to one server.
pub enum Session {
    Ssh(SshSession),
    Local(LocalSession),
}

impl Session {
    pub async fn connect(
        node: &Node,
        ssh: Option<&SshSettings>,
    ) -> Result<Session, TransportError> {
        match node.transport {
            Transport::Local => Ok(Session::Local(LocalSession::new())),
            Transport::Ssh => match ssh {
                Some(ssh) => Ok(Session::Ssh(SshSession::connect(node, ssh).await?)),
                None => Err(TransportError::NoKey("SSH settings were not loaded".into())),
            },
            Transport::Agent => Err(TransportError::Unsupported("agent")),
        }
    }

    /// Runs `command`, writes `stdin` then EOF, and streams output into `out`.
    /// When `cancel` fires the command's channel is closed and `Cancelled` returned.
    pub async fn exec(
        &self,
        command: &str,
        stdin: Bytes,
        out: &mpsc::Sender<ExecEvent>,
        cancel: &CancellationToken,
    ) -> Result<ExitStatus, TransportError> {
        match self {
            Session::Ssh(s) => s.exec(command, stdin, out, cancel).await,
            Session::Local(s) => s.exec(command, stdin, out, cancel).await,
        }
    }

    /// The login user on the other side (for deciding whether run-as needs a switch).
    pub fn login_user(&self) -> &str {
        match self {
            Session::Ssh(s) => s.user(),
            Session::Local(s) => s.user(),
        }
    }

    pub async fn close(self) {
        if let Session::Ssh(s) = self {
            s.close().await;
        }
    }
}

/// Runs a command and collects its whole output (for short housekeeping commands).
pub async fn exec_collect(
    session: &Session,
    command: &str,
    stdin: Bytes,
    cancel: &CancellationToken,
) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), TransportError> {
    let (tx, mut rx) = mpsc::channel(64);
    let gather = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        while let Some(ev) = rx.recv().await {
            match ev {
                ExecEvent::Stdout(b) => o.extend_from_slice(&b),
                ExecEvent::Stderr(b) => e.extend_from_slice(&b),
            }
        }
        (o, e)
    };
    let (status, (o, e)) = tokio::join!(
        async move {
            let tx = tx;
            session.exec(command, stdin, &tx, cancel).await
        },
        gather
    );
    Ok((status?, o, e))
}
