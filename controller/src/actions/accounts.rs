//! Accounts: list, read, add, change, delete. An administrator manages the accounts it
//! made or was given (`manager`); a top administrator manages every account. Whether an
//! account is a top administrator is a fact of its own (`top`), granted only by a top
//! administrator or the command line; `manager` is never cleared from the web, and a
//! deleted administrator's accounts are handed on, never left to nobody.

use super::{ActionError, ActionResult, Actor};
use crate::auth::Role;
use crate::auth::users::{self, NewUser};
use crate::store::{Store, UserRow};

/// What adding an account takes.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub name: String,
    pub role: String,
    pub email: String,
    pub password: String,
    pub projects: Vec<String>,
    pub primary: Option<String>,
    /// The managing administrator (none: the one who adds it; on the command line, none).
    pub manager: Option<String>,
    pub tenant: Option<String>,
    /// A top administrator (for top administrators and the command line to grant).
    pub top: bool,
}

/// A change: only what is given changes; `Some(None)` clears primary or tenant.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    pub role: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub projects: Option<Vec<String>>,
    pub primary: Option<Option<String>>,
    /// `Some(None)` (clear) only from the command line.
    pub manager: Option<Option<String>>,
    pub tenant: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub top: Option<bool>,
}

/// The accounts an administrator sees: itself and those it manages (every one for a top
/// administrator).
pub async fn list(store: &Store, a: &Actor) -> ActionResult<Vec<UserRow>> {
    a.require_admin()?;
    Ok(store
        .users()
        .await?
        .into_iter()
        .filter(|u| a.who.manages(u) || u.name == a.who.name)
        .collect())
}

/// One account: one's own, or one this administrator manages.
pub async fn get(store: &Store, a: &Actor, name: &str) -> ActionResult<UserRow> {
    if name == a.who.name && !a.who.is_cli() {
        return Ok(users::get(store, name).await?);
    }
    a.managed(store, name).await
}

/// Enabled top administrators other than `except`.
async fn other_tops(store: &Store, except: &str) -> ActionResult<usize> {
    Ok(store
        .users()
        .await?
        .iter()
        .filter(|u| u.top && !u.disabled && u.name != except)
        .count())
}

/// A web caller may give an account only to itself or to an administrator it manages.
async fn may_give_to(store: &Store, a: &Actor, manager: &str) -> ActionResult<()> {
    if a.who.is_top() || manager == a.who.name {
        return Ok(());
    }
    match store.user(manager).await? {
        Some(m) if a.who.manages(&m) => Ok(()),
        _ => Err(ActionError::Forbidden(format!(
            "manager: `{manager}` is not you or an administrator you manage"
        ))),
    }
}

pub async fn add(store: &Store, a: &Actor, new: NewAccount) -> ActionResult<UserRow> {
    a.require_admin()?;
    if new.top {
        a.require_top("making a top administrator")?;
    }
    let manager = match new.manager {
        Some(m) => {
            may_give_to(store, a, &m).await?;
            Some(m)
        }
        None if a.who.is_cli() => None,
        None => Some(a.who.name.clone()),
    };
    let n = NewUser {
        name: new.name,
        role: new.role,
        email: new.email,
        projects: new.projects,
        primary_user: new.primary,
        manager,
        tenant: new.tenant,
        top: new.top,
    };
    let u = users::add(store, n, &new.password).await?;
    let top = if u.top { ", top administrator" } else { "" };
    a.audit(store, "user.add", &u.name, &format!("role {}{top}", u.role))
        .await;
    Ok(u)
}

