//! Project settings: `ordo.yaml` in the project folder (optional; every key has a default).
//!
//! ```yaml
//! inventory: inventory.yaml        # ordo YAML, or an Ansible inventory (INI or YAML)
//! jobs: jobs
//! profiles: profiles               # transfer partners, one file each (profiles/<name>.yaml)
//! data_dir: data                   # executions, archives, outbox, database
//! database: sqlite://data/ordo.db  # default: <data_dir>/ordo.db
//! pki_dir: data/pki                # the agents' CA (controller pki init)
//! ssh:
//!   user: ops                      # default login user (else the current user)
//!   identity: [~/.ssh/id_ed25519]  # private keys tried in order
//!   known_hosts: ~/.ssh/known_hosts
//!   accept_new_host_keys: false
//!   connect_timeout: 10s
//!   connect_attempts: 4
//! mail:
//!   from: ordo@vip.example.com
//!   outbox: data/outbox            # used when no smtp is set
//!   smtp: { host: smtp.example.com, port: 587, tls: starttls, username: ordo,
//!           password_env: ORDO_SMTP_PASSWORD, password_file: /etc/ordo/smtp.pass,
//!           ca_file: /etc/ordo/ca.pem, timeout: 60s }   # timeout: the whole exchange
//! serve:
//!   timezone: Europe/Paris         # for schedules without their own (default: TZ, /etc/timezone, UTC)
//!   lease_ttl: 15s                 # a leader silent this long is replaced (high availability)
//!   misfire_grace: 60s             # a fire up to this late still runs (failover, restart)
//!   dead_after: 60s                # a controller silent this long has its runs marked interrupted
//!   mail_retry: 60s                # how often mails the SMTP relay refused are tried again
//!   ack_check: 60s                 # how often transfer acknowledgement deadlines are checked
//!   retention: { max_age: 90d, max_count: 1000 }   # per job, unless the job says otherwise
//!   listen: 0.0.0.0:8443           # the API and console: HTTPS (plain HTTP only on loopback)
//!   tls: { cert: /etc/ordo/api.pem, key: /etc/ordo/api.key }   # default: made from the PKI
//!   hosts: [ordo.example.com]      # Host names accepted (besides loopback and this machine)
//!   auth:
//!     session_idle: 30m            # a console session unused this long ends
//!     session_max: 12h             # and ends this long after the login in any case
//!     login_backoff: 10s           # N failed logins in a row: wait N x 10s (30 min at most)
//!     trusted_proxies: [127.0.0.1, 10.0.8.0/24]   # their X-Forwarded-For names the client
//!     sso_window: 5m               # SSO tokens older or newer than this are refused
//!     tenants:                     # trusted front-ends (SSO) and integrations (WSSE)
//!       acme: { key_file: /etc/ordo/acme.key }   # or key_env: ACME_KEY
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ProjectConfig {
    pub root: PathBuf,
    pub inventory: PathBuf,
    pub jobs: PathBuf,
    /// Transfer profiles, one file per partner.
    pub profiles: PathBuf,
    pub data_dir: PathBuf,
    pub database: Option<String>,
    /// The agents' certificate authority (see `controller pki`).
    pub pki_dir: PathBuf,
    pub ssh: SshConfig,
    pub mail: MailConfig,
    pub serve: ServeConfig,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub timezone: chrono_tz::Tz,
    pub lease_ttl: Duration,
    pub misfire_grace: Duration,
    pub dead_after: Duration,
    /// How often the mails kept in `outbox/pending` are offered to the relay again.
    pub mail_retry: Duration,
    /// How often the leader looks for deposits past their acknowledgement deadline.
    pub ack_check: Duration,
    pub retention: ordo_jobs::Retention,
    pub listen: Option<String>,
    /// The API's certificate and key (PEM); without them `serve` makes one from its PKI.
    pub tls: Option<TlsFiles>,
    /// Host names the API answers to (besides loopback names and this machine's name).
    pub hosts: Vec<String>,
    pub auth: AuthSettings,
    pub alerts: AlertsSettings,
}

/// The fields of an account's alert configuration an administrator may hide or lock.
pub const ALERT_FIELDS: &[&str] = &[
    "active",
    "send_admin",
    "secondary_alerts",
    "send_test",
    "mails",
    "webhook",
    "projects",
];

/// What an account holder (not an administrator) may do with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldMode {
    Editable,
    /// Shown, not changed.
    Locked,
    /// Neither shown nor changed.
    Hidden,
}

impl FieldMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "editable" => Some(FieldMode::Editable),
            "locked" => Some(FieldMode::Locked),
            "hidden" => Some(FieldMode::Hidden),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FieldMode::Editable => "editable",
            FieldMode::Locked => "locked",
            FieldMode::Hidden => "hidden",
        }
    }
}

/// The values an account's alert configuration starts with (pre-filled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertDefaults {
    pub active: Option<bool>,
    pub send_admin: Option<bool>,
    pub secondary_alerts: Option<bool>,
    pub send_test: Option<bool>,
    pub mails: Option<Vec<String>>,
}

