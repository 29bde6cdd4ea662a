//! Reading `ordo.yaml` into [`ProjectConfig`]: every key checked, every problem reported
//! with its position.

use std::path::Path;
use std::time::Duration;

use ordo_inventory::yaml::{self, Diagnostics};
use ordo_jobs::units::parse_duration;

use super::settings::*;

impl ProjectConfig {
    /// Reads `<root>/ordo.yaml` if it exists; defaults otherwise.
    /// Paths come out absolute (the project folder is resolved first), so what is
    /// recorded (archives, collected files) does not depend on the working folder.
    pub fn load(root: &Path) -> Result<Self, Diagnostics> {
        let root = &root
            .canonicalize()
            .or_else(|_| std::path::absolute(root))
            .unwrap_or_else(|_| root.to_path_buf());
        let file = root.join(CONFIG_FILE);
        let mut d = Diagnostics::new(&file);
        let text = match ordo_inventory::read_config(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                d.error(yaml::Pos::new(1, 1), format!("cannot read: {e}"));
                return Err(d);
            }
        };
        let Some(doc) = yaml::parse(&text, &mut d) else {
            return Err(d);
        };
        let cfg = read(root, &doc, &mut d);
        d.sort();
        if d.is_empty() { Ok(cfg) } else { Err(d) }
    }
}

pub(super) fn read(root: &Path, doc: &yaml::Node, d: &mut Diagnostics) -> ProjectConfig {
    let f = doc.fields(
        "ordo.yaml",
        &[
            "inventory",
            "jobs",
            "profiles",
            "data_dir",
            "database",
            "pki_dir",
            "ssh",
            "mail",
            "serve",
        ],
        d,
    );
    let path = |key: &str, default: &str, d: &mut Diagnostics| {
        let v = f
            .get(key)
            .and_then(|n| n.str(key, d))
            .unwrap_or_else(|| default.to_string());
        resolve(root, &v)
    };
    let inventory = path("inventory", "inventory.yaml", d);
    let jobs = path("jobs", "jobs", d);
    let profiles = path("profiles", "profiles", d);
    let data_dir = path("data_dir", "data", d);
    let database = f.get("database").and_then(|n| n.str("database", d));
    let pki_dir = match f.get("pki_dir").and_then(|n| n.str("pki_dir", d)) {
        Some(p) => resolve(root, &p),
        None => data_dir.join("pki"),
    };

    let mut ssh = SshConfig {
        connect_timeout: Duration::from_secs(10),
        connect_attempts: 4,
        ..SshConfig::default()
    };
    if let Some(n) = f.get("ssh") {
        let s = n.fields(
            "ssh",
            &[
                "user",
                "identity",
                "known_hosts",
                "accept_new_host_keys",
                "connect_timeout",
                "connect_attempts",
            ],
            d,
        );
        ssh.user = s.get("user").and_then(|v| v.str("ssh: user", d));
        if let Some(v) = s.get("identity") {
            ssh.identity = v
                .str_list("ssh: identity", d)
                .into_iter()
                .map(|(p, _)| resolve(root, &p))
                .collect();
        }
        ssh.known_hosts = s
            .get("known_hosts")
            .and_then(|v| v.str("ssh: known_hosts", d))
            .map(|p| resolve(root, &p));
        ssh.accept_new_host_keys = s
            .get("accept_new_host_keys")
            .and_then(|v| v.bool("ssh: accept_new_host_keys", d))
            .unwrap_or(false);
        if let Some(v) = s.get("connect_timeout")
            && let Some(t) = v.str("ssh: connect_timeout", d)
        {
            match parse_duration(&t) {
                Ok(t) => ssh.connect_timeout = t,
                Err(e) => d.error(v.pos, format!("ssh: connect_timeout: {e}")),
            }
        }
        if let Some(v) = s
            .get("connect_attempts")
            .and_then(|v| v.u64("ssh: connect_attempts", d))
        {
            ssh.connect_attempts = v.clamp(1, 20) as u32;
        }
    }
    if ssh.identity.is_empty() {
        ssh.identity = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|k| home().join(".ssh").join(k))
            .collect();
    }

    let mut mail = MailConfig {
        from: format!("ordo@{}", crate::process::hostname()),
        outbox: data_dir.join("outbox"),
        smtp: None,
    };
    if let Some(n) = f.get("mail") {
        let m = n.fields("mail", &["from", "outbox", "smtp"], d);
        if let Some(v) = m.get("from").and_then(|v| v.str("mail: from", d)) {
            mail.from = v;
        }
        if let Some(v) = m.get("outbox").and_then(|v| v.str("mail: outbox", d)) {
            mail.outbox = resolve(root, &v);
        }
        if let Some(s) = m.get("smtp") {
            mail.smtp = read_smtp(root, s, d);
        }
    }
    let serve = f
        .get("serve")
        .map(|n| super::read_serve::read_serve(root, n, d))
        .unwrap_or_default();
    ProjectConfig {
        root: root.to_path_buf(),
        inventory,
        jobs,
        profiles,
        data_dir,
        database,
        pki_dir,
        ssh,
        mail,
        serve,
    }
}

fn read_smtp(root: &Path, n: &yaml::Node, d: &mut Diagnostics) -> Option<SmtpConfig> {
    let s = n.fields(
        "mail: smtp",
        &[
            "host",
            "port",
            "tls",
            "username",
            "password_env",
            "password_file",
            "ca_file",
            "timeout",
        ],
        d,
    );
    let host = s
        .require("host", "mail: smtp", d)?
        .str("mail: smtp: host", d)?;
    let tls = match s
        .get("tls")
        .and_then(|v| v.str("mail: smtp: tls", d))
        .as_deref()
    {
        None | Some("starttls") => SmtpTls::StartTls,
        Some("tls") => SmtpTls::Tls,
        Some("none") => SmtpTls::None,
        Some(other) => {
            d.error(
                s.get("tls").map_or(n.pos, |v| v.pos),
                format!("mail: smtp: tls `{other}` is not one of: starttls, tls, none"),
            );
            SmtpTls::StartTls
        }
    };
    let port = s
        .get("port")
        .and_then(|v| v.u64("mail: smtp: port", d))
        .and_then(|p| u16::try_from(p).ok());
    let timeout = s
        .get("timeout")
        .and_then(|v| {
            v.str("mail: smtp: timeout", d).and_then(|t| {
                parse_duration(&t)
                    .map_err(|e| d.error(v.pos, format!("mail: smtp: timeout: {e}")))
                    .ok()
            })
        })
        .unwrap_or(Duration::from_secs(60));
    Some(SmtpConfig {
        host,
        port,
        tls,
        username: s
            .get("username")
            .and_then(|v| v.str("mail: smtp: username", d)),
        password_env: s
            .get("password_env")
            .and_then(|v| v.str("mail: smtp: password_env", d)),
        password_file: s
            .get("password_file")
            .and_then(|v| v.str("mail: smtp: password_file", d))
            .map(|p| resolve(root, &p)),
        ca_file: s
            .get("ca_file")
            .and_then(|v| v.str("mail: smtp: ca_file", d))
            .map(|p| resolve(root, &p)),
        timeout,
    })
}
