//! Sending the run's mail: SMTP (STARTTLS, implicit TLS, or plain on a trusted relay), or an
//! outbox folder of `.eml` files when no SMTP server is configured.

use std::path::Path;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::project::{MailConfig, SmtpConfig, SmtpTls};

pub mod queue;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail: invalid address `{addr}`: {reason}")]
    Address { addr: String, reason: String },
    #[error("mail: {0}")]
    Build(String),
    #[error("mail: SMTP {host}: {reason}")]
    Smtp { host: String, reason: String },
    #[error("mail: outbox {dir}: {reason}")]
    Outbox { dir: String, reason: String },
}

/// A mail ready to go.
pub struct Outgoing {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    /// File name and bytes of the attachment.
    pub attachment: Option<(String, Vec<u8>)>,
}

fn mailbox(addr: &str) -> Result<Mailbox, MailError> {
    addr.trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address {
            addr: addr.to_string(),
            reason: e.to_string(),
        })
}

pub fn build(cfg: &MailConfig, m: &Outgoing) -> Result<Message, MailError> {
    let mut b = Message::builder()
        .from(mailbox(&cfg.from)?)
        .subject(m.subject.clone());
    for a in &m.to {
        b = b.to(mailbox(a)?);
    }
    for a in &m.cc {
        b = b.cc(mailbox(a)?);
    }
    let text = SinglePart::plain(m.body.clone());
    let msg = match &m.attachment {
        Some((name, bytes)) => {
            // An encrypted archive is a file to save (a CMS file, not an S/MIME part).
            let mime = if name.ends_with(".gz") {
                "application/gzip"
            } else if name.ends_with(".txt") || name.ends_with(".log") {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            let ct = ContentType::parse(mime).map_err(|e| MailError::Build(e.to_string()))?;
            b.multipart(
                MultiPart::mixed()
                    .singlepart(text)
                    .singlepart(Attachment::new(name.clone()).body(bytes.clone(), ct)),
            )
        }
        None => b.singlepart(text),
    };
    msg.map_err(|e| MailError::Build(e.to_string()))
}

/// Sends the mail; returns where it went (`smtp host` or the `.eml` path).
pub async fn send(cfg: &MailConfig, m: &Outgoing) -> Result<String, MailError> {
    deliver(cfg, build(cfg, m)?).await
}

/// Sends the mail, or, when the SMTP relay cannot take it now, keeps it in the outbox's
/// `pending/` folder for `controller serve` to send when the relay answers: a job's mail
/// and its notifications are never lost. Returns where it went, or where it waits.
pub async fn send_or_queue(cfg: &MailConfig, m: &Outgoing) -> Result<String, MailError> {
    let msg = build(cfg, m)?;
    let envelope = msg.envelope().clone();
    let raw = msg.formatted();
    match deliver(cfg, msg).await {
        Err(e @ MailError::Smtp { .. }) => {
            let path = queue::keep(&cfg.outbox, &envelope, &raw).await?;
            Ok(format!(
                "not sent now ({e}): kept in {}; `controller serve` sends it when the relay answers",
                path.display()
            ))
        }
        other => other,
    }
}

/// The mail to the SMTP relay, or to the outbox when there is none.
async fn deliver(cfg: &MailConfig, msg: Message) -> Result<String, MailError> {
    match &cfg.smtp {
        None => {
            let dir = &cfg.outbox;
            let err = |reason: String| MailError::Outbox {
                dir: dir.display().to_string(),
                reason,
            };
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| err(e.to_string()))?;
            let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                .send(msg)
                .await
                .map_err(|e| err(e.to_string()))?;
            Ok(dir.join(format!("{id}.eml")).display().to_string())
        }
        Some(smtp) => {
            let (transport, port) = relay(smtp)?;
            let err = |reason: String| MailError::Smtp {
                host: smtp.host.clone(),
                reason,
            };
            // lettre's async transport only bounds the TCP connect: bound the whole exchange.
            let resp = tokio::time::timeout(smtp.timeout, transport.send(msg))
                .await
                .map_err(|_| {
                    err(format!(
                        "no answer within {}",
                        humantime::format_duration(smtp.timeout)
                    ))
                })?
                .map_err(|e| err(e.to_string()))?;
            Ok(format!(
                "smtp {}:{port} ({})",
                smtp.host,
                resp.message().collect::<Vec<_>>().join(" ")
            ))
        }
    }
}

/// The SMTP transport for the relay, and its port.
fn relay(smtp: &SmtpConfig) -> Result<(AsyncSmtpTransport<Tokio1Executor>, u16), MailError> {
    let err = |reason: String| MailError::Smtp {
        host: smtp.host.clone(),
        reason,
    };
    let tls_params = || -> Result<TlsParameters, MailError> {
        let mut b = TlsParameters::builder(smtp.host.clone());
        if let Some(ca) = &smtp.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| err(format!("ca_file {}: {e}", ca.display())))?;
            b = b.add_root_certificate(
                Certificate::from_pem(&pem)
                    .map_err(|e| err(format!("ca_file {}: {e}", ca.display())))?,
            );
        }
        b.build_rustls().map_err(|e| err(e.to_string()))
    };
    let (tls, default_port) = match smtp.tls {
        SmtpTls::None => (Tls::None, 25),
        SmtpTls::StartTls => (Tls::Required(tls_params()?), 587),
        SmtpTls::Tls => (Tls::Wrapper(tls_params()?), 465),
    };
    let port = smtp.port.unwrap_or(default_port);
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(port)
        .tls(tls)
        .timeout(Some(smtp.timeout));
    if let Some(user) = &smtp.username {
        t = t.credentials(Credentials::new(user.clone(), password(smtp).map_err(err)?));
    }
    Ok((t.build(), port))
}

fn password(smtp: &SmtpConfig) -> Result<String, String> {
    if let Some(var) = &smtp.password_env {
        return std::env::var(var)
            .map_err(|_| format!("password_env: environment variable {var} is not set"));
    }
    if let Some(f) = &smtp.password_file {
        return std::fs::read_to_string(f)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| format!("password_file {}: {e}", f.display()));
    }
    Err("username is set but neither password_env nor password_file".into())
}

/// The size of a file, or 0 when it cannot be read.
pub fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
