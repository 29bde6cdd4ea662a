//! The projects, the jobs by folder, a job's page with its run form, the schedules.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use ordo_jobs::{Job, OptionType};
use serde::Deserialize;

use super::executions::{ExecLine, exec_lines};
use super::page::{Chrome, Page, PageResult, Posted, render, see, url_encode};
use crate::Web;
use crate::actions::ActionError;
use crate::actions::runs::{self, StartRun};
use crate::auth::project_of;
use crate::error::ApiError;
use crate::exec::Launch;
use crate::exec::values::Shown;

type Shared = State<Arc<Web>>;

/// The longest project readme shown.
const MAX_README: u64 = 64 * 1024;

pub struct Project {
    pub folder: String,
    pub title: String,
    pub jobs: usize,
    pub readme: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    chrome: Chrome,
    projects: Vec<Project>,
}

/// `README.md`, `README` or `motd.txt` of a job folder, as text (never as HTML).
fn readme(jobs_dir: &std::path::Path, folder: &str) -> String {
    use std::os::unix::fs::OpenOptionsExt;
    for name in ["README.md", "README", "readme.md", "motd.txt"] {
        let p = jobs_dir.join(folder).join(name);
        // A regular file only, never through a link, never a FIFO that would block.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&p);
        let Ok(f) = opened else { continue };
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_README), &mut text);
        return text;
    }
    String::new()
}

pub async fn home(State(s): Shared, p: Page) -> Response {
    let env = s.env();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for j in env
        .jobs
        .jobs
        .values()
        .filter(|j| p.who.can_read_job(&j.name))
    {
        let top = j.name.split_once('/').map_or("", |(t, _)| t).to_string();
        *counts.entry(top).or_default() += 1;
    }
    let projects = counts
        .into_iter()
        .map(|(folder, jobs)| Project {
            title: if folder.is_empty() {
                "(top level)".into()
            } else {
                folder.clone()
            },
            // A folder's readme is for those granted the folder itself.
            readme: if p.who.is_admin()
                || p.who
                    .projects
                    .iter()
                    .any(|g| crate::auth::grant_covers(g, &folder))
            {
                readme(&env.cfg.jobs, &folder)
            } else {
                String::new()
            },
            folder,
            jobs,
        })
        .collect();
    render(&Home {
        chrome: p.chrome(),
        projects,
    })
}

pub struct JobLine {
    pub name: String,
    pub short: String,
    pub description: String,
    pub schedule: String,
    pub last_id: String,
    pub last_status: String,
}

