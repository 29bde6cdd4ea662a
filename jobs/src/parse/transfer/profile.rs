//! Profile files (`profiles/<name>.yaml`): how to reach one partner, read in phases: the
//! protocol section, then acknowledgement, naming of received files, pacing and retries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_inventory::yaml::{self, Diagnostics, Node};

use super::protocol::read_protocol;
use super::{abs_path, duration, read_retry};
use crate::transfer::{AckMode, AckPolicy, Profile, Protocol, Receiving, check_name_template};

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
    "encrypt",
];
const ACK: &[&str] = &["mode", "file", "deadline"];
const RECEIVE: &[&str] = &["dir", "name", "timestamp", "record_width"];

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
        match ordo_inventory::read_config(&path) {
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

/// One profile file, section by section. Without a usable protocol section the others
/// are not read (their errors show once it is fixed). Relative paths are relative to the
/// profile's folder.
fn read_profile(root: &Node, file: &Path, name: &str, d: &mut Diagnostics) -> Option<Profile> {
    let base = file.parent().unwrap_or(Path::new("."));
    let f = root.fields("profile", PROFILE, d);
    let protocol = read_protocol(&f, base, d)?;
    let ack = f.get("ack").and_then(|a| read_ack(a, &protocol, d));
    let receiving = match f.get("receive") {
        Some(r) => read_receiving(r, base, d),
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
        encrypt: f
            .get("encrypt")
            .map(|e| e.str_list("encrypt", d))
            .unwrap_or_default(),
    })
}

/// The `ack:` section: how the partner acknowledges a deposited file (by taking it, or
/// with an ack file), and how long it has. `None` for an unknown mode.
fn read_ack(a: &Node, protocol: &Protocol, d: &mut Diagnostics) -> Option<AckPolicy> {
    let g = a.fields("ack", ACK, d);
    let mode = match g.get("mode").and_then(|m| m.str("ack: mode", d)).as_deref() {
        Some("consumed") | None => AckMode::Consumed,
        Some("file") => AckMode::File(
            g.get("file")
                .and_then(|p| p.str("ack: file", d))
                .unwrap_or_else(|| "{name}.ack".into()),
        ),
        Some(other) => {
            d.error(
                g.get("mode").map_or(g.pos, |m| m.pos),
                format!("ack: mode `{other}` is not one of: consumed, file"),
            );
            return None;
        }
    };
    if !matches!(protocol, Protocol::Sftp { .. } | Protocol::Folder { .. }) {
        d.error(
            a.pos,
            "ack: only sftp and folder partners can acknowledge (by taking the file, or with an ack file)",
        );
    }
    Some(AckPolicy {
        mode,
        deadline: g
            .get("deadline")
            .and_then(|v| duration(v, "ack: deadline", d))
            .unwrap_or(Duration::from_secs(80 * 3600)),
    })
}

/// The `receive:` section: where retrieved files go and how they are named.
fn read_receiving(r: &Node, base: &Path, d: &mut Diagnostics) -> Receiving {
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
