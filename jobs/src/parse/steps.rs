//! Steps, collect and mail: what a job does on its servers and after.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_inventory::yaml::{Kind, Node};

use super::{COLLECT, Cx, DEFAULT_BODY, DEFAULT_SUBJECT, MAIL, STEP, read_run_as, serve};
use crate::model::*;
use crate::template::Template;

pub(super) fn read_steps(n: &Node, base: &Path, cx: &mut Cx<'_>) -> Vec<Step> {
    let Kind::Seq(items) = &n.kind else {
        cx.d.error(
            n.pos,
            format!("steps: expected a list, found {}", n.type_name()),
        );
        return Vec::new();
    };
    if items.is_empty() {
        cx.d.error(n.pos, "steps: a job needs at least one step");
    }
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        let what = format!("step {}", i + 1);
        let f = s.fields(&what, STEP, cx.d);
        let given: Vec<&str> = ["script", "script_file", "command", "job", "wait_for"]
            .into_iter()
            .filter(|k| f.has(k))
            .collect();
        if given.len() != 1 {
            let msg = if given.is_empty() {
                format!(
                    "{what}: needs one of `script`, `script_file`, `command`, `job` or `wait_for`"
                )
            } else {
                format!(
                    "{what}: give only one of {}",
                    given
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            cx.d.error(s.pos, msg);
            continue;
        }
        let action = match given[0] {
            "script" => f
                .get("script")
                .and_then(|n| cx.shell_template(n, &format!("{what}: script")))
                .map(StepAction::Script),
            "command" => f
                .get("command")
                .and_then(|n| cx.shell_template(n, &format!("{what}: command")))
                .map(StepAction::Command),
            "job" => {
                // What waits matched stays on their server's pass; a job step ends it.
                for w in cx.waits.iter_mut() {
                    w.2 = true;
                }
                f.get("job")
                    .and_then(|n| {
                        serve::job_ref(n, f.get("options"), f.get("import_options"), &what, cx)
                    })
                    .map(StepAction::Job)
            }
            "wait_for" => f
                .get("wait_for")
                .and_then(|n| super::wait::read_wait(n, i + 1, cx))
                .map(|w| StepAction::WaitFor(Box::new(w))),
            _ => f.get("script_file").and_then(|n| {
                let p = n.str(&format!("{what}: script_file"), cx.d)?;
                let path = resolve(base, &p);
                if !path.is_file() {
                    cx.d.error(
                        n.pos,
                        format!("{what}: script_file `{}` does not exist", path.display()),
                    );
                    return None;
                }
                Some(StepAction::ScriptFile(path))
            }),
        };
        let args = f.get("args").map(|a| match &a.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(|x| cx.template(x, &format!("{what}: args")))
                .collect(),
            _ => cx
                .template(a, &format!("{what}: args"))
                .into_iter()
                .collect(),
        });
        let retries = f
            .get("retries")
            .and_then(|n| n.u64(&format!("{what}: retries"), cx.d))
            .unwrap_or(0);
        let step = Step {
            name: f
                .get("name")
                .and_then(|n| n.str(&format!("{what}: name"), cx.d))
                .unwrap_or_else(|| format!("step {}", i + 1)),
            action: match action {
                Some(a) => a,
                None => continue,
            },
            args: args.unwrap_or_default(),
            run_as: f
                .get("run_as")
                .and_then(|n| read_run_as(n, &format!("{what}: run_as"), cx)),
            timeout: f
                .get("timeout")
                .and_then(|n| cx.duration(n, &format!("{what}: timeout"))),
            retries: retries.min(100) as u32,
            retry_delay: f
                .get("retry_delay")
                .and_then(|n| cx.duration(n, &format!("{what}: retry_delay")))
                .unwrap_or(Duration::from_secs(5)),
            allow_failure: f
                .get("allow_failure")
                .and_then(|n| n.bool(&format!("{what}: allow_failure"), cx.d))
                .unwrap_or(false),
        };
        for key in ["options", "import_options"] {
            if !matches!(step.action, StepAction::Job(_)) && f.has(key) {
                cx.d.error(
                    f.get(key).map_or(s.pos, |n| n.pos),
                    format!("{what}: `{key}` goes with `job` (the options of the job it runs)"),
                );
            }
        }
        if matches!(step.action, StepAction::Command(_) | StepAction::WaitFor(_))
            && !step.args.is_empty()
        {
            cx.d.error(
                f.get("args").map_or(s.pos, |n| n.pos),
                format!(
                    "{what}: `args` go with `script` or `script_file`; write them into `command`"
                ),
            );
        }
        out.push(step);
    }
    out
}

