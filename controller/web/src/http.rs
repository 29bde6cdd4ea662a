//! Serving the API (and the console) on its listener: HTTPS with rustls, or plain HTTP on a
//! loopback address only. Every response carries the security headers; every request's
//! `Host` must be one of ours and a state-changing request's `Origin` too (DNS rebinding,
//! cross-site forms).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use crate::project::ProjectConfig;

/// A request's headers, and then its body, must arrive within this.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;

/// How the listener is served, and the host names it answers to.
#[derive(Clone)]
pub struct Listening {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub hosts: Arc<Vec<String>>,
    /// The origins (`https://name:port`) a state-changing request may come from.
    pub origins: Arc<Vec<String>>,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
}

/// Our origins: each name with the listen port; also without a port for the names of
/// `serve: hosts` (reached through a proxy on the default port) or when we listen on it.
fn origins(cfg: &ProjectConfig, hosts: &[String], local: SocketAddr, tls: bool) -> Vec<String> {
    let scheme = if tls { "https" } else { "http" };
    let port = local.port();
    let default = if tls { 443 } else { 80 };
    let mut out = Vec::new();
    for h in hosts {
        let h = if h.contains(':') {
            format!("[{h}]")
        } else {
            h.clone()
        };
        out.push(format!("{scheme}://{h}:{port}"));
        if port == default || cfg.serve.hosts.contains(&h) {
            out.push(format!("{scheme}://{h}"));
        }
    }
    out
}

/// The names this controller answers to: loopback names, this machine's name, the listen
/// address when it is not a wildcard, and `serve: hosts`.
pub fn host_names(cfg: &ProjectConfig, local: SocketAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        crate::process::hostname().to_ascii_lowercase(),
    ];
    if !local.ip().is_unspecified() {
        names.push(local.ip().to_string());
    }
    names.extend(cfg.serve.hosts.iter().cloned());
    names.dedup();
    names
}

/// `http://ADDR` (plain, loopback only), `https://ADDR` or `ADDR` (HTTPS): the address, and
/// whether it is plain HTTP.
pub fn parse_listen(listen: &str) -> (&str, bool) {
    match listen.strip_prefix("http://") {
        Some(a) => (a, true),
        None => (listen.strip_prefix("https://").unwrap_or(listen), false),
    }
}

/// Loads (or, without `serve: tls`, issues from the PKI) the certificate; refuses plain
/// HTTP on anything but a loopback address.
pub fn listening(cfg: &ProjectConfig, local: SocketAddr, plain: bool) -> anyhow::Result<Listening> {
    let hosts = host_names(cfg, local);
    if plain {
        if !local.ip().is_loopback() {
            return Err(crate::project::BadInput(format!(
                "serve: listen: plain HTTP is only allowed on a loopback address, not {local}: \
                 drop `http://` to serve HTTPS"
            ))
            .into());
        }
        return Ok(Listening {
            tls: None,
            origins: Arc::new(origins(cfg, &hosts, local, false)),
            hosts: Arc::new(hosts),
            header_timeout: BODY_TIMEOUT,
        });
    }
    let (cert, key) = match &cfg.serve.tls {
        Some(t) => (t.cert.clone(), t.key.clone()),
        None => {
            let pki = crate::pki::Pki::new(&cfg.pki_dir);
            // The first name is the certificate's CN: a configured name, else this machine's.
            let mut names = cfg.serve.hosts.clone();
            names.extend(hosts.iter().skip(3).cloned());
            names.extend(hosts.iter().take(3).cloned());
            pki.issue_api_cert(&names)?;
            (pki.api_cert(), pki.api_key())
        }
    };
    let bad = |what: &str, p: &std::path::Path, e: String| {
        crate::project::BadInput(format!("serve: tls: {what} {}: {e}", p.display()))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| bad("cert", &cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("cert", &cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("cert", &cert, "no certificate in it".into()).into());
    }
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| bad("key", &key, e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| crate::project::BadInput(format!("serve: tls: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Listening {
        tls: Some(Arc::new(config)),
        origins: Arc::new(origins(cfg, &hosts, local, true)),
        hosts: Arc::new(hosts),
        header_timeout: BODY_TIMEOUT,
    })
}

/// The host part of a `Host` header or an origin's authority (`[::1]:8443` -> `::1`).
fn host_only(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    a.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(a.clone(), |(h, _)| h.to_string())
}

fn unsafe_method(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a foreign `Host`, and a state-changing request from another site; adds the
/// security headers to every answer.
pub async fn guard(State(l): State<Listening>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .map(host_only)
        .unwrap_or_default();
    let mut refusal = None;
    if !l.hosts.contains(&host) {
        refusal = Some(ApiError::field(
            "Host",
            format!("`{host}` is not a name of this controller (add it to serve: hosts)"),
        ));
    } else if unsafe_method(req.method()) {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        let cross = req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|s| s.as_bytes() == b"cross-site");
        // The whole origin: scheme, name and port (another service on the same host is
        // another site).
        let foreign =
            origin.is_some_and(|o| !l.origins.iter().any(|ok| ok.eq_ignore_ascii_case(o)));
        if cross || foreign {
            refusal = Some(ApiError::Forbidden(
                "a request from another site cannot change anything here".into(),
            ));
        }
    }
    // The whole body is read first (bounded), even for a refusal: an answer sent before
    // the body was read ends the HTTP/2 stream early, which some clients (curl) report
    // as an error instead of showing the answer.
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, super::extract::MAX_BODY);
    let mut r = match (tokio::time::timeout(BODY_TIMEOUT, read).await, refusal) {
        (Ok(Ok(_)), Some(e)) => e.into_response(),
        (Ok(Ok(bytes)), None) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        (Ok(Err(_)), _) => ApiError::TooLarge(super::extract::MAX_BODY).into_response(),
        (Err(_), _) => {
            ApiError::BadRequest("the request body did not arrive in time".into()).into_response()
        }
    };
    let h = r.headers_mut();
    if l.tls.is_some() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ));
    r
}

/// Serves `app` until `stop`, TLS or plain, each connection through hyper with the same
/// bounds: at most [`MAX_CONNECTIONS`] at once, a TLS handshake within 10 s, headers
/// within `header_timeout`, idle HTTP/2 connections pinged and cut.
pub async fn serve(
    app: Router,
    listener: tokio::net::TcpListener,
    l: Listening,
    stop: CancellationToken,
) {
    let acceptor = l.tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("HTTP accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone().layer(axum::Extension(ConnectInfo(peer)));
        let watcher = graceful.watcher();
        let header_timeout = l.header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                connection(TokioIo::new(tcp), app, watcher, peer, header_timeout).await;
                return;
            };
            // A client that never finishes its handshake does not hold a task for ever.
            let stream =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake with {peer}: {e}");
                        return;
                    }
                    Err(_) => return,
                };
            connection(TokioIo::new(stream), app, watcher, peer, header_timeout).await;
        });
    }
    // Live logs (SSE) would keep their connections: give the others a moment, then go.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// One connection, HTTP/1.1 or HTTP/2: slow clients (headers a byte at a time, idle
/// connections) are cut.
async fn connection<S>(
    io: TokioIo<S>,
    app: Router,
    watcher: hyper_util::server::graceful::Watcher,
    peer: SocketAddr,
    header_timeout: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(64);
    let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!("HTTP connection from {peer}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_only("Ordo.Example.com:8443"), "ordo.example.com");
        assert_eq!(host_only("[::1]:8443"), "::1");
        assert_eq!(host_only("127.0.0.1"), "127.0.0.1");
    }
}
