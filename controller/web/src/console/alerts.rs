//! The alerts page: an account's alert switches, recipients (add, remove), webhook and
//! message rules per project, with the API's rules (same checks, same fields hidden or
//! locked by the administrator's policy).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::page::{Chrome, Page, PageResult, Posted, render, see, url_encode};
use crate::Web;
use crate::actions::{self, ActionError};
use crate::alerts::Mode;
use crate::alerts::{AlertConfig, RULE_TYPES, describe};
use crate::api_alerts::cx;
use crate::project::settings::{AlertPolicy, FieldMode};

type Shared = State<Arc<Web>>;

/// How a field shows for this caller.
#[derive(Clone, Copy, Default)]
pub struct FieldView {
    pub hidden: bool,
    pub locked: bool,
}

pub struct RuleLine {
    /// The form field's name part: `project|type|sign`.
    pub key: String,
    pub what: String,
    pub source: String,
    pub negative: bool,
    pub active: bool,
    pub delay: i64,
}

pub struct ProjectLine {
    pub name: String,
    pub rules: Vec<RuleLine>,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    account: String,
    active: bool,
    send_admin: bool,
    secondary_alerts: bool,
    send_test: bool,
    mails: Vec<String>,
    webhook: String,
    add: String,
    projects: Vec<ProjectLine>,
    f_active: FieldView,
    f_send_admin: FieldView,
    f_secondary_alerts: FieldView,
    f_send_test: FieldView,
    f_mails: FieldView,
    f_webhook: FieldView,
    f_projects: FieldView,
    errors: Vec<(String, String)>,
    saved: bool,
    changed: String,
}

#[derive(Deserialize)]
pub struct Saved {
    saved: Option<String>,
}

/// `/alerts`: one's own.
pub async fn mine(p: Page) -> PageResult {
    Ok(see(&format!("/alerts/{}", url_encode(&p.who.name))))
}

pub async fn show(
    State(s): Shared,
    p: Page,
    Path(account): Path<String>,
    q: Query<Saved>,
) -> PageResult {
    let env = s.env();
    let o = actions::alerts::open(&cx(&s, &env), &p.actor(), &account).await?;
    let mut page = view(&p, &o.config, &o.projects, o.policy.as_ref());
    page.saved = q.saved.is_some();
    Ok(render(&page))
}