/// `p` relative to `base` (the job file's folder), with `.` and `..` taken out as
/// written (`jobs/../scripts/x.sh` is `scripts/x.sh`): plans and errors show the path a
/// person would write.
fn resolve(base: &Path, p: &str) -> PathBuf {
    use std::path::Component;
    let joined = base.join(p);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// How long a server's collect may take when the job does not say (`collect: timeout`).
const DEFAULT_COLLECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

pub(super) fn read_collect(n: &Node, cx: &mut Cx<'_>) -> Option<CollectSpec> {
    let (paths_node, f) = match &n.kind {
        Kind::Seq(_) | Kind::Scalar { .. } => (Some(n), None),
        Kind::Map(_) => {
            let f = n.fields("collect", COLLECT, cx.d);
            (f.require("paths", "collect", cx.d), Some(f))
        }
    };
    let mut paths = Vec::new();
    if let Some(pn) = paths_node {
        let items: Vec<&Node> = match &pn.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![pn],
        };
        for item in items {
            if let Some(t) = cx.template(item, "collect: paths") {
                if !t.source().starts_with('/') && !t.source().starts_with("${") {
                    cx.d.error(
                        item.pos,
                        format!("collect: `{}` must be an absolute path", t.source()),
                    );
                    continue;
                }
                paths.push(t);
            }
        }
    }
    let get = |k: &str| f.as_ref().and_then(|f| f.get(k));
    Some(CollectSpec {
        paths,
        max_file_size: get("max_file_size")
            .and_then(|n| cx.size(n, "collect: max_file_size"))
            .unwrap_or(100 << 20),
        max_total_size: get("max_total_size")
            .and_then(|n| cx.size(n, "collect: max_total_size"))
            .unwrap_or(1 << 30),
        on_failure: get("on_failure")
            .and_then(|n| n.bool("collect: on_failure", cx.d))
            .unwrap_or(true),
        run_as: get("run_as")
            .and_then(|n| n.bool("collect: run_as", cx.d))
            .unwrap_or(false),
        timeout: get("timeout")
            .and_then(|n| match cx.duration(n, "collect: timeout") {
                Some(t) if t.is_zero() => {
                    cx.d.error(n.pos, "collect: timeout: must be more than 0");
                    None
                }
                t => t,
            })
            .unwrap_or(DEFAULT_COLLECT_TIMEOUT),
    })
}

pub(super) fn read_mail(n: &Node, cx: &mut Cx<'_>) -> Option<MailSpec> {
    let f = n.fields("mail", MAIL, cx.d);
    let list = |key: &str, cx: &mut Cx<'_>| -> Vec<Template> {
        match f.get(key) {
            Some(v) => match &v.kind {
                Kind::Seq(items) => items
                    .iter()
                    .filter_map(|x| cx.template(x, &format!("mail: {key}")))
                    .collect(),
                _ => cx
                    .template(v, &format!("mail: {key}"))
                    .into_iter()
                    .collect(),
            },
            None => Vec::new(),
        }
    };
    let to = list("to", cx);
    let cc = list("cc", cx);
    if to.is_empty() && cc.is_empty() {
        cx.d.error(f.pos, "mail: needs at least one recipient in `to`");
    }
    let when = match f.get("when") {
        Some(w) => match w.str("mail: when", cx.d).as_deref() {
            Some("always") | None => MailWhen::Always,
            Some("failure" | "on_failure") => MailWhen::OnFailure,
            Some("success" | "on_success") => MailWhen::OnSuccess,
            Some("never") => MailWhen::Never,
            Some(other) => {
                cx.d.error(
                    w.pos,
                    format!("mail: when `{other}` is not one of: always, failure, success, never"),
                );
                MailWhen::Always
            }
        },
        None => MailWhen::Always,
    };
    Some(MailSpec {
        to,
        cc,
        subject: f
            .get("subject")
            .and_then(|s| cx.template(s, "mail: subject"))
            .unwrap_or_else(|| Template::parse(DEFAULT_SUBJECT).expect("valid default")),
        body: f
            .get("body")
            .and_then(|s| cx.template(s, "mail: body"))
            .unwrap_or_else(|| Template::parse(DEFAULT_BODY).expect("valid default")),
        when,
        max_attachment_size: f
            .get("max_attachment_size")
            .and_then(|s| cx.size(s, "mail: max_attachment_size"))
            .unwrap_or(10 << 20),
        send_empty: f
            .get("send_empty")
            .and_then(|s| s.bool("mail: send_empty", cx.d))
            .unwrap_or(true),
    })
}
