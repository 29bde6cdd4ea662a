//! Alerts POSTed to an account's webhook, never to an address that is not public unless
//! the administrator allowed its host.

use std::time::Duration;

use serde_json::json;

use crate::project::ProjectConfig;
use crate::store::{AlertEventRow, OutboxRow};
use crate::webhook::{Reach, Webhook};

pub(super) async fn post(
    cfg: &ProjectConfig,
    url: &str,
    items: &[(OutboxRow, AlertEventRow)],
) -> Result<(), String> {
    let alerts: Vec<_> = items
        .iter()
        .map(|(o, ev)| {
            json!({"event": ev.kind, "job": ev.job, "project": ev.project, "execution": ev.execution_id,
                   "started_by": ev.account, "account": o.account, "at": ev.at, "detail": ev.detail,
                   "test": ev.test})
        })
        .collect();
    let hook = Webhook {
        url,
        headers: &[],
        timeout: Duration::from_secs(10),
        // The outbox tries again later (with backoff): one try here.
        attempts: 1,
        reach: Reach::Public {
            allowed: &cfg.serve.alerts.webhook_hosts,
        },
    };
    crate::webhook::post(&hook, &json!({ "alerts": alerts }))
        .await
        .map(|_| ())
        .map_err(|e| format!("webhook: {e}"))
}
