//! Who is calling: every handler but the login's takes a [`Caller`], so no route answers
//! without credentials. A session (cookie) must also send its CSRF token with every
//! state-changing request; API tokens and WSSE headers are never sent by a browser on its
//! own, so they need none.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};

use super::Web;
use super::error::ApiError;
use crate::actions::Actor;
use crate::auth::{self, Via};
use crate::clock::now_ms;

/// The session cookie (`__Host-`: only over HTTPS, only for this host, path `/`).
pub const SESSION_COOKIE: &str = "__Host-ordo_session";
/// The header (or form field `csrf`) carrying a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated request: the account and the client's address, as the actions take
/// them.
pub struct Caller(pub Actor);

impl std::ops::Deref for Caller {
    type Target = Actor;

    fn deref(&self) -> &Actor {
        &self.0
    }
}

impl Caller {
    pub async fn audit(&self, s: &Web, action: &str, target: &str, detail: &str) {
        self.0.audit(&s.store, action, target, detail).await;
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

/// The client's address (for waits and the audit log): the peer's, or behind one of
/// `serve: auth: trusted_proxies`, the address its `X-Forwarded-For` names.
pub fn address(parts: &Parts, trusted: &[ipnet::IpNet]) -> String {
    let Some(peer) = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
    else {
        return String::new();
    };
    client_behind(peer, forwarded_for(parts), trusted).to_string()
}

/// Every `X-Forwarded-For` hop, left to right (at most the last 32).
fn forwarded_for(parts: &Parts) -> Vec<String> {
    let mut hops: Vec<String> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().to_string())
        .collect();
    let n = hops.len();
    hops.drain(..n.saturating_sub(32));
    hops
}

/// The client of a request from `peer`: `peer` itself unless it is a trusted proxy;
/// then, from the right of `X-Forwarded-For` (each trusted proxy appends whom it heard
/// from), the first address that is not a trusted proxy. What a client wrote itself
/// (further left) is never believed; a hop that is not an address ends the walk at the
/// proxy that passed it on.
fn client_behind(
    peer: std::net::IpAddr,
    hops: Vec<String>,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut client = peer;
    for hop in hops.iter().rev() {
        if !is_trusted(&client) {
            break;
        }
        // `ip`, or `ip:port` / `[v6]:port` as some proxies write it.
        let ip = hop
            .parse::<std::net::IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()));
        match ip {
            Ok(ip) => client = ip.to_canonical(),
            Err(_) => break,
        }
    }
    client
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

impl FromRequestParts<Arc<Web>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Web>) -> Result<Self, ApiError> {
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
        Ok(Caller(Actor {
            who,
            address: address(parts, &cfg.trusted_proxies),
        }))
    }
}

/// The client's address, for the handlers that need no credentials (the login steps).
pub struct Client(pub String);

impl FromRequestParts<Arc<Web>> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Web>) -> Result<Self, ApiError> {
        Ok(Client(address(
            parts,
            &s.env().cfg.serve.auth.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let nets: Vec<ipnet::IpNet> = vec!["10.0.8.0/24".parse().unwrap()];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let hops = |s: &str| s.split(',').map(|h| h.trim().to_string()).collect();
        // A client's own header is ignored.
        assert_eq!(
            client_behind(ip("192.0.2.7"), hops("1.2.3.4"), &nets),
            ip("192.0.2.7")
        );
        // Behind the proxy: the address it appended, not what the client wrote before it.
        assert_eq!(
            client_behind(ip("10.0.8.1"), hops("1.2.3.4, 192.0.2.7"), &nets),
            ip("192.0.2.7")
        );
        // Two trusted proxies in a row.
        assert_eq!(
            client_behind(ip("10.0.8.1"), hops("192.0.2.7, 10.0.8.2"), &nets),
            ip("192.0.2.7")
        );
        // Garbage passed on by the proxy: the proxy is the client we know.
        assert_eq!(
            client_behind(ip("10.0.8.1"), hops("nonsense"), &nets),
            ip("10.0.8.1")
        );
        assert_eq!(
            client_behind(ip("10.0.8.1"), Vec::new(), &nets),
            ip("10.0.8.1")
        );
        // With a port, as some proxies write it.
        assert_eq!(
            client_behind(ip("10.0.8.1"), hops("192.0.2.7:51000"), &nets),
            ip("192.0.2.7")
        );
        assert_eq!(
            client_behind(ip("10.0.8.1"), hops("[2001:db8::7]:443"), &nets),
            ip("2001:db8::7")
        );
        // IPv4 in IPv6 is IPv4.
        assert_eq!(
            client_behind(ip("10.0.8.1"), hops("::ffff:192.0.2.9"), &nets),
            ip("192.0.2.9")
        );
    }
}
