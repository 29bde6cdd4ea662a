//! The run environment: the project's files loaded once, the history database and this
//! controller process. `run`, `plan`, `serve` and a reload all build it here.

use std::collections::BTreeMap;
use std::sync::Arc;

use ordo_inventory::Inventory;
use ordo_jobs::transfer::Profile;
use ordo_jobs::{Job, JobSet};

use super::{BadInput, ProjectConfig};
use crate::process::{Aborts, Instance};
use crate::store::Store;

/// The project's files, read and checked, before any database is opened.
pub struct Loaded {
    pub cfg: ProjectConfig,
    pub inventory: Inventory,
    pub jobs: JobSet,
    pub profiles: BTreeMap<String, Profile>,
}

impl Loaded {
    /// Everything, every job file valid (`serve`, a reload).
    pub fn all(cfg: ProjectConfig) -> Result<Loaded, BadInput> {
        let inventory = super::inventory(&cfg)?;
        let jobs = super::jobset(&cfg)?;
        let profiles = super::profiles(&cfg, &jobs)?;
        Ok(Loaded {
            cfg,
            inventory,
            jobs,
            profiles,
        })
    }

    /// What running `name` needs: see [`super::job_in_set`].
    pub fn for_job(cfg: ProjectConfig, name: &str) -> Result<(Loaded, Arc<Job>), BadInput> {
        let inventory = super::inventory(&cfg)?;
        let (jobs, job) = super::job_in_set(&cfg, name)?;
        let profiles = super::profiles(&cfg, &jobs)?;
        Ok((
            Loaded {
                cfg,
                inventory,
                jobs,
                profiles,
            },
            job,
        ))
    }

    /// One line for the log: how many servers and jobs.
    pub fn summary(&self) -> String {
        let jobs = self.jobs.jobs.values();
        format!(
            "{} servers, {} jobs ({} scheduled, {} watching)",
            self.inventory.nodes.len(),
            self.jobs.jobs.len(),
            jobs.clone().filter(|j| j.schedule.is_some()).count(),
            jobs.filter(|j| j.watch.is_some()).count()
        )
    }
}

/// What every execution of this process shares.
pub struct Env {
    pub cfg: ProjectConfig,
    pub inventory: Inventory,
    pub jobs: JobSet,
    /// Transfer partners, by name.
    pub profiles: BTreeMap<String, Profile>,
    pub store: Store,
    /// This controller process: the owner of the executions it runs.
    pub instance: String,
    /// The executions running in this process (kept across reloads: the process's own).
    pub aborts: Arc<Aborts>,
}

impl Env {
    pub fn new(loaded: Loaded, store: Store, me: &Instance) -> Env {
        Env {
            cfg: loaded.cfg,
            inventory: loaded.inventory,
            jobs: loaded.jobs,
            profiles: loaded.profiles,
            store,
            instance: me.id.clone(),
            aborts: me.aborts.clone(),
        }
    }

    /// The same process with the project's files read again.
    pub fn reloaded(&self, loaded: Loaded) -> Env {
        Env {
            cfg: loaded.cfg,
            inventory: loaded.inventory,
            jobs: loaded.jobs,
            profiles: loaded.profiles,
            store: self.store.clone(),
            instance: self.instance.clone(),
            aborts: self.aborts.clone(),
        }
    }

    /// Creates the data folder, opens the history and registers this process as `role`
    /// (the caller then sweeps: see [`crate::process::sweep`]).
    pub async fn open(loaded: Loaded, role: &str) -> anyhow::Result<(Arc<Env>, Instance)> {
        let cfg = &loaded.cfg;
        super::private_data_dir(cfg)?;
        let store = Store::open(&super::database_url(cfg)).await?;
        super::private_database(cfg);
        let me = Instance::register(&store, role).await?;
        Ok((Arc::new(Env::new(loaded, store, &me)), me))
    }
}
