//! Accounts, API tokens and the audit log in the API. Accounts and the audit log are for
//! administrators; anyone may list, create and revoke their own tokens.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Server;
use super::api::Body;
use super::error::{ApiError, ApiResult};
use super::guard::Caller;
use crate::auth::users::{self, NewUser};
use crate::clock::now_ms;
use crate::store::{TokenRow, UserRow};

type Shared = State<Arc<Server>>;

pub fn user_json(u: &UserRow) -> Value {
    json!({
        "name": u.name, "role": u.role, "email": u.email, "projects": u.projects,
        "primary": u.primary_user, "manager": u.manager, "tenant": u.tenant,
        "disabled": u.disabled, "created_at": u.created_at, "changed_at": u.changed_at,
    })
}

fn token_json(t: &TokenRow) -> Value {
    json!({
        "id": t.id, "user": t.user_name, "label": t.label, "created_at": t.created_at,
        "expires_at": t.expires_at, "revoked_at": t.revoked_at, "last_used_at": t.last_used_at,
    })
}

/// The accounts whose tokens `who` sees: its own, and those it manages.
pub async fn managed_names(
    s: &Server,
    who: &crate::auth::Principal,
) -> ApiResult<std::collections::HashSet<String>> {
    let mut names: std::collections::HashSet<String> = s
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| who.manages(u))
        .map(|u| u.name)
        .collect();
    names.insert(who.name.clone());
    Ok(names)
}

pub async fn users(State(s): Shared, c: Caller) -> ApiResult<Json<Value>> {
    c.require_admin()?;
    let list: Vec<_> = s
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| c.who.manages(u) || u.name == c.who.name)
        .collect();
    Ok(Json(
        json!({"users": list.iter().map(user_json).collect::<Vec<_>>()}),
    ))
}

