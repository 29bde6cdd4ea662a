//! A real SMTP server: Python's aiosmtpd (Debian `python3-aiosmtpd`) with its Maildir
//! handler, optionally offering STARTTLS with a certificate from a test CA.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, sh, temp_dir, wait_for_port, wait_until};

pub struct SmtpServer {
    pub port: u16,
    /// The CA that signed the server's certificate (with STARTTLS).
    pub ca_file: Option<PathBuf>,
    dir: tempfile::TempDir,
    child: Child,
}

/// One received message, parsed.
pub struct ReceivedMail {
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("parse mail")
    }
}

/// How the server protects the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    Plain,
    StartTls,
    /// Implicit TLS (SMTPS).
    Tls,
}

impl SmtpServer {
    /// Plain SMTP on 127.0.0.1.
    pub fn start() -> Self {
        Self::start_with(SmtpTls::Plain, None)
    }

    /// SMTP that requires STARTTLS, with a certificate for `localhost` signed by a test CA.
    pub fn start_tls() -> Self {
        Self::start_with(SmtpTls::StartTls, None)
    }

    /// Plain SMTP on a given port (a relay that comes back where it was).
    pub fn start_on(port: u16) -> Self {
        Self::start_full(SmtpTls::Plain, None, port)
    }

    /// `auth` is `user:password`, then required before any mail is accepted.
    pub fn start_with(tls: SmtpTls, auth: Option<&str>) -> Self {
        Self::start_full(tls, auth, free_port())
    }

    fn start_full(tls: SmtpTls, auth: Option<&str>, port: u16) -> Self {
        crate::require_python("aiosmtpd", "the Debian package python3-aiosmtpd");
        if tls != SmtpTls::Plain {
            crate::require("openssl", "openssl");
        }
        let dir = temp_dir("smtp");
        let d = dir.path();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/smtp_server.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(&script)
            .args(["--port", &port.to_string()])
            .args(["--maildir", &d.join("maildir").display().to_string()]);
        let mut ca_file = None;
        if tls != SmtpTls::Plain {
            sh(&format!(
                "cd {d} && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=ordo test CA' -keyout ca.key -out ca.pem 2>/dev/null \
                 && openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr 2>/dev/null \
                 && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext \
                 && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem 2>/dev/null",
                d = d.display()
            ));
            cmd.args(["--tlscert", &d.join("server.pem").display().to_string()]);
            cmd.args(["--tlskey", &d.join("server.key").display().to_string()]);
            ca_file = Some(d.join("ca.pem"));
        }
        if tls == SmtpTls::Tls {
            cmd.arg("--smtps");
        }
        if let Some(a) = auth {
            cmd.args(["--auth", a]);
        }
        let log = std::fs::File::create(d.join("smtp.log")).expect("smtp log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the SMTP server (is python3-aiosmtpd installed?)");
        wait_for_port(port, "the SMTP server");
        SmtpServer {
            port,
            ca_file,
            dir,
            child,
        }
    }

    fn new_dir(&self) -> PathBuf {
        self.dir.path().join("maildir").join("new")
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.new_dir())
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|p| ReceivedMail {
                raw: std::fs::read(p).expect("read mail"),
            })
            .collect()
    }

    /// Waits for at least `n` messages.
    pub fn wait_for(&self, n: usize) -> Vec<ReceivedMail> {
        wait_until(&format!("{n} mail(s)"), Duration::from_secs(20), || {
            self.messages().len() >= n
        });
        self.messages()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("smtp.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
