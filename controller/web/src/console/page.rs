//! What every console page shares: the session behind it (pages take session cookies
//! only: a browser never sends a token), the CSRF check of every form, the header's
//! data, and error pages.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::Web;
use crate::auth::{self, Principal, Role, Via};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::guard::{SESSION_COOKIE, address, cookie};

/// The header of every page: who is logged in, and the token its forms carry.
#[derive(Default, Clone)]
pub struct Chrome {
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub admin: bool,
    pub operator: bool,
    pub flash: String,
}

/// A logged-in browser.
pub struct Page {
    pub who: Principal,
    pub csrf: String,
    pub address: String,
}

impl Page {
    pub fn chrome(&self) -> Chrome {
        Chrome {
            user: self.who.name.clone(),
            role: self.who.role.as_str().to_string(),
            csrf: self.csrf.clone(),
            admin: self.who.is_admin(),
            operator: self.who.role >= Role::Operator,
            flash: String::new(),
        }
    }

    /// Who acts, for the actions.
    pub fn actor(&self) -> crate::actions::Actor {
        crate::actions::Actor {
            who: self.who.clone(),
            address: self.address.clone(),
        }
    }

    /// As the API sees it (same rules, same helpers).
    pub fn caller(&self) -> crate::guard::Caller {
        crate::guard::Caller(self.actor())
    }
}

/// `/login?next=<this page>`: where a browser without a session goes.
fn to_login(parts: &Parts) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let next: String = url_encode(&here);
    Redirect::to(&format!("/login?next={next}")).into_response()
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl FromRequestParts<Arc<Web>> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Web>) -> Result<Self, Response> {
        let Some(c) = cookie(parts, SESSION_COOKIE) else {
            return Err(to_login(parts));
        };
        let env = s.env();
        match auth::credentials::session(&s.store, &env.cfg.serve.auth, c, now_ms()).await {
            Ok(who) => {
                let Via::Session { csrf, .. } = &who.via else {
                    return Err(to_login(parts));
                };
                Ok(Page {
                    csrf: csrf.clone(),
                    who,
                    address: address(parts, &env.cfg.serve.auth.trusted_proxies),
                })
            }
            Err(_) => Err(to_login(parts)),
        }
    }
}

/// A form posted by a logged-in browser, its CSRF token checked; the other fields in
/// order (`opt.NAME` fields of a run form, repeated names).
pub struct Posted {
    pub page: Page,
    pub fields: Vec<(String, String)>,
}

impl Posted {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_string()
    }
}

impl FromRequest<Arc<Web>> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, s: &Arc<Web>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let page = Page::from_request_parts(&mut parts, s).await?;
        let req = Request::from_parts(parts, body);
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(req, s)
            .await
            .map_err(|e| error_page(StatusCode::BAD_REQUEST, &e.body_text()))?;
        let sent = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map_or("", |(_, v)| v.as_str());
        if !auth::secret::same(sent, &page.csrf) {
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "This form is out of date or did not come from this site: reload the page and try again.",
            ));
        }
        Ok(Posted { page, fields })
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error").to_string();
    let page = ErrorPage {
        chrome: Chrome::default(),
        title,
        message: message.to_string(),
    };
    (status, render(&page)).into_response()
}

/// A template as HTML (a rendering error is a 500 with the cause logged).
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("console: rendering a page: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: see the controller's log",
            )
                .into_response()
        }
    }
}

/// An API error as a page (404, 403, 400...).
pub struct PageError(pub Response);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let status = e.status();
        let message = match &e {
            ApiError::Internal(err) => {
                tracing::error!("console: {err:#}");
                "internal error: see the controller's log".to_string()
            }
            other => other.to_string(),
        };
        PageError(error_page(status, &message))
    }
}

impl From<crate::actions::ActionError> for PageError {
    fn from(e: crate::actions::ActionError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0
    }
}

pub type PageResult = Result<Response, PageError>;

/// After a form: see the result (303 See Other, so a reload does not post again).
pub fn see(path: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, path.to_string())],
    )
        .into_response()
}
