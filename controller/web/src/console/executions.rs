//! The executions: the history with filters and pages, one execution with its progress,
//! servers and log (live through the API's Server-Sent Events), abort, retry, downloads.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};

use serde::Deserialize;

use super::page::{Chrome, Page, PageResult, Posted, render, see, url_encode};
use crate::Web;
use crate::actions::runs;
use crate::api_executions::{status_label, visible};
use crate::clock::zoned_time;
use crate::error::ApiError;
use crate::exec::Launch;
use crate::store::{ExecFilter, ExecutionRow, ExecutionStatus, Scope};

type Shared = State<Arc<Web>>;

/// The most log lines a page shows at once (the rest: the API's log).
const PAGE_LINES: usize = 5000;

pub struct ExecLine {
    pub id: String,
    pub job: String,
    pub status: String,
    pub started: String,
    pub duration: String,
    pub by: String,
    pub servers: String,
}

fn took(from: Option<i64>, to: Option<i64>) -> String {
    match (from, to) {
        (Some(a), Some(b)) if b >= a => format!("{:.1} s", (b - a) as f64 / 1000.0),
        _ => "-".into(),
    }
}

pub fn exec_lines(rows: &[ExecutionRow], tz: chrono_tz::Tz) -> Vec<ExecLine> {
    rows.iter()
        .map(|e| ExecLine {
            id: e.id.clone(),
            job: e.job.clone(),
            status: e.status.to_string(),
            started: zoned_time(e.started_at, tz),
            duration: took(Some(e.started_at), e.finished_at),
            by: if e.account.is_empty() {
                e.started_by.clone()
            } else {
                e.account.clone()
            },
            servers: format!("{}/{} ok", e.nodes_ok, e.nodes_total),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "executions.html")]
struct Executions {
    chrome: Chrome,
    executions: Vec<ExecLine>,
    statuses: Vec<&'static str>,
    f_job: String,
    f_status: String,
    f_user: String,
    f_since: String,
    f_until: String,
    total: i64,
    page: i64,
    pages: i64,
    prev_link: String,
    next_link: String,
}

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    job: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    page: Option<i64>,
}

/// `YYYY-MM-DD` at midnight in the controller's time zone (`+1` day: the end of it).
fn day(text: &str, tz: chrono_tz::Tz, plus: i64) -> Result<Option<i64>, ApiError> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::field("date", format!("`{text}`: expected YYYY-MM-DD"));
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
    let d = d
        .checked_add_days(chrono::Days::new(plus as u64))
        .filter(|d| (1970..=9999).contains(&chrono::Datelike::year(d)))
        .ok_or_else(bad)?;
    let t = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
    use chrono::TimeZone;
    Ok(tz
        .from_local_datetime(&t)
        .earliest()
        .map(|x| x.timestamp_millis()))
}

const PER_PAGE: i64 = 50;

pub async fn list(State(s): Shared, p: Page, Query(f): Query<Filters>) -> PageResult {
    let tz = s.env().cfg.serve.timezone;
    let page = f.page.unwrap_or(1).clamp(1, 10_000);
    if !f.status.is_empty() && f.status.parse::<ExecutionStatus>().is_err() {
        return Err(ApiError::field("status", format!("`{}` is not a status", f.status)).into());
    }
    for v in [&f.job, &f.user] {
        if v.len() > 200 {
            return Err(ApiError::field("filter", "longer than 200 characters").into());
        }
    }
    let scope = (!p.who.is_admin()).then(|| {
        let (accounts, unowned) = p.who.visible_accounts();
        Scope {
            folders: p.who.projects.clone(),
            accounts,
            unowned,
        }
    });
    let filter = ExecFilter {
        job: (!f.job.is_empty()).then(|| f.job.clone()),
        status: (!f.status.is_empty()).then(|| f.status.clone()),
        account: (!f.user.is_empty()).then(|| f.user.clone()),
        since: day(&f.since, tz, 0)?,
        until: day(&f.until, tz, 1)?,
        offset: (page - 1) * PER_PAGE,
        limit: PER_PAGE,
        scope,
    };
    let (rows, total) = s.store.list_filtered(&filter).await?;
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let link = |n: i64| {
        format!(
            "/executions?job={}&status={}&user={}&since={}&until={}&page={n}",
            url_encode(&f.job),
            url_encode(&f.status),
            url_encode(&f.user),
            url_encode(&f.since),
            url_encode(&f.until)
        )
    };
    Ok(render(&Executions {
        chrome: p.chrome(),
        executions: exec_lines(&rows, tz),
        statuses: ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect(),
        prev_link: link(page - 1),
        next_link: link(page + 1),
        f_job: f.job,
        f_status: f.status,
        f_user: f.user,
        f_since: f.since,
        f_until: f.until,
        total,
        page,
        pages,
    }))
}

pub struct FileLink {
    pub index: usize,
    pub name: String,
}

pub struct NodeLine {
    pub name: String,
    pub started: String,
    pub duration: String,
    pub status: String,
    pub exit_code: String,
    pub error: String,
    pub files: Vec<FileLink>,
}

pub struct LogLineView {
    pub time: String,
    pub server: String,
    /// `stderr` or `stdout` (only these: it is a CSS class).
    pub stream_class: &'static str,
    pub text: String,
}

pub struct LogGroup {
    pub server: String,
    pub lines: Vec<LogLineView>,
}

