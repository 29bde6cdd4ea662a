//! The project: its settings (`ordo.yaml`), inventory, jobs and transfer profiles read and
//! checked once, and the run environment built from them ([`Env`]). Every other module
//! may use this one; it uses only the store below it.

mod env;
mod read;
mod read_alerts;
mod read_serve;
pub mod settings;

use std::collections::BTreeMap;
use std::sync::Arc;

use ordo_inventory::Inventory;
use ordo_jobs::transfer::Profile;
use ordo_jobs::{Job, JobSet};

pub use env::{Env, Loaded};
pub use settings::{
    AuthSettings, CONFIG_FILE, MailConfig, ProjectConfig, SmtpConfig, SmtpTls, TenantKey, TlsFiles,
};

/// Input the operator must fix: printed as is, exit code 2, HTTP 400.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Creates the data folder, private to this user (0700): it holds every job's output,
/// collected files and archives. An existing one open to others is closed (and said so).
pub fn private_data_dir(cfg: &ProjectConfig) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = &cfg.data_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create data folder {}: {e}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| anyhow::anyhow!("cannot make {} private (0700): {e}", dir.display()))?;
        tracing::info!(
            "data folder {} made private (was {:o})",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// The default SQLite history and its journal files readable by this user only (0600).
pub fn private_database(cfg: &ProjectConfig) {
    use std::os::unix::fs::PermissionsExt;
    if cfg.database.is_some() {
        return;
    }
    for name in ["ordo.db", "ordo.db-wal", "ordo.db-shm", "ordo.db-journal"] {
        let path = cfg.data_dir.join(name);
        if path.exists()
            && let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!("cannot make {} private (0600): {e}", path.display());
        }
    }
}

/// Writes a new file readable by this user only (0600); an existing file is never
/// replaced.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The database URL: `--database`, `database:` in ordo.yaml, or SQLite in the data folder.
pub fn database_url(cfg: &ProjectConfig) -> String {
    cfg.database
        .clone()
        .unwrap_or_else(|| crate::store::default_url(&cfg.data_dir))
}

pub fn inventory(cfg: &ProjectConfig) -> Result<Inventory, BadInput> {
    ordo_inventory::load(&cfg.inventory).map_err(|e| BadInput(e.to_string()))
}

/// Every job, checked together; an error names every problem of every file.
pub fn jobset(cfg: &ProjectConfig) -> Result<JobSet, BadInput> {
    ordo_jobs::load_all(&cfg.jobs).map_err(|e| BadInput(e.to_string()))
}

/// One job file, alone.
pub fn job(cfg: &ProjectConfig, name: &str) -> Result<Job, BadInput> {
    match ordo_jobs::load_job(&cfg.jobs, name) {
        Ok(Ok(job)) => Ok(job),
        Ok(Err(d)) => Err(BadInput(format!(
            "{d}\n{} error(s) in job `{name}`",
            d.len()
        ))),
        Err(e) => Err(BadInput(e.to_string())),
    }
}

/// A job and the jobs it may start. When another job file is broken, a job that starts
/// no other job still runs; one that does needs the whole set valid.
pub fn job_in_set(cfg: &ProjectConfig, name: &str) -> Result<(JobSet, Arc<Job>), BadInput> {
    match ordo_jobs::load_all(&cfg.jobs) {
        Ok(set) => match set.get(name).cloned() {
            Some(j) => Ok((set, j)),
            None => Err(job(cfg, name)
                .err()
                .unwrap_or_else(|| BadInput(format!("job `{name}` not found")))),
        },
        Err(set_err) => {
            let j = Arc::new(job(cfg, name)?);
            if j.references().is_empty() {
                let mut set = JobSet::default();
                set.jobs.insert(name.to_string(), j.clone());
                Ok((set, j))
            } else {
                Err(BadInput(format!(
                    "{set_err}\njob `{name}` starts other jobs: every job file must be valid"
                )))
            }
        }
    }
}

/// The transfer profiles, and every transfer job's profile checked to exist; every
/// problem of every file at once.
pub fn profiles(cfg: &ProjectConfig, jobs: &JobSet) -> Result<BTreeMap<String, Profile>, BadInput> {
    let loaded = ordo_jobs::load_profiles(&cfg.profiles).map_err(|ds| {
        BadInput(
            ds.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let mut problems = Vec::new();
    for job in jobs.jobs.values() {
        if let Some(t) = &job.transfer
            && !loaded.contains_key(&t.profile)
        {
            let known: Vec<&str> = loaded.keys().map(String::as_str).collect();
            problems.push(format!(
                "{}: transfer: profile `{}` does not exist in {} (known: {})",
                job.file.display(),
                t.profile,
                cfg.profiles.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(BadInput(problems.join("\n")))
    }
}
