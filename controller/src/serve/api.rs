//! The HTTP API of `controller serve` (JSON): health, schedules, executions, starting a
//! job, reloading. Bind it to loopback or put it behind an authenticating proxy: it has
//! no authentication of its own yet. Every error goes through [`ApiError`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Server;
use super::error::{ApiError, ApiResult};
use crate::clock::now_ms;
use crate::exec::{Launch, execution_id};

type Shared = State<Arc<Server>>;

pub async fn run(server: Arc<Server>, listener: tokio::net::TcpListener, stop: CancellationToken) {
    let app = Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/schedules", get(schedules))
        .route("/api/v1/executions", get(executions))
        .route("/api/v1/executions/{id}", get(execution))
        .route("/api/v1/jobs/{*name}", post(run_job))
        .route("/api/v1/reload", post(reload))
        .with_state(server);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    {
        tracing::error!("HTTP API: {e}");
    }
}

async fn health(State(s): Shared) -> Json<Value> {
    let env = s.env();
    Json(json!({
        "instance": s.instance,
        "leader": s.is_leader(),
        "jobs": env.jobs.jobs.len(),
        "servers": env.inventory.nodes.len(),
        "time": now_ms(),
    }))
}

async fn schedules(State(s): Shared) -> Json<Value> {
    let env = s.env();
    let now = now_ms();
    let list: Vec<Value> = env
        .jobs
        .jobs
        .values()
        .filter_map(|j| {
            let sc = j.schedule.as_ref()?;
            let tz = sc.timezone.unwrap_or(env.cfg.serve.timezone);
            let next: Vec<i64> = sc.fires_between(now, i64::MAX, 3, tz);
            Some(json!({
                "job": j.name,
                "cron": sc.crons.iter().map(|c| c.text.clone()).collect::<Vec<_>>(),
                "timezone": tz.name(),
                "enabled": sc.enabled,
                "overlap": sc.overlap.as_str(),
                "missed": sc.missed.as_str(),
                "next": next,
            }))
        })
        .collect();
    Json(json!({ "schedules": list }))
}

async fn executions(
    State(s): Shared,
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let limit = match q.get("limit") {
        None => 50,
        Some(l) => l
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("limit `{l}`: a number from 1 to 1000")))?,
    };
    let rows = s
        .store
        .list_executions(q.get("job").map(String::as_str), limit)
        .await?;
    Ok(Json(
        json!({"executions": rows.iter().map(exec_json).collect::<Vec<_>>()}),
    ))
}

fn exec_json(e: &crate::store::ExecutionRow) -> Value {
    json!({
        "id": e.id, "job": e.job, "status": e.status, "cause": e.cause,
        "started_at": e.started_at, "finished_at": e.finished_at,
        "servers": {"total": e.nodes_total, "ok": e.nodes_ok, "failed": e.nodes_failed},
        "archive": e.archive, "error": e.error, "retry_of": e.retry_of, "parent_id": e.parent_id,
        "options": serde_json::from_str::<Value>(&e.options).unwrap_or(Value::Null),
    })
}

async fn execution(State(s): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let e = s.store.find_execution(&id).await?;
    let nodes = s.store.nodes(&e.id).await?;
    let mut v = exec_json(&e);
    v["nodes"] = nodes
        .iter()
        .map(|n| {
            json!({"server": n.node, "status": n.status, "exit_code": n.exit_code,
                   "step_reached": n.step_reached, "files": n.files, "error": n.error})
        })
        .collect();
    Ok(Json(v))
}

/// `POST /api/v1/jobs/<name>` with `{"options": {...}}`: starts the job now.
async fn run_job(
    State(s): Shared,
    Path(name): Path<String>,
    body: Option<Json<Value>>,
) -> ApiResult<Response> {
    let env = s.env();
    let Some(job) = env.jobs.get(&name).cloned() else {
        return Err(ApiError::NotFound(format!("no job named `{name}`")));
    };
    let given: Vec<(String, String)> = body
        .as_ref()
        .and_then(|b| b.get("options"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let options = ordo_jobs::resolve_options(&job, &given)
        .map_err(|errs| ApiError::BadRequest(errs.join("; ")))?;
    let launch = Launch {
        id: Some(execution_id()),
        options,
        cause: "api".into(),
        started_by: "api".into(),
        ..Launch::default()
    };
    crate::exec::Plan::new(&env.inventory, job.clone(), &launch)?;
    let id = launch.id.clone().unwrap_or_default();
    s.spawn_execution(job, launch);
    Ok((StatusCode::ACCEPTED, Json(json!({"execution": id}))).into_response())
}

async fn reload(State(s): Shared) -> ApiResult<Json<Value>> {
    match s.reload() {
        Ok(summary) => {
            tracing::info!("reloaded (API): {summary}");
            Ok(Json(json!({"reloaded": true, "summary": summary})))
        }
        Err(e) => {
            tracing::error!("reload refused (API), the previous jobs and inventory stay:\n{e}");
            Err(ApiError::Unprocessable(e))
        }
    }
}
