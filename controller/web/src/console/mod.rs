//! The web console: server-rendered pages (askama templates compiled into the binary)
//! on the same routes, rules and helpers as the API, with one small script of ours for
//! the live log. Pages take a session only; every form carries the session's CSRF
//! token ([`page::Posted`]); the reading pages work without JavaScript.

mod admin;
mod alerts;
mod downloads;
mod executions;
mod jobs;
mod keys;
mod login;
pub mod page;
mod schedules;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::Web;

macro_rules! console_routes {
    ($( $method:ident $path:literal $handler:path, $public:literal; )*) => {
        /// Every console route: method, path, and whether it answers without a session
        /// (the login pages and the two static files only).
        pub const ROUTES: &[(&str, &str, bool)] = &[ $( (stringify!($method), $path, $public), )* ];

        pub fn routes() -> Router<Arc<Web>> {
            Router::new() $( .route($path, $method($handler)) )*
        }
    };
}

console_routes! {
    get "/static/console.css" css, true;
    get "/static/console.js" js, true;
    get "/login" login::form, true;
    post "/login" login::submit, true;
    post "/login/code" login::code, true;
    post "/login/resend" login::resend, true;
    post "/logout" login::logout, false;
    get "/" jobs::home, false;
    get "/jobs" jobs::jobs, false;
    get "/jobs/{*name}" jobs::job, false;
    post "/jobs/{*name}" jobs::run, false;
    get "/schedules" schedules::schedules, false;
    post "/schedules/{*name}" schedules::switch, false;
    get "/executions" executions::list, false;
    get "/executions/{id}" executions::show, false;
    post "/executions/{id}/abort" executions::abort, false;
    post "/executions/{id}/retry" executions::retry, false;
    get "/executions/{id}/archive" downloads::archive, false;
    get "/executions/{id}/files/{index}" downloads::file, false;
    get "/alerts" alerts::mine, false;
    get "/alerts/{account}" alerts::show, false;
    post "/alerts/{account}" alerts::save, false;
    get "/agents" admin::agents, false;
    get "/transfers" admin::transfers, false;
    get "/admin/audit" admin::audit, false;
    get "/admin/keys" keys::list, false;
    post "/admin/keys/add" keys::add, false;
    post "/admin/keys/generate" keys::generate, false;
    post "/admin/keys/{name}/edit" keys::edit, false;
    post "/admin/keys/{name}/delete" keys::delete, false;
    get "/admin/users" admin::users, false;
    post "/admin/users" admin::add_user, false;
    post "/admin/users/{name}/state" admin::user_state, false;
    get "/admin/tokens" tokens::tokens, false;
    post "/admin/tokens" tokens::create_token, false;
    post "/admin/tokens/{id}/revoke" tokens::revoke_token, false;
}

fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    r
}

async fn css() -> Response {
    asset(
        include_bytes!("../../assets/console.css"),
        "text/css; charset=utf-8",
    )
}

async fn js() -> Response {
    asset(
        include_bytes!("../../assets/console.js"),
        "text/javascript; charset=utf-8",
    )
}
