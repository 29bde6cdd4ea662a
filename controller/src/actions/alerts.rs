//! An account's alert configuration: read and changed by the account itself (`me`), its
//! primary account, or an administrator who manages it. The fields the administrator hid
//! or locked (`serve: alerts: fields`) bind the first two; a primary also never changes
//! where its secondary's alerts go, nor whether it gets them (those would carry alerts
//! about projects the primary may not read).

use ordo_jobs::JobSet;
use serde_json::Value;

use super::{ActionError, ActionResult, Actor};
use crate::alerts::{self, AlertConfig, Mode, change};
use crate::clock::now_ms;
use crate::project::ProjectConfig;
use crate::project::settings::{AlertPolicy, FieldMode};
use crate::store::{Store, UserRow};

/// What alert actions need besides the caller.
pub struct AlertsCx<'a> {
    pub store: &'a Store,
    pub cfg: &'a ProjectConfig,
    /// The jobs (the projects an account has rules for).
    pub jobs: &'a JobSet,
}

/// An account's configuration as the actor may see and change it.
pub struct Opened {
    pub account: UserRow,
    pub config: AlertConfig,
    /// The projects the actor may set rules for (the account's; for its primary, those
    /// both may read).
    pub projects: Vec<String>,
    /// What binds the actor (none: an administrator who manages the account).
    pub policy: Option<AlertPolicy>,
}

/// The account `name` (`me`: the actor's own), as the actor may see it; not found when
/// it may not.
pub async fn open(cx: &AlertsCx<'_>, a: &Actor, name: &str) -> ActionResult<Opened> {
    let name = if name == "me" {
        a.who.name.as_str()
    } else {
        name
    };
    if name.is_empty() || name.len() > 100 {
        return Err(ActionError::invalid("account", "1 to 100 characters"));
    }
    let missing = || ActionError::NotFound(format!("no account `{name}`"));
    let u = cx.store.user(name).await?.ok_or_else(missing)?;
    let bound = if a.who.manages(&u) || (a.who.is_admin() && a.who.name == u.name) {
        false
    } else if a.who.name == u.name || u.primary_user.as_deref() == Some(a.who.name.as_str()) {
        true
    } else {
        return Err(missing());
    };
    let mut policy = alerts::policy_for(cx.cfg, &u);
    let config = alerts::load(cx.store, &u, &policy).await?;
    let mut projects = alerts::projects_of(&u, cx.jobs);
    if a.who.name != u.name && !a.who.is_admin() {
        projects.retain(|p| {
            a.who
                .projects
                .iter()
                .any(|g| crate::auth::grant_covers(g, p))
        });
        for field in ["mails", "webhook", "active"] {
            if policy.mode(field) == FieldMode::Editable {
                policy.fields.insert(field.to_string(), FieldMode::Locked);
            }
        }
    }
    Ok(Opened {
        account: u,
        config,
        projects,
        policy: bound.then_some(policy),
    })
}

/// Changes the configuration `opened` holds by `body` (`Put`: the whole of it; `Patch`:
/// what it names); every wrong field named, nothing changed then. Stamped with who and
/// when, and audited.
pub async fn change(
    cx: &AlertsCx<'_>,
    a: &Actor,
    opened: &Opened,
    body: &Value,
    mode: Mode,
) -> ActionResult<AlertConfig> {
    let domains = &cx.cfg.serve.alerts.mail_domains;
    let mut next = change::apply(
        &opened.config,
        body,
        mode,
        &opened.projects,
        opened.policy.as_ref(),
        domains,
    )
    .map_err(ActionError::Fields)?;
    next.settings.changed_by = a.who.label();
    next.settings.changed_at = now_ms();
    cx.store.save_alerts(&next.settings, &next.rules).await?;
    a.audit(
        cx.store,
        "alerts",
        &opened.account.name,
        &alerts::summary(&next),
    )
    .await;
    Ok(next)
}
