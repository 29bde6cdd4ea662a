//! Executions in the API: the history with filters and paging, one execution with its
//! servers, its log (all of it, or live as Server-Sent Events), its archive. A caller sees
//! only what [`Principal::sees`](crate::auth::Principal::sees) allows; anything else is
//! answered as if it did not exist.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body as HttpBody;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Web;
use super::api_jobs::recorded_options;
use super::error::{ApiError, ApiResult};
use super::extract::number;
use super::guard::Caller;
use crate::store::{ExecFilter, ExecutionRow, LogLine, Scope};

type Shared = State<Arc<Web>>;

/// The execution `id` (or a unique prefix), if the caller may see it.
pub async fn visible(s: &Web, c: &Caller, id: &str) -> ApiResult<ExecutionRow> {
    if id.is_empty() || id.len() > 100 {
        return Err(ApiError::field("id", "1 to 100 characters"));
    }
    let e = s.store.execution(id).await?;
    if c.who.sees(&e) {
        Ok(e)
    } else {
        Err(ApiError::NotFound(format!("no execution matches `{id}`")))
    }
}

fn exec_json(e: &ExecutionRow) -> Value {
    json!({
        "id": e.id, "job": e.job, "status": e.status, "cause": e.cause,
        "started_by": e.started_by, "account": e.account,
        "started_at": e.started_at, "finished_at": e.finished_at,
        "servers": {"total": e.nodes_total, "ok": e.nodes_ok, "failed": e.nodes_failed},
        "archive": e.archive.is_some(), "error": e.error, "retry_of": e.retry_of,
        "parent_id": e.parent_id, "options": recorded_options(&e.options),
        "resumed_at_step": e.resumed_from.map(|i| i + 1),
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    job: Option<String>,
    status: Option<String>,
    user: Option<String>,
    /// Unix ms, or RFC 3339.
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    page: Option<String>,
}

fn time(field: &str, v: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(t) = v else { return Ok(None) };
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| Some(d.timestamp_millis()))
        .map_err(|_| {
            ApiError::field(
                field,
                format!("`{t}`: Unix milliseconds or an RFC 3339 time"),
            )
        })
}

pub async fn executions(
    State(s): Shared,
    c: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = number("limit", q.limit.as_deref(), 1..=1000, 50)?;
    let page = number("page", q.page.as_deref(), 1..=1_000_000, 1)?;
    if let Some(st) = &q.status
        && st.parse::<crate::store::ExecutionStatus>().is_err()
    {
        return Err(ApiError::field(
            "status",
            format!("`{st}` is not an execution status"),
        ));
    }
    let scope = (!c.who.is_admin()).then(|| {
        let (accounts, unowned) = c.who.visible_accounts();
        Scope {
            folders: c.who.projects.clone(),
            accounts,
            unowned,
        }
    });
    let f = ExecFilter {
        job: q.job.clone(),
        status: q.status.clone(),
        account: q.user.clone(),
        since: time("since", q.since.as_deref())?,
        until: time("until", q.until.as_deref())?,
        offset: (page - 1) * limit,
        limit,
        scope,
    };
    let (rows, total) = s.store.list_filtered(&f).await?;
    Ok(Json(json!({
        "executions": rows.iter().map(exec_json).collect::<Vec<_>>(),
        "page": page, "limit": limit, "total": total,
    })))
}

pub async fn execution(
    State(s): Shared,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let e = visible(&s, &c, &id).await?;
    let nodes = s.store.nodes(&e.id).await?;
    let files = s.store.files(&e.id).await?;
    let mut v = exec_json(&e);
    v["nodes"] = nodes
        .iter()
        .map(|n| {
            let collected: Vec<&str> = files
                .iter()
                .filter(|f| f.node == n.node)
                .map(|f| f.remote_path.as_str())
                .collect();
            json!({"server": n.node, "host": n.host, "status": n.status, "exit_code": n.exit_code,
                   "started_at": n.started_at, "finished_at": n.finished_at,
                   "step_reached": n.step_reached, "files": n.files, "collected": collected,
                   "error": n.error})
        })
        .collect();
    // What it started: a group's members (job steps) in order, then its follow-ups.
    v["children"] = s
        .store
        .children(&e.id)
        .await?
        .iter()
        .filter(|ch| c.who.sees(ch))
        .map(exec_json)
        .collect();
    Ok(Json(v))
}

fn line_json(l: &LogLine) -> Value {
    json!({"seq": l.seq, "server": l.node, "step": l.step, "stream": l.stream,
           "time": l.ts, "line": l.line})
}

#[derive(Deserialize)]
pub struct LogQuery {
    server: Option<String>,
    after: Option<String>,
}

pub async fn log(
    State(s): Shared,
    c: Caller,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<Value>> {
    let e = visible(&s, &c, &id).await?;
    let after = number("after", q.after.as_deref(), -1..=i64::MAX, -1)?;
    let lines = s
        .store
        .logs_after(&e.id, q.server.as_deref(), after, 100_000)
        .await?;
    Ok(Json(json!({
        "execution": e.id, "status": e.status,
        "lines": lines.iter().map(line_json).collect::<Vec<_>>(),
    })))
}

/// Live logs open at once per account; a stream lasts this long, then the browser's
/// EventSource reconnects (from `Last-Event-ID`), its credentials checked again.
const STREAMS_PER_ACCOUNT: usize = 16;
const STREAM_LIFE: Duration = Duration::from_secs(300);
/// Lines read and sent at once (one event).
const BATCH: i64 = 2000;

/// Counts an account's open streams; the count drops with it.
struct StreamSlot(Arc<Web>, String);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut m = self.0.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n = n.saturating_sub(1);
        }
    }
}

