//! `controller users …`, `controller tokens …` and `controller audit`: accounts, API
//! tokens and the audit log, in the history database (the API's admin pages do the same).
//! Passwords are read from the terminal or standard input, never from the command line.

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{BadInput, Cli, EXIT_OK};
use crate::auth::users::{self, NewUser};
use crate::auth::{AuthError, audit};
use crate::clock::{local_time, now_ms};
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Add an account; its password is asked for (or read from stdin with --password-stdin).
    Add(AddArgs),
    /// Every account.
    List,
    /// One account.
    Show {
        name: String,
    },
    /// Set an account's password (its sessions end).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop an account from logging in or using its tokens (its sessions end).
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Delete an account, its tokens and sessions.
    Delete {
        name: String,
    },
    /// Change an account's role, projects or place in the hierarchy.
    Role(RoleArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub name: String,
    /// admin, operator or viewer.
    #[arg(long)]
    pub role: String,
    /// Where login codes and alerts go.
    #[arg(long)]
    pub email: String,
    /// Job folders this account may use (comma-separated; `*` every one, `/` the top level).
    #[arg(long, value_delimiter = ',')]
    pub projects: Vec<String>,
    /// Make it a secondary account of this primary account.
    #[arg(long)]
    pub primary: Option<String>,
    /// The administrator who manages it.
    #[arg(long)]
    pub manager: Option<String>,
    /// The SSO/WSSE tenant it may log in through (`serve: auth: tenants`).
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Args, Debug)]
pub struct RoleArgs {
    pub name: String,
    /// admin, operator or viewer.
    pub role: Option<String>,
    #[arg(long, value_delimiter = ',')]
    pub projects: Option<Vec<String>>,
    /// The primary account (empty: make it a primary).
    #[arg(long)]
    pub primary: Option<String>,
    /// The managing administrator (empty: none).
    #[arg(long)]
    pub manager: Option<String>,
    /// The tenant (empty: none).
    #[arg(long)]
    pub tenant: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TokensCmd {
    /// Create a personal API token; it is shown once.
    Create {
        #[arg(long)]
        user: String,
        /// e.g. 30d, 12h; none: it never expires.
        #[arg(long)]
        expires: Option<String>,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Tokens (of one account with --user).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long)]
    pub action: Option<String>,
    #[arg(short = 'n', long, default_value_t = 50)]
    pub last: i64,
}

fn bad(e: AuthError) -> anyhow::Error {
    match e {
        AuthError::Store(s) => s.into(),
        other => BadInput(other.to_string()).into(),
    }
}

async fn store(cli: &Cli) -> anyhow::Result<Store> {
    let cfg = super::config(cli)?;
    crate::project::private_data_dir(&cfg)?;
    let store = Store::open(&crate::project::database_url(&cfg)).await?;
    crate::project::private_database(&cfg);
    Ok(store)
}

/// A password from stdin (one line) or typed twice on the terminal.
fn read_password(stdin: bool) -> anyhow::Result<String> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    let first = rpassword::prompt_password("password: ")?;
    let again = rpassword::prompt_password("again: ")?;
    if first != again {
        return Err(BadInput("the two passwords differ".into()).into());
    }
    Ok(first)
}

fn empty_is_none(v: &Option<String>) -> Option<Option<String>> {
    v.as_ref().map(|s| (!s.is_empty()).then(|| s.clone()))
}

