//! The controller's identity towards agents (CA, client certificate, CRL) and the
//! channels to agents kept open for the life of the process.

use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, Identity};

use super::TransportError;

/// The controller's identity towards agents, shared by every connection of a run.
#[derive(Clone)]
pub struct AgentSettings {
    pub(super) ca: Certificate,
    pub(super) identity: Identity,
    /// Names this CA + identity, so cached channels are only reused with the same ones.
    pub(super) fingerprint: String,
    pub connect_timeout: Duration,
    /// With revoked certificates (`crl.pem`), connections verify against the CRL.
    pub(super) crl_tls: Option<super::agent_tls::CrlTls>,
}

/// Open channels to agents, kept for the life of the process: `controller serve` talks to
/// an agent again without a new TCP and TLS handshake (HTTP/2 multiplexes the runs).
/// Keyed by address, expected name and the controller's identity.
type Channels = std::sync::Mutex<std::collections::HashMap<(String, String, String), Channel>>;

pub(super) fn channels() -> &'static Channels {
    static CHANNELS: std::sync::OnceLock<Channels> = std::sync::OnceLock::new();
    CHANNELS.get_or_init(Default::default)
}

impl AgentSettings {
    /// Reads the CA, the controller's client certificate and key, and the CRL when there
    /// is one (see `controller pki`).
    pub fn load(
        ca: &Path,
        cert: &Path,
        key: &Path,
        crl: &Path,
        connect_timeout: Duration,
    ) -> Result<Self, TransportError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| {
                TransportError::AgentSetup(format!(
                    "cannot read {}: {e} (run `controller pki init`)",
                    p.display()
                ))
            })
        };
        let (ca_pem, cert_pem, key_pem) = (read(ca)?, read(cert)?, read(key)?);
        let crl_pem = std::fs::read(crl).ok();
        let fingerprint = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(&ca_pem);
            h.update(&cert_pem);
            h.update(&key_pem);
            h.update(crl_pem.as_deref().unwrap_or_default());
            hex::encode(h.finalize())
        };
        let crl_tls = match &crl_pem {
            Some(c) => Some(
                super::agent_tls::CrlTls::load(&ca_pem, &cert_pem, &key_pem, c)
                    .map_err(|e| TransportError::AgentSetup(format!("{}: {e}", crl.display())))?,
            ),
            None => None,
        };
        Ok(AgentSettings {
            ca: Certificate::from_pem(ca_pem),
            identity: Identity::from_pem(cert_pem, key_pem),
            fingerprint,
            connect_timeout,
            crl_tls,
        })
    }
}
