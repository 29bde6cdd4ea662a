//! The one error type of the transport layer.

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
    #[error("agent {addr}: {reason}")]
    Agent { addr: String, reason: String },
    /// The agent refused the request by its policy (user, environment, path).
    #[error("agent {addr} refused it: {reason}")]
    Refused { addr: String, reason: String },
    #[error("agent transport: {0}")]
    AgentSetup(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cancelled")]
    Cancelled,
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
