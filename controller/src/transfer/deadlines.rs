//! Acknowledgement deadlines kept on `serve`'s own clock: a deposit past its deadline is
//! checked (and, without an acknowledgement, reported unacknowledged with an alert) when
//! the deadline passes, not only when the scenario happens to run again.

use ordo_jobs::Job;
use ordo_jobs::transfer::Direction;

use crate::clock::now_ms;
use crate::project::Env;

/// The sending scenarios that have a deposit past its acknowledgement deadline.
pub async fn due_for_ack_check(env: &Env) -> Vec<std::sync::Arc<Job>> {
    let now = now_ms();
    let mut due = Vec::new();
    for job in env.jobs.jobs.values() {
        let Some(spec) = &job.transfer else { continue };
        if spec.direction != Direction::Send {
            continue;
        }
        let Some(ack) = env.profiles.get(&spec.profile).and_then(|p| p.ack.as_ref()) else {
            continue;
        };
        let waiting = match super::receive::awaiting_ack(env, job).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(job = %job.name, "acknowledgement deadlines not checked: {e}");
                continue;
            }
        };
        if waiting
            .iter()
            .any(|t| super::receive::past_deadline(t, ack.deadline, now))
        {
            due.push(job.clone());
        }
    }
    due
}
