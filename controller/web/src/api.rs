//! The REST API v1 of `controller serve` (JSON). Every route is in [`ROUTES`], built by one
//! macro with the router itself, so the OpenAPI document and the tests that walk the
//! routes can never miss one. Every handler but the login's takes a
//! [`Caller`](super::guard::Caller): nothing answers without credentials.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Web;
use super::api_admin as admin;
use super::api_alerts as alerts;
use super::api_executions as execs;
use super::api_fleet as fleet;
use super::api_jobs as jobs;
use super::api_keys as keys;
use super::api_login as login;
use super::error::{ApiError, ApiResult};
use super::extract::MAX_BODY;
use super::guard::Caller;
use super::http::{self, Listening};
use crate::clock::now_ms;

type Shared = State<Arc<Web>>;

macro_rules! api_routes {
    ($( $method:ident $path:literal $handler:path, $public:literal, $summary:literal; )*) => {
        /// Every route: method, path, whether it answers without credentials (the login
        /// steps only), and what it does.
        pub const ROUTES: &[(&str, &str, bool, &str)] = &[
            $( (stringify!($method), $path, $public, $summary), )*
        ];

        fn routes() -> Router<Arc<Web>> {
            Router::new() $( .route($path, $method($handler)) )*
        }
    };
}

api_routes! {
    post "/api/v1/login" login::start, true, "Log in, step one: user name and password (or an SSO token); mails a code";
    post "/api/v1/login/code" login::finish, true, "Log in, step two: the ticket and the mailed code; opens a session";
    post "/api/v1/login/resend" login::resend, true, "Send a new login code (the previous one stops working)";
    post "/api/v1/logout" login::logout, false, "End this session";
    get "/api/v1/me" login::me, false, "The calling account";
    get "/api/v1/health" health, false, "This controller: instance, leader, counts";
    get "/api/v1/openapi.json" openapi, false, "This API's OpenAPI document";
    post "/api/v1/reload" reload, false, "Reread the jobs and inventory (admin)";
    get "/api/v1/schedules" jobs::schedules, false, "Scheduled jobs, their next fires, whether they are on";
    put "/api/v1/schedules/{*name}" fleet::switch_schedule, false, "Switch a job's schedule on or off: {\"enabled\": bool} (operator)";
    get "/api/v1/agents" fleet::agents, false, "Agents as last seen: version, user, certificate expiry (operator)";
    get "/api/v1/transfers" fleet::transfers, false, "Transferred files and their lifecycle status";
    get "/api/v1/jobs" jobs::list, false, "Jobs, by folder";
    get "/api/v1/jobs/{*name}" jobs::show, false, "One job: description, options, steps, targets";
    post "/api/v1/jobs/{*name}" jobs::run, false, "Run a job now with options (operator)";
    get "/api/v1/executions" execs::executions, false, "Executions, newest first, with filters and paging";
    get "/api/v1/executions/{id}" execs::execution, false, "One execution with its servers";
    get "/api/v1/executions/{id}/log" execs::log, false, "An execution's log lines with their times";
    get "/api/v1/executions/{id}/events" execs::events, false, "An execution's log as it is written (Server-Sent Events)";
    get "/api/v1/executions/{id}/archive" execs::archive, false, "Download an execution's archive";
    post "/api/v1/executions/{id}/abort" jobs::abort, false, "Abort a running execution, on whichever controller runs it (operator)";
    post "/api/v1/executions/{id}/retry" jobs::retry, false, "Run an execution again, all servers or only the failed ones (operator)";
    get "/api/v1/users" admin::users, false, "Accounts (admin)";
    post "/api/v1/users" admin::add_user, false, "Add an account (admin)";
    get "/api/v1/users/{name}" admin::user, false, "One account (admin, or the account itself)";
    patch "/api/v1/users/{name}" admin::change_user, false, "Change an account: role, mail, projects, hierarchy, disabled, password (admin)";
    delete "/api/v1/users/{name}" admin::delete_user, false, "Delete an account (admin)";
    get "/api/v1/tokens" admin::tokens, false, "API tokens: one's own, or everyone's for an admin";
    post "/api/v1/tokens" admin::create_token, false, "Create an API token (shown once)";
    delete "/api/v1/tokens/{id}" admin::revoke_token, false, "Revoke an API token";
    get "/api/v1/audit" admin::audit, false, "The audit log (admin)";
    get "/api/v1/alerts/{account}" alerts::show, false, "An account's alert configuration (`me`: one's own), with its projects' active rules";
    put "/api/v1/alerts/{account}" alerts::replace, false, "Replace an account's alert configuration: switches, mails, webhook, projects' rules";
    patch "/api/v1/alerts/{account}" alerts::patch, false, "Change part of an account's alert configuration (mails_to_add, mails_to_delete, rules by project)";
    get "/api/v1/alerts/{account}/queue" alerts::queue, false, "An account's alerts: to whom, due when, sent or why not";
    get "/api/v1/keys" keys::list, false, "Encryption keys: personal and backup, expiry, the jobs using each (admin)";
    post "/api/v1/keys" keys::add, false, "Import a certificate as an encryption key: {name, cert (PEM), backup} (admin)";
    post "/api/v1/keys/generate" keys::generate, false, "Make a key pair for its owner; the private key is in this answer only (admin)";
    patch "/api/v1/keys/{name}" keys::edit, false, "Rename a key, or make it a backup key or not (admin)";
    delete "/api/v1/keys/{name}" keys::delete, false, "Delete a key; ?force=true even while jobs use it (admin)";
}

