//! Before a run: which servers, the scripts' contents, the transports' settings, the
//! execution's ID; and the record of an execution that could not start.

use std::path::PathBuf;

use ordo_inventory::{Inventory, Node, NodeFilter, Transport};
use ordo_jobs::{Job, StepAction};

use super::{Env, Launch};
use crate::cli::BadInput;
use crate::config::ProjectConfig;
use crate::engine::now_ms;
use crate::store::ExecutionRow;
use crate::transport::{AgentSettings, Settings, SshSettings};

/// The servers a launch selects (none for a job made only of job steps).
pub fn select_nodes(inv: &Inventory, job: &Job, launch: &Launch) -> Result<Vec<Node>, BadInput> {
    if !job.runs_on_servers() {
        return Ok(Vec::new());
    }
    let mut filter = job.targets.clone();
    if let Some(l) = &launch.limit {
        let extra = NodeFilter::parse(l).map_err(|e| BadInput(format!("--limit: {e}")))?;
        filter = filter.and(extra);
    }
    let nodes: Vec<Node> = inv
        .nodes
        .iter()
        .filter(|n| filter.matches(n))
        .filter(|n| {
            launch
                .only_nodes
                .as_ref()
                .is_none_or(|only| only.contains(&n.name))
        })
        .cloned()
        .collect();
    if nodes.is_empty() {
        return Err(BadInput(format!(
            "job {}: no server matches `{filter}`{} in the inventory ({} servers)",
            job.name,
            if launch.only_nodes.is_some() {
                " among the servers to retry"
            } else {
                ""
            },
            inv.nodes.len()
        )));
    }
    Ok(nodes)
}

pub(super) fn read_scripts(job: &Job) -> Result<Vec<Option<Vec<u8>>>, BadInput> {
    job.steps
        .iter()
        .map(|s| match &s.action {
            StepAction::ScriptFile(p) => std::fs::read(p).map(Some).map_err(|e| {
                BadInput(format!(
                    "{}: step `{}`: cannot read script_file {}: {e}",
                    job.file.display(),
                    s.name,
                    p.display()
                ))
            }),
            _ => Ok(None),
        })
        .collect()
}

/// Loads what the selected servers' transports need (SSH keys, the agent PKI), only then.
pub fn transport_settings(
    cfg: &ProjectConfig,
    nodes: &[Node],
    accept_new: bool,
) -> Result<Settings, BadInput> {
    let mut s = Settings::default();
    if nodes.iter().any(|n| n.transport == Transport::Ssh) {
        s.ssh = Some(ssh_settings(cfg, accept_new)?);
    }
    if nodes.iter().any(|n| n.transport == Transport::Agent) {
        let pki = crate::pki::Pki::new(&cfg.pki_dir);
        s.agent = Some(
            AgentSettings::load(
                &pki.ca_cert(),
                &pki.controller_cert(),
                &pki.controller_key(),
                cfg.ssh.connect_timeout,
            )
            .map_err(|e| BadInput(e.to_string()))?,
        );
    }
    Ok(s)
}

fn ssh_settings(cfg: &ProjectConfig, accept_new: bool) -> Result<SshSettings, BadInput> {
    let known_hosts = cfg.ssh.known_hosts.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".ssh/known_hosts")
    });
    SshSettings::new(
        cfg.ssh
            .user
            .clone()
            .unwrap_or_else(crate::transport::current_user),
        &cfg.ssh.identity,
        known_hosts,
        accept_new || cfg.ssh.accept_new_host_keys,
        cfg.ssh.connect_timeout,
        cfg.ssh.connect_attempts,
    )
    .map_err(|e| {
        BadInput(format!(
            "ssh: {e} (set ssh.identity in {})",
            cfg.root.join(crate::config::CONFIG_FILE).display()
        ))
    })
}

/// `20261124-070512-4813fa`: date, time, milliseconds (so IDs sort by time even within
/// one second), then three random hex digits.
pub fn execution_id() -> String {
    let now = chrono::Local::now();
    let u = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "{}-{:03}{}",
        now.format("%Y%m%d-%H%M%S"),
        now.timestamp_subsec_millis().min(999),
        &u[u.len() - 3..]
    )
}

/// Records an execution that could not start (no server matches, a script file is
/// missing, a follow-up's options are wrong): the history shows why.
pub async fn record_refused(
    env: &Env,
    job_name: &str,
    launch: &Launch,
    why: &str,
) -> anyhow::Result<String> {
    let id = launch.id.clone().unwrap_or_else(execution_id);
    let now = now_ms();
    let row = ExecutionRow {
        id: id.clone(),
        job: job_name.to_string(),
        status: "running".into(),
        options: serde_json::to_string(&launch.options.masked())?,
        targets: launch.limit.clone().unwrap_or_default(),
        started_at: now,
        started_by: launch.started_by.clone(),
        cause: launch.cause.clone(),
        owner: env.instance.clone(),
        fire_key: launch.fire_key.clone(),
        retry_of: launch.retry_of.clone(),
        parent_id: launch.parent_id.clone(),
        ..ExecutionRow::default()
    };
    env.store.insert_execution(&row).await?;
    let done = ExecutionRow {
        status: "failed".into(),
        finished_at: Some(now),
        error: Some(format!("not started: {why}")),
        ..row
    };
    env.store.finish_execution(&done).await?;
    Ok(id)
}