#[derive(Template)]
#[template(path = "execution.html")]
struct ExecutionPage {
    chrome: Chrome,
    id: String,
    job: String,
    status: String,
    status_label: String,
    started_by: String,
    started: String,
    duration: String,
    options: Vec<(String, String)>,
    error: String,
    total: i64,
    done: i64,
    percent: i64,
    running: bool,
    any_failed: bool,
    can_run: bool,
    has_archive: bool,
    nodes: Vec<NodeLine>,
    /// The servers table and progress: a job that runs on servers (not a group, not a
    /// transfer scenario alone).
    show_servers: bool,
    /// The jobs it started: a group's members in order, then follow-ups.
    executions: Vec<ExecLine>,
    /// A group job with a member that did not succeed: it can start again there.
    resume: bool,
    log_groups: Vec<LogGroup>,
    merged: Vec<LogLineView>,
    last_seq: i64,
    truncated: usize,
}

pub async fn show(State(s): Shared, p: Page, Path(id): Path<String>) -> PageResult {
    let e = visible(&s, &p.caller(), &id).await?;
    let tz = s.env().cfg.serve.timezone;
    let nodes = s.store.nodes(&e.id).await?;
    let files = s.store.files(&e.id).await?;
    let (lines, count) = s.store.logs_tail(&e.id, PAGE_LINES as i64).await?;
    let truncated = (count as usize).saturating_sub(lines.len());
    let last_seq = lines.last().map_or(-1, |l| l.seq);
    let view = |l: &crate::store::LogLine| LogLineView {
        time: crate::clock::time_of_day(l.ts),
        server: l.node.clone(),
        stream_class: if l.stream == "stderr" {
            "stderr"
        } else {
            "stdout"
        },
        text: l.line.clone(),
    };
    let mut files_of: BTreeMap<&str, Vec<FileLink>> = BTreeMap::new();
    for (index, f) in files.iter().enumerate() {
        let name = f.remote_path.rsplit('/').next().unwrap_or(&f.remote_path);
        files_of.entry(f.node.as_str()).or_default().push(FileLink {
            index,
            name: name.to_string(),
        });
    }
    let mut groups: BTreeMap<String, Vec<LogLineView>> = BTreeMap::new();
    for l in &lines {
        groups.entry(l.node.clone()).or_default().push(view(l));
    }
    let done = nodes
        .iter()
        .filter(|n| n.status != "pending" && n.status != "running")
        .count() as i64;
    let total = (nodes.len() as i64).max(e.nodes_total);
    let options: BTreeMap<String, String> = serde_json::from_str(&e.options).unwrap_or_default();
    let mut children = s.store.children(&e.id).await?;
    children.retain(|ch| p.who.sees(ch));
    let env = s.env();
    let group = env.jobs.get(&e.job).filter(|j| !j.runs_on_servers());
    let (total, done) = match group {
        Some(j) => crate::exec::group_progress(j, &e, &children),
        None => (total, done),
    };
    let resume = group.is_some_and(|j| {
        !e.status.is_running()
            && !e.status.succeeded()
            && crate::exec::first_failed_member(j, &e, &children).is_some()
    });
    let on_servers = env.jobs.get(&e.job).is_none_or(|j| j.runs_on_servers());
    Ok(render(&ExecutionPage {
        show_servers: !nodes.is_empty() || (children.is_empty() && on_servers),
        executions: exec_lines(&children, tz),
        resume,
        chrome: p.chrome(),
        status: e.status.to_string(),
        status_label: status_label(e.status),
        started_by: e.started_by.clone(),
        started: zoned_time(e.started_at, tz),
        duration: took(Some(e.started_at), e.finished_at),
        options: options.into_iter().collect(),
        error: e.error.clone().unwrap_or_default(),
        percent: if total == 0 { 100 } else { done * 100 / total },
        total,
        done,
        running: e.status.is_running(),
        any_failed: nodes.iter().any(|n| n.status != "succeeded"),
        can_run: p.who.can_run_job(&e.job),
        has_archive: e.archive.is_some(),
        nodes: nodes
            .iter()
            .map(|n| NodeLine {
                name: n.node.clone(),
                started: n.started_at.map(|t| zoned_time(t, tz)).unwrap_or_default(),
                duration: took(n.started_at, n.finished_at),
                status: n.status.clone(),
                exit_code: n.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                error: n.error.clone().unwrap_or_default(),
                files: files_of.remove(n.node.as_str()).unwrap_or_default(),
            })
            .collect(),
        merged: lines.iter().map(view).collect(),
        log_groups: groups
            .into_iter()
            .map(|(server, lines)| LogGroup { server, lines })
            .collect(),
        last_seq,
        truncated,
        id: e.id,
        job: e.job,
    }))
}

pub async fn abort(State(s): Shared, Path(id): Path<String>, f: Posted) -> PageResult {
    let e = runs::abort(&s.store, &s.env().aborts, &f.page.actor(), &id).await?;
    Ok(see(&format!("/executions/{}", url_encode(&e.id))))
}

pub async fn retry(State(s): Shared, Path(id): Path<String>, f: Posted) -> PageResult {
    let failed_only = f.get("failed_only") == Some("true");
    let admitted = runs::retry(
        &s.env(),
        &f.page.actor(),
        &id,
        failed_only,
        &[],
        Launch::default(),
    )
    .await?;
    let new_id = admitted.id().to_string();
    s.server.spawn_admitted(admitted);
    Ok(see(&format!("/executions/{}", url_encode(&new_id))))
}
