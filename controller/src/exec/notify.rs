//! Notifications: per job and per event (start, success, failure, late), by mail (with the
//! run's output attached if asked) or webhook (a JSON POST). A notification that cannot be
//! delivered is recorded and logged; it never changes the run's outcome.

use std::sync::Arc;
use std::time::Duration;

use ordo_jobs::{Job, Late, NotifyEvent, NotifyTarget, OptionValues};
use tokio_util::sync::CancellationToken;

use super::Env;
use crate::clock::now_ms;
use crate::store::{AlertEventRow, ExecutionStatus, NotificationRow};
use crate::webhook::{Reach, Webhook};

/// Without `late:` in the job, a `late` notification fires past twice the usual duration.
const DEFAULT_LATE_FACTOR: f64 = 2.0;
/// The usual duration is the mean of this many last successful runs (at least 3 needed).
const USUAL_RUNS: i64 = 10;

#[derive(Clone)]
pub struct Notifier {
    env: Arc<Env>,
    job: Arc<Job>,
    id: String,
    options: OptionValues,
    /// The account that started the run ('' for schedules, triggers, the CLI).
    account: String,
}

impl Notifier {
    pub fn new(
        env: Arc<Env>,
        job: Arc<Job>,
        id: String,
        options: OptionValues,
        account: String,
    ) -> Self {
        Notifier {
            env,
            job,
            id,
            options,
            account,
        }
    }

    fn wants(&self, event: NotifyEvent) -> bool {
        self.job.notify.iter().any(|n| n.on.contains(&event))
    }

    /// How long this run may take before it is late, if anybody listens for `late` (the
    /// job's `notify`, or an account's alert rule for its project).
    pub async fn late_after(&self) -> Option<Duration> {
        if !self.wants(NotifyEvent::Late) {
            let project = self.job.name.rsplit_once('/').map_or("", |(d, _)| d);
            let store = &self.env.store;
            if !store.alert_rule_exists(project, "job_late").await.ok()? {
                return None;
            }
        }
        let factor = match self.job.late {
            Some(Late::After(d)) => return Some(d),
            Some(Late::Factor(f)) => f,
            None => DEFAULT_LATE_FACTOR,
        };
        let recent = self
            .env
            .store
            .recent_durations(&self.job.name, USUAL_RUNS)
            .await
            .ok()?;
        usual_limit(&recent, factor)
    }