pub async fn user(State(s): Shared, c: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    if c.who.name != name {
        return Ok(Json(user_json(&c.managed(&s, &name).await?)));
    }
    Ok(Json(user_json(&users::get(&s.store, &name).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    name: String,
    role: String,
    email: String,
    password: String,
    #[serde(default)]
    projects: Vec<String>,
    primary: Option<String>,
    manager: Option<String>,
    tenant: Option<String>,
}

pub async fn add_user(State(s): Shared, c: Caller, Body(b): Body<AddUser>) -> ApiResult<Response> {
    c.require_admin()?;
    let new = NewUser {
        name: b.name,
        role: b.role,
        email: b.email,
        projects: b.projects,
        primary_user: b.primary,
        // A managed administrator's accounts are its own to manage.
        manager: if c.who.manager.is_some() {
            Some(c.who.name.clone())
        } else {
            b.manager.or_else(|| Some(c.who.name.clone()))
        },
        tenant: b.tenant,
    };
    let u = users::add(&s.store, new, &b.password).await?;
    c.audit(&s, "user.add", &u.name, &format!("role {}", u.role))
        .await;
    Ok((StatusCode::CREATED, Json(user_json(&u))).into_response())
}

/// Every field optional: only what is given changes. `null` clears primary/manager/tenant.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeUser {
    role: Option<String>,
    email: Option<String>,
    password: Option<String>,
    projects: Option<Vec<String>>,
    #[serde(default, with = "double_option")]
    primary: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    manager: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    tenant: Option<Option<String>>,
    disabled: Option<bool>,
}

/// Tells "absent" (keep) from `null` (clear).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

pub async fn change_user(
    State(s): Shared,
    c: Caller,
    Path(name): Path<String>,
    Body(b): Body<ChangeUser>,
) -> ApiResult<Json<Value>> {
    let before = c.managed(&s, &name).await?;
    let mut after = before.clone();
    let mut what = Vec::new();
    if let Some(r) = b.role {
        what.push(format!("role {r}"));
        after.role = r;
    }
    if let Some(e) = b.email {
        what.push("email".to_string());
        after.email = e;
    }
    if let Some(p) = b.password {
        what.push("password".to_string());
        after.password = users::hash_password(&p)?;
    }
    if let Some(p) = b.projects {
        what.push(format!("projects {}", p.join(",")));
        after.projects = p;
    }
    if let Some(p) = b.primary {
        what.push("primary".to_string());
        after.primary_user = p;
    }
    if let Some(m) = b.manager {
        what.push("manager".to_string());
        after.manager = m;
    }
    if let Some(t) = b.tenant {
        what.push("tenant".to_string());
        after.tenant = t;
    }
    if let Some(d) = b.disabled {
        if d && name == c.who.name {
            return Err(ApiError::field(
                "disabled",
                "you cannot disable your own account",
            ));
        }
        what.push(if d { "disabled" } else { "enabled" }.to_string());
        after.disabled = d;
    }
    let u = users::save(&s.store, &before, after).await?;
    c.audit(&s, "user.change", &name, &what.join(", ")).await;
    Ok(Json(user_json(&u)))
}

pub async fn delete_user(
    State(s): Shared,
    c: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    if name == c.who.name {
        return Err(ApiError::field(
            "name",
            "you cannot delete your own account",
        ));
    }
    c.managed(&s, &name).await?;
    s.store.delete_user(&name).await?;
    c.audit(&s, "user.delete", &name, "").await;
    Ok(Json(json!({"deleted": name})))
}

#[derive(Deserialize)]
pub struct TokensQuery {
    user: Option<String>,
}

pub async fn tokens(
    State(s): Shared,
    c: Caller,
    Query(q): Query<TokensQuery>,
) -> ApiResult<Json<Value>> {
    let user = match q.user {
        Some(u) if u != c.who.name => {
            c.managed(&s, &u).await?;
            Some(u)
        }
        Some(u) => Some(u),
        None if c.who.is_admin() => None,
        None => Some(c.who.name.clone()),
    };
    let mine = managed_names(&s, &c.who).await?;
    let list: Vec<_> = s
        .store
        .tokens(user.as_deref())
        .await?
        .into_iter()
        .filter(|t| mine.contains(&t.user_name))
        .collect();
    Ok(Json(
        json!({"tokens": list.iter().map(token_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    user: Option<String>,
    #[serde(default)]
    label: String,
    /// e.g. `30d` (at most 365d); none: 90 days.
    expires: Option<String>,
}

/// Tokens made through the API live 90 days unless asked otherwise, a year at most.
const TOKEN_DEFAULT: Duration = Duration::from_secs(90 * 86400);
const TOKEN_MAX: Duration = Duration::from_secs(365 * 86400);

pub async fn create_token(
    State(s): Shared,
    c: Caller,
    Body(b): Body<NewToken>,
) -> ApiResult<Response> {
    if !matches!(c.who.via, crate::auth::Via::Session { .. }) {
        return Err(ApiError::Forbidden(
            "tokens are created from a logged-in session or with `controller tokens create`".into(),
        ));
    }
    let user = b.user.unwrap_or_else(|| c.who.name.clone());
    if user != c.who.name {
        c.managed(&s, &user).await?;
    }
    let valid_for = match &b.expires {
        None => TOKEN_DEFAULT,
        Some(t) => ordo_jobs::units::parse_duration(t)
            .map_err(|e| ApiError::field("expires", e.to_string()))?,
    };
    if valid_for > TOKEN_MAX || valid_for.is_zero() {
        return Err(ApiError::field("expires", "from 1s to 365d"));
    }
    let valid_for = Some(valid_for);
    let (row, shown) = users::create_token(&s.store, &user, &b.label, valid_for).await?;
    c.audit(&s, "token.create", &format!("{user} {}", row.id), &b.label)
        .await;
    let mut v = token_json(&row);
    v["token"] = shown.into();
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn revoke_token(
    State(s): Shared,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = s
        .store
        .token(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no token `{id}`")))?;
    if t.user_name != c.who.name {
        c.managed(&s, &t.user_name).await?;
    }
    s.store.revoke_token(&id, now_ms()).await?;
    c.audit(&s, "token.revoke", &format!("{} {id}", t.user_name), "")
        .await;
    Ok(Json(json!({"revoked": id})))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    limit: Option<String>,
}

pub async fn audit(
    State(s): Shared,
    c: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    c.require_admin()?;
    let limit = super::api_executions::number("limit", q.limit.as_deref(), 1..=1000, 100)?;
    let rows = s
        .store
        .audit(q.actor.as_deref(), q.action.as_deref(), limit)
        .await?;
    Ok(Json(json!({"audit": rows})))
}