#[derive(Deserialize)]
pub struct EventsQuery {
    after: Option<String>,
}

/// New lines, in one event (a JSON array) per batch read: a browser parses one message
/// for hundreds of lines. Its `id` is the last line's sequence number.
fn sse_lines(lines: &[LogLine]) -> Option<Event> {
    let last = lines.last()?;
    let data: Vec<Value> = lines.iter().map(line_json).collect();
    Some(
        Event::default()
            .event("lines")
            .id(last.seq.to_string())
            .data(Value::from(data).to_string()),
    )
}

/// `event: lines` with the new lines, a JSON array (its `id` is the last one's sequence
/// number: a reconnecting client resumes with `Last-Event-ID`, or `?after=`),
/// `event: progress` with the servers done, and `event: end` with the status when it ended.
pub async fn events(
    State(s): Shared,
    c: Caller,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let e = visible(&s, &c, &id).await?;
    let from_header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut after: i64 = from_header
        .or_else(|| q.after.as_deref().and_then(|a| a.parse().ok()))
        .unwrap_or(-1);
    {
        let mut m = s.streams.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(c.who.name.clone()).or_default();
        if *n >= STREAMS_PER_ACCOUNT {
            return Err(ApiError::Conflict(format!(
                "{} live logs are open for {} already: close some",
                STREAMS_PER_ACCOUNT, c.who.name
            )));
        }
        *n += 1;
    }
    let slot = StreamSlot(s.clone(), c.who.name.clone());
    // A group's progress is its members', not its (absent) servers'.
    let group = s
        .env()
        .jobs
        .get(&e.job)
        .filter(|j| !j.runs_on_servers())
        .cloned();
    let store = s.store.clone();
    let stop = s.cancel.clone();
    let stream = async_stream(move |tx| async move {
        let _slot = slot;
        let ends = tokio::time::Instant::now() + STREAM_LIFE;
        let mut progress = (-1, -1);
        loop {
            let lines = store
                .logs_after(&e.id, None, after, BATCH)
                .await
                .unwrap_or_else(|err| {
                    tracing::warn!("live log of {}: {err}", e.id);
                    Vec::new()
                });
            if let Some(ev) = sse_lines(&lines) {
                after = lines.last().map_or(after, |l| l.seq);
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            if lines.len() as i64 == BATCH {
                continue;
            }
            let counts = match &group {
                Some(j) => store
                    .children(&e.id)
                    .await
                    .map(|ch| crate::exec::group_progress(j, &e, &ch)),
                None => store.node_counts(&e.id).await,
            };
            if let Ok(p) = counts
                && p != progress
            {
                progress = p;
                let data = json!({"total": p.0, "done": p.1}).to_string();
                if tx
                    .send(Event::default().event("progress").data(data))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if let Ok(row) = store.execution(&e.id).await
                && !row.status.is_running()
            {
                // Lines written just before the end.
                loop {
                    let rest = store
                        .logs_after(&e.id, None, after, BATCH)
                        .await
                        .unwrap_or_default();
                    let Some(ev) = sse_lines(&rest) else { break };
                    after = rest.last().map_or(after, |l| l.seq);
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                let data = json!({"status": row.status, "label": status_label(row.status)});
                let _ = tx
                    .send(Event::default().event("end").data(data.to_string()))
                    .await;
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                _ = tokio::time::sleep_until(ends) => return,
                _ = tx.closed() => return,
                _ = stop.cancelled() => return,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// How a status reads to a person: `Succeeded`, `Timed out`.
pub fn status_label(s: crate::store::ExecutionStatus) -> String {
    let t = s.as_str().replace('-', " ");
    let mut c = t.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// A stream fed by a task through a small channel (the task ends when the client leaves).
fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), Ok)
}

pub async fn archive(State(s): Shared, c: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let e = visible(&s, &c, &id).await?;
    let Some(path) = e.archive.clone() else {
        return Err(ApiError::NotFound(format!(
            "execution {} has no archive",
            e.id
        )));
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|err| ApiError::NotFound(format!("archive of {}: {err}", e.id)))?;
    let name = std::path::Path::new(&path)
        .file_name()
        .map(|n| n.to_string_lossy().replace(['"', '\\', '\r', '\n'], "_"))
        .unwrap_or_else(|| "archive.tar.gz".into());
    let mut r = HttpBody::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let h = r.headers_mut();
    let ct = if name.ends_with(".p7m") {
        "application/octet-stream"
    } else {
        "application/gzip"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