pub async fn users(cli: &Cli, cmd: &UsersCmd) -> anyhow::Result<i32> {
    let store = store(cli).await?;
    let me = crate::transport::current_user();
    let who = format!("{me} (cli)");
    match cmd {
        UsersCmd::Add(a) => {
            let password = read_password(a.password_stdin)?;
            let new = NewUser {
                name: a.name.clone(),
                role: a.role.clone(),
                email: a.email.clone(),
                projects: a.projects.clone(),
                primary_user: a.primary.clone(),
                manager: a.manager.clone(),
                tenant: a.tenant.clone(),
            };
            let u = users::add(&store, new, &password).await.map_err(bad)?;
            audit(
                &store,
                &who,
                "",
                "user.add",
                &u.name,
                &format!("role {}", u.role),
            )
            .await;
            say!("account {} added ({})", u.name, u.role);
        }
        UsersCmd::List => {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header([
                "name", "role", "email", "projects", "primary", "manager", "tenant", "state",
            ]);
            for u in store.users().await? {
                t.add_row([
                    u.name,
                    u.role,
                    u.email,
                    u.projects.join(","),
                    u.primary_user.unwrap_or_default(),
                    u.manager.unwrap_or_default(),
                    u.tenant.unwrap_or_default(),
                    if u.disabled { "disabled" } else { "enabled" }.to_string(),
                ]);
            }
            say!("{t}");
        }
        UsersCmd::Show { name } => {
            let u = users::get(&store, name).await.map_err(bad)?;
            say!(
                "name:      {}\nrole:      {}\nemail:     {}\nprojects:  {}\nprimary:   {}\nmanager:   {}\ntenant:    {}\nstate:     {}\ncreated:   {}\nchanged:   {}",
                u.name,
                u.role,
                u.email,
                u.projects.join(", "),
                u.primary_user.as_deref().unwrap_or("-"),
                u.manager.as_deref().unwrap_or("-"),
                u.tenant.as_deref().unwrap_or("-"),
                if u.disabled { "disabled" } else { "enabled" },
                local_time(u.created_at),
                local_time(u.changed_at)
            );
        }
        UsersCmd::Passwd {
            name,
            password_stdin,
        } => {
            let before = users::get(&store, name).await.map_err(bad)?;
            let password = read_password(*password_stdin)?;
            let after = crate::store::UserRow {
                password: users::hash_password(&password).map_err(bad)?,
                ..before.clone()
            };
            users::save(&store, &before, after).await.map_err(bad)?;
            audit(&store, &who, "", "user.change", name, "password").await;
            say!("password of {name} changed; its sessions ended");
        }
        UsersCmd::Disable { name } | UsersCmd::Enable { name } => {
            let disabled = matches!(cmd, UsersCmd::Disable { .. });
            let before = users::get(&store, name).await.map_err(bad)?;
            let after = crate::store::UserRow {
                disabled,
                ..before.clone()
            };
            users::save(&store, &before, after).await.map_err(bad)?;
            let what = if disabled { "disabled" } else { "enabled" };
            audit(&store, &who, "", "user.change", name, what).await;
            say!("account {name} {what}");
        }
        UsersCmd::Delete { name } => {
            store.delete_user(name).await?;
            audit(&store, &who, "", "user.delete", name, "").await;
            say!("account {name} deleted, with its tokens and sessions");
        }
        UsersCmd::Role(r) => {
            let before = users::get(&store, &r.name).await.map_err(bad)?;
            let mut after = before.clone();
            if let Some(role) = &r.role {
                after.role = role.clone();
            }
            if let Some(p) = &r.projects {
                after.projects = p.clone();
            }
            if let Some(p) = empty_is_none(&r.primary) {
                after.primary_user = p;
            }
            if let Some(m) = empty_is_none(&r.manager) {
                after.manager = m;
            }
            if let Some(t) = empty_is_none(&r.tenant) {
                after.tenant = t;
            }
            let u = users::save(&store, &before, after).await.map_err(bad)?;
            audit(
                &store,
                &who,
                "",
                "user.change",
                &u.name,
                &format!("role {}", u.role),
            )
            .await;
            say!(
                "account {}: {}, projects {}",
                u.name,
                u.role,
                u.projects.join(",")
            );
        }
    }
    store.close().await;
    Ok(EXIT_OK)
}

pub async fn tokens(cli: &Cli, cmd: &TokensCmd) -> anyhow::Result<i32> {
    let store = store(cli).await?;
    let who = format!("{} (cli)", crate::transport::current_user());
    match cmd {
        TokensCmd::Create {
            user,
            expires,
            label,
        } => {
            let valid_for = expires
                .as_deref()
                .map(ordo_jobs::units::parse_duration)
                .transpose()
                .map_err(|e| BadInput(format!("--expires: {e}")))?;
            let (row, shown) = users::create_token(&store, user, label, valid_for)
                .await
                .map_err(bad)?;
            audit(
                &store,
                &who,
                "",
                "token.create",
                &format!("{user} {}", row.id),
                label,
            )
            .await;
            eprintln!(
                "token {} for {user}{}: shown once, keep it safe",
                row.id,
                row.expires_at
                    .map(|e| format!(", expires {}", local_time(e)))
                    .unwrap_or_default()
            );
            say!("{shown}");
        }
        TokensCmd::List { user } => {
            let now = now_ms();
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header([
                "id",
                "user",
                "label",
                "created",
                "expires",
                "last used",
                "state",
            ]);
            for r in store.tokens(user.as_deref()).await? {
                let state = if r.revoked_at.is_some() {
                    "revoked"
                } else if r.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "valid"
                };
                let when = |t: Option<i64>| t.map(local_time).unwrap_or_else(|| "-".into());
                t.add_row([
                    r.id,
                    r.user_name,
                    r.label,
                    local_time(r.created_at),
                    when(r.expires_at),
                    when(r.last_used_at),
                    state.to_string(),
                ]);
            }
            say!("{t}");
        }
        TokensCmd::Revoke { id } => {
            store.revoke_token(id, now_ms()).await?;
            audit(&store, &who, "", "token.revoke", id, "").await;
            say!("token {id} revoked");
        }
    }
    store.close().await;
    Ok(EXIT_OK)
}

pub async fn audit_log(cli: &Cli, a: &AuditArgs) -> anyhow::Result<i32> {
    let store = store(cli).await?;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["time", "who", "from", "action", "target", "detail"]);
    for r in store
        .audit(
            a.actor.as_deref(),
            a.action.as_deref(),
            a.last.clamp(1, 10_000),
        )
        .await?
    {
        t.add_row([
            local_time(r.at),
            r.actor,
            r.address,
            r.action,
            r.target,
            r.detail,
        ]);
    }
    say!("{t}");
    store.close().await;
    Ok(EXIT_OK)
}
