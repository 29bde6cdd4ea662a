//! Alert configuration per account (the source documents' alert web service): switches,
//! recipients and message rules per project, changed through the API, the console and the
//! CLI with the same validation; and the delivery of the alerts the rules raise
//! (`deliver.rs`). Facts come from the store (`alert_events`): job starts and ends and
//! lateness (recorded by `exec`), transfer lifecycle steps (recorded with the transfer).

pub mod change;
pub mod deliver;
mod recipients;
mod rule_change;
mod webhook;

use serde_json::{Value, json};

use crate::auth::grant_covers;
use crate::project::settings::{AlertPolicy, FieldMode};
use crate::store::{AlertRuleRow, AlertSettingsRow, Store, StoreResult, UserRow};

/// A rule's delay, in days, is at most this.
pub const MAX_DELAY: i64 = 99;

/// How a change applies (shared by the configuration and its rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The whole configuration: the switches, `mails` and `projects` are required.
    Put,
    /// Only what the body names.
    Patch,
}

/// Wrong fields: (field, message) each.
pub type FieldErrors = Vec<(String, String)>;

/// A rule type, the events it stands for, and the source's message it maps to.
pub struct RuleType {
    pub name: &'static str,
    /// The event a positive rule alerts on.
    pub positive: Option<&'static str>,
    /// The event a negative rule alerts on.
    pub negative: Option<&'static str>,
    pub source: &'static str,
}

/// Every rule type.
pub const RULE_TYPES: &[RuleType] = &[
    RuleType {
        name: "job",
        positive: Some("job_success"),
        negative: Some("job_failure"),
        source: "-",
    },
    RuleType {
        name: "job_start",
        positive: Some("job_start"),
        negative: None,
        source: "-",
    },
    RuleType {
        name: "job_late",
        positive: None,
        negative: Some("job_late"),
        source: "-",
    },
    RuleType {
        name: "deposit",
        positive: Some("deposited"),
        negative: Some("transfer_failed"),
        source: "ADS",
    },
    RuleType {
        name: "delivery",
        positive: Some("delivered"),
        negative: None,
        source: "ARS",
    },
    RuleType {
        name: "ack",
        positive: Some("acknowledged"),
        negative: Some("unacknowledged"),
        source: "ACS",
    },
    RuleType {
        name: "receipt",
        positive: Some("received"),
        negative: None,
        source: "RCP / AIS",
    },
];

pub fn rule_type(name: &str) -> Option<&'static RuleType> {
    RULE_TYPES.iter().find(|t| t.name == name)
}

/// The rule type and polarity an event kind answers to.
pub fn rule_for_event(kind: &str) -> Option<(&'static str, bool)> {
    RULE_TYPES.iter().find_map(|t| {
        if t.positive == Some(kind) {
            Some((t.name, true))
        } else if t.negative == Some(kind) {
            Some((t.name, false))
        } else {
            None
        }
    })
}

/// An event kind as a sentence's end: `failed`, `was deposited`.
pub fn describe(kind: &str) -> &'static str {
    match kind {
        "job_start" => "started",
        "job_success" => "succeeded",
        "job_failure" => "failed",
        "job_late" => "is late",
        "deposited" => "was deposited at the partner",
        "delivered" => "was delivered",
        "acknowledged" => "was acknowledged",
        "unacknowledged" => "was not acknowledged in time",
        "transfer_failed" => "could not be sent",
        "received" => "was received",
        _ => "happened",
    }
}

/// An account's whole alert configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    pub settings: AlertSettingsRow,
    pub rules: Vec<AlertRuleRow>,
}

/// The policy that applies to `user` (the common one, its tenant's over it).
pub fn policy_for(cfg: &crate::project::ProjectConfig, user: &UserRow) -> AlertPolicy {
    cfg.serve.alerts.policy_for(user.tenant.as_deref())
}

/// The account's configuration, or the one it starts with (the policy's pre-filled
/// values; alerts on, to the account's own address).
pub async fn load(store: &Store, user: &UserRow, policy: &AlertPolicy) -> StoreResult<AlertConfig> {
    if let Some(settings) = store.alert_settings(&user.name).await? {
        let rules = store.alert_rules(&user.name).await?;
        return Ok(AlertConfig { settings, rules });
    }
    let d = &policy.defaults;
    Ok(AlertConfig {
        settings: AlertSettingsRow {
            account: user.name.clone(),
            active: d.active.unwrap_or(true),
            send_admin: d.send_admin.unwrap_or(false),
            secondary_alerts: d.secondary_alerts.unwrap_or(false),
            send_test: d.send_test.unwrap_or(false),
            mails: d.mails.clone().unwrap_or_default(),
            ..AlertSettingsRow::default()
        },
        rules: Vec::new(),
    })
}

/// The projects an account may have rules for: those of the loaded jobs it can read.
pub fn projects_of(user: &UserRow, jobs: &ordo_jobs::JobSet) -> Vec<String> {
    let mut out: Vec<String> = jobs
        .jobs
        .keys()
        .map(|name| crate::auth::project_of(name).to_string())
        .filter(|p| user.role == "admin" || user.projects.iter().any(|g| grant_covers(g, p)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The configuration as the API shows it: every project of the account, each with its
/// active rules only (as the source's service answers); for a caller bound by the policy,
/// hidden fields are left out and `fields` says which are locked.
pub fn to_json(c: &AlertConfig, projects: &[String], policy: Option<&AlertPolicy>) -> Value {
    let s = &c.settings;
    let mut v = json!({
        "account": s.account,
        "active": s.active,
        "send_admin": s.send_admin,
        "secondary_alerts": s.secondary_alerts,
        "send_test": s.send_test,
        "mails": s.mails,
        "webhook": s.webhook,
        "changed_by": s.changed_by,
        "changed_at": s.changed_at,
    });
    let mut all: Vec<&str> = projects.iter().map(String::as_str).collect();
    if policy.is_none() {
        // An administrator also sees rules of projects gone since.
        all.extend(c.rules.iter().map(|r| r.project.as_str()));
    }
    all.sort();
    all.dedup();
    v["projects"] = all
        .iter()
        .map(|p| {
            let rules: Vec<Value> = c
                .rules
                .iter()
                .filter(|r| r.project == *p && r.active)
                .map(|r| {
                    json!({"type": r.kind, "positive": r.positive, "active": r.active,
                           "delay": r.delay_days})
                })
                .collect();
            json!({"project": p, "rules": rules})
        })
        .collect();
    if let Some(p) = policy {
        let mut fields = serde_json::Map::new();
        for (name, mode) in &p.fields {
            if *mode == FieldMode::Hidden
                && let Some(o) = v.as_object_mut()
            {
                o.remove(name);
            }
            fields.insert(name.clone(), json!(mode.as_str()));
        }
        v["fields"] = Value::Object(fields);
    }
    v
}

/// For the audit log: the switches, the recipients, the active rules.
pub fn summary(c: &AlertConfig) -> String {
    let st = &c.settings;
    let rules: Vec<String> = c
        .rules
        .iter()
        .filter(|r| r.active)
        .map(|r| {
            let sign = if r.positive { "+" } else { "-" };
            format!("{}:{}{sign}/{}d", r.project, r.kind, r.delay_days)
        })
        .collect();
    format!(
        "active={} send_admin={} secondary_alerts={} send_test={} mails=[{}] webhook={} rules=[{}]",
        st.active,
        st.send_admin,
        st.secondary_alerts,
        st.send_test,
        st.mails.join(", "),
        if st.webhook.is_empty() { "-" } else { "set" },
        rules.join(" ")
    )
}
