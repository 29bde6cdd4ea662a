//! Accounts, API tokens and the audit log in the API: JSON in and out of the actions
//! (`crate::actions`), which hold every rule.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Web;
use super::error::{ApiError, ApiResult};
use super::extract::Body;
use super::guard::Caller;
use crate::actions;
use crate::actions::accounts::{self, AccountChange, NewAccount};
use crate::actions::tokens::{self, NewToken};
use crate::store::{TokenRow, UserRow};

type Shared = State<Arc<Web>>;

pub fn user_json(u: &UserRow) -> Value {
    json!({
        "name": u.name, "role": u.role, "email": u.email, "projects": u.projects,
        "primary": u.primary_user, "manager": u.manager, "tenant": u.tenant, "top": u.top,
        "disabled": u.disabled, "created_at": u.created_at, "changed_at": u.changed_at,
    })
}

fn token_json(t: &TokenRow) -> Value {
    json!({
        "id": t.id, "user": t.user_name, "label": t.label, "created_at": t.created_at,
        "expires_at": t.expires_at, "revoked_at": t.revoked_at, "last_used_at": t.last_used_at,
    })
}

pub async fn users(State(s): Shared, c: Caller) -> ApiResult<Json<Value>> {
    let list = accounts::list(&s.store, &c).await?;
    Ok(Json(
        json!({"users": list.iter().map(user_json).collect::<Vec<_>>()}),
    ))
}

pub async fn user(State(s): Shared, c: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(user_json(&accounts::get(&s.store, &c, &name).await?)))
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
    #[serde(default)]
    top: bool,
}

pub async fn add_user(State(s): Shared, c: Caller, Body(b): Body<AddUser>) -> ApiResult<Response> {
    let new = NewAccount {
        name: b.name,
        role: b.role,
        email: b.email,
        password: b.password,
        projects: b.projects,
        primary: b.primary,
        manager: b.manager,
        tenant: b.tenant,
        top: b.top,
    };
    let u = accounts::add(&s.store, &c, new).await?;
    Ok((StatusCode::CREATED, Json(user_json(&u))).into_response())
}

/// Every field optional: only what is given changes. `null` clears primary or tenant
/// (never manager: give the account to another administrator instead).
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
    top: Option<bool>,
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
    let change = AccountChange {
        role: b.role,
        email: b.email,
        password: b.password,
        projects: b.projects,
        primary: b.primary,
        manager: b.manager,
        tenant: b.tenant,
        disabled: b.disabled,
        top: b.top,
    };
    let u = accounts::change(&s.store, &c, &name, change).await?;
    Ok(Json(user_json(&u)))
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    hand_to: Option<String>,
}

pub async fn delete_user(
    State(s): Shared,
    c: Caller,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Json<Value>> {
    let heir = accounts::delete(&s.store, &c, &name, q.hand_to.as_deref()).await?;
    Ok(Json(json!({"deleted": name, "accounts_to": heir})))
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
    let list = tokens::list(&s.store, &c, q.user.as_deref()).await?;
    Ok(Json(
        json!({"tokens": list.iter().map(token_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    user: Option<String>,
    #[serde(default)]
    label: String,
    /// e.g. `30d` (at most 365d); none: 90 days.
    expires: Option<String>,
}

pub async fn create_token(
    State(s): Shared,
    c: Caller,
    Body(b): Body<NewTokenBody>,
) -> ApiResult<Response> {
    let valid_for = b
        .expires
        .as_deref()
        .map(ordo_jobs::units::parse_duration)
        .transpose()
        .map_err(|e| ApiError::field("expires", e.to_string()))?;
    let t = NewToken {
        user: b.user,
        label: b.label,
        valid_for,
    };
    let (row, shown) = tokens::create(&s.store, &c, t).await?;
    let mut v = token_json(&row);
    v["token"] = shown.into();
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn revoke_token(
    State(s): Shared,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    tokens::revoke(&s.store, &c, &id).await?;
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
    let limit = super::extract::number("limit", q.limit.as_deref(), 1..=1000, 100)?;
    let rows =
        actions::audit::read(&s.store, &c, q.actor.as_deref(), q.action.as_deref(), limit).await?;
    Ok(Json(json!({"audit": rows})))
}
