//! `kind: transfer` jobs (the `transfer:` section) and profile files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_inventory::yaml::{self, Diagnostics, Kind, Node};

use super::Cx;
use crate::transfer::*;

const TRANSFER: &[&str] = &[
    "profile",
    "direction",
    "active",
    "source",
    "pattern",
    "backup",
    "collision",
    "delay",
    "retry",
    "compress",
    "segment_size",
    "log_dir",
    "watch",
    "on",
];
const RETRY: &[&str] = &["attempts", "backoff", "max_backoff"];
const PROFILE: &[&str] = &[
    "description",
    "sftp",
    "smtp",
    "http",
    "folder",
    "delay",
    "retry",
    "ack",
    "receive",
];
const SFTP: &[&str] = &[
    "host",
    "port",
    "user",
    "identity",
    "known_hosts",
    "accept_new_host_key",
    "remote_dir",
    "inbox",
    "temp_suffix",
    "bandwidth",
    "delete_after_fetch",
];
const SMTP: &[&str] = &["to", "cc", "subject", "body"];
const HTTP: &[&str] = &[
    "url",
    "method",
    "field",
    "headers",
    "username",
    "password_env",
    "password_file",
    "success_status",
    "success_body",
    "timeout",
    "ca_file",
];
const FOLDER: &[&str] = &["path", "temp_suffix"];
const ACK: &[&str] = &["mode", "file", "deadline"];
const RECEIVE: &[&str] = &["dir", "name", "timestamp", "record_width"];

/// A key or secret file: absolute, or relative to the file that names it.
fn abs_path(n: &Node, what: &str, base: &Path, d: &mut Diagnostics) -> Option<PathBuf> {
    let s = n.str(what, d)?;
    let p = Path::new(&s);
    Some(if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    })
}

/// A data folder: must be absolute (a scenario runs wherever the controller does).
fn folder(n: &Node, what: &str, d: &mut Diagnostics) -> Option<PathBuf> {
    let s = n.str(what, d)?;
    if !s.starts_with('/') {
        d.error(n.pos, format!("{what}: `{s}` must be an absolute path"));
        return None;
    }
    Some(PathBuf::from(s))
}

fn duration(n: &Node, what: &str, d: &mut Diagnostics) -> Option<Duration> {
    let t = n.str(what, d)?;
    crate::units::parse_duration(&t)
        .map_err(|e| d.error(n.pos, format!("{what}: {e}")))
        .ok()
}

fn read_retry(n: &Node, what: &str, d: &mut Diagnostics) -> RetryPolicy {
    let f = n.fields(what, RETRY, d);
    let mut r = RetryPolicy::default();
    if let Some(a) = f
        .get("attempts")
        .and_then(|a| a.u64(&format!("{what}: attempts"), d))
    {
        r.attempts = a.clamp(1, 1000) as u32;
    }
    if let Some(b) = f
        .get("backoff")
        .and_then(|b| duration(b, &format!("{what}: backoff"), d))
    {
        r.backoff = b;
    }
    if let Some(m) = f
        .get("max_backoff")
        .and_then(|m| duration(m, &format!("{what}: max_backoff"), d))
    {
        r.max_backoff = m;
    }
    r
}

