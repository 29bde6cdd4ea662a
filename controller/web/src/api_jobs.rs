//! Jobs in the API: listing by folder, showing one with its options and targets, running
//! one (options checked exactly as `controller run` checks them), retrying an execution.
//! A caller only sees the jobs of its projects; only operators and admins run them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordo_jobs::Job;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Web;
use super::error::{ApiError, ApiResult};
use super::extract::OptBody;
use super::guard::Caller;
use crate::actions::runs::{self, StartRun};
use crate::auth::project_of;
use crate::clock::now_ms;
use crate::exec::Admitted;
use crate::exec::Launch;
use crate::exec::values::Shown;

type Shared = State<Arc<Web>>;

/// The job `name`, if the caller may read it (else "no job", as if it did not exist).
pub fn readable(s: &Web, c: &Caller, name: &str) -> ApiResult<Arc<Job>> {
    match s.env().jobs.get(name) {
        Some(j) if c.who.can_read_job(name) => Ok(j.clone()),
        _ => Err(ApiError::NotFound(format!("no job named `{name}`"))),
    }
}

pub async fn schedules(State(s): Shared, c: Caller) -> ApiResult<Json<Value>> {
    let env = s.env();
    let now = now_ms();
    let off = s.store.disabled_schedules().await?;
    let list: Vec<Value> = env
        .jobs
        .jobs
        .values()
        .filter(|j| c.who.can_read_job(&j.name))
        .filter_map(|j| {
            let sc = j.schedule.as_ref()?;
            let tz = sc.timezone.unwrap_or(env.cfg.serve.timezone);
            let next: Vec<i64> = sc.fires_between(now, i64::MAX, 3, tz);
            Some(json!({
                "job": j.name,
                "cron": sc.crons.iter().map(|c| c.text.clone()).collect::<Vec<_>>(),
                "timezone": tz.name(),
                "enabled": sc.enabled && !off.iter().any(|(o, _, _)| *o == j.name),
                "switched_off_by": off.iter().find(|(o, _, _)| *o == j.name).map(|(_, by, at)| json!({"by": by, "at": at})),
                "overlap": sc.overlap.as_str(),
                "missed": sc.missed.as_str(),
                "next": next,
            }))
        })
        .collect();
    Ok(Json(
        json!({ "schedules": list, "leader": s.is_leader(), "instance": s.instance }),
    ))
}

fn options_json(job: &Job, values: &[Shown]) -> Vec<Value> {
    job.options
        .iter()
        .zip(values)
        .map(|(o, values)| {
            let (allowed, error) = match values {
                Shown::Values(v) => (Some(v), None),
                Shown::Unavailable(e) => (None, Some(e)),
            };
            json!({
                "name": o.name, "description": o.description, "type": o.kind.as_str(),
                "required": o.required, "default": if o.secret { None } else { o.default.clone() },
                "allowed": allowed, "values_error": error, "regex": o.regex.as_ref().map(|r| r.as_str()),
                "secret": o.secret, "min": o.min, "max": o.max, "delimiter": o.delimiter,
            })
        })
        .collect()
}

#[derive(Deserialize)]
pub struct ListQuery {
    folder: Option<String>,
    q: Option<String>,
}

pub async fn list(State(s): Shared, c: Caller, Query(q): Query<ListQuery>) -> Json<Value> {
    let env = s.env();
    let needle = q.q.as_deref().map(str::to_lowercase);
    let jobs: Vec<Value> = env
        .jobs
        .jobs
        .values()
        .filter(|j| c.who.can_read_job(&j.name))
        .filter(|j| {
            q.folder
                .as_deref()
                .is_none_or(|f| project_of(&j.name) == f.trim_matches('/'))
        })
        .filter(|j| {
            needle.as_deref().is_none_or(|n| {
                j.name.to_lowercase().contains(n) || j.description.to_lowercase().contains(n)
            })
        })
        .map(|j| {
            json!({
                "name": j.name, "folder": project_of(&j.name), "description": j.description,
                "scheduled": j.schedule.is_some(), "runnable": c.who.can_run_job(&j.name),
            })
        })
        .collect();
    Json(json!({ "jobs": jobs }))
}

pub async fn show(State(s): Shared, c: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let job = readable(&s, &c, &name)?;
    let values = s.option_values.shown(&job).await;
    let env = s.env();
    // The servers it would run on now, as `controller plan` shows them.
    let targets: Vec<String> =
        crate::exec::Plan::new(&env.inventory, job.clone(), &Launch::default())
            .map(|p| p.nodes.iter().map(|n| n.name.clone()).collect())
            .unwrap_or_default();
    Ok(Json(json!({
        "name": job.name, "folder": project_of(&job.name), "description": job.description,
        "file": job.file.file_name().map(|f| f.to_string_lossy().to_string()),
        "options": options_json(&job, &values),
        "steps": job.steps.iter().enumerate().map(|(i, st)| json!({"label": st.label(i), "kind": st.kind()})).collect::<Vec<_>>(),
        "targets": crate::exec::plan::targets_text(&job, None),
        "servers": targets,
        "schedule": job.schedule.as_ref().map(|sc| sc.crons.iter().map(|c| c.text.clone()).collect::<Vec<_>>()),
        "runnable": c.who.can_run_job(&job.name),
    })))
}

/// Option values from JSON: strings as they are, numbers and booleans as their text.
fn given(options: Option<&Value>) -> ApiResult<Vec<(String, String)>> {
    let Some(v) = options else {
        return Ok(Vec::new());
    };
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::field("options", "an object of name: value"))?;
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
            _ => Err(ApiError::field(
                &format!("options.{k}"),
                "a string, number or boolean",
            )),
        })
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    options: Option<Value>,
    /// Only the servers matching this filter too (as `run --limit`).
    limit: Option<String>,
}

pub async fn run(
    State(s): Shared,
    c: Caller,
    Path(name): Path<String>,
    OptBody(b): OptBody<RunBody>,
) -> ApiResult<Response> {
    let req = StartRun {
        job: name,
        options: given(b.options.as_ref())?,
        limit: b.limit,
        cause: "api".into(),
    };
    let admitted = runs::start(&s.env(), &c, req, Launch::default()).await?;
    Ok(started(&s, admitted))
}

/// Hands an admitted run to `serve`: 202 and its id.
fn started(s: &Web, admitted: Admitted) -> Response {
    let id = admitted.id().to_string();
    s.server.spawn_admitted(admitted);
    (StatusCode::ACCEPTED, Json(json!({"execution": id}))).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    #[serde(default)]
    failed_only: bool,
    options: Option<Value>,
}

pub async fn retry(
    State(s): Shared,
    c: Caller,
    Path(id): Path<String>,
    OptBody(b): OptBody<RetryBody>,
) -> ApiResult<Response> {
    let overrides = given(b.options.as_ref())?;
    let admitted = runs::retry(
        &s.env(),
        &c,
        &id,
        b.failed_only,
        &overrides,
        Launch::default(),
    )
    .await?;
    Ok(started(&s, admitted))
}

/// Recorded options as JSON (secrets are masked when recorded).
pub fn recorded_options(text: &str) -> Value {
    serde_json::from_str::<BTreeMap<String, String>>(text)
        .map(|m| json!(m))
        .unwrap_or(Value::Null)
}

/// Stops a running execution, on whichever controller runs it (the remote processes are
/// killed as on a timeout); the run ends `aborted`.
pub async fn abort(State(s): Shared, c: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let e = runs::abort(&s.store, &s.env().aborts, &c, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"aborting": e.id}))).into_response())
}
