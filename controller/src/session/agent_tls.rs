//! TLS towards agents when the controller's PKI has revoked certificates (`crl.pem`):
//! tonic's own TLS takes no revocation list, so the connection is made here with
//! rustls's verifier and the CRL, and handed to tonic as an already secure stream. An
//! agent presenting a revoked certificate is refused at the handshake.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use tonic::transport::{Channel, Endpoint};

/// The rustls client for agent connections, with the CRL.
#[derive(Clone)]
pub struct CrlTls {
    config: Arc<rustls::ClientConfig>,
}

impl CrlTls {
    /// From the CA, the controller's certificate and key, and the CRL (all PEM).
    pub fn load(ca: &[u8], cert: &[u8], key: &[u8], crl: &[u8]) -> Result<CrlTls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca) {
            roots
                .add(c.map_err(|e| format!("CA: {e}"))?)
                .map_err(|e| format!("CA: {e}"))?;
        }
        let crls = CertificateRevocationListDer::pem_slice_iter(crl)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("CRL: {e}"))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .with_crls(crls)
        .build()
        .map_err(|e| format!("CRL: {e}"))?;
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("key: {e}"))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_webpki_verifier(verifier)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(CrlTls {
            config: Arc::new(config),
        })
    }

    /// A channel to the agent at `addr` whose certificate must be for `name`, neither
    /// expired nor revoked. `endpoint` carries the timeouts (its URI is `http://`: the
    /// stream is secured here).
    pub async fn channel(
        &self,
        endpoint: Endpoint,
        addr: String,
        name: String,
    ) -> Result<Channel, tonic::transport::Error> {
        let config = self.config.clone();
        let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let (config, addr, name) = (config.clone(), addr.clone(), name.clone());
            async move {
                let tcp = tokio::net::TcpStream::connect(&addr).await?;
                tcp.set_nodelay(true)?;
                let server = ServerName::try_from(name).map_err(std::io::Error::other)?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(server, tcp)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        });
        endpoint.connect_with_connector(connector).await
    }
}
