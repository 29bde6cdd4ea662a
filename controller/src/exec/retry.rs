//! Running a recorded execution again (`executions retry`, the API's and console's retry):
//! its job, its recorded options, and its servers (or only the failed ones).

use std::collections::BTreeMap;

use ordo_jobs::Job;

use super::Launch;
use crate::engine::NodeStatus;
use crate::project::BadInput;
use crate::store::{ExecutionRow, NodeRow};

/// The launch that runs `e` again. `overrides` replace recorded option values; secret
/// options are never recorded, so they must be among them. The caller sets who starts it.
pub fn retry_launch(
    job: &Job,
    e: &ExecutionRow,
    nodes: &[NodeRow],
    failed_only: bool,
    overrides: &[(String, String)],
) -> Result<Launch, BadInput> {
    if e.status.is_running() {
        return Err(BadInput(format!(
            "execution {} is still running (controller {}): wait for it, or for it to be marked interrupted",
            e.id, e.owner
        )));
    }
    let recorded: BTreeMap<String, String> = serde_json::from_str(&e.options).unwrap_or_default();
    let mut given: Vec<(String, String)> = Vec::new();
    let mut missing = Vec::new();
    for o in &job.options {
        if let Some((_, v)) = overrides.iter().find(|(k, _)| *k == o.name) {
            given.push((o.name.clone(), v.clone()));
        } else if let Some(v) = recorded.get(&o.name) {
            if o.secret {
                missing.push(o.name.clone());
            } else {
                given.push((o.name.clone(), v.clone()));
            }
        }
    }
    if !missing.is_empty() {
        return Err(BadInput(format!(
            "secret option(s) {} are not recorded: give them again with --opt-file NAME=FILE or ORDO_OPT_<NAME>",
            missing.join(", ")
        )));
    }
    let options =
        ordo_jobs::resolve_options(job, &given).map_err(|errs| BadInput(errs.join("\n")))?;
    let servers: Vec<String> = nodes
        .iter()
        .filter(|n| !failed_only || n.status != NodeStatus::Succeeded.as_str())
        .map(|n| n.node.clone())
        .collect();
    if servers.is_empty() && job.runs_on_servers() {
        return Err(BadInput(if failed_only {
            format!(
                "execution {}: every server succeeded, nothing to retry",
                e.id
            )
        } else {
            format!("execution {}: no server was recorded", e.id)
        }));
    }
    Ok(Launch {
        options,
        only_nodes: Some(servers),
        cause: "retry".into(),
        retry_of: Some(e.id.clone()),
        ..Launch::default()
    })
}