pub async fn change(
    store: &Store,
    a: &Actor,
    name: &str,
    c: AccountChange,
) -> ActionResult<UserRow> {
    let before = a.managed(store, name).await?;
    let mut after = before.clone();
    let mut what = Vec::new();
    if let Some(r) = c.role {
        Role::parse(&r)?;
        what.push(format!("role {r}"));
        after.role = r;
    }
    if let Some(e) = c.email {
        what.push("email".to_string());
        after.email = e;
    }
    if let Some(p) = c.password {
        what.push("password".to_string());
        after.password = users::hash_password(&p)?;
    }
    if let Some(p) = c.projects {
        what.push(format!("projects {}", p.join(",")));
        after.projects = p;
    }
    if let Some(p) = c.primary {
        what.push("primary".to_string());
        after.primary_user = p;
    }
    if let Some(m) = c.manager {
        match &m {
            None if !a.who.is_cli() => {
                return Err(ActionError::invalid(
                    "manager",
                    "an account's manager cannot be cleared: give it to another administrator",
                ));
            }
            None => {}
            Some(m) => may_give_to(store, a, m).await?,
        }
        what.push(format!("manager {}", m.as_deref().unwrap_or("-")));
        after.manager = m;
    }
    if let Some(t) = c.tenant {
        what.push("tenant".to_string());
        after.tenant = t;
    }
    if let Some(d) = c.disabled {
        if d && name == a.who.name {
            return Err(ActionError::invalid(
                "disabled",
                "you cannot disable your own account",
            ));
        }
        what.push(if d { "disabled" } else { "enabled" }.to_string());
        after.disabled = d;
    }
    if let Some(t) = c.top
        && t != before.top
    {
        a.require_top("granting or taking the top administrator's standing")?;
        if t && after.role != Role::Admin.as_str() {
            return Err(ActionError::invalid(
                "top",
                "only an administrator can be a top administrator",
            ));
        }
        what.push(if t { "top administrator" } else { "not top" }.to_string());
        after.top = t;
        // A new top administrator's manager is the one who made it: its former manager
        // keeps nothing of it (its lane of the audit log, say).
        if t && !a.who.is_cli() {
            after.manager = Some(a.who.name.clone());
        }
    }
    if after.role != Role::Admin.as_str() {
        after.top = false;
    }
    let loses_top = before.top && (!after.top || after.disabled);
    if loses_top && !a.who.is_cli() && other_tops(store, name).await? == 0 {
        return Err(ActionError::Conflict(format!(
            "{name} is the last top administrator: make another one first"
        )));
    }
    let u = users::save(store, &before, after).await?;
    a.audit(store, "user.change", name, &what.join(", ")).await;
    Ok(u)
}

/// Deletes an account; the accounts it managed go to `hand_to`, else to the administrator
/// who deletes it, else (on the command line) to its own manager. Returns who got them.
pub async fn delete(
    store: &Store,
    a: &Actor,
    name: &str,
    hand_to: Option<&str>,
) -> ActionResult<String> {
    if name == a.who.name && !a.who.is_cli() {
        return Err(ActionError::invalid(
            "name",
            "you cannot delete your own account",
        ));
    }
    let gone = a.managed(store, name).await?;
    if gone.top && !a.who.is_cli() && other_tops(store, name).await? == 0 {
        return Err(ActionError::Conflict(format!(
            "{name} is the last top administrator: make another one first"
        )));
    }
    let all = store.users().await?;
    let managed: Vec<&str> = all
        .iter()
        .filter(|u| u.manager.as_deref() == Some(name))
        .map(|u| u.name.as_str())
        .collect();
    // Its secondaries become primaries: only those of the caller's lane may.
    let foreign: Vec<&str> = all
        .iter()
        .filter(|u| u.primary_user.as_deref() == Some(name) && !a.who.manages(u))
        .map(|u| u.name.as_str())
        .collect();
    if !foreign.is_empty() {
        return Err(ActionError::Forbidden(format!(
            "{name} is the primary account of {}, which another administrator manages: they must be moved first",
            foreign.join(", ")
        )));
    }
    let heir = match hand_to {
        Some(h) => {
            may_give_to(store, a, h).await?;
            Some(h.to_string())
        }
        None if !a.who.is_cli() => Some(a.who.name.clone()),
        None => gone.manager.clone(),
    };
    let heir = heir.filter(|h| h != name);
    let heir = match heir {
        Some(h) => match all.iter().find(|u| u.name == h) {
            Some(u) if u.manager.as_deref() == Some(name) && !managed.is_empty() => {
                return Err(ActionError::invalid(
                    "hand_to",
                    format!("`{h}` is managed by {name}: choose an administrator above it"),
                ));
            }
            Some(u) if u.role == Role::Admin.as_str() => h,
            _ => {
                return Err(ActionError::invalid(
                    "hand_to",
                    format!("`{h}` is not an administrator"),
                ));
            }
        },
        None if managed.is_empty() => String::new(),
        None => {
            return Err(ActionError::invalid(
                "hand_to",
                format!(
                    "{name} manages {}: name the administrator who takes them (--hand-to)",
                    managed.join(", ")
                ),
            ));
        }
    };
    store.delete_user(name, &heir).await?;
    let detail = if managed.is_empty() {
        String::new()
    } else {
        format!("its accounts ({}) go to {heir}", managed.join(", "))
    };
    a.audit(store, "user.delete", name, &detail).await;
    Ok(heir)
}
