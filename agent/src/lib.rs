//! ordo's agent: serves the `ordo.agent.v1.Agent` gRPC service over mutual TLS on a
//! production server, so the controller can run jobs there without SSH.

pub mod config;
pub mod enroll;
mod orphans;
mod policy;
mod process;
mod revoked;
mod service;
mod upload;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use ordo_proto::agent::agent_server::AgentServer;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Status};

pub use config::AgentConfig;

/// How often the agent pings a controller's connection, and how long it waits for the
/// answer before it drops the connection.
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The common name of the first certificate in a PEM file, and its expiry (Unix seconds).
pub fn cert_info(pem: &[u8]) -> anyhow::Result<(String, i64)> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem).context("not a PEM certificate")?;
    let cert = p.parse_x509().context("not an X.509 certificate")?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((cn, cert.validity().not_after.timestamp()))
}

/// Only clients whose certificate names one of `controllers`, and is not revoked, get
/// through.
fn client_check(
    controllers: Arc<Vec<String>>,
    revoked: Arc<revoked::Revoked>,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let first = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let parsed = x509_parser::parse_x509_certificate(first.as_ref()).ok();
        let name = parsed
            .as_ref()
            .and_then(|(_, c)| {
                c.subject()
                    .iter_common_name()
                    .next()
                    .and_then(|n| n.as_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let serial = parsed
            .as_ref()
            .map(|(_, c)| c.raw_serial().to_vec())
            .unwrap_or_default();
        match revoked.contains(&serial) {
            Ok(false) => {}
            Ok(true) => {
                return Err(Status::permission_denied(format!(
                    "client `{name}`: its certificate is revoked"
                )));
            }
            Err(e) => {
                tracing::error!("{e}: every client is refused until it can be read");
                return Err(Status::unavailable("the agent cannot read its CRL"));
            }
        }
        if controllers.iter().any(|c| c == &name) {
            Ok(req)
        } else {
            Err(Status::permission_denied(format!(
                "client `{name}` is not a controller this agent accepts"
            )))
        }
    }
}

/// Serves until `shutdown` resolves; running commands' groups are stopped when their
/// callers go away.
pub async fn run(cfg: AgentConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let cert =
        std::fs::read(&cfg.cert).with_context(|| format!("cannot read {}", cfg.cert.display()))?;
    let key =
        std::fs::read(&cfg.key).with_context(|| format!("cannot read {}", cfg.key.display()))?;
    let ca = std::fs::read(&cfg.ca).with_context(|| format!("cannot read {}", cfg.ca.display()))?;
    let (cn, not_after) = cert_info(&cert).with_context(|| format!("{}", cfg.cert.display()))?;
    if cn != cfg.name {
        anyhow::bail!(
            "{}: the certificate is for `{cn}`, but this agent's name is `{}`",
            cfg.cert.display(),
            cfg.name
        );
    }
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(ca));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    tracing::info!(name = %cfg.name, listen = %listener.local_addr()?, "agent ready");
    // Reflection in both versions: grpcurl asks v1 first, older clients only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ordo_proto::agent::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().context("reflection service")?;
    let reflection_v1alpha = reflection().build_v1alpha().context("reflection service")?;
    let check = client_check(
        Arc::new(cfg.controllers.clone()),
        Arc::new(revoked::Revoked::new(cfg.crl.clone())),
    );
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&cfg.state_dir)
        .with_context(|| format!("cannot create state_dir {}", cfg.state_dir.display()))?;
    let groups = Arc::new(
        orphans::RunningGroups::recover(&cfg.state_dir.join(format!("{}.running", cfg.name)))
            .map_err(anyhow::Error::msg)?,
    );
    let service = AgentServer::with_interceptor(
        service::AgentService::new(Arc::new(cfg), not_after, groups),
        check,
    );
    let incoming = TcpListenerStream::new(listener);
    Server::builder()
        .tls_config(tls)
        .context("TLS configuration")?
        .tcp_nodelay(true)
        // A controller that vanished (partition, crash) is noticed within ~40 s: its
        // streams close and the commands it started are stopped (`caller-gone`).
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(KEEPALIVE_INTERVAL))
        .add_service(service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("the gRPC server stopped")?;
    Ok(())
}
