//! Transfer scenarios (`kind: transfer` jobs) and the partner profiles they send with.
//!
//! A profile (`profiles/<name>.yaml`, one per organisation or partner) says how to reach
//! the partner: SFTP, SMTP, HTTP(S) or a folder, with credentials from a file or the
//! environment, pacing, retries, acknowledgement and how received files are named.
//! A scenario (a job) says which files to take (folder + wildcard), where to back them up
//! and with which collision policy, and which profile sends them.

use std::path::PathBuf;
use std::time::Duration;

/// What a transfer job does.
#[derive(Debug, Clone)]
pub struct TransferSpec {
    pub profile: String,
    pub direction: Direction,
    /// An inactive scenario runs but touches nothing.
    pub active: bool,
    /// The server (inventory name) the source and backup folders are on; the controller
    /// when none.
    pub on: Option<String>,
    /// Send: the folder scanned; receive: unused.
    pub source: PathBuf,
    pub pattern: String,
    pub matcher: globset::GlobMatcher,
    pub backup: PathBuf,
    pub collision: Collision,
    /// Overrides the profile's pause between two files.
    pub delay: Option<Duration>,
    pub retry: Option<RetryPolicy>,
    pub compress: bool,
    /// Payloads above this size are sent as numbered segments with a manifest.
    pub segment_size: Option<u64>,
    /// Where `last.log` and `YYYYMMDD.log` go (default `<data>/transfers/<job>`).
    pub log_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Send,
    Receive,
}

/// What to do when the backup folder already has a file of that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collision {
    /// Keep both: `name.1`, `name.2`, ...
    Increment,
    Overwrite,
    /// Leave the new file where it is, unsent, and say so.
    Skip,
}

impl Collision {
    pub fn as_str(self) -> &'static str {
        match self {
            Collision::Increment => "increment",
            Collision::Overwrite => "overwrite",
            Collision::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per file, the first included.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `n` (2, 3, ...): doubling from `backoff`, capped.
    pub fn pause(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(2).min(16);
        (self.backoff * factor).min(self.max_backoff)
    }
}

/// A secret read when needed, never stored in the job or the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Env(String),
    File(PathBuf),
}

impl Secret {
    pub fn read(&self) -> Result<String, String> {
        match self {
            Secret::Env(v) => {
                std::env::var(v).map_err(|_| format!("environment variable {v} is not set"))
            }
            Secret::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("{}: {e}", p.display())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// multipart/form-data, the file in one field.
    Post,
    /// The file as the body; `{name}` in the URL is the file name.
    Put,
}

#[derive(Debug, Clone)]
pub enum Protocol {
    Sftp {
        host: String,
        port: u16,
        user: String,
        identity: Vec<PathBuf>,
        known_hosts: Option<PathBuf>,
        accept_new_host_key: bool,
        /// Where files are deposited.
        remote_dir: String,
        /// Where the partner leaves files for us (retrieval).
        inbox: Option<String>,
        /// Files are written as `<name><temp_suffix>` and renamed once complete.
        temp_suffix: String,
        /// Bytes per second at most (none: as fast as the link).
        bandwidth: Option<u64>,
        /// Remove fetched files from the inbox (after they are safely stored here).
        delete_after_fetch: bool,
    },
    Smtp {
        to: Vec<String>,
        cc: Vec<String>,
        /// `[name]`, `[scenario]`, `[profile]`, `[part]` are replaced.
        subject: String,
        body: String,
    },
    Http {
        url: String,
        method: HttpMethod,
        field: String,
        headers: Vec<(String, String)>,
        username: Option<String>,
        password: Option<Secret>,
        /// Statuses that mean the partner took the file (default: any 2xx).
        success_status: Vec<u16>,
        /// And text the answer must contain, when set (`File received`).
        success_body: Option<String>,
        timeout: Duration,
        ca_file: Option<PathBuf>,
    },
    Folder {
        path: PathBuf,
        temp_suffix: String,
    },
}

impl Protocol {
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Sftp { .. } => "sftp",
            Protocol::Smtp { .. } => "smtp",
            Protocol::Http { .. } => "http",
            Protocol::Folder { .. } => "folder",
        }
    }

    /// Where files go, for logs: `sftp ordo@host:22/depot`.
    pub fn describe(&self) -> String {
        match self {
            Protocol::Sftp {
                host,
                port,
                user,
                remote_dir,
                ..
            } => format!("sftp {user}@{host}:{port}{remote_dir}"),
            Protocol::Smtp { to, .. } => format!("mail to {}", to.join(", ")),
            Protocol::Http { url, method, .. } => format!("http {method:?} {url}").to_lowercase(),
            Protocol::Folder { path, .. } => format!("folder {}", path.display()),
        }
    }
}

