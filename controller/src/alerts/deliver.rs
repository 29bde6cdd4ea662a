//! From facts to alerts, and alerts to mails and webhooks. `queue_new` turns each new fact
//! into one alert per recipient address of every account whose rules want it (its own
//! addresses, its primary's when that one follows its secondaries, its administrator's
//! with `send_admin`), due at once or after the rule's delay. `deliver_due` sends what is
//! due, one mail per address with every alert due for it, and cancels a delayed alert
//! when its job or file was re-run successfully in the meantime. Both take `now`; both
//! are safe on two controllers at once (facts and alerts are claimed in the store), and
//! an alert the relay refused stays queued and is offered again later.

use super::recipients::{Accounts, can_read};
use super::{describe, rule_for_event};
use crate::project::ProjectConfig;
use crate::store::{AlertEventRow, OutboxRow, Store, StoreResult};
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;
/// An alert claimed this long ago and still not settled was being sent by a controller
/// that stopped: it is offered again.
const STALE_MS: i64 = 10 * 60_000;
/// The longest wait before an alert the relay refused is offered again.
const MAX_BACKOFF_MS: i64 = 3_600_000;
const BATCH: i64 = 500;
/// An alert the relay or webhook refused this many times is given up (`failed`).
const MAX_TRIES: i64 = 30;
/// Facts and settled alerts are kept this long (a delay is 99 days at most).
const KEEP_MS: i64 = 120 * DAY_MS;

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
    let queued = queue_new(store, &cfg.serve.alerts.mail_domains).await?;
    let mut p = deliver_due(store, cfg, instance, now).await?;
    p.queued = queued;
    store.purge_alerts(now - KEEP_MS).await?;
    Ok(p)
}

/// Turns the facts not handled yet into queued alerts; how many were queued.
pub async fn queue_new(store: &Store, mail_domains: &[String]) -> StoreResult<usize> {
    let events = store.alert_events_todo(BATCH).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let mut accounts = Accounts::load(store, mail_domains).await?;
    let mut queued = 0;
    for ev in events {
        queued += queue_event(store, &mut accounts, &ev).await?;
        // Queuing is idempotent: a controller that stops before this line loses nothing.
        store.claim_alert_event(&ev.id).await?;
    }
    Ok(queued)
}

