//! Leaving for Rundeck: ordo jobs as a Rundeck YAML job export (what `rd jobs load` and
//! the GUI's import read). What Rundeck has no place for is listed per job.

use super::parts::q;
use crate::model::{Job, NotifyEvent, NotifyTarget, OnFailure, StepAction};
use crate::schedule::Syntax;

/// An ordo filter as a Rundeck one, when it is a conjunction of simple terms.
fn filter(ordo: &str, notes: &mut Vec<String>) -> String {
    let t = ordo.trim();
    if t == "all" || t == "*" {
        return ".*".into();
    }
    let mut tags = Vec::new();
    let mut parts = Vec::new();
    for term in t.split(" and ").map(str::trim) {
        let (neg, term) = match term.strip_prefix("not ").or_else(|| term.strip_prefix('!')) {
            Some(r) => ("!", r.trim()),
            None => ("", term),
        };
        let kv = if let Some(v) = term.strip_prefix("tag:") {
            if neg.is_empty() {
                tags.push(v.to_string());
                continue;
            }
            ("tags".to_string(), v.to_string())
        } else if let Some(v) = term.strip_prefix("name:") {
            ("name".to_string(), v.to_string())
        } else if let Some(v) = term.strip_prefix("host:") {
            ("hostname".to_string(), v.to_string())
        } else if let Some((k, v)) = term.strip_prefix("attr.").and_then(|a| a.split_once('=')) {
            (k.to_string(), v.to_string())
        } else if !term.contains([' ', '(', ')', ',', '|', ':', '=']) {
            ("name".to_string(), term.to_string())
        } else {
            notes.push(format!(
                "targets `{ordo}` have no Rundeck filter: written as a name filter, check it"
            ));
            return format!("name: {ordo}");
        };
        parts.push(format!("{neg}{}: {}", kv.0, kv.1.replace('*', ".*")));
    }
    if !tags.is_empty() {
        parts.insert(0, format!("tags: {}", tags.join("+")));
    }
    parts.join(" ")
}

/// A 5- or 6-field cron (POSIX weekdays) as Quartz; Quartz is kept as it is.
fn quartz(expr: &str, syntax: Syntax, notes: &mut Vec<String>) -> String {
    if syntax == Syntax::Quartz {
        return expr.to_string();
    }
    let f: Vec<&str> = expr.split_whitespace().collect();
    let (sec, rest) = match f.len() {
        6 => (f[0], &f[1..]),
        _ => ("0", &f[..]),
    };
    let [min, hour, dom, month, dow] = rest else {
        notes.push(format!("schedule `{expr}`: not converted"));
        return expr.to_string();
    };
    // Quartz wants one of day-of-month and day-of-week to be `?`; weekdays count from 1 = Sunday.
    let dow = if dow.chars().any(|c| c.is_ascii_digit()) {
        notes.push(format!(
            "schedule `{expr}`: numeric weekdays shifted by one for Quartz (1 = Sunday): check it"
        ));
        dow.chars()
            .map(|c| {
                c.to_digit(10)
                    .map_or(c, |d| char::from_digit(d % 7 + 1, 10).unwrap_or(c))
            })
            .collect()
    } else {
        dow.to_string()
    };
    let (dom, dow) = if dow == "*" {
        (dom.to_string(), "?".to_string())
    } else {
        ("?".to_string(), dow)
    };
    format!("{sec} {min} {hour} {dom} {month} {dow} *")
}