/// How a deposited file is acknowledged by the partner.
#[derive(Debug, Clone, PartialEq)]
pub struct AckPolicy {
    pub mode: AckMode,
    /// Deposited files not acknowledged within this become `unacknowledged` (80 h in the
    /// seed).
    pub deadline: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AckMode {
    /// The partner took the file away from the deposit folder.
    Consumed,
    /// A file named by this pattern (`{name}` = the deposited name) appears in the deposit
    /// folder (`{name}.ack`).
    File(String),
}

/// How retrieved files are named: tokens `[year]` `[month]` `[day]` `[hour]` `[minute]`
/// `[second]` `[record]` `[profile]` `[name]` (and the seed's `[annee]` `[mois]` `[jour]`
/// `[heure]` `[min]` `[sec]` `[numrec]` `[nomprofil]` `[nomfic]`).
#[derive(Debug, Clone)]
pub struct Receiving {
    pub dir: Option<PathBuf>,
    pub name: Option<String>,
    /// Append `_YYYYMMDD_HHMMSS` to the name (when no template renames it).
    pub timestamp: bool,
    /// Digits of the record number (`0001`).
    pub record_width: usize,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub protocol: Protocol,
    pub delay: Duration,
    pub retry: RetryPolicy,
    pub ack: Option<AckPolicy>,
    pub receiving: Receiving,
    /// The payload is encrypted (CMS) to these keys and every backup key before it is
    /// deposited, with where each is named.
    pub encrypt: Vec<(String, ordo_inventory::Pos)>,
}

pub const TOKENS: &[(&str, &str)] = &[
    ("year", "annee"),
    ("month", "mois"),
    ("day", "jour"),
    ("hour", "heure"),
    ("minute", "min"),
    ("second", "sec"),
    ("record", "numrec"),
    ("profile", "nomprofil"),
    ("name", "nomfic"),
];

/// Checks a naming template: every `[token]` must be known.
pub fn check_name_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(start) = rest.find('[') {
        let Some(len) = rest[start..].find(']') else {
            return Err(format!(
                "`[` at {} is not closed",
                t.len() - rest.len() + start + 1
            ));
        };
        let token = &rest[start + 1..start + len];
        if !TOKENS.iter().any(|(en, fr)| *en == token || *fr == token) {
            let known: Vec<&str> = TOKENS.iter().map(|(en, _)| *en).collect();
            return Err(format!(
                "unknown token `[{token}]` (known: {})",
                known.join(", ")
            ));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

/// Values for a template's tokens.
pub struct NameParts<'a> {
    pub time: chrono::DateTime<chrono::Local>,
    pub record: u64,
    pub record_width: usize,
    pub profile: &'a str,
    pub name: &'a str,
}

/// Fills a naming template (checked beforehand).
pub fn fill_name_template(t: &str, p: &NameParts<'_>) -> String {
    let mut out = t.to_string();
    for (en, fr) in TOKENS {
        let value = match *en {
            "year" => p.time.format("%Y").to_string(),
            "month" => p.time.format("%m").to_string(),
            "day" => p.time.format("%d").to_string(),
            "hour" => p.time.format("%H").to_string(),
            "minute" => p.time.format("%M").to_string(),
            "second" => p.time.format("%S").to_string(),
            "record" => format!("{:0width$}", p.record, width = p.record_width),
            "profile" => p.profile.to_string(),
            _ => p.name.to_string(),
        };
        out = out.replace(&format!("[{en}]"), &value);
        out = out.replace(&format!("[{fr}]"), &value);
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn seed_and_english_tokens_fill_the_same() {
        let p = NameParts {
            time: chrono::Local.with_ymd_and_hms(2026, 3, 5, 7, 8, 9).unwrap(),
            record: 42,
            record_width: 4,
            profile: "VILLE",
            name: "RCT290G",
        };
        assert_eq!(
            fill_name_template(
                "LA[annee][mois][jour][heure][min][sec][numrec][nomprofil].020",
                &p
            ),
            "LA20260305070809".to_string() + "0042VILLE.020"
        );
        assert_eq!(
            fill_name_template("[profile]_[year]-[month]-[day]_[record]_[name]", &p),
            "VILLE_2026-03-05_0042_RCT290G"
        );
        assert!(check_name_template("LA[annee][numrec].020").is_ok());
        assert_eq!(
            check_name_template("[yaer]").unwrap_err(),
            "unknown token `[yaer]` (known: year, month, day, hour, minute, second, record, profile, name)"
        );
        assert!(check_name_template("[name").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let r = RetryPolicy {
            attempts: 6,
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(10),
        };
        let pauses: Vec<u64> = (2..=6).map(|a| r.pause(a).as_secs()).collect();
        assert_eq!(pauses, [2, 4, 8, 10, 10]);
    }
}
