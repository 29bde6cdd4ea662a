use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ordo_inventory::{NodeFilter, Pos};

use crate::template::Template;

pub use crate::option_model::{JobOption, OptionType, ValuesFrom};
pub use crate::wait_model::{WaitFor, WaitFrom, WaitSource};

/// A validated job definition.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name: its path under the jobs folder, without extension (`vip/collect`).
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub targets: NodeFilter,
    pub options: Vec<JobOption>,
    pub run_as: Option<RunAs>,
    pub workdir: Option<Template>,
    pub env: Vec<(String, Template)>,
    pub timeout: Option<Duration>,
    pub parallelism: usize,
    /// Whether the other servers go on after one failed.
    pub on_failure: OnFailure,
    /// Whether the member jobs (job steps) after a failed one still run: `on_failure` as
    /// written, `stop` when it is not (a group stops at its first failed member, as
    /// Rundeck's sequence without keepgoing does).
    pub members_on_failure: OnFailure,
    /// Where scripts are uploaded on the server; a per-run folder is made inside.
    pub remote_dir: String,
    pub steps: Vec<Step>,
    pub collect: Option<CollectSpec>,
    pub archive: bool,
    /// `archive: {encrypt: [keys]}`: the archive is encrypted to these keys (and every
    /// backup key), with where each is named.
    pub encrypt: Vec<(String, Pos)>,
    pub mail: Option<MailSpec>,
    /// When `controller serve` fires the job by itself.
    pub schedule: Option<crate::Schedule>,
    /// Fire the job when a matching file appears in a folder on the controller.
    pub watch: Option<Watch>,
    /// Follow-up jobs, by outcome.
    pub then: Chain,
    /// Who hears about which events of the job's runs.
    pub notify: Vec<Notify>,
    /// When a run counts as late (the `late` event).
    pub late: Option<Late>,
    /// How much history of this job is kept.
    pub retention: Option<Retention>,
    /// `kind: transfer`: what the scenario sends or fetches (no steps then).
    pub transfer: Option<crate::transfer::TransferSpec>,
    /// A test job (a campaign's test, a test flow): its runs alert only the accounts that
    /// ask for test runs' alerts.
    pub test: bool,
}

impl Job {
    /// Every other job this one starts (job steps and follow-ups), with where it is named.
    pub fn references(&self) -> Vec<&JobRef> {
        let steps = self.steps.iter().filter_map(|s| match &s.action {
            StepAction::Job(r) => Some(r),
            _ => None,
        });
        steps
            .chain(self.then.on_success.iter())
            .chain(self.then.on_failure.iter())
            .chain(self.then.always.iter())
            .collect()
    }

    /// True when no step runs on servers (only job steps): no targets are needed.
    pub fn runs_on_servers(&self) -> bool {
        self.steps
            .iter()
            .any(|s| !matches!(s.action, StepAction::Job(_)))
    }
}

/// Another job started by this one, with option values (templates over this run).
#[derive(Debug, Clone)]
pub struct JobRef {
    pub job: String,
    pub options: Vec<(String, Template)>,
    /// The other job also gets this run's values of the options it declares under the
    /// same name (Rundeck's `importOptions`); `options` win.
    pub import_options: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone, Default)]
pub struct Chain {
    pub on_success: Vec<JobRef>,
    pub on_failure: Vec<JobRef>,
    pub always: Vec<JobRef>,
}

