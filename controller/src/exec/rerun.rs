//! Running a recorded execution again (`executions retry`, the API's and console's retry):
//! its job, its recorded options, and its servers (or only the failed ones); a group job
//! (only job steps) from its first failed member.

use std::collections::BTreeMap;

use ordo_jobs::{Job, StepAction};

use super::Launch;
use crate::fanout::NodeStatus;
use crate::project::BadInput;
use crate::store::{ExecutionRow, NodeRow};

/// The launch that runs `e` again. `overrides` replace recorded option values; secret
/// options are never recorded, so they must be among them. `children` are the executions
/// `e` started: with `failed_only`, a group starts again at its first member that did not
/// succeed. The caller sets who starts it.
pub async fn retry_launch(
    job: &Job,
    e: &ExecutionRow,
    (nodes, children): (&[NodeRow], &[ExecutionRow]),
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
    let options = super::resolve_options(job, given)
        .await
        .map_err(|errs| BadInput(errs.join("\n")))?;
    let servers: Vec<String> = nodes
        .iter()
        .filter(|n| !failed_only || n.status != NodeStatus::Succeeded.as_str())
        .map(|n| n.node.clone())
        .collect();
    let resume_from = if failed_only && !job.runs_on_servers() {
        let from = first_failed_member(job, e, children);
        if from.is_none() {
            return Err(BadInput(format!(
                "execution {}: every member succeeded, nothing to retry",
                e.id
            )));
        }
        from
    } else {
        None
    };
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
        resume_from,
        ..Launch::default()
    })
}

/// Where group execution `e` starts again: the first member (job step) whose execution,
/// among `children` matched in order, did not succeed (members allowed to fail do not
/// count); else the first member after the last one that ran (the group was stopped
/// before it). The members `e` itself skipped (it resumed a group) succeeded before.
pub fn first_failed_member(
    job: &Job,
    e: &ExecutionRow,
    children: &[ExecutionRow],
) -> Option<usize> {
    let mut runs = children.iter().filter(|c| c.cause == "job-step").peekable();
    let mut after_last_ran = None;
    let skipped = e.resumed_from.unwrap_or(0).max(0) as usize;
    for (i, s) in job.steps.iter().enumerate().skip(skipped) {
        let StepAction::Job(r) = &s.action else {
            continue;
        };
        match runs.next_if(|c| c.job == r.job) {
            Some(c) if !c.status.succeeded() && !s.allow_failure => return Some(i),
            Some(_) => after_last_ran = None,
            None if after_last_ran.is_none() => after_last_ran = Some(i),
            None => {}
        }
    }
    after_last_ran
}

/// A group execution's progress, `(total, done)`: its members, and those that ended or
/// that it skipped (resumed after them).
pub fn group_progress(job: &Job, e: &ExecutionRow, children: &[ExecutionRow]) -> (i64, i64) {
    let members = job
        .steps
        .iter()
        .filter(|s| matches!(s.action, StepAction::Job(_)))
        .count() as i64;
    let skipped = e.resumed_from.unwrap_or(0).clamp(0, members);
    let ended = children
        .iter()
        .filter(|c| c.cause == "job-step" && !c.status.is_running())
        .count() as i64;
    (members, (skipped + ended).min(members))
}
