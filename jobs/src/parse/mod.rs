//! Job files: YAML text to a validated [`Job`], with every error at once.

mod context;
mod options;
mod serve;
mod steps;
mod transfer;
mod wait;

use context::{Cx, Scope, offset_pos};
use options::read_options;
use steps::{read_collect, read_mail, read_steps};

pub use transfer::load_profiles;

use std::path::Path;
use std::time::Duration;

use ordo_inventory::NodeFilter;
use ordo_inventory::yaml::{self, Diagnostics, Kind, Node};

use crate::model::*;
use crate::template::Template;

const JOB: &[&str] = &[
    "description",
    "targets",
    "options",
    "run_as",
    "workdir",
    "env",
    "timeout",
    "parallelism",
    "on_failure",
    "remote_dir",
    "steps",
    "collect",
    "archive",
    "mail",
    "schedule",
    "watch",
    "then",
    "notify",
    "late",
    "retention",
    "test",
    "kind",
    "transfer",
];
const STEP: &[&str] = &[
    "name",
    "script",
    "script_file",
    "command",
    "job",
    "options",
    "args",
    "run_as",
    "timeout",
    "retries",
    "retry_delay",
    "allow_failure",
    "wait_for",
    "import_options",
];
const RUN_AS: &[&str] = &["user", "method"];
const COLLECT: &[&str] = &[
    "paths",
    "max_file_size",
    "max_total_size",
    "on_failure",
    "run_as",
    "timeout",
];
const MAIL: &[&str] = &[
    "to",
    "cc",
    "subject",
    "body",
    "when",
    "max_attachment_size",
    "send_empty",
];

const DEFAULT_SUBJECT: &str = "[ordo] ${job.name} ${execution.status} (${execution.id})";
const DEFAULT_BODY: &str = "Job ${job.name}, execution ${execution.id}: ${execution.status}.\n\nThe per-server summary and the collected files are in the attached archive.\n";

/// Parses one job file. `name` is the job's name (its path under the jobs folder).
pub fn parse_job(text: &str, file: &Path, name: &str) -> Result<Job, Diagnostics> {
    let mut d = Diagnostics::new(file);
    let job = yaml::parse(text, &mut d).map(|root| read_job(&root, file, name, &mut d));
    d.sort();
    match job {
        Some(job) if d.is_empty() => Ok(job),
        _ => Err(d),
    }
}