/// The `transfer:` section of a `kind: transfer` job; `base` resolves relative paths.
pub(super) fn read_transfer(n: &Node, cx: &mut Cx<'_>) -> Option<(TransferSpec, bool)> {
    let d = &mut *cx.d;
    let f = n.fields("transfer", TRANSFER, d);
    let profile = f
        .require("profile", "transfer", d)?
        .str("transfer: profile", d)?;
    let direction = match f.get("direction") {
        Some(v) => match v.str("transfer: direction", d).as_deref() {
            Some("send") | None => Direction::Send,
            Some("receive") => Direction::Receive,
            Some(other) => {
                d.error(
                    v.pos,
                    format!("transfer: direction `{other}` is not one of: send, receive"),
                );
                Direction::Send
            }
        },
        None => Direction::Send,
    };
    let (source, backup) = if direction == Direction::Send {
        let source = f
            .require("source", "transfer", d)
            .and_then(|s| folder(s, "transfer: source", d));
        let backup = f
            .require("backup", "transfer", d)
            .and_then(|s| folder(s, "transfer: backup", d));
        if let (Some(s), Some(b)) = (&source, &backup)
            && s == b
        {
            d.error(
                f.get("backup").map_or(f.pos, |b| b.pos),
                "transfer: backup must be another folder than source",
            );
        }
        (source.unwrap_or_default(), backup.unwrap_or_default())
    } else {
        (PathBuf::new(), PathBuf::new())
    };
    let pattern = f
        .get("pattern")
        .and_then(|p| p.str("transfer: pattern", d))
        .unwrap_or_else(|| "*".into());
    let matcher = match globset::GlobBuilder::new(&pattern)
        .literal_separator(true)
        .build()
    {
        Ok(g) => g.compile_matcher(),
        Err(e) => {
            d.error(
                f.get("pattern").map_or(f.pos, |p| p.pos),
                format!("transfer: pattern `{pattern}`: {}", e.kind()),
            );
            return None;
        }
    };
    let collision = match f.get("collision") {
        Some(v) => {
            match v.str("transfer: collision", d).as_deref() {
                Some("increment") | None => Collision::Increment,
                Some("overwrite") => Collision::Overwrite,
                Some("skip") => Collision::Skip,
                Some(other) => {
                    d.error(
                    v.pos,
                    format!("transfer: collision `{other}` is not one of: increment, overwrite, skip"),
                );
                    Collision::Increment
                }
            }
        }
        None => Collision::Increment,
    };
    let segment_size = f.get("segment_size").and_then(|s| {
        let t = s.str("transfer: segment_size", d)?;
        match crate::units::parse_size(&t) {
            Ok(0) => {
                d.error(s.pos, "transfer: segment_size must be above 0");
                None
            }
            Ok(v) => Some(v),
            Err(e) => {
                d.error(s.pos, format!("transfer: segment_size: {e}"));
                None
            }
        }
    });
    let on = f.get("on").and_then(|o| o.str("transfer: on", d));
    let watch = match (f.get("watch"), &on) {
        (Some(w), Some(server)) => {
            if w.bool("transfer: watch", d) == Some(true) {
                d.error(
                    w.pos,
                    format!("transfer: watch: the folder is on {server}, which the controller cannot watch: use a schedule"),
                );
            }
            false
        }
        (Some(w), None) => w.bool("transfer: watch", d).unwrap_or(false),
        (None, Some(_)) => false,
        (None, None) => direction == Direction::Send,
    };
    let spec = TransferSpec {
        profile,
        direction,
        active: f
            .get("active")
            .and_then(|a| a.bool("transfer: active", d))
            .unwrap_or(true),
        on,
        source,
        pattern,
        matcher,
        backup,
        collision,
        delay: f
            .get("delay")
            .and_then(|v| duration(v, "transfer: delay", d)),
        retry: f.get("retry").map(|r| read_retry(r, "transfer: retry", d)),
        compress: f
            .get("compress")
            .and_then(|c| c.bool("transfer: compress", d))
            .unwrap_or(false),
        segment_size,
        log_dir: f
            .get("log_dir")
            .and_then(|l| folder(l, "transfer: log_dir", d)),
    };
    Some((spec, watch))
}

