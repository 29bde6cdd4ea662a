//! Alert configuration per account, the events that may raise alerts, and the outbox of
//! alerts to deliver (the alerts module).

use sqlx::{AssertSqlSafe, Row};

use super::{Store, StoreResult};

/// An account's alert switches and recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSettingsRow {
    pub account: String,
    pub active: bool,
    pub send_admin: bool,
    pub secondary_alerts: bool,
    pub send_test: bool,
    pub mails: Vec<String>,
    /// Alerts are also POSTed here as JSON (empty: none).
    pub webhook: String,
    pub changed_by: String,
    pub changed_at: i64,
}

/// One message rule of an account for one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRuleRow {
    pub project: String,
    pub kind: String,
    pub positive: bool,
    pub active: bool,
    pub delay_days: i64,
}

/// A fact that may raise alerts.
#[derive(Debug, Clone, Default)]
pub struct AlertEventRow {
    /// Unique per fact: `<execution>:job_failure`, `<transfer>:delivered`.
    pub id: String,
    /// job_start, job_success, job_failure, job_late, deposited, delivered, acknowledged,
    /// unacknowledged, transfer_failed, received.
    pub kind: String,
    pub project: String,
    /// What a re-run is about: `job:<name>` or `file:<scenario>/<file name>`.
    pub subject: String,
    pub job: String,
    pub execution_id: String,
    /// Who started the execution ('' for schedules, triggers, the CLI).
    pub account: String,
    pub test: bool,
    pub at: i64,
    pub detail: String,
}

/// An alert for one address (`mail:a@b` or `webhook:https://...`).
#[derive(Debug, Clone, Default)]
pub struct OutboxRow {
    pub id: String,
    pub event_id: String,
    pub account: String,
    pub address: String,
    pub due_at: i64,
    pub state: String,
    pub attempts: i64,
    pub next_try_at: i64,
    pub claimed_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

const EVENT_SELECT: &str = "SELECT id, kind, project, subject, job, execution_id, account, test, at, detail FROM alert_events";
const OUTBOX_SELECT: &str = "SELECT id, event_id, account, address, due_at, state, attempts, next_try_at, claimed_at, sent_at, last_error FROM alert_outbox";

fn event_row(r: &sqlx::any::AnyRow) -> AlertEventRow {
    AlertEventRow {
        id: r.get(0),
        kind: r.get(1),
        project: r.get(2),
        subject: r.get(3),
        job: r.get(4),
        execution_id: r.get(5),
        account: r.get(6),
        test: r.get::<i32, _>(7) != 0,
        at: r.get(8),
        detail: r.get(9),
    }
}

fn outbox_row(r: &sqlx::any::AnyRow) -> OutboxRow {
    OutboxRow {
        id: r.get(0),
        event_id: r.get(1),
        account: r.get(2),
        address: r.get(3),
        due_at: r.get(4),
        state: r.get(5),
        attempts: r.get(6),
        next_try_at: r.get(7),
        claimed_at: r.get(8),
        sent_at: r.get(9),
        last_error: r.get(10),
    }
}

/// Records a fact once (a second of the same `id` is ignored), in a transaction or not.
pub(super) async fn insert_event<'c, X>(ex: X, e: &AlertEventRow) -> StoreResult<()>
where
    X: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query("INSERT INTO alert_events (id, kind, project, subject, job, execution_id, account, test, at, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING")
        .bind(&e.id)
        .bind(&e.kind)
        .bind(&e.project)
        .bind(&e.subject)
        .bind(&e.job)
        .bind(&e.execution_id)
        .bind(&e.account)
        .bind(i32::from(e.test))
        .bind(e.at)
        .bind(&e.detail)
        .execute(ex)
        .await?;
    Ok(())
}

