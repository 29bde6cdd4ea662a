//! From facts to alerts, and alerts to mails and webhooks. `queue_new` turns each new fact
//! into one alert per recipient address of every account whose rules want it (its own
//! addresses, its primary's when that one follows its secondaries, its administrator's
//! with `send_admin`), due at once or after the rule's delay. `deliver_due` sends what is
//! due, one mail per address with every alert due for it, and cancels a delayed alert
//! when its job or file was re-run successfully in the meantime. Both take `now`; both
//! are safe on two controllers at once (facts and alerts are claimed in the store), and
//! an alert the relay refused stays queued and is offered again later.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::{describe, rule_for_event};
use crate::project::ProjectConfig;
use crate::store::{AlertEventRow, AlertSettingsRow, OutboxRow, Store, StoreResult, UserRow};

const DAY_MS: i64 = 86_400_000;
/// An alert claimed this long ago and still not settled was being sent by a controller
/// that stopped: it is offered again.
const STALE_MS: i64 = 10 * 60_000;
/// The longest wait before an alert the relay refused is offered again.
const MAX_BACKOFF_MS: i64 = 3_600_000;
const BATCH: i64 = 500;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub queued: usize,
    pub sent: usize,
    pub cancelled: usize,
    pub failed: usize,
}

/// One pass: new facts queued, due alerts delivered.
pub async fn pass(
    store: &Store,
    cfg: &ProjectConfig,
    instance: &str,
    now: i64,
) -> StoreResult<Pass> {
    let queued = queue_new(store).await?;
    let mut p = deliver_due(store, cfg, instance, now).await?;
    p.queued = queued;
    Ok(p)
}

/// Turns the facts not handled yet into queued alerts; how many were queued.
pub async fn queue_new(store: &Store) -> StoreResult<usize> {
    let events = store.alert_events_todo(BATCH).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let users = store.users().await?;
    let mut queued = 0;
    for ev in events {
        queued += queue_event(store, &users, &ev).await?;
        // Queuing is idempotent: a controller that stops before this line loses nothing.
        store.claim_alert_event(&ev.id).await?;
    }
    Ok(queued)
}

