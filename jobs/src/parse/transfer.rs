//! `kind: transfer` jobs (the `transfer:` section) and profile files.

mod profile;
mod protocol;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_inventory::yaml::{Diagnostics, Node};

use super::Cx;
use crate::transfer::{Collision, Direction, RetryPolicy, TransferSpec};

pub use profile::load_profiles;

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
