//! The HTTP API of `controller serve` (JSON): health, schedules, executions, starting a
//! job, reloading. Bind it to loopback or put it behind an authenticating proxy: it has
//! no authentication of its own yet.

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
use crate::engine::now_ms;
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

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({"error": message.into()}))).into_response()
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

async fn executions(State(s): Shared, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    match s
        .store
        .list_executions(q.get("job").map(String::as_str), limit)
        .await
    {
        Ok(rows) => Json(json!({"executions": rows.iter().map(exec_json).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
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

async fn execution(State(s): Shared, Path(id): Path<String>) -> Response {
    let e = match s.store.find_execution(&id).await {
        Ok(e) => e,
        Err(e) => return error(StatusCode::NOT_FOUND, e.to_string()),
    };
    let nodes = s.store.nodes(&e.id).await.unwrap_or_default();
    let mut v = exec_json(&e);
    v["nodes"] = nodes
        .iter()
        .map(|n| {
            json!({"server": n.node, "status": n.status, "exit_code": n.exit_code,
                   "step_reached": n.step_reached, "files": n.files, "error": n.error})
        })
        .collect();
    Json(v).into_response()
}

/// `POST /api/v1/jobs/<name>` with `{"options": {...}}`: starts the job now.
async fn run_job(
    State(s): Shared,
    Path(name): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let env = s.env();
    let Some(job) = env.jobs.get(&name).cloned() else {
        return error(StatusCode::NOT_FOUND, format!("no job named `{name}`"));
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
    let options = match ordo_jobs::resolve_options(&job, &given) {
        Ok(o) => o,
        Err(errs) => return error(StatusCode::BAD_REQUEST, errs.join("; ")),
    };
    let launch = Launch {
        id: Some(execution_id()),
        options,
        cause: "api".into(),
        started_by: "api".into(),
        ..Launch::default()
    };
    if let Err(e) = crate::exec::select_nodes(&env.inventory, &job, &launch) {
        return error(StatusCode::BAD_REQUEST, e.0);
    }
    let id = launch.id.clone().unwrap_or_default();
    s.spawn_execution(job, launch);
    (StatusCode::ACCEPTED, Json(json!({"execution": id}))).into_response()
}

async fn reload(State(s): Shared) -> Response {
    match s.reload() {
        Ok(summary) => {
            tracing::info!("reloaded (API): {summary}");
            Json(json!({"reloaded": true, "summary": summary})).into_response()
        }
        Err(e) => {
            tracing::error!("reload refused (API), the previous jobs and inventory stay:\n{e}");
            error(StatusCode::UNPROCESSABLE_ENTITY, e)
        }
    }
}