async fn queue_event(
    store: &Store,
    accounts: &mut Accounts,
    ev: &AlertEventRow,
) -> StoreResult<usize> {
    let Some((rule_type, positive)) = rule_for_event(&ev.kind) else {
        return Ok(0);
    };
    // A run an account started alerts that account; one nobody started (a schedule, a
    // trigger, the CLI) the primary accounts that may read its project (a secondary sees
    // only its own runs).
    let owners: Vec<String> = accounts
        .users
        .iter()
        .filter(|u| !u.disabled)
        .filter(|u| {
            if ev.account.is_empty() {
                u.primary_user.is_none() && can_read(u, &ev.project)
            } else {
                u.name == ev.account
            }
        })
        .map(|u| u.name.clone())
        .collect();
    let mut queued = 0;
    for owner in owners {
        let Some((s, rules)) = accounts.active(store, &owner).await? else {
            continue;
        };
        if ev.test && !s.send_test {
            continue;
        }
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
        for address in accounts.recipients(store, &owner, ev).await? {
            let o = OutboxRow {
                id: format!("{}|{owner}|{address}", ev.id),
                event_id: ev.id.clone(),
                account: owner.clone(),
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

/// The success that makes a negative alert pointless when it came in another execution
/// within the delay: the rule type's positive event (a run's success for lateness).
fn rerun_kind(kind: &str) -> &'static str {
    match kind {
        "transfer_failed" => "deposited",
        "unacknowledged" => "acknowledged",
        _ => "job_success",
    }
}

/// Sends every alert due at `now`: one message per address with all of its alerts. Each
/// address's alerts are claimed just before they go, and checked again: an account
/// switched off or disabled, an address removed, or a re-run within the delay cancels.
pub async fn deliver_due(
    store: &Store,
    cfg: &ProjectConfig,
    instance: &str,
    now: i64,
) -> StoreResult<Pass> {
    let mut pass = Pass::default();
    let mut by_address: BTreeMap<String, Vec<OutboxRow>> = BTreeMap::new();
    for o in store.alerts_due(now, STALE_MS, BATCH).await? {
        by_address.entry(o.address.clone()).or_default().push(o);
    }
    if by_address.is_empty() {
        return Ok(pass);
    }
    let mut accounts = Accounts::load(store, &cfg.serve.alerts.mail_domains).await?;
    for (address, rows) in by_address {
        let mut items: Vec<(OutboxRow, AlertEventRow)> = Vec::new();
        for o in rows {
            if !store.claim_alert(&o, instance, now).await? {
                continue;
            }
            match still_wanted(store, &mut accounts, &o).await? {
                Ok(ev) => items.push((o, ev)),
                Err(why) => {
                    store
                        .settle_alert(&o.id, instance, ("cancelled", Some(&why)), now, now)
                        .await?;
                    pass.cancelled += 1;
                }
            }
        }
        if items.is_empty() {
            continue;
        }
        let mut events: Vec<&AlertEventRow> = items.iter().map(|(_, ev)| ev).collect();
        events.dedup_by(|a, b| a.id == b.id);
        let sent = match address.split_once(':') {
            Some(("webhook", url)) => super::webhook::post(cfg, url, &items).await,
            Some((_, to)) => mail(cfg, to, &events).await,
            None => Err(format!("`{address}` is not an address")),
        };
        for (o, _) in &items {
            match &sent {
                Ok(()) => {
                    store
                        .settle_alert(&o.id, instance, ("sent", None), now, now)
                        .await?;
                    pass.sent += 1;
                }
                Err(e) if o.attempts + 1 >= MAX_TRIES => {
                    let why = format!("given up after {MAX_TRIES} tries: {e}");
                    store
                        .settle_alert(&o.id, instance, ("failed", Some(&why)), now, now)
                        .await?;
                    pass.failed += 1;
                }
                Err(e) => {
                    let wait = (30_000i64 << o.attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
                    store
                        .settle_alert(&o.id, instance, ("pending", Some(e)), now, now + wait)
                        .await?;
                    pass.failed += 1;
                }
            }
        }
        if let Err(e) = &sent {
            let shown = match address.split_once(':') {
                Some(("webhook", url)) => format!("webhook:{}", crate::webhook::shown_url(url)),
                _ => address.clone(),
            };
            tracing::warn!(
                address = shown,
                alerts = items.len(),
                "alerts not delivered, offered again later: {e}"
            );
        }
    }
    Ok(pass)
}

/// The alert's event if it should still go; why not otherwise.
async fn still_wanted(
    store: &Store,
    accounts: &mut Accounts,
    o: &OutboxRow,
) -> StoreResult<Result<AlertEventRow, String>> {
    let Some(ev) = store.alert_event(&o.event_id).await? else {
        return Ok(Err("its event is gone".into()));
    };
    if !accounts
        .recipients(store, &o.account, &ev)
        .await?
        .contains(&o.address)
    {
        return Ok(Err(format!(
            "no longer wanted: {}'s alerts are off, or this recipient was removed",
            o.account
        )));
    }
    // A negative alert that waited: a success of the same job or file in another run
    // since means it was re-run, and nobody needs the alert any more.
    let negative = rule_for_event(&ev.kind).is_some_and(|(_, p)| !p);
    if negative && o.due_at > ev.at {
        let kind = rerun_kind(&ev.kind);
        if let Some(by) = store
            .alert_success_between(&ev.subject, kind, &ev.execution_id, (ev.at, o.due_at))
            .await?
        {
            return Ok(Err(format!("re-run successfully in execution {by}")));
        }
    }
    Ok(Ok(ev))
}

/// Text from a run or a partner (a job's summary, a file's name) for one line of a
/// mail: control characters (a newline that would forge another line) become spaces.
fn flat(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    t.chars().take(500).collect()
}

/// One line per alert: when, what, which execution.
fn line(cfg: &ProjectConfig, ev: &AlertEventRow) -> String {
    let when = crate::clock::zoned_time(ev.at, cfg.serve.timezone);
    let detail = flat(&ev.detail);
    let what = match ev.subject.strip_prefix("file:") {
        Some(_) => format!("{}: {detail} {}", ev.job, describe(&ev.kind)),
        None => format!("{} {} ({detail})", ev.job, describe(&ev.kind)),
    };
    let who = if ev.account.is_empty() {
        String::new()
    } else {
        format!(", started by {}", ev.account)
    };
    format!("{when}  {what}  [execution {}{who}]", ev.execution_id)
}

async fn mail(cfg: &ProjectConfig, to: &str, events: &[&AlertEventRow]) -> Result<(), String> {
    let subject = match events {
        [ev] => match ev.subject.strip_prefix("file:") {
            Some(_) => format!(
                "[ordo] {}: {} {}",
                ev.job,
                flat(&ev.detail),
                describe(&ev.kind)
            ),
            None => format!("[ordo] {} {}", ev.job, describe(&ev.kind)),
        },
        many => format!("[ordo] {} alerts", many.len()),
    };
    let mut body = String::from("ordo alerts for your account:\n\n");
    for ev in events {
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