/// Fields' modes and starting values, for every account or a tenant's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertPolicy {
    pub fields: std::collections::BTreeMap<String, FieldMode>,
    pub defaults: AlertDefaults,
}

impl AlertPolicy {
    pub fn mode(&self, field: &str) -> FieldMode {
        self.fields
            .get(field)
            .copied()
            .unwrap_or(FieldMode::Editable)
    }
}

/// `serve: alerts:`.
#[derive(Debug, Clone)]
pub struct AlertsSettings {
    /// How often `serve` turns new events into alerts and delivers those due.
    pub every: Duration,
    pub policy: AlertPolicy,
    /// A tenant's accounts: these fields' modes and values over the common ones.
    pub tenants: std::collections::BTreeMap<String, AlertPolicy>,
    /// Hosts a webhook may name although they resolve to a loopback or private address
    /// (any other such address is refused when the alert is sent).
    pub webhook_hosts: Vec<String>,
    /// When not empty, the only mail domains (and their subdomains) alerts may go to:
    /// other addresses are refused when set and dropped when an alert is sent.
    pub mail_domains: Vec<String>,
}

impl Default for AlertsSettings {
    fn default() -> Self {
        AlertsSettings {
            every: Duration::from_secs(5),
            policy: AlertPolicy::default(),
            tenants: Default::default(),
            webhook_hosts: Vec::new(),
            mail_domains: Vec::new(),
        }
    }
}

/// Whether `address` may receive alerts under `domains` (`serve: alerts: mail_domains`):
/// any when the list is empty, else one whose domain is listed or under one listed.
pub fn mail_domain_allowed(domains: &[String], address: &str) -> bool {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    domains.is_empty()
        || domains
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
}

impl AlertsSettings {
    /// The policy for an account of `tenant`: the common one, with what the tenant's
    /// says field by field over it.
    pub fn policy_for(&self, tenant: Option<&str>) -> AlertPolicy {
        let mut p = self.policy.clone();
        if let Some(t) = tenant.and_then(|t| self.tenants.get(t)) {
            p.fields
                .extend(t.fields.iter().map(|(k, v)| (k.clone(), *v)));
            let (d, o) = (&mut p.defaults, &t.defaults);
            d.active = o.active.or(d.active);
            d.send_admin = o.send_admin.or(d.send_admin);
            d.secondary_alerts = o.secondary_alerts.or(d.secondary_alerts);
            d.send_test = o.send_test.or(d.send_test);
            d.mails = o.mails.clone().or(d.mails.take());
        }
        p
    }
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Logins and sessions (`serve: auth:`).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after the login, used or not.
    pub session_max: Duration,
    /// After N consecutive failed logins the next try waits N times this (30 min at most).
    pub login_backoff: Duration,
    /// How far an SSO token's time may be from now.
    pub sso_window: Duration,
    /// Trusted front-ends (SSO) and integrations (WSSE), each with its shared key.
    pub tenants: std::collections::BTreeMap<String, TenantKey>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (addresses or networks);
    /// from anyone else the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            login_backoff: Duration::from_secs(10),
            sso_window: Duration::from_secs(5 * 60),
            tenants: Default::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Where a tenant's shared key is read (at each use, so it can be changed without a restart).
#[derive(Debug, Clone, Default)]
pub struct TenantKey {
    pub key_file: Option<PathBuf>,
    pub key_env: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            timezone: system_timezone(),
            lease_ttl: Duration::from_secs(15),
            misfire_grace: Duration::from_secs(60),
            dead_after: Duration::from_secs(60),
            mail_retry: Duration::from_secs(60),
            ack_check: Duration::from_secs(60),
            retention: ordo_jobs::Retention {
                max_age: Some(Duration::from_secs(90 * 86400)),
                max_count: Some(1000),
            },
            listen: None,
            tls: None,
            hosts: Vec::new(),
            auth: AuthSettings::default(),
            alerts: AlertsSettings::default(),
        }
    }
}

/// The machine's time zone: `TZ`, else `/etc/timezone`, else `/etc/localtime`'s link
/// target, else UTC.
pub fn system_timezone() -> chrono_tz::Tz {
    let from_env = std::env::var("TZ")
        .ok()
        .map(|t| t.trim_start_matches(':').to_string());
    let from_file = || {
        std::fs::read_to_string("/etc/timezone")
            .ok()
            .map(|s| s.trim().to_string())
    };
    let from_link = || {
        std::fs::read_link("/etc/localtime").ok().and_then(|p| {
            let s = p.to_string_lossy().to_string();
            s.split_once("zoneinfo/").map(|(_, z)| z.to_string())
        })
    };
    [from_env, from_file(), from_link()]
        .into_iter()
        .flatten()
        .find_map(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    pub user: Option<String>,
    pub identity: Vec<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub accept_new_host_keys: bool,
    pub connect_timeout: Duration,
    pub connect_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: Option<u16>,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub from: String,
    pub outbox: PathBuf,
    pub smtp: Option<SmtpConfig>,
}

pub const CONFIG_FILE: &str = "ordo.yaml";

pub(super) fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// `~/x` is the home folder; relative paths are relative to the project folder.
pub fn resolve(root: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        home().join(rest)
    } else if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        root.join(p)
    }
}
