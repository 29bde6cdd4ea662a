//! The protocol section of a profile: exactly one of `sftp`, `smtp`, `http` or `folder`,
//! each read by its own function.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_inventory::yaml::{Diagnostics, Fields, Kind, Node};

use super::{abs_path, duration, folder};
use crate::transfer::{HttpMethod, Protocol, Secret};

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

/// How to reach the partner: the one protocol section of the profile `f`. `None` when
/// there is not exactly one, or when a key it cannot do without is missing.
pub(super) fn read_protocol(f: &Fields<'_>, base: &Path, d: &mut Diagnostics) -> Option<Protocol> {
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
    match given[0] {
        "sftp" => read_sftp(node, base, d),
        "smtp" => Some(read_smtp(node, d)),
        "http" => read_http(node, base, d),
        _ => read_folder(node, d),
    }
}

/// Strings from a scalar or a list of scalars.
fn list(n: Option<&Node>, what: &str, d: &mut Diagnostics) -> Vec<String> {
    match n {
        Some(v) => match &v.kind {
            Kind::Seq(_) => v.str_list(what, d).into_iter().map(|(s, _)| s).collect(),
            _ => v.str(what, d).into_iter().collect(),
        },
        None => Vec::new(),
    }
}

/// `sftp:`: the server, the account and its key files, the deposit folder (and inbox),
/// and how files are written there.
fn read_sftp(node: &Node, base: &Path, d: &mut Diagnostics) -> Option<Protocol> {
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
    Some(Protocol::Sftp {
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
    })
}

/// `smtp:`: the recipients, and the subject and body of each mail.
fn read_smtp(node: &Node, d: &mut Diagnostics) -> Protocol {
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

/// `http:`: the URL and method, headers and credentials, and what answer means the
/// partner took the file.
fn read_http(node: &Node, base: &Path, d: &mut Diagnostics) -> Option<Protocol> {
    let s = node.fields("http", HTTP, d);
    let url_node = s.require("url", "http", d)?;
    let url = url_node.str("http: url", d)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        d.error(
            url_node.pos,
            format!("http: url `{url}` must start with http:// or https://"),
        );
    }
    let method = read_http_method(&s, d);
    let headers = read_http_headers(&s, d);
    let password = read_http_password(&s, base, d);
    let success_status = match s.get("success_status") {
        Some(v) => read_success_status(v, d),
        None => Vec::new(),
    };
    Some(Protocol::Http {
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
    })
}

/// `http: method`: POST (the default) or PUT.
fn read_http_method(s: &Fields<'_>, d: &mut Diagnostics) -> HttpMethod {
    match s
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
    }
}

/// `http: headers`: sent with every request, in the order written.
fn read_http_headers(s: &Fields<'_>, d: &mut Diagnostics) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    if let Some(h) = s.get("headers") {
        for (k, v) in h.entries("http: headers", d) {
            if let Some(v) = v.str(&format!("http: header `{k}`"), d) {
                headers.push((k, v));
            }
        }
    }
    headers
}

/// `http: password_env` or `http: password_file` (not both): where the password is read
/// when needed.
fn read_http_password(s: &Fields<'_>, base: &Path, d: &mut Diagnostics) -> Option<Secret> {
    match (s.get("password_env"), s.get("password_file")) {
        (Some(e), None) => e.str("http: password_env", d).map(Secret::Env),
        (None, Some(f)) => abs_path(f, "http: password_file", base, d).map(Secret::File),
        (Some(e), Some(_)) => {
            d.error(e.pos, "http: give password_env or password_file, not both");
            None
        }
        (None, None) => None,
    }
}

/// `http: success_status`: the statuses that mean the partner took the file.
fn read_success_status(v: &Node, d: &mut Diagnostics) -> Vec<u16> {
    list(Some(v), "http: success_status", d)
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
        .collect()
}

/// `folder:`: the partner's folder (an absolute path), and the suffix files have while
/// they are written.
fn read_folder(node: &Node, d: &mut Diagnostics) -> Option<Protocol> {
    let s = node.fields("folder", FOLDER, d);
    Some(Protocol::Folder {
        path: s
            .require("path", "folder", d)
            .and_then(|p| folder(p, "folder: path", d))?,
        temp_suffix: s
            .get("temp_suffix")
            .and_then(|t| t.str("folder: temp_suffix", d))
            .unwrap_or_else(|| ".part".into()),
    })
}