async fn queue_event(store: &Store, users: &[UserRow], ev: &AlertEventRow) -> StoreResult<usize> {
    let Some((rule_type, positive)) = rule_for_event(&ev.kind) else {
        return Ok(0);
    };
    // A run an account started alerts that account; one nobody started (a schedule, a
    // trigger, the CLI) every account with a rule for its project.
    let owners = users.iter().filter(|u| {
        if ev.account.is_empty() {
            u.role == "admin"
                || u.projects
                    .iter()
                    .any(|g| crate::auth::grant_covers(g, &ev.project))
        } else {
            u.name == ev.account
        }
    });
    let mut queued = 0;
    for owner in owners.filter(|u| !u.disabled) {
        let Some(s) = store.alert_settings(&owner.name).await? else {
            continue;
        };
        if !s.active || (ev.test && !s.send_test) {
            continue;
        }
        let rules = store.alert_rules(&owner.name).await?;
        let Some(rule) = rules.iter().find(|r| {
            r.active && r.project == ev.project && r.kind == rule_type && r.positive == positive
        }) else {
            continue;
        };
        let due = ev.at
            + if positive {
                0
            } else {
                rule.delay_days * DAY_MS
            };
        for address in recipients(store, users, owner, &s).await? {
            let o = OutboxRow {
                id: format!("{}|{address}", ev.id),
                event_id: ev.id.clone(),
                account: owner.name.clone(),
                address,
                due_at: due,
                ..OutboxRow::default()
            };
            store.queue_alert(&o).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// `mail:` and `webhook:` addresses for an account's alert: its addresses (its own
/// when it lists none) and webhook; its primary's when that one follows its secondaries;
/// with `send_admin`, its administrator's (or the top administrators').
async fn recipients(
    store: &Store,
    users: &[UserRow],
    owner: &UserRow,
    s: &AlertSettingsRow,
) -> StoreResult<Vec<String>> {
    let mut out = own(owner, s);
    if let Some(p) = owner.primary_user.as_deref()
        && let Some(pu) = users.iter().find(|u| u.name == p && !u.disabled)
        && let Some(ps) = store.alert_settings(p).await?
        && ps.active
        && ps.secondary_alerts
    {
        out.extend(own(pu, &ps));
    }
    if s.send_admin {
        let admins = users.iter().filter(|u| {
            !u.disabled
                && u.role == "admin"
                && u.name != owner.name
                && match &owner.manager {
                    Some(m) => u.name == *m,
                    None => u.manager.is_none(),
                }
        });
        out.extend(
            admins
                .filter(|a| !a.email.is_empty())
                .map(|a| format!("mail:{}", a.email)),
        );
    }
    let mut seen = Vec::new();
    out.retain(|a| {
        let k = a.to_ascii_lowercase();
        let fresh = !seen.contains(&k);
        seen.push(k);
        fresh
    });
    Ok(out)
}

fn own(u: &UserRow, s: &AlertSettingsRow) -> Vec<String> {
    let mut out: Vec<String> = if s.mails.is_empty() {
        (!u.email.is_empty())
            .then(|| format!("mail:{}", u.email))
            .into_iter()
            .collect()
    } else {
        s.mails.iter().map(|m| format!("mail:{m}")).collect()
    };
    if !s.webhook.is_empty() {
        out.push(format!("webhook:{}", s.webhook));
    }
    out
}

/// Sends every alert due at `now`: one message per address with all of its alerts.
pub async fn deliver_due(
    store: &Store,
    cfg: &ProjectConfig,
    instance: &str,
    now: i64,
) -> StoreResult<Pass> {
    let mut pass = Pass::default();
    let mut by_address: BTreeMap<String, Vec<(OutboxRow, AlertEventRow)>> = BTreeMap::new();
    for o in store.alerts_due(now, STALE_MS, BATCH).await? {
        if !store.claim_alert(&o, instance, now).await? {
            continue;
        }
        let Some(ev) = store.alert_event(&o.event_id).await? else {
            store
                .settle_alert(&o.id, "cancelled", now, now, Some("its event is gone"))
                .await?;
            pass.cancelled += 1;
            continue;
        };
        // A negative alert that waited: a success of the same job or file since then
        // means it was re-run, and nobody needs the alert any more.
        let negative = rule_for_event(&ev.kind).is_some_and(|(_, p)| !p);
        if negative
            && o.due_at > ev.at
            && let Some(by) = store
                .alert_success_between(&ev.subject, ev.at, o.due_at)
                .await?
        {
            let why = format!("re-run successfully in execution {by}");
            store
                .settle_alert(&o.id, "cancelled", now, now, Some(&why))
                .await?;
            pass.cancelled += 1;
            continue;
        }
        by_address
            .entry(o.address.clone())
            .or_default()
            .push((o, ev));
    }
    for (address, items) in by_address {
        let sent = match address.split_once(':') {
            Some(("webhook", url)) => post(url, &items).await,
            Some((_, to)) => mail(cfg, to, &items).await,
            None => Err(format!("`{address}` is not an address")),
        };
        for (o, _) in &items {
            match &sent {
                Ok(()) => {
                    store.settle_alert(&o.id, "sent", now, now, None).await?;
                    pass.sent += 1;
                }
                Err(e) => {
                    let wait = (30_000i64 << o.attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
                    store
                        .settle_alert(&o.id, "pending", now, now + wait, Some(e))
                        .await?;
                    pass.failed += 1;
                }
            }
        }
        if let Err(e) = &sent {
            tracing::warn!(
                address,
                alerts = items.len(),
                "alerts not delivered, offered again later: {e}"
            );
        }
    }
    Ok(pass)
}

/// One line per alert: when, what, which execution.
fn line(cfg: &ProjectConfig, ev: &AlertEventRow) -> String {
    let when = crate::clock::zoned_time(ev.at, cfg.serve.timezone);
    let what = match ev.subject.strip_prefix("file:") {
        Some(_) => format!("{}: {} {}", ev.job, ev.detail, describe(&ev.kind)),
        None => format!("{} {} ({})", ev.job, describe(&ev.kind), ev.detail),
    };
    let who = if ev.account.is_empty() {
        String::new()
    } else {
        format!(", started by {}", ev.account)
    };
    format!("{when}  {what}  [execution {}{who}]", ev.execution_id)
}

async fn mail(
    cfg: &ProjectConfig,
    to: &str,
    items: &[(OutboxRow, AlertEventRow)],
) -> Result<(), String> {
    let subject = match items {
        [(_, ev)] => match ev.subject.strip_prefix("file:") {
            Some(_) => format!("[ordo] {}: {} {}", ev.job, ev.detail, describe(&ev.kind)),
            None => format!("[ordo] {} {}", ev.job, describe(&ev.kind)),
        },
        many => format!("[ordo] {} alerts", many.len()),
    };
    let mut body = String::from("ordo alerts for your account:\n\n");
    for (_, ev) in items {
        body.push_str(&line(cfg, ev));
        body.push('\n');
    }
    body.push_str("\nWhich events alert you, and who receives them, is set in your alert configuration (the console's Alerts page, or GET/PATCH /api/v1/alerts/me).\n");
    let m = crate::mail::Outgoing {
        to: vec![to.to_string()],
        cc: Vec::new(),
        subject,
        body,
        attachment: None,
    };
    crate::mail::send(&cfg.mail, &m)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn post(url: &str, items: &[(OutboxRow, AlertEventRow)]) -> Result<(), String> {
    let alerts: Vec<_> = items
        .iter()
        .map(|(o, ev)| {
            json!({"event": ev.kind, "job": ev.job, "project": ev.project, "execution": ev.execution_id,
                   "started_by": ev.account, "account": o.account, "at": ev.at, "detail": ev.detail,
                   "test": ev.test})
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let r = client
        .post(url)
        .json(&json!({ "alerts": alerts }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {}", r.status()))
    }
}
