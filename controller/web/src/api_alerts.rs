//! `/api/v1/alerts/{account}`: an account's alert configuration, read and changed by the
//! account itself (`me`), its primary account, or an administrator who manages it; the
//! fields the administrator hid or locked bind the first two.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::Web;
use super::error::ApiResult;
use super::extract::Body;
use super::guard::Caller;
use crate::actions::{self, alerts::AlertsCx};
use crate::alerts::{self, Mode};
use crate::project::settings::FieldMode;

type Shared = State<Arc<Web>>;

/// What the alert actions need, from the loaded project.
pub fn cx<'a>(s: &'a Web, env: &'a crate::project::Env) -> AlertsCx<'a> {
    AlertsCx {
        store: &s.store,
        cfg: &env.cfg,
        jobs: &env.jobs,
    }
}

pub async fn show(
    State(s): Shared,
    c: Caller,
    Path(account): Path<String>,
) -> ApiResult<Json<Value>> {
    let env = s.env();
    let o = actions::alerts::open(&cx(&s, &env), &c, &account).await?;
    Ok(Json(alerts::to_json(
        &o.config,
        &o.projects,
        o.policy.as_ref(),
    )))
}

pub async fn replace(
    s: Shared,
    c: Caller,
    a: Path<String>,
    b: Body<Value>,
) -> ApiResult<Json<Value>> {
    save(s, c, a, b, Mode::Put).await
}

pub async fn patch(
    s: Shared,
    c: Caller,
    a: Path<String>,
    b: Body<Value>,
) -> ApiResult<Json<Value>> {
    save(s, c, a, b, Mode::Patch).await
}

async fn save(
    State(s): Shared,
    c: Caller,
    Path(account): Path<String>,
    Body(body): Body<Value>,
    mode: Mode,
) -> ApiResult<Json<Value>> {
    let env = s.env();
    let cx = cx(&s, &env);
    let o = actions::alerts::open(&cx, &c, &account).await?;
    let saved = actions::alerts::change(&cx, &c, &o, &body, mode).await?;
    Ok(Json(alerts::to_json(
        &saved,
        &o.projects,
        o.policy.as_ref(),
    )))
}

/// The account's alerts, newest first: to whom, when due, sent or not and why.
pub async fn queue(
    State(s): Shared,
    c: Caller,
    Path(account): Path<String>,
) -> ApiResult<Json<Value>> {
    let env = s.env();
    let o = actions::alerts::open(&cx(&s, &env), &c, &account).await?;
    let (u, config, policy, bound) = (&o.account, &o.config, &o.policy, o.policy.is_some());
    // An account holder sees where its alerts went only for the recipients it may see
    // (its own addresses and webhook); the others (its primary's, its administrator's)
    // are named by role, without their errors.
    let visible = |field: &str| {
        policy
            .as_ref()
            .is_none_or(|p| p.mode(field) != FieldMode::Hidden)
    };
    let mut mine: Vec<String> = Vec::new();
    if visible("mails") {
        if config.settings.mails.is_empty() {
            mine.push(format!("mail:{}", u.email));
        }
        mine.extend(config.settings.mails.iter().map(|m| format!("mail:{m}")));
    }
    if visible("webhook") && !config.settings.webhook.is_empty() {
        mine.push(format!("webhook:{}", config.settings.webhook));
    }
    let rows = s.store.alert_outbox(Some(&u.name), 200).await?;
    let alerts: Vec<Value> = rows
        .iter()
        .map(|o| {
            let shown = !bound || mine.iter().any(|m| m.eq_ignore_ascii_case(&o.address));
            let (to, note) = if shown {
                (o.address.clone(), o.last_error.clone())
            } else {
                (
                    "another recipient (its primary account or administrator)".to_string(),
                    None,
                )
            };
            json!({"event": o.event_id, "to": to, "due_at": o.due_at, "state": o.state,
                   "attempts": o.attempts, "sent_at": o.sent_at, "note": note})
        })
        .collect();
    Ok(Json(json!({ "account": u.name, "alerts": alerts })))
}
