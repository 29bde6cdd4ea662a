//! The schedules page: next fires, which controller fires them, switching one off and on.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};

use super::jobs::schedule_text;
use super::page::{Chrome, Page, PageResult, Posted, render, see};
use crate::Web;
use crate::clock::{now_ms, zoned_time};

type Shared = State<Arc<Web>>;

pub struct ScheduleLine {
    pub job: String,
    pub cron: String,
    pub timezone: String,
    pub next: Vec<String>,
    pub on: bool,
    pub off_by: String,
    pub can_switch: bool,
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct Schedules {
    chrome: Chrome,
    leader: String,
    rows: Vec<ScheduleLine>,
}

pub async fn schedules(State(s): Shared, p: Page) -> PageResult {
    let env = s.env();
    let off = s.store.disabled_schedules().await?;
    let now = now_ms();
    let leader = match s.store.lease(crate::serve::LEASE).await? {
        Some((holder, until, _)) if until > now => holder,
        _ => String::new(),
    };
    let mut rows = Vec::new();
    for j in env
        .jobs
        .jobs
        .values()
        .filter(|j| p.who.can_read_job(&j.name))
    {
        let Some(sc) = &j.schedule else { continue };
        let tz = sc.timezone.unwrap_or(env.cfg.serve.timezone);
        let switched = off.iter().find(|(o, _, _)| *o == j.name);
        rows.push(ScheduleLine {
            job: j.name.clone(),
            cron: schedule_text(j),
            timezone: tz.name().to_string(),
            next: sc
                .fires_between(now, i64::MAX, 3, tz)
                .into_iter()
                .map(|t| zoned_time(t, tz))
                .collect(),
            on: sc.enabled && switched.is_none(),
            off_by: switched.map(|(_, by, _)| by.clone()).unwrap_or_default(),
            can_switch: sc.enabled && p.who.can_run_job(&j.name),
        });
    }
    Ok(render(&Schedules {
        chrome: p.chrome(),
        leader,
        rows,
    }))
}

pub async fn switch(State(s): Shared, Path(name): Path<String>, f: Posted) -> PageResult {
    let on = f.get("enabled") == Some("true");
    crate::actions::schedules::switch(&s.env(), &f.page.actor(), &name, on).await?;
    Ok(see("/schedules"))
}