/// A folder watched on the controller.
#[derive(Debug, Clone)]
pub struct Watch {
    pub path: PathBuf,
    /// Wildcard on the file name (`*.csv`).
    pub pattern: String,
    pub matcher: globset::GlobMatcher,
    pub recursive: bool,
    /// The job option that receives the file's full path (none for transfer scenarios,
    /// which take every matching file).
    pub option: Option<String>,
    /// Scan every this often instead of relying on inotify (network filesystems).
    pub poll: Option<Duration>,
    /// A file fires once its size and modification time stayed the same this long.
    pub settle: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotifyEvent {
    Start,
    Success,
    Failure,
    Late,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 4] = [
        NotifyEvent::Start,
        NotifyEvent::Success,
        NotifyEvent::Failure,
        NotifyEvent::Late,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Start => "start",
            NotifyEvent::Success => "success",
            NotifyEvent::Failure => "failure",
            NotifyEvent::Late => "late",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub enum NotifyTarget {
    Mail {
        to: Vec<String>,
        /// Attach the run's output (every server's lines) as a text file.
        attach_log: bool,
    },
    Webhook {
        url: String,
        headers: Vec<(String, String)>,
        timeout: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct Notify {
    pub on: Vec<NotifyEvent>,
    pub target: NotifyTarget,
}

/// A run is late past a fixed duration, or past a multiple of its usual duration (the
/// mean of the last successful runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Late {
    After(Duration),
    Factor(f64),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_count: Option<u64>,
}

/// How to become the run-as user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAsMethod {
    /// `sudo -n -u USER` (the default).
    Sudo,
    /// `su - USER` (the login user must be root).
    Su,
    /// `sudo -n su - USER`, as the seed script does.
    SudoSu,
}

impl RunAsMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            RunAsMethod::Sudo => "sudo",
            RunAsMethod::Su => "su",
            RunAsMethod::SudoSu => "sudo-su",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sudo" => Some(RunAsMethod::Sudo),
            "su" => Some(RunAsMethod::Su),
            "sudo-su" | "sudo_su" => Some(RunAsMethod::SudoSu),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunAs {
    /// Empty after expansion means "the login user, no switch".
    pub user: Template,
    pub method: RunAsMethod,
}

/// What happens to the run when a server fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Every other server still runs (the default).
    Continue,
    /// No new server is started after the first failure.
    Stop,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Continue => "continue",
            OnFailure::Stop => "stop",
        }
    }
}

#[derive(Debug, Clone)]
pub enum StepAction {
    /// Script text, uploaded and run (its shebang decides the interpreter; `sh` otherwise).
    Script(Template),
    /// A script file read at run time (path resolved against the job file's folder).
    ScriptFile(PathBuf),
    /// A shell command line, run with `sh -c`.
    Command(Template),
    /// Another job, run once (on its own targets) when every server finished the steps
    /// before this one.
    Job(JobRef),
    /// Waits on each server for a line matching a pattern, in a file or a command's output.
    WaitFor(Box<WaitFor>),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub action: StepAction,
    pub args: Vec<Template>,
    pub run_as: Option<RunAs>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    /// A failure of this step does not fail the server.
    pub allow_failure: bool,
}

