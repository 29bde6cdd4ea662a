//! The parts of a job that `controller serve` acts on: schedule, file watch, follow-up
//! jobs, notifications, lateness and retention.

mod notify;
mod schedule;

use std::path::PathBuf;
use std::time::Duration;

use ordo_inventory::yaml::{Fields, Kind, Node};

use super::{Cx, Scope};
use crate::model::*;
use crate::schedule::Schedule;

use notify::read_notify;
use schedule::read_schedule;

const WATCH: &[&str] = &["path", "pattern", "recursive", "option", "poll", "settle"];
const THEN: &[&str] = &["on_success", "on_failure", "always"];
const JOB_REF: &[&str] = &["job", "options", "import_options"];
const RETENTION: &[&str] = &["max_age", "max_count"];

#[derive(Default)]
pub(super) struct ServeFields {
    pub schedule: Option<Schedule>,
    pub watch: Option<Watch>,
    pub then: Chain,
    pub notify: Vec<Notify>,
    pub late: Option<Late>,
    pub retention: Option<Retention>,
}

pub(super) fn read(f: &Fields<'_>, options: &[JobOption], cx: &mut Cx<'_>) -> ServeFields {
    ServeFields {
        schedule: f
            .get("schedule")
            .and_then(|n| read_schedule(n, options, cx)),
        watch: f.get("watch").and_then(|n| read_watch(n, options, cx)),
        then: f.get("then").map(|n| read_then(n, cx)).unwrap_or_default(),
        notify: f
            .get("notify")
            .map(|n| read_notify(n, cx))
            .unwrap_or_default(),
        late: f.get("late").and_then(|n| read_late(n, cx)),
        retention: f.get("retention").and_then(|n| read_retention(n, cx)),
    }
}

/// Strings from a scalar or a list of scalars.
fn one_or_many(n: &Node, what: &str, cx: &mut Cx<'_>) -> Vec<(String, ordo_inventory::Pos)> {
    match &n.kind {
        Kind::Seq(_) => n.str_list(what, cx.d),
        _ => n
            .str(what, cx.d)
            .map(|s| vec![(s, n.pos)])
            .unwrap_or_default(),
    }
}

fn read_watch(n: &Node, options: &[JobOption], cx: &mut Cx<'_>) -> Option<Watch> {
    let f = n.fields("watch", WATCH, cx.d);
    let path = f.require("path", "watch", cx.d)?.str("watch: path", cx.d)?;
    if !path.starts_with('/') {
        cx.d.error(
            f.get("path").map_or(f.pos, |p| p.pos),
            format!("watch: path `{path}` must be an absolute path"),
        );
    }
    let pattern = f
        .get("pattern")
        .and_then(|p| p.str("watch: pattern", cx.d))
        .unwrap_or_else(|| "*".into());
    let matcher = match globset::GlobBuilder::new(&pattern)
        .literal_separator(true)
        .build()
    {
        Ok(g) => g.compile_matcher(),
        Err(e) => {
            cx.d.error(
                f.get("pattern").map_or(f.pos, |p| p.pos),
                format!("watch: pattern `{pattern}`: {}", e.kind()),
            );
            return None;
        }
    };
    let option_node = f.require("option", "watch", cx.d)?;
    let option = option_node.str("watch: option", cx.d)?;
    if !options.iter().any(|o| o.name == option) {
        cx.d.error(
            option_node.pos,
            format!("watch: option `{option}` (which receives the file's path) is not declared in this job's options"),
        );
    }
    let poll = f.get("poll").and_then(|p| cx.duration(p, "watch: poll"));
    let settle = f
        .get("settle")
        .and_then(|p| cx.duration(p, "watch: settle"))
        .unwrap_or(Duration::from_secs(2));
    Some(Watch {
        path: PathBuf::from(path),
        pattern,
        matcher,
        recursive: f
            .get("recursive")
            .and_then(|r| r.bool("watch: recursive", cx.d))
            .unwrap_or(false),
        option: Some(option),
        poll,
        settle,
    })
}

/// `job: name` with `options:` next to it (a job step), or a follow-up entry.
pub(super) fn job_ref(
    name: &Node,
    options: Option<&Node>,
    import: Option<&Node>,
    what: &str,
    cx: &mut Cx<'_>,
) -> Option<JobRef> {
    let import_options = import
        .and_then(|n| n.bool(&format!("{what}: import_options"), cx.d))
        .unwrap_or(false);
    let job = name.str(&format!("{what}: job"), cx.d)?;
    if job.is_empty() {
        cx.d.error(name.pos, format!("{what}: job: a job name is needed"));
        return None;
    }
    // A job step runs while this run goes; a follow-up once it ended.
    let scope = if what.starts_with("then") {
        Scope::RunEnd
    } else {
        Scope::Run
    };
    let mut opts = Vec::new();
    if let Some(o) = options {
        for (k, v) in o.entries(&format!("{what}: options"), cx.d) {
            if let Some(t) = cx.template_with(v, &format!("{what}: option `{k}`"), false, scope) {
                opts.push((k, t));
            }
        }
    }
    Some(JobRef {
        job,
        options: opts,
        import_options,
        pos: name.pos,
    })
}

fn read_then(n: &Node, cx: &mut Cx<'_>) -> Chain {
    let f = n.fields("then", THEN, cx.d);
    let list = |key: &str, cx: &mut Cx<'_>| -> Vec<JobRef> {
        let Some(v) = f.get(key) else {
            return Vec::new();
        };
        let what = format!("then: {key}");
        let items: Vec<&Node> = match &v.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![v],
        };
        items
            .into_iter()
            .filter_map(|item| match &item.kind {
                Kind::Map(_) => {
                    let g = item.fields(&what, JOB_REF, cx.d);
                    let name = g.require("job", &what, cx.d)?;
                    job_ref(name, g.get("options"), g.get("import_options"), &what, cx)
                }
                _ => job_ref(item, None, None, &what, cx),
            })
            .collect()
    };
    Chain {
        on_success: list("on_success", cx),
        on_failure: list("on_failure", cx),
        always: list("always", cx),
    }
}

fn read_late(n: &Node, cx: &mut Cx<'_>) -> Option<Late> {
    let text = n.str("late", cx.d)?;
    if let Some(f) = text.trim().strip_suffix('x') {
        return match f.trim().parse::<f64>() {
            Ok(v) if v > 1.0 && v.is_finite() => Some(Late::Factor(v)),
            _ => {
                cx.d.error(
                    n.pos,
                    format!("late: `{text}`: a factor of the usual duration is a number above 1 followed by x (`1.5x`)"),
                );
                None
            }
        };
    }
    cx.duration(n, "late").map(Late::After)
}

fn read_retention(n: &Node, cx: &mut Cx<'_>) -> Option<Retention> {
    let f = n.fields("retention", RETENTION, cx.d);
    let r = Retention {
        max_age: f
            .get("max_age")
            .and_then(|a| cx.duration(a, "retention: max_age")),
        max_count: f
            .get("max_count")
            .and_then(|c| c.u64("retention: max_count", cx.d)),
    };
    if r.max_count == Some(0) {
        cx.d.error(
            f.get("max_count").map_or(f.pos, |c| c.pos),
            "retention: max_count must be at least 1",
        );
    }
    Some(r)
}
