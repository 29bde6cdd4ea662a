//! The `projects` part of a change: message rules by project, each field checked.

use serde_json::Value;

use super::rule_type;
use super::{FieldErrors, MAX_DELAY, Mode};
use crate::store::AlertRuleRow;

/// `projects: [{project, rules: [{type, positive, active, delay}]}]`: PUT replaces every
/// rule; PATCH replaces the rules it names (by project, type and sign).
pub(super) fn rules(
    v: &Value,
    mode: Mode,
    projects: &[String],
    out: &mut Vec<AlertRuleRow>,
    errs: &mut FieldErrors,
) {
    let Some(items) = v.as_array() else {
        errs.push(("projects".into(), "a list of {project, rules}".into()));
        return;
    };
    if items.len() > 1000 {
        errs.push(("projects".into(), "at most 1000 projects".into()));
        return;
    }
    if mode == Mode::Put {
        // Rules of projects this caller may not set (a primary's view of a secondary's
        // account) stay.
        out.retain(|r| !projects.contains(&r.project));
    }
    for (i, item) in items.iter().enumerate() {
        let at = format!("projects[{i}]");
        let Some(o) = item.as_object() else {
            errs.push((at, "an object {project, rules}".into()));
            continue;
        };
        for k in o
            .keys()
            .filter(|k| !["project", "rules"].contains(&k.as_str()))
        {
            errs.push((format!("{at}.{k}"), "unknown field (project, rules)".into()));
        }
        let project = match o.get("project").and_then(Value::as_str) {
            Some(p) if projects.iter().any(|x| x == p) => p.to_string(),
            Some(p) => {
                errs.push((
                    format!("{at}.project"),
                    format!(
                        "`{p}` is not one of the account's projects ({})",
                        shown(projects)
                    ),
                ));
                continue;
            }
            None => {
                errs.push((format!("{at}.project"), "required (a project name)".into()));
                continue;
            }
        };
        let Some(list) = o.get("rules").and_then(Value::as_array) else {
            errs.push((format!("{at}.rules"), "required (a list of rules)".into()));
            continue;
        };
        if list.len() > 20 {
            errs.push((format!("{at}.rules"), "at most 20 rules".into()));
            continue;
        }
        let mut seen = Vec::new();
        for (j, r) in list.iter().enumerate() {
            let Some(rule) = one_rule(&format!("{at}.rules[{j}]"), &project, r, errs) else {
                continue;
            };
            let key = (rule.kind.clone(), rule.positive);
            if seen.contains(&key) {
                errs.push((
                    format!("{at}.rules[{j}]"),
                    format!("a second `{}` rule of the same sign", rule.kind),
                ));
                continue;
            }
            seen.push(key);
            out.retain(|x| {
                !(x.project == rule.project && x.kind == rule.kind && x.positive == rule.positive)
            });
            out.push(rule);
        }
    }
    out.sort_by(|a, b| (&a.project, &a.kind, !a.positive).cmp(&(&b.project, &b.kind, !b.positive)));
}

fn one_rule(at: &str, project: &str, r: &Value, errs: &mut FieldErrors) -> Option<AlertRuleRow> {
    let Some(o) = r.as_object() else {
        errs.push((
            at.into(),
            "an object {type, positive, active, delay}".into(),
        ));
        return None;
    };
    let before = errs.len();
    for k in o
        .keys()
        .filter(|k| !["type", "positive", "active", "delay"].contains(&k.as_str()))
    {
        errs.push((
            format!("{at}.{k}"),
            "unknown field (type, positive, active, delay)".into(),
        ));
    }
    let names: Vec<&str> = super::RULE_TYPES.iter().map(|t| t.name).collect();
    let kind = match o.get("type").and_then(Value::as_str) {
        Some(t) if rule_type(t).is_some() => t.to_string(),
        Some(t) => {
            errs.push((
                format!("{at}.type"),
                format!("`{t}` is not one of: {}", names.join(", ")),
            ));
            return None;
        }
        None => {
            errs.push((
                format!("{at}.type"),
                format!("required: one of {}", names.join(", ")),
            ));
            return None;
        }
    };
    let flag = |k: &str, errs: &mut FieldErrors| match o.get(k) {
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errs.push((format!("{at}.{k}"), "a boolean (true or false)".into()));
            None
        }
        None => {
            errs.push((format!("{at}.{k}"), "required".into()));
            None
        }
    };
    let positive = flag("positive", errs);
    let active = flag("active", errs);
    let delay = match o.get("delay") {
        Some(d) => match d.as_i64().filter(|d| (0..=MAX_DELAY).contains(d)) {
            Some(d) => Some(d),
            None => {
                errs.push((
                    format!("{at}.delay"),
                    format!("a whole number of days from 0 to {MAX_DELAY}"),
                ));
                None
            }
        },
        None => {
            errs.push((format!("{at}.delay"), "required (days; 0: at once)".into()));
            None
        }
    };
    let t = rule_type(&kind)?;
    if let Some(p) = positive {
        let exists = if p {
            t.positive.is_some()
        } else {
            t.negative.is_some()
        };
        if !exists {
            let sign = if p { "positive" } else { "negative" };
            errs.push((
                format!("{at}.positive"),
                format!("`{kind}` has no {sign} event"),
            ));
        }
    }
    if positive == Some(true) && delay.is_some_and(|d| d > 0) {
        errs.push((
            format!("{at}.delay"),
            "a delay applies to negative rules only (0 here)".into(),
        ));
    }
    if errs.len() != before {
        return None;
    }
    Some(AlertRuleRow {
        project: project.to_string(),
        kind,
        positive: positive?,
        active: active?,
        delay_days: delay?,
    })
}

/// A project list for a message: the first 20.
fn shown(projects: &[String]) -> String {
    if projects.is_empty() {
        return "none: the account reads no job folder".into();
    }
    let mut s = projects
        .iter()
        .take(20)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if projects.len() > 20 {
        s.push_str(&format!(" and {} more", projects.len() - 20));
    }
    s
}
