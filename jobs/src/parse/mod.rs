//! Job files: YAML text to a validated [`Job`], with every error at once.

mod serve;
mod steps;
mod transfer;

use steps::{read_collect, read_mail, read_steps};

pub use transfer::load_profiles;

use std::path::Path;
use std::time::Duration;

use ordo_inventory::NodeFilter;
use ordo_inventory::yaml::{self, Diagnostics, Kind, Node, Pos};

use crate::model::*;
use crate::options::check_value;
use crate::template::{Template, Var};
use crate::units::{parse_duration, parse_size};

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
    "kind",
    "transfer",
];
const OPTION: &[&str] = &[
    "description",
    "type",
    "default",
    "required",
    "allowed",
    "regex",
    "secret",
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

/// Which variables a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Expanded for each server: node variables are known.
    Server,
    /// Expanded once for the whole run, while it goes (job steps).
    Run,
    /// Expanded once the run ended: `${execution.status}` is known (mail, follow-ups).
    RunEnd,
}

struct Cx<'a> {
    d: &'a mut Diagnostics,
    options: Vec<String>,
}

impl Cx<'_> {
    /// Parses a template and checks that every `${option.x}` names a declared option.
    fn template(&mut self, n: &Node, what: &str) -> Option<Template> {
        let scope = if what.starts_with("mail") {
            Scope::RunEnd
        } else {
            Scope::Server
        };
        self.template_with(n, what, false, scope)
    }

    fn shell_template(&mut self, n: &Node, what: &str) -> Option<Template> {
        self.template_with(n, what, true, Scope::Server)
    }

    fn template_with(
        &mut self,
        n: &Node,
        what: &str,
        shell: bool,
        scope: Scope,
    ) -> Option<Template> {
        let text = n.str(what, self.d)?;
        let parsed = if shell {
            Template::parse_shell(&text)
        } else {
            Template::parse(&text)
        };
        match parsed {
            Ok(t) => {
                for v in t.vars() {
                    match v {
                        Var::Option(o) if !self.options.contains(o) => {
                            let p = offset_pos(
                                n,
                                &text,
                                t.source()
                                    .find(&format!("option.{o}"))
                                    .map_or(0, |i| i.saturating_sub(2)),
                            );
                            self.d.error(
                                p,
                                format!("{what}: `${{option.{o}}}` refers to an undeclared option"),
                            );
                        }
                        Var::NodeName
                        | Var::NodeHost
                        | Var::NodePort
                        | Var::NodeUser
                        | Var::NodeAttr(_)
                            if scope != Scope::Server =>
                        {
                            self.d.error(n.pos, format!("{what}: `${{{v}}}` is not known here: this covers every server at once"));
                        }
                        Var::ExecutionStatus if scope != Scope::RunEnd => {
                            self.d.error(
                                n.pos,
                                format!(
                                    "{what}: `${{execution.status}}` is only known once the run ended (mail fields, follow-up jobs)"
                                ),
                            );
                        }
                        _ => {}
                    }
                }
                Some(t)
            }
            Err(e) => {
                self.d.error(
                    offset_pos(n, &text, e.offset),
                    format!("{what}: {}", e.message),
                );
                None
            }
        }
    }

    fn duration(&mut self, n: &Node, what: &str) -> Option<Duration> {
        let text = n.str(what, self.d)?;
        parse_duration(&text)
            .map_err(|e| self.d.error(n.pos, format!("{what}: {e}")))
            .ok()
    }

    fn size(&mut self, n: &Node, what: &str) -> Option<u64> {
        let text = n.str(what, self.d)?;
        parse_size(&text)
            .map_err(|e| self.d.error(n.pos, format!("{what}: {e}")))
            .ok()
    }
}

