use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ordo_inventory::{NodeFilter, Pos};

use crate::template::Template;

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
    pub on_failure: OnFailure,
    /// Where scripts are uploaded on the server; a per-run folder is made inside.
    pub remote_dir: String,
    pub steps: Vec<Step>,
    pub collect: Option<CollectSpec>,
    pub archive: bool,
    pub mail: Option<MailSpec>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionType {
    String,
    Integer,
    Boolean,
}

impl OptionType {
    pub fn as_str(self) -> &'static str {
        match self {
            OptionType::String => "string",
            OptionType::Integer => "integer",
            OptionType::Boolean => "boolean",
        }
    }
}

/// A typed job parameter.
#[derive(Debug, Clone)]
pub struct JobOption {
    pub name: String,
    pub description: String,
    pub kind: OptionType,
    pub default: Option<String>,
    pub required: bool,
    pub allowed: Vec<String>,
    pub regex: Option<regex::Regex>,
    pub secret: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub enum StepAction {
    /// Script text, uploaded and run (its shebang decides the interpreter; `sh` otherwise).
    Script(Template),
    /// A script file read at run time (path resolved against the job file's folder).
    ScriptFile(PathBuf),
    /// A shell command line, run with `sh -c`.
    Command(Template),
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
    pub fn kind(&self) -> &'static str {
        match self.action {
            StepAction::Script(_) => "script",
            StepAction::ScriptFile(_) => "script_file",
            StepAction::Command(_) => "command",
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailWhen {
    Always,
    OnFailure,
    OnSuccess,
    Never,
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

    /// Replaces every secret value in `text` by `****`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for k in &self.secrets {
            if let Some(v) = self.values.get(k).filter(|v| v.len() >= 3) {
                out = out.replace(v.as_str(), "****");
            }
        }
        out
    }
}