/// Every profile file under `dir` (`<name>.yaml`), all errors at once.
pub fn load_profiles(
    dir: &Path,
) -> Result<std::collections::BTreeMap<String, Profile>, Vec<Diagnostics>> {
    let mut out = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    for path in files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut d = Diagnostics::new(&path);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                if let Some(root) = yaml::parse(&text, &mut d) {
                    let p = read_profile(&root, &path, &name, &mut d);
                    if d.is_empty()
                        && let Some(p) = p
                    {
                        out.insert(name, p);
                    }
                }
            }
            Err(e) => d.error(yaml::Pos::new(1, 1), format!("cannot read: {e}")),
        }
        d.sort();
        if !d.is_empty() {
            problems.push(d);
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn list(n: Option<&Node>, what: &str, d: &mut Diagnostics) -> Vec<String> {
    match n {
        Some(v) => match &v.kind {
            Kind::Seq(_) => v.str_list(what, d).into_iter().map(|(s, _)| s).collect(),
            _ => v.str(what, d).into_iter().collect(),
        },
        None => Vec::new(),
    }
}

fn read_profile(root: &Node, file: &Path, name: &str, d: &mut Diagnostics) -> Option<Profile> {
    let base = file.parent().unwrap_or(Path::new("."));
    let f = root.fields("profile", PROFILE, d);
    let given: Vec<&str> = ["sftp", "smtp", "http", "folder"]
        .into_iter()
        .filter(|k| f.has(k))
        .collect();
    if given.len() != 1 {
        d.error(
            f.pos,
            if given.is_empty() {
                "profile: needs one of `sftp`, `smtp`, `http` or `folder`".to_string()
            } else {
                format!("profile: give only one of {}", given.join(", "))
            },
        );
        return None;
    }
    let node = f.get(given[0])?;
    let protocol = match given[0] {
        "sftp" => {
            let s = node.fields("sftp", SFTP, d);
            let host = s.require("host", "sftp", d)?.str("sftp: host", d)?;
            let port = s
                .get("port")
                .and_then(|p| p.u64("sftp: port", d))
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(22);
            let user = s.require("user", "sftp", d)?.str("sftp: user", d)?;
            let identity: Vec<PathBuf> = list(s.get("identity"), "sftp: identity", d)
                .into_iter()
                .map(|p| {
                    if Path::new(&p).is_absolute() {
                        PathBuf::from(p)
                    } else {
                        base.join(p)
                    }
                })
                .collect();
            if identity.is_empty() {
                d.error(
                    s.pos,
                    "sftp: needs `identity` (private key files; passwords are not used)",
                );
            }
            let remote_dir = s
                .require("remote_dir", "sftp", d)?
                .str("sftp: remote_dir", d)?;
            let bandwidth = s.get("bandwidth").and_then(|b| {
                let t = b.str("sftp: bandwidth", d)?;
                let t = t.trim_end_matches("/s");
                crate::units::parse_size(t)
                    .map_err(|e| d.error(b.pos, format!("sftp: bandwidth: {e}")))
                    .ok()
            });
            Protocol::Sftp {
                host,
                port,
                user,
                identity,
                known_hosts: s
                    .get("known_hosts")
                    .and_then(|k| abs_path(k, "sftp: known_hosts", base, d)),
                accept_new_host_key: s
                    .get("accept_new_host_key")
                    .and_then(|a| a.bool("sftp: accept_new_host_key", d))
                    .unwrap_or(false),
                remote_dir: remote_dir.trim_end_matches('/').to_string(),
                inbox: s
                    .get("inbox")
                    .and_then(|i| i.str("sftp: inbox", d))
                    .map(|i| i.trim_end_matches('/').to_string()),
                temp_suffix: s
                    .get("temp_suffix")
                    .and_then(|t| t.str("sftp: temp_suffix", d))
                    .unwrap_or_else(|| ".part".into()),
                bandwidth,
                delete_after_fetch: s
                    .get("delete_after_fetch")
                    .and_then(|t| t.bool("sftp: delete_after_fetch", d))
                    .unwrap_or(true),
            }
        }
        "smtp" => {
            let s = node.fields("smtp", SMTP, d);
            let to = list(s.get("to"), "smtp: to", d);
            if to.is_empty() {
                d.error(s.pos, "smtp: needs at least one recipient in `to`");
            }
            Protocol::Smtp {
                to,
                cc: list(s.get("cc"), "smtp: cc", d),
                subject: s
                    .get("subject")
                    .and_then(|v| v.str("smtp: subject", d))
                    .unwrap_or_else(|| "[scenario] [name] [part]".into()),
                body: s
                    .get("body")
                    .and_then(|v| v.str("smtp: body", d))
                    .unwrap_or_else(|| "File [name] ([part]) is attached.\n".into()),
            }
        }
        "http" => {
            let s = node.fields("http", HTTP, d);
            let url_node = s.require("url", "http", d)?;
            let url = url_node.str("http: url", d)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                d.error(
                    url_node.pos,
                    format!("http: url `{url}` must start with http:// or https://"),
                );
            }
            let method = match s
                .get("method")
                .and_then(|m| m.str("http: method", d))
                .as_deref()
            {
                None | Some("post" | "POST") => HttpMethod::Post,
                Some("put" | "PUT") => HttpMethod::Put,
                Some(other) => {
                    d.error(
                        s.get("method").map_or(s.pos, |m| m.pos),
                        format!("http: method `{other}` is not one of: post, put"),
                    );
                    HttpMethod::Post
                }
            };
            let mut headers = Vec::new();
            if let Some(h) = s.get("headers") {
                for (k, v) in h.entries("http: headers", d) {
                    if let Some(v) = v.str(&format!("http: header `{k}`"), d) {
                        headers.push((k, v));
                    }
                }
            }
            let password = match (s.get("password_env"), s.get("password_file")) {
                (Some(e), None) => e.str("http: password_env", d).map(Secret::Env),
                (None, Some(f)) => abs_path(f, "http: password_file", base, d).map(Secret::File),
                (Some(e), Some(_)) => {
                    d.error(e.pos, "http: give password_env or password_file, not both");
                    None
                }
                (None, None) => None,
            };
            let success_status = match s.get("success_status") {
                Some(v) => list(Some(v), "http: success_status", d)
                    .into_iter()
                    .filter_map(|c| match c.parse::<u16>() {
                        Ok(c) if (100..600).contains(&c) => Some(c),
                        _ => {
                            d.error(
                                v.pos,
                                format!("http: success_status `{c}` is not an HTTP status"),
                            );
                            None
                        }
                    })
                    .collect(),
                None => Vec::new(),
            };
            Protocol::Http {
                url,
                method,
                field: s
                    .get("field")
                    .and_then(|v| v.str("http: field", d))
                    .unwrap_or_else(|| "file".into()),
                headers,
                username: s.get("username").and_then(|v| v.str("http: username", d)),
                password,
                success_status,
                success_body: s
                    .get("success_body")
                    .and_then(|v| v.str("http: success_body", d)),
                timeout: s
                    .get("timeout")
                    .and_then(|v| duration(v, "http: timeout", d))
                    .unwrap_or(Duration::from_secs(300)),
                ca_file: s
                    .get("ca_file")
                    .and_then(|v| abs_path(v, "http: ca_file", base, d)),
            }
        }
        _ => {
            let s = node.fields("folder", FOLDER, d);
            Protocol::Folder {
                path: s
                    .require("path", "folder", d)
                    .and_then(|p| folder(p, "folder: path", d))?,
                temp_suffix: s
                    .get("temp_suffix")
                    .and_then(|t| t.str("folder: temp_suffix", d))
                    .unwrap_or_else(|| ".part".into()),
            }
        }
    };
    let ack = f.get("ack").and_then(|a| {
        let g = a.fields("ack", ACK, d);
        let mode = match g.get("mode").and_then(|m| m.str("ack: mode", d)).as_deref() {
            Some("consumed") | None => AckMode::Consumed,
            Some("file") => AckMode::File(
                g.get("file")
                    .and_then(|p| p.str("ack: file", d))
                    .unwrap_or_else(|| "{name}.ack".into()),
            ),
            Some(other) => {
                d.error(g.get("mode").map_or(g.pos, |m| m.pos), format!("ack: mode `{other}` is not one of: consumed, file"));
                return None;
            }
        };
        if !matches!(protocol, Protocol::Sftp { .. } | Protocol::Folder { .. }) {
            d.error(a.pos, "ack: only sftp and folder partners can acknowledge (by taking the file, or with an ack file)");
        }
        Some(AckPolicy {
            mode,
            deadline: g
                .get("deadline")
                .and_then(|v| duration(v, "ack: deadline", d))
                .unwrap_or(Duration::from_secs(80 * 3600)),
        })
    });
    let receiving = match f.get("receive") {
        Some(r) => {
            let g = r.fields("receive", RECEIVE, d);
            let name = g.get("name").and_then(|n| {
                let t = n.str("receive: name", d)?;
                check_name_template(&t)
                    .map_err(|e| d.error(n.pos, format!("receive: name: {e}")))
                    .ok()
                    .map(|()| t)
            });
            Receiving {
                dir: g
                    .get("dir")
                    .and_then(|v| abs_path(v, "receive: dir", base, d)),
                name,
                timestamp: g
                    .get("timestamp")
                    .and_then(|t| t.bool("receive: timestamp", d))
                    .unwrap_or(false),
                record_width: g
                    .get("record_width")
                    .and_then(|w| w.u64("receive: record_width", d))
                    .unwrap_or(4)
                    .clamp(1, 12) as usize,
            }
        }
        None => Receiving {
            dir: None,
            name: None,
            timestamp: false,
            record_width: 4,
        },
    };
    Some(Profile {
        name: name.to_string(),
        file: file.to_path_buf(),
        description: f
            .get("description")
            .and_then(|v| v.str("description", d))
            .unwrap_or_default(),
        protocol,
        delay: f
            .get("delay")
            .and_then(|v| duration(v, "delay", d))
            .unwrap_or(Duration::ZERO),
        retry: f
            .get("retry")
            .map(|r| read_retry(r, "retry", d))
            .unwrap_or_default(),
        ack,
        receiving,
    })
}
