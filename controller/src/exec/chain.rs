//! Jobs inside jobs: phases split by job steps, the child executions of job steps and
//! follow-ups, with their options expanded over the parent run.

use std::sync::Arc;

use ordo_jobs::{Context, Job, JobRef, OptionValues, StepAction};
use tokio_util::sync::CancellationToken;

use super::{Env, Launch, Outcome, execute, record_refused};
use crate::fanout::NodeResult;
use crate::project::BadInput;

pub(super) enum Phase {
    Servers(std::ops::Range<usize>),
    Job(usize, JobRef),
}

pub(super) fn phases(job: &Job) -> Vec<Phase> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, s) in job.steps.iter().enumerate() {
        if let StepAction::Job(r) = &s.action {
            if start < i {
                out.push(Phase::Servers(start..i));
            }
            out.push(Phase::Job(i, r.clone()));
            start = i + 1;
        }
    }
    if start < job.steps.len() {
        out.push(Phase::Servers(start..job.steps.len()));
    }
    out
}

/// A server's result over two phases: the later one's status, both sets of files.
pub(super) fn merge(mut prev: NodeResult, next: NodeResult) -> NodeResult {
    prev.status = next.status;
    prev.exit_code = next.exit_code.or(prev.exit_code);
    prev.step_reached = next.step_reached.max(prev.step_reached);
    prev.finished_at = next.finished_at;
    prev.files.extend(next.files);
    prev.bytes += next.bytes;
    prev.error = next.error.or(prev.error);
    prev.warnings.extend(next.warnings);
    prev
}

/// The values given to the other job's options, expanded over this run (checked by
/// [`super::resolve_options`]).
fn child_given(
    parent: &Job,
    r: &JobRef,
    target: &Job,
    options: &OptionValues,
    id: &str,
    status: Option<&str>,
) -> Result<Vec<(String, String)>, BadInput> {
    let cx = Context::execution(&options.values, &parent.name, id, status);
    let mut given = Vec::new();
    for (k, t) in &r.options {
        let v = t
            .expand(&cx)
            .map_err(|e| BadInput(format!("job {}: option `{k}`: {e}", r.job)))?;
        given.push((k.clone(), v));
    }
    if r.import_options {
        for o in &target.options {
            if let Some(v) = options.values.get(&o.name)
                && !given.iter().any(|(k, _)| *k == o.name)
            {
                given.push((o.name.clone(), v.clone()));
            }
        }
    }
    Ok(given)
}

pub(super) async fn run_child(
    env: &Arc<Env>,
    parent: &Job,
    r: &JobRef,
    launch: &Launch,
    parent_id: &str,
    status: Option<&str>,
    cancel: &CancellationToken,
) -> anyhow::Result<Outcome> {
    let target = env
        .jobs
        .get(&r.job)
        .cloned()
        .ok_or_else(|| BadInput(format!("job `{}` is not loaded", r.job)))?;
    let cause = if status.is_some() {
        "follow-up"
    } else {
        "job-step"
    };
    let child = Launch {
        id: None,
        options: OptionValues::default(),
        limit: None,
        only_nodes: None,
        parallelism: None,
        accept_new_host_keys: launch.accept_new_host_keys,
        no_mail: launch.no_mail,
        cause: cause.into(),
        fire_key: None,
        retry_of: None,
        parent_id: Some(parent_id.to_string()),
        started_by: launch.started_by.clone(),
        account: launch.account.clone(),
        terminal: launch.terminal,
        progress: false,
        depth: launch.depth + 1,
        acks_only: false,
        resume_from: None,
    };
    let given = child_given(parent, r, &target, &launch.options, parent_id, status);
    let options = match given {
        Ok(g) => super::resolve_options(&target, g)
            .await
            .map_err(|errs| BadInput(format!("job {}: {}", r.job, errs.join("; ")))),
        Err(e) => Err(e),
    };
    let options = match options {
        Ok(o) => o,
        Err(e) => {
            let id = record_refused(env, &r.job, &child, &e.0).await?;
            anyhow::bail!("{} (execution {id})", e.0);
        }
    };
    let child = Launch { options, ..child };
    if launch.terminal {
        say!("\n{cause} job {} of execution {parent_id}", r.job);
    }
    let fut = Box::pin(execute(
        env.clone(),
        target,
        child.clone(),
        cancel.child_token(),
    ));
    match fut.await {
        Ok(o) => Ok(o),
        Err(e) => match e.downcast_ref::<BadInput>() {
            Some(b) => {
                let id = record_refused(env, &r.job, &child, &b.0).await?;
                anyhow::bail!("{} (execution {id})", b.0)
            }
            None => Err(e),
        },
    }
}

/// Starts the follow-up jobs the outcome calls for, one after the other.
pub(super) async fn follow_ups(
    env: &Arc<Env>,
    job: &Job,
    launch: &Launch,
    outcome: &Outcome,
    cancel: &CancellationToken,
) {
    if cancel.is_cancelled() {
        return;
    }
    let by_outcome = if outcome.succeeded() {
        &job.then.on_success
    } else {
        &job.then.on_failure
    };
    for r in by_outcome.iter().chain(job.then.always.iter()) {
        match run_child(
            env,
            job,
            r,
            launch,
            &outcome.id,
            Some(outcome.status.as_str()),
            cancel,
        )
        .await
        {
            Ok(o) => {
                tracing::info!(parent = %outcome.id, child = %o.id, job = %r.job, status = %o.status, "follow-up finished")
            }
            Err(e) => {
                tracing::error!(parent = %outcome.id, job = %r.job, "follow-up not run: {e:#}");
                if launch.terminal {
                    eprintln!("follow-up job {} not run: {e:#}", r.job);
                }
            }
        }
    }
}