/// The export's text and notes, for `jobs` in their order.
pub fn export_yaml(jobs: &[&Job]) -> (String, Vec<String>) {
    let mut y = String::new();
    let mut notes = Vec::new();
    for job in jobs {
        let mut n = Vec::new();
        let (group, name) = job.name.rsplit_once('/').unwrap_or(("", &job.name));
        y.push_str(&format!("- name: {}\n", q(name)));
        if !group.is_empty() {
            y.push_str(&format!("  group: {}\n", q(group)));
        }
        y.push_str(&format!("  description: {}\n", q(&job.description)));
        y.push_str(&format!(
            "  nodefilters:\n    filter: {}\n",
            q(&filter(job.targets.as_str(), &mut n))
        ));
        y.push_str(&format!(
            "  nodeThreadcount: {}\n  nodeKeepgoing: true\n",
            job.parallelism
        ));
        if let Some(t) = job.timeout {
            y.push_str(&format!("  timeout: \"{}s\"\n", t.as_secs()));
        }
        if !job.options.is_empty() {
            y.push_str("  options:\n");
        }
        for o in &job.options {
            y.push_str(&format!("  - name: {}\n", q(&o.name)));
            if !o.description.is_empty() {
                y.push_str(&format!("    description: {}\n", q(&o.description)));
            }
            if let Some(d) = &o.default {
                y.push_str(&format!("    value: {}\n", q(d)));
            }
            if o.required {
                y.push_str("    required: true\n");
            }
            if o.secret {
                y.push_str("    secure: true\n    valueExposed: false\n");
            }
            if !o.allowed.is_empty() {
                let v: Vec<String> = o.allowed.iter().map(|a| q(a)).collect();
                y.push_str(&format!(
                    "    values: [{}]\n    enforced: true\n",
                    v.join(", ")
                ));
            }
            if let Some(r) = &o.regex {
                let r = r.as_str();
                let r = r
                    .strip_prefix("^(?:")
                    .and_then(|r| r.strip_suffix(")$"))
                    .unwrap_or(r);
                y.push_str(&format!("    regex: {}\n", q(r)));
            }
            if let Some(d) = &o.delimiter {
                y.push_str(&format!("    multivalued: true\n    delimiter: {}\n", q(d)));
            }
            if o.values_from.is_some()
                || o.min.is_some()
                || o.max.is_some()
                || o.kind != crate::model::OptionType::String
            {
                n.push(format!(
                    "option `{}`: its type, bounds or values source have no Rundeck equivalent",
                    o.name
                ));
            }
        }
        let keepgoing = job.on_failure == OnFailure::Continue;
        y.push_str(&format!(
            "  sequence:\n    keepgoing: {keepgoing}\n    strategy: node-first\n    commands:\n"
        ));
        for (i, s) in job.steps.iter().enumerate() {
            let desc = if s.name.is_empty() {
                String::new()
            } else {
                format!("      description: {}\n", q(&s.name))
            };
            let args: Vec<&str> = s.args.iter().map(|a| a.source()).collect();
            match &s.action {
                StepAction::Command(t) => y.push_str(&format!("    - exec: {}\n", q(t.source()))),
                StepAction::Script(t) => {
                    y.push_str(&format!("    - script: {}\n", q(t.source())));
                    if !args.is_empty() {
                        y.push_str(&format!("      args: {}\n", q(&args.join(" "))));
                    }
                }
                StepAction::ScriptFile(p) => {
                    y.push_str(&format!(
                        "    - scriptfile: {}\n",
                        q(&p.display().to_string())
                    ));
                    if !args.is_empty() {
                        y.push_str(&format!("      args: {}\n", q(&args.join(" "))));
                    }
                }
                StepAction::WaitFor(w) => {
                    let (source, start) = match &w.source {
                        crate::WaitSource::File(f) => (
                            format!(
                                "tail -n {} -F -- {}",
                                if w.from == crate::WaitFrom::Start {
                                    "+1"
                                } else {
                                    "0"
                                },
                                sh_word(f.source())
                            ),
                            "",
                        ),
                        crate::WaitSource::Command(c) => (c.source().to_string(), "( "),
                    };
                    let end = if start.is_empty() { "" } else { " )" };
                    let line = format!(
                        "timeout {} {start}{source}{end} | grep -m 1 -E -- {}",
                        sh_word(w.within.source()),
                        sh_word(w.pattern.source())
                    );
                    y.push_str(&format!("    - exec: {}\n", q(&line)));
                    n.push(format!("step {}: wait_for has no Rundeck equivalent: exported as a `timeout ... | grep -m 1 -E` command (grep's pattern syntax, no named groups, no ${{step.N.match}})", i + 1));
                }
                StepAction::Job(r) => {
                    let (g, jn) = r.job.rsplit_once('/').unwrap_or(("", &r.job));
                    let a: Vec<String> = r
                        .options
                        .iter()
                        .map(|(k, v)| format!("-{k} {}", v.source()))
                        .collect();
                    y.push_str(&format!(
                        "    - jobref:\n        group: {}\n        name: {}\n        args: {}\n",
                        q(g),
                        q(jn),
                        q(&a.join(" "))
                    ));
                    if r.import_options {
                        y.push_str("        importOptions: true\n");
                    }
                }
            }
            y.push_str(&desc);
            if s.run_as.is_some() || s.retries > 0 || s.timeout.is_some() || s.allow_failure {
                n.push(format!("step {}: its run_as, retries, timeout or allow_failure have no Rundeck step equivalent", i + 1));
            }
        }
        if let Some(sc) = &job.schedule {
            let cron = sc
                .crons
                .first()
                .map(|c| quartz(&c.text, sc.syntax, &mut n))
                .unwrap_or_default();
            y.push_str(&format!(
                "  schedule:\n    crontab: {}\n  scheduleEnabled: {}\n",
                q(&cron),
                sc.enabled
            ));
            if sc.crons.len() > 1 {
                n.push("several cron expressions: only the first is exported".into());
            }
        }
        // Per event: the mail recipients (one list, attach if any asks) and the URLs.
        let mut events: Vec<(&str, Vec<String>, bool, Vec<String>)> =
            ["onstart", "onsuccess", "onfailure"]
                .into_iter()
                .map(|k| (k, Vec::new(), false, Vec::new()))
                .collect();
        for nt in &job.notify {
            for e in &nt.on {
                let slot = match e {
                    NotifyEvent::Start => 0,
                    NotifyEvent::Success => 1,
                    NotifyEvent::Failure => 2,
                    NotifyEvent::Late => {
                        n.push("a `late` notification has no Rundeck equivalent here".into());
                        continue;
                    }
                };
                match &nt.target {
                    NotifyTarget::Mail { to, attach_log } => {
                        events[slot].1.extend(to.iter().cloned());
                        events[slot].2 |= *attach_log;
                    }
                    NotifyTarget::Webhook { url, .. } => events[slot].3.push(url.clone()),
                }
            }
        }
        if events
            .iter()
            .any(|(_, to, _, urls)| !to.is_empty() || !urls.is_empty())
        {
            y.push_str("  notification:\n");
            for (key, to, attach, urls) in &events {
                if to.is_empty() && urls.is_empty() {
                    continue;
                }
                y.push_str(&format!("    {key}:\n"));
                if !to.is_empty() {
                    y.push_str(&format!(
                        "      email:\n        recipients: {}\n        attachLog: {attach}\n",
                        q(&to.join(","))
                    ));
                }
                if !urls.is_empty() {
                    y.push_str(&format!("      urls: {}\n", q(&urls.join(","))));
                }
            }
        }
        for x in [
            job.watch.is_some().then_some("its file trigger (watch)"),
            job.collect.is_some().then_some("collect"),
            job.mail.is_some().then_some("its mail"),
            job.transfer.is_some().then_some("its transfer"),
        ]
        .into_iter()
        .flatten()
        {
            n.push(format!("{x} has no Rundeck equivalent: left out"));
        }
        notes.extend(n.into_iter().map(|m| format!("{}: {m}", job.name)));
    }
    (y, notes)
}

/// `s` as one single-quoted shell word (a `'` in it closes, escapes and reopens).
fn sh_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