    /// Sends `late` once if the run is still going past its limit.
    pub fn watch_late(&self, started_at: i64, finished: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            let Some(limit) = me.late_after().await else {
                return;
            };
            let elapsed = Duration::from_millis((now_ms() - started_at).max(0) as u64);
            tokio::select! {
                _ = tokio::time::sleep(limit.saturating_sub(elapsed)) => {
                    let limit = humantime::format_duration(Duration::from_secs(limit.as_secs().max(1)));
                    me.send(NotifyEvent::Late, ExecutionStatus::Running, Some(&format!("still running after {limit}"))).await;
                }
                _ = finished.cancelled() => {}
            }
        });
    }

    /// Records `event` for the accounts' alerts (`crate::store` keeps it; `serve` turns it
    /// into alerts), then delivers it to every target of the job listening for it;
    /// `detail` goes in the text.
    pub async fn send(&self, event: NotifyEvent, status: ExecutionStatus, detail: Option<&str>) {
        let status = status.as_str();
        let kind = match event {
            NotifyEvent::Start => "job_start",
            NotifyEvent::Success => "job_success",
            NotifyEvent::Failure => "job_failure",
            NotifyEvent::Late => "job_late",
        };
        let fact = AlertEventRow {
            id: format!("{}:{kind}", self.id),
            kind: kind.into(),
            project: self
                .job
                .name
                .rsplit_once('/')
                .map_or("", |(d, _)| d)
                .to_string(),
            subject: format!("job:{}", self.job.name),
            job: self.job.name.clone(),
            execution_id: self.id.clone(),
            account: self.account.clone(),
            test: self.job.test,
            at: now_ms(),
            detail: detail.map_or_else(|| status.to_string(), |d| format!("{status}: {d}")),
        };
        if let Err(e) = self.env.store.record_alert_event(&fact).await {
            tracing::warn!(execution = %self.id, "cannot record the {kind} event for alerts: {e}");
        }
        for n in self.job.notify.iter().filter(|n| n.on.contains(&event)) {
            let (channel, target, result) = match &n.target {
                NotifyTarget::Mail { to, attach_log } => (
                    "mail",
                    to.join(", "),
                    self.mail(event, status, detail, to, *attach_log).await,
                ),
                NotifyTarget::Webhook {
                    url,
                    headers,
                    timeout,
                } => (
                    "webhook",
                    // Never the path or query (where tokens go) in the log or the history.
                    crate::webhook::shown_url(url),
                    self.webhook(event, status, url, headers, *timeout).await,
                ),
            };
            if let Err(e) = &result {
                tracing::warn!(execution = %self.id, event = event.as_str(), channel, target, "notification failed: {e}");
            }
            let row = NotificationRow {
                execution_id: self.id.clone(),
                event: event.as_str().into(),
                channel: channel.into(),
                target,
                ok: result.is_ok(),
                detail: Some(match result {
                    Ok(d) => d,
                    Err(e) => e,
                }),
                at: now_ms(),
            };
            if let Err(e) = self.env.store.record_notification(&row).await {
                tracing::warn!(execution = %self.id, "cannot record a notification: {e}");
            }
        }
    }

    async fn mail(
        &self,
        event: NotifyEvent,
        status: &str,
        detail: Option<&str>,
        to: &[String],
        attach_log: bool,
    ) -> Result<String, String> {
        let subject = format!(
            "[ordo] {} {}: execution {} {}",
            self.job.name,
            event.as_str(),
            self.id,
            status
        );
        let mut body = format!(
            "Job {} ({})\nExecution {}: {status}\nEvent: {}\nController: {}\n",
            self.job.name,
            self.job.description,
            self.id,
            event.as_str(),
            crate::process::hostname()
        );
        let opts = self.options.masked();
        if !opts.is_empty() {
            body.push_str("Options:\n");
            for (k, v) in opts {
                body.push_str(&format!("  {k} = {v}\n"));
            }
        }
        if let Some(d) = detail {
            body.push_str(&format!("\n{d}\n"));
        }
        // A job whose results are encrypted sends its output encrypted only (in its
        // archive), never in clear with a notification.
        let sealed = !self.job.encrypt.is_empty();
        if attach_log && sealed {
            body.push_str("\nThe run's output is not attached: this job's results are encrypted (archive: encrypt).\n");
        }
        let attachment = if attach_log && !sealed {
            let text = self.log_text().await?;
            Some((
                format!("{}-{}.log.txt", self.job.name.replace('/', "_"), self.id),
                text.into_bytes(),
            ))
        } else {
            None
        };
        let out = crate::mail::Outgoing {
            to: to.to_vec(),
            cc: Vec::new(),
            subject,
            body: self.options.mask(&body),
            attachment,
        };
        crate::mail::send_or_queue(&self.env.cfg.mail, &out)
            .await
            .map_err(|e| e.to_string())
    }

    /// Every recorded line of the run: time, server, stream, text.
    async fn log_text(&self) -> Result<String, String> {
        let lines = self
            .env
            .store
            .logs(&self.id, None)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        for l in lines {
            let t = chrono::DateTime::from_timestamp_millis(l.ts)
                .map(|t| t.format("%H:%M:%S%.3f").to_string())
                .unwrap_or_default();
            out.push_str(&format!("{t} {} [{}] {}\n", l.node, l.stream, l.line));
        }
        Ok(self.options.mask(&out))
    }

    async fn webhook(
        &self,
        event: NotifyEvent,
        status: &str,
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<String, String> {
        let exec = self.env.store.find_execution(&self.id).await.ok();
        let body = serde_json::json!({
            "event": event.as_str(),
            "job": self.job.name,
            "execution": self.id,
            "status": status,
            "options": self.options.masked(),
            "started_at": exec.as_ref().map(|e| e.started_at),
            "finished_at": exec.as_ref().and_then(|e| e.finished_at),
            "servers": exec.as_ref().map(|e| serde_json::json!({"total": e.nodes_total, "ok": e.nodes_ok, "failed": e.nodes_failed})),
            "cause": exec.as_ref().map(|e| e.cause.clone()),
            "controller": self.env.instance,
        });
        // A job file's URL: its authors own the project (an internal relay is usual).
        let hook = Webhook {
            url,
            headers,
            timeout,
            attempts: 3,
            reach: Reach::Any,
        };
        crate::webhook::post(&hook, &body).await
    }
}

/// `factor` times the mean of the recent durations (ms), once there are at least 3.
pub fn usual_limit(recent_ms: &[i64], factor: f64) -> Option<Duration> {
    if recent_ms.len() < 3 {
        return None;
    }
    let mean = recent_ms.iter().sum::<i64>() as f64 / recent_ms.len() as f64;
    Some(Duration::from_millis((mean * factor).max(1000.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_needs_three_runs_and_scales_their_mean() {
        assert_eq!(usual_limit(&[10_000, 20_000], 1.5), None);
        assert_eq!(
            usual_limit(&[10_000, 20_000, 30_000], 1.5),
            Some(Duration::from_secs(30))
        );
        // Never below a second, however fast the job usually is.
        assert_eq!(
            usual_limit(&[10, 20, 30], 2.0),
            Some(Duration::from_secs(1))
        );
    }
}
