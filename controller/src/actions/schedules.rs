//! Switching a job's schedule off and on at run time (it owes no fire of the time it was
//! off): for whoever may run the job.

use super::{ActionError, ActionResult, Actor};
use crate::clock::now_ms;
use crate::project::Env;

pub async fn switch(env: &Env, a: &Actor, job: &str, on: bool) -> ActionResult<()> {
    let j = super::runs::runnable(env, a, job)?;
    if j.schedule.is_none() {
        return Err(ActionError::invalid(
            "job",
            format!("`{job}` has no schedule"),
        ));
    }
    env.store
        .switch_schedule(job, on, &a.who.label(), now_ms())
        .await?;
    let what = if on {
        "schedule.enable"
    } else {
        "schedule.disable"
    };
    a.audit(&env.store, what, job, "").await;
    Ok(())
}
