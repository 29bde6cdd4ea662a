//! Admitting a run: every check a run makes before anything of it starts, made once and
//! kept for the run, for every start (`controller run`, the API and the console through
//! `actions::runs`, schedules, file triggers, follow-ups, job steps, retries): how deep
//! in follow-ups, the plan (servers, `--limit`, `run_as`), the scripts read, the keys an
//! archive or payload is encrypted to, and the transports' settings (SSH keys, the
//! agents' certificates). A refusal here (`BadInput`) means nothing was started or
//! recorded.

use std::sync::Arc;

use ordo_jobs::Job;

use super::prepare::read_scripts;
use super::{Launch, Plan, execution_id};
use crate::project::{BadInput, Env, ProjectConfig};
use crate::session::Settings;

/// Follow-ups and job steps nested deeper than this are refused (cycles are refused at
/// load; this is a guard).
const MAX_DEPTH: u32 = 16;

/// A run every check has passed: what runs, where, and with what.
pub struct Admitted {
    pub job: Arc<Job>,
    /// Its `id` is set: the execution's ID, known before it starts.
    pub launch: Launch,
    /// The servers and the pace, computed once.
    pub plan: Plan,
    pub(super) scripts: Vec<Option<Vec<u8>>>,
    pub(super) transports: Settings,
}

impl Admitted {
    pub fn id(&self) -> &str {
        self.launch.id.as_deref().unwrap_or_default()
    }
}

/// Every check, in the order a person would fix them.
pub async fn admit(env: &Env, job: Arc<Job>, mut launch: Launch) -> Result<Admitted, BadInput> {
    if launch.depth > MAX_DEPTH {
        return Err(BadInput(format!(
            "job {}: follow-ups and job steps nested deeper than {MAX_DEPTH}",
            job.name
        )));
    }
    launch.id.get_or_insert_with(execution_id);
    let plan = Plan::new(&env.inventory, job.clone(), &launch)?;
    let Readied {
        scripts,
        transports,
    } = ready(&env.cfg, &plan, &launch)?;
    // An archive or a payload to encrypt to a key that is missing or expired: refused
    // before anything runs or moves (the data would have nowhere safe to go).
    let profile_keys = job
        .transfer
        .as_ref()
        .and_then(|t| env.profiles.get(&t.profile))
        .map(|p| p.encrypt.clone())
        .unwrap_or_default();
    for (keys, what) in [
        (&job.encrypt, "archive: encrypt"),
        (&profile_keys, "profile: encrypt"),
    ] {
        if keys.is_empty() {
            continue;
        }
        let names: Vec<&str> = keys.iter().map(|(n, _)| n.as_str()).collect();
        crate::pki::keys::recipients(&env.store, &names, crate::clock::now_ms())
            .await
            .map_err(|e| BadInput(format!("{what}: {e}")))?;
    }
    Ok(Admitted {
        job,
        launch,
        plan,
        scripts,
        transports,
    })
}

/// What a planned run reads from this machine's files: its script files and its
/// transports' settings (SSH keys and known hosts, the agents' certificates).
pub struct Readied {
    pub(super) scripts: Vec<Option<Vec<u8>>>,
    pub(super) transports: Settings,
}

/// The checks that need only the files, not the history: made by every run, and by
/// `controller plan`, which says what a run would refuse without connecting anywhere.
pub fn ready(cfg: &ProjectConfig, plan: &Plan, launch: &Launch) -> Result<Readied, BadInput> {
    let scripts = read_scripts(&plan.job)?;
    let transports =
        crate::session::settings::for_nodes(cfg, &plan.nodes, launch.accept_new_host_keys)?;
    Ok(Readied {
        scripts,
        transports,
    })
}