pub struct Group {
    pub folder: String,
    pub jobs: Vec<JobLine>,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct Jobs {
    chrome: Chrome,
    folder: String,
    q: String,
    groups: Vec<Group>,
}

#[derive(Deserialize)]
pub struct JobsQuery {
    folder: Option<String>,
    q: Option<String>,
}

pub(super) fn schedule_text(job: &Job) -> String {
    job.schedule
        .as_ref()
        .map(|s| {
            s.crons
                .iter()
                .map(|c| c.text.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub async fn jobs(State(s): Shared, p: Page, Query(q): Query<JobsQuery>) -> PageResult {
    let env = s.env();
    let folder = q.folder.unwrap_or_default().trim_matches('/').to_string();
    let needle = q.q.unwrap_or_default();
    let lower = needle.to_lowercase();
    let mut groups: BTreeMap<String, Vec<JobLine>> = BTreeMap::new();
    for j in env.jobs.jobs.values() {
        let dir = project_of(&j.name);
        let in_folder =
            folder.is_empty() || dir == folder || dir.starts_with(&format!("{folder}/"));
        let hit = lower.is_empty()
            || j.name.to_lowercase().contains(&lower)
            || j.description.to_lowercase().contains(&lower);
        if !p.who.can_read_job(&j.name) || !in_folder || !hit {
            continue;
        }
        let last = s.store.list_executions(Some(&j.name), 20).await?;
        let last = last.into_iter().find(|e| p.who.sees(e));
        groups.entry(dir.to_string()).or_default().push(JobLine {
            short: j.name.rsplit('/').next().unwrap_or(&j.name).to_string(),
            name: j.name.clone(),
            description: j.description.clone(),
            schedule: schedule_text(j),
            last_status: last
                .as_ref()
                .map(|e| e.status.to_string())
                .unwrap_or_default(),
            last_id: last.map(|e| e.id).unwrap_or_default(),
        });
    }
    Ok(render(&Jobs {
        chrome: p.chrome(),
        folder,
        q: needle,
        groups: groups
            .into_iter()
            .map(|(folder, jobs)| Group { folder, jobs })
            .collect(),
    }))
}

pub struct OptionField {
    pub name: String,
    pub required: bool,
    pub allowed: Vec<String>,
    pub value: String,
    pub input_type: &'static str,
    pub min: String,
    pub max: String,
    pub pattern: String,
    pub help: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    chrome: Chrome,
    name: String,
    folder: String,
    description: String,
    runnable: bool,
    error: String,
    options: Vec<OptionField>,
    limit: String,
    limit_error: String,
    steps: Vec<String>,
    targets: String,
    servers: Vec<String>,
    schedule: String,
    executions: Vec<ExecLine>,
}

fn option_fields(
    job: &Job,
    values: &[Shown],
    given: &[(String, String)],
    errors: &[(String, String)],
) -> Vec<OptionField> {
    job.options
        .iter()
        .zip(values)
        .map(|(o, values)| {
            let given = given
                .iter()
                .find(|(k, _)| *k == o.name)
                .map(|(_, v)| v.clone());
            let mut help = o.description.clone();
            let kind = match o.kind {
                OptionType::Ip => " (an IPv4 or IPv6 address)",
                OptionType::Duration => " (a duration: 90s, 5m, 1h30m)",
                OptionType::Date => " (a date: YYYY-MM-DD)",
                _ => "",
            };
            help.push_str(kind);
            if let Some(d) = &o.delimiter {
                help.push_str(&format!(" (several values separated by `{d}`)"));
            }
            if let Some(r) = &o.regex {
                help.push_str(&format!(" (must match {})", r.as_str()));
            }
            let listed = match values {
                Shown::Values(v) => v.clone(),
                Shown::Unavailable(e) => {
                    help.push_str(&format!(" ({e})"));
                    Vec::new()
                }
            };
            let allowed = match o.kind {
                OptionType::Boolean if listed.is_empty() => vec!["true".into(), "false".into()],
                _ => listed,
            };
            OptionField {
                name: o.name.clone(),
                required: o.required,
                allowed,
                // A secret is never written back into the page.
                value: if o.secret {
                    String::new()
                } else {
                    given.or_else(|| o.default.clone()).unwrap_or_default()
                },
                input_type: if o.secret {
                    "password"
                } else if o.delimiter.is_some() {
                    "text"
                } else {
                    match o.kind {
                        OptionType::Integer => "number",
                        OptionType::Date => "date",
                        OptionType::Email => "email",
                        _ => "text",
                    }
                },
                min: o.min.map(|v| v.to_string()).unwrap_or_default(),
                max: o.max.map(|v| v.to_string()).unwrap_or_default(),
                pattern: String::new(),
                help: help.trim().to_string(),
                error: errors
                    .iter()
                    .filter(|(f, _)| *f == o.name)
                    .map(|(_, m)| m.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })
        .collect()
}

async fn job_page(
    s: &Web,
    p: &Page,
    job: Arc<Job>,
    given: &[(String, String)],
    errors: &[(String, String)],
    limit: (String, String),
    error: String,
) -> PageResult {
    let env = s.env();
    let servers = crate::exec::Plan::new(&env.inventory, job.clone(), &Launch::default())
        .map(|pl| pl.nodes.iter().map(|n| n.name.clone()).collect())
        .unwrap_or_default();
    let values = s.option_values.shown(&job).await;
    let recent = s.store.list_executions(Some(&job.name), 50).await?;
    let recent: Vec<_> = recent
        .into_iter()
        .filter(|e| p.who.sees(e))
        .take(10)
        .collect();
    Ok(render(&JobPage {
        chrome: p.chrome(),
        name: job.name.clone(),
        folder: project_of(&job.name).to_string(),
        description: job.description.clone(),
        runnable: p.who.can_run_job(&job.name),
        error,
        options: option_fields(&job, &values, given, errors),
        limit: limit.0,
        limit_error: limit.1,
        steps: job
            .steps
            .iter()
            .enumerate()
            .map(|(i, st)| st.label(i))
            .collect(),
        targets: crate::exec::plan::targets_text(&job, None),
        servers,
        schedule: schedule_text(&job),
        executions: exec_lines(&recent, env.cfg.serve.timezone),
    }))
}

pub(super) fn readable(s: &Web, p: &Page, name: &str) -> Result<Arc<Job>, ApiError> {
    crate::api_jobs::readable(s, &p.caller(), name)
}

pub async fn job(State(s): Shared, p: Page, Path(name): Path<String>) -> PageResult {
    let job = readable(&s, &p, &name)?;
    job_page(&s, &p, job, &[], &[], Default::default(), String::new()).await
}

/// The run form: admitted by the same action as the API and `controller run`; errors
/// shown next to their fields, the values kept (but secrets).
pub async fn run(State(s): Shared, Path(name): Path<String>, f: Posted) -> PageResult {
    let p = &f.page;
    let job = readable(&s, p, &name)?;
    let given: Vec<(String, String)> = f
        .fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("opt.")?.to_string(), v.clone())))
        // An optional field left empty is not given.
        .filter(|(k, v)| !v.is_empty() || job.options.iter().any(|o| &o.name == k && o.required))
        .collect();
    let limit = f.text("limit");
    let req = StartRun {
        job: name,
        options: given.clone(),
        limit: (!limit.is_empty()).then(|| limit.clone()),
        cause: "console".into(),
    };
    match runs::start(&s.env(), &p.actor(), req, Launch::default()).await {
        Ok(admitted) => {
            let id = admitted.id().to_string();
            s.server.spawn_admitted(admitted);
            Ok(see(&format!("/executions/{}", url_encode(&id))))
        }
        Err(ActionError::Options(errs)) => {
            let fields: Vec<(String, String)> =
                errs.0.into_iter().map(|e| (e.option, e.message)).collect();
            let error = "Some values are not valid: see below.".to_string();
            job_page(&s, p, job, &given, &fields, (limit, String::new()), error).await
        }
        Err(ActionError::Refused(why)) => {
            job_page(&s, p, job, &given, &[], (limit, why), String::new()).await
        }
        Err(e) => Err(e.into()),
    }
}
