//! The fleet and administration pages: agents, transfers, the audit log and accounts
//! (API tokens: `tokens.rs`). Same rules as the API: agents for operators, the rest by project or for
//! administrators.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};

use super::page::{Chrome, Page, PageResult, Posted, render, see};
use crate::Web;
use crate::actions::accounts::{self, AccountChange, NewAccount};
use crate::actions::{self, ActionError};
use crate::auth::Role;
use crate::clock::{now_ms, zoned_time};
use crate::error::ApiError;

type Shared = State<Arc<Web>>;

#[derive(Template)]
#[template(path = "table.html")]
struct TablePage {
    chrome: Chrome,
    title: String,
    intro: String,
    table_id: String,
    head: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    /// A column whose cells are execution ids, shown as links to their pages
    /// ([`NO_LINKS`]: none).
    execution_col: usize,
}

const NO_LINKS: usize = usize::MAX;

pub async fn agents(State(s): Shared, p: Page) -> PageResult {
    if p.who.role < Role::Operator {
        return Err(
            ApiError::Forbidden("the agents are shown to operators and admins".into()).into(),
        );
    }
    let tz = s.env().cfg.serve.timezone;
    let now = now_ms();
    let recent = s.env().cfg.serve.dead_after.as_millis() as i64 * 5;
    let rows = s
        .store
        .agents()
        .await?
        .into_iter()
        .map(|a| {
            vec![
                a.name,
                a.address,
                // What a run saw, and when: never "up", which only a contact now could say.
                if now - a.last_contact < recent {
                    format!("answered {} ago", age(now - a.last_contact))
                } else {
                    format!("not seen for {}", age(now - a.last_contact))
                },
                a.version,
                a.run_user,
                format!(
                    "{} ({} days)",
                    zoned_time(a.cert_not_after, tz),
                    (a.cert_not_after - now) / 86_400_000
                ),
                zoned_time(a.last_contact, tz),
            ]
        })
        .collect();
    Ok(render(&TablePage {
        chrome: p.chrome(),
        title: "Agents".into(),
        intro: "As a run last saw them (the state is not a live check); `controller agents list` contacts them now.".into(),
        table_id: "agents".into(),
        execution_col: NO_LINKS,
        head: vec![
            "Agent",
            "Address",
            "State",
            "Version",
            "User",
            "Certificate expires",
            "Last contact",
        ],
        rows,
    }))
}

/// `42 s`, `5 min`, `3 h`, `2 days`: how long ago, roughly.
fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

pub async fn transfers(State(s): Shared, p: Page) -> PageResult {
    let tz = s.env().cfg.serve.timezone;
    let mut rows = Vec::new();
    for t in s.store.transfers(None, &[], 1000).await? {
        if rows.len() >= 200 || !p.who.can_read_job(&t.scenario) {
            continue;
        }
        let seen = p.who.is_admin()
            || s.store
                .execution(&t.execution_id)
                .await
                .is_ok_and(|e| p.who.sees(&e));
        if !seen {
            continue;
        }
        rows.push(vec![
            t.scenario,
            t.direction,
            t.file_name,
            t.size.to_string(),
            t.status,
            t.remote.unwrap_or_default(),
            zoned_time(t.updated_at, tz),
            t.execution_id,
        ]);
    }
    Ok(render(&TablePage {
        chrome: p.chrome(),
        title: "Transfers".into(),
        intro: "Each file sent or received, with its lifecycle status; its execution's page has the scenario's log.".into(),
        table_id: "transfers".into(),
        execution_col: 7,
        head: vec!["Scenario", "Direction", "File", "Bytes", "Status", "Partner", "Updated", "Execution"],
        rows,
    }))
}

pub async fn audit(State(s): Shared, p: Page) -> PageResult {
    let tz = s.env().cfg.serve.timezone;
    let rows = actions::audit::read(&s.store, &p.actor(), None, None, 500)
        .await?
        .into_iter()
        .map(|a| {
            vec![
                zoned_time(a.at, tz),
                a.actor,
                a.address,
                a.action,
                a.target,
                a.detail,
            ]
        })
        .collect();
    Ok(render(&TablePage {
        chrome: p.chrome(),
        title: "Audit log".into(),
        intro: if p.who.is_top() {
            "The last 500 entries."
        } else {
            "The last 500 entries of your account and of the accounts you manage."
        }
        .into(),
        table_id: "audit".into(),
        execution_col: NO_LINKS,
        head: vec!["Time", "Who", "From", "Action", "Target", "Detail"],
        rows,
    }))
}

pub struct UserLine {
    pub name: String,
    pub role: String,
    pub email: String,
    pub projects: String,
    pub primary: String,
    pub tenant: String,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserLine>,
    error: String,
    /// A top administrator may make another.
    top: bool,
}

async fn users_page(s: &Web, p: &Page, error: String) -> PageResult {
    let users = accounts::list(&s.store, &p.actor())
        .await?
        .into_iter()
        .map(|u| UserLine {
            projects: u.projects.join(", "),
            primary: u.primary_user.unwrap_or_default(),
            tenant: u.tenant.unwrap_or_default(),
            name: u.name,
            role: if u.top {
                format!("{} (top)", u.role)
            } else {
                u.role
            },
            email: u.email,
            disabled: u.disabled,
        })
        .collect();
    Ok(render(&UsersPage {
        chrome: p.chrome(),
        users,
        error,
        top: p.who.is_top(),
    }))
}

pub async fn users(State(s): Shared, p: Page) -> PageResult {
    users_page(&s, &p, String::new()).await
}

pub async fn add_user(State(s): Shared, f: Posted) -> PageResult {
    let opt = |k: &str| Some(f.text(k)).filter(|v| !v.is_empty());
    let new = NewAccount {
        name: f.text("name"),
        role: f.text("role"),
        email: f.text("email"),
        password: f.get("password").unwrap_or_default().to_string(),
        projects: f
            .text("projects")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        primary: opt("primary"),
        manager: None,
        tenant: None,
        top: f.get("top") == Some("on"),
    };
    match accounts::add(&s.store, &f.page.actor(), new).await {
        Ok(_) => Ok(see("/admin/users")),
        Err(e @ (ActionError::Invalid { .. } | ActionError::Auth(_) | ActionError::Store(_))) => {
            users_page(&s, &f.page, e.to_string()).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn user_state(State(s): Shared, Path(name): Path<String>, f: Posted) -> PageResult {
    let disabled = match f.get("disabled") {
        Some("true") => true,
        Some("false") => false,
        _ => return Err(ApiError::field("disabled", "true or false").into()),
    };
    let change = AccountChange {
        disabled: Some(disabled),
        ..AccountChange::default()
    };
    accounts::change(&s.store, &f.page.actor(), &name, change).await?;
    Ok(see("/admin/users"))
}
