//! The fleet in the API: agents as last seen, transfers and their lifecycle, and switching
//! a job's schedule off and on at run time.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Web;
use super::error::{ApiError, ApiResult};
use super::extract::Body;
use super::guard::Caller;
use crate::auth::Role;
use crate::clock::now_ms;

type Shared = State<Arc<Web>>;

pub async fn agents(State(s): Shared, c: Caller) -> ApiResult<Json<Value>> {
    if c.who.role < Role::Operator {
        return Err(ApiError::Forbidden(
            "the agents are shown to operators and admins".into(),
        ));
    }
    let now = now_ms();
    let rows = s.store.agents().await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|a| {
            json!({
                "name": a.name, "address": a.address, "version": a.version, "user": a.run_user,
                "certificate_expires": a.cert_not_after,
                "certificate_days_left": (a.cert_not_after - now) / 86_400_000,
                "last_contact": a.last_contact,
            })
        })
        .collect();
    Ok(Json(json!({ "agents": list })))
}

#[derive(Deserialize)]
pub struct TransfersQuery {
    scenario: Option<String>,
    status: Option<String>,
    limit: Option<String>,
}

pub async fn transfers(
    State(s): Shared,
    c: Caller,
    Query(q): Query<TransfersQuery>,
) -> ApiResult<Json<Value>> {
    let limit = super::extract::number("limit", q.limit.as_deref(), 1..=1000, 100)?;
    if let Some(sc) = &q.scenario
        && !c.who.can_read_job(sc)
    {
        return Err(ApiError::NotFound(format!("no job named `{sc}`")));
    }
    let statuses: Vec<String> = q
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = statuses
        .iter()
        .find(|s| !crate::store::TRANSFER_STATUSES.contains(&s.as_str()))
    {
        return Err(ApiError::field(
            "status",
            format!(
                "`{bad}` is not one of: {}",
                crate::store::TRANSFER_STATUSES.join(", ")
            ),
        ));
    }
    // Others' scenarios are left out after reading: read more so a page stays full.
    let read = if c.who.is_admin() || q.scenario.is_some() {
        limit
    } else {
        1000
    };
    let rows = s
        .store
        .transfers(q.scenario.as_deref(), &statuses, read)
        .await?;
    // A transfer is seen by whoever sees the execution that made it.
    let mut seen: std::collections::HashMap<String, bool> = Default::default();
    let mut visible = Vec::new();
    for t in rows {
        if visible.len() as i64 >= limit {
            break;
        }
        if !c.who.can_read_job(&t.scenario) {
            continue;
        }
        let ok = match seen.get(&t.execution_id) {
            Some(ok) => *ok,
            None => {
                let ok = c.who.is_admin()
                    || s.store
                        .execution(&t.execution_id)
                        .await
                        .is_ok_and(|e| c.who.sees(&e));
                seen.insert(t.execution_id.clone(), ok);
                ok
            }
        };
        if ok {
            visible.push(t);
        }
    }
    let list: Vec<Value> = visible
        .iter()
        .map(|t| {
            json!({
                "id": t.id, "scenario": t.scenario, "profile": t.profile, "direction": t.direction,
                "execution": t.execution_id, "file": t.file_name, "size": t.size,
                "sha256": t.sha256, "segments": t.segments, "status": t.status,
                "attempts": t.attempts, "error": t.error, "remote": t.remote,
                "created_at": t.created_at, "deposited_at": t.deposited_at,
                "delivered_at": t.delivered_at, "acknowledged_at": t.acknowledged_at,
            })
        })
        .collect();
    Ok(Json(json!({ "transfers": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    enabled: bool,
}

/// `PUT /api/v1/schedules/<job>` with `{"enabled": false}`: the schedule stops firing
/// until it is switched on again (it then owes no fire of the time it was off).
pub async fn switch_schedule(
    State(s): Shared,
    c: Caller,
    Path(name): Path<String>,
    Body(b): Body<Switch>,
) -> ApiResult<Json<Value>> {
    crate::actions::schedules::switch(&s.env(), &c, &name, b.enabled).await?;
    Ok(Json(json!({ "job": name, "enabled": b.enabled })))
}