/// The whole application: the routes, the body limit, the Host/Origin guard and headers.
pub fn app(server: Arc<Web>, l: Listening) -> Router {
    routes()
        .merge(super::console::routes())
        .fallback(|| async { ApiError::NotFound("no such API route".into()) })
        .with_state(server)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(l, http::guard))
}

pub async fn run(
    server: Arc<Web>,
    listener: tokio::net::TcpListener,
    l: Listening,
    stop: CancellationToken,
) {
    http::serve(app(server, l.clone()), listener, l, stop).await
}

async fn health(State(s): Shared, _c: Caller) -> Json<Value> {
    let env = s.env();
    Json(json!({
        "instance": s.instance,
        "leader": s.is_leader(),
        "jobs": env.jobs.jobs.len(),
        "servers": env.inventory.nodes.len(),
        "time": now_ms(),
    }))
}

async fn reload(State(s): Shared, c: Caller) -> ApiResult<Json<Value>> {
    c.require_admin()?;
    match s.reload() {
        Ok(summary) => {
            c.audit(&s, "reload", "", &summary).await;
            Ok(Json(json!({"reloaded": true, "summary": summary})))
        }
        Err(e) => {
            tracing::error!("reload refused (API), the previous jobs and inventory stay:\n{e}");
            Err(ApiError::Unprocessable(e.to_string()))
        }
    }
}

/// OpenAPI 3.1, from [`ROUTES`]: every path, its methods, whether it needs credentials.
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, public, summary) in ROUTES {
        let p = path.replace("{*name}", "{name}");
        let params: Vec<Value> = p
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|n| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "done"},
                "default": {"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if *public {
            op["security"] = json!([]);
        }
        paths
            .entry(p)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("an object")
            .insert(method.to_string(), op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "ordo controller API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "security": [{"bearer": []}, {"session": []}, {"wsse": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a personal API token: controller tokens create"},
                "session": {"type": "apiKey", "in": "cookie", "name": super::guard::SESSION_COOKIE, "description": "after the two-step login; state-changing requests also send X-CSRF-Token"},
                "wsse": {"type": "apiKey", "in": "header", "name": "X-WSSE", "description": "UsernameToken with a tenant's key"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}
                    }}}
                }
            }
        }
    })
}

async fn openapi(_c: Caller) -> Json<Value> {
    Json(openapi_document())
}
