//! The web side of `controller serve`: the REST API (`api*.rs`, JSON in and out) and the
//! console (`console/`, pages from askama templates, assets compiled in), their HTTP(S)
//! server (`http.rs`), who a request is (`guard.rs`) and one map from every error to a
//! status (`error.rs`). Handlers translate: the rules are the controller's actions and
//! services, so the API, the console and the command line cannot drift apart.

pub mod api;
pub(crate) mod api_admin;
pub(crate) mod api_alerts;
mod api_executions;
mod api_fleet;
mod api_jobs;
mod api_keys;
mod api_login;
pub mod console;
pub mod error;
pub mod extract;
pub mod guard;
pub mod http;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ordo_controller::serve::{FrontDoor, Server};
use tokio_util::sync::CancellationToken;

// The controller's modules, under the names these files have always used.
pub(crate) use ordo_controller::{
    actions, alerts, auth, clock, exec, pki, process, project, serve, store,
};

/// What the web side shares between requests: the controller's state, and its own.
pub struct Web {
    pub server: Arc<Server>,
    /// Live logs (SSE) open, per account.
    pub(crate) streams: Mutex<HashMap<String, usize>>,
    /// Options' values from files and commands, as pages show them.
    pub(crate) option_values: exec::values::ValuesCache,
}

impl std::ops::Deref for Web {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Web {
    pub fn new(server: Arc<Server>) -> Arc<Web> {
        Arc::new(Web {
            server,
            streams: Mutex::new(HashMap::new()),
            option_values: Default::default(),
        })
    }
}

/// The API and the console on `listener`, as `serve::run` starts them.
pub fn front_door(listener: tokio::net::TcpListener, listening: http::Listening) -> FrontDoor {
    Box::new(move |server: Arc<Server>, stop: CancellationToken| {
        Box::pin(async move {
            let scheme = if listening.tls.is_some() {
                "https"
            } else {
                "http"
            };
            if let Ok(addr) = listener.local_addr() {
                tracing::info!("API on {scheme}://{addr}");
            }
            api::run(Web::new(server), listener, listening, stop).await
        })
    })
}
