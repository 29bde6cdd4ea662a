//! Option values from the command line: `--opt NAME=VALUE` for ordinary options; a
//! secret option never goes on a command line (`ps` and the shell's history show it), so
//! it comes from `--opt-file NAME=PATH`, the environment variable `ORDO_OPT_<NAME>`, or a
//! prompt that does not echo.

use std::io::IsTerminal;

use clap::Args;
use ordo_jobs::template::env_name;
use ordo_jobs::{Job, OptionValues};

use super::BadInput;

/// The largest option value read from a file.
const MAX_FILE_VALUE: u64 = 64 * 1024;

#[derive(Args, Debug, Default, Clone)]
pub struct OptArgs {
    /// An option value, NAME=VALUE (repeatable). Not for secret options: give those with
    /// --opt-file, ORDO_OPT_<NAME> or at the prompt.
    #[arg(short = 'o', long = "opt")]
    pub opts: Vec<String>,
    /// An option value read from a file, NAME=PATH (repeatable; one trailing newline is
    /// dropped).
    #[arg(long = "opt-file")]
    pub opt_files: Vec<String>,
}

/// Which run, as `run` and `plan` both take it: the job, its option values, and where and
/// how fast.
#[derive(Args, Debug)]
pub struct JobArgs {
    /// The job's name (its path under the jobs folder, without extension).
    pub job: String,
    #[command(flatten)]
    pub opts: OptArgs,
    /// Narrow the job's targets with another filter.
    #[arg(short, long)]
    pub limit: Option<String>,
    /// Override the job's parallelism (servers at once).
    #[arg(short, long)]
    pub parallelism: Option<usize>,
}

impl OptArgs {
    /// Every value given, by every way, checked against the job's options.
    pub fn resolve(&self, job: &Job) -> Result<OptionValues, BadInput> {
        let given = self.given(job)?;
        ordo_jobs::resolve_options(job, &given).map_err(|errs| BadInput(errs.join("\n")))
    }

    /// The values given (not yet checked): `--opt`, `--opt-file`, `ORDO_OPT_<NAME>`, then a
    /// prompt for required secret options still missing, on a terminal.
    pub fn given(&self, job: &Job) -> Result<Vec<(String, String)>, BadInput> {
        let mut given = Vec::new();
        for (name, value) in pairs("--opt", &self.opts)? {
            if job.options.iter().any(|o| o.name == name && o.secret) {
                return Err(BadInput(format!(
                    "--opt {name}=...: option `{name}` is secret, and a command line shows in `ps` and the shell's history: give it with --opt-file {name}=FILE, the environment variable ORDO_OPT_{}, or at the prompt",
                    env_name(&name)
                )));
            }
            given.push((name, value));
        }
        for (name, path) in pairs("--opt-file", &self.opt_files)? {
            given.push((name.clone(), read_value(&name, &path)?));
        }
        for o in &job.options {
            if given.iter().any(|(k, _)| *k == o.name) {
                continue;
            }
            if let Ok(v) = std::env::var(format!("ORDO_OPT_{}", env_name(&o.name))) {
                given.push((o.name.clone(), v));
            } else if o.secret
                && o.required
                && o.default.is_none()
                && std::io::stdin().is_terminal()
            {
                let v = rpassword::prompt_password(format!(
                    "{} (option `{}`, not shown): ",
                    describe(o),
                    o.name
                ))
                .map_err(|e| BadInput(format!("option `{}`: cannot read it: {e}", o.name)))?;
                given.push((o.name.clone(), v));
            }
        }
        Ok(given)
    }
}

fn describe(o: &ordo_jobs::JobOption) -> &str {
    if o.description.is_empty() {
        "value"
    } else {
        &o.description
    }
}

/// `k=v` pairs of a repeatable flag.
fn pairs(flag: &str, raw: &[String]) -> Result<Vec<(String, String)>, BadInput> {
    raw.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| BadInput(format!("{flag} `{s}`: expected NAME=VALUE")))
        })
        .collect()
}

/// A value from a file: at most [`MAX_FILE_VALUE`] bytes, one trailing newline dropped.
fn read_value(name: &str, path: &str) -> Result<String, BadInput> {
    let bad = |why: String| BadInput(format!("--opt-file {name}={path}: {why}"));
    let bytes = ordo_inventory::read_bounded(std::path::Path::new(path), MAX_FILE_VALUE)
        .map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(text.to_string())
}
