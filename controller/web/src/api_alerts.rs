//! `/api/v1/alerts/{account}`: an account's alert configuration, read and changed by the
//! account itself (`me`), its primary account, or an administrator who manages it; the
//! fields the administrator hid or locked bind the first two.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::Web;
use super::error::{ApiError, ApiResult};
use super::extract::Body;
use super::guard::Caller;
use crate::alerts::change::{self, Mode};
use crate::alerts::{self, AlertConfig};
use crate::project::settings::{AlertPolicy, FieldMode};
use crate::store::UserRow;

type Shared = State<Arc<Web>>;

/// The account `name` (`me`: the caller) and whether the caller is bound by the policy
/// (not an administrator: the account itself or its primary); not found when the caller
/// may not see it.
pub async fn target(s: &Web, c: &Caller, name: &str) -> ApiResult<(UserRow, bool)> {
    let name = if name == "me" {
        c.who.name.as_str()
    } else {
        name
    };
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::field("account", "1 to 100 characters"));
    }
    let missing = || ApiError::NotFound(format!("no account `{name}`"));
    let u = s.store.user(name).await?.ok_or_else(missing)?;
    if c.who.manages(&u) || (c.who.is_admin() && c.who.name == u.name) {
        Ok((u, false))
    } else if c.who.name == u.name || u.primary_user.as_deref() == Some(c.who.name.as_str()) {
        Ok((u, true))
    } else {
        Err(missing())
    }
}

/// The configuration, the projects the caller may set rules for (the account's; for its
/// primary, those both may read), and the policy that binds the caller.
pub async fn current(
    s: &Web,
    who: &crate::auth::Principal,
    (u, bound): (&UserRow, bool),
) -> ApiResult<(AlertConfig, Vec<String>, Option<AlertPolicy>)> {
    let env = s.env();
    let mut policy = alerts::policy_for(&env.cfg, u);
    let config = alerts::load(&s.store, u, &policy).await?;
    let mut projects = alerts::projects_of(u, &env.jobs);
    if who.name != u.name && !who.is_admin() {
        projects.retain(|p| who.projects.iter().any(|g| crate::auth::grant_covers(g, p)));
        // A primary sets its secondary's rules in the projects both see, never where the
        // secondary's alerts go nor whether it gets them: those would carry alerts about
        // projects the primary may not read.
        for field in ["mails", "webhook", "active"] {
            if policy.mode(field) == FieldMode::Editable {
                policy.fields.insert(field.to_string(), FieldMode::Locked);
            }
        }
    }
    Ok((config, projects, bound.then_some(policy)))
}

pub async fn show(
    State(s): Shared,
    c: Caller,
    Path(account): Path<String>,
) -> ApiResult<Json<Value>> {
    let (u, bound) = target(&s, &c, &account).await?;
    let (config, projects, policy) = current(&s, &c.who, (&u, bound)).await?;
    Ok(Json(alerts::to_json(&config, &projects, policy.as_ref())))
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
    let (u, bound) = target(&s, &c, &account).await?;
    let (config, projects, policy) = current(&s, &c.who, (&u, bound)).await?;
    let domains = &s.env().cfg.serve.alerts.mail_domains;
    let next = change::apply(&config, &body, mode, &projects, policy.as_ref(), domains)
        .map_err(ApiError::Fields)?;
    let saved = store_change(&s, &c.who.label(), next).await?;
    c.audit(&s, "alerts", &u.name, &alerts::summary(&saved))
        .await;
    Ok(Json(alerts::to_json(&saved, &projects, policy.as_ref())))
}

/// Writes a changed configuration, stamped with who changed it and when.
pub async fn store_change(s: &Web, who: &str, mut next: AlertConfig) -> ApiResult<AlertConfig> {
    next.settings.changed_by = who.to_string();
    next.settings.changed_at = crate::clock::now_ms();
    s.store.save_alerts(&next.settings, &next.rules).await?;
    Ok(next)
}

/// The account's alerts, newest first: to whom, when due, sent or not and why.
pub async fn queue(
    State(s): Shared,
    c: Caller,
    Path(account): Path<String>,
) -> ApiResult<Json<Value>> {
    let (u, bound) = target(&s, &c, &account).await?;
    let (config, _, policy) = current(&s, &c.who, (&u, bound)).await?;
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
