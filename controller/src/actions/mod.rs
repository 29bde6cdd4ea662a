//! What an account may do, written once: each action takes the [`Actor`] (who asks, and
//! from where) and a typed input, checks the permission, does it, and writes the audit
//! row. The API, the console and the command line only translate to and from these
//! functions, so a rule changes in one place (pueue's `process_handler`, called by its
//! thin message handlers).

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod keys;
pub mod runs;
pub mod schedules;
pub mod tokens;

use crate::auth::{self, AuthError, Principal};
use crate::store::{Store, StoreError, UserRow};

/// Who asks for an action, and from where (the client's address; empty on the command
/// line).
#[derive(Debug, Clone)]
pub struct Actor {
    pub who: Principal,
    pub address: String,
}

/// Why an action was refused or failed; the web maps each kind to a status once.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    NotFound(String),
    /// One input is wrong.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Allowed to nobody in the caller's place.
    #[error("{0}")]
    Forbidden(String),
    /// Refused as things stand (a key in use, the last top administrator, a run that
    /// already ended).
    #[error("{0}")]
    Conflict(String),
    /// A run's option values, each problem naming its option.
    #[error("{0}")]
    Options(ordo_jobs::OptionErrors),
    /// Several inputs are wrong (an alert configuration): (field, message) each.
    #[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    Fields(Vec<(String, String)>),
    /// A run that cannot start as asked (no server matches, a bad `--limit`, a `run_as`
    /// that is not a user name, an execution still running).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

pub type ActionResult<T> = Result<T, ActionError>;

impl ActionError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ActionError {
        ActionError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl Actor {
    /// The controller's command line, as the system user running it.
    pub fn cli() -> Actor {
        Actor {
            who: Principal::cli(&crate::session::current_user()),
            address: String::new(),
        }
    }

    pub fn require_admin(&self) -> ActionResult<()> {
        if self.who.is_admin() {
            Ok(())
        } else {
            Err(ActionError::Forbidden(format!(
                "{} is not an administrator",
                self.who.name
            )))
        }
    }

    /// Refuses unless a top administrator (or the command line) asks: `what` says what.
    pub fn require_top(&self, what: &str) -> ActionResult<()> {
        if self.who.is_top() {
            Ok(())
        } else {
            Err(ActionError::Forbidden(format!(
                "{what}: for top administrators only ({} is not one)",
                self.who.name
            )))
        }
    }

    /// The account `name`, if this actor is an administrator who manages it.
    pub async fn managed(&self, store: &Store, name: &str) -> ActionResult<UserRow> {
        self.require_admin()?;
        let u = store
            .user(name)
            .await?
            .ok_or_else(|| ActionError::NotFound(format!("no account `{name}`")))?;
        if self.who.manages(&u) {
            Ok(u)
        } else if u.name == self.who.name {
            Err(ActionError::Forbidden(format!(
                "{name}: your own account is changed by the administrator who manages it"
            )))
        } else {
            Err(ActionError::Forbidden(format!(
                "{name} is managed by another administrator"
            )))
        }
    }

    /// Writes one audit entry (a failure to write is logged, never fatal).
    pub async fn audit(&self, store: &Store, action: &str, target: &str, detail: &str) {
        auth::audit(
            store,
            &self.who.label(),
            &self.address,
            action,
            target,
            detail,
        )
        .await;
    }
}
