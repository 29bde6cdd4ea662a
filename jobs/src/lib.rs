//! ordo job definitions: YAML files turned into validated [`Job`]s, every error reported
//! with file, line and column; option values checked; `${...}` templates expanded.

mod model;
mod option_model;
mod options;
mod parse;
pub mod rundeck;
pub mod schedule;
mod set;
pub mod shell_text;
pub mod template;
pub mod transfer;
pub mod units;
mod wait_model;

use std::path::{Path, PathBuf};

pub use model::*;
pub use options::{OptionError, OptionErrors, check_value, option_values, resolve_options};
pub use ordo_inventory::{Diagnostic, Diagnostics, Pos};
pub use parse::{load_profiles, parse_job};
pub use schedule::{Missed, Overlap, Schedule};
pub use set::{JobSet, SetError, check_references, load_all};
pub use template::{Context, ShellVars, Template};

/// Why jobs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: a job's name (its path under the jobs folder) may not hold `\\`, `%`, `?`, `#` or a control character: rename it"
    )]
    BadName { path: PathBuf },
    #[error("no job named `{name}` in {dir} (known jobs: {known})")]
    NotFound {
        name: String,
        dir: PathBuf,
        known: String,
    },
}

/// Every job file under `dir` (`*.yaml`, `*.yml`, recursively), named by its relative path
/// without extension.
pub fn job_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, JobsError> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), JobsError> {
    let rd = std::fs::read_dir(dir).map_err(|source| JobsError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in rd.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            let rel = path.strip_prefix(root).unwrap_or(&path).with_extension("");
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            // Names are paths of the console's and the API's URLs: nothing a browser
            // would read as something else.
            if name
                .chars()
                .any(|c| matches!(c, '\\' | '%' | '?' | '#') || c.is_control())
            {
                return Err(JobsError::BadName { path });
            }
            out.push((name, path));
        }
    }
    Ok(())
}

/// Loads one job by name from `dir`.
pub fn load_job(dir: &Path, name: &str) -> Result<Result<Job, Diagnostics>, JobsError> {
    let files = job_files(dir)?;
    let Some((name, path)) = files.iter().find(|(n, _)| n == name) else {
        return Err(JobsError::NotFound {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            known: files
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let text = ordo_inventory::read_config(path).map_err(|source| JobsError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(parse_job(&text, path, name))
}
