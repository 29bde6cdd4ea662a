//! The parts of a job that `controller serve` acts on: schedule, file watch, follow-up
//! jobs, notifications, lateness and retention.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ordo_inventory::yaml::{Fields, Kind, Node};

use super::{Cx, Scope};
use crate::model::*;
use crate::options::check_value;
use crate::schedule::{CronExpr, Missed, Overlap, Schedule, Syntax};

const SCHEDULE: &[&str] = &[
    "cron", "syntax", "timezone", "options", "overlap", "missed", "enabled",
];
const WATCH: &[&str] = &["path", "pattern", "recursive", "option", "poll", "settle"];
const THEN: &[&str] = &["on_success", "on_failure", "always"];
const JOB_REF: &[&str] = &["job", "options"];
const NOTIFY: &[&str] = &["on", "mail", "webhook"];
const NOTIFY_MAIL: &[&str] = &["to", "attach_log"];
const WEBHOOK: &[&str] = &["url", "headers", "timeout"];
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

fn read_schedule(n: &Node, options: &[JobOption], cx: &mut Cx<'_>) -> Option<Schedule> {
    let f = match &n.kind {
        Kind::Map(_) => Some(n.fields("schedule", SCHEDULE, cx.d)),
        _ => None,
    };
    let get = |k: &str| f.as_ref().and_then(|f| f.get(k));
    let syntax = match get("syntax") {
        Some(s) => match s.str("schedule: syntax", cx.d).as_deref() {
            Some("cron") | None => Syntax::Cron,
            Some("quartz") => Syntax::Quartz,
            Some(other) => {
                cx.d.error(
                    s.pos,
                    format!("schedule: syntax `{other}` is not one of: cron, quartz"),
                );
                Syntax::Cron
            }
        },
        None => Syntax::Cron,
    };
    let exprs = match &f {
        Some(f) => f
            .require("cron", "schedule", cx.d)
            .map(|c| one_or_many(c, "schedule: cron", cx))
            .unwrap_or_default(),
        None => one_or_many(n, "schedule", cx),
    };
    let mut crons = Vec::new();
    for (text, pos) in exprs {
        match CronExpr::parse(&text, syntax) {
            Ok(c) => crons.push(c),
            Err(e) => cx.d.error(
                pos,
                format!(
                    "schedule: `{text}` is not a valid {} expression: {e}",
                    syntax_name(syntax)
                ),
            ),
        }
    }
    let timezone = get("timezone").and_then(|t| {
        let s = t.str("schedule: timezone", cx.d)?;
        s.parse::<chrono_tz::Tz>()
            .map_err(|_| {
                cx.d.error(
                    t.pos,
                    format!(
                        "schedule: unknown time zone `{s}` (IANA names, e.g. Europe/Paris or UTC)"
                    ),
                )
            })
            .ok()
    });
    let mut values = BTreeMap::new();
    if let Some(o) = get("options") {
        for (k, v) in o.entries("schedule: options", cx.d) {
            let Some(value) = v.str(&format!("schedule: option `{k}`"), cx.d) else {
                continue;
            };
            match options.iter().find(|o| o.name == k) {
                None => cx.d.error(
                    v.pos,
                    format!("schedule: option `{k}` is not declared in this job's options"),
                ),
                Some(opt) => {
                    if let Err(e) = check_value(opt, &value) {
                        cx.d.error(v.pos, format!("schedule: option `{k}`: {e}"));
                    }
                }
            }
            values.insert(k, value);
        }
    }
    let overlap = match get("overlap") {
        Some(o) => match o.str("schedule: overlap", cx.d).as_deref() {
            Some("skip") | None => Overlap::Skip,
            Some("queue") => Overlap::Queue,
            Some("concurrent" | "allow") => Overlap::Concurrent,
            Some(other) => {
                cx.d.error(
                    o.pos,
                    format!("schedule: overlap `{other}` is not one of: skip, queue, concurrent"),
                );
                Overlap::Skip
            }
        },
        None => Overlap::Skip,
    };
    let missed = match get("missed") {
        Some(m) => match m.str("schedule: missed", cx.d).as_deref() {
            Some("skip") | None => Missed::Skip,
            Some("catch-up" | "catch_up" | "catchup") => Missed::CatchUp,
            Some(other) => {
                cx.d.error(
                    m.pos,
                    format!("schedule: missed `{other}` is not one of: skip, catch-up"),
                );
                Missed::Skip
            }
        },
        None => Missed::Skip,
    };
    let enabled = get("enabled")
        .and_then(|e| e.bool("schedule: enabled", cx.d))
        .unwrap_or(true);
    Some(Schedule {
        crons,
        syntax,
        timezone,
        options: values,
        overlap,
        missed,
        enabled,
    })
}

