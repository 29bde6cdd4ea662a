//! Who is calling: every handler but the login's takes a [`Caller`], so no route answers
//! without credentials. A session (cookie) must also send its CSRF token with every
//! state-changing request; API tokens and WSSE headers are never sent by a browser on its
//! own, so they need none.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};

use super::Server;
use super::error::ApiError;
use crate::auth::{self, Principal, Via};
use crate::clock::now_ms;

/// The session cookie (`__Host-`: only over HTTPS, only for this host, path `/`).
pub const SESSION_COOKIE: &str = "__Host-ordo_session";
/// The header (or form field `csrf`) carrying a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated request: the account and the client's address.
pub struct Caller {
    pub who: Principal,
    pub address: String,
}

impl Caller {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.who.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} is not an administrator",
                self.who.name
            )))
        }
    }

    /// The account `name`, if this caller is an administrator who manages it.
    pub async fn managed(&self, s: &Server, name: &str) -> Result<crate::store::UserRow, ApiError> {
        self.require_admin()?;
        let u = crate::auth::users::get(&s.store, name).await?;
        if self.who.manages(&u) {
            Ok(u)
        } else {
            Err(ApiError::Forbidden(format!(
                "{name} is managed by another administrator"
            )))
        }
    }

    pub async fn audit(&self, s: &Server, action: &str, target: &str, detail: &str) {
        auth::audit(
            &s.store,
            &self.who.label(),
            &self.address,
            action,
            target,
            detail,
        )
        .await;
    }
}

/// Sets the session cookie on `r`: `value` for `max_age` seconds, or (empty) ends it.
pub fn set_session_cookie(r: &mut axum::response::Response, value: &str, max_age: u64) {
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
}

/// The client's address (for waits and the audit log).
pub fn address(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

impl FromRequestParts<Arc<Server>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Server>) -> Result<Self, ApiError> {
        let env = s.env();
        let cfg = &env.cfg.serve.auth;
        let now = now_ms();
        let header = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap_or_default().to_string())
        };
        let who = if let Some(a) = header(header::AUTHORIZATION) {
            let token = a.strip_prefix("Bearer ").ok_or_else(|| {
                ApiError::Unauthenticated("Authorization: expected `Bearer <token>`".into())
            })?;
            auth::credentials::bearer(&s.store, token.trim(), now).await?
        } else if let Some(w) = header(header::HeaderName::from_static("x-wsse")) {
            auth::credentials::wsse(&s.store, cfg, &w, now).await?
        } else if let Some(c) = cookie(parts, SESSION_COOKIE) {
            let who = auth::credentials::session(&s.store, cfg, c, now).await?;
            if !matches!(parts.method, Method::GET | Method::HEAD) {
                let Via::Session { csrf, .. } = &who.via else {
                    unreachable!("a session principal")
                };
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !auth::secret::same(sent, csrf) {
                    return Err(ApiError::Forbidden(
                        "missing or wrong CSRF token (header X-CSRF-Token)".into(),
                    ));
                }
            }
            who
        } else {
            return Err(ApiError::Unauthenticated(
                "log in (POST /api/v1/login) or give a token: Authorization: Bearer <token>".into(),
            ));
        };
        Ok(Caller {
            who,
            address: address(parts),
        })
    }
}

/// The client's address, for the handlers that need no credentials (the login steps).
pub struct Client(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Client(address(parts)))
    }
}