impl Store {
    /// An account's settings, if it has any yet.
    pub async fn alert_settings(&self, account: &str) -> StoreResult<Option<AlertSettingsRow>> {
        let r = sqlx::query("SELECT account, active, send_admin, secondary_alerts, send_test, mails, webhook, changed_by, changed_at FROM alert_settings WHERE account = $1")
            .bind(account)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| AlertSettingsRow {
            account: r.get(0),
            active: r.get::<i32, _>(1) != 0,
            send_admin: r.get::<i32, _>(2) != 0,
            secondary_alerts: r.get::<i32, _>(3) != 0,
            send_test: r.get::<i32, _>(4) != 0,
            mails: serde_json::from_str(&r.get::<String, _>(5)).unwrap_or_default(),
            webhook: r.get(6),
            changed_by: r.get(7),
            changed_at: r.get(8),
        }))
    }

    /// An account's message rules (all of them, active or not), by project.
    pub async fn alert_rules(&self, account: &str) -> StoreResult<Vec<AlertRuleRow>> {
        let rows = sqlx::query("SELECT project, type, positive, active, delay_days FROM alert_rules WHERE account = $1 ORDER BY project, type, positive DESC")
            .bind(account)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| AlertRuleRow {
                project: r.get(0),
                kind: r.get(1),
                positive: r.get::<i32, _>(2) != 0,
                active: r.get::<i32, _>(3) != 0,
                delay_days: i64::from(r.get::<i32, _>(4)),
            })
            .collect())
    }

    /// Replaces an account's settings and rules, in one transaction.
    pub async fn save_alerts(
        &self,
        s: &AlertSettingsRow,
        rules: &[AlertRuleRow],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO alert_settings (account, active, send_admin, secondary_alerts, send_test, mails, webhook, changed_by, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (account) DO UPDATE SET active = $2, send_admin = $3, secondary_alerts = $4, send_test = $5, mails = $6, webhook = $7, changed_by = $8, changed_at = $9")
            .bind(&s.account)
            .bind(i32::from(s.active))
            .bind(i32::from(s.send_admin))
            .bind(i32::from(s.secondary_alerts))
            .bind(i32::from(s.send_test))
            .bind(serde_json::to_string(&s.mails).unwrap_or_else(|_| "[]".into()))
            .bind(&s.webhook)
            .bind(&s.changed_by)
            .bind(s.changed_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM alert_rules WHERE account = $1")
            .bind(&s.account)
            .execute(&mut *tx)
            .await?;
        for r in rules {
            sqlx::query("INSERT INTO alert_rules (account, project, type, positive, active, delay_days) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account, project, type, positive) DO UPDATE SET active = $5, delay_days = $6")
                .bind(&s.account)
                .bind(&r.project)
                .bind(&r.kind)
                .bind(i32::from(r.positive))
                .bind(i32::from(r.active))
                .bind(r.delay_days as i32)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether any account has an active rule of `kind` for `project` (`late` is watched
    /// only when someone listens).
    pub async fn alert_rule_exists(&self, project: &str, kind: &str) -> StoreResult<bool> {
        let r = sqlx::query("SELECT 1 FROM alert_rules r JOIN alert_settings s ON s.account = r.account WHERE r.project = $1 AND r.type = $2 AND r.active = 1 AND s.active = 1 LIMIT 1")
            .bind(project)
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.is_some())
    }

    /// Records a fact once (a second record of the same `id` is ignored).
    pub async fn record_alert_event(&self, e: &AlertEventRow) -> StoreResult<()> {
        insert_event(&self.pool, e).await
    }

    /// Facts not turned into alerts yet, oldest first.
    pub async fn alert_events_todo(&self, limit: i64) -> StoreResult<Vec<AlertEventRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{EVENT_SELECT} WHERE processed = 0 ORDER BY at, id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(event_row).collect())
    }

    pub async fn alert_event(&self, id: &str) -> StoreResult<Option<AlertEventRow>> {
        let r = sqlx::query(AssertSqlSafe(format!("{EVENT_SELECT} WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.as_ref().map(event_row))
    }

    /// Marks a fact handled; false when another controller did first.
    pub async fn claim_alert_event(&self, id: &str) -> StoreResult<bool> {
        let r =
            sqlx::query("UPDATE alert_events SET processed = 1 WHERE id = $1 AND processed = 0")
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The first `kind` fact for `subject` after `after` and no later than `until`, in
    /// another execution than `not_in`: the execution that re-ran it successfully.
    pub async fn alert_success_between(
        &self,
        subject: &str,
        kind: &str,
        not_in: &str,
        (after, until): (i64, i64),
    ) -> StoreResult<Option<String>> {
        let r = sqlx::query("SELECT execution_id FROM alert_events WHERE subject = $1 AND kind = $2 AND execution_id <> $3 AND at > $4 AND at <= $5 ORDER BY at LIMIT 1")
            .bind(subject)
            .bind(kind)
            .bind(not_in)
            .bind(after)
            .bind(until)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.get(0)))
    }

    /// Forgets facts and settled alerts older than `before` (alerts wait 99 days at most).
    pub async fn purge_alerts(&self, before: i64) -> StoreResult<u64> {
        let a = sqlx::query("DELETE FROM alert_outbox WHERE due_at < $1 AND state IN ('sent', 'cancelled', 'failed')")
            .bind(before)
            .execute(&self.pool)
            .await?;
        let e = sqlx::query("DELETE FROM alert_events WHERE at < $1 AND processed = 1 AND NOT EXISTS (SELECT 1 FROM alert_outbox o WHERE o.event_id = alert_events.id)")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(a.rows_affected() + e.rows_affected())
    }

    /// Queues an alert (once per event and address).
    pub async fn queue_alert(&self, o: &OutboxRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO alert_outbox (id, event_id, account, address, due_at, state, attempts, next_try_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $5) ON CONFLICT (id) DO NOTHING")
            .bind(&o.id)
            .bind(&o.event_id)
            .bind(&o.account)
            .bind(&o.address)
            .bind(o.due_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Alerts due now (pending, their time come), and those a controller claimed but did
    /// not settle within `stale_ms` (it stopped while sending).
    pub async fn alerts_due(
        &self,
        now: i64,
        stale_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{OUTBOX_SELECT} WHERE (state = 'pending' AND next_try_at <= $1) OR (state = 'sending' AND claimed_at < $2) ORDER BY due_at, id LIMIT $3"
        )))
        .bind(now)
        .bind(now - stale_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(outbox_row).collect())
    }

    /// Takes an alert for sending, as it was read (state, tries, claim): false when
    /// another controller took it meanwhile.
    pub async fn claim_alert(&self, o: &OutboxRow, by: &str, now: i64) -> StoreResult<bool> {
        let r = sqlx::query("UPDATE alert_outbox SET state = 'sending', claimed_by = $2, claimed_at = $3 WHERE id = $1 AND state = $4 AND attempts = $5 AND COALESCE(claimed_at, -1) = $6")
            .bind(&o.id)
            .bind(by)
            .bind(now)
            .bind(&o.state)
            .bind(o.attempts)
            .bind(o.claimed_at.unwrap_or(-1))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Settles an alert this controller (`by`) claimed: `sent`, `cancelled` or `failed`
    /// (with why), or back to `pending` until `next_try_at` (with the error). Nothing
    /// when another controller has it now.
    pub async fn settle_alert(
        &self,
        id: &str,
        by: &str,
        (state, note): (&str, Option<&str>),
        now: i64,
        next_try_at: i64,
    ) -> StoreResult<()> {
        let sent = (state == "sent").then_some(now);
        let tried = i64::from(matches!(state, "pending" | "sent" | "failed"));
        sqlx::query("UPDATE alert_outbox SET state = $2, sent_at = $3, next_try_at = $4, last_error = $5, attempts = attempts + $6, claimed_by = NULL, claimed_at = NULL WHERE id = $1 AND claimed_by = $7 AND state = 'sending'")
            .bind(id)
            .bind(state)
            .bind(sent)
            .bind(next_try_at)
            .bind(note.map(str::to_string))
            .bind(tried)
            .bind(by)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The alerts of an account (or all), newest first.
    pub async fn alert_outbox(
        &self,
        account: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRow>> {
        let rows = match account {
            Some(a) => {
                sqlx::query(AssertSqlSafe(format!(
                    "{OUTBOX_SELECT} WHERE account = $1 ORDER BY due_at DESC, id DESC LIMIT $2"
                )))
                .bind(a)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "{OUTBOX_SELECT} ORDER BY due_at DESC, id DESC LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.iter().map(outbox_row).collect())
    }
}
