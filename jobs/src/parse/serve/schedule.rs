//! `schedule:`: cron expressions, their syntax and time zone, the options a scheduled run
//! gets, and what to do with overlapping or missed runs.

use std::collections::BTreeMap;

use ordo_inventory::yaml::{Kind, Node};

use super::{Cx, one_or_many};
use crate::model::JobOption;
use crate::options::check_value;
use crate::schedule::{CronExpr, Missed, Overlap, Schedule, Syntax};

const SCHEDULE: &[&str] = &[
    "cron", "syntax", "timezone", "options", "overlap", "missed", "enabled",
];

pub(super) fn read_schedule(n: &Node, options: &[JobOption], cx: &mut Cx<'_>) -> Option<Schedule> {
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
