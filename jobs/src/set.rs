//! Every job of a folder at once, with the checks that need them all: references to other
//! jobs (job steps, follow-ups) exist, their options are known, and no chain loops back.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::model::{Job, JobRef};
use crate::{Diagnostics, JobsError, job_files, parse_job};

/// The loaded jobs, by name.
#[derive(Debug, Clone, Default)]
pub struct JobSet {
    pub jobs: BTreeMap<String, Arc<Job>>,
}

impl JobSet {
    pub fn get(&self, name: &str) -> Option<&Arc<Job>> {
        self.jobs.get(name)
    }
}

/// Why a job folder was refused: every file's problems, in file order.
#[derive(Debug)]
pub enum SetError {
    Io(JobsError),
    Invalid(Vec<Diagnostics>),
}

impl std::fmt::Display for SetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetError::Io(e) => write!(f, "{e}"),
            SetError::Invalid(ds) => {
                let n: usize = ds.iter().map(|d| d.len()).sum();
                for d in ds {
                    writeln!(f, "{d}")?;
                }
                write!(f, "{n} error(s) in the jobs")
            }
        }
    }
}

impl std::error::Error for SetError {}

/// Loads and checks every job under `dir`; all or nothing.
pub fn load_all(dir: &Path) -> Result<JobSet, SetError> {
    let files = job_files(dir).map_err(SetError::Io)?;
    let mut jobs = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, path) in files {
        let text = ordo_inventory::read_config(&path).map_err(|source| {
            SetError::Io(JobsError::Read {
                path: path.clone(),
                source,
            })
        })?;
        match parse_job(&text, &path, &name) {
            Ok(job) => {
                jobs.insert(name, Arc::new(job));
            }
            Err(d) => problems.push(d),
        }
    }
    let set = JobSet { jobs };
    problems.extend(check_references(&set));
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(SetError::Invalid(problems))
    }
}

/// Unknown jobs, unknown options, and cycles, reported at the reference.
pub fn check_references(set: &JobSet) -> Vec<Diagnostics> {
    let mut out = Vec::new();
    for (name, job) in &set.jobs {
        let mut d = Diagnostics::new(&job.file);
        for r in job.references() {
            match set.get(&r.job) {
                None => d.error(
                    r.pos,
                    format!(
                        "job `{}` does not exist{}",
                        r.job,
                        closest(&r.job, set)
                            .map(|c| format!(" (did you mean `{c}`?)"))
                            .unwrap_or_default()
                    ),
                ),
                Some(target) => {
                    for (k, _) in &r.options {
                        if !target.options.iter().any(|o| &o.name == k) {
                            d.error(r.pos, format!("job `{}` has no option `{k}`", r.job));
                        }
                    }
                }
            }
        }
        if let Some(cycle) = find_cycle(set, name) {
            let first = job
                .references()
                .into_iter()
                .find(|r| r.job == cycle[1])
                .map(|r| r.pos)
                .unwrap_or_default();
            d.error(
                first,
                format!("jobs start each other in a cycle: {}", cycle.join(" -> ")),
            );
        }
        if !d.is_empty() {
            out.push(d);
        }
    }
    out
}

fn closest<'a>(name: &str, set: &'a JobSet) -> Option<&'a str> {
    let known: Vec<&str> = set.jobs.keys().map(String::as_str).collect();
    ordo_inventory::yaml::closest(name, &known)
}

/// A path `start -> ... -> start`, if `start` can reach itself.
fn find_cycle(set: &JobSet, start: &str) -> Option<Vec<String>> {
    fn walk(
        set: &JobSet,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut Vec<String>,
    ) -> bool {
        let Some(job) = set.get(at) else { return false };
        let refs: Vec<&JobRef> = job.references();
        for r in refs {
            if r.job == start {
                path.push(r.job.clone());
                return true;
            }
            if seen.contains(&r.job) {
                continue;
            }
            seen.push(r.job.clone());
            path.push(r.job.clone());
            if walk(set, &r.job, start, path, seen) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = Vec::new();
    walk(set, start, start, &mut path, &mut seen).then_some(path)
}