fn read_job(root: &Node, file: &Path, name: &str, d: &mut Diagnostics) -> Job {
    let f = root.fields("job", JOB, d);
    let mut cx = Cx {
        d,
        options: Vec::new(),
        waits: Vec::new(),
    };
    let options = f
        .get("options")
        .map(|o| read_options(o, &mut cx, file.parent().unwrap_or(Path::new("."))))
        .unwrap_or_default();
    cx.options = options.iter().map(|o| o.name.clone()).collect();

    let description = f
        .get("description")
        .and_then(|n| n.str("description", cx.d))
        .unwrap_or_default();
    let targets = match f.get("targets") {
        Some(n) => n
            .str("targets", cx.d)
            .and_then(|t| match NodeFilter::parse(&t) {
                Ok(filter) => Some(filter),
                Err(e) => {
                    let p = offset_pos(n, &t, e.column - 1);
                    cx.d.error(p, format!("targets: {}", e.message));
                    None
                }
            }),
        None => None,
    };
    let run_as = f
        .get("run_as")
        .and_then(|n| read_run_as(n, "run_as", &mut cx));
    let workdir = f.get("workdir").and_then(|n| cx.template(n, "workdir"));
    let env = f
        .get("env")
        .map(|n| read_env(n, &mut cx))
        .unwrap_or_default();
    let timeout = f.get("timeout").and_then(|n| cx.duration(n, "timeout"));
    let parallelism = f
        .get("parallelism")
        .and_then(|n| n.u64("parallelism", cx.d))
        .unwrap_or(32);
    if parallelism == 0 {
        cx.d.error(
            f.get("parallelism").map_or(f.pos, |n| n.pos),
            "parallelism: must be at least 1",
        );
    }
    let on_failure = match f.get("on_failure") {
        Some(n) => match n.str("on_failure", cx.d).as_deref() {
            Some("continue") => Some(OnFailure::Continue),
            Some("stop") => Some(OnFailure::Stop),
            None => None,
            Some(other) => {
                cx.d.error(
                    n.pos,
                    format!("on_failure: `{other}` is not one of: continue, stop"),
                );
                None
            }
        },
        None => None,
    };
    let remote_dir = f
        .get("remote_dir")
        .and_then(|n| n.str("remote_dir", cx.d))
        .unwrap_or_else(|| "/tmp".into());
    if !remote_dir.starts_with('/') {
        cx.d.error(
            f.get("remote_dir").map_or(f.pos, |n| n.pos),
            format!("remote_dir: `{remote_dir}` must be an absolute path"),
        );
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let is_transfer = match f.get("kind") {
        Some(k) => match k.str("kind", cx.d).as_deref() {
            Some("transfer") => true,
            Some("command") | None => false,
            Some(other) => {
                cx.d.error(
                    k.pos,
                    format!("kind `{other}` is not one of: command, transfer"),
                );
                false
            }
        },
        None => false,
    };
    let transfer = if is_transfer {
        if let Some(st) = f.get("steps") {
            cx.d.error(
                st.pos,
                "steps: a transfer job has no steps (its `transfer:` section says what it does)",
            );
        }
        match f.require("transfer", "job (kind: transfer)", cx.d) {
            Some(t) => transfer::read_transfer(t, &mut cx),
            None => None,
        }
    } else {
        if let Some(t) = f.get("transfer") {
            cx.d.error(t.pos, "transfer: only with `kind: transfer`");
        }
        None
    };
    let steps = if is_transfer {
        Vec::new()
    } else {
        match f.require("steps", "job", cx.d) {
            Some(n) => read_steps(n, base, &mut cx),
            None => Vec::new(),
        }
    };
    let collect = f.get("collect").and_then(|n| read_collect(n, &mut cx));
    let (archive, encrypt) = match f.get("archive") {
        Some(n) if matches!(n.kind, Kind::Map(_)) => {
            let g = n.fields("archive", &["encrypt"], cx.d);
            let keys = g
                .require("encrypt", "archive", cx.d)
                .map(|k| k.str_list("archive: encrypt", cx.d))
                .unwrap_or_default();
            if keys.is_empty() && g.has("encrypt") {
                cx.d.error(
                    n.pos,
                    "archive: encrypt: name at least one key (controller keys list)",
                );
            }
            (true, keys)
        }
        Some(n) => (n.bool("archive", cx.d).unwrap_or(true), Vec::new()),
        None => (true, Vec::new()),
    };
    let mail = f.get("mail").and_then(|n| read_mail(n, &mut cx));
    if !f.has("targets")
        && steps
            .iter()
            .any(|s| !matches!(s.action, StepAction::Job(_)))
    {
        cx.d.error(
            f.pos,
            "job: missing `targets` (which servers the steps run on)",
        );
    }
    let mut serve = serve::read(&f, &options, &mut cx);
    let transfer = transfer.map(|(spec, watch)| {
        // A sending scenario watches its source folder unless told otherwise.
        if watch && serve.watch.is_none() && spec.direction == crate::transfer::Direction::Send {
            serve.watch = Some(Watch {
                path: spec.source.clone(),
                pattern: spec.pattern.clone(),
                matcher: spec.matcher.clone(),
                recursive: false,
                option: None,
                poll: None,
                settle: Duration::from_secs(2),
            });
        }
        spec
    });

    Job {
        name: name.to_string(),
        file: file.to_path_buf(),
        description,
        targets: targets.unwrap_or_else(NodeFilter::all),
        options,
        run_as,
        workdir,
        env,
        timeout,
        parallelism: parallelism.max(1) as usize,
        on_failure: on_failure.unwrap_or(OnFailure::Continue),
        members_on_failure: on_failure.unwrap_or(OnFailure::Stop),
        remote_dir,
        steps,
        collect,
        archive,
        encrypt,
        mail,
        schedule: serve.schedule,
        watch: serve.watch,
        then: serve.then,
        notify: serve.notify,
        late: serve.late,
        retention: serve.retention,
        transfer,
        test: f
            .get("test")
            .and_then(|n| n.bool("test", cx.d))
            .unwrap_or(false),
    }
}

fn read_run_as(n: &Node, what: &str, cx: &mut Cx<'_>) -> Option<RunAs> {
    if let Kind::Scalar { .. } = n.kind {
        return Some(RunAs {
            user: cx.template(n, what)?,
            method: RunAsMethod::Sudo,
        });
    }
    let f = n.fields(what, RUN_AS, cx.d);
    let user = f
        .require("user", what, cx.d)
        .and_then(|u| cx.template(u, &format!("{what}: user")))?;
    let method = match f.get("method") {
        Some(m) => {
            let s = m.str(&format!("{what}: method"), cx.d)?;
            RunAsMethod::parse(&s).or_else(|| {
                cx.d.error(
                    m.pos,
                    format!("{what}: method `{s}` is not one of: sudo, su, sudo-su"),
                );
                None
            })?
        }
        None => RunAsMethod::Sudo,
    };
    Some(RunAs { user, method })
}

fn read_env(n: &Node, cx: &mut Cx<'_>) -> Vec<(String, Template)> {
    let mut out = Vec::new();
    for (k, v) in n.entries("env", cx.d) {
        if k.is_empty()
            || k.starts_with(|c: char| c.is_ascii_digit())
            || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            cx.d.error(v.pos, format!("env: `{k}` is not a valid variable name"));
            continue;
        }
        if let Some(t) = cx.template(v, &format!("env `{k}`")) {
            out.push((k, t));
        }
    }
    out
}