/// The position of a character inside a plain one-line scalar; the scalar's own position
/// otherwise (quotes and block scalars shift columns in ways not worth guessing).
fn offset_pos(n: &Node, text: &str, offset: usize) -> Pos {
    match &n.kind {
        Kind::Scalar { plain: true, .. } if !text.contains('\n') => {
            Pos::new(n.pos.line, n.pos.column + offset)
        }
        Kind::Scalar { plain: false, .. } if !text.contains('\n') => {
            Pos::new(n.pos.line, n.pos.column + 1 + offset)
        }
        _ => n.pos,
    }
}

fn read_job(root: &Node, file: &Path, name: &str, d: &mut Diagnostics) -> Job {
    let f = root.fields("job", JOB, d);
    let mut cx = Cx {
        d,
        options: Vec::new(),
    };
    let options = f
        .get("options")
        .map(|o| read_options(o, &mut cx))
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
            Some("continue") | None => OnFailure::Continue,
            Some("stop") => OnFailure::Stop,
            Some(other) => {
                cx.d.error(
                    n.pos,
                    format!("on_failure: `{other}` is not one of: continue, stop"),
                );
                OnFailure::Continue
            }
        },
        None => OnFailure::Continue,
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
    let archive = f
        .get("archive")
        .and_then(|n| n.bool("archive", cx.d))
        .unwrap_or(true);
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
        on_failure,
        remote_dir,
        steps,
        collect,
        archive,
        mail,
        schedule: serve.schedule,
        watch: serve.watch,
        then: serve.then,
        notify: serve.notify,
        late: serve.late,
        retention: serve.retention,
        transfer,
    }
}

fn read_options(n: &Node, cx: &mut Cx<'_>) -> Vec<JobOption> {
    let mut out = Vec::new();
    for (name, o) in n.entries("options", cx.d) {
        let what = format!("option `{name}`");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            cx.d.error(
                o.pos,
                format!("{what}: names use letters, digits, `_` and `-` only"),
            );
        }
        let f = o.fields(&what, OPTION, cx.d);
        let kind = match f
            .get("type")
            .and_then(|t| t.str(&format!("{what}: type"), cx.d))
            .as_deref()
        {
            None | Some("string") => OptionType::String,
            Some("integer" | "int") => OptionType::Integer,
            Some("boolean" | "bool") => OptionType::Boolean,
            Some(other) => {
                cx.d.error(
                    f.get("type").map_or(o.pos, |t| t.pos),
                    format!("{what}: unknown type `{other}` (expected string, integer or boolean)"),
                );
                OptionType::String
            }
        };
        let regex = f.get("regex").and_then(|r| {
            let text = r.str(&format!("{what}: regex"), cx.d)?;
            regex::Regex::new(&format!("^(?:{text})$"))
                .map_err(|e| {
                    cx.d.error(
                        r.pos,
                        format!(
                            "{what}: invalid regex: {}",
                            e.to_string().lines().last().unwrap_or("")
                        ),
                    )
                })
                .ok()
        });
        let opt = JobOption {
            description: f
                .get("description")
                .and_then(|v| v.str(&format!("{what}: description"), cx.d))
                .unwrap_or_default(),
            kind,
            default: f
                .get("default")
                .and_then(|v| v.str(&format!("{what}: default"), cx.d)),
            required: f
                .get("required")
                .and_then(|v| v.bool(&format!("{what}: required"), cx.d))
                .unwrap_or(false),
            allowed: f
                .get("allowed")
                .map(|v| {
                    v.str_list(&format!("{what}: allowed"), cx.d)
                        .into_iter()
                        .map(|(s, _)| s)
                        .collect()
                })
                .unwrap_or_default(),
            regex,
            secret: f
                .get("secret")
                .and_then(|v| v.bool(&format!("{what}: secret"), cx.d))
                .unwrap_or(false),
            name: name.clone(),
            pos: o.pos,
        };
        if let (Some(def), Some(node)) = (&opt.default, f.get("default"))
            && let Err(e) = check_value(&opt, def)
        {
            cx.d.error(node.pos, format!("{what}: default {e}"));
        }
        out.push(opt);
    }
    out
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