fn syntax_name(s: Syntax) -> &'static str {
    match s {
        Syntax::Cron => "cron",
        Syntax::Quartz => "Quartz cron",
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
    what: &str,
    cx: &mut Cx<'_>,
) -> Option<JobRef> {
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
                    job_ref(name, g.get("options"), &what, cx)
                }
                _ => job_ref(item, None, &what, cx),
            })
            .collect()
    };
    Chain {
        on_success: list("on_success", cx),
        on_failure: list("on_failure", cx),
        always: list("always", cx),
    }
}

fn read_notify(n: &Node, cx: &mut Cx<'_>) -> Vec<Notify> {
    let items: Vec<&Node> = match &n.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![n],
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let what = format!("notify {}", i + 1);
        let f = item.fields(&what, NOTIFY, cx.d);
        let mut on = Vec::new();
        match f.get("on") {
            Some(o) => {
                for (e, pos) in one_or_many(o, &format!("{what}: on"), cx) {
                    match NotifyEvent::parse(&e) {
                        Some(ev) => on.push(ev),
                        None => cx.d.error(
                            pos,
                            format!(
                                "{what}: on: `{e}` is not one of: start, success, failure, late"
                            ),
                        ),
                    }
                }
            }
            None => on.push(NotifyEvent::Failure),
        }
        let target = match (f.get("mail"), f.get("webhook")) {
            (Some(m), None) => read_notify_mail(m, &what, cx),
            (None, Some(w)) => read_webhook(w, &what, cx),
            _ => {
                cx.d.error(
                    item.pos,
                    format!("{what}: needs one of `mail` or `webhook`"),
                );
                None
            }
        };
        if let Some(target) = target {
            out.push(Notify { on, target });
        }
    }
    out
}

fn read_notify_mail(n: &Node, what: &str, cx: &mut Cx<'_>) -> Option<NotifyTarget> {
    let (to_node, attach) = match &n.kind {
        Kind::Map(_) => {
            let f = n.fields(&format!("{what}: mail"), NOTIFY_MAIL, cx.d);
            let attach = f
                .get("attach_log")
                .and_then(|a| a.bool(&format!("{what}: mail: attach_log"), cx.d))
                .unwrap_or(false);
            (f.require("to", &format!("{what}: mail"), cx.d)?, attach)
        }
        _ => (n, false),
    };
    let to: Vec<String> = one_or_many(to_node, &format!("{what}: mail: to"), cx)
        .into_iter()
        .filter_map(|(a, pos)| {
            if a.contains('@') {
                Some(a)
            } else {
                cx.d.error(pos, format!("{what}: mail: `{a}` is not a mail address"));
                None
            }
        })
        .collect();
    if to.is_empty() {
        return None;
    }
    Some(NotifyTarget::Mail {
        to,
        attach_log: attach,
    })
}

fn read_webhook(n: &Node, what: &str, cx: &mut Cx<'_>) -> Option<NotifyTarget> {
    let w = format!("{what}: webhook");
    let (url_node, f) = match &n.kind {
        Kind::Map(_) => {
            let f = n.fields(&w, WEBHOOK, cx.d);
            (f.require("url", &w, cx.d)?, Some(f))
        }
        _ => (n, None),
    };
    let url = url_node.str(&format!("{w}: url"), cx.d)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        cx.d.error(
            url_node.pos,
            format!("{w}: url `{url}` must start with http:// or https://"),
        );
        return None;
    }
    let get = |k: &str| f.as_ref().and_then(|f| f.get(k));
    let mut headers = Vec::new();
    if let Some(h) = get("headers") {
        for (k, v) in h.entries(&format!("{w}: headers"), cx.d) {
            if let Some(v) = v.str(&format!("{w}: header `{k}`"), cx.d) {
                headers.push((k, v));
            }
        }
    }
    let timeout = get("timeout")
        .and_then(|t| cx.duration(t, &format!("{w}: timeout")))
        .unwrap_or(Duration::from_secs(10));
    Some(NotifyTarget::Webhook {
        url,
        headers,
        timeout,
    })
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
