//! Who is asking, and may they: accounts and roles, the two-step login, sessions, API
//! tokens, WSSE and SSO for tenants' front-ends, waits after failed logins, the audit log.
//! Everything here takes `now` from [`crate::clock`] and keeps its state in the store, so
//! it behaves the same on every controller of a high-availability pair and after a restart.

pub mod credentials;
pub mod login;
pub mod secret;
pub mod users;

use crate::store::{AuditRow, ExecutionRow, Store, StoreError, UserRow};

pub use crate::project::AuthSettings;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads the jobs and executions of its projects.
    Viewer,
    /// Also runs, aborts and retries the jobs of its projects.
    Operator,
    /// Everything, on every project; manages accounts and tokens.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, AuthError> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "viewer" => Ok(Role::Viewer),
            other => Err(AuthError::Invalid {
                field: "role".into(),
                message: format!("`{other}` is not one of: admin, operator, viewer"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A console session (cookie); state-changing requests also carry its CSRF token.
    /// `sso`: opened by a tenant's front-end with an SSO token.
    Session {
        id_hash: String,
        csrf: String,
        sso: bool,
    },
    /// A personal API token (`Authorization: Bearer`).
    Token(String),
    /// A tenant's integration (`X-WSSE`).
    Wsse(String),
    /// The controller's command line, run by this system user: it holds the database and
    /// the project's files, so it may do what a top administrator may.
    Cli,
}

/// An authenticated account.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub projects: Vec<String>,
    pub primary_user: Option<String>,
    /// The secondary accounts of this (primary) account.
    pub secondaries: Vec<String>,
    /// The administrator who manages this account.
    pub manager: Option<String>,
    /// A top administrator: manages every account, the keys and the whole audit log.
    pub top: bool,
    pub via: Via,
}

/// The folder of a job (`tests/imap/auth` is in `tests/imap`; a top-level job in ``).
pub fn project_of(job: &str) -> &str {
    job.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Does grant `g` (a folder, `/` for the top level, `*` for all) cover `project`?
pub fn grant_covers(g: &str, project: &str) -> bool {
    let g = g.trim_end_matches('/');
    g == "*"
        || (g.is_empty() && project.is_empty())
        || project == g
        || project.strip_prefix(g).is_some_and(|r| r.starts_with('/'))
}

impl Principal {
    /// The controller's command line, run by `system_user`.
    pub fn cli(system_user: &str) -> Principal {
        Principal {
            name: system_user.to_string(),
            role: Role::Admin,
            projects: vec!["*".into()],
            primary_user: None,
            secondaries: Vec::new(),
            manager: None,
            top: true,
            via: Via::Cli,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// A top administrator, or the command line.
    pub fn is_top(&self) -> bool {
        self.is_admin() && self.top
    }

    pub fn is_cli(&self) -> bool {
        self.via == Via::Cli
    }

    /// Human-readable: `alice` (session), `alice (token 1a2b…)`, `alice (wsse acme)`.
    pub fn label(&self) -> String {
        match &self.via {
            Via::Session { .. } => self.name.clone(),
            Via::Token(id) => format!("{} (token {id})", self.name),
            Via::Wsse(t) => format!("{} (wsse {t})", self.name),
            Via::Cli => format!("{} (cli)", self.name),
        }
    }

    /// May this administrator change `target`? A top administrator manages every
    /// account; another administrator the accounts it made or was given (`manager`),
    /// never a top administrator and never itself.
    pub fn manages(&self, target: &crate::store::UserRow) -> bool {
        self.is_top()
            || (self.is_admin()
                && !target.top
                && target.name != self.name
                && target.manager.as_deref() == Some(self.name.as_str()))
    }

    pub fn can_read_job(&self, job: &str) -> bool {
        self.is_admin()
            || self
                .projects
                .iter()
                .any(|g| grant_covers(g, project_of(job)))
    }

    pub fn can_run_job(&self, job: &str) -> bool {
        self.role >= Role::Operator && self.can_read_job(job)
    }

    /// Accounts whose executions this one sees (itself and, for a primary, its
    /// secondaries), and whether it sees runs no account started (schedules, triggers,
    /// the CLI): a primary does, in its projects; a secondary sees only its own.
    pub fn visible_accounts(&self) -> (Vec<String>, bool) {
        let mut names = vec![self.name.clone()];
        names.extend(self.secondaries.iter().cloned());
        (names, self.primary_user.is_none())
    }

    pub fn sees(&self, e: &ExecutionRow) -> bool {
        if self.is_admin() {
            return true;
        }
        if !self.can_read_job(&e.job) {
            return false;
        }
        let (names, unowned) = self.visible_accounts();
        if e.account.is_empty() {
            unowned
        } else {
            names.contains(&e.account)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Known, but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed logins: try again after this many seconds (429).
    #[error("too many failed logins: wait {seconds} s before the next try")]
    Wait { seconds: u64 },
    /// A field of the request is wrong (400).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The login code could not be mailed (503).
    #[error("cannot send the login code: {0}")]
    Mail(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type AuthResult<T> = Result<T, AuthError>;

/// Builds the principal for an enabled account.
pub async fn principal(store: &Store, user: &UserRow, via: Via) -> AuthResult<Principal> {
    let secondaries = if user.primary_user.is_none() {
        store
            .users()
            .await?
            .into_iter()
            .filter(|u| u.primary_user.as_deref() == Some(&user.name))
            .map(|u| u.name)
            .collect()
    } else {
        Vec::new()
    };
    Ok(Principal {
        name: user.name.clone(),
        role: Role::parse(&user.role)?,
        projects: user.projects.clone(),
        primary_user: user.primary_user.clone(),
        secondaries,
        manager: user.manager.clone(),
        top: user.top && user.role == Role::Admin.as_str(),
        via,
    })
}

/// The account behind an actor's label (`alice (token 1a2b)` is alice's); empty for
/// `(unknown account)`.
pub fn account_of(label: &str) -> &str {
    if label.starts_with('(') {
        return "";
    }
    label.split_once(" (").map_or(label, |(name, _)| name)
}

/// Writes one audit entry; a failure to write is logged, never fatal to the request.
pub async fn audit(
    store: &Store,
    actor: &str,
    address: &str,
    action: &str,
    target: &str,
    detail: &str,
) {
    let row = AuditRow {
        id: uuid::Uuid::now_v7().to_string(),
        at: crate::clock::now_ms(),
        actor: actor.to_string(),
        address: address.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        detail: detail.to_string(),
        account: if actor.ends_with(" (cli)") {
            String::new()
        } else {
            account_of(actor).to_string()
        },
    };
    tracing::info!(actor, address, action, target, "{detail}");
    if let Err(e) = store.insert_audit(&row).await {
        tracing::error!("audit log: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_folders_and_their_subfolders() {
        assert_eq!(project_of("tests/imap/auth"), "tests/imap");
        assert_eq!(project_of("vip"), "");
        assert!(grant_covers("tests", "tests/imap"));
        assert!(grant_covers("tests/", "tests"));
        assert!(!grant_covers("tests", "tests2"));
        assert!(!grant_covers("tests", ""));
        assert!(grant_covers("/", ""));
        assert!(grant_covers("*", "anything/deep"));
    }

    fn who(role: Role, primary: Option<&str>) -> Principal {
        Principal {
            name: "bob".into(),
            role,
            projects: vec!["tests".into()],
            primary_user: primary.map(str::to_string),
            secondaries: vec!["bob2".into()],
            manager: None,
            top: false,
            via: Via::Token("t".into()),
        }
    }

    #[test]
    fn visibility_follows_projects_and_the_hierarchy() {
        let e = |job: &str, account: &str| ExecutionRow {
            job: job.into(),
            account: account.into(),
            ..ExecutionRow::default()
        };
        let primary = who(Role::Viewer, None);
        assert!(primary.sees(&e("tests/a", "bob")));
        assert!(primary.sees(&e("tests/a", "bob2")));
        assert!(primary.sees(&e("tests/a", "")));
        assert!(!primary.sees(&e("tests/a", "carol")));
        assert!(!primary.sees(&e("vip", "bob")));
        assert!(!primary.can_run_job("tests/a"));
        let secondary = Principal {
            secondaries: vec![],
            ..who(Role::Operator, Some("alice"))
        };
        assert!(secondary.sees(&e("tests/a", "bob")));
        assert!(!secondary.sees(&e("tests/a", "")));
        assert!(!secondary.sees(&e("tests/a", "alice")));
        assert!(secondary.can_run_job("tests/x/y"));
        assert!(!secondary.can_run_job("other/y"));
    }
}