impl Step {
    /// `step 2`, or `step 2 (backup)` when the step has a name of its own.
    pub fn label(&self, index: usize) -> String {
        let number = format!("step {}", index + 1);
        if self.name.is_empty() || self.name == number {
            number
        } else {
            format!("{number} ({})", self.name)
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.action {
            StepAction::Script(_) => "script",
            StepAction::ScriptFile(_) => "script_file",
            StepAction::Command(_) => "command",
            StepAction::Job(_) => "job",
            StepAction::WaitFor(_) => "wait_for",
        }
    }
}

/// Files fetched from each server after its steps.
#[derive(Debug, Clone)]
pub struct CollectSpec {
    pub paths: Vec<Template>,
    pub max_file_size: u64,
    pub max_total_size: u64,
    /// Collect even when a step failed (the default: yes, results help diagnose).
    pub on_failure: bool,
    /// Read the files as the job's run-as user; by default they are read as the login
    /// user, as the seed's `scp` and Ansible's `fetch` do (one user switch fewer).
    pub run_as: bool,
    /// How long one server's collect may take (1 h by default); after it the collect is
    /// stopped on that server and the files received whole are kept.
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailWhen {
    Always,
    OnFailure,
    OnSuccess,
    Never,
}

impl MailWhen {
    /// As written in a job file.
    pub fn as_str(self) -> &'static str {
        match self {
            MailWhen::Always => "always",
            MailWhen::OnFailure => "failure",
            MailWhen::OnSuccess => "success",
            MailWhen::Never => "never",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MailSpec {
    pub to: Vec<Template>,
    pub cc: Vec<Template>,
    pub subject: Template,
    pub body: Template,
    pub when: MailWhen,
    /// Larger archives are not attached; the mail says where they are.
    pub max_attachment_size: u64,
    /// Send even when nothing was collected.
    pub send_empty: bool,
}

/// The options of a run, validated; secrets are listed so they can be masked.
#[derive(Debug, Clone, Default)]
pub struct OptionValues {
    pub values: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    /// The values of multi-valued secrets, each masked on its own too.
    pub secret_parts: Vec<String>,
}

impl OptionValues {
    /// The values for display and storage: secrets replaced by `****`.
    pub fn masked(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .map(|(k, v)| {
                let shown = if self.secrets.contains(k) {
                    "****".to_string()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect()
    }

    /// Replaces every secret value in `text` by `****`, in the forms a log may show it:
    /// as given, line by line (a key), each value of a multi-valued secret, URL-encoded,
    /// regex-escaped (a `wait_for` pattern), shell-quoted (`'\''` for a quote) and
    /// JSON-escaped; longest first. A secret of 1 or 2 characters is masked where it
    /// stands alone (not inside a longer word), so that masking it leaves the log
    /// readable.
    pub fn mask(&self, text: &str) -> String {
        let mut forms: Vec<String> = Vec::new();
        let whole = self
            .secrets
            .iter()
            .filter_map(|k| self.values.get(k))
            .filter(|v| !v.is_empty());
        // A secret of several lines (a key) shows line by line in a log.
        let lines = whole
            .clone()
            .flat_map(|v| {
                v.lines()
                    .filter(|l| l.trim().len() >= 3)
                    .map(str::to_string)
            })
            .collect::<Vec<_>>();
        let all = whole
            .cloned()
            .chain(lines)
            .chain(self.secret_parts.iter().cloned())
            .collect::<Vec<_>>();
        for v in &all {
            forms.push(v.clone());
            forms.push(url_encoded(v));
            forms.push(regex::escape(v));
            forms.push(v.replace('\'', r"'\''"));
            forms.push(
                v.replace('\\', r"\\")
                    .replace('"', r#"\""#)
                    .replace('\n', r"\n")
                    .replace('\t', r"\t"),
            );
        }
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        forms.dedup();
        let mut out = text.to_string();
        for f in &forms {
            out = if f.chars().count() >= 3 {
                out.replace(f.as_str(), "****")
            } else {
                replace_alone(&out, f)
            };
        }
        out
    }
}

/// `v` percent-encoded as in a URL (a secret in a query string that a tool logs).
fn url_encoded(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `text` with each occurrence of `needle` that is not part of a longer word (no letter
/// or digit just before or after it) replaced by `****`.
fn replace_alone(text: &str, needle: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(needle) {
        let before = if i > 0 {
            rest[..i].chars().last()
        } else {
            out.chars().last()
        };
        let after = rest[i + needle.len()..].chars().next();
        out.push_str(&rest[..i]);
        if word(before) || word(after) {
            out.push_str(needle);
        } else {
            out.push_str("****");
        }
        rest = &rest[i + needle.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(v: &str) -> OptionValues {
        OptionValues {
            values: BTreeMap::from([("pw".to_string(), v.to_string())]),
            secrets: vec!["pw".into()],
            ..OptionValues::default()
        }
    }

    #[test]
    fn a_secret_is_masked_in_every_form_a_log_shows_it() {
        let s = secret("p4ss.w*rd'x");
        let regex = regex::escape("p4ss.w*rd'x");
        for text in [
            "raw p4ss.w*rd'x".to_string(),
            format!("no line matched /{regex}/"),
            r"echo 'p4ss.w*rd'\''x'".to_string(),
        ] {
            let m = s.mask(&text);
            assert!(!m.contains("p4ss"), "{text} -> {m}");
        }
        assert_eq!(
            secret(r#"a"b\c"#).mask(r#"{"v":"a\"b\\c"}"#),
            r#"{"v":"****"}"#
        );
        // Short secrets: masked where they stand alone, not inside other words.
        let s = secret("42");
        assert_eq!(s.mask("code 42, not 1420"), "code ****, not 1420");
        assert_eq!(secret("abc").mask("xabcx"), "x****x");
        // A key's lines one by one, a value URL-encoded.
        let key = secret("-----BEGIN KEY-----\nMIIBVwIBADANBgkq\n-----END KEY-----");
        assert_eq!(key.mask("line: MIIBVwIBADANBgkq"), "line: ****");
        assert_eq!(
            secret("a b&c").mask("GET /x?pw=a%20b%26c"),
            "GET /x?pw=****"
        );
    }
}
