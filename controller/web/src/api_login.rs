//! The login steps, logout, and "who am I". A session is a cookie (`HttpOnly`, `Secure`,
//! `SameSite=Strict`, `__Host-`) plus a CSRF token the client sends back with every
//! state-changing request.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Web;
use super::error::ApiResult;
use super::extract::Body;
use super::guard::{Caller, Client, set_session_cookie};
use crate::auth::login::{self, NewSession, Started};
use crate::auth::{Via, audit};
use crate::clock::now_ms;

type Shared = State<Arc<Web>>;

#[derive(Deserialize)]
pub struct Credentials {
    user: String,
    password: String,
}

#[derive(Deserialize)]
pub struct Code {
    ticket: String,
    #[serde(default)]
    code: String,
}

fn session_response(s: &Web, n: NewSession) -> Response {
    let max_age = s.env().cfg.serve.auth.session_max.as_secs();
    let mut r = Json(json!({"user": n.user, "csrf": n.csrf})).into_response();
    set_session_cookie(&mut r, &n.cookie, max_age);
    r
}

pub async fn start(
    State(s): Shared,
    Client(addr): Client,
    Body(c): Body<Credentials>,
) -> ApiResult<Response> {
    let env = s.env();
    match login::start(&s.store, &env.cfg, &c.user, &c.password, &addr, now_ms()).await? {
        Started::Code { ticket, sent_to } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "ticket": ticket,
                "sent_to": sent_to,
                "expires_in": login::CODE_TTL_MS / 1000,
                "next": "POST /api/v1/login/code with {ticket, code}",
            })),
        )
            .into_response()),
        Started::Session(n) => Ok(session_response(&s, n)),
    }
}

pub async fn finish(
    State(s): Shared,
    Client(addr): Client,
    Body(c): Body<Code>,
) -> ApiResult<Response> {
    let env = s.env();
    let n = login::finish(
        &s.store,
        &env.cfg,
        &c.ticket,
        c.code.trim(),
        &addr,
        now_ms(),
    )
    .await?;
    Ok(session_response(&s, n))
}

pub async fn resend(
    State(s): Shared,
    Client(addr): Client,
    Body(c): Body<Code>,
) -> ApiResult<Response> {
    let env = s.env();
    let sent_to = login::resend(&s.store, &env.cfg, &c.ticket, &addr, now_ms()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"sent_to": sent_to, "expires_in": login::CODE_TTL_MS / 1000})),
    )
        .into_response())
}

pub async fn logout(State(s): Shared, c: Caller) -> ApiResult<Response> {
    if let Via::Session { id_hash, .. } = &c.who.via {
        s.store.end_sessions(id_hash, &c.who.name, now_ms()).await?;
        audit(&s.store, &c.who.name, &c.address, "logout", &c.who.name, "").await;
    }
    let mut r = Json(json!({"logged_out": true})).into_response();
    set_session_cookie(&mut r, "", 0);
    Ok(r)
}

pub async fn me(c: Caller) -> Json<Value> {
    let w = &c.who;
    Json(json!({
        "user": w.name,
        "role": w.role.as_str(),
        "projects": w.projects,
        "primary": w.primary_user,
        "secondaries": w.secondaries,
        "top": w.is_top(),
        "via": match &w.via {
            Via::Session { .. } => "session".to_string(),
            Via::Token(id) => format!("token {id}"),
            Via::Wsse(t) => format!("wsse {t}"),
            Via::Cli => "cli".to_string(),
        },
    }))
}