pub async fn save(State(s): Shared, Path(account): Path<String>, f: Posted) -> PageResult {
    let env = s.env();
    let (cx, actor) = (cx(&s, &env), f.page.actor());
    let o = actions::alerts::open(&cx, &actor, &account).await?;
    let body = form_body(&f, &o.config, &o.projects, o.policy.as_ref());
    match actions::alerts::change(&cx, &actor, &o, &body, Mode::Patch).await {
        Ok(_) => Ok(see(&format!(
            "/alerts/{}?saved=1",
            url_encode(&o.account.name)
        ))),
        Err(ActionError::Fields(errors)) => {
            let mut page = view(&f.page, &o.config, &o.projects, o.policy.as_ref());
            page.errors = errors;
            page.add = f.text("mails_to_add");
            page.webhook = f.text("webhook");
            let mut r = render(&page);
            *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(r.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn field(policy: Option<&AlertPolicy>, name: &str) -> FieldView {
    match policy.map(|p| p.mode(name)) {
        Some(FieldMode::Hidden) => FieldView {
            hidden: true,
            locked: true,
        },
        Some(FieldMode::Locked) => FieldView {
            hidden: false,
            locked: true,
        },
        _ => FieldView::default(),
    }
}

fn view(
    p: &Page,
    c: &AlertConfig,
    projects: &[String],
    policy: Option<&AlertPolicy>,
) -> AlertsPage {
    let st = &c.settings;
    let projects = projects
        .iter()
        .map(|project| ProjectLine {
            name: if project.is_empty() {
                "/".into()
            } else {
                project.clone()
            },
            rules: rule_lines(c, project),
        })
        .collect();
    AlertsPage {
        chrome: p.chrome(),
        account: st.account.clone(),
        active: st.active,
        send_admin: st.send_admin,
        secondary_alerts: st.secondary_alerts,
        send_test: st.send_test,
        mails: st.mails.clone(),
        webhook: st.webhook.clone(),
        add: String::new(),
        projects,
        f_active: field(policy, "active"),
        f_send_admin: field(policy, "send_admin"),
        f_secondary_alerts: field(policy, "secondary_alerts"),
        f_send_test: field(policy, "send_test"),
        f_mails: field(policy, "mails"),
        f_webhook: field(policy, "webhook"),
        f_projects: field(policy, "projects"),
        errors: Vec::new(),
        saved: false,
        changed: if st.changed_by.is_empty() {
            String::new()
        } else {
            format!(
                "{} by {}",
                crate::clock::local_time(st.changed_at),
                st.changed_by
            )
        },
    }
}

/// Every rule a project may have (each type's positive and negative events), as set.
fn rule_lines(c: &AlertConfig, project: &str) -> Vec<RuleLine> {
    let mut out = Vec::new();
    for t in RULE_TYPES {
        for (positive, kind) in [(true, t.positive), (false, t.negative)] {
            let Some(kind) = kind else { continue };
            let set = c
                .rules
                .iter()
                .find(|r| r.project == project && r.kind == t.name && r.positive == positive);
            out.push(RuleLine {
                key: format!("{project}|{}|{}", t.name, if positive { "+" } else { "-" }),
                what: format!(
                    "{} {}",
                    if kind.starts_with("job") {
                        "a job"
                    } else {
                        "a file"
                    },
                    describe(kind)
                ),
                source: t.source.to_string(),
                negative: !positive,
                active: set.is_some_and(|r| r.active),
                delay: set.map_or(0, |r| r.delay_days),
            });
        }
    }
    out
}

/// The posted form as a PATCH body: the fields this caller may change.
fn form_body(
    f: &Posted,
    c: &AlertConfig,
    projects: &[String],
    policy: Option<&AlertPolicy>,
) -> Value {
    let mut v = json!({});
    let editable = |name: &str| !field(policy, name).locked;
    for k in ["active", "send_admin", "secondary_alerts", "send_test"] {
        if editable(k) {
            v[k] = json!(f.get(k) == Some("on"));
        }
    }
    if editable("mails") {
        let add = f.text("mails_to_add");
        if !add.is_empty() {
            v["mails_to_add"] = json!(add);
        }
        let gone: Vec<&str> = f
            .fields
            .iter()
            .filter(|(k, _)| k == "remove")
            .map(|(_, m)| m.as_str())
            .collect();
        if !gone.is_empty() {
            v["mails_to_delete"] = json!(gone);
        }
    }
    if editable("webhook") {
        v["webhook"] = json!(f.text("webhook"));
    }
    if editable("projects") {
        let list: Vec<Value> = projects
            .iter()
            .map(|p| {
                let rules: Vec<Value> = rule_lines(c, p)
                    .iter()
                    .map(|r| {
                        let mut parts = r.key.rsplitn(3, '|');
                        let sign = parts.next().unwrap_or("+");
                        let kind = parts.next().unwrap_or_default();
                        let delay = if r.negative {
                            let raw = f.text(&format!("delay|{}", r.key));
                            if raw.is_empty() {
                                json!(0)
                            } else {
                                raw.parse::<i64>().map_or(json!(raw), |d| json!(d))
                            }
                        } else {
                            json!(0)
                        };
                        json!({"type": kind, "positive": sign == "+", "delay": delay,
                               "active": f.get(&format!("rule|{}", r.key)) == Some("on")})
                    })
                    .collect();
                json!({"project": p, "rules": rules})
            })
            .collect();
        v["projects"] = json!(list);
    }
    v
}
